"""An independent NumPy reference of the LUT math, written from the formulas (not from lut.py).

Every table entry is computed directly for all 2^g index values (no mirroring), the T-MAC
int8 quantization is applied entry by entry, and lookups are done with explicit loops over
bit planes and groups. Float sums use the order the ISA documents (x_0 first), so integer
results must match the simulator bit for bit.
"""

from __future__ import annotations

import numpy as np


def unpack_codes(planes: np.ndarray, bits: int, n: int, k: int) -> np.ndarray:
    """[bits][n][k/8] bytes, LSB-first -> codes (n, k)."""
    planes = np.asarray(planes, dtype=np.uint8).reshape(bits, n, k // 8)
    codes = np.zeros((n, k), dtype=np.int64)
    for i in range(bits):
        for byte in range(k // 8):
            for bit in range(8):
                codes[:, 8 * byte + bit] |= ((planes[i, :, byte] >> bit) & 1).astype(np.int64) << i
    return codes


def pack_codes(codes: np.ndarray, bits: int) -> np.ndarray:
    n, k = codes.shape
    out = np.zeros((bits, n, k // 8), dtype=np.uint8)
    for i in range(bits):
        for kk in range(k):
            out[i, :, kk // 8] |= (((codes[:, kk] >> i) & 1) << (kk % 8)).astype(np.uint8)
    return out


def all_entries(x: np.ndarray, g: int, sym: bool) -> np.ndarray:
    """T[r, j, c] for every c in [0, 2^g): sum_t coef(c, t) x[r, g*j+t], coef = c_t or 2c_t - 1 (f32, t order)."""
    rows, k = x.shape
    xs = x.astype(np.float32).reshape(rows, k // g, g)
    out = np.zeros((rows, k // g, 1 << g), dtype=np.float32)
    for c in range(1 << g):
        acc = None
        for t in range(g):
            bit = (c >> t) & 1
            coef = np.float32(2 * bit - 1 if sym else bit)
            term = xs[:, :, t] * coef
            acc = term if acc is None else acc + term
        out[:, :, c] = acc
    return out


def quantize(entries: np.ndarray, x: np.ndarray, g: int, qgroup: int) -> tuple[np.ndarray, np.ndarray]:
    """T-MAC: scale[r, q] = max over the group's tables of sum_t |x_t| / 127; entries rint(T / scale)."""
    rows, k = x.shape
    xs = np.abs(x.astype(np.float32)).reshape(rows, k // g, g)
    absum = xs[:, :, 0]
    for t in range(1, g):
        absum = absum + xs[:, :, t]
    scale = (absum.reshape(rows, k // qgroup, qgroup // g).max(axis=2) / np.float32(127)).astype(np.float32)
    scale[scale == 0] = 1.0
    per_table = np.repeat(scale, qgroup // g, axis=1)
    q = np.clip(np.rint(entries / per_table[:, :, None]), -127, 127)
    return q, scale


def lut_accumulate(table: np.ndarray, codes: np.ndarray, bits: int, g: int) -> np.ndarray:
    """acc[r, n] = sum_i 2^i sum_j table[r, j, idx(i, n, j)] with idx from the codes' bit planes (float64)."""
    rows = table.shape[0]
    n, k = codes.shape
    acc = np.zeros((rows, n), dtype=np.float64)
    for i in range(bits):
        plane = (codes >> i) & 1
        for j in range(k // g):
            idx = np.zeros(n, dtype=np.int64)
            for t in range(g):
                idx |= plane[:, g * j + t] << t
            acc += (1 << i) * table[:, j, idx].astype(np.float64)
    return acc
