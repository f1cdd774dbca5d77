"""Reductions and scans of the `graph` dialect: reduce_* {axes, keepdims}, argmax/argmin,
softmax/log_softmax/hardmax {axis}, cumsum/cumprod, topk.

`axes` is always explicit (an importer resolves ONNX's "all axes" and "no-op" forms).
Reducing an empty set gives the identity of the reduction (0 for sum, -inf for max, ...),
as ONNX specifies; float16/bfloat16 inputs accumulate in float32.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from lutc.ir.attributes import BoolAttr, DenseArrayAttr, IntAttr
from lutc.ir.dialects.graph import graph, normalize_axis, tensor_operand
from lutc.ir.opdef import Attr, InferError, OpDef, Trait, impl
from lutc.ir.types import TensorType, i64

PURE = {Trait.PURE}


def reduced_shape(shape: tuple, axes: list[int], keepdims: bool) -> tuple:
    rank = len(shape)
    axes = {normalize_axis(a, rank) for a in axes}
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def is_float_dtype(dtype: np.dtype) -> bool:
    """float16/32/64 and bfloat16 (which NumPy sees as an opaque 'V' kind)."""
    return dtype.kind == "f" or dtype.name == "bfloat16"


def _accumulate(x: np.ndarray) -> np.ndarray:
    """Narrow floats (f16, bf16) accumulate in float32."""
    return x.astype(np.float32) if is_float_dtype(x.dtype) and x.dtype.itemsize < 4 else x


def _lowest(dtype: np.dtype):
    if is_float_dtype(dtype):
        return -np.inf
    if dtype.kind == "b":
        return False
    return np.iinfo(dtype).min


def _highest(dtype: np.dtype):
    if is_float_dtype(dtype):
        return np.inf
    if dtype.kind == "b":
        return True
    return np.iinfo(dtype).max


def _log_sum_exp(x, axis, keepdims):
    x = x.astype(np.float64)
    if x.size == 0 or any(x.shape[a] == 0 for a in axis):
        return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))
    peak = np.max(x, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0)
    out = np.log(np.sum(np.exp(x - peak), axis=axis, keepdims=True)) + peak
    return out if keepdims else np.squeeze(out, axis=axis)


REDUCTIONS: dict[str, tuple[Callable, str]] = {
    # name: (fn(x, axis, keepdims) -> array, summary)
    "graph.reduce_sum": (lambda x, axis, keepdims: np.sum(_accumulate(x), axis=axis, keepdims=keepdims), "Sum over `axes`."),
    "graph.reduce_mean": (lambda x, axis, keepdims: np.mean(_accumulate(x), axis=axis, keepdims=keepdims), "Mean over `axes`."),
    "graph.reduce_max": (lambda x, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims, initial=_lowest(x.dtype)),
                         "Maximum over `axes` (NaN propagates; -inf for an empty set)."),
    "graph.reduce_min": (lambda x, axis, keepdims: np.min(x, axis=axis, keepdims=keepdims, initial=_highest(x.dtype)),
                         "Minimum over `axes` (NaN propagates; +inf for an empty set)."),
    "graph.reduce_prod": (lambda x, axis, keepdims: np.prod(_accumulate(x), axis=axis, keepdims=keepdims), "Product over `axes`."),
    "graph.reduce_l1": (lambda x, axis, keepdims: np.sum(np.abs(_accumulate(x)), axis=axis, keepdims=keepdims), "Sum of |x|."),
    "graph.reduce_l2": (lambda x, axis, keepdims: np.sqrt(np.sum(np.square(_accumulate(x).astype(np.float64)), axis=axis, keepdims=keepdims)),
                        "Square root of the sum of squares."),
    "graph.reduce_sum_square": (lambda x, axis, keepdims: np.sum(np.square(_accumulate(x)), axis=axis, keepdims=keepdims), "Sum of squares."),
    "graph.reduce_log_sum": (lambda x, axis, keepdims: np.log(np.sum(_accumulate(x), axis=axis, keepdims=keepdims)), "log of the sum."),
    "graph.reduce_log_sum_exp": (_log_sum_exp, "log(sum(e^x)), computed stably."),
}


def define_reduction(name: str, fn: Callable, summary: str) -> type[OpDef]:
    def infer(types, attrs):
        x = tensor_operand(types, 0)
        return [x.with_shape(reduced_shape(x.shape, attrs["axes"], attrs["keepdims"]))]

    cls = type(name.split(".")[1].title().replace("_", ""), (OpDef,), {
        "name": name,
        "summary": summary,
        "operands": ("input",),
        "attributes": (Attr("axes", DenseArrayAttr), Attr("keepdims", BoolAttr, True)),
        "traits": PURE,
        "infer": staticmethod(infer),
    })
    graph.op(cls)

    def reference(x, *, axes, keepdims):
        axis = tuple(sorted(a % max(x.ndim, 1) for a in axes))
        with np.errstate(all="ignore"):
            out = np.asarray(fn(x, axis, keepdims))
        if x.dtype.kind in "iu" and out.dtype.kind == "f":
            out = np.trunc(out)
        return out.astype(x.dtype)

    impl(cls)(reference)
    return cls


for _name, (_fn, _summary) in REDUCTIONS.items():
    define_reduction(_name, _fn, _summary)


# -- argmax / argmin ------------------------------------------------------------------------

def define_arg_reduction(name: str, fn: Callable, summary: str) -> type[OpDef]:
    def infer(types, attrs):
        x = tensor_operand(types, 0)
        return [TensorType(reduced_shape(x.shape, [attrs["axis"]], attrs["keepdims"]), i64)]

    cls = type(name.split(".")[1].title(), (OpDef,), {
        "name": name,
        "summary": summary,
        "operands": ("input",),
        "attributes": (Attr("axis", IntAttr, 0), Attr("keepdims", BoolAttr, True), Attr("select_last_index", BoolAttr, False)),
        "traits": PURE,
        "infer": staticmethod(infer),
    })
    graph.op(cls)

    def reference(x, *, axis, keepdims, select_last_index):
        axis = axis % x.ndim
        if select_last_index:
            flipped = np.flip(x, axis)
            out = x.shape[axis] - 1 - fn(flipped, axis=axis)
        else:
            out = fn(x, axis=axis)
        out = np.asarray(out, np.int64)
        return np.expand_dims(out, axis) if keepdims else out

    impl(cls)(reference)
    return cls


define_arg_reduction("graph.argmax", np.argmax, "Index of the first (or last) maximum along `axis`, as i64.")
define_arg_reduction("graph.argmin", np.argmin, "Index of the first (or last) minimum along `axis`, as i64.")


# -- softmax family -----------------------------------------------------------------------

def define_axis_op(name: str, fn: Callable, summary: str) -> type[OpDef]:
    def infer(types, attrs):
        x = tensor_operand(types, 0)
        normalize_axis(attrs["axis"], x.rank)
        if not x.element.is_float:
            raise InferError(f"expects a floating-point operand, got {x.element}")
        return [x]

    cls = type(name.split(".")[1].title().replace("_", ""), (OpDef,), {
        "name": name,
        "summary": summary,
        "operands": ("input",),
        "attributes": (Attr("axis", IntAttr, -1),),
        "traits": PURE,
        "infer": staticmethod(infer),
    })
    graph.op(cls)

    def reference(x, *, axis):
        with np.errstate(all="ignore"):
            return fn(_accumulate(x), axis % max(x.ndim, 1)).astype(x.dtype)

    impl(cls)(reference)
    return cls


def _softmax(x, axis):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax(x, axis):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _hardmax(x, axis):
    index = np.expand_dims(np.argmax(x, axis=axis), axis)
    out = np.zeros_like(x)
    np.put_along_axis(out, index, 1, axis=axis)
    return out


define_axis_op("graph.softmax", _softmax, "e^x / sum(e^x) along `axis`.")
define_axis_op("graph.log_softmax", _log_softmax, "log(softmax(x)) along `axis`, computed stably.")
define_axis_op("graph.hardmax", _hardmax, "1 at the first maximum along `axis`, 0 elsewhere.")


# -- scans --------------------------------------------------------------------------------

def define_scan(name: str, fn: Callable, identity: int, summary: str) -> type[OpDef]:
    def infer(types, attrs):
        x = tensor_operand(types, 0)
        normalize_axis(attrs["axis"], x.rank)
        return [x]

    cls = type(name.split(".")[1].title(), (OpDef,), {
        "name": name,
        "summary": summary,
        "operands": ("input",),
        "attributes": (Attr("axis", IntAttr), Attr("exclusive", BoolAttr, False), Attr("reverse", BoolAttr, False)),
        "traits": PURE,
        "infer": staticmethod(infer),
    })
    graph.op(cls)

    def reference(x, *, axis, exclusive, reverse):
        axis = axis % x.ndim
        data = np.flip(x, axis) if reverse else x
        out = fn(data, axis=axis, dtype=x.dtype)
        if exclusive:
            pad = np.full_like(np.take(out, [0], axis=axis), identity)
            out = np.concatenate([pad, np.take(out, np.arange(x.shape[axis] - 1), axis=axis)], axis=axis)
        return np.flip(out, axis) if reverse else out

    impl(cls)(reference)
    return cls


define_scan("graph.cumsum", np.cumsum, 0, "Running sum along `axis` (optionally exclusive and/or reversed).")
define_scan("graph.cumprod", np.cumprod, 1, "Running product along `axis` (optionally exclusive and/or reversed).")


@graph.op
class TopK(OpDef):
    name = "graph.topk"
    summary = "The k largest (or smallest) elements along `axis` and their indices (i64); ties keep the lower index first."
    operands = ("input",)
    num_results = 2
    attributes = (Attr("k", IntAttr), Attr("axis", IntAttr, -1), Attr("largest", BoolAttr, True), Attr("sorted", BoolAttr, True))
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x = tensor_operand(types, 0)
        axis = normalize_axis(attrs["axis"], x.rank)
        k = attrs["k"]
        if k < 0 or (x.shape[axis] is not None and k > x.shape[axis]):
            raise InferError(f"k = {k} is out of range for dimension {axis} of {x}")
        shape = x.shape[:axis] + (k,) + x.shape[axis + 1:]
        return [x.with_shape(shape), TensorType(shape, i64)]


@impl(TopK)
def _topk(x, *, k, axis, largest, sorted):
    axis = axis % x.ndim
    # Sort by (key, index): a stable sort of the negated key keeps equal elements in index order.
    key = x.astype(np.float64) if x.dtype.kind in "iub" else x
    key = -key if largest else key
    order = np.argsort(key, axis=axis, kind="stable")
    index = np.take(order, np.arange(k), axis=axis)
    return np.take_along_axis(x, index, axis=axis), index.astype(np.int64)
