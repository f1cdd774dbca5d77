"""Write examples/ffn.mlir: a LLaMA-style SwiGLU feed-forward block with a residual,
down(silu(gate(x)) * up(x)) + x, hidden 256 -> 512 -> 256, f32 weights.

    python examples/make_ffn.py > examples/ffn.mlir
"""

import numpy as np

from lutc.ir import Builder, Module, make_function, print_module, sync_function_type, tensor
from lutc.ir.core import function_body

rng = np.random.default_rng(0)
hidden, inner = 256, 512
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
print(print_module(module), end="")
