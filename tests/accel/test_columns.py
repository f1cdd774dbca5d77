"""Instruction columns: decoded from the binary words (by NumPy, or by the compiled
`decode_fields` kernel) they equal those read off the objects; bad words get isa.decode's
message; a loaded program decodes its objects lazily."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lutc.diagnostics import LutcError
from lutc.backends.accel import isa, kernels
from lutc.backends.accel.assembler import assemble_file
from lutc.backends.accel.columns import InstructionColumns, distinct_rows, signature_representatives
from lutc.backends.accel.program import Program
from lutc.backends.accel.simulator import Simulator

from .conftest import PROGRAMS
from .test_isa import instructions

NAMES = sorted(p.stem for p in PROGRAMS.glob("*.s"))


def _same(a: InstructionColumns, b: InstructionColumns) -> None:
    assert np.array_equal(a.kind, b.kind) and np.array_equal(a.layer, b.layer) and np.array_equal(a.deps, b.deps)
    assert a.groups.keys() == b.groups.keys() and a.columns.keys() == b.columns.keys()
    for cls in a.groups:
        assert np.array_equal(a.groups[cls], b.groups[cls])
        assert a.columns[cls].keys() == b.columns[cls].keys()
        for name, col in a.columns[cls].items():
            other = b.columns[cls][name]
            assert col.dtype == other.dtype, (cls, name)
            assert np.array_equal(col.view(np.int64) if col.dtype == np.float64 else col,
                                  other.view(np.int64) if other.dtype == np.float64 else other), (cls, name)


@pytest.fixture(params=["numpy", "compiled"])
def decode_path(request, monkeypatch):
    """from_words decodes through NumPy, or through the compiled kernel (used once the kernels are loaded)."""
    if request.param == "compiled":
        assert kernels.sim_kernels() is not None, kernels.unavailable_reason
    monkeypatch.setattr(kernels, "is_loaded", lambda: request.param == "compiled")
    return request.param


@pytest.mark.parametrize("name", NAMES)
def test_columns_from_words_equal_columns_from_objects(name, decode_path):
    program = assemble_file(PROGRAMS / f"{name}.s")
    words = isa.encode_stream(program.instructions)
    _same(InstructionColumns.from_words(words), InstructionColumns.from_instructions(program.instructions))


def _decoded(words: bytes, compiled: bool):
    """from_words through one path: its columns, or the message it rejects the words with."""
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(kernels, "is_loaded", lambda: compiled)
            return InstructionColumns.from_words(words)
    except isa.EncodingError as err:
        return err.message


@settings(max_examples=150, deadline=None)
@given(st.lists(instructions(), min_size=1, max_size=12), st.lists(st.integers(0, 32 * 12 * 8 - 1), max_size=3))
def test_compiled_decode_equals_numpy_decode(instrs, flips):
    """Random streams, some with flipped bits: the kernel's columns and rejections are NumPy's
    (a field read from the wrong word or shift, or a missed legality check, fails this)."""
    assert kernels.sim_kernels() is not None, kernels.unavailable_reason
    words = bytearray(isa.encode_stream(instrs))
    for bit in flips:
        if bit < len(words) * 8:
            words[bit // 8] ^= 1 << (bit % 8)
    numpy_result, compiled_result = _decoded(bytes(words), False), _decoded(bytes(words), True)
    if isinstance(numpy_result, str):
        assert compiled_result == numpy_result
    else:
        _same(compiled_result, numpy_result)


def test_bad_words_get_the_scalar_decoders_message(decode_path):
    program = assemble_file(PROGRAMS / "gemv_lut2.s")
    words = bytearray(isa.encode_stream(program.instructions))
    rng = random.Random(3)
    rejected = 0
    for _ in range(300):
        corrupt = bytearray(words)
        i = rng.randrange(len(program.instructions))
        bit = rng.randrange(256)
        corrupt[i * 32 + bit // 8] ^= 1 << (bit % 8)
        try:
            expected = None
            isa.decode_stream(bytes(corrupt))
        except isa.EncodingError as err:
            expected = err.message
        if expected is None:
            InstructionColumns.from_words(bytes(corrupt))  # accepted by both
            continue
        rejected += 1
        with pytest.raises(isa.EncodingError) as got:
            InstructionColumns.from_words(bytes(corrupt))
        assert got.value.message == expected
    assert rejected > 50


def test_loaded_program_decodes_objects_lazily_and_simulates_the_same(edge):
    program = assemble_file(PROGRAMS / "gemv_lut2.s", edge)
    loaded = Program.from_bytes(program.to_bytes())
    assert not loaded.decoded
    assert loaded.instruction(3) == program.instructions[3]
    a = Simulator(edge).run(program)
    b = Simulator(edge).run(loaded)
    assert not loaded.decoded  # simulation reads the columns
    assert a.report.to_json() == b.report.to_json()
    assert all(np.array_equal(a.outputs[k], b.outputs[k]) for k in a.outputs)
    assert loaded.instructions == program.instructions  # decoded on first use
    assert loaded.to_bytes() == program.to_bytes()


def test_changed_instructions_rebuild_columns_and_validation(edge):
    from dataclasses import replace

    program = assemble_file(PROGRAMS / "gemv_lut2.s", edge)
    first = program.columns()
    assert program.columns() is first
    i = next(k for k, ins in enumerate(program.instructions) if isinstance(ins, isa.Load))
    program.instructions[i] = replace(program.instructions[i], rows=0)
    assert program.columns() is not first
    with pytest.raises(LutcError, match="rows must be >= 1"):
        Simulator(edge).run(program)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(instructions(), min_size=1, max_size=30), st.randoms(use_true_random=False))
def test_signature_representatives_from_words_equal_those_from_columns(instrs, rnd):
    """Validation checks one instruction per signature (fields less addresses, token flags and
    layer); from the words (one sort) it must pick the same ones as from each class's columns."""
    # repeat instructions with other addresses, tokens or layers: same signatures, more rows
    more = []
    for instr in instrs:
        more.append(instr)
        if rnd.random() < 0.5:
            changes = {"layer": rnd.randrange(0xFFFF), "push_next": not instr.push_next}
            for f in isa.FORMATS[type(instr).OPCODE]:
                value = getattr(instr, f.attr)
                if f.kind is isa.Kind.OPERAND and value.space is not isa.Space.NONE:
                    changes[f.attr] = dataclasses.replace(value, addr=rnd.randrange(1 << 30))
                elif f.kind is isa.Kind.DRAM:
                    changes[f.attr] = rnd.randrange(1 << 40)
            more.append(dataclasses.replace(instr, **changes))
    words = isa.encode_stream(more)
    columns = InstructionColumns.from_words(words)
    expected = []
    for cls, idx in columns.groups.items():
        cols = columns.columns[cls]
        signature = {name: c for name, c in cols.items() if not name.endswith(".addr") and name != "dram"}
        first, _ = distinct_rows(signature or {"none": np.zeros(len(idx), dtype=np.int64)})
        expected += idx[first].tolist()
    assert signature_representatives(words).tolist() == sorted(expected)


@pytest.mark.parametrize("name", NAMES)
def test_signature_representatives_survive_hash_collisions(name, monkeypatch):
    """Rows are grouped by a 64-bit mix of their words; if two signatures mixed alike (forced
    here: every row mixes to 0), the exact sort of whole rows decides instead."""
    from lutc.backends.accel import columns

    words = isa.encode_stream(assemble_file(PROGRAMS / f"{name}.s").instructions)
    expected = signature_representatives(words).tolist()
    monkeypatch.setattr(columns, "_MIX", np.zeros(4, dtype=np.uint64))
    assert signature_representatives(words).tolist() == expected
    assert len(expected) > 1
