"""ISA encoding, assembler and disassembler: fixed 256-bit words, exact round trips, clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lutc.backends.accel import isa
from lutc.backends.accel.assembler import assemble, disassemble, format_instruction, parse_instruction
from lutc.backends.accel.isa import (
    FORMATS, INSTR_BYTES, NO_OPERAND, Bcast, DType, EncodingError, Finish, Kind, Load, Opcode, Operand,
    Queue, Space, Sync, Vec, VecFunc, acc, decode, decode_stream, encode, encode_stream, sp,
)
from lutc.diagnostics import LutcError

from .conftest import PROGRAMS, ROOT

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------------------
# Strategies: any instruction the encoding can hold
# ---------------------------------------------------------------------------------------

def operand(f: isa.Field, optional: bool):
    typed = st.sampled_from([d for d in DType if d is not DType.NONE]) if f.dtype_lsb is not None else st.just(DType.NONE)
    bcast = st.sampled_from(list(Bcast)) if f.bcast_lsb is not None else st.just(Bcast.TILE)
    real = st.builds(Operand, st.sampled_from([Space.SP, Space.ACC]), st.integers(0, (1 << 30) - 1), typed, bcast)
    return st.one_of(st.just(NO_OPERAND), real) if optional else real


def field_value(f: isa.Field, optional: bool):
    if f.kind is Kind.OPERAND:
        return operand(f, optional)
    if f.kind is Kind.BOOL:
        return st.booleans()
    if f.kind is Kind.F32:
        return st.floats(width=32, allow_nan=False)
    if f.kind is Kind.QUEUE:
        return st.sampled_from(list(Queue))
    return st.integers(0, (1 << f.width) - 1)


@st.composite
def instructions(draw):
    opcode = draw(st.sampled_from(list(Opcode)))
    cls = isa.INSTRUCTION_CLASSES[opcode]
    kwargs = {dep: draw(st.booleans()) for dep in ("pop_prev", "pop_next", "push_prev", "push_next")}
    kwargs["layer"] = draw(st.integers(0, 0xFFFF))
    for f in FORMATS[opcode]:
        kwargs[f.attr] = draw(field_value(f, optional=opcode is Opcode.VEC and f.key in ("b", "c")))
    if opcode is Opcode.VEC:
        kwargs["func"] = draw(st.sampled_from(list(VecFunc)))
    elif opcode is Opcode.RED:
        kwargs["func"] = draw(st.sampled_from(list(isa.RedFunc)))
    return cls(**kwargs)


# ---------------------------------------------------------------------------------------
# Binary encoding
# ---------------------------------------------------------------------------------------

@SETTINGS
@given(instructions())
def test_encode_decode_round_trip(instr):
    word = encode(instr)
    assert len(word) == INSTR_BYTES
    assert decode(word) == instr
    assert encode(decode(word)) == word


@SETTINGS
@given(instructions())
def test_text_round_trip(instr):
    """binary -> text -> binary is exact, and so is canonical text -> binary -> text."""
    text = format_instruction(instr)
    parsed = parse_instruction(text)
    assert parsed == _without_layer(instr)
    assert format_instruction(decode(encode(parsed))) == text


def _without_layer(instr):
    from dataclasses import replace

    return replace(instr, layer=0)


def test_field_layouts_fit_and_do_not_overlap():
    for opcode, fmt in FORMATS.items():
        used = (1 << isa.HEADER_BITS) - 1
        for f in fmt:
            for _, lsb, width in f.slots:
                mask = ((1 << width) - 1) << lsb
                assert lsb + width <= 256 and not used & mask, (opcode, f.key)
                used |= mask


def test_header_layout():
    word = encode(Load(sp=sp(0x40), dram=0x1000, rows=2, row_bytes=64, push_next=True, layer=7))
    bits = int.from_bytes(word, "little")
    assert bits & 0xFF == Opcode.LOAD
    assert bits >> 19 & 1 == 1 and bits >> 16 & 0x7 == 0  # push_next only
    assert bits >> 24 & 0xFFFF == 7
    assert bits >> 40 & 0x3FFFFFFF == 0x40 and bits >> 70 & 3 == Space.SP
    assert bits >> 72 & ((1 << 48) - 1) == 0x1000


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b[:1].replace(b"\x01", b"\x00") + b[1:], "unknown opcode 0x00"),
    (lambda b: b"\x1f" + b[1:], "unknown opcode 0x1f"),
    (lambda b: b[:2] + bytes([b[2] | 0x10]) + b[3:], "reserved header bits"),
    (lambda b: b[:31] + b"\x80", "bits set outside its fields"),
    (lambda b: b[:1] + b"\x05" + b[2:], "LOAD has no function"),
])
def test_decode_rejects_invalid_words(mutate, message):
    word = encode(Load(sp=sp(0), dram=0, rows=1, row_bytes=4))
    with pytest.raises(EncodingError, match=message):
        decode(mutate(word))


def test_decode_rejects_bad_enums():
    vec = Vec(func=VecFunc.ADD, dst=sp(0, "f32"), a=sp(0, "f32"), b=sp(0, "f32"), rows=1, cols=1)
    bits = int.from_bytes(encode(vec), "little")
    with pytest.raises(EncodingError, match="unknown VEC function 99"):
        decode(((bits & ~(0xFF << 8)) | 99 << 8).to_bytes(32, "little"))
    with pytest.raises(EncodingError, match="DType"):
        decode((bits | 0xF << 72).to_bytes(32, "little"))  # dst dtype nibble = 15


def test_encode_rejects_values_that_do_not_fit():
    with pytest.raises(EncodingError, match="'rows' = 65536 does not fit in 16 bits"):
        encode(Load(sp=sp(0), dram=0, rows=1 << 16, row_bytes=1))
    with pytest.raises(EncodingError, match="untyped"):
        encode(Load(sp=sp(0, "f32"), dram=0, rows=1, row_bytes=1))
    with pytest.raises(EncodingError, match="not an f32"):
        encode(Vec(func=VecFunc.MULI, dst=sp(0, "f32"), a=sp(0, "f32"), rows=1, cols=1, imm=1e300))


def test_stream_round_trip_and_length_check():
    instrs = [Load(sp=sp(0), dram=0, rows=1, row_bytes=4), Sync(sync_queue=Queue.STORE, pop_prev=True), Finish()]
    blob = encode_stream(instrs)
    assert len(blob) == 3 * INSTR_BYTES and decode_stream(blob) == instrs
    with pytest.raises(EncodingError, match="not a multiple of 32"):
        decode_stream(blob[:-1])


# ---------------------------------------------------------------------------------------
# Assembler and disassembler
# ---------------------------------------------------------------------------------------

def _canonical(text: str) -> str:
    """A program file without comments and blank lines, single-spaced."""
    out = []
    for line in text.splitlines():
        code = line.split("#", 1)[0].split()
        if code:
            out.append(" ".join(code))
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("path", sorted(PROGRAMS.glob("*.s")), ids=lambda p: p.stem)
def test_test_programs_are_canonical_and_round_trip(path: Path):
    text = path.read_text()
    program = assemble(text, str(path))
    printed = disassemble(program)
    assert printed == _canonical(text)  # text -> binary -> text, exactly
    again = assemble(printed)
    assert encode_stream(again.instructions) == encode_stream(program.instructions)
    assert again.layers == program.layers and [t.to_json() for t in again.tensors] == [t.to_json() for t in program.tensors]


def test_fields_in_any_order_and_any_spacing():
    a = parse_instruction("LUT.MMA   k=64 n=32 m=1 dst=acc:0x0:i16 bits=2 w=sp:256 tbl=sp:0x400:i8 sym=1 push=next pop=prev")
    b = parse_instruction("LUT.MMA dst=acc:0x0:i16 tbl=sp:0x400:i8 w=sp:0x100 m=1 n=32 k=64 bits=2 sym=1 pop=prev push=next")
    assert a == b
    assert format_instruction(a) == "LUT.MMA dst=acc:0x0:i16 tbl=sp:0x400:i8 w=sp:0x100 m=1 n=32 k=64 bits=2 sym=1 pop=prev push=next"


def test_broadcast_and_immediate_syntax():
    instr = parse_instruction("VEC.FMA dst=sp:0x0:f32 a=acc:0x10:i32 b=sp:0x20:f32:col c=sp:0x40:f16:scalar rows=2 cols=8 accum=1")
    assert instr.b.bcast is Bcast.COL and instr.c.bcast is Bcast.SCALAR and instr.a == acc(0x10, "i32") and instr.accum
    assert format_instruction(parse_instruction("VEC.MULI dst=sp:0x0:f32 a=sp:0x0:f32 rows=1 cols=1 imm=0.1")).endswith("imm=0.1")


def _asm_error(text: str) -> LutcError:
    with pytest.raises(LutcError) as info:
        assemble(text, "t.s")
    return info.value


@pytest.mark.parametrize("line, at, message", [
    ("LAOD dst=sp:0x0 src=dram:0x0 rows=1 bytes=4", "LAOD", "unknown instruction 'LAOD'"),
    ("load dst=sp:0x0 src=dram:0x0 rows=1 bytes=4", "load", "did you mean LOAD?"),
    ("LOAD dst=sp:0x0 src=dram:0x0 rows=1", "LOAD", "LOAD needs 'bytes='"),
    ("LOAD dst=sp:0x0 src=dram:0x0 rows=1 bytes=4 stride=8", "stride", "LOAD has no field 'stride'"),
    ("LOAD dst=sp:0x0 src=sp:0x0 rows=1 bytes=4", "sp:0x0 rows", "expected a DRAM address 'dram:ADDR'"),
    ("LOAD dst=xp:0x0 src=dram:0x0 rows=1 bytes=4", "xp:", "expected an on-chip operand"),
    ("LOAD dst=sp:0x0 src=dram:0x0 rows=70000 bytes=4", "70000", "'rows' = 70000 does not fit in 16 bits"),
    ("VEC.ADD dst=sp:0x0:f64 a=sp:0x0:f32 rows=1 cols=1", "sp:0x0:f64", "unknown dtype or broadcast mode 'f64'"),
    ("LOAD dst=sp:0x0:f32 src=dram:0x0 rows=1 bytes=4", "sp:0x0:f32", "'dst' is untyped"),
    ("LOAD dst=sp:0x0 src=dram:0x0 rows=1 bytes=4 pop=later", "later", "'pop' takes prev, next or prev,next"),
    (".tensor x input f32 1x4 at=dram:0x0 init=gaussian", "gaussian", "unknown init 'gaussian'"),
    (".layer", ".layer", "usage: .layer NAME"),
    (".section text", ".section", "unknown directive '.section'"),
])
def test_errors_point_at_the_token(line, at, message):
    err = _asm_error("# first line\n" + line + "\nFINISH\n")
    col = line.index(at) + 1
    assert message in err.message
    assert (err.loc.file, err.loc.line, err.loc.col) == ("t.s", 2, col)
    assert err.render().splitlines()[-1] == " " * (col - 1) + "^"


def test_program_without_finish_is_rejected():
    assert "does not end with FINISH" in _asm_error("LOAD dst=sp:0x0 src=dram:0x0 rows=1 bytes=4\n").message


def test_isa_doc_lists_every_field():
    """docs/isa.md carries the same field tables as the encoder (regenerate with isa.field_tables_markdown)."""
    doc = (ROOT / "docs" / "isa.md").read_text()
    assert isa.field_tables_markdown() in doc
    for opcode, fmt in FORMATS.items():
        for f in fmt:
            assert re.search(rf"`{re.escape(f.key)}`", doc), (opcode, f.key)
