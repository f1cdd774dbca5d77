"""The simulator's fast paths: reuse of a program's static work across runs, static
uninitialized-read analysis, byte-wise LUT lookups and BLAS-exact integer MMA."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lutc.backends.accel.isa import Load, Mma, Store, Vec, VecFunc, acc, sp
from lutc.backends.accel.lut import bytewise_table, lut_mma_bound, make_lut_mma, make_lut_mma_bytewise, pack_weight_planes
from lutc.backends.accel.program import ProgramBuilder
from lutc.backends.accel.simulator import Simulator
from lutc.diagnostics import LutcError


def gemm_program(config, m: int, k: int, n: int, accum_steps: int = 1):
    """C = sum over steps of A . B^T (the same A and B each step, accumulated in int32)."""
    rng = np.random.default_rng(m * 1000 + k + n)
    b = ProgramBuilder("gemm", config=config)
    at = b.tensor("a", "input", "i8", (m, k))
    bt = b.tensor("bt", "weight", "i8", (n, k), data=rng.integers(-128, 128, size=(n, k), dtype=np.int8))
    ct = b.tensor("c", "output", "i32", (m, n))
    b.emit(Load(sp=sp(0), dram=at.addr, rows=1, row_bytes=m * k))
    b.emit(Load(sp=sp(m * k), dram=bt.addr, rows=1, row_bytes=n * k, push_next=True))
    for step in range(accum_steps):
        b.emit(Mma(dst=acc(0, "i32"), a=sp(0, "i8"), b=sp(m * k, "i8"), m=m, n=n, k=k, transpose_b=True,
                   accum=step > 0, pop_prev=step == 0, push_next=step == accum_steps - 1))
    b.emit(Store(dram=ct.addr, sp=acc(0), rows=1, row_bytes=m * n * 4, pop_prev=True))
    b.finish()
    return b.build()


def test_repeat_runs_with_new_inputs_match_fresh_runs(edge):
    program = gemm_program(edge, 4, 64, 8)
    bt = program.tensor_array("bt").astype(np.int64)
    sim = Simulator(edge)
    for seed in range(3):
        a = np.random.default_rng(seed).integers(-128, 128, size=(4, 64), dtype=np.int8)
        again = sim.run(program, {"a": a})
        fresh = Simulator(edge).run(program, {"a": a})
        np.testing.assert_array_equal(again.outputs["c"], a.astype(np.int64) @ bt.T)
        np.testing.assert_array_equal(again.outputs["c"], fresh.outputs["c"])
        assert again.report.to_json() == fresh.report.to_json()


def test_a_changed_program_is_not_run_from_the_old_plan(edge):
    program = gemm_program(edge, 4, 64, 8)
    sim = Simulator(edge)
    a = np.ones((4, 64), np.int8)
    first = sim.run(program, {"a": a}).outputs["c"]
    # Point the MMA at bytes nothing wrote: the same simulator must now report it.
    i = next(k for k, ins in enumerate(program.instructions) if isinstance(ins, Mma))
    program.instructions[i] = replace(program.instructions[i], a=sp(0x8000, "i8"))
    with pytest.raises(LutcError, match="read of uninitialized scratchpad: a sp\\[0x8000"):
        sim.run(program, {"a": a})
    program.instructions[i] = replace(program.instructions[i], a=sp(0, "i8"))
    np.testing.assert_array_equal(sim.run(program, {"a": a}).outputs["c"], first)


def test_hazard_before_an_uninitialized_read_is_reported_first(edge):
    """Execution stops at the first hazard in time order, whether it needs data (NaN) or not."""
    b = ProgramBuilder("nan_then_uninit", config=edge)
    x = b.tensor("x", "input", "f32", (1, 16))
    y = b.tensor("y", "output", "i8", (1, 16))
    b.emit(Load(sp=sp(0), dram=x.addr, rows=1, row_bytes=64, push_next=True))
    b.emit(Vec(func=VecFunc.MOV, dst=sp(0x100, "i8"), a=sp(0, "f32"), rows=1, cols=16, pop_prev=True))
    b.emit(Vec(func=VecFunc.ADD, dst=sp(0x200, "f32"), a=sp(0, "f32"), b=sp(0x400, "f32"), rows=1, cols=16, push_next=True))
    b.emit(Store(dram=y.addr, sp=sp(0x100), rows=1, row_bytes=16, pop_prev=True))
    b.finish()
    program = b.build()
    sim = Simulator(edge)
    x_nan = np.zeros((1, 16), np.float32)
    x_nan[0, 3] = np.nan
    for _ in range(2):  # and the same on a repeat run
        with pytest.raises(LutcError, match=r"instruction #1 .*NaN converted to int8"):
            sim.run(program, {"x": x_nan})
        with pytest.raises(LutcError, match=r"instruction #2 .*read of uninitialized scratchpad: b sp\[0x400"):
            sim.run(program, {"x": np.ones((1, 16), np.float32)})


@pytest.mark.parametrize("k, steps", [(64, 1), (64, 3), (2048, 1)])  # k = 2048: beyond f32's exact range, f64 BLAS
def test_integer_mma_is_exact(edge, k, steps):
    program = gemm_program(edge, 2, k, 8, accum_steps=steps)
    a = np.random.default_rng(k).integers(-128, 128, size=(2, k), dtype=np.int8)
    a[0] = -128  # the extreme products
    out = Simulator(edge).run(program, {"a": a}).outputs["c"]
    expected = steps * (a.astype(np.int64) @ program.tensor_array("bt").astype(np.int64).T)
    np.testing.assert_array_equal(out, expected)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(m=st.integers(1, 3), n=st.integers(1, 24), k_bytes=st.integers(1, 5), bits=st.integers(1, 8),
       group=st.sampled_from([1, 2, 4, 8]), sym=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_bytewise_lut_mma_equals_the_per_index_lookup(m, n, k_bytes, bits, group, sym, seed):
    rng = np.random.default_rng(seed)
    k = 8 * k_bytes
    if k % group:
        return
    entries = 1 << (group - 1) if sym else 1 << group
    tables = rng.integers(-127, 128, size=(k // group, m, entries)).astype(np.int8)
    packed = pack_weight_planes(rng.integers(0, 1 << bits, size=(n, k)), bits, group).reshape(-1)
    expected = make_lut_mma(tables, packed, m, n, k, bits, group, sym)()
    got = make_lut_mma_bytewise(tables, packed, m, n, k, bits, group, sym, {})()
    np.testing.assert_array_equal(got, expected)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(m=st.integers(1, 3), k_bytes=st.integers(1, 6), bits=st.integers(1, 8), group=st.sampled_from([1, 2, 4, 8]),
       sym=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_int32_byte_sum_tables_equal_int64(m, k_bytes, bits, group, sym, seed):
    """The simulator gathers from int32 byte-sum tables (lut_mma_bound < 2^31): same entries as int64,
    for any int8 table bytes, -128 included (a program may write any byte)."""
    k = 8 * k_bytes
    if k % group:
        return
    entries = 1 << (group - 1) if sym else 1 << group
    tables = np.random.default_rng(seed).integers(-128, 128, size=(k // group, m, entries)).astype(np.int8)
    tables.flat[0] = -128
    wide = bytewise_table(tables, m, k, bits, group, sym)
    narrow = bytewise_table(tables, m, k, bits, group, sym, np.int32)
    assert narrow.dtype == np.int32 and lut_mma_bound(128, k, bits, group) < 2**31
    np.testing.assert_array_equal(narrow, wide)
