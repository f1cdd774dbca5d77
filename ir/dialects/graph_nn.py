"""Neural-network ops of the `graph` dialect: convolutions, pooling, normalizations and
(de)quantization, channels-first (NCHW) as ONNX and PyTorch lay them out.

Spatial ops come in 1-D, 2-D and 3-D variants (`graph.conv2d`, `graph.max_pool1d`, ...) that
share one N-d definition and reference. Padding is explicit: `pads` lists the begin pads of
every spatial axis, then the end pads (ONNX order); `auto_pad` is resolved by the importer.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lutc.ir.attributes import BoolAttr, DenseArrayAttr, FloatAttr, IntAttr, StringAttr, TypeAttr
from lutc.ir.dialects.graph import cast_array, graph, normalize_axis, same_element, tensor_operand
from lutc.ir.dialects.graph_reduce import is_float_dtype
from lutc.ir.opdef import Attr, InferError, OpDef, Optional, Trait, impl
from lutc.ir.types import ElementType, TensorType

PURE = {Trait.PURE}
SPATIAL_RANKS = (1, 2, 3)


def _wide(x: np.ndarray) -> np.ndarray:
    """Compute narrow floats in float32 and integers in float64 (exact up to 2^53)."""
    if x.dtype.itemsize < 4 and is_float_dtype(x.dtype):
        return x.astype(np.float32)
    if not is_float_dtype(x.dtype):
        return x.astype(np.float64)
    return x


def _spatial_attrs(attrs: dict[str, Any], d: int, kernel: tuple) -> tuple[list, list, list, list]:
    """strides, pads begin, pads end, dilations, checked against `d` spatial axes."""
    strides = list(attrs["strides"]) or [1] * d
    dilations = list(attrs["dilations"]) or [1] * d
    pads = list(attrs["pads"]) or [0] * (2 * d)
    if len(strides) != d or len(dilations) != d or len(pads) != 2 * d:
        raise InferError(f"strides, dilations and pads must have {d}, {d} and {2 * d} entries")
    if any(s <= 0 for s in strides) or any(x <= 0 for x in dilations) or any(p < 0 for p in pads):
        raise InferError("strides and dilations must be positive and pads non-negative")
    return strides, pads[:d], pads[d:], dilations


def window_out_size(size, kernel, stride, pad_begin, pad_end, dilation, ceil_mode=False):
    """Output length of a sliding window (ONNX: in ceil mode, the last window must start inside)."""
    if size is None or kernel is None:
        return None
    span = size + pad_begin + pad_end - ((kernel - 1) * dilation + 1)
    if span < 0:
        raise InferError(f"window of {kernel} (dilation {dilation}) does not fit in {size} + pads")
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


def _windows(xp: np.ndarray, kernel, strides, dilations, out):
    """For each kernel offset, the strided view of `xp` (…, *spatial) it sees: yields (offset, view)."""
    d = len(kernel)
    lead = (slice(None),) * (xp.ndim - d)
    for k in np.ndindex(*kernel):
        index = tuple(slice(k[i] * dilations[i], k[i] * dilations[i] + strides[i] * (out[i] - 1) + 1, strides[i]) for i in range(d))
        yield k, xp[lead + index]


# -- convolution ----------------------------------------------------------------------------

CONV_ATTRS = (
    Attr("strides", DenseArrayAttr, []),
    Attr("pads", DenseArrayAttr, []),
    Attr("dilations", DenseArrayAttr, []),
    Attr("groups", IntAttr, 1),
)


def define_conv(d: int) -> type[OpDef]:
    def infer(types, attrs):
        x, w = tensor_operand(types, 0), tensor_operand(types, 1)
        element = same_element([x, w] + ([tensor_operand(types, 2)] if len(types) > 2 else []))
        if x.rank != d + 2 or w.rank != d + 2:
            raise InferError(f"input and weight must have rank {d + 2} (N, C, {d} spatial), got {x} and {w}")
        groups = attrs["groups"]
        strides, pb, pe, dil = _spatial_attrs(attrs, d, w.shape[2:])
        c, m, cg = x.shape[1], w.shape[0], w.shape[1]
        if groups <= 0 or (m is not None and m % groups) or (c is not None and cg is not None and c != cg * groups):
            raise InferError(f"{c} input channels and {m} filters do not split into {groups} groups of {cg} channels")
        if len(types) > 2 and tensor_operand(types, 2).shape not in ((m,), (None,)):
            raise InferError(f"bias must have shape [{m}], got {types[2]}")
        spatial = tuple(window_out_size(x.shape[2 + i], w.shape[2 + i], strides[i], pb[i], pe[i], dil[i]) for i in range(d))
        return [TensorType((x.shape[0], m) + spatial, element)]

    cls = type(f"Conv{d}d", (OpDef,), {
        "name": f"graph.conv{d}d",
        "summary": f"{d}-D convolution, channels first: input (N, C, ...), weight (M, C/groups, ...), optional bias (M).",
        "operands": ("input", "weight", Optional("bias")),
        "attributes": CONV_ATTRS,
        "traits": PURE,
        "infer": staticmethod(infer),
    })
    graph.op(cls)
    impl(cls)(conv_reference)
    return cls


def conv_reference(x, w, b=None, *, strides, pads, dilations, groups):
    d = x.ndim - 2
    kernel = w.shape[2:]
    strides, pb, pe, dil = list(strides) or [1] * d, list(pads[:d]) or [0] * d, list(pads[d:]) or [0] * d, list(dilations) or [1] * d
    xp = np.pad(_wide(x), [(0, 0), (0, 0)] + list(zip(pb, pe)))
    out = [window_out_size(x.shape[2 + i], kernel[i], strides[i], pb[i], pe[i], dil[i]) for i in range(d)]
    n, c, m = x.shape[0], x.shape[1], w.shape[0]
    cg, mg = c // groups, m // groups
    xg = xp.reshape((n, groups, cg) + xp.shape[2:])
    wg = _wide(w).reshape((groups, mg, cg) + tuple(kernel))
    acc = np.zeros((groups, n * math.prod(out), mg), dtype=xp.dtype)
    for k, view in _windows(xg, kernel, strides, dil, out):
        patch = view.reshape(n, groups, cg, -1).transpose(1, 0, 3, 2).reshape(groups, -1, cg)
        acc += patch @ wg[(slice(None),) * 3 + k].transpose(0, 2, 1)
    y = acc.reshape(groups, n, -1, mg).transpose(1, 0, 3, 2).reshape((n, m) + tuple(out))
    if b is not None:
        y = y + _wide(b).reshape((1, m) + (1,) * d)
    return y.astype(x.dtype)


def define_conv_transpose(d: int) -> type[OpDef]:
    def infer(types, attrs):
        x, w = tensor_operand(types, 0), tensor_operand(types, 1)
        element = same_element([x, w] + ([tensor_operand(types, 2)] if len(types) > 2 else []))
        if x.rank != d + 2 or w.rank != d + 2:
            raise InferError(f"input and weight must have rank {d + 2}, got {x} and {w}")
        groups = attrs["groups"]
        strides, pb, pe, dil = _spatial_attrs(attrs, d, w.shape[2:])
        out_pad = list(attrs["output_padding"]) or [0] * d
        if len(out_pad) != d:
            raise InferError(f"output_padding must have {d} entries")
        c, mg = x.shape[1], w.shape[1]
        if w.shape[0] is not None and c is not None and w.shape[0] != c:
            raise InferError(f"weight must have {c} input channels first, got {w}")
        m = None if mg is None else mg * groups
        spatial = []
        for i in range(d):
            size, k = x.shape[2 + i], w.shape[2 + i]
            if size is None or k is None:
                spatial.append(None)
                continue
            spatial.append(strides[i] * (size - 1) + out_pad[i] + (k - 1) * dil[i] + 1 - pb[i] - pe[i])
        return [TensorType((x.shape[0], m) + tuple(spatial), element)]

    cls = type(f"Conv{d}dTranspose", (OpDef,), {
        "name": f"graph.conv{d}d_transpose",
        "summary": f"{d}-D transposed convolution: input (N, C, ...), weight (C, M/groups, ...), optional bias (M).",
        "operands": ("input", "weight", Optional("bias")),
        "attributes": CONV_ATTRS + (Attr("output_padding", DenseArrayAttr, []),),
        "traits": PURE,
        "infer": staticmethod(infer),
    })
    graph.op(cls)
    impl(cls)(conv_transpose_reference)
    return cls


def conv_transpose_reference(x, w, b=None, *, strides, pads, dilations, groups, output_padding):
    d = x.ndim - 2
    kernel = w.shape[2:]
    strides, dil = list(strides) or [1] * d, list(dilations) or [1] * d
    pb, pe = list(pads[:d]) or [0] * d, list(pads[d:]) or [0] * d
    out_pad = list(output_padding) or [0] * d
    n, c, size = x.shape[0], x.shape[1], x.shape[2:]
    cg, mg = c // groups, w.shape[1]
    full = [(size[i] - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 + out_pad[i] for i in range(d)]
    acc = np.zeros((n, groups, mg) + tuple(full), dtype=_wide(x).dtype)
    xg = _wide(x).reshape((n, groups, cg) + tuple(size))
    wg = _wide(w).reshape((groups, cg, mg) + tuple(kernel))
    for k in np.ndindex(*kernel):
        contribution = np.einsum("ngc...,gcm->ngm...", xg, wg[(slice(None),) * 3 + k])
        index = tuple(slice(k[i] * dil[i], k[i] * dil[i] + strides[i] * (size[i] - 1) + 1, strides[i]) for i in range(d))
        acc[(slice(None),) * 3 + index] += contribution
    crop = tuple(slice(pb[i], full[i] - pe[i]) for i in range(d))
    y = acc[(slice(None),) * 3 + crop].reshape((n, groups * mg) + tuple(full[i] - pb[i] - pe[i] for i in range(d)))
    if b is not None:
        y = y + _wide(b).reshape((1, -1) + (1,) * d)
    return y.astype(x.dtype)


# -- pooling ------------------------------------------------------------------------------

POOL_ATTRS = (
    Attr("kernel", DenseArrayAttr),
    Attr("strides", DenseArrayAttr, []),
    Attr("pads", DenseArrayAttr, []),
    Attr("dilations", DenseArrayAttr, []),
    Attr("ceil_mode", BoolAttr, False),
)


def define_pool(kind: str, d: int, extra: tuple[Attr, ...], summary: str, reference) -> type[OpDef]:
    def infer(types, attrs):
        x = tensor_operand(types, 0)
        kernel = list(attrs["kernel"])
        if x.rank != d + 2 or len(kernel) != d:
            raise InferError(f"expects an (N, C, {d} spatial) input and a {d}-entry kernel, got {x} and {kernel}")
        strides, pb, pe, dil = _spatial_attrs(attrs, d, kernel)
        if any(k <= 0 for k in kernel):
            raise InferError(f"kernel sizes must be positive, got {kernel}")
        spatial = tuple(window_out_size(x.shape[2 + i], kernel[i], strides[i], pb[i], pe[i], dil[i], attrs["ceil_mode"]) for i in range(d))
        return [x.with_shape(x.shape[:2] + spatial)]

    cls = type(f"{kind.title().replace('_', '')}{d}d", (OpDef,), {
        "name": f"graph.{kind}{d}d",
        "summary": summary,
        "operands": ("input",),
        "attributes": POOL_ATTRS + extra,
        "traits": PURE,
        "infer": staticmethod(infer),
    })
    graph.op(cls)
    impl(cls)(reference)
    return cls


def _pool_geometry(x, kernel, strides, pads, dilations, ceil_mode):
    d = len(kernel)
    strides, dil = list(strides) or [1] * d, list(dilations) or [1] * d
    pb, pe = list(pads[:d]) or [0] * d, list(pads[d:]) or [0] * d
    size = x.shape[2:]
    out = [window_out_size(size[i], kernel[i], strides[i], pb[i], pe[i], dil[i], ceil_mode) for i in range(d)]
    # Ceil mode can let the last window run past the end padding: pad further (never counted).
    extra = [max(0, (out[i] - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - (size[i] + pb[i] + pe[i])) for i in range(d)]
    return strides, dil, pb, pe, extra, out


def max_pool_reference(x, *, kernel, strides, pads, dilations, ceil_mode):
    strides, dil, pb, pe, extra, out = _pool_geometry(x, kernel, strides, pads, dilations, ceil_mode)
    lowest = -np.inf if is_float_dtype(x.dtype) else np.iinfo(x.dtype).min
    xp = np.pad(x, [(0, 0), (0, 0)] + [(pb[i], pe[i] + extra[i]) for i in range(len(kernel))], constant_values=lowest)
    result = None
    for _, view in _windows(xp, kernel, strides, dil, out):
        result = view.copy() if result is None else np.maximum(result, view)
    return result.astype(x.dtype)


def _pool_counts(shape, kernel, strides, dil, pb, pe, extra, out, include_pad):
    """How many elements each window averages over."""
    d = len(kernel)
    mask = np.ones(tuple(shape), np.float64)
    if include_pad:  # padded positions count; positions past the end padding (ceil mode) do not
        mask = np.pad(mask, [(pb[i], pe[i]) for i in range(d)], constant_values=1.0)
        mask = np.pad(mask, [(0, extra[i]) for i in range(d)])
    else:
        mask = np.pad(mask, [(pb[i], pe[i] + extra[i]) for i in range(d)])
    counts = np.zeros(tuple(out))
    for _, view in _windows(mask, kernel, strides, dil, out):
        counts += view
    return counts


def avg_pool_reference(x, *, kernel, strides, pads, dilations, ceil_mode, count_include_pad):
    strides, dil, pb, pe, extra, out = _pool_geometry(x, kernel, strides, pads, dilations, ceil_mode)
    d = len(kernel)
    xp = np.pad(_wide(x), [(0, 0), (0, 0)] + [(pb[i], pe[i] + extra[i]) for i in range(d)])
    total = 0
    for _, view in _windows(xp, kernel, strides, dil, out):
        total = total + view
    counts = _pool_counts(x.shape[2:], kernel, strides, dil, pb, pe, extra, out, count_include_pad)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (total / counts).astype(x.dtype)


def lp_pool_reference(x, *, kernel, strides, pads, dilations, ceil_mode, p):
    strides, dil, pb, pe, extra, out = _pool_geometry(x, kernel, strides, pads, dilations, ceil_mode)
    d = len(kernel)
    xp = np.pad(np.abs(_wide(x)), [(0, 0), (0, 0)] + [(pb[i], pe[i] + extra[i]) for i in range(d)])
    total = 0
    for _, view in _windows(xp, kernel, strides, dil, out):
        total = total + view**p
    return (total ** (1.0 / p)).astype(x.dtype)


for _d in SPATIAL_RANKS:
    define_conv(_d)
    define_conv_transpose(_d)
    define_pool("max_pool", _d, (), f"{_d}-D max pooling (padding never wins).", max_pool_reference)
    define_pool("avg_pool", _d, (Attr("count_include_pad", BoolAttr, False),),
                f"{_d}-D average pooling (padding counted only with count_include_pad).", avg_pool_reference)
    define_pool("lp_pool", _d, (Attr("p", IntAttr, 2),), f"{_d}-D Lp pooling: (sum |x|^p)^(1/p) over each window.", lp_pool_reference)


# -- normalization ------------------------------------------------------------------------


@graph.op
class BatchNorm(OpDef):
    name = "graph.batch_norm"
    summary = "Inference batch normalization over channel dim 1: (x - mean) / sqrt(var + epsilon) * scale + bias."
    operands = ("input", "scale", "bias", "mean", "var")
    attributes = (Attr("epsilon", FloatAttr, 1e-5),)
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x = tensor_operand(types, 0)
        if x.rank < 2:
            raise InferError(f"input must have rank >= 2 (N, C, ...), got {x}")
        for i in range(1, 5):
            t = tensor_operand(types, i)
            if t.rank != 1 or (t.shape[0] is not None and x.shape[1] is not None and t.shape[0] != x.shape[1]):
                raise InferError(f"operand #{i} must have shape [{x.shape[1]}] (one per channel), got {t}")
        return [x]


@impl(BatchNorm)
def _batch_norm(x, scale, bias, mean, var, *, epsilon):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    r = lambda a: _wide(a).reshape(shape)  # noqa: E731
    return ((_wide(x) - r(mean)) / np.sqrt(r(var) + epsilon) * r(scale) + r(bias)).astype(x.dtype)


def _normalized_axes(x: TensorType, axis: int) -> tuple[int, ...]:
    return tuple(range(normalize_axis(axis, x.rank), x.rank))


@graph.op
class LayerNorm(OpDef):
    name = "graph.layer_norm"
    summary = "Normalize over dims axis..rank-1 to mean 0 and variance 1, then * scale (+ bias)."
    operands = ("input", "scale", Optional("bias"))
    attributes = (Attr("axis", IntAttr, -1), Attr("epsilon", FloatAttr, 1e-5))
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x = tensor_operand(types, 0)
        same_element([tensor_operand(types, i) for i in range(len(types))])
        _normalized_axes(x, attrs["axis"])
        if not x.element.is_float:
            raise InferError(f"expects floating-point operands, got {x.element}")
        return [x]


@impl(LayerNorm)
def _layer_norm(x, scale, bias=None, *, axis, epsilon):
    axes = tuple(range(axis % x.ndim, x.ndim))
    wide = x.astype(np.float32) if x.dtype.itemsize < 4 else x
    mean = wide.mean(axis=axes, keepdims=True)
    var = np.square(wide - mean).mean(axis=axes, keepdims=True)
    y = (wide - mean) / np.sqrt(var + np.asarray(epsilon, wide.dtype)) * scale.astype(wide.dtype)
    if bias is not None:
        y = y + bias.astype(wide.dtype)
    return y.astype(x.dtype)


@graph.op
class RmsNorm(OpDef):
    name = "graph.rms_norm"
    summary = "x / sqrt(mean(x^2 over dims axis..rank-1) + epsilon) * scale."
    operands = ("input", "scale")
    attributes = (Attr("axis", IntAttr, -1), Attr("epsilon", FloatAttr, 1e-5))
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x = tensor_operand(types, 0)
        same_element([x, tensor_operand(types, 1)])
        _normalized_axes(x, attrs["axis"])
        if not x.element.is_float:
            raise InferError(f"expects floating-point operands, got {x.element}")
        return [x]


@impl(RmsNorm)
def _rms_norm(x, scale, *, axis, epsilon):
    axes = tuple(range(axis % x.ndim, x.ndim))
    wide = x.astype(np.float32) if x.dtype.itemsize < 4 else x
    rms = np.sqrt(np.square(wide).mean(axis=axes, keepdims=True) + np.asarray(epsilon, wide.dtype))
    return (wide / rms * scale.astype(wide.dtype)).astype(x.dtype)


@graph.op
class InstanceNorm(OpDef):
    name = "graph.instance_norm"
    summary = "Normalize each (n, c) over the spatial dims, then * scale[c] + bias[c]."
    operands = ("input", "scale", "bias")
    attributes = (Attr("epsilon", FloatAttr, 1e-5),)
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x = tensor_operand(types, 0)
        same_element([tensor_operand(types, i) for i in range(3)])
        if x.rank < 3:
            raise InferError(f"input must be (N, C, spatial...), got {x}")
        return [x]


@impl(InstanceNorm)
def _instance_norm(x, scale, bias, *, epsilon):
    axes = tuple(range(2, x.ndim))
    wide = _wide(x)
    mean = wide.mean(axis=axes, keepdims=True)
    var = np.square(wide - mean).mean(axis=axes, keepdims=True)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return ((wide - mean) / np.sqrt(var + epsilon) * _wide(scale).reshape(shape) + _wide(bias).reshape(shape)).astype(x.dtype)


@graph.op
class Lrn(OpDef):
    name = "graph.lrn"
    summary = "Local response normalization across channels: x / (bias + alpha/size * sum(x^2 over `size` channels))^beta."
    operands = ("input",)
    attributes = (Attr("size", IntAttr), Attr("alpha", FloatAttr, 1e-4), Attr("beta", FloatAttr, 0.75), Attr("bias", FloatAttr, 1.0))
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        return [tensor_operand(types, 0)]


@impl(Lrn)
def _lrn(x, *, size, alpha, beta, bias):
    wide = _wide(x)
    sq = np.square(wide)
    c = x.shape[1]
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    padded = np.pad(sq, [(0, 0), (lo, hi)] + [(0, 0)] * (x.ndim - 2))
    total = sum(padded[:, i : i + c] for i in range(size))
    return (wide / (bias + alpha / size * total) ** beta).astype(x.dtype)


# -- quantization -------------------------------------------------------------------------


def _per_tensor(param_shape: tuple, block_size: int) -> bool:
    return block_size == 0 and len(param_shape) <= 1 and param_shape in ((), (1,))


def _expand_quant_param(param: np.ndarray, x_shape: tuple, axis: int, block_size: int) -> np.ndarray:
    """A scale or zero point broadcast to x's shape: per tensor, per `axis`, or per block along `axis`."""
    if _per_tensor(param.shape, block_size):
        return param.reshape(())
    if block_size > 0:
        return np.repeat(param, block_size, axis=axis).take(np.arange(x_shape[axis]), axis=axis)
    shape = [1] * len(x_shape)
    shape[axis] = -1
    return param.reshape(shape)


def _quant_axis(x: TensorType, scale: TensorType, attrs) -> int:
    """The quantization axis, normalized (irrelevant, 0, for per-tensor parameters)."""
    if _per_tensor(scale.shape, attrs["block_size"]):
        return 0
    return normalize_axis(attrs["axis"], x.rank)


def _check_quant_param(x: TensorType, p: TensorType, axis: int, block_size: int, what: str) -> None:
    if _per_tensor(p.shape, block_size):
        return
    if block_size > 0:
        if p.rank != x.rank:
            raise InferError(f"blocked {what} must have the input's rank {x.rank}, got {p}")
        for i, (dx, dp) in enumerate(zip(x.shape, p.shape)):
            want = None if dx is None else (-(-dx // block_size) if i == axis else dx)
            if dp is not None and want is not None and dp != want:
                raise InferError(f"{what} {p} does not match input {x} with block_size {block_size} on axis {axis}")
    elif p.rank == 1 and p.shape[0] not in (1, None):
        if x.shape[axis] is not None and p.shape[0] != x.shape[axis]:
            raise InferError(f"per-axis {what} {p} must have {x.shape[axis]} entries (axis {axis} of {x})")
    elif p.rank > 1 or (p.rank == 1 and p.shape[0] is None):
        raise InferError(f"{what} must be a scalar, a vector along axis {axis}, or blocked; got {p}")


QUANT_ATTRS = (Attr("axis", IntAttr, 1), Attr("block_size", IntAttr, 0))


@graph.op
class Dequantize(OpDef):
    name = "graph.dequantize"
    summary = "(x - zero_point) * scale, per tensor, per `axis`, or per block of `block_size` along `axis`."
    operands = ("input", "scale", Optional("zero_point"))
    attributes = QUANT_ATTRS
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x, scale = tensor_operand(types, 0), tensor_operand(types, 1)
        if not scale.element.is_float:
            raise InferError(f"scale must be floating point, got {scale.element}")
        axis = _quant_axis(x, scale, attrs)
        _check_quant_param(x, scale, axis, attrs["block_size"], "scale")
        if len(types) > 2:
            zp = tensor_operand(types, 2)
            if zp.element != x.element or (zp.shape != scale.shape and not (_per_tensor(zp.shape, 0) and _per_tensor(scale.shape, 0))):
                raise InferError(f"zero_point must have the input's element type and the scale's shape, got {zp}")
        return [x.with_element(scale.element)]


@impl(Dequantize)
def _dequantize(x, scale, zero_point=None, *, axis, block_size):
    axis = axis % max(x.ndim, 1)
    s = _expand_quant_param(scale.astype(np.float32), x.shape, axis, block_size)
    z = 0 if zero_point is None else _expand_quant_param(zero_point.astype(np.float32), x.shape, axis, block_size)
    return ((x.astype(np.float32) - z) * s).astype(scale.dtype)


@graph.op
class Quantize(OpDef):
    name = "graph.quantize"
    summary = "saturate(round_half_even(x / scale) + zero_point) to integer type `to`, per tensor, axis or block."
    operands = ("input", "scale", Optional("zero_point"))
    attributes = QUANT_ATTRS + (Attr("to", TypeAttr),)
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x, scale = tensor_operand(types, 0), tensor_operand(types, 1)
        to = attrs["to"]
        if not isinstance(to, ElementType) or not to.is_int:
            raise InferError(f"'to' must be an integer element type, got {to}")
        axis = _quant_axis(x, scale, attrs)
        _check_quant_param(x, scale, axis, attrs["block_size"], "scale")
        if len(types) > 2 and tensor_operand(types, 2).element != to:
            raise InferError(f"zero_point must be {to}, got {types[2]}")
        return [x.with_element(to)]


@impl(Quantize)
def _quantize(x, scale, zero_point=None, *, axis, block_size, to):
    axis = axis % max(x.ndim, 1)
    s = _expand_quant_param(scale.astype(np.float32), x.shape, axis, block_size)
    z = 0 if zero_point is None else _expand_quant_param(zero_point.astype(np.float64), x.shape, axis, block_size)
    q = np.rint(x.astype(np.float32) / s).astype(np.float64) + z
    lo, hi = to.int_range()
    return cast_array(np.clip(q, lo, hi), to)


# -- resize -------------------------------------------------------------------------------

RESIZE_MODES = ("nearest", "linear", "cubic")
COORDINATE_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_crop_and_resize")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


@graph.op
class Resize(OpDef):
    """ONNX Resize, separable: each resized axis maps output index y to a source coordinate
    (`coordinate_transformation_mode`, with the axis' `scales` entry) and interpolates its
    neighbours (nearest, linear or cubic; `antialias` widens the kernel when shrinking)."""

    name = "graph.resize"
    summary = "Resize to `sizes` by nearest, linear or cubic interpolation (ONNX Resize semantics)."
    operands = ("input",)
    attributes = (
        Attr("sizes", DenseArrayAttr),
        Attr("scales", DenseArrayAttr),
        Attr("mode", StringAttr, "nearest", RESIZE_MODES),
        Attr("coordinate_transformation_mode", StringAttr, "half_pixel", COORDINATE_MODES),
        Attr("nearest_mode", StringAttr, "round_prefer_floor", NEAREST_MODES),
        Attr("cubic_coeff_a", FloatAttr, -0.75),
        Attr("exclude_outside", BoolAttr, False),
        Attr("extrapolation_value", FloatAttr, 0.0),
        Attr("antialias", BoolAttr, False),
        Attr("roi", DenseArrayAttr, []),
    )
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x = tensor_operand(types, 0)
        sizes, scales = list(attrs["sizes"]), list(attrs["scales"])
        if len(sizes) != x.rank or len(scales) != x.rank:
            raise InferError(f"sizes and scales must have {x.rank} entries, got {sizes} and {scales}")
        if attrs["roi"] and len(attrs["roi"]) != 2 * x.rank:
            raise InferError(f"roi must have {2 * x.rank} entries")
        if attrs["antialias"] and attrs["mode"] == "nearest":
            raise InferError("antialias needs mode linear or cubic")
        return [x.with_shape(sizes)]


def _resize_coefficients(mode: str, nearest_mode: str, a: float, antialias: bool):
    """coefficients(ratio, scale) of the kernel taps around a source coordinate."""

    def nearest(ratio, scale):
        if float(ratio).is_integer():
            return np.array([0.0, 1.0])
        take_ceil = {"round_prefer_floor": ratio > 0.5, "round_prefer_ceil": ratio >= 0.5, "floor": False, "ceil": True}[nearest_mode]
        return np.array([0.0, 1.0]) if take_ceil else np.array([1.0, 0.0])

    def linear(ratio, scale):
        if not antialias:
            return np.array([1 - ratio, ratio])
        scale = min(scale, 1.0)
        start = int(np.floor(-1 / scale) + 1)
        args = (np.arange(start, 2 - start) - ratio) * scale
        coeffs = np.clip(1 - np.abs(args), 0, 1)
        return coeffs / coeffs.sum()

    def cubic_kernel(x):
        x = abs(x)
        if x <= 1:
            return (a + 2) * x**3 - (a + 3) * x**2 + 1
        if x < 2:
            return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
        return 0.0

    def cubic(ratio, scale):
        if not antialias:
            return np.array([cubic_kernel(ratio + 1), cubic_kernel(ratio), cubic_kernel(1 - ratio), cubic_kernel(2 - ratio)])
        scale = min(scale, 1.0)
        start = int(np.floor(-2 / scale) + 1)
        coeffs = np.array([cubic_kernel(scale * (i - ratio)) for i in range(start, 2 - start)])
        return coeffs / coeffs.sum()

    return {"nearest": nearest, "linear": linear, "cubic": cubic}[mode]


def _source_coordinates(mode: str, y: np.ndarray, scale: float, in_len: int, out_len: int, roi) -> tuple[np.ndarray, np.ndarray | None]:
    out_width = scale * in_len
    if mode == "align_corners":
        return (np.zeros_like(y) if out_width == 1 else y * (in_len - 1) / (out_width - 1)), None
    if mode == "asymmetric":
        return y / scale, None
    if mode == "tf_crop_and_resize":
        start, end = roi
        x = np.full_like(y, (end - start) * (in_len - 1) / 2) if out_width == 1 else y * (end - start) * (in_len - 1) / (out_width - 1)
        x = x + start * (in_len - 1)
        return x, (x < 0) | (x > in_len - 1)
    if mode == "pytorch_half_pixel":
        return (np.full_like(y, -0.5) if out_width == 1 else (y + 0.5) / scale - 0.5), None
    if mode == "half_pixel_symmetric":
        offset = in_len / 2 * (1 - out_len / out_width)
        return offset + (y + 0.5) / scale - 0.5, None
    return (y + 0.5) / scale - 0.5, None  # half_pixel


def resize_axis_weights(in_len: int, out_len: int, scale: float, attrs: dict, roi) -> tuple[np.ndarray, np.ndarray | None]:
    """(out_len x in_len) interpolation weights along one axis, and the rows to extrapolate."""
    y = np.arange(out_len, dtype=np.float64)
    x, outside = _source_coordinates(attrs["coordinate_transformation_mode"], y, scale, in_len, out_len, roi)
    coefficients = _resize_coefficients(attrs["mode"], attrs["nearest_mode"], attrs["cubic_coeff_a"], attrs["antialias"])
    weights = np.zeros((out_len, in_len))
    for i in range(out_len):
        floor = np.floor(x[i])
        ratio = 1.0 if x[i] == floor else x[i] - floor  # an exact hit uses the left tap
        c = np.asarray(coefficients(ratio, scale), dtype=np.float64)
        n = len(c)
        # The n source positions nearest to x (ties to the lower one), edge-clamped.
        if n % 2 == 0:
            start = int(floor) - n // 2 + (0 if x[i] == floor else 1)
        else:
            start = int(floor) - (n - 1) // 2 + (0 if x[i] - floor <= 0.5 else 1)
        taps = start + np.arange(n)
        if attrs["exclude_outside"]:
            c = np.where((taps < 0) | (taps >= in_len), 0.0, c)
            c = c / (c.sum() or 1.0)
        np.add.at(weights[i], np.clip(taps, 0, in_len - 1), c)
    return weights, outside


@impl(Resize)
def _resize(x, **attrs):
    sizes, scales, roi = list(attrs["sizes"]), list(attrs["scales"]), list(attrs["roi"])
    r = x.ndim
    out = x.astype(np.float64)
    for axis in range(r):
        axis_roi = (roi[axis], roi[axis + r]) if roi else (0.0, 1.0)
        if sizes[axis] == x.shape[axis] and math.isclose(scales[axis], 1.0) and np.allclose(axis_roi, (0.0, 1.0)):
            continue
        weights, outside = resize_axis_weights(x.shape[axis], sizes[axis], scales[axis], attrs, axis_roi)
        out = np.moveaxis(np.tensordot(weights, np.moveaxis(out, axis, 0), axes=1), 0, axis)
        if outside is not None and outside.any():
            mask = outside.reshape((1,) * axis + (-1,) + (1,) * (r - axis - 1))
            out = np.where(mask, attrs["extrapolation_value"], out)
    if not is_float_dtype(x.dtype):
        info = np.iinfo(x.dtype)
        out = np.clip(np.round(out), info.min, info.max)
    return out.astype(x.dtype)
