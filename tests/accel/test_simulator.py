"""Functional simulation: hand-written programs against NumPy, LUT math properties, hazards."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lutc.backends.accel.isa import DType, Load, LutBuild, LutMma, Store, acc, sp
from lutc.backends.accel.lut import align4, table_block_layout
from lutc.backends.accel.program import ProgramBuilder
from lutc.backends.accel.simulator import Simulator
from lutc.diagnostics import LutcError

from . import lut_reference as ref


def run(program, config, inputs=None):
    return Simulator(config).run(program, inputs or {})


def test_gemv_2bit_matches_numpy(assembled, edge):
    p = assembled("gemv_lut2")
    out = run(p, edge).outputs
    x = p.tensor_array("x").astype(np.float64)
    codes = ref.unpack_codes(p.tensor_array("w"), 2, 32, 64)
    scale, zero_sym = p.tensor_array("colp")
    # The raw accumulator, bit for bit: quantized symmetric tables, looked up by the codes.
    q, xscale = ref.quantize(ref.all_entries(p.tensor_array("x"), 4, sym=True), p.tensor_array("x"), 4, 64)
    np.testing.assert_array_equal(out["acc"], ref.lut_accumulate(q, codes, 2, 4).astype(np.int16))
    # Symmetric tables count 2q - 3 per weight: the accumulator approximates x . (2q - 3) / scale.
    exact = x @ (2 * codes - 3).T
    assert np.abs(out["acc"] * xscale[0, 0] - exact).max() <= 0.02 * np.abs(exact).max()
    # y = s * sum_k x_k (q_k - z), z = z' + 1.5.
    y = scale * (x @ (codes - (zero_sym + 1.5)[:, None]).T)
    np.testing.assert_allclose(out["y"], y, rtol=0, atol=0.02 * np.abs(y).max())


def test_gemv_4bit_two_rows_matches_numpy(assembled, edge):
    p = assembled("gemv_lut4")
    out = run(p, edge).outputs
    x = p.tensor_array("x")
    codes = ref.unpack_codes(p.tensor_array("w"), 4, 16, 64)
    q, _ = ref.quantize(ref.all_entries(x, 4, sym=True), x, 4, 64)
    np.testing.assert_array_equal(out["acc"], ref.lut_accumulate(q, codes, 4, 4).astype(np.int16))
    scale, zero_sym = p.tensor_array("colp")
    y = scale * (x.astype(np.float64) @ (codes - (zero_sym + 7.5)[:, None]).T)
    np.testing.assert_allclose(out["y"], y, rtol=0, atol=0.02 * np.abs(y).max())


def test_double_buffered_gemm_is_exact(assembled, edge):
    p = assembled("gemm_double_buffer")
    out = run(p, edge).outputs
    expected = p.tensor_array("a").astype(np.int64) @ p.tensor_array("bt").astype(np.int64).T
    np.testing.assert_array_equal(out["c"], expected.astype(np.int32))


def test_vector_epilogue_matches_numpy(assembled, edge):
    p = assembled("vec_epilogue")
    out = run(p, edge).outputs
    z = p.tensor_array("x") + p.tensor_array("bias")[None, :]
    h = z / (1 + np.exp(-z))
    e = np.exp(h - h.max(axis=1, keepdims=True))
    y = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(out["y"], y, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out["yh"], out["y"].astype(np.float16))
    np.testing.assert_array_equal(out["yq"], np.clip(np.rint(out["y"] * np.float32(127)), -128, 127).astype(np.int8))


@pytest.mark.parametrize("name, message", [
    ("deadlock", "instruction #1 (compute queue, VEC.RELU): deadlock (token underflow): waits for token #1 from the load queue"),
    ("circular_wait", "instruction #0 (load queue, LOAD): deadlock (circular wait): #0 (load queue) waits for a token from #1"),
    ("oob", "instruction #0 (load queue, LOAD): scratchpad overflow: dst sp[0x3ff80..0x40080)"),
    ("race", "instruction #1 (load queue, LOAD): data race: writes dst sp[0x0..0x1000) at cycle 576 while instruction #2 "
             "(compute queue, VEC.EXP) reads sp[0x0..0x1000)"),
    ("uninit", "instruction #1 (compute queue, VEC.ADD): read of uninitialized scratchpad: b sp[0x100..0x140) byte 0x100"),
])
def test_hazards_are_reported_with_instruction_and_queue(name, message, program_path, edge):
    from lutc.backends.accel.assembler import assemble_file

    with pytest.raises(LutcError) as info:
        run(assemble_file(program_path(name)), edge)
    assert message in info.value.message
    assert info.value.loc.file == str(program_path(name)) and info.value.loc.line is not None


def test_overflowing_int16_accumulator_is_a_hazard(edge):
    """15 * 16 tables * 127 = 30480 fits int16; accumulating it a second time does not, and the simulator says so."""
    b = ProgramBuilder("overflow", config=edge)
    x = b.tensor("x", "input", "f32", (1, 64))
    w = b.tensor("w", "weight", "u8", (4, 1, 8), data=np.full((4, 1, 8), 0xFF, np.uint8))
    b.emit(Load(sp=sp(0), dram=x.addr, rows=1, row_bytes=256))
    b.emit(Load(sp=sp(0x100), dram=w.addr, rows=1, row_bytes=32, push_next=True))
    b.emit(LutBuild(dst=sp(0x200, "i8"), src=sp(0, "f32"), rows=1, k=64, qgroup=64, sym=True, pop_prev=True))
    for accum in (False, True, True):
        b.emit(LutMma(dst=acc(0, "i16"), tables=sp(0x200, "i8"), weights=sp(0x100), m=1, n=1, k=64, bits=4, sym=True, accum=accum))
    b.finish()
    with pytest.raises(LutcError, match=r"instruction #4 \(compute queue, LUT.MMA\): LUT.MMA result overflows the int16 accumulator: 60960"):
        run(b.build(), edge, {"x": np.ones((1, 64), np.float32)})


def test_output_never_written_is_an_error(edge):
    b = ProgramBuilder("lazy", config=edge)
    b.tensor("y", "output", "f32", (4,))
    b.finish()
    with pytest.raises(LutcError, match="output 'y' was not fully written"):
        run(b.build(), edge)


# ---------------------------------------------------------------------------------------
# LUT math against the reference, over shapes, widths and table kinds
# ---------------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None, derandomize=True)
@given(n=st.integers(1, 20), k_bytes=st.integers(1, 6), bits=st.integers(1, 8), group=st.sampled_from([1, 2, 4, 8]),
       m=st.integers(1, 3), sym=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_lut_kernels_match_the_reference(n, k_bytes, bits, group, m, sym, seed):
    """lut.pack_weight_planes / codes_from_planes / lut_mma against the reference, on exact int8 tables."""
    from lutc.backends.accel.lut import codes_from_planes, lut_mma, pack_weight_planes

    rng = np.random.default_rng(seed)
    k = 8 * k_bytes
    codes = rng.integers(0, 1 << bits, size=(n, k))
    packed = pack_weight_planes(codes, bits, group)
    np.testing.assert_array_equal(packed, ref.pack_codes(codes, bits))
    np.testing.assert_array_equal(codes_from_planes(packed, bits, n, k), codes)
    entries = 1 << (group - 1) if sym else 1 << group
    tables = rng.integers(-127, 128, size=(k // group, m, entries)).astype(np.int8)
    full = np.concatenate([tables, -tables[..., ::-1]], axis=-1) if sym else tables  # T'[2^g - 1 - c] = -T'[c]
    expected = ref.lut_accumulate(full.transpose(1, 0, 2), codes, bits, group)
    np.testing.assert_array_equal(lut_mma(tables, packed, m, n, k, bits, group, sym), expected.astype(np.int64))


def lut_program(config, x: np.ndarray, planes: np.ndarray, bits: int, qgroup: int):
    """LOAD x and weights; LUT.BUILD; LUT.MMA; store the raw accumulator."""
    g, sym = config.lut.group, config.lut.symmetric
    tdt, adt = DType.parse(config.lut.table_dtype), DType.parse(config.lut.accum_dtype)
    m, k = x.shape
    n = planes.shape[1]
    b = ProgramBuilder("lut", config=config)
    xt = b.tensor("x", "input", "f32", x.shape)
    wt = b.tensor("w", "weight", "u8", planes.shape, data=planes)
    out = b.tensor("acc", "output", adt, (m, n))
    w_at = align4(x.nbytes)
    tbl_at = align4(w_at + planes.nbytes)
    _, _, block = table_block_layout(m, k, g, sym, tdt.size, qgroup)
    b.emit(Load(sp=sp(0), dram=xt.addr, rows=1, row_bytes=x.nbytes))
    b.emit(Load(sp=sp(w_at), dram=wt.addr, rows=1, row_bytes=planes.nbytes, push_next=True))
    b.emit(LutBuild(dst=sp(tbl_at, tdt), src=sp(0, "f32"), rows=m, k=k, qgroup=qgroup, sym=sym, pop_prev=True))
    b.emit(LutMma(dst=acc(0, adt), tables=sp(tbl_at, tdt), weights=sp(w_at), m=m, n=n, k=k, bits=bits, sym=sym, push_next=True))
    b.emit(Store(dram=out.addr, sp=acc(0), rows=1, row_bytes=m * n * adt.size, pop_prev=True))
    b.finish()
    return b.build()


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(m=st.integers(1, 3), n=st.integers(1, 40), k_groups=st.integers(1, 3), bits=st.integers(1, 4),
       full=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_int8_lut_mma_is_bit_exact(edge, m, n, k_groups, bits, full, seed):
    config = edge.replace(lut={"table_entries": 16, "accum_dtype": "int32"}) if full else edge.replace(lut={"accum_dtype": "int32"})
    rng = np.random.default_rng(seed)
    k = 16 * k_groups
    x = rng.standard_normal((m, k)).astype(np.float32)
    codes = rng.integers(0, 1 << bits, size=(n, k))
    acc_out = run(lut_program(config, x, ref.pack_codes(codes, bits), bits, qgroup=16 * k_groups), config, {"x": x}).outputs["acc"]
    q, scale = ref.quantize(ref.all_entries(x, 4, sym=not full), x, 4, k)
    np.testing.assert_array_equal(acc_out, ref.lut_accumulate(q, codes, bits, 4).astype(np.int32))
    # And the tables mean what they should: acc * scale ~ x . codes (full) or x . (2 codes - (2^b - 1)) (symmetric).
    weights = codes if full else 2 * codes - ((1 << bits) - 1)
    exact = x.astype(np.float64) @ weights.T
    bound = 0.5 * scale.max() * (k // 4) * ((1 << bits) - 1) + 1e-9
    assert np.abs(acc_out * scale[:, :1] - exact).max() <= bound


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(m=st.integers(1, 9), n=st.integers(1, 300), k_groups=st.integers(1, 4), bits=st.sampled_from([1, 2, 3, 4, 8]),
       seed=st.integers(0, 2**32 - 1))
def test_fp16_lut_mma_matches_numpy(ltc, m, n, k_groups, bits, seed):
    rng = np.random.default_rng(seed)
    k = 8 * k_groups
    x = rng.standard_normal((m, k)).astype(np.float32)
    codes = rng.integers(0, 1 << bits, size=(n, k))
    acc_out = run(lut_program(ltc, x, ref.pack_codes(codes, bits), bits, qgroup=k), ltc, {"x": x}).outputs["acc"]
    tables = ref.all_entries(x, 4, sym=True).astype(np.float16).astype(np.float32)  # fp16 entries
    expected = ref.lut_accumulate(tables, codes, bits, 4)
    np.testing.assert_allclose(acc_out, expected, rtol=1e-5, atol=1e-4 * max(1.0, np.abs(expected).max()))


def test_lut_build_writes_the_documented_table_block(edge):
    """[k/g][rows][2^(g-1)] int8 entries, then at a 4-byte boundary [k/qgroup][2][rows] f32 (scale, sum)."""
    rows, k, qgroup = 3, 32, 16
    x = np.random.default_rng(5).standard_normal((rows, k)).astype(np.float32)
    entries_bytes, params_at, block = table_block_layout(rows, k, 4, True, 1, qgroup)
    assert (entries_bytes, params_at, block) == (8 * 3 * 8, 192, 192 + 2 * 2 * 3 * 4)
    b = ProgramBuilder("block", config=edge)
    xt = b.tensor("x", "input", "f32", x.shape)
    out = b.tensor("block", "output", "u8", (block,))
    b.emit(Load(sp=sp(0), dram=xt.addr, rows=1, row_bytes=x.nbytes, push_next=True))
    b.emit(LutBuild(dst=sp(0x400, "i8"), src=sp(0, "f32"), rows=rows, k=k, qgroup=qgroup, sym=True, pop_prev=True, push_next=True))
    b.emit(Store(dram=out.addr, sp=sp(0x400), rows=1, row_bytes=block, pop_prev=True))
    b.finish()
    raw = run(b.build(), edge, {"x": x}).outputs["block"]
    entries = raw[:entries_bytes].view(np.int8).reshape(k // 4, rows, 8)
    params = raw[params_at:].view(np.float32).reshape(k // qgroup, 2, rows)
    q, scale = ref.quantize(ref.all_entries(x, 4, sym=True), x, 4, qgroup)
    np.testing.assert_array_equal(entries, q[:, :, :8].transpose(1, 0, 2))  # the stored half: c < 2^(g-1)
    np.testing.assert_array_equal(params[:, 0, :], scale.T)
    np.testing.assert_allclose(params[:, 1, :], x.reshape(rows, 2, 16).sum(axis=2).T, rtol=1e-6)
