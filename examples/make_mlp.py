"""Write examples/mlp.mlir: a two-layer MLP (64 -> 128 -> 32) with GELU, built through the IR API.

    python examples/make_mlp.py > examples/mlp.mlir
"""

import numpy as np

from lutc.ir import Builder, Module, make_function, print_module, sync_function_type, tensor
from lutc.ir.core import function_body

rng = np.random.default_rng(0)
fn = make_function("main", [tensor((1, 64), "f32")])
fn.set_attr("arg_names", ["x"])
fn.set_attr("result_names", ["y"])
b = Builder(function_body(fn))
(x,) = function_body(fn).args
w1 = b.constant((rng.standard_normal((64, 128)) / 8).astype(np.float32), name="fc1_weight")
b1 = b.constant((rng.standard_normal(128) / 8).astype(np.float32), name="fc1_bias")
w2 = b.constant((rng.standard_normal((128, 32)) / 11).astype(np.float32), name="fc2_weight")
zero = b.constant(np.zeros(32, np.float32), name="fc2_bias")  # a zero bias: canonicalize removes it
h = b.op("graph.gelu", b.op("graph.add", b.op("graph.matmul", x, w1), b1))
y = b.op("graph.add", b.op("graph.matmul", h, w2), zero)
b.create("func.return", [y], result_types=[])
sync_function_type(fn)
module = Module()
module.body.append(fn)
print(print_module(module), end="")
