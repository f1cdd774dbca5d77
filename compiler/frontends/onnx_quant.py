"""Low-bit weights -> `graph.mpgemm` (DESIGN.md §4), from three sources:

- `com.microsoft.MatMulNBits`: B packed uint8 (N, ceil(K/bs), bs*bits/8), codes low bits
  first; scales (N, ceil(K/bs)), possibly flattened; zero points packed uint8 (per row, same
  packing), unpacked floats, or absent (2^(bits-1)); optional bias (a `graph.add` after).
- `DequantizeLinear` of constant int2/int4/int8 (signed or not) weights feeding `MatMul`,
  directly or through a `Transpose`: blocked along K (opset 21+ `block_size`), per output
  channel, or per tensor. Signed codes are shifted by 2^(bits-1) to make them unsigned, and
  the zero points with them.
- a constant float `MatMul` weight whose values are all in {-1, 0, +1} * scale (one scale per
  output column, or one for the tensor): a ternary mpgemm (codes {0, 1, 2}, zero point 1).

mpgemm's normal form is "NT": codes are N rows of K, y = x @ (s * (q - z))^T.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lutc.frontends.onnx import ELEMENT_TO_ONNX, Const, Handle, NodeContext
from lutc.frontends.onnx_ops import converter
from lutc.ir.dialects.graph import MPGEMM_BITS
from lutc.ir.types import ElementType


@dataclass
class QuantizedWeight:
    codes: np.ndarray            # (N, K) unsigned codes, one per byte
    scales: np.ndarray           # (N, ceil(K / group_size)) float
    zeros: np.ndarray | None     # like scales, or None for the default 2^(bits-1) (1 if ternary)
    bits: int
    group_size: int
    ternary: bool = False
    name: str = "weight"


def emit_mpgemm(ctx: NodeContext, x: Handle, w: QuantizedWeight) -> Handle:
    scale_element = x.type.element
    codes = ctx.constant(w.codes.astype(np.uint8), ElementType(f"ui{w.bits}"), name=f"{w.name}_codes")
    scales = ctx.constant(w.scales.astype(scale_element.np_dtype), scale_element, name=f"{w.name}_scales")
    operands = [x, codes, scales]
    if w.zeros is not None:
        if np.issubdtype(w.zeros.dtype, np.integer):
            operands.append(ctx.constant(w.zeros.astype(np.uint8), ElementType(f"ui{w.bits}"), name=f"{w.name}_zeros"))
        else:
            operands.append(ctx.constant(w.zeros.astype(scale_element.np_dtype), scale_element, name=f"{w.name}_zeros"))
    return ctx.op("graph.mpgemm", *operands, bits=w.bits, group_size=w.group_size, ternary=w.ternary)


def matmul_or_mpgemm(ctx: NodeContext, a: Handle, b: Handle, weight_name: str, weight_transposed: bool = False) -> Handle:
    """`a @ b`, as an mpgemm when b is a recognizably low-bit constant weight.

    `weight_name` is the ONNX value b comes from; `weight_transposed` says that b is its
    transpose (Gemm with transB).
    """
    if a.type.element.is_float and b.type.rank == 2 and a.type.rank >= 1:
        weight = dequantized_weight(ctx, weight_name, weight_transposed) or ternary_weight(b, weight_name)
        if weight is not None and weight.codes.shape[1] == b.type.shape[0] and weight.codes.shape[0] == b.type.shape[1]:
            return emit_mpgemm(ctx, a, weight)
    return ctx.op("graph.matmul", a, b)


# -- ternary constants ----------------------------------------------------------------------


def ternary_weight(b: Handle, name: str) -> QuantizedWeight | None:
    """A (K, N) constant whose column n is exactly {-1, 0, +1} * s[n]."""
    if not isinstance(b, Const) or not b.type.element.is_float or not b.type.is_static or b.type.num_elements == 0:
        return None
    w = b.value.astype(np.float32)
    first = np.abs(w[:, 0])  # cheap rejection of ordinary weights before scanning all of them
    if np.count_nonzero((first != 0) & (first != first.max())):
        return None
    scale = np.abs(w).max(axis=0)
    if not np.isfinite(scale).all() or not scale.any():
        return None
    safe = np.where(scale == 0, 1, scale)
    signs = np.rint(w / safe)
    if np.abs(signs).max() > 1 or not np.array_equal(signs * scale, w):
        return None
    k = w.shape[0]
    codes = (signs.T + 1).astype(np.uint8)  # (N, K) codes in {0, 1, 2}
    return QuantizedWeight(codes, scale.reshape(-1, 1), None, bits=2, group_size=k, ternary=True, name=name)


# -- DequantizeLinear -> MatMul ----------------------------------------------------------------

DQ_BITS = {"i2": 2, "ui2": 2, "i4": 4, "ui4": 4, "i8": 8, "ui8": 8}


def dequantized_weight(ctx: NodeContext, weight_name: str, transposed: bool = False) -> QuantizedWeight | None:
    """The mpgemm form of `weight_name` = DequantizeLinear(constants), optionally transposed."""
    producers = ctx.importer.producers
    node = producers.get(weight_name)
    if node is not None and node.op_type == "Transpose" and node.domain in ("", "ai.onnx"):
        perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), [1, 0])
        if perm != [1, 0]:
            return None
        node, transposed = producers.get(node.input[0]), not transposed
    if node is None or node.op_type != "DequantizeLinear" or node.domain not in ("", "ai.onnx"):
        return None
    env = ctx.importer.env
    handles = [env.get(name) if name else None for name in node.input]
    if len(handles) < 2 or not all(h is None or isinstance(h, Const) for h in handles) or handles[0] is None:
        return None
    q, scale = handles[0], handles[1]
    zp = handles[2] if len(handles) > 2 else None
    bits = DQ_BITS.get(q.type.element.name)
    attrs = {a.name: a for a in node.attribute}
    if bits is None or q.type.rank != 2 or not scale.type.element.is_float:
        return None
    if "output_dtype" in attrs and attrs["output_dtype"].i != 0 and ELEMENT_TO_ONNX.get(scale.type.element.name) != attrs["output_dtype"].i:
        return None  # dequantizes to another float type than the scales'
    axis = attrs["axis"].i if "axis" in attrs else 1
    axis %= 2
    block = attrs["block_size"].i if "block_size" in attrs else 0
    # D = the dequantized tensor; W = D (K x N) or D^T (D is N x K).
    k_axis = 1 if transposed else 0
    n_axis = 1 - k_axis
    k = q.type.shape[k_axis]
    s = scale.value
    z = zp.value if zp is not None else None
    if block > 0:
        if axis != k_axis or s.ndim != 2:
            return None  # blocks along N do not fit one scale per (n, K-group)
        to_nk = (lambda a: a) if transposed else (lambda a: a.T)
        scales, zeros, group = to_nk(s), (to_nk(z) if z is not None else None), block
    elif s.size == 1:
        n = q.type.shape[n_axis]
        scales, zeros, group = np.full((n, 1), s.reshape(())), (np.full((n, 1), z.reshape(())) if z is not None else None), k
    elif s.ndim == 1 and axis == n_axis:
        scales, zeros, group = s.reshape(-1, 1), (z.reshape(-1, 1) if z is not None else None), k
    else:
        return None
    codes = q.value if transposed else q.value.T
    if q.type.element.is_unsigned:
        codes = codes.astype(np.uint8)
        zeros = np.zeros(scales.shape, np.uint8) if zeros is None else zeros.astype(np.uint8)
    else:  # shift signed codes (and zero points) into the unsigned range
        offset = 1 << (bits - 1)
        codes = (codes.astype(np.int16) + offset).astype(np.uint8)
        zeros = None if zeros is None else (zeros.astype(np.int16) + offset).astype(np.uint8)
        if zeros is not None and (zeros == offset).all():
            zeros = None  # the default zero point
    return QuantizedWeight(np.ascontiguousarray(codes), np.ascontiguousarray(scales), zeros, bits, group, name=node.input[0])


# -- com.microsoft.MatMulNBits -----------------------------------------------------------------


def unpack_codes(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    """The first `count` codes of each row of `packed` (..., bytes): a little-endian bit stream, low bits first."""
    stream = np.unpackbits(packed.astype(np.uint8), axis=-1, bitorder="little")
    usable = stream.shape[-1] // bits * bits
    groups = stream[..., :usable].reshape(packed.shape[:-1] + (-1, bits))
    codes = (groups.astype(np.uint16) << np.arange(bits, dtype=np.uint16)).sum(axis=-1)
    return codes[..., :count].astype(np.uint8)


@converter("com.microsoft.MatMulNBits")
def convert_matmul_nbits(ctx: NodeContext):
    x = ctx.input(0)
    k, n = ctx.attr("K"), ctx.attr("N")
    bits, block = ctx.attr("bits", 4), ctx.attr("block_size")
    if k is None or n is None or block is None:
        raise ctx.error("attributes K, N and block_size are required")
    if bits not in MPGEMM_BITS or bits == 1:
        raise ctx.error(f"bits={bits} is not supported (2, 3, 4 or 8)")
    if block <= 0:
        raise ctx.error(f"block_size must be positive, got {block}")
    if ctx.attr("weight_prepacked", 0):
        raise ctx.error("prepacked (execution-provider specific) weights are not supported")
    k_blocks = -(-k // block)
    blob = -(-block * bits // 8)
    packed = ctx.require_const(1, "B (the packed weights)")
    if packed.shape != (n, k_blocks, blob):
        raise ctx.error(f"attributes disagree with tensor shapes: B is {list(packed.shape)}, but K={k}, N={n}, bits={bits}, "
                        f"block_size={block} need [{n}, {k_blocks}, {blob}]")
    if ctx.type(1).element.name != "ui8":
        raise ctx.error(f"B must be uint8, got {ctx.type(1).element}")
    if x.type.rank < 1 or x.type.shape[-1] not in (k, None):
        raise ctx.error(f"attributes disagree with tensor shapes: A is {x.type}, but K={k}")
    scales = ctx.require_const(2, "scales")
    if scales.size != n * k_blocks or scales.ndim not in (1, 2) or (scales.ndim == 2 and scales.shape != (n, k_blocks)):
        raise ctx.error(f"attributes disagree with tensor shapes: scales is {list(scales.shape)}, but N={n} and "
                        f"ceil(K/block_size)={k_blocks} need [{n}, {k_blocks}]")
    if ctx.type(2).element != x.type.element:
        raise ctx.error(f"scales ({ctx.type(2).element}) must have A's element type ({x.type.element})")
    codes = unpack_codes(packed, bits, block).reshape(n, k_blocks * block)[:, :k]
    zeros = None
    if ctx.has(3):
        zp = ctx.require_const(3, "zero_points")
        if ctx.type(3).element.name == "ui8":
            zp_cols = -(-k_blocks * bits // 8)
            if zp.size != n * zp_cols:
                raise ctx.error(f"attributes disagree with tensor shapes: packed zero_points has {zp.size} bytes, but "
                                f"N={n} rows of ceil({k_blocks} blocks * {bits} bits / 8) need {n * zp_cols}")
            zeros = unpack_codes(zp.reshape(n, zp_cols), bits, k_blocks)
        elif ctx.type(3).element.is_float:
            if zp.size != n * k_blocks:
                raise ctx.error(f"attributes disagree with tensor shapes: zero_points has {zp.size} values, need {n * k_blocks}")
            zeros = zp.reshape(n, k_blocks).astype(np.float32)
        else:
            raise ctx.error(f"zero_points must be uint8 (packed) or float, got {ctx.type(3).element}")
    if ctx.has(4):
        g_idx = ctx.require_const(4, "g_idx").reshape(-1)
        if not np.array_equal(g_idx, np.arange(g_idx.size) // block):
            raise ctx.error("a non-trivial g_idx (act-order) is not supported")
    weight = QuantizedWeight(codes, scales.reshape(n, k_blocks), zeros, bits, block, name=ctx.node.input[1])
    y = emit_mpgemm(ctx, x, weight)
    if ctx.has(5):
        bias = ctx.input(5)
        if bias.type.shape != (n,):
            raise ctx.error(f"attributes disagree with tensor shapes: bias is {bias.type}, but N={n}")
        y = ctx.op("graph.add", y, bias)
    return y
