"""More elementwise `graph` ops: math, activations, logic, bitwise, `where` and `clip`.

Defined from tables with `define_elementwise` (graph.py), like the core arithmetic ops.
The references follow ONNX: NaN propagates, integer ops wrap, `mod` takes the sign of the
divisor unless `fmod` is set, comparisons and logic give `i1`.
"""

from __future__ import annotations

import numpy as np

from lutc.ir.attributes import BoolAttr, FloatAttr, StringAttr
from lutc.ir.dialects.graph import (
    _sigmoid,
    broadcast_shapes,
    define_elementwise,
    graph,
    same_element,
    tensor_operand,
)
from lutc.ir.opdef import Attr, InferError, OpDef, Trait, impl
from lutc.ir.types import TensorType, i1


def _float_compute(fn):
    """Evaluate `fn` in at least float32 (f16/bf16 inputs), return the input's dtype."""

    def wrapped(x, **attrs):
        wide = x.astype(np.float32) if x.dtype.itemsize < 4 else x
        with np.errstate(all="ignore"):
            return np.asarray(fn(wide, **attrs)).astype(x.dtype)

    return wrapped


def _softplus(x):
    return np.logaddexp(np.zeros((), x.dtype), x)


UNARY_FLOAT = {
    "graph.floor": (np.floor, "Largest integer <= x."),
    "graph.ceil": (np.ceil, "Smallest integer >= x."),
    "graph.round": (np.round, "Round to the nearest integer, halves to even."),
    "graph.sin": (np.sin, "Sine."),
    "graph.cos": (np.cos, "Cosine."),
    "graph.tan": (np.tan, "Tangent."),
    "graph.asin": (np.arcsin, "Arcsine."),
    "graph.acos": (np.arccos, "Arccosine."),
    "graph.atan": (np.arctan, "Arctangent."),
    "graph.sinh": (np.sinh, "Hyperbolic sine."),
    "graph.cosh": (np.cosh, "Hyperbolic cosine."),
    "graph.asinh": (np.arcsinh, "Inverse hyperbolic sine."),
    "graph.acosh": (np.arccosh, "Inverse hyperbolic cosine."),
    "graph.atanh": (np.arctanh, "Inverse hyperbolic tangent."),
    "graph.softplus": (_softplus, "log(1 + e^x)."),
    "graph.softsign": (lambda x: x / (1 + np.abs(x)), "x / (1 + |x|)."),
    "graph.mish": (lambda x: x * np.tanh(_softplus(x)), "x * tanh(softplus(x))."),
    "graph.hard_swish": (lambda x: x * np.clip(x / 6 + 0.5, 0, 1), "x * max(0, min(1, x/6 + 1/2))."),
}

for _name, (_fn, _summary) in UNARY_FLOAT.items():
    define_elementwise(_name, _float_compute(_fn), arity=1, summary=_summary, float_only=True)

define_elementwise("graph.sign", lambda x: np.sign(x).astype(x.dtype), arity=1, summary="-1, 0 or 1 by the sign of x (NaN stays NaN).")
define_elementwise("graph.bitwise_not", np.invert, arity=1, summary="Bitwise complement of an integer.")
define_elementwise("graph.not", np.logical_not, arity=1, summary="Logical not of an i1 tensor.")
define_elementwise("graph.is_nan", np.isnan, arity=1, float_only=True, result_element=i1, summary="x is NaN, as i1.")
define_elementwise(
    "graph.is_inf",
    lambda x, *, detect_positive, detect_negative: (np.isposinf(x) & detect_positive) | (np.isneginf(x) & detect_negative),
    arity=1, float_only=True, result_element=i1, summary="x is +inf or -inf (as selected), as i1.",
    attributes=(Attr("detect_positive", BoolAttr, True), Attr("detect_negative", BoolAttr, True)),
)


# -- activations with parameters (ONNX defaults) -------------------------------------------

def _elu(x, *, alpha):
    return np.where(x >= 0, x, alpha * np.expm1(x))


def _selu(x, *, alpha, gamma):
    return gamma * np.where(x > 0, x, alpha * np.expm1(x))


def _celu(x, *, alpha):
    return np.maximum(x, 0) + np.minimum(0, alpha * np.expm1(x / alpha))


PARAMETRIC = {
    # name: (fn, attributes, summary)
    "graph.elu": (_elu, (Attr("alpha", FloatAttr, 1.0),), "x if x >= 0 else alpha * (e^x - 1)."),
    "graph.selu": (_selu, (Attr("alpha", FloatAttr, 1.67326319217681884765625), Attr("gamma", FloatAttr, 1.05070102214813232421875)),
                   "gamma * (x if x > 0 else alpha * (e^x - 1))."),
    "graph.celu": (_celu, (Attr("alpha", FloatAttr, 1.0),), "max(0, x) + min(0, alpha * (e^(x/alpha) - 1))."),
    "graph.leaky_relu": (lambda x, *, alpha: np.where(x >= 0, x, alpha * x), (Attr("alpha", FloatAttr, 0.01),), "x if x >= 0 else alpha * x."),
    "graph.hard_sigmoid": (lambda x, *, alpha, beta: np.clip(alpha * x + beta, 0, 1),
                           (Attr("alpha", FloatAttr, 0.2), Attr("beta", FloatAttr, 0.5)), "max(0, min(1, alpha * x + beta))."),
    "graph.thresholded_relu": (lambda x, *, alpha: np.where(x > alpha, x, 0), (Attr("alpha", FloatAttr, 1.0),), "x if x > alpha else 0."),
    "graph.swish": (lambda x, *, alpha: x * _sigmoid(alpha * x), (Attr("alpha", FloatAttr, 1.0),), "x * sigmoid(alpha * x)."),
}

for _name, (_fn, _attrs, _summary) in PARAMETRIC.items():
    define_elementwise(_name, _float_compute(_fn), arity=1, summary=_summary, float_only=True, attributes=_attrs)


def _shrink(x, *, bias, lambd):
    wide = x.astype(np.float64)
    return np.where(wide < -lambd, wide + bias, np.where(wide > lambd, wide - bias, 0)).astype(x.dtype)


define_elementwise(
    "graph.shrink", _shrink, arity=1, summary="x + bias if x < -lambd, x - bias if x > lambd, else 0.",
    attributes=(Attr("bias", FloatAttr, 0.0), Attr("lambd", FloatAttr, 0.5)),
)


def _clip(x, *, min=None, max=None):
    out = x
    if min is not None:
        out = np.where(out < np.asarray(min).astype(x.dtype), np.asarray(min).astype(x.dtype), out)
    if max is not None:
        out = np.where(out > np.asarray(max).astype(x.dtype), np.asarray(max).astype(x.dtype), out)
    return out.astype(x.dtype)


define_elementwise(
    "graph.clip", _clip, arity=1, summary="Clamp to [min, max] (either bound optional; NaN stays NaN).",
    attributes=(Attr("min", FloatAttr, None), Attr("max", FloatAttr, None)),
)


# -- binary ops ---------------------------------------------------------------------------

def _mod(a, b, *, fmod):
    with np.errstate(divide="ignore", invalid="ignore"):
        if fmod or a.dtype.kind == "f":
            return np.fmod(a, b).astype(a.dtype)
        return np.mod(a, b).astype(a.dtype)


def _bit_shift(a, b, *, direction):
    return (np.left_shift(a, b) if direction == "left" else np.right_shift(a, b)).astype(a.dtype)


def _prelu(x, slope):
    return np.where(x < 0, slope * x, x).astype(x.dtype)


define_elementwise("graph.mod", _mod, arity=2, summary="Remainder: sign of the divisor, or of the dividend with fmod (C fmod).",
                   attributes=(Attr("fmod", BoolAttr, False),))
define_elementwise("graph.bit_shift", _bit_shift, arity=2, summary="lhs shifted left or right by rhs bits.",
                   attributes=(Attr("direction", StringAttr, "left", ("left", "right")),))
define_elementwise("graph.prelu", _prelu, arity=2, summary="x if x >= 0 else slope * x (slope broadcasts).")

BINARY_SAME_TYPE = {
    "graph.and": (np.logical_and, True, "Logical and of i1 tensors."),
    "graph.or": (np.logical_or, True, "Logical or of i1 tensors."),
    "graph.xor": (np.logical_xor, True, "Logical xor of i1 tensors."),
    "graph.bitwise_and": (np.bitwise_and, True, "Bitwise and."),
    "graph.bitwise_or": (np.bitwise_or, True, "Bitwise or."),
    "graph.bitwise_xor": (np.bitwise_xor, True, "Bitwise xor."),
}
for _name, (_fn, _comm, _summary) in BINARY_SAME_TYPE.items():
    define_elementwise(_name, _fn, arity=2, commutative=_comm, summary=_summary)

define_elementwise("graph.less_equal", np.less_equal, arity=2, result_element=i1, summary="lhs <= rhs, as i1.")
define_elementwise("graph.greater_equal", np.greater_equal, arity=2, result_element=i1, summary="lhs >= rhs, as i1.")


@graph.op
class Where(OpDef):
    name = "graph.where"
    summary = "condition ? lhs : rhs, elementwise with broadcasting of all three."
    operands = ("condition", "lhs", "rhs")
    traits = {Trait.PURE, Trait.ELEMENTWISE, Trait.BROADCAST}

    @staticmethod
    def infer(types, attrs):
        cond, x, y = (tensor_operand(types, i) for i in range(3))
        if not cond.element.is_bool:
            raise InferError(f"condition must be i1, got {cond.element}")
        element = same_element([x, y])
        return [TensorType(broadcast_shapes(cond.shape, x.shape, y.shape), element)]


@impl(Where)
def _where(cond, x, y):
    return np.where(cond, x, y)


__all__ = ["Where"]
