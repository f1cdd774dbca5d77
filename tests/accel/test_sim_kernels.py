"""The simulator's TVM-compiled kernels (backends/accel/kernels.py) against its NumPy path.

Both are exact by construction (integer sums; f32 operations in the ISA's order, one rounding
each), so the check is equality bit for bit, not a tolerance. The one exception is a NaN's
payload: IEEE 754 leaves which input NaN an operation returns to the implementation, so
positions that are NaN on both paths count as equal.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lutc.backends.accel import dataflow, functional, kernels
from lutc.backends.accel.analysis import analyze
from lutc.backends.accel.assembler import assemble, assemble_file
from lutc.backends.accel.compile import compile_accel
from lutc.backends.accel.lut import bytewise_indices, bytewise_table
from lutc.backends.accel.functional import COMPILED_MIN, _bytewise_lookup, _deq, _deq_direct
from lutc.backends.accel.simulator import Simulator
from lutc.diagnostics import LutcError

from .conftest import PROGRAMS
from .test_compile import lowered, lut_pipeline, mlp_module


@pytest.fixture(scope="module")
def compiled(sim_kernels) -> kernels.SimKernels:
    return sim_kernels


def placed(values: np.ndarray, at: int) -> tuple[np.ndarray, int]:
    """(a flat memory of values' type holding `values` from element `at`, at): kernels address
    operands as an element offset into a whole memory."""
    memory = np.zeros(at + values.size + 5, dtype=values.dtype)
    memory[at:at + values.size] = values.reshape(-1)
    return memory, at


@settings(max_examples=80, deadline=None, derandomize=True)
@given(m=st.integers(1, 4), n=st.integers(1, 40), k8=st.integers(1, 4), bits=st.integers(1, 4),
       table=st.sampled_from(kernels.LUT_TABLE_TYPES), out=st.sampled_from(kernels.LUT_OUT_TYPES),
       w_at=st.integers(0, 9), out_at=st.integers(0, 9), seed=st.integers(0, 2**32 - 1))
def test_lut_mma_kernel_equals_the_numpy_lookup(compiled, m, n, k8, bits, table, out, w_at, out_at, seed):
    rng = np.random.default_rng(seed)
    # Entries small enough that no sum leaves `out`'s range: the simulator only sums into a
    # narrow type under that static bound (wider sums go to int64 and are checked after).
    limit = np.iinfo(out).max // (bits * k8) if out != "int64" else np.iinfo(table).max // (bits * k8)
    tables = rng.integers(-limit, limit + 1, size=(m, bits * k8 * 256)).astype(table)
    weights = rng.integers(0, 256, size=bits * n * k8).astype(np.uint8)
    got = np.full(out_at + m * n + 3, 7, dtype=out)
    compiled.lut_mma(tables.dtype, got.dtype)(*placed(weights, w_at), got, out_at, m, n, bits, k8, tables)
    planes, base, idx3, idx2 = bytewise_indices(weights, n, 8 * k8, bits)
    want = np.empty((m, n), dtype=out)
    _bytewise_lookup(planes, base, idx3, idx2, np.empty((m, bits * k8, n), dtype=table), want, tables)
    np.testing.assert_array_equal(got[out_at:out_at + m * n].reshape(m, n), want)
    assert (got[:out_at] == 7).all() and (got[out_at + m * n:] == 7).all()  # nothing else written


@settings(max_examples=60, deadline=None, derandomize=True)
@given(m=st.integers(1, 3), k8=st.integers(1, 4), bits=st.integers(1, 4), group=st.sampled_from(kernels.LUT_GROUPS),
       sym=st.booleans(), table=st.sampled_from(kernels.LUT_TABLE_TYPES), at=st.integers(0, 9),
       seed=st.integers(0, 2**32 - 1))
def test_byte_sum_kernel_equals_bytewise_table(compiled, m, k8, bits, group, sym, table, at, seed):
    entries = 1 << (group - 1) if sym else 1 << group
    # any int8 entry, -128 included (its int8 negation in a symmetric table's upper half wraps)
    stored = np.random.default_rng(seed).integers(-128, 128, size=(8 * k8 // group, m, entries)).astype(np.int8)
    got = np.empty((m, bits, k8, 256), dtype=table)
    compiled.byte_sums(got.dtype, group, sym)(*placed(stored, at), got)
    np.testing.assert_array_equal(got.reshape(m, -1), bytewise_table(stored, m, 8 * k8, bits, group, sym, table))


f32_bits = hnp.arrays(np.uint32, st.tuples(st.integers(1, 3), st.integers(1, 17)),
                      elements=st.one_of(st.integers(0, 2**32 - 1),  # any pattern: NaN, inf, subnormals, -0
                                         st.sampled_from([0, 0x80000000, 0x7F800000, 0x00000001, 0x3F800000])))


def same_floats(a: np.ndarray, b: np.ndarray) -> bool:
    both_nan = np.isnan(a) & np.isnan(b)
    return bool(np.all((a.view(np.uint32) == b.view(np.uint32)) | both_nan))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(a_bits=f32_bits, a_type=st.sampled_from(kernels.DEQ_A_TYPES), accum=st.booleans(),
       imm=st.sampled_from([0.5, 1.0, -3.25, 1e-30, 3e38]), at=st.integers(0, 9), seed=st.integers(0, 2**32 - 1))
def test_deq_kernel_equals_the_numpy_epilogue(compiled, a_bits, a_type, accum, imm, at, seed):
    rng = np.random.default_rng(seed)
    rows, cols = a_bits.shape
    if a_type == "float32":
        a = a_bits.view(np.float32)
    else:
        info = np.iinfo(a_type)
        a = (a_bits.astype(np.int64) % (int(info.max) - int(info.min) + 1) + int(info.min)).astype(a_type)

    def params(*shape):  # mostly ordinary magnitudes, some raw bit patterns
        values = (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, size=shape)).astype(np.float32)
        raw = rng.integers(0, 2**32, size=shape, dtype=np.uint32).view(np.float32)
        return np.where(rng.random(shape) < 0.1, raw, values).astype(np.float32)

    row_scale, row_sum, scale, zero = params(rows, 1), params(rows, 1), params(cols), params(cols)
    start = params(rows, cols)
    b_record, c_record = np.concatenate([scale, zero]), np.concatenate([row_scale[:, 0], row_sum[:, 0]])
    got, _ = placed(start, at + 1)
    compiled.deq(a.dtype, accum)(*placed(a, at), *placed(b_record, at + 2), *placed(c_record, at + 3), got, at + 1,
                                 rows, cols, imm)
    want = start.copy()
    tiles = np.empty((rows, cols), np.float32), np.empty((rows, cols), np.float32)
    with np.errstate(all="ignore"):  # as in the simulator's loop: inf and NaN are values here
        (_deq if accum else _deq_direct)(a, np.float32(imm), row_scale, zero, row_sum, scale, *tiles, want, accum)
    assert same_floats(got[at + 1:at + 1 + rows * cols].reshape(rows, cols), want)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(table=st.sampled_from(kernels.LUT_TABLE_TYPES), acc_type=st.sampled_from(kernels.RUN_ACC_TYPES),
       ops=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_executor_runs_its_rows_as_the_per_instruction_paths(compiled, table, acc_type, ops, seed):
    """A random sequence of LUT.MMA lookups, DEQs, 2-D DMAs and MMA stores, through executor
    (one call over rows [first, end) of its op table) and through the per-instruction kernels,
    NumPy copies between strided views and NumPy casts: the same memories."""
    rng = np.random.default_rng(seed)
    sp = rng.integers(0, 256, 1 << 14, dtype=np.uint8)
    sp[1 << 13:] = rng.standard_normal(1 << 11).astype(np.float32).view(np.uint8)  # f32 scales and tiles above
    dram = rng.integers(0, 256, 1 << 12, dtype=np.uint8)
    arena = rng.integers(-100, 101, 1 << 13).astype(table)
    acc = rng.integers(-1000, 1001, 512).astype(acc_type)
    products = rng.integers(-30000, 30001, 256).astype(np.float32)  # exact integers, as BLAS leaves them
    rows_, calls = [], []
    f32_base = (1 << 13) // 4
    for _ in range(ops):
        m, n, planes, k8 = (int(v) for v in rng.integers(1, [3, 17, 3, 3], endpoint=True))
        kind = rng.integers(0, 4)
        if kind == 0:  # LUT.MMA: weights, dst, rows, cols, planes, k8, table
            w, out, t = int(rng.integers(0, 4000)), int(rng.integers(0, 512 - m * n)), int(rng.integers(0, 8192 - m * planes * k8 * 256))
            rows_.append((kernels.RUN_LUT_MMA, w, out, m, n, planes, k8, t))
            tables = compiled.tensor(arena[t:t + m * planes * k8 * 256].reshape(m, -1))
            calls.append(lambda w=w, out=out, m=m, n=n, planes=planes, k8=k8, tables=tables, acc=acc: compiled.lut_mma(
                arena.dtype, acc.dtype)(sp, w, acc, out, m, n, planes, k8, tables))
        elif kind == 1:  # DEQ: a, b, c, dst (f32 elements in the upper half), rows, cols, accumulate
            a = int(rng.integers(0, 512 - m * n))
            b, c, d = (f32_base + int(v) for v in rng.permutation(np.arange(0, 1 << 11, 64))[:3])
            accum = int(rng.integers(0, 2))
            rows_.append((kernels.RUN_DEQ, a, b, c, d, m, n, accum))
            calls.append(lambda a=a, b=b, c=c, d=d, m=m, n=n, accum=accum: compiled.deq(acc.dtype, bool(accum))(
                acc, a, sp.view(np.float32), b, sp.view(np.float32), c, sp.view(np.float32), d, m, n, 0.5))
        elif kind == 2:  # an MMA's store: products offset, accumulator element offset, count
            src, dst, count = int(rng.integers(0, 128)), int(rng.integers(0, 384)), int(rng.integers(1, 129))
            rows_.append((kernels.RUN_CAST, src, dst, count, 0, 0, 0, 0))
            calls.append(lambda src=src, dst=dst, count=count: acc.__setitem__(slice(dst, dst + count),
                                                                               products[src:src + count]))
        else:  # a DMA between DRAM and the scratchpad or the accumulator (as bytes), either way, strided
            direction = int(rng.integers(0, 4))
            on_chip = acc.view(np.uint8) if direction in (kernels.COPY_DRAM_ACC, kernels.COPY_ACC_DRAM) else sp[:1 << 13]
            src, dst = (dram, on_chip) if direction in (kernels.COPY_DRAM_SP, kernels.COPY_DRAM_ACC) else (on_chip, dram)
            n_rows, row_bytes = int(rng.integers(1, 5)), int(rng.integers(1, 65))
            strides = [row_bytes + int(rng.integers(0, 9)) for _ in range(2)]
            offsets = [int(rng.integers(0, len(buf) - (n_rows - 1) * pitch - row_bytes + 1))
                       for buf, pitch in zip((src, dst), strides)]
            rows_.append((kernels.RUN_COPY, direction, *offsets, n_rows, row_bytes, *strides))

            def copy(src=src, dst=dst, offsets=offsets, strides=strides, n_rows=n_rows, row_bytes=row_bytes):
                views = [np.lib.stride_tricks.as_strided(buf[off:], (n_rows, row_bytes), (pitch, 1))
                         for buf, off, pitch in zip((src, dst), offsets, strides)]
                views[1][...] = views[0]
            calls.append(copy)
    imms = np.full(ops, 0.5, dtype=np.float32)
    before = sp.copy(), acc.copy(), dram.copy()
    for call in calls:
        call()
    want = sp.copy(), acc.copy(), dram.copy()
    sp[:], acc[:], dram[:] = before
    table_ops = np.array(rows_, dtype=np.int64)
    compiled.executor(arena.dtype, acc.dtype)(dram, sp, acc.view(np.uint8), acc, sp.view(np.float32), arena, products,
                                                 table_ops, imms, 0, ops)
    np.testing.assert_array_equal(sp, want[0])  # f32 tiles bit for bit (compared as bytes)
    np.testing.assert_array_equal(acc, want[1])
    np.testing.assert_array_equal(dram, want[2])


@settings(max_examples=120, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), events=st.integers(1, 40), fill=st.floats(0.0, 1.0),
       table=st.sampled_from([1, 4, 64]))
def test_walk_kernel_finds_the_first_unwritten_read_as_the_python_walk(compiled, seed, events, fill, table):
    """Random ranges (contiguous and 2-D, of 0 to 70 bytes: 16-byte vector blocks and their
    tails, many repeated), one per instruction, in a random execution order, over partly set
    flags, with a table of walked ranges small enough to collide: the same first failing read
    as the Python walk, the same flags after (both stop at it)."""
    rng = np.random.default_rng(seed)
    size = 600
    flags = rng.random(size) < fill
    kinds = rng.integers(1, events + 1)  # distinct ranges; each event is one of them
    pick = rng.integers(0, kinds, size=events)
    rows = rng.integers(1, 4, size=kinds)[pick]
    width = rng.choice([0, 1, 15, 16, 17, 31, 33, 48, 64, 70], size=kinds)[pick]  # vector blocks and tails
    stride = width + rng.integers(0, 9, size=kinds)[pick]
    lo = rng.choice([0, 1, 16, 17, 32, 48, 100, 250], size=kinds)[pick]  # few starts and ends: overlaps, near-repeats
    hi = np.where(rows > 1, lo + (rows - 1) * stride + width, lo + width)
    pattern = np.stack([rows, np.where(rows > 1, width, 0), np.where(rows > 1, stride, 0)], axis=1)
    write = rng.random(kinds)[pick] < 0.5
    order = rng.permutation(events)
    python_flags, kernel_flags = flags.copy(), flags.copy()
    k = dataflow._walk([python_flags], [0], np.zeros(events, dtype=np.int64), lo[order], hi[order], pattern[order],
                       write[order])
    got = _kernel_walk(compiled, order, lo, hi, pattern, write, kernel_flags, table)
    assert got == (None if k is None else k)
    np.testing.assert_array_equal(kernel_flags, python_flags)


def _kernel_walk(compiled, order, lo, hi, pattern, write, flags, table: int) -> int | None:
    """kernels.first_uninitialized over one range per instruction, in the scratchpad (flags from
    0, `flags` one bool a byte, packed for the kernel and unpacked back), nothing preloaded: the
    execution position of the first failing read, or None."""
    n = len(lo)
    result = np.empty(2, dtype=np.int64)
    bits = np.packbits(flags, bitorder="little")
    compiled.first_uninitialized()(order, np.ones((n, 1), dtype=np.int64), lo[:, None], hi[:, None],
                                   write[:, None].astype(np.uint8), np.ones((n, 1), dtype=np.uint8), pattern[:, None],
                                   np.zeros(3, dtype=np.int64), np.full(1, -1), np.full(1, -1), bits,
                                   np.zeros((table, 5), dtype=np.int64), result)
    flags[:] = np.unpackbits(bits, bitorder="little")[:len(flags)]
    return None if result[0] < 0 else int(result[0])


@pytest.mark.parametrize("written, read, fails", [
    ((16, 48, (1, 0, 0)), (0, 48, (1, 0, 0)), True),  # the same end, a later start
    ((0, 48, (2, 16, 32)), (0, 48, (1, 48, 32)), True),  # the same bounds and stride, fewer rows
    ((0, 48, (2, 16, 32)), (0, 48, (2, 24, 24)), True),  # the same bounds and rows, another stride
    ((0, 48, (3, 16, 16)), (0, 48, (1, 0, 0)), False),  # rows back to back: the same bytes
], ids=["start", "rows", "stride", "covered"])
def test_walk_kernel_walks_again_a_range_that_differs_from_a_walked_one(compiled, written, read, fails):
    """A write, then a read with the same bounds or end but other bytes: the read fails unless the
    write covered it, with a table of walked ranges of one slot (every range lands in it)."""
    lo, hi, pattern = (np.array(v) for v in zip(written, read))
    got = _kernel_walk(compiled, np.arange(2), lo, hi, pattern, np.array([True, False]), np.zeros(64, dtype=bool), 1)
    assert got == (1 if fails else None)


def strided_range(draw, write: bool) -> tuple:
    """(lo, hi, pattern, write) of one random range: contiguous (a compute operand: row bytes 0,
    or one row) or 2-D rows of `width` bytes `stride` apart, as analysis records them."""
    lo = draw(st.integers(0, 200))
    if draw(st.booleans()):
        return lo, lo + draw(st.integers(1, 80)), (1, 0, 0), write
    rows, width = draw(st.integers(1, 6)), draw(st.integers(1, 24))
    stride = width + draw(st.integers(0, 20))
    return lo, lo + (rows - 1) * stride + width, (rows, width, stride), write


@st.composite
def range_pairs(draw):
    return strided_range(draw, draw(st.booleans())), strided_range(draw, True)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(pair=range_pairs())
def test_conflict_kernel_decides_byte_overlap_as_the_numpy_path(compiled, pair):
    """Two instructions running at once, one range each (one writes): the kernel's row merge and
    timing._exact_overlap against the byte sets."""
    from types import SimpleNamespace

    from lutc.backends.accel.timing import _exact_overlap, find_race

    (lo_b, hi_b, pat_b, write_b), (lo_a, hi_a, pat_a, write_a) = pair
    an = SimpleNamespace(n=2, queue=np.array([1, 0]), used=np.array([[True], [True]]), mem=np.zeros((2, 1), dtype=np.int64),
                         lo=np.array([[lo_b], [lo_a]]), hi=np.array([[hi_b], [hi_a]]),
                         write=np.array([[write_b], [write_a]]), pattern=np.array([[pat_b], [pat_a]], dtype=np.int64))
    got = find_race(an, np.zeros(2, dtype=np.int64), np.ones(2, dtype=np.int64), compiled)  # both run in cycle 0
    def byte_set(lo, hi, pattern):
        rows, width, stride = pattern
        return set(range(lo, hi)) if width == 0 else {lo + r * stride + c for r in range(rows) for c in range(width)}

    overlap = bool(byte_set(lo_b, hi_b, pat_b) & byte_set(lo_a, hi_a, pat_a))
    assert got == ((0, 1, 0, 0) if overlap else None)
    assert (lo_b < hi_a and lo_a < hi_b
            and _exact_overlap(lo_b, hi_b, np.array(pat_b), lo_a, hi_a, np.array(pat_a))) == overlap


def run_both(program, config):
    """(NumPy result or error text, compiled result or error text)."""
    results = []
    for use in (False, True):
        try:
            results.append(Simulator(config, compiled=use).run(program))
        except LutcError as err:
            results.append(str(err))
    return results


def assert_same_runs(numpy_run, compiled_run):
    if isinstance(numpy_run, str):
        assert compiled_run == numpy_run
        return
    assert not isinstance(compiled_run, str), compiled_run
    assert numpy_run.outputs.keys() == compiled_run.outputs.keys()
    for name, value in numpy_run.outputs.items():
        assert np.array_equal(value.view(np.uint8), compiled_run.outputs[name].view(np.uint8)), name
    assert numpy_run.report.to_json() == compiled_run.report.to_json()


@pytest.mark.parametrize("name", sorted(p.stem for p in PROGRAMS.glob("*.s")))
def test_hand_written_programs_run_the_same_compiled(compiled, edge, name):
    """Outputs, reports and hazard messages (deadlock, out of bounds, races, uninitialized reads)."""
    try:
        program = assemble_file(PROGRAMS / f"{name}.s", edge)
    except LutcError as err:  # oob.s is refused by validation, before any simulator runs
        assert name == "oob" and "scratchpad overflow" in str(err), err
        return
    assert_same_runs(*run_both(program, edge))


def test_a_deq_writing_over_its_input_takes_the_numpy_path(compiled, edge):
    """dst (f32) starts where `a` (i16) does and is twice as wide: written element by element,
    dst[c] would overwrite a[2c] and a[2c + 1] before they are read. NumPy's ufuncs buffer
    overlapping operands, so the simulator leaves such a DEQ to them."""
    text = (PROGRAMS / "gemv_lut2.s").read_text()
    text = text.replace("VEC.DEQ dst=sp:0x500:f32 a=acc:0x0:i16", "VEC.DEQ dst=acc:0x0:f32 a=acc:0x0:i16")
    text = text.replace("STORE dst=dram:0x400 src=sp:0x500 rows=1 bytes=128 pop=prev\n", "")
    text = text.replace("STORE dst=dram:0x480 src=acc:0x0 rows=1 bytes=64",
                        "STORE dst=dram:0x400 src=acc:0x0 rows=1 bytes=128 pop=prev")
    text = text.replace(".tensor acc output i16 1x32 at=dram:0x480\n", "")
    numpy_run, compiled_run = run_both(assemble(text, "in_place_deq.s", edge), edge)
    assert_same_runs(numpy_run, compiled_run)
    assert np.isfinite(compiled_run.outputs["y"]).all() and np.abs(compiled_run.outputs["y"]).max() > 0


@pytest.mark.parametrize("rows", [1, 4])
def test_compiled_mlp_runs_the_same_compiled(compiled, edge, rows, monkeypatch):
    """What lutc's compiler emits: LUT.MMAs summing into the accumulator, DEQs accumulating in f32."""
    model = compile_accel(lowered(mlp_module(m=rows), lut_pipeline(2, group=64)), edge)
    x = np.random.default_rng(3).standard_normal((rows, 256)).astype(np.float32)
    inputs = {model.input_names[0]: x}
    numpy_run = Simulator(edge, compiled=False).run(model.program, inputs)
    counts = numpy_run.report.opcode_counts
    assert counts["LUT.MMA"] > 0 and counts["VEC.DEQ"] > 0

    def numpy_path(*args):
        raise AssertionError("a LUT.MMA or DEQ took the NumPy path")

    for name in ("_bytewise_lookup", "_deq", "_deq_direct"):
        monkeypatch.setattr(functional, name, numpy_path)
    assert_same_runs(numpy_run, Simulator(edge, compiled=True).run(model.program, inputs))


def test_compiler_output_runs_through_the_executor(compiled, edge):
    """What the compiler emits goes through executor: every LUT.MMA and VEC.DEQ gets an op row,
    and runs of them are single calls (the plan has fewer calls than instructions)."""
    model = compile_accel(lowered(mlp_module(m=1), lut_pipeline(2, group=64)), edge)
    sim = Simulator(edge, compiled=True)
    result = sim.run(model.program, {model.input_names[0]: np.ones((1, 256), np.float32)})
    counts = result.report.opcode_counts
    views, (_, plan, _) = sim._static._plan[1], next(iter(sim._static._uninit.values()))
    assert int((views.runs.executor >= 0).sum()) == counts["LUT.MMA"] + counts["VEC.DEQ"]
    assert len(plan) < len(model.program.instructions) - counts["LUT.MMA"]


@pytest.mark.parametrize("use", [False, True])
def test_repeat_runs_refill_the_byte_sum_tables(edge, use):
    """A simulator reused on new inputs fills each table version's byte-sum table again (its
    first reader does, every run): repeat runs equal fresh ones, on both paths."""
    model = compile_accel(lowered(mlp_module(m=1), lut_pipeline(2, group=64)), edge)
    sim = Simulator(edge, compiled=use)
    for seed in range(3):
        inputs = {model.input_names[0]: np.random.default_rng(seed).standard_normal((1, 256)).astype(np.float32)}
        again, fresh = sim.run(model.program, inputs), Simulator(edge, compiled=use).run(model.program, inputs)
        assert_same_runs(fresh, again)


def never_fails(i, message):  # the `fail` callback of kernels_for
    raise AssertionError(message)


def test_auto_loads_the_kernels_only_for_enough_work(compiled, edge, monkeypatch):
    monkeypatch.setattr(kernels, "is_loaded", lambda: False)  # as in a new process
    small = analyze(assemble_file(PROGRAMS / "gemv_lut2.s", edge), edge)  # one LUT.MMA, one DEQ
    assert COMPILED_MIN > 2
    assert functional.kernels_for(small, None, never_fails) is None
    assert functional.kernels_for(small, False, never_fails) is None
    assert functional.kernels_for(small, True, never_fails) is compiled
    monkeypatch.setattr(functional, "COMPILED_MIN", 2)
    assert functional.kernels_for(small, None, never_fails) is compiled
    monkeypatch.setattr(kernels, "is_loaded", lambda: True)  # loaded already: used for any program
    monkeypatch.setattr(functional, "COMPILED_MIN", 1000)
    assert functional.kernels_for(small, None, never_fails) is compiled


def test_required_kernels_that_cannot_be_had_are_an_error(edge, monkeypatch):
    monkeypatch.setattr(kernels, "sim_kernels", lambda: None)
    monkeypatch.setattr(kernels, "unavailable_reason", "ImportError: no tvm")
    program = assemble_file(PROGRAMS / "gemv_lut2.s", edge)
    with pytest.raises(LutcError, match=r"compiled simulator kernels are unavailable \(ImportError: no tvm\)"):
        Simulator(edge, compiled=True).run(program)
    assert Simulator(edge).run(program).outputs  # auto: NumPy


def test_the_library_is_cached_and_loaded_without_tvm_s_compiler(tmp_path):
    """The first process builds and caches the library; the next loads it with TVM's runtime only."""
    script = ("import sys; from lutc.backends.accel import kernels; k = kernels.sim_kernels(); "
              "print(k.origin); print('tvm' in sys.modules)")
    env = {**os.environ, "LUTC_CACHE_DIR": str(tmp_path)}

    def origin_and_compiler() -> tuple[str, str]:
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        return tuple(out.stdout.split())

    origin, _ = origin_and_compiler()
    if origin == "built":  # "built in this process": no C toolchain to link a library with
        assert not list(tmp_path.iterdir())
        return
    assert Path(origin).parent == tmp_path and Path(origin).name.startswith("sim-kernels-")
    assert origin_and_compiler() == (origin, "False")
