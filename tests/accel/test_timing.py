"""Timing model: analytical cycle counts, dependency stalls, overlap, and the vectorized == scalar figures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lutc.backends.accel.analysis import analyze
from lutc.backends.accel.isa import Load, LutMma, Queue, Store, Sync, Vec, VecFunc, acc, sp
from lutc.backends.accel.program import ProgramBuilder
from lutc.backends.accel.simulator import Simulator
from lutc.backends.accel.timing import (
    ACTIONS, Hazard, actions_for, cycles_for, find_race, instruction_actions, instruction_cycles, schedule,
)


def simulate(builder, config, inputs=None):
    builder.finish()
    return Simulator(config).run(builder.build(), inputs or {})


def timeline(result):
    """(start, end) per instruction, from the trace's source."""
    program, sched, _ = result.report._timeline_source
    return list(zip(sched.start.tolist(), sched.end.tolist()))


@pytest.mark.parametrize("nbytes", [1, 8, 9, 1000, 4096])
@pytest.mark.parametrize("bandwidth, latency", [(8, 64), (3, 0), (12.5, 100)])
def test_pure_dma_takes_latency_plus_bytes_over_bandwidth(edge, nbytes, bandwidth, latency):
    config = edge.replace(dram={"bandwidth_bytes_per_cycle": bandwidth, "latency_cycles": latency})
    b = ProgramBuilder("dma", config=config)
    x = b.tensor("x", "input", "u8", (nbytes,))
    b.emit(Load(sp=sp(0), dram=x.addr, rows=1, row_bytes=nbytes))
    r = simulate(b, config, {"x": np.zeros(nbytes, np.uint8)})
    assert r.report.total_cycles == latency + math.ceil(nbytes / bandwidth)
    assert r.report.queues["load"].busy == r.report.total_cycles


def test_two_d_dma_counts_bytes_moved_not_the_span(edge):
    b = ProgramBuilder("dma2d", config=edge)
    x = b.tensor("x", "input", "u8", (16, 256))
    b.emit(Load(sp=sp(0), dram=x.addr, rows=16, row_bytes=32, dram_stride=256))
    r = simulate(b, edge, {"x": np.zeros((16, 256), np.uint8)})
    assert r.report.total_cycles == 64 + 16 * 32 // 8
    assert r.report.dram_read["activations"] == 512


@pytest.mark.parametrize("m, n, k, bits", [(1, 32, 64, 2), (2, 32, 64, 4), (3, 32, 64, 2), (1, 33, 16, 1), (2, 64, 128, 3)])
@pytest.mark.parametrize("cycles_per_plane", [1, 3])
def test_lut_mma_takes_cycles_per_plane_times_planes_times_passes(edge, m, n, k, bits, cycles_per_plane):
    config = edge.replace(lut={"cycles_per_plane": cycles_per_plane, "accum_dtype": "int32"})
    instr = LutMma(dst=acc(0, "i32"), tables=sp(0, "i8"), weights=sp(0x1000), m=m, n=n, k=k, bits=bits, sym=True)
    passes = math.ceil(m / config.lut.rows) * math.ceil(n / config.lut.cols) * (k // config.lut.group)
    assert instruction_cycles(instr, config) == cycles_per_plane * bits * passes
    # In a program, after its inputs arrive, it occupies the LUT array exactly that long.
    b = ProgramBuilder("lut", config=config)
    w = b.tensor("w", "weight", "u8", (bits * n * k // 8,), init="zeros")
    t = b.tensor("t", "weight", "i8", (k // 4 * m * 8,), init="ones")
    b.emit(Load(sp=sp(0x1000), dram=w.addr, rows=1, row_bytes=w.nbytes))
    b.emit(Load(sp=sp(0), dram=t.addr, rows=1, row_bytes=t.nbytes, push_next=True))
    b.emit(instr.with_deps(pop_prev=True))
    r = simulate(b, config)
    start, end = timeline(r)[2]
    assert end - start == cycles_per_plane * bits * passes
    assert start == 2 * config.dram.latency_cycles + math.ceil((w.nbytes) / 8) + math.ceil(t.nbytes / 8)
    assert r.report.units["lut"].busy == end - start
    assert r.report.lut_lookups == bits * m * n * (k // 4)


def _vec(dst, src, cols, **deps):
    return Vec(func=VecFunc.EXP, dst=sp(dst, "f32"), a=sp(src, "f32"), rows=1, cols=cols, **deps)


def test_fully_overlapped_streams_take_the_max_not_the_sum(edge):
    """After one shared load, a stream of loads and a stream of vector ops share nothing: they overlap."""
    b = ProgramBuilder("overlap", config=edge)
    x = b.tensor("x", "input", "f32", (8, 256))
    b.emit(Load(sp=sp(0), dram=x.addr, rows=1, row_bytes=1024, push_next=True))
    for r in range(1, 8):
        b.emit(Load(sp=sp(0x1000 * r), dram=x.addr + 1024 * r, rows=1, row_bytes=1024))
    b.emit(_vec(0x10000, 0, 256, pop_prev=True))
    for _ in range(20):
        b.emit(_vec(0x10000, 0x10000, 256))
    r = simulate(b, edge, {"x": np.zeros((8, 256), np.float32)})
    first = 64 + 1024 // 8
    loads = 7 * (64 + 1024 // 8)
    vecs = 21 * (256 // 16) * edge.vector.special_cycles
    assert r.report.queues["load"].busy == first + loads
    assert r.report.queues["compute"].busy == vecs
    assert r.report.total_cycles == first + max(loads, vecs)
    assert r.report.total_cycles < first + loads + vecs


def test_serialized_streams_take_the_sum(edge):
    """The same streams, but each vector op waits for a load: now they cannot overlap."""
    b = ProgramBuilder("serial", config=edge)
    x = b.tensor("x", "input", "f32", (4, 256))
    for r in range(4):
        b.emit(Load(sp=sp(0x1000 * r), dram=x.addr + 1024 * r, rows=1, row_bytes=1024, push_next=True, pop_next=r > 0))
        b.emit(_vec(0x10000, 0x1000 * r, 256, pop_prev=True, push_prev=r < 3))
    r = simulate(b, edge, {"x": np.zeros((4, 256), np.float32)})
    load, vec = 64 + 128, 16 * edge.vector.special_cycles
    assert r.report.total_cycles == 4 * (load + vec)
    # The stalls say why: compute waits for loads, loads wait for compute.
    assert r.report.queues["compute"].stall_causes == {"token from load": 4 * load + 3 * vec - 3 * vec}
    assert r.report.queues["load"].stall_causes == {"token from compute": 3 * vec}


def test_busy_stall_idle_add_up(assembled, edge):
    report = Simulator(edge).run(assembled("gemm_double_buffer")).report
    for q in report.queues.values():
        assert q.busy + q.stall + q.idle == report.total_cycles and q.idle >= 0
    for u in report.units.values():
        assert u.busy + u.idle == report.total_cycles


def test_double_buffering_overlaps_loads_with_compute(assembled, edge):
    result = Simulator(edge).run(assembled("gemm_double_buffer"))
    report, spans = result.report, timeline(result)
    instrs = assembled("gemm_double_buffer").instructions
    loads = [spans[i] for i, ins in enumerate(instrs) if isinstance(ins, Load)]
    mmas = [spans[i] for i, ins in enumerate(instrs) if type(ins).__name__ == "Mma"]
    stores = [spans[i] for i, ins in enumerate(instrs) if isinstance(ins, Store)]
    # Tile 0 (loads[1]) is multiplied while tile 1 is being fetched into the other buffer ...
    assert loads[2][0] <= mmas[0][0] and mmas[0][1] <= loads[2][1]
    # ... its result is stored while tile 2 is fetched, and the MMA of tile 1 follows its load at once.
    assert loads[3][0] < stores[0][1] and stores[0][0] < loads[3][1]
    assert mmas[1][0] == loads[2][1]
    busy = sum(q.busy for q in report.queues.values())
    assert report.total_cycles < busy
    # No queue can finish before the DMA of everything it waits for: the load stream bounds the total from below.
    assert report.total_cycles >= report.queues["load"].busy


def test_a_token_delays_the_popper_until_the_pusher_completes(edge):
    b = ProgramBuilder("token", config=edge)
    x = b.tensor("x", "input", "f32", (64,))
    y = b.tensor("y", "output", "f32", (64,))
    b.emit(Load(sp=sp(0), dram=x.addr, rows=1, row_bytes=256, push_next=True))
    b.emit(Sync(sync_queue=Queue.COMPUTE, pop_prev=True, push_next=True))
    b.emit(Store(dram=y.addr, sp=sp(0), rows=1, row_bytes=256, pop_prev=True))
    r = simulate(b, edge, {"x": np.zeros(64, np.float32)})
    spans = timeline(r)
    assert spans[1] == (spans[0][1], spans[0][1])  # SYNC: 0 cycles, right after the load
    assert spans[2][0] == spans[0][1] and r.report.total_cycles == 2 * (64 + 32)
    assert r.report.queues["store"].stall_causes == {"token from compute": 96}


def test_leftover_tokens_are_reported(edge):
    b = ProgramBuilder("left", config=edge)
    x = b.tensor("x", "input", "f32", (4,))
    b.emit(Load(sp=sp(0), dram=x.addr, rows=1, row_bytes=16, push_next=True))
    r = simulate(b, edge, {"x": np.zeros(4, np.float32)})
    assert r.report.leftover_tokens == {"load->compute": 1}
    assert "warning: tokens pushed but never popped: load->compute 1" in r.report.to_text()


def test_energy_is_actions_times_energy_per_action(edge):
    b = ProgramBuilder("energy", config=edge)
    x = b.tensor("x", "input", "u8", (1000,))
    b.emit(Load(sp=sp(0), dram=x.addr, rows=1, row_bytes=1000))
    r = simulate(b, edge, {"x": np.zeros(1000, np.uint8)}).report
    assert r.energy_by_level["dram"] == pytest.approx(1000 * edge.energy.dram_byte)
    assert r.energy_by_level["scratchpad"] == pytest.approx(1000 * edge.energy.scratchpad_byte)
    assert r.energy_by_unit["load"] == pytest.approx(r.energy_pj)
    assert r.energy_per_token_pj == r.energy_pj


@pytest.mark.parametrize("name", ["gemv_lut2", "gemv_lut4", "gemm_double_buffer", "vec_epilogue"])
def test_vectorized_cycles_and_actions_match_the_scalar_model(assembled, edge, name):
    program = assembled(name)
    an = analyze(program, edge)
    assert cycles_for(an).tolist() == [instruction_cycles(i, edge) for i in program.instructions]
    assert actions_for(an).tolist() == [list(instruction_actions(i, edge)) for i in program.instructions]
    assert len(ACTIONS) == actions_for(an).shape[1]


# Token flags (pop_prev, pop_next, push_prev, push_next) each queue may set, and the queue each reaches.
_LEGAL_FLAGS = np.array([[0, 1, 0, 1], [1, 1, 1, 1], [1, 0, 1, 0]], dtype=bool)
_NEIGHBOUR = {(0, "prev"): None, (0, "next"): 1, (1, "prev"): 0, (1, "next"): 2, (2, "prev"): 1, (2, "next"): None}


def _reference_schedule(queue: list[int], flags: list[list[bool]], cycles: list[int]):
    """The schedule by the rules, one event at a time: (start, end), or the string 'deadlock'.
    Repeatedly start the head instruction of any queue whose unit is free and whose popped
    channels hold a token pushed (at its pusher's end) by then; FIFO channels, one per ordered
    queue pair. Independent of timing.schedule's longest-path formulation."""
    n = len(cycles) - 1  # FINISH is last and not queued
    heads, free = [0, 0, 0], [0, 0, 0]
    members = [[i for i in range(n) if queue[i] == q] for q in range(3)]
    pushed: dict = {}  # (from queue, to queue) -> ends of the tokens pushed, FIFO
    popped: dict = {}  # (from queue, to queue) -> tokens taken so far
    start, end = [0] * (n + 1), [0] * (n + 1)
    while any(heads[q] < len(members[q]) for q in range(3)):
        candidates = []
        for q in range(3):
            if heads[q] == len(members[q]):
                continue
            i = members[q][heads[q]]
            ready = free[q]
            for flag, side in ((0, "prev"), (1, "next")):
                if flags[i][flag]:
                    channel = (_NEIGHBOUR[q, side], q)
                    k = popped.get(channel, 0)
                    if k >= len(pushed.get(channel, [])):
                        break
                    ready = max(ready, pushed[channel][k])
            else:
                candidates.append((ready, q, i))
        if not candidates:
            return "deadlock"  # every head waits for a token no started instruction pushes
        ready, q, i = min(candidates)
        for flag, side in ((0, "prev"), (1, "next")):
            if flags[i][flag]:
                channel = (_NEIGHBOUR[q, side], q)
                popped[channel] = popped.get(channel, 0) + 1
        start[i], end[i] = ready, ready + cycles[i]
        free[q] = end[i]
        heads[q] += 1
        for flag, side in ((2, "prev"), (3, "next")):
            if flags[i][flag]:
                pushed.setdefault((q, _NEIGHBOUR[q, side]), []).append(end[i])
    start[n] = end[n] = max(free)
    return start, end


@settings(max_examples=300, deadline=None, derandomize=True)
@given(data=st.data(), n=st.integers(1, 40))
def test_schedule_equals_an_event_by_event_reference(data, n, kernels_or_none):
    queue = data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)) + [1]
    # Pops rarer than pushes, so that most programs schedule rather than deadlock.
    flag = st.tuples(*[st.sampled_from([False, False, False, True])] * 2, st.booleans(), st.booleans())
    wanted = data.draw(st.lists(flag, min_size=n + 1, max_size=n + 1))
    flags = [[bool(w and legal) for w, legal in zip(row, _LEGAL_FLAGS[q])] for row, q in zip(wanted, queue)]
    flags[-1] = [False] * 4
    cycles = data.draw(st.lists(st.integers(0, 20), min_size=n + 1, max_size=n + 1))
    expected = _reference_schedule(queue, flags, cycles)
    try:
        sched = schedule(np.array(queue), np.array(flags, dtype=bool), np.array(cycles), kernels_or_none)
    except Hazard as hz:
        assert expected == "deadlock", hz.message
        return
    assert expected != "deadlock"
    assert (sched.start.tolist(), sched.end.tolist()) == expected
    if kernels_or_none is not None:  # the kernel's every figure equals the NumPy path's
        reference = schedule(np.array(queue), np.array(flags, dtype=bool), np.array(cycles), None)
        for field in ("ready", "waited_for"):
            assert getattr(sched, field).tolist() == getattr(reference, field).tolist(), field
        assert (sched.total_cycles, sched.stalls, sched.leftover_tokens) == \
            (reference.total_cycles, reference.stalls, reference.leftover_tokens)


def _reference_race(an, start, end):
    """find_race by brute force: for each instruction b in time order, the instruction of each other
    queue running when b starts, every pair of their byte ranges (2-D DMA rows expanded)."""
    def byte_set(i, slot):
        lo, hi = int(an.lo[i, slot]), int(an.hi[i, slot])
        rows, row_bytes, stride = (int(v) for v in an.pattern[i, slot])
        if row_bytes == 0:  # not a DMA range: contiguous
            return set(range(lo, hi))
        return {lo + r * stride + c for r in range(rows) for c in range(row_bytes)}

    busy = [i for i in range(an.n) if end[i] > start[i]]
    for b in sorted(busy, key=lambda i: (start[i], i)):
        for qa in range(3):
            running = [a for a in busy if an.queue[a] == qa != an.queue[b] and start[a] <= start[b] < end[a]]
            for a in running:
                for sb in np.flatnonzero(an.used[b]).tolist():
                    for sa in np.flatnonzero(an.used[a]).tolist():
                        if (an.mem[b, sb] == an.mem[a, sa] and (an.write[b, sb] or an.write[a, sa])
                                and byte_set(b, sb) & byte_set(a, sa)):
                            return b, a, sb, sa
    return None


@pytest.mark.parametrize("name", ["gemm_double_buffer", "gemv_lut2", "vec_epilogue", "race", "strided",
                                  "strided_compute"])
def test_race_check_equals_brute_force_on_random_timelines(assembled, edge, name, kernels_or_none):
    if name == "strided":  # 2-D DMAs whose bounding ranges interleave: only exact byte overlap counts
        # Loads read rows of x at t * 32 and stores write rows of x between them (at t * 32 + 16), so
        # their bounding ranges overlap but their bytes do not, except for the first store, which
        # writes the bytes the first load reads. Their scratchpad ranges are all apart.
        b = ProgramBuilder("strided", config=edge)
        x = b.tensor("x", "output", "u8", (1024,))
        for t, store_at in enumerate([0, 16, 48, 80]):
            b.emit(Load(sp=sp(t * 64), dram=x.addr + t * 32, rows=4, row_bytes=16, dram_stride=128))
            b.emit(Store(sp=sp(1024 + t * 64), dram=x.addr + store_at, rows=4, row_bytes=16, dram_stride=128))
        b.finish()
        program = b.build()
    elif name == "strided_compute":  # 2-D DMAs against the contiguous ranges of compute instructions
        # A strided load writes rows of 16 bytes 32 apart; vector instructions, with no token
        # between them and the load, read ranges that start on a row, end in a row, cover a gap
        # only, or span several rows.
        b = ProgramBuilder("strided_compute", config=edge)
        x = b.tensor("x", "input", "f32", (64,))
        b.emit(Load(sp=sp(0), dram=x.addr, rows=4, row_bytes=16, dram_stride=16, sp_stride=32))
        for k, (at, cols) in enumerate([(0, 1), (20, 1), (16, 4), (40, 10)]):
            b.emit(Vec(func=VecFunc.MULI, dst=sp(1024 + 64 * k, "f32"), a=sp(at, "f32"), rows=1, cols=cols, imm=2.0))
        b.finish()
        program = b.build()
    else:
        program = assembled(name)
    an = analyze(program, edge)
    rng = np.random.default_rng(len(name))
    found = 0
    for _ in range(150):
        start, end = np.zeros(an.n, dtype=np.int64), np.zeros(an.n, dtype=np.int64)
        for q in range(3):  # each queue runs its instructions one after another, with random gaps
            idx = np.flatnonzero(an.queue == q)
            duration, gap = rng.integers(0, 12, len(idx)), rng.integers(0, 12, len(idx))
            start[idx] = np.cumsum(gap + np.concatenate([[0], duration[:-1]]))
            end[idx] = start[idx] + duration
        expected = _reference_race(an, start, end)
        assert find_race(an, start, end, kernels_or_none) == expected
        found += expected is not None
    assert found  # the timelines do produce races
