"""Integer MMAs reading the same B bytes are computed together (one BLAS call at the first of
them, see functional._prepare_mmas). Random compute streams that rewrite A and B tiles between
MMAs, accumulate and reuse accumulator slots must still give what running each MMA on its own
gives; operand versions must match a brute-force search."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lutc.diagnostics import LutcError
from lutc.backends.accel.isa import Load, Mma, Queue, Store, Sync, Vec, VecFunc, acc, sp
from lutc.backends.accel.program import ProgramBuilder
from lutc.backends.accel import dataflow
from lutc.backends.accel.dataflow import read_versions
from lutc.backends.accel.simulator import Simulator

M, K, N = 4, 32, 8
A_TILES, B_TILES, SLOTS = 4, 2, 3
A_AT, SPARE_AT, B_AT = 0, 0x400, 0x800  # A tiles back to back; spare tiles (sources for rewrites); B tiles
A_BYTES, B_BYTES, C_BYTES = M * K, N * K, M * N * 4

ops = st.lists(st.one_of(
    st.tuples(st.just("mma"), st.integers(0, A_TILES - 1), st.integers(0, B_TILES - 1), st.integers(0, SLOTS - 1),
              st.booleans()),
    st.tuples(st.just("rewrite_a"), st.integers(0, A_TILES - 1), st.integers(0, A_TILES - 1)),
    st.tuples(st.just("rewrite_b"), st.integers(0, B_TILES - 1), st.integers(0, A_TILES - 2)),
), min_size=1, max_size=24)


def _program(edge, stream):
    """The compute stream between one load of every tile and one store of every slot, plus the
    NumPy result of running it one instruction at a time."""
    rng = np.random.default_rng(len(stream))
    a = rng.integers(-128, 128, size=(A_TILES, M, K), dtype=np.int8)
    spare = rng.integers(-128, 128, size=(A_TILES, M, K), dtype=np.int8)
    bt = rng.integers(-128, 128, size=(B_TILES, N, K), dtype=np.int8)
    b = ProgramBuilder("mma_batches", config=edge)
    a_t = b.tensor("a", "input", "i8", a.shape)
    spare_t = b.tensor("spare", "weight", "i8", spare.shape, data=spare)
    b_t = b.tensor("bt", "weight", "i8", bt.shape, data=bt)
    c_t = b.tensor("c", "output", "i32", (SLOTS, M, N))
    b.emit(Load(sp=sp(A_AT), dram=a_t.addr, rows=1, row_bytes=a.nbytes))
    b.emit(Load(sp=sp(SPARE_AT), dram=spare_t.addr, rows=1, row_bytes=spare.nbytes))
    b.emit(Load(sp=sp(B_AT), dram=b_t.addr, rows=1, row_bytes=bt.nbytes, push_next=True))
    a_now, b_now = a.astype(np.int64), bt.astype(np.int64)
    c = np.zeros((SLOTS, M, N), dtype=np.int64)
    written = [False] * SLOTS
    first = True
    stream = list(stream) + [("mma", 0, 0, s, False) for s in range(SLOTS)]  # every slot written at least once
    for op in stream:
        if op[0] == "mma":
            _, t, u, s, accum = op
            accum = accum and written[s]  # accumulating into a slot nothing wrote is an uninitialized read
            b.emit(Mma(dst=acc(s * C_BYTES, "i32"), a=sp(A_AT + t * A_BYTES, "i8"), b=sp(B_AT + u * B_BYTES, "i8"),
                       m=M, n=N, k=K, transpose_b=True, accum=accum, pop_prev=first))
            c[s] = (c[s] if accum else 0) + a_now[t] @ b_now[u].T
            written[s] = True
        elif op[0] == "rewrite_a":
            _, t, src = op
            b.emit(Vec(func=VecFunc.MOV, dst=sp(A_AT + t * A_BYTES, "i8"), a=sp(SPARE_AT + src * A_BYTES, "i8"),
                       rows=M, cols=K, pop_prev=first))
            a_now[t] = spare[src]
        else:
            _, u, src = op  # a B tile takes the bytes of two spare A tiles (N * K = 2 * M * K)
            b.emit(Vec(func=VecFunc.MOV, dst=sp(B_AT + u * B_BYTES, "i8"), a=sp(SPARE_AT + src * A_BYTES, "i8"),
                       rows=1, cols=B_BYTES, pop_prev=first))
            b_now[u] = spare.reshape(-1)[src * A_BYTES:src * A_BYTES + B_BYTES].reshape(N, K)
        first = False
    b.emit(Sync(sync_queue=Queue.COMPUTE, push_next=True))
    b.emit(Store(dram=c_t.addr, sp=acc(0), rows=1, row_bytes=SLOTS * C_BYTES, pop_prev=True))
    b.finish()
    return b.build(), {"a": a}, c


@settings(max_examples=60, deadline=None)
@given(ops)
def test_batched_mmas_equal_one_at_a_time(edge, stream):
    program, inputs, expected = _program(edge, stream)
    out = Simulator(edge).run(program, inputs).outputs["c"]
    np.testing.assert_array_equal(out, expected)


@settings(max_examples=30, deadline=None)
@given(ops)
def test_read_versions_match_brute_force(edge, sim_kernels, stream):
    """Each of read_versions' ways (the compiled pass, and the compiled pass declining for too
    many range x write tests; in NumPy, every read against every write, ranges grouped then
    against every write at once, one range at a time) against the definition."""
    program, inputs, _ = _program(edge, stream)
    sim = Simulator(edge)
    sim.run(program, inputs)
    an, pos = sim._static.an, sim._static._plan[3]
    idx = an.groups[Mma]
    ways = ((sim_kernels, 1 << 26, 1 << 15, 1 << 21), (sim_kernels, 0, 0, 0), (None, 0, 1 << 15, 1 << 21),
            (None, 0, 0, 1 << 21), (None, 0, 0, 0))
    for slot, (compiled, kernel_tests, direct, grouped) in itertools.product((0, 1), ways):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(dataflow, "_KERNEL_TESTS", kernel_tests)
            patch.setattr(dataflow, "_DIRECT_PAIRS", direct)
            patch.setattr(dataflow, "_GROUPED_PAIRS", grouped)
            versions = read_versions(an, pos, idx, slot, compiled).tolist()
        for i, version in zip(idx.tolist(), versions):
            m, lo, hi = (int(x[i, slot]) for x in (an.mem, an.lo, an.hi))
            earlier = [int(pos[j]) for j in range(an.n) for w in range(an.used.shape[1])
                       if an.used[j, w] and an.write[j, w] and an.mem[j, w] == m and an.lo[j, w] < hi and lo < an.hi[j, w]
                       and pos[j] < pos[i]]
            assert version == max(earlier, default=-1), (compiled, kernel_tests, direct, grouped)


def test_overflow_is_reported_by_the_mma_that_stores_it(edge):
    """All 520 MMAs read the same A and B bytes (one batch, computed at the first); each adds
    256 * 128 * 128 = 2^22 to the accumulator, so the 512th is the first past 2^31 - 1."""
    k, n, count = 256, 8, 520
    b = ProgramBuilder("mma_overflow", config=edge)
    a_t = b.tensor("a", "input", "i8", (1, k))
    b_t = b.tensor("bt", "weight", "i8", (n, k), data=np.full((n, k), -128, dtype=np.int8))
    c_t = b.tensor("c", "output", "i32", (1, n))
    b.emit(Load(sp=sp(0), dram=a_t.addr, rows=1, row_bytes=k))
    b.emit(Load(sp=sp(0x400), dram=b_t.addr, rows=1, row_bytes=n * k, push_next=True))
    for j in range(count):
        b.emit(Mma(dst=acc(0, "i32"), a=sp(0, "i8"), b=sp(0x400, "i8"), m=1, n=n, k=k, transpose_b=True, accum=j > 0,
                   pop_prev=j == 0, push_next=j == count - 1))
    b.emit(Store(dram=c_t.addr, sp=acc(0), rows=1, row_bytes=n * 4, pop_prev=True))
    b.finish()
    program = b.build()
    with pytest.raises(LutcError, match=r"instruction #513 \(compute queue, MMA\): MMA result overflows the int32 "
                                        r"accumulator: 2147483648"):
        Simulator(edge).run(program, {"a": np.full((1, k), -128, dtype=np.int8)})


def test_fp16_mmas_accumulate_in_f32(ltc):
    """Float MMAs are not batched (BLAS may sum in another order per shape); each runs on its own."""
    m, k, n = 16, 32, 16
    rng = np.random.default_rng(2)
    a = rng.standard_normal((2, m, k)).astype(np.float16)
    bt = rng.standard_normal((n, k)).astype(np.float16)
    b = ProgramBuilder("fp16_mma", config=ltc)
    a_t = b.tensor("a", "input", "f16", a.shape)
    b_t = b.tensor("bt", "weight", "f16", bt.shape, data=bt)
    c_t = b.tensor("c", "output", "f32", (m, n))
    b.emit(Load(sp=sp(0), dram=a_t.addr, rows=1, row_bytes=a.nbytes))
    b.emit(Load(sp=sp(0x1000), dram=b_t.addr, rows=1, row_bytes=bt.nbytes, push_next=True))
    for t in range(2):
        b.emit(Mma(dst=acc(0, "f32"), a=sp(t * m * k * 2, "f16"), b=sp(0x1000, "f16"), m=m, n=n, k=k, transpose_b=True,
                   accum=t == 1, pop_prev=t == 0, push_next=t == 1))
    b.emit(Store(dram=c_t.addr, sp=acc(0), rows=1, row_bytes=m * n * 4, pop_prev=True))
    b.finish()
    out = Simulator(ltc).run(b.build(), {"a": a}).outputs["c"]
    f32 = np.float32
    expected = (a[0].astype(f32) @ bt.astype(f32).T) + (a[1].astype(f32) @ bt.astype(f32).T)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-5)  # f32 sums; BLAS may order them differently
