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

import math
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


# -- dequantize-and-multiply mpGEMM, register-blocked (compile-time codes) -------------------
#
# docs/backend_cpu.md ("The dequant mpGEMM kernel") has the picture. Codes are packed into
# uint32 words: word v of a chunk holds k = v + 8 t in bit slot t (per_word slots of `slot`
# bits), so one 8-word (256-bit) load, a constant shift and mask per slot give 8 consecutive
# codes already in int32 lanes (no byte widening): srl, and, cvt, fma per 8 multiply-adds.
# The R rows of a block are interleaved chunk by chunk, one contiguous stream per block.

MPGEMM_VEC = 8  # f32 lanes of one AVX2 register; the word packing is laid out for it


@dataclass(frozen=True)
class WordPacking:
    """The word layout of `pack_codes_words`: `per_word` codes of `slot` bits per uint32, a
    chunk of 8 words = 8 * per_word consecutive k (a whole number of chunks per group), and
    `rows` output rows interleaved per block ([block][chunk][row][8 words])."""

    slot: int
    per_word: int
    rows: int

    @property
    def chunk(self) -> int:
        return MPGEMM_VEC * self.per_word


def word_packing_for(bits: int, group_size: int, n: int) -> WordPacking | None:
    """The word layout for these weights, or None (group not a multiple of 8: byte kernel)."""
    if group_size % MPGEMM_VEC or bits > 8:
        return None
    slot = bits if bits in (1, 2, 4, 8) else 4 if bits < 4 else 8  # 3-bit codes in 4-bit slots
    per_word = 32 // slot
    while group_size % (MPGEMM_VEC * per_word):  # small groups: fewer slots used per word
        per_word //= 2
    rows = next(r for r in (4, 2, 1) if n % r == 0)
    return WordPacking(slot, per_word, rows)


def pack_codes_words(codes: np.ndarray, layout: WordPacking) -> np.ndarray:
    """Codes (N, K) (K a multiple of the chunk, N of the rows) -> uint32, flat:
    word [nb][c][r][v] = sum_t code[nb R + r, c chunk + 8 t + v] << (slot t)."""
    n, k = codes.shape
    lay = layout
    c = codes.astype(np.uint32).reshape(n // lay.rows, lay.rows, k // lay.chunk, lay.per_word, MPGEMM_VEC)
    words = np.zeros((n // lay.rows, lay.rows, k // lay.chunk, MPGEMM_VEC), np.uint32)
    for t in range(lay.per_word):
        words |= c[:, :, :, t, :] << np.uint32(lay.slot * t)
    return np.ascontiguousarray(words.transpose(0, 2, 1, 3)).reshape(-1)


def unpack_codes_words(words: np.ndarray, layout: WordPacking, n: int, k: int) -> np.ndarray:
    """The inverse of pack_codes_words (tests)."""
    lay = layout
    w = words.reshape(n // lay.rows, k // lay.chunk, lay.rows, MPGEMM_VEC).transpose(0, 2, 1, 3)
    mask = np.uint32((1 << lay.slot) - 1)
    out = np.stack([(w >> np.uint32(lay.slot * t)) & mask for t in range(lay.per_word)], axis=3)
    return out.reshape(n, k).astype(np.uint8)


def mpgemm_words(m: int, k: int, n: int, group_size: int, layout: WordPacking, *, per_row_zeros: bool,
                 zeros_dtype: str = "float32", dtype: str = "float32") -> tirx.PrimFunc:
    """y (M, N) = sum_b s[n, b] * D[m, n, b] - sum_b s[n, b] z[n, b] Sx[m, b], D = sum_{k in b} x q.

    Codes in the word layout (pack_codes_words); K a whole number of groups. Parallel over
    blocks of R output rows. M = 1 (decode): per group, R one-register accumulators of
    8 partial sums updated by whole-vector expressions (unpack: shift, mask, int->float;
    FMA with the x vector shared by the R rows), then `tot_r += s[n, b] * acc_r` (the scale
    once per group, still 8 lanes), one horizontal sum per row at the end. M > 1 (prefill):
    per group, the block's R x G codes are unpacked once into float scratch and reused by
    every activation row. The zero-point term uses Sx, the sum of x per group, computed once
    before the parallel loop. Without per-row zeros, `zeros` is 1x1 (index stride 0).
    """
    lay = layout
    vec, rows, per_word, slot = MPGEMM_VEC, lay.rows, lay.per_word, lay.slot
    mask = (1 << slot) - 1
    groups = k // group_size
    chunk = lay.chunk
    per_group = group_size // chunk  # chunks per group
    chunks = k // chunk
    blocks = n // rows
    w_size = blocks * chunks * rows * vec
    zn, zb = (n, groups) if per_row_zeros else (1, 1)
    zs = 1 if per_row_zeros else 0
    rv = rows * vec
    steps = group_size // vec

    if m == 1:
        # Slot t is masked in place, (w & (mask << slot t)) = q 2^(slot t), exact in f32 (a few
        # significant bits), and multiplied by x 2^-(slot t) (exact power-of-two scaling,
        # precomputed once per call): one op fewer than shift + mask. The top slot is a
        # shift alone (its in-place mask would set the int32 sign bit).
        top = per_word - 1
        top_shift = slot * top

        @T.prim_func
        def func(x: T.Buffer((m, k), dtype), w: T.Buffer((w_size,), "uint32"), scales: T.Buffer((n, groups), dtype),
                 zeros: T.Buffer((zn, zb), zeros_dtype), y: T.Buffer((m, n), dtype)):
            T.func_attr({"tir.noalias": True, "global_symbol": "lutc_mpgemm"})
            xsum = T.alloc_buffer((groups,), "float32")
            xs = T.alloc_buffer((k,), "float32")
            for b in range(groups):
                xsum[b] = T.float32(0)
                for kk in range(group_size):
                    xsum[b] = xsum[b] + T.Cast("float32", x[0, b * group_size + kk])
            for c, t, v in T.grid(chunks, per_word, vec):
                xs[(c * per_word + t) * vec + v] = T.Cast("float32", x[0, (c * per_word + t) * vec + v]) * T.if_then_else(
                    t == top, T.float32(1), T.pow(T.float32(2), T.Cast("float32", 0 - slot * t)))
            for nb in T.parallel(blocks):
                # "global" scope, constant size: a stack array that LLVM keeps in registers
                # ("local" in a parallel body becomes a TVMBackendAllocWorkspace per iteration).
                acc = T.alloc_buffer((rv,), "float32", scope="global")
                tot = T.alloc_buffer((rv,), "float32", scope="global")
                red = T.alloc_buffer((1,), "float32", scope="global")
                tot[T.ramp(0, 1, rv)] = T.broadcast(T.float32(0), rv)
                for b in range(groups):
                    acc[T.ramp(0, 1, rv)] = T.broadcast(T.float32(0), rv)
                    for c in range(per_group):
                        for t in T.unroll(per_word):
                            for r in T.unroll(rows):
                                if t == top:
                                    acc[T.ramp(r * vec, 1, vec)] = acc[T.ramp(r * vec, 1, vec)] + xs[
                                        T.ramp(b * group_size + c * chunk + t * vec, 1, vec)] * T.Cast(
                                        "float32x8", T.reinterpret("int32x8", T.shift_right(
                                            w[T.ramp(((nb * chunks + b * per_group + c) * rows + r) * vec, 1, vec)],
                                            T.broadcast(T.uint32(top_shift), vec))))
                                else:
                                    acc[T.ramp(r * vec, 1, vec)] = acc[T.ramp(r * vec, 1, vec)] + xs[
                                        T.ramp(b * group_size + c * chunk + t * vec, 1, vec)] * T.Cast(
                                        "float32x8", T.reinterpret("int32x8",
                                            w[T.ramp(((nb * chunks + b * per_group + c) * rows + r) * vec, 1, vec)]
                                            & T.broadcast(T.shift_left(T.uint32(mask), T.uint32(slot * t)), vec)))
                    for r in T.unroll(rows):
                        tot[T.ramp(r * vec, 1, vec)] = tot[T.ramp(r * vec, 1, vec)] + T.broadcast(
                            T.Cast("float32", scales[nb * rows + r, b]), vec) * acc[T.ramp(r * vec, 1, vec)]
                for r in range(rows):
                    red[0] = T.float32(0)
                    for b in range(groups):
                        red[0] = red[0] + T.Cast("float32", scales[nb * rows + r, b]) * T.Cast(
                            "float32", zeros[(nb * rows + r) * zs, b * zs]) * xsum[b]
                    for v in range(vec):
                        red[0] = red[0] - tot[r * vec + v]
                    y[0, nb * rows + r] = T.Cast(dtype, T.float32(0) - red[0])

        return func

    @T.prim_func
    def func_m(x: T.Buffer((m, k), dtype), w: T.Buffer((w_size,), "uint32"), scales: T.Buffer((n, groups), dtype),
               zeros: T.Buffer((zn, zb), zeros_dtype), y: T.Buffer((m, n), dtype)):
        T.func_attr({"tir.noalias": True, "global_symbol": "lutc_mpgemm"})
        xsum = T.alloc_buffer((m, groups), "float32")
        for i, b in T.grid(m, groups):
            xsum[i, b] = T.float32(0)
            for kk in range(group_size):
                xsum[i, b] = xsum[i, b] + T.Cast("float32", x[i, b * group_size + kk])
        # Unpacked codes of one block and group: per block (not per row) scratch.
        wf = T.alloc_buffer((blocks, rows * group_size), "float32")
        for nb in T.parallel(blocks):
            acc = T.alloc_buffer((rv,), "float32", scope="global")
            red = T.alloc_buffer((1,), "float32", scope="global")
            for i, r in T.grid(m, rows):
                y[i, nb * rows + r] = T.Cast(dtype, T.float32(0))
            for b in range(groups):
                for c in range(per_group):
                    for t in T.unroll(per_word):
                        for r in T.unroll(rows):
                            wf[nb, T.ramp(r * group_size + c * chunk + t * vec, 1, vec)] = T.Cast(
                                "float32x8", T.reinterpret("int32x8", T.shift_right(
                                    w[T.ramp(((nb * chunks + b * per_group + c) * rows + r) * vec, 1, vec)],
                                    T.broadcast(T.uint32(slot * t), vec)) & T.broadcast(T.uint32(mask), vec)))
                for i in range(m):
                    acc[T.ramp(0, 1, rv)] = T.broadcast(T.float32(0), rv)
                    for s in range(steps):
                        for r in T.unroll(rows):
                            acc[T.ramp(r * vec, 1, vec)] = acc[T.ramp(r * vec, 1, vec)] + T.Cast(
                                "float32x8", x[i, T.ramp(b * group_size + s * vec, 1, vec)]) * wf[
                                nb, T.ramp(r * group_size + s * vec, 1, vec)]
                    for r in range(rows):
                        red[0] = T.float32(0)
                        for v in range(vec):
                            red[0] = red[0] + acc[r * vec + v]
                        y[i, nb * rows + r] = T.Cast(dtype, T.Cast("float32", y[i, nb * rows + r]) + T.Cast(
                            "float32", scales[nb * rows + r, b]) * (red[0] - T.Cast(
                                "float32", zeros[(nb * rows + r) * zs, b * zs]) * xsum[i, b]))

    return func_m


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


# -- the pshufb LUT kernel (AVX2) -----------------------------------------------------------
#
# docs/backend_cpu.md ("The pshufb lut.gemm kernel") describes the layout with a picture.
# In short: one `vpshufb` looks up 32 bytes from a 16-byte int8 table duplicated into both
# 128-bit lanes; the 32 index bytes of one lookup are 16 output rows x 2 bit planes (byte
# 2r + p of the 16 rows r of a lane pair), so `vpmaddubsw` with the constant plane weights
# (1, 2) or (4, 8) adds the two planes of each row into one int16 lane: one int16x16 vector
# per 16 rows. The weights are nibble-packed: the low nibble of a byte indexes table j, the
# high nibble table j + 1 (the same row and plane), so one 32-byte load feeds two lookups.

# Output rows per parallel block (two int16x16 accumulators).
PSHUFB_ROWS = 32
INT16_MAX = 32767


@dataclass(frozen=True)
class PshufbLayout:
    """The geometry of the pshufb lut.gemm kernel (all static).

    rows: output rows per block (R), blocks = ceil(N / R); plane_pairs = ceil(bits / 2)
    (a missing odd plane has weight 0); j_padded = whole weight groups of tables (zero
    tables past J); chunk = tables accumulated in int16 before the float conversion (even,
    one act-group scale, kc * 127 * (2^bits - 1) <= 32767 so int16 cannot overflow).
    """

    n: int
    j_count: int
    bits: int
    group_size: int
    g: int
    act_group: int
    rows: int = PSHUFB_ROWS

    @property
    def blocks(self) -> int:
        return -(-self.n // self.rows)

    @property
    def n_padded(self) -> int:
        return self.blocks * self.rows

    @property
    def per_group(self) -> int:
        return self.group_size // self.g

    @property
    def groups(self) -> int:
        return -(-self.j_count // self.per_group)

    @property
    def j_padded(self) -> int:
        return self.groups * self.per_group

    @property
    def plane_pairs(self) -> int:
        return -(-self.bits // 2)

    @property
    def per_scale(self) -> int:
        """Tables per activation-group scale (0: one scale for the whole row)."""
        return self.act_group // self.g if self.act_group else 0

    @property
    def chunk(self) -> int:
        seg = math.gcd(self.per_scale, self.per_group) if self.per_scale else self.per_group
        limit = INT16_MAX // (INT8_ENTRY_MAX * (2**self.bits - 1))
        best = 0
        for kc in range(2, min(seg, limit) + 1, 2):
            if seg % kc == 0:
                best = kc
        return best


INT8_ENTRY_MAX = 127


def pshufb_unsupported(*, g: int, bits: int, symmetric: bool, base3: bool, table_dtype: str, group_size: int,
                       act_group: int, dtype: str) -> str | None:
    """Why the pshufb kernel cannot run this lut.gemm (None: it can)."""
    if base3:
        return "base-3 tables"
    if g != 4:
        return f"g = {g} (the kernel wants 16-byte tables, g = 4)"
    if table_dtype != "int8":
        return f"{table_dtype} tables (the kernel wants int8)"
    if dtype != "float32":
        return f"{dtype} results"
    if not 1 <= bits <= 4:
        return f"{bits}-bit weights"
    layout = PshufbLayout(1, 1, bits, group_size, g, act_group)
    if layout.chunk == 0:
        return "no even number of tables divides both the weight group and the activation group"
    return None


def pack_planes_pshufb(planes: np.ndarray, layout: PshufbLayout) -> np.ndarray:
    """Planes (P, N, J) of 4-bit table indices -> the kernel's stream, uint8, flat:

        [block nb][table pair jp][plane pair pp][16-row half h][32 bytes]

    byte q of the 32: lane = q // 16, u = q % 16, row r = nb*R + h*16 + lane*8 + u // 2,
    plane p = 2*pp + u % 2; low nibble = index of (p, r, table 2 jp), high nibble = table
    2 jp + 1. Missing planes, rows past N and tables past J hold index 0 (their table is zero
    or their weight and scale are 0).
    """
    p_count, n, j = planes.shape
    lay = layout
    full = np.zeros((2 * lay.plane_pairs, lay.n_padded, lay.j_padded), np.uint8)
    full[:p_count, :n, :j] = planes
    # (pp, pbit, nb, h, lane, r8, jp, nibble)
    v = full.reshape(lay.plane_pairs, 2, lay.blocks, lay.rows // 16, 2, 8, lay.j_padded // 2, 2)
    packed = v[..., 0] | (v[..., 1] << 4)
    # -> (nb, jp, pp, h, lane, r8, pbit)
    packed = packed.transpose(2, 6, 0, 3, 4, 5, 1)
    return np.ascontiguousarray(packed).reshape(-1)


def pshufb_coefficients(scales: np.ndarray, zeros: np.ndarray | None, default_zero: float, *, bits: int,
                        symmetric: bool, layout: PshufbLayout) -> np.ndarray:
    """Per (block, group, 2, row): c1 = s * f and c2 = s * (o - z), f = 1/2, o = (2^bits-1)/2 for
    symmetric tables (f = 1, o = 0 plain), so that y = sum_b c1 * sum_i 2^i L_i + c2 * S."""
    n, groups = scales.shape
    s = scales.astype(np.float64)
    z = np.full_like(s, default_zero) if zeros is None else zeros.astype(np.float64)
    fac, off = (0.5, (2**bits - 1) / 2) if symmetric else (1.0, 0.0)
    coef = np.zeros((2, layout.n_padded, groups), np.float64)
    coef[0, :n] = s * fac
    coef[1, :n] = s * (off - z)
    coef = coef.reshape(2, layout.blocks, layout.rows, groups).transpose(1, 3, 0, 2)
    return np.ascontiguousarray(coef.astype(np.float32)).reshape(-1)


def _pair_weights(bits: int, pp: int) -> int:
    """The int16 whose two bytes are the weights 2^(2pp), 2^(2pp+1) of a plane pair (0: no plane)."""
    lo = 1 << (2 * pp) if 2 * pp < bits else 0
    hi = 1 << (2 * pp + 1) if 2 * pp + 1 < bits else 0
    return lo | (hi << 8)


def lut_gemm_pshufb(m: int, layout: PshufbLayout, *, symmetric: bool, entries: int, sum_group: int,
                    sums_count: int, scale_count: int) -> tirx.PrimFunc:
    """lut.gemm with int8 tables and g = 4 by `vpshufb` (AVX2 only: the caller checks).

    tables (M, J, E) int8, table_scales (M, A), sums (M, S), packed weights (pack_planes_pshufb),
    coefficients (pshufb_coefficients) -> y (M, N padded to whole blocks of R rows).

    Prologue: 32-byte tables (the 16 entries indexed by a 4-bit plane value, duplicated into
    both lanes: symmetric = [T, -T, T, -T], plain = [T, T]; zero past J) and the activation
    sum of each weight group. Main loop, parallel over blocks of R rows: per chunk of kc
    tables, int16 accumulators (exact integer sums of plane-weighted lookups), converted to
    float and scaled by the chunk's table scale; per weight group, y += c1 * acc + c2 * S.
    """
    lay = layout
    j_count, rows, blocks, groups = lay.j_count, lay.rows, lay.blocks, lay.groups
    halves = rows // 16
    pairs = lay.plane_pairs
    kc = lay.chunk
    chunks = lay.per_group // kc
    per_group = lay.per_group
    scale_div = lay.per_scale or lay.j_padded + 1  # 0: one scale per row
    jp_count = lay.j_padded // 2
    w_size = blocks * jp_count * pairs * halves * 32
    c_size = blocks * groups * 2 * rows
    w0 = _pair_weights(lay.bits, 0)
    w1 = _pair_weights(lay.bits, 1)
    sums_per_group = 1 if sum_group == 0 else lay.group_size // sum_group
    n_pad = lay.n_padded
    pshuf = "llvm.x86.avx2.pshuf.b"
    madd = "llvm.x86.avx2.pmadd.ub.sw"

    @T.prim_func
    def func(tables: T.Buffer((m, j_count, entries), "int8"), table_scales: T.Buffer((m, scale_count), "float32"),
             sums: T.Buffer((m, sums_count), "float32"), wpk: T.Buffer((w_size,), "uint8"),
             coef: T.Buffer((c_size,), "float32"), y: T.Buffer((m, n_pad), "float32")):
        T.func_attr({"tir.noalias": True, "global_symbol": "lutc_lut_gemm_pshufb"})
        tab = T.alloc_buffer((m * jp_count * 64,), "int8")
        group_x = T.alloc_buffer((m * groups,), "float32")
        for i, jj in T.grid(m, j_count):
            if symmetric:
                for q in T.unroll(2):
                    tab[T.ramp((i * jp_count * 2 + jj) * 32 + q * 16, 1, 8)] = tables[i, jj, T.ramp(0, 1, 8)]
                    tab[T.ramp((i * jp_count * 2 + jj) * 32 + q * 16 + 8, 1, 8)] = T.broadcast(T.int8(0), 8) - tables[i, jj, T.ramp(0, 1, 8)]
            else:
                for q in T.unroll(2):
                    tab[T.ramp((i * jp_count * 2 + jj) * 32 + q * 16, 1, 16)] = tables[i, jj, T.ramp(0, 1, 16)]
        for i, jj in T.grid(m, jp_count * 2 - j_count):
            tab[T.ramp((i * jp_count * 2 + j_count + jj) * 32, 1, 32)] = T.broadcast(T.int8(0), 32)
        for i, b in T.grid(m, groups):
            group_x[i * groups + b] = T.float32(0)
            for s in range(sums_per_group):
                group_x[i * groups + b] = group_x[i * groups + b] + T.if_then_else(
                    b * sums_per_group + s < sums_count,
                    sums[i, T.min(b * sums_per_group + s, sums_count - 1)], T.float32(0))
        for nb in T.parallel(blocks):
            acc = T.alloc_buffer((rows,), "int16", scope="local")
            gacc = T.alloc_buffer((rows,), "float32", scope="local")
            yacc = T.alloc_buffer((rows,), "float32", scope="local")
            for i in range(m):
                yacc[T.ramp(0, 1, rows)] = T.broadcast(T.float32(0), rows)
                for b in range(groups):
                    gacc[T.ramp(0, 1, rows)] = T.broadcast(T.float32(0), rows)
                    for c in range(chunks):
                        acc[T.ramp(0, 1, rows)] = T.broadcast(T.int16(0), rows)
                        for jp in range(kc // 2):
                            for h in T.unroll(halves):
                                if pairs == 1:
                                    acc[T.ramp(h * 16, 1, 16)] = acc[T.ramp(h * 16, 1, 16)] + T.call_llvm_pure_intrin(
                                        "int16x16", madd, T.reinterpret("int8x32", T.broadcast(T.int16(w0), 16)),
                                        T.call_llvm_pure_intrin("int8x32", pshuf,
                                            tab[T.ramp((i * jp_count + (b * per_group + c * kc) // 2 + jp) * 64, 1, 32)],
                                            T.reinterpret("int8x32", wpk[T.ramp((((nb * jp_count + (b * per_group + c * kc) // 2 + jp) * pairs) * halves + h) * 32, 1, 32)] & T.broadcast(T.uint8(15), 32)))) + T.call_llvm_pure_intrin(
                                        "int16x16", madd, T.reinterpret("int8x32", T.broadcast(T.int16(w0), 16)),
                                        T.call_llvm_pure_intrin("int8x32", pshuf,
                                            tab[T.ramp((i * jp_count + (b * per_group + c * kc) // 2 + jp) * 64 + 32, 1, 32)],
                                            T.reinterpret("int8x32", T.shift_right(wpk[T.ramp((((nb * jp_count + (b * per_group + c * kc) // 2 + jp) * pairs) * halves + h) * 32, 1, 32)], T.broadcast(T.uint8(4), 32)))))
                                else:
                                    acc[T.ramp(h * 16, 1, 16)] = acc[T.ramp(h * 16, 1, 16)] + (T.call_llvm_pure_intrin(
                                        "int16x16", madd, T.reinterpret("int8x32", T.broadcast(T.int16(w0), 16)),
                                        T.call_llvm_pure_intrin("int8x32", pshuf,
                                            tab[T.ramp((i * jp_count + (b * per_group + c * kc) // 2 + jp) * 64, 1, 32)],
                                            T.reinterpret("int8x32", wpk[T.ramp((((nb * jp_count + (b * per_group + c * kc) // 2 + jp) * pairs) * halves + h) * 32, 1, 32)] & T.broadcast(T.uint8(15), 32)))) + T.call_llvm_pure_intrin(
                                        "int16x16", madd, T.reinterpret("int8x32", T.broadcast(T.int16(w0), 16)),
                                        T.call_llvm_pure_intrin("int8x32", pshuf,
                                            tab[T.ramp((i * jp_count + (b * per_group + c * kc) // 2 + jp) * 64 + 32, 1, 32)],
                                            T.reinterpret("int8x32", T.shift_right(wpk[T.ramp((((nb * jp_count + (b * per_group + c * kc) // 2 + jp) * pairs) * halves + h) * 32, 1, 32)], T.broadcast(T.uint8(4), 32)))))) + (T.call_llvm_pure_intrin(
                                        "int16x16", madd, T.reinterpret("int8x32", T.broadcast(T.int16(w1), 16)),
                                        T.call_llvm_pure_intrin("int8x32", pshuf,
                                            tab[T.ramp((i * jp_count + (b * per_group + c * kc) // 2 + jp) * 64, 1, 32)],
                                            T.reinterpret("int8x32", wpk[T.ramp((((nb * jp_count + (b * per_group + c * kc) // 2 + jp) * pairs + 1) * halves + h) * 32, 1, 32)] & T.broadcast(T.uint8(15), 32)))) + T.call_llvm_pure_intrin(
                                        "int16x16", madd, T.reinterpret("int8x32", T.broadcast(T.int16(w1), 16)),
                                        T.call_llvm_pure_intrin("int8x32", pshuf,
                                            tab[T.ramp((i * jp_count + (b * per_group + c * kc) // 2 + jp) * 64 + 32, 1, 32)],
                                            T.reinterpret("int8x32", T.shift_right(wpk[T.ramp((((nb * jp_count + (b * per_group + c * kc) // 2 + jp) * pairs + 1) * halves + h) * 32, 1, 32)], T.broadcast(T.uint8(4), 32))))))
                        for h in T.unroll(halves):
                            gacc[T.ramp(h * 16, 1, 16)] = gacc[T.ramp(h * 16, 1, 16)] + T.broadcast(
                                table_scales[i, T.min((b * per_group + c * kc) // scale_div, scale_count - 1)], 16) * T.Cast(
                                "float32x16", acc[T.ramp(h * 16, 1, 16)])
                    yacc[T.ramp(0, 1, rows)] = yacc[T.ramp(0, 1, rows)] + coef[T.ramp(((nb * groups + b) * 2) * rows, 1, rows)] * gacc[
                        T.ramp(0, 1, rows)] + coef[T.ramp(((nb * groups + b) * 2 + 1) * rows, 1, rows)] * T.broadcast(group_x[i * groups + b], rows)
                y[i, T.ramp(nb * rows, 1, rows)] = yacc[T.ramp(0, 1, rows)]

    return func
