"""One Relax operator at a time: `lutc.import_relax` + the reference interpreter must agree with
TVM's own compiled result (`tvm.compile(..., target="llvm")` run by the Relax VM) on random inputs.

Each case builds a one-binding Relax function with `relax.BlockBuilder`; compiling such a
function takes TVM about 20 ms. Floats are compared to 1e-5 of the output's scale (one op,
float32 on both sides: only rounding and libm differences remain); integers and booleans exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")
from tvm import relax  # noqa: E402
from tvm.relax import op as R  # noqa: E402

from lutc.frontends.relax import import_relax, supported_ops  # noqa: E402
from lutc.ir.interpreter import run  # noqa: E402


@dataclass(frozen=True)
class In:
    """An input: shape, dtype and the range random values are drawn from."""

    shape: tuple
    dtype: str = "float32"
    low: float = -2.0
    high: float = 2.0

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        if self.dtype == "bool":
            return rng.random(self.shape) < 0.5
        if self.dtype.startswith(("int", "uint")):
            return rng.integers(int(self.low), int(self.high), size=self.shape).astype(self.dtype)
        return rng.uniform(self.low, self.high, size=self.shape).astype(self.dtype)


def const(array: Any, dtype: str = "float32") -> relax.Expr:
    return relax.const(np.asarray(array, dtype), dtype)


F = In((2, 3, 4))
POS = In((2, 3, 4), low=0.1, high=3.0)
UNIT = In((2, 3, 4), low=-0.9, high=0.9)
I32 = In((2, 3, 4), "int32", -7, 8)
B = In((2, 3, 4), "bool")
IMG = In((1, 4, 6, 6))

# name -> (inputs, function of the input Vars returning a Relax call)
CASES: dict[str, tuple[list[In], Callable[..., Any]]] = {
    # unary
    **{name: ([F], getattr(R, name)) for name in (
        "exp", "tanh", "sigmoid", "erf", "negative", "abs", "sign", "floor", "ceil", "sin", "cos", "atan",
        "sinh", "cosh", "asinh", "square")},
    "tan": ([UNIT], R.tan),
    "asin": ([UNIT], R.asin),
    "acos": ([UNIT], R.acos),
    "atanh": ([UNIT], R.atanh),
    "acosh": ([In((2, 3, 4), low=1.1, high=4.0)], R.acosh),
    "log": ([POS], R.log),
    "sqrt": ([POS], R.sqrt),
    "rsqrt": ([POS], R.rsqrt),
    "isnan": ([F], lambda x: R.isnan(R.log(x))),  # NaN for the negative half of the inputs
    "isinf": ([F], lambda x: R.isinf(R.divide(x, R.floor(x)))),  # x / 0 for 0 <= x < 1
    "logical_not": ([B], R.logical_not),
    "bitwise_not": ([I32], R.bitwise_not),
    "nn.relu": ([F], R.nn.relu),
    "nn.silu": ([F], R.nn.silu),
    "nn.selu": ([F], R.nn.selu),
    "nn.gelu": ([F], R.nn.gelu),
    "nn.gelu_tanh": ([F], R.nn.gelu_tanh),
    "nn.leakyrelu": ([F], lambda x: R.nn.leakyrelu(x, 0.1)),
    "nn.prelu": ([IMG, In((4,))], R.nn.prelu),
    "clip": ([F], lambda x: R.clip(x, -0.5, 1.0)),
    "astype_int": ([F], lambda x: R.astype(x, "int32")),
    "astype_bool": ([In((2, 3, 4), "int32", -2, 3)], lambda x: R.astype(x, "bool")),
    "nn.dropout": ([F], lambda x: relax.TupleGetItem(R.nn.dropout(x, 0.5), 0)),
    # binary, broadcasting
    **{name: ([F, In((3, 4))], getattr(R, name)) for name in ("add", "subtract", "multiply", "divide", "maximum", "minimum")},
    "power": ([POS, In((4,), low=-1.5, high=2.0)], R.power),
    **{name: ([In((2, 3, 4), "int32", -2, 3), In((3, 4), "int32", -2, 3)], getattr(R, name)) for name in (
        "equal", "not_equal", "less", "greater", "less_equal", "greater_equal")},
    **{name: ([B, B], getattr(R, name)) for name in ("logical_and", "logical_or", "logical_xor")},
    **{name: ([I32, I32], getattr(R, name)) for name in ("bitwise_and", "bitwise_or", "bitwise_xor")},
    # Integer division truncates toward zero: divisors of both signs.
    "divide_int": ([I32, In((3, 4), "int32", 1, 4)], lambda a, b: R.divide(a, R.multiply(b, const([1, -1, 1, -1], "int32")))),
    "mod": ([F, In((2, 3, 4), low=0.5, high=2.0)], lambda a, b: R.mod(a, R.negative(b))),
    "floor_mod": ([F, In((2, 3, 4), low=0.5, high=2.0)], lambda a, b: R.floor_mod(a, R.negative(b))),
    "floor_mod_int": ([I32, In((2, 3, 4), "int32", 1, 4)], lambda a, b: R.floor_mod(a, R.negative(b))),
    "floor_divide": ([F, In((2, 3, 4), low=0.5, high=2.0)], lambda a, b: R.floor_divide(a, R.negative(b))),
    "floor_divide_int": ([I32, In((3, 4), "int32", 1, 4)], lambda a, b: R.floor_divide(a, R.multiply(b, const([1, -1, 1, -1], "int32")))),
    "where": ([B, F, In((3, 4))], R.where),
    # linear algebra, normalization
    "matmul": ([In((2, 3, 5)), In((5, 4))], R.matmul),
    "matmul_batched": ([In((2, 1, 3, 5)), In((4, 5, 2))], R.matmul),
    "einsum": ([In((2, 3)), In((3, 4))], lambda a, b: R.einsum((a, b), "ij,jk->ik")),
    "nn.layer_norm": ([F, In((3, 4)), In((3, 4))], lambda x, g, b: R.nn.layer_norm(x, g, b, axes=[-2, -1], epsilon=1e-3)),
    "nn.rms_norm": ([F, In((4,))], lambda x, g: R.nn.rms_norm(x, g, axes=[-1], epsilon=1e-4)),
    "nn.batch_norm": ([IMG, In((4,)), In((4,)), In((4,)), In((4,), low=0.5, high=2.0)],
                      lambda x, g, b, m, v: relax.TupleGetItem(R.nn.batch_norm(x, g, b, m, v, axis=1, epsilon=1e-3, training=False), 0)),
    "nn.batch_norm_no_scale": ([IMG, In((4,)), In((4,)), In((4,)), In((4,), low=0.5, high=2.0)],
                               lambda x, g, b, m, v: relax.TupleGetItem(R.nn.batch_norm(x, g, b, m, v, axis=1, scale=False, training=False), 0)),
    "nn.instance_norm": ([IMG, In((4,)), In((4,))], lambda x, g, b: R.nn.instance_norm(x, g, b, channel_axis=1, axes=[2, 3])),
    "nn.softmax": ([F], lambda x: R.nn.softmax(x, axis=1)),
    "nn.log_softmax": ([F], lambda x: R.nn.log_softmax(x, axis=-1)),
    # convolution, pooling, padding
    "nn.conv1d": ([In((1, 4, 9)), In((6, 2, 3))], lambda x, w: R.nn.conv1d(x, w, strides=2, padding=(1, 2), groups=2)),
    "nn.conv2d": ([IMG, In((6, 4, 3, 3))], lambda x, w: R.nn.conv2d(x, w, strides=(2, 1), padding=(1, 0, 2, 1), dilation=(1, 2))),
    "nn.conv2d_depthwise": ([IMG, In((4, 1, 3, 3))], lambda x, w: R.nn.conv2d(x, w, padding=1, groups=4)),
    "nn.conv3d": ([In((1, 2, 4, 4, 4)), In((3, 2, 2, 2, 2))], lambda x, w: R.nn.conv3d(x, w, padding=1)),
    "nn.conv2d_transpose": ([IMG, In((4, 3, 3, 3))], lambda x, w: R.nn.conv2d_transpose(x, w, strides=2, padding=1, output_padding=1)),
    "nn.max_pool2d": ([IMG], lambda x: R.nn.max_pool2d(x, (3, 3), strides=(2, 2), padding=(1, 1, 1, 1))),
    "nn.max_pool2d_ceil": ([IMG], lambda x: R.nn.max_pool2d(x, (2, 2), strides=(2, 2), ceil_mode=True, padding=(0, 0, 1, 1))),
    "nn.avg_pool2d": ([IMG], lambda x: R.nn.avg_pool2d(x, (3, 3), strides=(1, 1), padding=(1, 1, 1, 1))),
    "nn.avg_pool2d_include_pad": ([IMG], lambda x: R.nn.avg_pool2d(x, (3, 3), strides=(2, 2), padding=(1, 1, 1, 1), count_include_pad=True)),
    "nn.max_pool1d": ([In((1, 2, 9))], lambda x: R.nn.max_pool1d(x, 3, strides=2)),
    "nn.adaptive_avg_pool2d_global": ([IMG], lambda x: R.nn.adaptive_avg_pool2d(x, (1, 1))),
    "nn.adaptive_avg_pool2d": ([IMG], lambda x: R.nn.adaptive_avg_pool2d(x, (3, 2))),
    "nn.pad": ([IMG], lambda x: R.nn.pad(x, (0, 0, 1, 0, 2, 1, 0, 3), pad_value=0.5)),
    **{f"nn.pad_{mode}": ([IMG], lambda x, m=mode: R.nn.pad(x, (0, 0, 0, 0, 2, 1, 0, 3), pad_mode=m)) for mode in ("reflect", "replicate", "circular")},
    # reductions
    "sum": ([F], lambda x: R.sum(x, axis=[0, 2])),
    "mean": ([F], lambda x: R.mean(x, axis=[-1], keepdims=True)),
    "max": ([F], lambda x: R.max(x)),
    "min": ([F], lambda x: R.min(x, axis=[1], keepdims=True)),
    "prod": ([UNIT], lambda x: R.prod(x, axis=[2])),
    "argmax": ([F], lambda x: R.argmax(x, axis=1)),
    "argmin_flat": ([F], lambda x: R.argmin(x, keepdims=True)),
    "cumsum": ([F], lambda x: R.cumsum(x, axis=1)),
    "cumsum_exclusive": ([F], lambda x: R.cumsum(x, axis=2, exclusive=True)),
    "cumprod": ([UNIT], lambda x: R.cumprod(x, axis=-1)),
    "topk": ([F], lambda x: R.topk(x, 2, axis=1, ret_type="both", dtype="int64")),
    # layout
    "permute_dims": ([F], lambda x: R.permute_dims(x, [2, 0, 1])),
    "permute_dims_reverse": ([F], R.permute_dims),
    "reshape": ([F], lambda x: R.reshape(x, (4, 6))),
    "flatten": ([F], R.flatten),
    "expand_dims": ([F], lambda x: R.expand_dims(x, [0, -1])),
    "squeeze": ([In((2, 1, 4, 1))], lambda x: R.squeeze(x, [3])),
    "squeeze_all": ([In((2, 1, 4, 1))], R.squeeze),
    "broadcast_to": ([In((3, 1))], lambda x: R.broadcast_to(x, (2, 3, 5))),
    "tile": ([In((2, 3))], lambda x: R.tile(x, (2, 1, 3))),
    "concat": ([F, In((2, 1, 4))], lambda a, b: R.concat((a, b), axis=1)),
    "stack": ([F, F], lambda a, b: R.stack((a, b), axis=1)),
    "split_sections": ([In((2, 7))], lambda x: R.split(x, 3, axis=1)),
    "split_indices": ([In((2, 7))], lambda x: R.split(x, [2, 5], axis=-1)),
    "strided_slice": ([In((4, 6, 5))], lambda x: R.strided_slice(x, [0, 2], [1, -1], [4, 0], [2, -2])),
    "strided_slice_clamped": ([In((4, 6, 5))], lambda x: R.strided_slice(x, [1], [-100], [100])),
    "take": ([F, In((2, 2), "int64", -3, 3)], lambda x, i: R.take(x, i, axis=1)),
    "take_wrap": ([F, In((5,), "int64", -9, 9)], lambda x, i: R.take(x, i, axis=2, mode="wrap")),
    "take_clip": ([F, In((5,), "int64", -9, 9)], lambda x, i: R.take(x, i, axis=0, mode="clip")),
    "gather_elements": ([F, In((2, 2, 4), "int64", 0, 3)], lambda x, i: R.gather_elements(x, i, axis=1)),
    "gather_nd": ([F, In((5, 2), "int64", 0, 2)], R.gather_nd),
    "scatter_elements": ([F, In((2, 1, 4), "int64", 0, 3), In((2, 1, 4))], lambda x, i, u: R.scatter_elements(x, i, u, axis=1)),
    "scatter_nd_add": ([In((4, 3)), In((2, 1), "int64", 0, 4), In((2, 3))], lambda x, i, u: R.scatter_nd(x, i, u, "add")),
    "tril": ([In((3, 5))], lambda x: R.tril(x, 1)),
    "triu": ([In((2, 4, 4))], lambda x: R.triu(x, -1)),
    "one_hot": ([In((3,), "int64", 0, 5)], lambda i: R.one_hot(i, relax.prim_value(2.0), relax.prim_value(-1.0), 5, 0)),
    "dequantize": ([In((3, 4), "int8", -128, 127)], lambda q: R.dequantize(q, const([0.5, 0.25, 2.0]), const([1, -3, 0], "int8"), axis=0)),
    # constants and shapes folded at import
    "zeros_plus": ([F], lambda x: R.add(x, R.ones((3, 4), "float32"))),
    "full": ([F], lambda x: R.multiply(x, R.full((4,), const(1.5)))),
    "arange": ([F], lambda x: R.add(x, R.arange(0, 4, 1, "float32"))),
    "shape_to_tensor": ([In((3, 2), "int64", 0, 5)], lambda x: R.add(x, R.shape_to_tensor(R.shape_of(x)))),
}


def build(inputs: list[In], body: Callable[..., Any]) -> "tvm.IRModule":
    bb = relax.BlockBuilder()
    params = [relax.Var(f"x{i}", relax.TensorType(inp.shape, inp.dtype)) for i, inp in enumerate(inputs)]
    with bb.function("main", params):
        with bb.dataflow():
            out = bb.emit_output(bb.normalize(body(*params)))
        bb.emit_func_output(out)
    return bb.get()


def flatten(value: Any) -> list[np.ndarray]:
    if hasattr(value, "numpy"):
        return [value.numpy()]
    return [a for item in value for a in flatten(item)]


def run_tvm(mod: "tvm.IRModule", arrays: list[np.ndarray]) -> list[np.ndarray]:
    vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
    return flatten(vm["main"](*(tvm.runtime.tensor(a) for a in arrays)))


def assert_matches(got: list[np.ndarray], want: list[np.ndarray], rtol: float) -> None:
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        g = np.asarray(g)
        assert g.shape == w.shape, f"output {i}: shape {g.shape} vs TVM's {w.shape}"
        if w.dtype.kind in "iub":
            np.testing.assert_array_equal(g, w, err_msg=f"output {i}")
        else:
            finite = np.isfinite(w)
            np.testing.assert_array_equal(np.isnan(g), np.isnan(w), err_msg=f"output {i}: NaNs differ")
            scale = float(np.max(np.abs(w[finite]))) if finite.any() else 1.0
            np.testing.assert_allclose(g[finite], w[finite], rtol=rtol, atol=rtol * scale, err_msg=f"output {i}")


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_matches_tvm(case: str) -> None:
    inputs, body = CASES[case]
    mod = build(inputs, body)
    rng = np.random.default_rng(sum(map(ord, case)))  # a fixed seed per case
    arrays = [inp.sample(rng) for inp in inputs]
    want = run_tvm(mod, arrays)
    module = import_relax(mod)
    got = run(module, arrays)
    assert_matches(got, want, rtol=1e-5)


def relax_ops_called(mod: "tvm.IRModule") -> set[str]:
    names: set[str] = set()

    @relax.expr_functor.visitor
    class Calls(relax.PyExprVisitor):
        def visit_call_(self, call):  # noqa: N802  (TVM's visitor naming)
            names.add(call.op.name)
            super().visit_call_(call)

    Calls().visit_expr(mod["main"])
    return names


# Converters not exercised above, and why.
UNTESTED = {
    "relax.hint_on_device", "relax.wrap_param", "relax.builtin.stop_lift_params",  # identities, pass-through
    "relax.tensor_to_shape",  # only of constants, which TVM folds away before a test could see it
    "relax.zeros", "relax.zeros_like", "relax.ones_like", "relax.full_like",  # the same constant folding as ones/full
    "relax.nn.batch_flatten", "relax.nn.conv1d_transpose", "relax.nn.conv3d_transpose",  # same converters as flatten, conv2d_transpose
    "relax.nn.avg_pool1d", "relax.nn.avg_pool3d", "relax.nn.max_pool3d",  # same converter as the 2-d pools
    "relax.nn.adaptive_avg_pool1d", "relax.nn.adaptive_avg_pool3d",
    "relax.ewise_fma",  # TVM 0.27 cannot compile it (no legalization), so there is nothing to compare with
}


def test_every_converter_is_tested() -> None:
    called = set().union(*(relax_ops_called(build(inputs, body)) for inputs, body in CASES.values()))
    untested = set(supported_ops()) - called - UNTESTED
    assert not untested, f"converters without a test case: {sorted(untested)}"
