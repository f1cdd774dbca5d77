"""The register-blocked dequant mpGEMM kernel (`kernels.mpgemm_words`) vs the mpgemm reference.

Tolerance, and why: the kernel sums x * q per group in 8 vector lanes (then the lanes at the
end), applies the scale once per group and subtracts the zero-point term s z Sx separately,
so it differs from NumPy's `x @ dequantize(W).T` only by f32 rounding in another order; the
in-place slot masks and the 2^-(slot t) scaling of x are exact (powers of two). The bound
is 1e-5 of the magnitude sum_k |x| |s| (q + z) of the terms behind each output (K <= 300
terms of ~6e-8 relative error each), as in test_cpu.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import lutc
from lutc.backends.cpu import kernels
from lutc.ir import Builder, Module, make_function, sync_function_type, tensor
from lutc.ir.core import function_body
from lutc.ir.types import ElementType

# (bits, group, K, N, zeros?): bits 2/3/4/8; K a whole number of groups, K not a multiple of
# the group (padding), K not a multiple of the vector width (203, 301); N a multiple of 4,
# of 2 only, odd (4, 2, 1 rows per block); small groups (fewer slots per word: 4-bit G 32,
# 2-bit G 64 / 40) and a group that is no multiple of 8 (the byte kernel: G 36).
CASES = [
    (2, 128, 256, 48, False), (2, 128, 256, 48, True), (2, 64, 203, 30, True), (2, 40, 120, 7, False),
    (3, 64, 200, 12, True), (3, 128, 301, 9, False),
    (4, 128, 256, 20, False), (4, 32, 203, 18, True), (4, 128, 300, 8, True),
    (8, 128, 256, 16, True), (8, 64, 201, 5, False),
    (4, 36, 100, 8, True),
]


def case_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    for bits, group, k, n, zeros in CASES:
        blocks = -(-k // group)
        codes = rng.integers(0, 2**bits, (n, k)).astype(np.uint8)
        scales = rng.uniform(-0.2, 0.2, (n, blocks)).astype(np.float32)
        z = rng.integers(0, 2**bits, (n, blocks)).astype(np.uint8) if zeros else None
        out.append((codes, scales, z))
    return out


WEIGHTS = case_data()


def module_for(m: int) -> Module:
    fn = make_function("main", [tensor((m, k), "f32") for _, _, k, _, _ in CASES])
    b = Builder(function_body(fn))
    outs = []
    for arg, (bits, group, _, _, _), (codes, scales, zeros) in zip(function_body(fn).args, CASES, WEIGHTS):
        operands = [arg, b.constant(codes, ElementType(f"ui{bits}")), b.constant(scales)]
        if zeros is not None:
            operands.append(b.constant(zeros, ElementType(f"ui{bits}")))
        outs.append(b.create("graph.mpgemm", operands, {"bits": bits, "group_size": group}).result)
    b.create("func.return", outs, result_types=[])
    sync_function_type(fn)
    module = Module()
    module.body.append(fn)
    return module


def magnitude(x: np.ndarray, bits: int, group: int, codes, scales, zeros) -> np.ndarray:
    k = codes.shape[1]
    s = np.repeat(np.abs(scales), group, axis=1)[:, :k]
    z = 2 ** (bits - 1) if zeros is None else np.repeat(zeros, group, axis=1)[:, :k]
    return np.abs(x.astype(np.float64)) @ (s * (codes + z)).T


@pytest.mark.parametrize("m", [1, 4])
def test_word_kernel_matches_mpgemm_reference(m):
    """M = 1: the register (decode) kernel; M = 4: the prefill kernel (codes unpacked once per block)."""
    rng = np.random.default_rng(10 + m)
    inputs = [rng.standard_normal((m, k)).astype(np.float32) for _, _, k, _, _ in CASES]
    module = module_for(m)
    want = lutc.compile(module, target="reference").run(inputs)
    got = lutc.compile(module_for(m), target="cpu").run(inputs)
    for x, g, w, (bits, group, _, _, _), weights in zip(inputs, got, want, CASES, WEIGHTS):
        assert g.shape == w.shape and g.dtype == w.dtype
        excess = np.abs(g.astype(np.float64) - w) - (1e-5 * magnitude(x, bits, group, *weights) + 1e-6)
        assert excess.max() <= 0, f"{bits}-bit G {group}: max excess {excess.max():.3g}"


@pytest.mark.parametrize("bits,group,n", [(2, 128, 8), (3, 64, 6), (4, 32, 5), (8, 128, 4), (2, 40, 4)])
def test_word_packing_round_trips(bits, group, n):
    layout = kernels.word_packing_for(bits, group, n)
    assert layout is not None and group % layout.chunk == 0 and n % layout.rows == 0
    assert layout.slot * layout.per_word <= 32 and layout.slot >= bits
    codes = np.random.default_rng(0).integers(0, 2**bits, (n, 4 * group)).astype(np.uint8)
    words = kernels.pack_codes_words(codes, layout)
    assert words.dtype == np.uint32 and words.size * layout.per_word == codes.size
    np.testing.assert_array_equal(kernels.unpack_codes_words(words, layout, n, 4 * group), codes)


def test_word_layout_choice():
    assert kernels.word_packing_for(2, 128, 4096) == kernels.WordPacking(2, 16, 4)
    assert kernels.word_packing_for(4, 128, 4096) == kernels.WordPacking(4, 8, 4)
    assert kernels.word_packing_for(3, 128, 6) == kernels.WordPacking(4, 8, 2)
    assert kernels.word_packing_for(8, 64, 7) == kernels.WordPacking(8, 4, 1)
    assert kernels.word_packing_for(4, 32, 8) == kernels.WordPacking(4, 4, 4)  # 32 = 8 lanes x 4 slots
    assert kernels.word_packing_for(2, 36, 8) is None  # not a multiple of 8: byte kernel
