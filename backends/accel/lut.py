"""LUT data formats (table blocks, packed weight bit planes) and the math LUT.BUILD / LUT.MMA do.

Formats (docs/isa.md has the same with pictures):

* Weights of a LUT.MMA: unsigned codes q[n, k] of `bits` bits, split into bit planes
  q = sum_i 2^i q_i. For each plane i, row n and group j of g consecutive k, the index
  idx[i, n, j] = sum_t 2^t q_i[n, g*j + t]. Indices are packed LSB-first into bytes
  (8/g per byte), planes outermost: a [bits][n][k/8] byte array.
* Table block written by LUT.BUILD for a rows x k activation tile:
  - entries, [k/g][rows][E] of the table dtype (group-major, so that the tables of a
    k-range are contiguous), E = 2^g (full) or 2^(g-1) (symmetric);
  - at the next 4-byte boundary, row parameters [k/qgroup][2][rows] f32: row 0 is the
    value of one table unit (the int8 quantization scale, 1.0 for fp16 tables), row 1 the
    exact f32 sum of the group's activations (for the zero-point correction).

Math: full tables T[c] = sum_t c_t x_t; symmetric tables store S[c] = T'[c] for c < 2^(g-1),
with T'[c] = sum_t (2 c_t - 1) x_t and T'[~c] = -T'[c]. LUT.MMA accumulates
sum_i 2^i sum_j T_j[idx]: with full tables that is sum_k x_k q_k, with symmetric tables
sum_k x_k (2 q_k - (2^bits - 1)). int8 tables (T-MAC): scale per (row, qgroup) =
max_j sum_t |x_t| / 127, entries round-half-even(T / scale), so |entry| <= 127.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

TABLE_QMAX = 127  # int8 tables are symmetric: [-127, 127], so the sign flip never overflows


def align4(n: int) -> int:
    return (n + 3) & ~3


def table_entries(group: int, sym: bool) -> int:
    return 1 << (group - 1) if sym else 1 << group


def table_block_layout(rows: int, k: int, group: int, sym: bool, entry_bytes: int, qgroup: int) -> tuple[int, int, int]:
    """(entry bytes, offset of the row parameters, total bytes) of a LUT.BUILD's table block."""
    entries = (k // group) * rows * table_entries(group, sym) * entry_bytes
    params_at = align4(entries)
    return entries, params_at, params_at + (k // qgroup) * 2 * rows * 4


def weight_plane_bytes(n: int, k: int, bits: int) -> int:
    return bits * n * k // 8


# ---------------------------------------------------------------------------------------
# Weight packing
# ---------------------------------------------------------------------------------------

def pack_weight_planes(codes: np.ndarray, bits: int, group: int) -> np.ndarray:
    """Unsigned codes (n, k) -> packed bit-plane indices, uint8 [bits][n][k/8]."""
    codes = np.asarray(codes)
    n, k = codes.shape
    if k % group or k % 8:
        raise ValueError(f"k = {k} must be a multiple of g = {group} and of 8")
    if codes.min(initial=0) < 0 or codes.max(initial=0) >= 1 << bits:
        raise ValueError(f"codes must lie in [0, {1 << bits})")
    codes = codes.astype(np.uint8)
    planes = (codes[None, :, :] >> np.arange(bits, dtype=np.uint8)[:, None, None]) & 1  # (bits, n, k)
    # A plane row's bits in k order, LSB-first, are exactly the indices packed LSB-first.
    return np.packbits(planes, axis=-1, bitorder="little")


def codes_from_planes(packed: np.ndarray, bits: int, n: int, k: int) -> np.ndarray:
    """Packed bit planes -> codes (n, k)."""
    plane_bits = np.unpackbits(np.asarray(packed, dtype=np.uint8).reshape(bits, n, k // 8), axis=-1, bitorder="little")
    return (plane_bits.astype(np.int64) << np.arange(bits)[:, None, None]).sum(axis=0)


@lru_cache(maxsize=None)
def _byte_to_indices(group: int) -> np.ndarray:
    """byte -> its 8/g indices, one per byte of a little-endian integer (so a view as uint8 unpacks them)."""
    per_byte, mask = 8 // group, (1 << group) - 1
    byte = np.arange(256, dtype=np.uint64)
    value = np.zeros(256, dtype=np.uint64)
    for slot in range(per_byte):
        value |= ((byte >> np.uint64(slot * group)) & np.uint64(mask)) << np.uint64(8 * slot)
    return value.astype(np.dtype(f"<u{per_byte}"))


def indices_from_bytes(packed: np.ndarray, group: int) -> np.ndarray:
    """Packed index bytes (..., B) -> indices (..., B * 8/g) as uint8, LSB-first."""
    if group == 8:
        return packed
    return _byte_to_indices(group)[packed].view(np.uint8)


# ---------------------------------------------------------------------------------------
# Table construction (LUT.BUILD)
# ---------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def sign_matrix(group: int, sym: bool) -> np.ndarray:
    """M[t, c]: the coefficient of x_t in entry c (c_t for full tables, 2 c_t - 1 for symmetric)."""
    entries = table_entries(group, sym)
    c_bits = (np.arange(entries)[None, :] >> np.arange(group)[:, None]) & 1
    out = 2 * c_bits - 1 if sym else c_bits
    out.setflags(write=False)
    return out


def build_tables(x: np.ndarray, group: int, sym: bool, table_dtype: np.dtype, qgroup: int) -> tuple[np.ndarray, np.ndarray]:
    """LUT.BUILD: activations (rows, k) -> (entries [k/g][rows][E], row params [k/qgroup][2][rows] f32).

    Float activations are summed in f32 in t order (x_0 first), so that results are
    reproducible bit for bit; integer activations exactly. Raises ValueError when integer
    activations give entries that int8 tables cannot hold.
    """
    rows, k = x.shape
    jn = k // group
    integer_in = x.dtype.kind in "iu"
    work = x.astype(np.int64) if integer_in else x.astype(np.float32)
    grouped = work.reshape(rows, jn, group)
    coef = sign_matrix(group, sym)
    acc_dtype = np.int64 if integer_in else np.float32
    tables = grouped[:, :, 0, None] * coef[0].astype(acc_dtype)  # (rows, jn, E)
    for t in range(1, group):
        tables = tables + grouped[:, :, t, None] * coef[t].astype(acc_dtype)
    nq = k // qgroup
    params = np.empty((nq, 2, rows), dtype=np.float32)
    params[:, 1, :] = work.reshape(rows, nq, qgroup).sum(axis=-1, dtype=acc_dtype).astype(np.float32).T
    table_dtype = np.dtype(table_dtype)
    if table_dtype == np.int8 and not integer_in:
        # T-MAC: one scale per (row, qgroup): max over its tables of sum_t |x_t|, over 127.
        absum = np.abs(grouped[:, :, 0])
        for t in range(1, group):
            absum = absum + np.abs(grouped[:, :, t])
        per_q = absum.reshape(rows, nq, qgroup // group).max(axis=-1)  # (rows, nq)
        scale = (per_q / np.float32(TABLE_QMAX)).astype(np.float32)
        scale = np.where(scale > 0, scale, np.float32(1.0)).astype(np.float32)
        scale_per_table = np.repeat(scale, qgroup // group, axis=1)  # (rows, jn)
        q = np.rint(tables / scale_per_table[:, :, None])
        entries = np.clip(q, -TABLE_QMAX, TABLE_QMAX).astype(np.int8)
        params[:, 0, :] = scale.T
    elif table_dtype == np.int8:
        if tables.size and (tables.min() < -TABLE_QMAX or tables.max() > TABLE_QMAX):
            raise ValueError(f"integer table entries exceed the int8 range [-{TABLE_QMAX}, {TABLE_QMAX}]")
        entries = tables.astype(np.int8)
        params[:, 0, :] = 1.0
    else:
        entries = tables.astype(table_dtype)
        params[:, 0, :] = 1.0
    return np.ascontiguousarray(entries.transpose(1, 0, 2)), params


# ---------------------------------------------------------------------------------------
# Lookups (LUT.MMA)
# ---------------------------------------------------------------------------------------

def expand_symmetric(half: np.ndarray) -> np.ndarray:
    """Stored half tables S (..., 2^(g-1)) -> full T' (..., 2^g): T'[2^(g-1) + c] = -S[2^(g-1) - 1 - c]."""
    return np.concatenate([half, -half[..., ::-1]], axis=-1)


def make_lut_mma(tables: np.ndarray, packed: np.ndarray, m: int, n: int, k: int, bits: int, group: int,
                 sym: bool, cache: dict | None = None):
    """A function computing LUT.MMA over the arrays `tables` ([k/g][m][E]) and `packed` (bytes),
    read each time it is called (they may be views of a memory that changes between calls).

    Result: sum_i 2^i sum_j T_j[m][idx[i, n, j]] as an (m, n) array. Integer tables give exact
    int64 sums; fp16 tables are summed in f32.

    The tables are prepared for lookup (mirrored if symmetric, scaled by 2^i per plane) once
    per distinct *content*: `cache` maps the table bytes to the prepared array, so LUT.MMAs
    that read the same tables (every output tile of a layer) share the work.
    """
    jn = k // group
    width = 1 << group  # full tables, or symmetric ones once mirrored
    # Flat offset of (plane i, group j, row r) in the prepared [bits][jn][m][width] array.
    base = (((np.arange(bits)[:, None, None] * jn + np.arange(jn)[None, None, :]) * m
             + np.arange(m)[None, :, None]) * width).reshape(bits, m, 1, jn).astype(np.intp)
    planes = packed.reshape(bits, n, k // 8)
    integer = tables.dtype.kind in "iu"
    scale = (np.int32(1) << np.arange(bits, dtype=np.int32)) if integer else np.float32(2.0) ** np.arange(bits, dtype=np.float32)
    scale = scale.reshape(bits, 1, 1, 1)
    cache = {} if cache is None else cache
    shape_key = (m, k, bits, group, sym, tables.dtype.str)

    def prepared() -> np.ndarray:
        key = (shape_key, tables.tobytes())
        flat = cache.get(key)
        if flat is None:
            full = expand_symmetric(tables) if sym else tables
            work = full.astype(np.int32 if integer else np.float32)
            flat = cache[key] = (work[None] * scale).reshape(-1)
            if len(cache) > 4096:  # a run rarely has this many distinct tables; keep memory bounded
                cache.pop(next(iter(cache)))
        return flat

    def run() -> np.ndarray:
        idx = indices_from_bytes(planes, group)  # (bits, n, jn)
        looked = prepared()[idx[:, None, :, :] + base]  # (bits, m, n, jn)
        if integer:
            return looked.sum(axis=(0, 3), dtype=np.int64)
        return looked.sum(axis=(0, 3), dtype=np.float32)

    return run


def lut_mma(tables: np.ndarray, packed: np.ndarray, m: int, n: int, k: int, bits: int, group: int, sym: bool) -> np.ndarray:
    """LUT.MMA on arrays: see make_lut_mma."""
    return make_lut_mma(tables, packed, m, n, k, bits, group, sym)()


def lut_mma_bound(m_entries_max: int, k: int, bits: int, group: int) -> int:
    """The largest |result| LUT.MMA can produce from entries of magnitude <= m_entries_max."""
    return ((1 << bits) - 1) * (k // group) * m_entries_max


def bytewise_table(tables: np.ndarray, m: int, k: int, bits: int, group: int, sym: bool, dtype=np.int64,
                   out: np.ndarray | None = None) -> np.ndarray:
    """The byte-sum table of make_lut_mma_bytewise for the current contents of `tables`:
    (m, bits * k/8 * 256), entry [r, (i * k/8 + b) * 256 + v] = 2^i * (sum of the 8/g
    lookups that byte value v at byte position b of plane i makes in row r). `dtype`: int64,
    or int32 where the caller knows that it holds every sum (lut_mma_bound). `out`: an
    optional (m, bits, k/8, 256) array of `dtype` to write it into."""
    per_byte, k8 = 8 // group, k // 8
    full = (expand_symmetric(tables) if sym else tables).astype(dtype).reshape(k8, per_byte, m, 1 << group)
    # Byte value v holds digit s (LSB first) in bits [g s, g s + g): the sums over its digits are
    # nested outer sums, the highest digit varying slowest.
    sums = full[:, per_byte - 1]
    for s in range(per_byte - 2, -1, -1):
        sums = (sums[..., :, None] + full[:, s, :, None, :]).reshape(k8, m, -1)  # (k8, m, 256) at the end
    out = np.empty((m, bits, k8, 256), dtype=dtype) if out is None else out
    by_row = sums.transpose(1, 0, 2)
    for i in range(bits):
        np.left_shift(by_row, i, out=out[:, i])
    return out.reshape(m, bits * k8 * 256)


@lru_cache(maxsize=None)
def _byte_table_columns(bits: int, k8: int) -> np.ndarray:
    """(bits, k8, 1): the first byte-sum table column of each (plane, byte position); read-only, shared."""
    base = ((np.arange(bits)[:, None, None] * k8 + np.arange(k8)[None, :, None]) * 256).astype(np.intp)
    base.flags.writeable = False
    return base


def bytewise_indices(packed: np.ndarray, n: int, k: int, bits: int, idx: np.ndarray | None = None):
    """(planes, base, idx, idx2): `np.add(planes, base, out=idx)` gives the byte-sum table column of
    every weight byte, and idx2 is the same array as (bits * k/8, n), the gather's index."""
    k8 = k // 8
    planes = packed.reshape(bits, n, k8).transpose(0, 2, 1)  # (bits, k8, n): the sum runs over the leading axes
    base = _byte_table_columns(bits, k8)
    idx2 = np.empty((bits * k8, n), dtype=np.intp) if idx is None else idx.reshape(bits * k8, n)
    return planes, base, idx2.reshape(bits, k8, n), idx2


def make_lut_mma_bytewise(tables: np.ndarray, packed: np.ndarray, m: int, n: int, k: int, bits: int, group: int,
                          sym: bool, cache: dict, idx: np.ndarray | None = None):
    """make_lut_mma for integer tables, one lookup per weight *byte* instead of per index.

    A weight byte at (plane i, byte b) holds the indices of 8/g consecutive groups, so the
    sum of its 8/g lookups, times 2^i, is a function of the byte value alone: a table of 256
    sums per (row, plane, byte position) (`bytewise_table`), built once per distinct table
    content (`cache`). A call is then one index computation, one gather and one reduction.
    Integer sums are exact in any order, so the result equals make_lut_mma's, bit for bit.

    `idx`: an optional intp scratch array of shape (bits, k/8, n).
    """
    planes, base, idx3, idx2 = bytewise_indices(packed, n, k, bits, idx)
    shape_key = ("bytewise", m, k, bits, group, sym, tables.dtype.str)
    add = np.add

    def prepared() -> np.ndarray:
        key = (shape_key, tables.tobytes())
        pt = cache.get(key)
        if pt is None:
            pt = cache[key] = bytewise_table(tables, m, k, bits, group, sym)
            if len(cache) > 4096:  # a run rarely has this many distinct tables; keep memory bounded
                cache.pop(next(iter(cache)))
        return pt

    def run() -> np.ndarray:
        add(planes, base, out=idx3)
        looked = prepared().take(idx2, axis=1)  # (m, bits * k8, n); the method skips np.take's Python wrapper
        return add.reduce(looked, axis=1)

    return run
