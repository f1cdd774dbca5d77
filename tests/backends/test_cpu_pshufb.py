"""The AVX2 pshufb lut.gemm kernel (backends/cpu/kernels.py: lut_gemm_pshufb) and its fallback.

The kernel's integer part is exact: int8 table entries, plane-weighted by vpmaddubsw and
summed in int16 over chunks whose bound kc * 127 * (2^bits - 1) <= 32767 (no overflow), so
only the float epilogue differs from the lut.gemm reference: one conversion and table-scale
product per chunk, the c1 = s/2, c2 = s * (o - z) products (precomputed in float64, rounded
once), and the sums over chunks and groups, in another order than NumPy's. Each is one f32
rounding (<= 6e-8 relative) of a partial sum bounded by the magnitude below, with at most
~K/16 of them per output: 1e-5 of the magnitude is a safe bound (measured: ~3e-7).

    magnitude[m, n] = sum_b |s[n,b]| (f sum_i 2^i sum_{j in b} |entry| + |o - z[n,b]| sum_{k in b} |x_k|)

Each configuration compiles once (module-scoped fixtures, small shapes).
"""

from __future__ import annotations

import numpy as np
import pytest

import lutc
from lutc.backends.cpu import kernels
from lutc.ir import Builder, Module, make_function, sync_function_type, tensor
from lutc.ir.core import function_body
from lutc.ir.dialects import lut as lutd
from lutc.ir.types import ElementType
from lutc.passes import PassManager

import tvm

HOST_AVX2 = bool(tvm.target.codegen.llvm_cpu_has_features("avx2", tvm.target.Target(
    {"kind": "llvm", "mcpu": tvm.target.codegen.llvm_get_system_cpu()})))
needs_avx2 = pytest.mark.skipif(not HOST_AVX2, reason="the pshufb kernel needs an AVX2 host")

# (bits, group size, zero points?, K, N): bits 1-4; K = 200 and 100 are not whole weight
# groups (nor whole kernel chunks) and N = 40, 72 not whole 32-row blocks.
CASES = [(1, 64, False, 256, 32), (2, 128, False, 256, 64), (2, 64, True, 200, 40), (3, 64, True, 200, 72),
         (4, 128, False, 256, 40), (4, 32, True, 100, 48)]
M = 2


def case_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    data = []
    for bits, group, zeros, k, n in CASES:
        blocks = -(-k // group)
        codes = rng.integers(0, 2**bits, (n, k)).astype(np.uint8)
        scales = rng.uniform(-0.2, 0.2, (n, blocks)).astype(np.float32)
        z = rng.integers(0, 2**bits, (n, blocks)).astype(np.uint8) if zeros else None
        x = rng.standard_normal((M, k)).astype(np.float32)
        data.append((codes, scales, z, x))
    return data


DATA = case_data()
INPUTS = {f"x{i}": d[3] for i, d in enumerate(DATA)}


def mpgemm_module() -> Module:
    fn = make_function("main", [tensor((M, k), "f32") for _, _, _, k, _ in CASES])
    fn.set_attr("arg_names", list(INPUTS))
    b = Builder(function_body(fn))
    args = function_body(fn).args
    outs = []
    for arg, (bits, group, _, _, _), (codes, scales, zeros, _) in zip(args, CASES, DATA):
        operands = [arg, b.constant(codes, ElementType(f"ui{bits}")), b.constant(scales)]
        if zeros is not None:
            operands.append(b.constant(zeros, ElementType(f"ui{bits}")))
        outs.append(b.create("graph.mpgemm", operands, {"bits": bits, "group_size": group}).result)
    b.create("func.return", outs, result_types=[])
    sync_function_type(fn)
    module = Module()
    module.body.append(fn)
    return module


def lut_module(options: str) -> Module:
    module = mpgemm_module()
    PassManager.parse(f"lut-rewrite{{policy=always,table-dtype=i8,{options}}}").run(module)
    return module


def magnitudes(symmetric: bool, act_group: int) -> list[np.ndarray]:
    """The bound above, from the reference's own int8 tables and planes."""
    out = []
    for (bits, group, _, k, _), (codes, scales, zeros, x) in zip(CASES, DATA):
        tables = lutd.build_tables(x, g=4, symmetric=symmetric, base3=False)
        q, ts = lutd.quantize_tables(tables, x, g=4, act_group=act_group)
        j = q.shape[-2]
        per_scale = j if act_group == 0 else act_group // 4
        entries = np.abs(q.astype(np.float64)) * np.repeat(ts, per_scale, axis=-1)[..., :j, None]
        planes = lutd.repack_weights(codes, bits=bits, g=4, symmetric=symmetric, base3=False)
        looked = np.abs(lutd.lookup_planes(entries, planes, g=4, symmetric=symmetric, base3=False))  # (P, M, N, J)
        weighted = np.tensordot(2.0 ** np.arange(bits), lutd.sum_groups(looked, group // 4), axes=(0, 0))  # (M, N, B)
        fac, off = (0.5, (2**bits - 1) / 2) if symmetric else (1.0, 0.0)
        z = 2 ** (bits - 1) if zeros is None else zeros.astype(np.float64)
        abs_x = lutd.sum_groups(np.abs(x.astype(np.float64)), group)  # (M, B)
        out.append((np.abs(scales) * (fac * weighted + np.abs(off - z) * abs_x[:, None, :])).sum(-1))
    return out


def assert_within(got, want, magnitude, rel=1e-5):
    assert got.shape == want.shape and got.dtype == want.dtype
    excess = np.abs(got.astype(np.float64) - want) - (rel * magnitude + 1e-6)
    assert excess.max() <= 0, f"max excess {excess.max():.3g} over the float-epilogue bound"


# (lut-rewrite options, symmetric, act_group): the default (symmetric, act groups of 64),
# one table scale per row (int16 chunks split within a weight group at 4 bits), plain tables.
CONFIGS = [("act-group=64", True, 64), ("act-group=0", True, 0), ("symmetric=false,act-group=128", False, 128)]


@pytest.fixture(scope="module", params=CONFIGS, ids=[c[0] for c in CONFIGS])
def compiled(request):
    options, symmetric, act_group = request.param
    module = lut_module(options)
    want = lutc.compile(module, target="reference").run(INPUTS)
    return module, lutc.compile(module, target="cpu"), want, symmetric, act_group


@needs_avx2
def test_pshufb_kernel_matches_lut_gemm_reference(compiled):
    _, model, want, symmetric, act_group = compiled
    assert model.lut_gemm_kernels == ["pshufb"] * len(CASES)
    got = model.run(INPUTS)
    for g, w, mag in zip(got, want, magnitudes(symmetric, act_group)):
        assert_within(g, w, mag)


def test_fallback_without_avx2_matches_the_same_reference():
    """A target without AVX2 gets the generic kernel (no intrinsic is emitted: no abort)."""
    module = lut_module("act-group=64")
    model = lutc.compile(module, target="cpu", config={"mcpu": "x86-64"})
    assert model.lut_gemm_kernels == ["generic: the target has no AVX2"] * len(CASES)
    want = lutc.compile(module, target="reference").run(INPUTS)
    for g, w, mag in zip(model.run(INPUTS), want, magnitudes(True, 64)):
        assert_within(g, w, mag, rel=2e-5)


def test_unsupported_formats_fall_back():
    assert kernels.pshufb_unsupported(g=4, bits=2, symmetric=True, base3=False, table_dtype="int8", group_size=128,
                                      act_group=64, dtype="float32") is None
    assert "int8" in kernels.pshufb_unsupported(g=4, bits=2, symmetric=True, base3=False, table_dtype="float32",
                                                group_size=128, act_group=64, dtype="float32")
    assert "g = 2" in kernels.pshufb_unsupported(g=2, bits=2, symmetric=True, base3=False, table_dtype="int8",
                                                 group_size=128, act_group=64, dtype="float32")
    assert "base-3" in kernels.pshufb_unsupported(g=4, bits=2, symmetric=True, base3=True, table_dtype="int8",
                                                  group_size=128, act_group=64, dtype="float32")
    # a weight group of 3 tables (12 k): no even chunk divides it
    assert "even" in kernels.pshufb_unsupported(g=4, bits=2, symmetric=True, base3=False, table_dtype="int8",
                                                group_size=12, act_group=64, dtype="float32")


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_chunks_cannot_overflow_int16(bits):
    for group, act in ((128, 64), (128, 0), (64, 128), (256, 0)):
        layout = kernels.PshufbLayout(32, 64, bits, group, 4, act)
        assert layout.chunk % 2 == 0 and layout.per_group % layout.chunk == 0
        assert layout.chunk * 127 * (2**bits - 1) <= 32767


def test_packed_layout_decodes_to_the_planes():
    """Byte q of a 32-byte vector: row nb*R + h*16 + (q//16)*8 + (q%16)//2, plane 2pp + q%2;
    low nibble table 2jp, high nibble table 2jp+1 (docs/backend_cpu.md)."""
    rng = np.random.default_rng(3)
    bits, n, j = 3, 40, 6
    planes = rng.integers(0, 16, (bits, n, j)).astype(np.uint8)
    layout = kernels.PshufbLayout(n, j, bits, 16, 4, 0)  # 4 tables per group: J padded to 8
    packed = kernels.pack_planes_pshufb(planes, layout).reshape(
        layout.blocks, layout.j_padded // 2, layout.plane_pairs, layout.rows // 16, 32)
    for nb, jp, pp, h, q in np.ndindex(packed.shape):
        row = nb * layout.rows + h * 16 + (q // 16) * 8 + (q % 16) // 2
        plane = 2 * pp + q % 2
        for nibble in range(2):
            table = 2 * jp + nibble
            want = planes[plane, row, table] if plane < bits and row < n and table < j else 0
            assert (packed[nb, jp, pp, h, q] >> (4 * nibble)) & 15 == want
