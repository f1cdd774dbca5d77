"""The simulator's static analysis: packed keys and their fallback agree; the uninitialized-read
and unwritten-output analysis (NumPy and compiled) equals a byte-by-byte walk."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lutc.backends.accel.analysis import analyze
from lutc.backends.accel.isa import Load, Store, sp
from lutc.backends.accel.program import ProgramBuilder
from lutc.backends.accel.dataflow import (
    _first_of_each, _first_unset, _pack, _set_bits, _uninitialized_message, check_written,
)


def _first_of_each_reference(keys: np.ndarray) -> list[int]:
    seen, out = set(), []
    for j, col in enumerate(map(tuple, keys.T.tolist())):
        if col not in seen:
            seen.add(col)
            out.append(j)
    return out


def test_first_of_each_packed_and_fallback_agree():
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 4, size=(5, 3000))
    assert _pack(keys) is not None
    assert _first_of_each(keys).tolist() == _first_of_each_reference(keys)
    wide = keys.copy()
    wide[1:3] += 1 << 40  # too wide to pack into one int64: the lexsort path
    assert _pack(wide) is None
    assert _first_of_each(wide).tolist() == _first_of_each_reference(keys)
    assert _first_of_each(np.zeros((5, 0), dtype=np.int64)).tolist() == []


def test_pack_keeps_order_and_equality():
    rng = np.random.default_rng(1)
    keys = rng.integers(0, 1000, size=(3, 500))
    packed = _pack(keys)
    order = np.lexsort(tuple(keys[::-1]))
    assert (np.diff(packed[order]) >= 0).all()
    assert len(np.unique(packed)) == len(np.unique(keys.T, axis=0))
    assert _pack(-keys - 1) is None  # negative fields: no packing


def _byte_set(an, i: int, slot: int) -> list[int]:
    """The bytes of range `slot` of instruction i, in address order (2-D DMA rows expanded)."""
    lo, hi = int(an.lo[i, slot]), int(an.hi[i, slot])
    rows, row_bytes, stride = (int(v) for v in an.pattern[i, slot])
    if row_bytes == 0:  # not a DMA range: contiguous
        return list(range(lo, hi))
    return [lo + r * stride + c for r in range(rows) for c in range(row_bytes)]


def _first_uninitialized_reference(an, order: list[int], preloaded: list[tuple[int, int]]):
    """(position, instruction, slot, first unwritten byte) of the first read of a byte nothing wrote
    before (an instruction reads before it writes), byte by byte; None if every read is covered."""
    written = {0: {b for lo, hi in preloaded for b in range(lo, hi)}, 1: set(), 2: set()}
    for p, i in enumerate(order):
        slots = np.flatnonzero(an.used[i]).tolist()
        for slot in (s for s in slots if not an.write[i, s]):
            missing = [b for b in _byte_set(an, i, slot) if b not in written[int(an.mem[i, slot])]]
            if missing:
                return p, i, slot, missing[0]
        for slot in (s for s in slots if an.write[i, s]):
            written[int(an.mem[i, slot])].update(_byte_set(an, i, slot))
    return None


def _unwritten_reference(an, preloaded: list[tuple[int, int]]) -> list[tuple[str, int]]:
    """[(output, its first byte neither preloaded nor written by any instruction)], byte by byte."""
    written = {b for lo, hi in preloaded for b in range(lo, hi)}
    for i, slot in zip(*np.nonzero(an.used & an.write & (an.mem == 0))):
        written.update(_byte_set(an, int(i), int(slot)))
    missing = []
    for t in an.program.outputs:
        first = next((b for b in range(t.addr, t.end) if b not in written), None)
        if first is not None:
            missing.append((t.name, first))
    return missing


def _dram_roundtrip(edge):
    """An activation stored to DRAM and loaded back, between weight tensors (flags per DRAM tensor)."""
    b = ProgramBuilder("roundtrip", config=edge)
    x = b.tensor("x", "input", "u8", (256,))
    w = b.tensor("w", "weight", "u8", (4096,), data=np.arange(4096, dtype=np.uint8))
    act = b.tensor("act", "activation", "u8", (256,))
    w2 = b.tensor("w2", "weight", "u8", (4096,), data=np.arange(4096, dtype=np.uint8))
    y = b.tensor("y", "output", "u8", (192,))
    b.emit(Load(sp=sp(0), dram=x.addr, rows=1, row_bytes=256))
    b.emit(Load(sp=sp(256), dram=w.addr + 64, rows=1, row_bytes=64))
    b.emit(Store(sp=sp(0), dram=act.addr, rows=2, row_bytes=64, dram_stride=128, sp_stride=64))
    b.emit(Store(sp=sp(128), dram=act.addr + 64, rows=1, row_bytes=64))
    b.emit(Load(sp=sp(512), dram=act.addr, rows=1, row_bytes=192))
    b.emit(Load(sp=sp(1024), dram=w2.addr, rows=1, row_bytes=256))
    b.emit(Store(sp=sp(512), dram=y.addr, rows=1, row_bytes=192))
    b.finish()
    return b.build()


@pytest.mark.parametrize("name", ["gemm_double_buffer", "gemv_lut2", "gemv_lut4", "vec_epilogue", "uninit", "strided",
                                  "dram_roundtrip"])
def test_check_written_equals_a_byte_by_byte_walk(assembled, edge, name, kernels_or_none):
    if name == "dram_roundtrip":
        program = _dram_roundtrip(edge)
    elif name == "strided":  # 2-D DMAs: a store's rows interleave with the rows three loads wrote
        b = ProgramBuilder("strided", config=edge)
        x = b.tensor("x", "input", "u8", (1024,))
        y = b.tensor("y", "output", "u8", (1024,))
        for t in range(3):
            b.emit(Load(sp=sp(t * 32), dram=x.addr + t * 32, rows=2, row_bytes=16, dram_stride=128, sp_stride=64))
        b.emit(Store(sp=sp(0), dram=y.addr, rows=4, row_bytes=16, dram_stride=128, sp_stride=32))
        b.emit(Store(sp=sp(64), dram=y.addr + 16, rows=1, row_bytes=16))
        b.finish()
        program = b.build()
    else:
        program = assembled(name)
    an = analyze(program, edge)
    inputs = [(t.addr, t.end) for t in program.tensors if t.kind != "output"]
    rng = np.random.default_rng(len(name))
    outcomes = set()
    for trial in range(60):
        # Program order (clean unless the program itself reads too early), it with a few neighbours
        # swapped, or any order at all: the analysis must follow the order it is given.
        order = np.arange(an.n) if trial % 3 == 0 else rng.permutation(an.n)
        if trial % 3 == 1:
            order = np.arange(an.n)
            for k in rng.integers(0, an.n - 1, size=3):
                order[[k, k + 1]] = order[[k + 1, k]]
        preloaded = [r for r in inputs if rng.random() < 0.8] if trial % 2 else inputs
        if trial % 4 == 3:  # part of a tensor: flags per tensor must still mark exactly these bytes
            lo, hi = inputs[rng.integers(len(inputs))]
            preloaded = [r for r in preloaded if r != (lo, hi)] + [(lo, lo + int(rng.integers(1, hi - lo)))]
        pos = np.empty(an.n, dtype=np.int64)
        pos[order] = np.arange(an.n)
        if trial % 5 == 4:  # outputs given data too: preloaded, so never unwritten
            preloaded = preloaded + [(t.addr, t.end) for t in program.outputs]
        got, unwritten = check_written(an, pos, preloaded, kernels_or_none)
        assert unwritten == _unwritten_reference(an, preloaded)
        expected = _first_uninitialized_reference(an, order.tolist(), preloaded)
        if expected is None:
            assert got is None
        else:
            p, i, slot, byte = expected
            m, lo, hi = int(an.mem[i, slot]), int(an.lo[i, slot]), int(an.hi[i, slot])
            assert got == (p, i, _uninitialized_message(an, i, slot, m, lo, hi, byte))
        outcomes.add(expected is None)
    assert False in outcomes and (True in outcomes or name == "uninit")  # both kinds of order were tried


@settings(max_examples=200, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), fill=st.sampled_from([0.0, 0.5, 0.99, 1.0]))
def test_bit_flag_helpers_equal_byte_flags(seed, fill):
    """_set_bits and _first_unset on the walk's packed flags (a bit a byte) against one bool a byte."""
    rng = np.random.default_rng(seed)
    flags = rng.random(400) < fill
    lo, hi = sorted(int(x) for x in rng.integers(0, 401, size=2))
    bits = np.packbits(flags, bitorder="little")
    unset = np.flatnonzero(~flags[lo:hi])
    assert _first_unset(bits, lo, hi) == (int(unset[0]) if len(unset) else None)
    a, b = sorted(int(x) for x in rng.integers(0, 401, size=2))
    _set_bits(bits, a, b)
    flags[a:b] = True
    np.testing.assert_array_equal(np.unpackbits(bits, bitorder="little")[:400].astype(bool), flags)
