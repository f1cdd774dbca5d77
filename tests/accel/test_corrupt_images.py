"""Corrupted programs (what a buggy writer or compiler makes, not a bad disk: the checksum is
valid): loading and simulating one either works or raises LutcError naming the cause, never
another exception; and where it runs, the NumPy and compiled-kernel paths agree on every output
byte, the report, or the error message. Two kinds: random bytes of the image, and one field of
one instruction moved a little (which mostly still validates, so hazards are exercised)."""

from __future__ import annotations

import dataclasses
import struct
import zlib

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lutc.diagnostics import LutcError
from lutc.backends.accel import isa
from lutc.backends.accel.assembler import assemble_file
from lutc.backends.accel.program import HEADER, Program, validate_program
from lutc.backends.accel.simulator import Simulator

from .conftest import PROGRAMS

_PROGRAMS = [assemble_file(path) for path in sorted(PROGRAMS.glob("*.s"))]
_IMAGES = [program.to_bytes() for program in _PROGRAMS]


@st.composite
def corrupted_images(draw) -> bytes:
    blob = bytearray(draw(st.sampled_from(_IMAGES)))
    _, _, _, _, _, n_instr, meta_len, _ = HEADER.unpack_from(blob)
    code = HEADER.size + meta_len
    # Mostly instruction words (fields out of range, wrong types, tokens, addresses), sometimes metadata.
    lo, hi = draw(st.sampled_from([(code, code + 32 * n_instr)] * 3 + [(HEADER.size, code)]))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(lo, hi - 1))
        blob[at] = draw(st.one_of(st.integers(0, 255), st.sampled_from([blob[at] ^ (1 << b) for b in range(8)])))
    body = bytes(blob[:-4])
    return body + struct.pack("<I", zlib.crc32(body))


@st.composite
def nudged_programs(draw) -> bytes:
    program = draw(st.sampled_from(_PROGRAMS))
    i = draw(st.integers(0, len(program.instructions) - 1))
    instr = program.instructions[i]
    fields = [f for f in isa.FORMATS[type(instr).OPCODE] if f.kind in (isa.Kind.UINT, isa.Kind.DRAM, isa.Kind.OPERAND, isa.Kind.BOOL)]
    if not fields:
        return program.to_bytes()
    f = draw(st.sampled_from(fields))
    value = getattr(instr, f.attr)
    if f.kind is isa.Kind.BOOL:
        new = not value
    elif f.kind is not isa.Kind.OPERAND:
        new = min(max(value + draw(st.sampled_from([-64, -8, -1, 1, 8, 64])), 0), (1 << f.width) - 1)
    elif value.space is isa.Space.NONE:
        return program.to_bytes()
    else:
        new = dataclasses.replace(value, addr=max(value.addr + draw(st.sampled_from([-256, -64, -4, 4, 64, 256, 1 << 18])), 0))
    changed = Program.from_bytes(program.to_bytes(), program.source)
    changed.instructions[i] = dataclasses.replace(instr, **{f.attr: new})
    return changed.to_bytes()


def _outcome(program: Program, config, inputs: dict, compiled: bool):
    try:
        result = Simulator(config, compiled=compiled).run(program, inputs)
    except LutcError as err:
        return "error", str(err)
    return "ran", result.report.to_text(), {name: out.tobytes() for name, out in result.outputs.items()}


@settings(max_examples=500, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(corrupted_images(), nudged_programs()))
def test_corrupted_programs_fail_cleanly_and_both_paths_agree(edge, sim_kernels, image):
    try:
        program = Program.from_bytes(image, "corrupt.lutp")
        validate_program(program, edge)
    except LutcError as err:
        assert "corrupt.lutp" in str(err)  # names the file
        return
    rng = np.random.default_rng(0)
    inputs = {t.name: (rng.standard_normal(t.shape) if t.dtype.is_float else rng.integers(-3, 4, t.shape)).astype(t.dtype.np)
              for t in program.inputs}
    assert _outcome(program, edge, inputs, False) == _outcome(program, edge, inputs, True)
