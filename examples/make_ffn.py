"""Write a LLaMA-style SwiGLU feed-forward block with a residual, down(silu(gate(x)) * up(x)) + x,
f32 weights, as lutc IR text: hidden 256 -> 512 -> 256 unless sizes are given.

    python examples/make_ffn.py > examples/ffn.mlir
    python examples/make_ffn.py 1024 2048 > ffn_1024.mlir     # hidden, inner
"""

import sys

import numpy as np

from lutc.ir import Builder, Module, make_function, print_module, sync_function_type, tensor
from lutc.ir.core import function_body


def ffn_module(hidden: int = 256, inner: int = 512) -> Module:
    rng = np.random.default_rng(0)
    fn = make_function("main", [tensor((1, hidden), "f32")])
    fn.set_attr("arg_names", ["x"])
    fn.set_attr("result_names", ["y"])
    b = Builder(function_body(fn))
    (x,) = function_body(fn).args

    def weight(rows: int, cols: int, name: str):
        return b.constant((rng.standard_normal((rows, cols)) / np.sqrt(rows)).astype(np.float32), name=name)

    gate = b.op("graph.matmul", x, weight(hidden, inner, "gate_proj"))
    up = b.op("graph.matmul", x, weight(hidden, inner, "up_proj"))
    down = b.op("graph.matmul", b.op("graph.mul", b.op("graph.silu", gate), up), weight(inner, hidden, "down_proj"))
    b.create("func.return", [b.op("graph.add", down, x)], result_types=[])
    sync_function_type(fn)
    module = Module()
    module.body.append(fn)
    return module


if __name__ == "__main__":
    print(print_module(ffn_module(*map(int, sys.argv[1:3]))), end="")
