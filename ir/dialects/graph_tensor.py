"""Data-movement ops of the `graph` dialect: concat, split, slice, gather/scatter, pad, tile,
broadcast_to, squeeze/unsqueeze, shape, range, trilu, one_hot, nonzero, einsum.

Index semantics follow ONNX: negative indices count from the end, slice bounds clamp, and
a few ops have data-dependent result sizes (`range`, `nonzero`: `?` dimensions).
"""

from __future__ import annotations

import math
import re

import numpy as np

from lutc.ir.attributes import BoolAttr, DenseArrayAttr, FloatAttr, IntAttr, StringAttr, TypeAttr
from lutc.ir.dialects.graph import broadcast_shapes, graph, normalize_axis, same_element, tensor_operand
from lutc.ir.opdef import Attr, InferError, OpDef, Trait, Variadic, impl
from lutc.ir.types import ElementType, TensorType, i64

PURE = {Trait.PURE}


def _check_indices(t: TensorType, what: str = "indices") -> None:
    if t.element.name not in ("i64", "i32"):
        raise InferError(f"{what} must be i32 or i64, got {t.element}")


def _normalize_indices(indices: np.ndarray, size: int) -> np.ndarray:
    indices = indices.astype(np.int64)
    return np.where(indices < 0, indices + size, indices)


# -- concat / split -------------------------------------------------------------------------


@graph.op
class Concat(OpDef):
    name = "graph.concat"
    summary = "Join tensors along `axis`."
    operands = (Variadic("inputs"),)
    attributes = (Attr("axis", IntAttr),)
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        tensors = [tensor_operand(types, i) for i in range(len(types))]
        if not tensors:
            raise InferError("needs at least one operand")
        element = same_element(tensors)
        rank = tensors[0].rank
        if any(t.rank != rank for t in tensors):
            raise InferError("operands must have the same rank")
        axis = normalize_axis(attrs["axis"], rank)
        shape = []
        for i in range(rank):
            dims = [t.shape[i] for t in tensors]
            if i == axis:
                shape.append(None if None in dims else sum(dims))
            else:
                known = {d for d in dims if d is not None}
                if len(known) > 1:
                    raise InferError(f"operands differ in dimension {i}: {sorted(known)}")
                shape.append(known.pop() if known else None)
        return [TensorType(tuple(shape), element)]


@impl(Concat)
def _concat(*arrays, axis):
    return np.concatenate(arrays, axis=axis)


@graph.op
class Split(OpDef):
    name = "graph.split"
    summary = "Split along `axis` into pieces of the given `sizes` (one result per size)."
    operands = ("input",)
    num_results = None
    attributes = (Attr("axis", IntAttr), Attr("sizes", DenseArrayAttr))
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x = tensor_operand(types, 0)
        axis = normalize_axis(attrs["axis"], x.rank)
        sizes = list(attrs["sizes"])
        if any(s < 0 for s in sizes) or (x.shape[axis] is not None and sum(sizes) != x.shape[axis]):
            raise InferError(f"sizes {sizes} do not add up to dimension {axis} of {x}")
        return [x.with_shape(x.shape[:axis] + (s,) + x.shape[axis + 1:]) for s in sizes]


@impl(Split)
def _split(x, *, axis, sizes):
    return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


# -- slicing and indexing -------------------------------------------------------------------


def slice_bounds(dim: int, start: int, end: int, step: int) -> tuple[int, int | None, int]:
    """ONNX Slice's clamping, as Python slice arguments."""
    if start < 0:
        start += dim
    if end < 0:
        end += dim
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
    else:
        start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    return start, (end if end >= 0 else None), step


@graph.op
class Slice(OpDef):
    name = "graph.slice"
    summary = "x[starts:ends:steps] along `axes`, with ONNX's clamping of out-of-range bounds."
    operands = ("input",)
    attributes = (Attr("starts", DenseArrayAttr), Attr("ends", DenseArrayAttr), Attr("axes", DenseArrayAttr), Attr("steps", DenseArrayAttr))
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x = tensor_operand(types, 0)
        starts, ends, axes, steps = (list(attrs[k]) for k in ("starts", "ends", "axes", "steps"))
        if not len(starts) == len(ends) == len(axes) == len(steps):
            raise InferError("starts, ends, axes and steps must have the same length")
        if any(s == 0 for s in steps):
            raise InferError("steps must be non-zero")
        shape = list(x.shape)
        seen = set()
        for start, end, axis, step in zip(starts, ends, axes, steps):
            axis = normalize_axis(axis, x.rank)
            if axis in seen:
                raise InferError(f"axis {axis} is sliced twice")
            seen.add(axis)
            if shape[axis] is not None:
                shape[axis] = len(range(shape[axis])[slice(*slice_bounds(shape[axis], start, end, step))])
        return [x.with_shape(shape)]


@impl(Slice)
def _slice(x, *, starts, ends, axes, steps):
    index = [slice(None)] * x.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis %= x.ndim
        index[axis] = slice(*slice_bounds(x.shape[axis], start, end, step))
    return x[tuple(index)]


@graph.op
class Gather(OpDef):
    name = "graph.gather"
    summary = "Take entries of `input` along `axis` at `indices` (negative indices count from the end)."
    operands = ("input", "indices")
    attributes = (Attr("axis", IntAttr, 0),)
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x, idx = tensor_operand(types, 0), tensor_operand(types, 1)
        _check_indices(idx)
        axis = normalize_axis(attrs["axis"], x.rank)
        return [x.with_shape(x.shape[:axis] + idx.shape + x.shape[axis + 1:])]


@impl(Gather)
def _gather(x, indices, *, axis):
    axis %= x.ndim
    return np.take(x, _normalize_indices(indices, x.shape[axis]), axis=axis)


@graph.op
class GatherElements(OpDef):
    name = "graph.gather_elements"
    summary = "out[i][j][k] = input[i][indices[i][j][k]][k] for axis 1 (numpy take_along_axis)."
    operands = ("input", "indices")
    attributes = (Attr("axis", IntAttr, 0),)
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x, idx = tensor_operand(types, 0), tensor_operand(types, 1)
        _check_indices(idx)
        if idx.rank != x.rank:
            raise InferError(f"indices must have the input's rank {x.rank}, got {idx}")
        normalize_axis(attrs["axis"], x.rank)
        return [idx.with_element(x.element)]


@impl(GatherElements)
def _gather_elements(x, indices, *, axis):
    axis %= x.ndim
    return np.take_along_axis(x, _normalize_indices(indices, x.shape[axis]), axis=axis)


@graph.op
class GatherNd(OpDef):
    name = "graph.gather_nd"
    summary = "Gather slices of `input` addressed by the last dimension of `indices` (after `batch_dims`)."
    operands = ("input", "indices")
    attributes = (Attr("batch_dims", IntAttr, 0),)
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x, idx = tensor_operand(types, 0), tensor_operand(types, 1)
        _check_indices(idx)
        b = attrs["batch_dims"]
        if idx.rank < 1 or idx.shape[-1] is None:
            raise InferError(f"indices must have a static last dimension, got {idx}")
        r = idx.shape[-1]
        if b + r > x.rank:
            raise InferError(f"indices address {r} dims after {b} batch dims of {x}")
        return [x.with_shape(idx.shape[:-1] + x.shape[b + r:])]


@impl(GatherNd)
def _gather_nd(x, indices, *, batch_dims):
    b, r = batch_dims, indices.shape[-1]
    batch = math.prod(x.shape[:b])
    data = x.reshape((batch,) + x.shape[b:])
    idx = indices.reshape((batch, -1, r)).astype(np.int64)
    idx = np.where(idx < 0, idx + np.array(x.shape[b : b + r]), idx)
    out = np.stack([data[i][tuple(idx[i].T)] for i in range(batch)]) if batch else np.zeros((0,) + x.shape[b + r:], x.dtype)
    return out.reshape(indices.shape[:-1] + x.shape[b + r:])


REDUCTIONS = ("none", "add", "mul", "max", "min")
_SCATTER_UFUNC = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


@graph.op
class ScatterElements(OpDef):
    name = "graph.scatter_elements"
    summary = "A copy of `input` with updates[i][j] written (or reduced) at input[indices[i][j]][j] for axis 0."
    operands = ("input", "indices", "updates")
    attributes = (Attr("axis", IntAttr, 0), Attr("reduction", StringAttr, "none", REDUCTIONS))
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x, idx, upd = (tensor_operand(types, i) for i in range(3))
        _check_indices(idx)
        same_element([x, upd])
        if idx.rank != x.rank or upd.shape != idx.shape:
            raise InferError(f"indices and updates must have the same shape and the input's rank, got {idx} and {upd}")
        normalize_axis(attrs["axis"], x.rank)
        return [x]


@impl(ScatterElements)
def _scatter_elements(x, indices, updates, *, axis, reduction):
    axis %= x.ndim
    out = x.copy()
    index = list(np.indices(indices.shape, sparse=False))
    index[axis] = _normalize_indices(indices, x.shape[axis])
    if reduction == "none":
        out[tuple(index)] = updates
    else:
        _SCATTER_UFUNC[reduction].at(out, tuple(index), updates)
    return out


@graph.op
class ScatterNd(OpDef):
    name = "graph.scatter_nd"
    summary = "A copy of `input` with slices `updates` written (or reduced) at the positions in `indices`."
    operands = ("input", "indices", "updates")
    attributes = (Attr("reduction", StringAttr, "none", REDUCTIONS),)
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x, idx, upd = (tensor_operand(types, i) for i in range(3))
        _check_indices(idx)
        same_element([x, upd])
        return [x]


@impl(ScatterNd)
def _scatter_nd(x, indices, updates, *, reduction):
    out = x.copy()
    r = indices.shape[-1]
    idx = indices.reshape(-1, r).astype(np.int64)
    idx = np.where(idx < 0, idx + np.array(x.shape[:r]), idx)
    upd = updates.reshape((idx.shape[0],) + x.shape[r:])
    if reduction == "none":
        out[tuple(idx.T)] = upd
    else:
        _SCATTER_UFUNC[reduction].at(out, tuple(idx.T), upd)
    return out


# -- padding, tiling, broadcasting, rank changes ------------------------------------------------

PAD_MODES = ("constant", "reflect", "edge", "wrap")


@graph.op
class Pad(OpDef):
    name = "graph.pad"
    summary = "Pad (or, for negative pads, crop) each dim: `pads` = begins of every dim, then ends."
    operands = ("input",)
    attributes = (Attr("pads", DenseArrayAttr), Attr("mode", StringAttr, "constant", PAD_MODES), Attr("value", FloatAttr, 0.0))
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x = tensor_operand(types, 0)
        pads = list(attrs["pads"])
        if len(pads) != 2 * x.rank:
            raise InferError(f"pads must have {2 * x.rank} entries (begin and end of each dim), got {len(pads)}")
        shape = tuple(None if d is None else d + pads[i] + pads[i + x.rank] for i, d in enumerate(x.shape))
        if any(d is not None and d < 0 for d in shape):
            raise InferError(f"pads {pads} crop {x} below size 0")
        return [x.with_shape(shape)]


@impl(Pad)
def _pad(x, *, pads, mode, value):
    r = x.ndim
    crop = tuple(slice(max(0, -pads[i]), x.shape[i] - max(0, -pads[i + r])) for i in range(r))
    x = x[crop]
    widths = [(max(0, pads[i]), max(0, pads[i + r])) for i in range(r)]
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=np.asarray(value).astype(x.dtype))
    return np.pad(x, widths, mode=mode)


@graph.op
class Tile(OpDef):
    name = "graph.tile"
    summary = "Repeat the tensor `repeats[i]` times along each dim i."
    operands = ("input",)
    attributes = (Attr("repeats", DenseArrayAttr),)
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x = tensor_operand(types, 0)
        reps = list(attrs["repeats"])
        if len(reps) != x.rank or any(r < 0 for r in reps):
            raise InferError(f"repeats must have {x.rank} non-negative entries, got {reps}")
        return [x.with_shape(None if d is None else d * r for d, r in zip(x.shape, reps))]


@impl(Tile)
def _tile(x, *, repeats):
    return np.tile(x, repeats)


@graph.op
class BroadcastTo(OpDef):
    name = "graph.broadcast_to"
    summary = "Broadcast to `shape` (NumPy rules)."
    operands = ("input",)
    attributes = (Attr("shape", DenseArrayAttr),)
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x = tensor_operand(types, 0)
        shape = tuple(attrs["shape"])
        if broadcast_shapes(x.shape, shape) != shape and not any(d is None for d in x.shape):
            raise InferError(f"{x} does not broadcast to {list(shape)}")
        return [x.with_shape(shape)]


@impl(BroadcastTo)
def _broadcast_to(x, *, shape):
    return np.broadcast_to(x, shape).copy()


@graph.op
class Squeeze(OpDef):
    name = "graph.squeeze"
    summary = "Remove the size-1 dims `axes`."
    operands = ("input",)
    attributes = (Attr("axes", DenseArrayAttr),)
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x = tensor_operand(types, 0)
        axes = {normalize_axis(a, x.rank) for a in attrs["axes"]}
        if any(x.shape[a] not in (1, None) for a in axes):
            raise InferError(f"cannot squeeze dims {sorted(axes)} of {x}: not all have size 1")
        return [x.with_shape(d for i, d in enumerate(x.shape) if i not in axes)]


@impl(Squeeze)
def _squeeze(x, *, axes):
    return np.squeeze(x, axis=tuple(a % x.ndim for a in axes))


@graph.op
class Unsqueeze(OpDef):
    name = "graph.unsqueeze"
    summary = "Insert size-1 dims at positions `axes` of the result."
    operands = ("input",)
    attributes = (Attr("axes", DenseArrayAttr),)
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x = tensor_operand(types, 0)
        rank = x.rank + len(attrs["axes"])
        axes = {normalize_axis(a, rank) for a in attrs["axes"]}
        if len(axes) != len(attrs["axes"]):
            raise InferError(f"axes {list(attrs['axes'])} repeat a dim")
        dims = iter(x.shape)
        return [x.with_shape(1 if i in axes else next(dims) for i in range(rank))]


@impl(Unsqueeze)
def _unsqueeze(x, *, axes):
    rank = x.ndim + len(axes)
    return np.expand_dims(x, tuple(sorted(a % rank for a in axes)))


# -- shapes and generated tensors -------------------------------------------------------------


@graph.op
class Shape(OpDef):
    name = "graph.shape"
    summary = "The dims start..end of the input's shape, as a 1-D i64 tensor."
    operands = ("input",)
    attributes = (Attr("start", IntAttr, 0), Attr("end", IntAttr, None))
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x = tensor_operand(types, 0)
        return [TensorType((len(range(x.rank)[attrs["start"] : attrs["end"]]),), i64)]


@impl(Shape)
def _shape(x, *, start, end):
    return np.array(x.shape[start:end], np.int64)


@graph.op
class Range(OpDef):
    name = "graph.range"
    summary = "start, start + delta, ... up to (excluding) limit; one-element operands, a data-dependent length."
    operands = ("start", "limit", "delta")
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        tensors = [tensor_operand(types, i) for i in range(3)]
        element = same_element(tensors)
        if any(t.shape not in ((), (1,)) for t in tensors):
            raise InferError("start, limit and delta must be scalars (or one-element vectors)")
        return [TensorType((None,), element)]


@impl(Range)
def _range(start, limit, delta):
    start, limit, delta = (np.asarray(v).reshape(()) for v in (start, limit, delta))
    n = max(int(np.ceil((float(limit) - float(start)) / float(delta))), 0)
    return (start + np.arange(n).astype(start.dtype) * delta).astype(start.dtype)


@graph.op
class Trilu(OpDef):
    name = "graph.trilu"
    summary = "Keep the upper (or lower) triangle of the last two dims, from diagonal `k`; zero the rest."
    operands = ("input",)
    attributes = (Attr("upper", BoolAttr, True), Attr("k", IntAttr, 0))
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x = tensor_operand(types, 0)
        if x.rank < 2:
            raise InferError(f"expects rank >= 2, got {x}")
        return [x]


@impl(Trilu)
def _trilu(x, *, upper, k):
    return np.triu(x, k) if upper else np.tril(x, k)


@graph.op
class OneHot(OpDef):
    name = "graph.one_hot"
    summary = "values[1] where the new `axis` index equals indices (negative: from depth), values[0] elsewhere."
    operands = ("indices", "values")
    attributes = (Attr("depth", IntAttr), Attr("axis", IntAttr, -1))
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        idx, values = tensor_operand(types, 0), tensor_operand(types, 1)
        if values.shape not in ((2,), (None,)):
            raise InferError(f"values must be [off, on], got {values}")
        axis = normalize_axis(attrs["axis"], idx.rank + 1)
        return [TensorType(idx.shape[:axis] + (attrs["depth"],) + idx.shape[axis:], values.element)]


@impl(OneHot)
def _one_hot(indices, values, *, depth, axis):
    idx = indices.astype(np.float64)
    idx = np.where(idx < 0, idx + depth, idx).astype(np.int64)
    axis %= indices.ndim + 1
    hot = np.expand_dims(idx, axis) == np.arange(depth).reshape([-1 if i == axis else 1 for i in range(indices.ndim + 1)])
    return np.where(hot, values[1], values[0]).astype(values.dtype)


@graph.op
class NonZero(OpDef):
    name = "graph.nonzero"
    summary = "Indices of the non-zero elements, one row per dim (rank x count, i64)."
    operands = ("input",)
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        return [TensorType((tensor_operand(types, 0).rank, None), i64)]


@impl(NonZero)
def _nonzero(x):
    return np.array(np.nonzero(x), dtype=np.int64).reshape(x.ndim, -1)


# -- einsum -------------------------------------------------------------------------------

EINSUM_TERM = re.compile(r"^(?:[A-Za-z]|\.\.\.)*$")


def einsum_shape(equation: str, shapes: list[tuple]) -> tuple:
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes) or not all(EINSUM_TERM.match(t) for t in terms + [rhs]):
        raise InferError(f"equation '{equation}' does not fit {len(shapes)} operand(s)")
    sizes: dict[str, int | None] = {}
    ellipsis: tuple = ()
    for term, shape in zip(terms, shapes):
        letters = term.replace("...", "")
        n_ell = len(shape) - len(letters)
        if ("..." in term and n_ell < 0) or ("..." not in term and n_ell != 0):
            raise InferError(f"term '{term}' does not fit an operand of rank {len(shape)}")
        head, _, tail = term.partition("...")
        dims = list(shape)
        ell = tuple(dims[len(head) : len(head) + n_ell]) if "..." in term else ()
        named = dims[: len(head)] + (dims[len(head) + n_ell:] if "..." in term else [])
        ellipsis = broadcast_shapes(ellipsis, ell) if ell or ellipsis else ()
        for letter, d in zip(head + tail, named):
            known = sizes.get(letter)
            if known not in (None, 1) and d not in (None, 1) and known != d:
                raise InferError(f"index '{letter}' has sizes {known} and {d}")
            if known in (None, 1):
                sizes[letter] = d if known is None or d != 1 else known
    if not arrow:
        counts = {c: lhs.replace("...", "").count(c) for c in set(lhs.replace("...", "").replace(",", ""))}
        rhs = ("..." if "..." in lhs else "") + "".join(sorted(c for c, n in counts.items() if n == 1))
    head, _, tail = rhs.partition("...")
    return tuple(sizes[c] for c in head) + (ellipsis if "..." in rhs else ()) + tuple(sizes[c] for c in tail)


@graph.op
class Einsum(OpDef):
    name = "graph.einsum"
    summary = "Einstein summation over the operands, as numpy.einsum."
    operands = (Variadic("inputs"),)
    attributes = (Attr("equation", StringAttr),)
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        tensors = [tensor_operand(types, i) for i in range(len(types))]
        element = same_element(tensors)
        return [TensorType(einsum_shape(attrs["equation"], [t.shape for t in tensors]), element)]


@impl(Einsum)
def _einsum(*arrays, equation):
    wide = [a.astype(np.float32) if a.dtype.itemsize < 4 and a.dtype.kind != "b" and a.dtype.kind not in "iu" else a for a in arrays]
    return np.asarray(np.einsum(equation.replace(" ", ""), *wide)).astype(arrays[0].dtype)


# -- reinterpretation, selection, sequences, determinants ------------------------------------------


@graph.op
class Bitcast(OpDef):
    name = "graph.bitcast"
    summary = "Reinterpret the bits of each element as element type `to` (same bit width)."
    operands = ("input",)
    attributes = (Attr("to", TypeAttr),)
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x, to = tensor_operand(types, 0), attrs["to"]
        bits = lambda e: 8 if e.is_bool else e.bitwidth  # noqa: E731  (an i1 is stored in a byte)
        if not isinstance(to, ElementType) or bits(to) != bits(x.element) or bits(to) < 8:
            raise InferError(f"cannot bitcast {x.element} to {to}: the bit widths differ (or are below 8)")
        return [x.with_element(to)]


@impl(Bitcast)
def _bitcast(x, *, to):
    return x.view(to.np_dtype)


@graph.op
class Compress(OpDef):
    name = "graph.compress"
    summary = "The slices along `axis` (of the flattened input without one) whose condition is true; a data-dependent size."
    operands = ("input", "condition")
    attributes = (Attr("axis", IntAttr, None),)
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x, cond = tensor_operand(types, 0), tensor_operand(types, 1)
        if not cond.element.is_bool or cond.rank != 1:
            raise InferError(f"condition must be a 1-D i1 tensor, got {cond}")
        if attrs["axis"] is None:
            return [TensorType((None,), x.element)]
        axis = normalize_axis(attrs["axis"], x.rank)
        return [x.with_shape(x.shape[:axis] + (None,) + x.shape[axis + 1:])]


@impl(Compress)
def _compress(x, condition, *, axis):
    return np.compress(condition, x, axis=axis)


@graph.op
class ReverseSequence(OpDef):
    name = "graph.reverse_sequence"
    summary = "Reverse the first seq_lens[b] entries along `time_axis` of each batch entry b (along `batch_axis`)."
    operands = ("input", "seq_lens")
    attributes = (Attr("batch_axis", IntAttr, 1), Attr("time_axis", IntAttr, 0))
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x, lens = tensor_operand(types, 0), tensor_operand(types, 1)
        _check_indices(lens, "seq_lens")
        return [x]


@impl(ReverseSequence)
def _reverse_sequence(x, seq_lens, *, batch_axis, time_axis):
    out = x.copy()
    for b, n in enumerate(seq_lens.tolist()):
        index = [slice(None)] * x.ndim
        index[batch_axis] = b
        index[time_axis] = slice(0, n)
        out[tuple(index)] = np.flip(x[tuple(index)], axis=time_axis - (batch_axis < time_axis))
    return out


@graph.op
class Det(OpDef):
    name = "graph.det"
    summary = "Determinant of each square matrix in the last two dims."
    operands = ("input",)
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x = tensor_operand(types, 0)
        if x.rank < 2 or not x.element.is_float:
            raise InferError(f"expects floating-point matrices (rank >= 2), got {x}")
        return [x.with_shape(x.shape[:-2])]


@impl(Det)
def _det(x):
    return np.linalg.det(x.astype(np.float64)).astype(x.dtype)


@graph.op
class Unique(OpDef):
    name = "graph.unique"
    summary = ("Unique values (slices along `axis`), sorted or in order of first occurrence; with the index of each one's "
               "first occurrence, each element's index into the result, and the counts (i64). Data-dependent sizes.")
    operands = ("input",)
    num_results = 4
    attributes = (Attr("axis", IntAttr, None), Attr("sorted", BoolAttr, True))
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x = tensor_operand(types, 0)
        if attrs["axis"] is None:
            values = TensorType((None,), x.element)
            n_inverse = None if not x.is_static else x.num_elements
        else:
            axis = normalize_axis(attrs["axis"], x.rank)
            values = x.with_shape(x.shape[:axis] + (None,) + x.shape[axis + 1:])
            n_inverse = x.shape[axis]
        return [values, TensorType((None,), i64), TensorType((n_inverse,), i64), TensorType((None,), i64)]


@impl(Unique)
def _unique(x, *, axis, sorted):
    values, first, inverse, counts = np.unique(x, return_index=True, return_inverse=True, return_counts=True, axis=axis)
    inverse = inverse.reshape(-1)
    if not sorted:  # order by first occurrence
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        values = np.take(values, order, axis=0 if axis is None else axis)
        first, counts, inverse = first[order], counts[order], rank[inverse]
    return values, first.astype(np.int64), inverse.astype(np.int64), counts.astype(np.int64)
