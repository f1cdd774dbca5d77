"""TIR kernels written for lutc (TVMScript, `tvm.script.tirx`): the dense matmul, the
dequantize-and-multiply mpGEMM, and the LUT ops (`lut.table`, `lut.gemm`).

Each builder takes the static shapes and attributes and returns a `tvm.tirx.PrimFunc` in
destination-passing style (outputs are the last buffers), ready for `relax.call_tir`.
TVM 0.27's default CPU pipeline does not schedule loops, so the kernels carry their schedule
in the loop nest itself: `T.parallel` over the output columns N (the dimension every weight
row belongs to, so threads never share an output), and `T.vectorized` over a small
accumulator vector on the innermost, contiguous loop (reductions cannot be vectorized
directly; V partial sums that are added up at the end can).

The arithmetic is the one of the NumPy references in ir/dialects/graph.py and lut.py; only
the summation order differs (float rounding).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tvm import tirx
from tvm.script import tirx as T

# Lanes of the vector accumulators: 8 f32 lanes fill a 256-bit AVX2 register; two of them
# give the two FMA ports independent chains.
LANES = 16


def _largest_lanes(n: int, limit: int = LANES) -> int:
    """The largest power of two <= limit that divides n (1 if n is odd)."""
    lanes = limit
    while lanes > 1 and n % lanes:
        lanes //= 2
    return lanes


# -- dense matmul ---------------------------------------------------------------------------


def dense_matmul(m: int, k: int, n: int, dtype: str = "float32") -> tirx.PrimFunc:
    """y (M, N) = x (M, K) @ w (K, N), w row-major as graph.matmul has it.

    Schedule: parallel over tiles of TN output columns; for each k the tile is an axpy
    `acc[0:TN] += x[m, k] * w[k, n0:n0+TN]`, contiguous in w and vectorized.
    """
    tn = _largest_lanes(n, 64)
    tiles = n // tn

    @T.prim_func
    def func(x: T.Buffer((m, k), dtype), w: T.Buffer((k, n), dtype), y: T.Buffer((m, n), dtype)):
        T.func_attr({"tir.noalias": True, "global_symbol": "lutc_dense_matmul"})
        for tile in T.parallel(tiles):
            acc = T.alloc_buffer((tn,), dtype, scope="local")
            for i in range(m):
                for v in T.vectorized(tn):
                    acc[v] = T.Cast(dtype, 0)
                for kk in range(k):
                    for v in T.vectorized(tn):
                        acc[v] = acc[v] + x[i, kk] * w[kk, tile * tn + v]
                for v in T.vectorized(tn):
                    y[i, tile * tn + v] = acc[v]

    return func


# -- dequantize-and-multiply mpGEMM ---------------------------------------------------------


@dataclass(frozen=True)
class PackedCodes:
    """How `pack_codes` laid the codes out; the kernel needs the same numbers.

    Each chunk of `lanes * per_byte` consecutive k is stored in `lanes` bytes; byte v of a
    chunk holds the codes k = v + lanes * t for t < per_byte in bit slots of `slot` bits.
    With this interleaving, slot t of `lanes` consecutive bytes holds `lanes` consecutive k:
    one contiguous vector load, a constant shift and a mask give a vector of codes.
    """

    slot: int
    per_byte: int
    lanes: int

    @property
    def chunk(self) -> int:
        return self.lanes * self.per_byte


def packing_for(bits: int, group_size: int) -> PackedCodes:
    slot = bits if bits in (1, 2, 4, 8) else 4 if bits < 4 else 8  # 3-bit codes use 4-bit slots
    per_byte = 8 // slot
    if group_size % per_byte:
        slot, per_byte = 8, 1  # odd group sizes: one code per byte
    lanes = _largest_lanes(group_size // per_byte, 32)
    return PackedCodes(slot, per_byte, lanes)


def pack_codes(codes: np.ndarray, layout: PackedCodes) -> np.ndarray:
    """Codes (N, K) uint8, K a multiple of the chunk -> packed bytes (N, K / per_byte)."""
    n, k = codes.shape
    chunks = codes.astype(np.uint8).reshape(n, k // layout.chunk, layout.per_byte, layout.lanes)
    packed = np.zeros((n, k // layout.chunk, layout.lanes), np.uint8)
    for t in range(layout.per_byte):
        packed |= (chunks[:, :, t, :] << (layout.slot * t)).astype(np.uint8)
    return packed.reshape(n, k // layout.per_byte)


def mpgemm_dequant(m: int, k: int, n: int, group_size: int, layout: PackedCodes, *, per_row_zeros: bool,
                   zeros_dtype: str = "float32", dtype: str = "float32") -> tirx.PrimFunc:
    """y (M, N) = sum_b s[n, b] * (sum_{k in b} x[m, k] q[n, k] - z[n, b] * Sx[m, b]).

    K must be a whole number of groups (the lowering pads x and the codes). Sx, the sum of x
    per group, is computed once per row before the parallel loop; the inner loop is the
    unpack (shift, mask, convert) and an FMA into `lanes` partial sums. Without per-row zero
    points, `zeros` is a 1x1 buffer holding the default zero point (index stride 0).
    """
    groups = k // group_size
    chunks = group_size // layout.chunk
    lanes, per_byte, slot = layout.lanes, layout.per_byte, layout.slot
    mask = (1 << slot) - 1
    packed_k = k // per_byte
    zn, zb = (n, groups) if per_row_zeros else (1, 1)
    zs = 1 if per_row_zeros else 0

    @T.prim_func
    def func(x: T.Buffer((m, k), dtype), codes: T.Buffer((n, packed_k), "uint8"), scales: T.Buffer((n, groups), dtype),
             zeros: T.Buffer((zn, zb), zeros_dtype), y: T.Buffer((m, n), dtype)):
        T.func_attr({"tir.noalias": True, "global_symbol": "lutc_mpgemm"})
        xsum = T.alloc_buffer((m, groups), "float32")
        for i, b in T.grid(m, groups):
            xsum[i, b] = T.float32(0)
            for kk in range(group_size):
                xsum[i, b] = xsum[i, b] + T.Cast("float32", x[i, b * group_size + kk])
        # Per-column scratch, allocated once outside the parallel loop: a "local" buffer
        # inside it costs a workspace allocation per column (TVMBackendAllocWorkspace).
        acc = T.alloc_buffer((n, lanes), "float32")
        total = T.alloc_buffer((n,), "float32")
        dot = T.alloc_buffer((n,), "float32")
        for col in T.parallel(n):
            for i in range(m):
                total[col] = T.float32(0)
                for b in range(groups):
                    for v in T.vectorized(lanes):
                        acc[col, v] = T.float32(0)
                    for c in range(chunks):
                        for t in T.unroll(per_byte):
                            for v in T.vectorized(lanes):
                                acc[col, v] = acc[col, v] + T.Cast("float32", x[i, b * group_size + c * lanes * per_byte + t * lanes + v]) * T.Cast(
                                    "float32", T.shift_right(codes[col, (b * group_size) // per_byte + c * lanes + v], T.uint8(slot * t)) & T.uint8(mask))
                    dot[col] = T.float32(0)
                    for v in range(lanes):
                        dot[col] = dot[col] + acc[col, v]
                    total[col] = total[col] + T.Cast("float32", scales[col, b]) * (dot[col] - T.Cast("float32", zeros[col * zs, b * zs]) * xsum[i, b])
                y[i, col] = T.Cast(dtype, total[col])

    return func


# -- LUT ops --------------------------------------------------------------------------------


def lut_table(m: int, k: int, *, g: int, entries: int, table_dtype: str, act_group: int, sum_group: int,
              dtype: str = "float32") -> tirx.PrimFunc:
    """x (M, K) -> tables (M, J, E), table_scales (M, A), sums (M, S), as lut.table.

    `coef` (E, g) holds the table format: entry c of table j is sum_t coef[c, t] x[g j + t]
    (the lowering passes `table_coefficients(...)`), so one kernel serves plain, symmetric
    and base-3 tables. K is padded with zeros to J*g. int8 tables: scale per activation group
    = max_j sum_t |x| / 127, entries round-half-even(T / scale) clipped to +-127 (NumPy's rint).
    Building is O(M K E): small next to the gemm, so it runs on one thread.
    """
    j_count = -(-k // g)
    per_scale = j_count if act_group == 0 else act_group // g
    a_count = -(-j_count // per_scale)
    s_group = sum_group or k
    s_count = -(-k // s_group)
    quantized = table_dtype == "int8"

    @T.prim_func
    def func(x: T.Buffer((m, k), dtype), coef: T.Buffer((entries, g), "float32"),
             tables: T.Buffer((m, j_count, entries), table_dtype), table_scales: T.Buffer((m, a_count), "float32"),
             sums: T.Buffer((m, s_count), dtype)):
        T.func_attr({"tir.noalias": True, "global_symbol": "lutc_lut_table"})
        values = T.alloc_buffer((m, j_count, entries), "float32")
        bound = T.alloc_buffer((m, a_count), "float32")
        abs_sum = T.alloc_buffer((1,), "float32", scope="local")
        for i, j, c in T.grid(m, j_count, entries):
            values[i, j, c] = T.float32(0)
            for t in T.unroll(g):
                values[i, j, c] = values[i, j, c] + coef[c, t] * T.if_then_else(
                    j * g + t < k, T.Cast("float32", x[i, T.min(j * g + t, k - 1)]), T.float32(0))
        for i, a in T.grid(m, a_count):
            bound[i, a] = T.float32(0)
            table_scales[i, a] = T.float32(1)
        if quantized:
            for i, j in T.grid(m, j_count):
                abs_sum[0] = T.float32(0)
                for t in T.unroll(g):
                    abs_sum[0] = abs_sum[0] + T.if_then_else(
                        j * g + t < k, T.fabs(T.Cast("float32", x[i, T.min(j * g + t, k - 1)])), T.float32(0))
                bound[i, j // per_scale] = T.max(bound[i, j // per_scale], abs_sum[0])
            for i, a in T.grid(m, a_count):
                table_scales[i, a] = bound[i, a] / T.float32(127)
            for i, j, c in T.grid(m, j_count, entries):
                tables[i, j, c] = T.Cast(table_dtype, T.max(T.min(T.nearbyint(values[i, j, c] / T.if_then_else(
                    table_scales[i, j // per_scale] > T.float32(0), table_scales[i, j // per_scale], T.float32(1))),
                    T.float32(127)), T.float32(-127)))
        else:
            for i, j, c in T.grid(m, j_count, entries):
                tables[i, j, c] = T.Cast(table_dtype, values[i, j, c])
        for i, s in T.grid(m, s_count):
            abs_sum[0] = T.float32(0)
            for kk in range(s_group):
                abs_sum[0] = abs_sum[0] + T.if_then_else(
                    s * s_group + kk < k, T.Cast("float32", x[i, T.min(s * s_group + kk, k - 1)]), T.float32(0))
            sums[i, s] = T.Cast(dtype, abs_sum[0])

    return func


def lut_gemm(m: int, n: int, j_count: int, *, planes: int, bits: int, group_size: int, g: int, entries: int,
             symmetric: bool, base3: bool, magnitude_bits: int, table_dtype: str, act_group: int, sum_group: int,
             sums_count: int, scale_count: int, per_row_zeros: bool, zeros_dtype: str = "float32",
             plane_dtype: str = "uint8", dtype: str = "float32") -> tirx.PrimFunc:
    """lut.gemm: tables (M, J, E), table_scales (M, A), sums (M, S), planes (P, N, J),
    scales (N, B), zeros (N, B) or (1, 1) -> y (M, N).

    Prologue (per call, once per activation row, shared by all N): a float table of every
    plane index, sign and int8 scale applied (`full[i, j, idx]`, 2^(magnitude bits + 1)
    slots for symmetric tables), and the activation sum of each weight group. Main loop:
    parallel over N; per weight group, `lanes` partial sums of gathered entries per plane,
    then the plain / symmetric / base-3 correction of lut.md.
    """
    per_scale = j_count if act_group == 0 else act_group // g
    groups = -(-(j_count * g) // group_size)
    per_group = group_size // g  # tables per weight group
    lanes = _largest_lanes(per_group)
    steps = -(-per_group // lanes)
    slots = (1 << (magnitude_bits + 1)) if symmetric else entries
    mag_mask = (1 << magnitude_bits) - 1
    sign_bit = magnitude_bits
    sums_per_group = 1 if sum_group == 0 else group_size // sum_group
    quantized = table_dtype == "int8"
    zn, zb = (n, groups) if per_row_zeros else (1, 1)
    zs = 1 if per_row_zeros else 0
    sym_offset = (2**bits - 1) / 2

    @T.prim_func
    def func(tables: T.Buffer((m, j_count, entries), table_dtype), table_scales: T.Buffer((m, scale_count), "float32"),
             sums: T.Buffer((m, sums_count), dtype), plane_idx: T.Buffer((planes, n, j_count), plane_dtype),
             scales: T.Buffer((n, groups), dtype), zeros: T.Buffer((zn, zb), zeros_dtype), y: T.Buffer((m, n), dtype)):
        T.func_attr({"tir.noalias": True, "global_symbol": "lutc_lut_gemm"})
        full = T.alloc_buffer((m, j_count, slots), "float32")
        group_x = T.alloc_buffer((m, groups), "float32")
        for i, j, idx in T.grid(m, j_count, slots):
            if symmetric:
                full[i, j, idx] = T.if_then_else(
                    (idx & mag_mask) < entries,
                    T.Cast("float32", tables[i, j, T.min(idx & mag_mask, entries - 1)]), T.float32(0)) * T.if_then_else(
                    quantized, table_scales[i, j // per_scale], T.float32(1)) * T.if_then_else(
                    ((idx >> sign_bit) & 1) == 1, T.float32(-1), T.float32(1))
            else:
                full[i, j, idx] = T.Cast("float32", tables[i, j, idx]) * T.if_then_else(
                    quantized, table_scales[i, j // per_scale], T.float32(1))
        for i, b in T.grid(m, groups):
            group_x[i, b] = T.float32(0)
            for s in range(sums_per_group):
                group_x[i, b] = group_x[i, b] + T.if_then_else(
                    b * sums_per_group + s < sums_count,
                    T.Cast("float32", sums[i, T.min(b * sums_per_group + s, sums_count - 1)]), T.float32(0))
        for col in T.parallel(n):
            part = T.alloc_buffer((lanes,), "float32", scope="local")
            acc = T.alloc_buffer((1,), "float32", scope="local")
            plane_sum = T.alloc_buffer((1,), "float32", scope="local")
            total = T.alloc_buffer((1,), "float32", scope="local")
            for i in range(m):
                total[0] = T.float32(0)
                for b in range(groups):
                    acc[0] = T.float32(0)
                    for p in range(planes):
                        for v in T.vectorized(lanes):
                            part[v] = T.float32(0)
                        for step in range(steps):
                            for v in T.vectorized(lanes):
                                part[v] = part[v] + T.if_then_else(
                                    b * per_group + step * lanes + v < j_count,
                                    full[i, T.min(b * per_group + step * lanes + v, j_count - 1),
                                         T.Cast("int32", plane_idx[p, col, T.min(b * per_group + step * lanes + v, j_count - 1)])],
                                    T.float32(0))
                        plane_sum[0] = T.float32(0)
                        for v in range(lanes):
                            plane_sum[0] = plane_sum[0] + part[v]
                        acc[0] = acc[0] + T.Cast("float32", T.shift_left(1, p)) * plane_sum[0]
                    if base3:
                        total[0] = total[0] + T.Cast("float32", scales[col, b]) * acc[0]
                    elif symmetric:
                        total[0] = total[0] + T.Cast("float32", scales[col, b]) * (T.float32(0.5) * acc[0] + (
                            T.float32(sym_offset) - T.Cast("float32", zeros[col * zs, b * zs])) * group_x[i, b])
                    else:
                        total[0] = total[0] + T.Cast("float32", scales[col, b]) * (
                            acc[0] - T.Cast("float32", zeros[col * zs, b * zs]) * group_x[i, b])
                y[i, col] = T.Cast(dtype, total[0])

    return func
