"""The program container: file format, validation on load, the builder API, inputs."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from lutc.backends.accel.isa import Finish, Load, Queue, Store, Sync, Vec, VecFunc, sp
from lutc.backends.accel.program import (
    HEADER, MAGIC, DramTensor, Program, ProgramBuilder, load_inputs, load_program, validate_program,
)
from lutc.backends.accel.isa import DType
from lutc.diagnostics import LutcError
from lutc.backends.accel.program import CheckContext, InstructionError, check_instruction, instruction_accesses
from lutc.backends.accel.isa import Opcode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .test_isa import instructions


def small_program(config=None) -> Program:
    b = ProgramBuilder("copy", config=config, tokens=2)
    x = b.tensor("x", "input", "f32", (4, 16))
    w = b.tensor("w", "weight", "i8", (64,), data=np.arange(64, dtype=np.int8))
    y = b.tensor("y", "output", "f32", (4, 16))
    b.set_layer("copy")
    b.emit(Load(sp=sp(0), dram=x.addr, rows=4, row_bytes=64, push_next=True))
    b.emit(Load(sp=sp(0x400), dram=w.addr, rows=1, row_bytes=64))
    b.emit(Vec(func=VecFunc.RELU, dst=sp(0x100, "f32"), a=sp(0, "f32"), rows=4, cols=16, pop_prev=True, push_next=True))
    b.emit(Store(dram=y.addr, sp=sp(0x100), rows=4, row_bytes=64, pop_prev=True))
    b.finish()
    return b.build()


def test_builder_places_tensors_and_tags_layers(edge):
    p = small_program(edge)
    assert [(t.name, t.addr, t.nbytes) for t in p.tensors] == [("x", 0, 256), ("w", 256, 64), ("y", 320, 256)]
    assert p.layers == ["", "copy"] and all(i.layer == 1 for i in p.instructions[:-1])
    assert p.config_hash == edge.arch_hash and p.tokens == 2
    assert [t.name for t in p.inputs] == ["x"] and [t.name for t in p.outputs] == ["y"]
    np.testing.assert_array_equal(p.tensor_array("w"), np.arange(64, dtype=np.int8))


def test_save_and_load_round_trip(tmp_path, edge):
    p = small_program(edge)
    path = tmp_path / "copy.bin"
    p.save(path)
    q = load_program(path, edge)
    assert q.instructions == p.instructions and q.layers == p.layers and q.tokens == 2 and q.name == "copy"
    assert [t.to_json() for t in q.tensors] == [t.to_json() for t in p.tensors]
    np.testing.assert_array_equal(q.data["w"], p.data["w"])
    assert q.to_bytes() == p.to_bytes()


def test_file_header_layout(edge):
    blob = small_program(edge).to_bytes()
    magic, major, minor, flags, chash, n, meta, data = HEADER.unpack_from(blob)
    assert (magic, major, minor, flags, chash, n, data) == (MAGIC, 1, 0, 0, edge.arch_hash, 5, 64)
    assert meta % 32 == 0
    assert len(blob) == 64 + meta + 5 * 32 + data + 4


def _load_error(tmp_path, blob: bytes, config=None) -> str:
    path = tmp_path / "p.bin"
    path.write_bytes(blob)
    with pytest.raises(LutcError) as info:
        load_program(path, config)
    assert str(info.value).startswith(f"{path}: error: ")
    return info.value.message


@pytest.mark.parametrize("cut", [0, 5, 40, 100, -1])
def test_truncated_files(tmp_path, cut, edge):
    blob = small_program(edge).to_bytes()
    assert "truncated" in _load_error(tmp_path, blob[:cut])


def test_bad_magic_version_and_checksum(tmp_path, edge):
    blob = bytearray(small_program(edge).to_bytes())
    assert "bad magic" in _load_error(tmp_path, b"\x7fELF" + bytes(blob[4:]))

    def with_version(major, minor):
        out = bytearray(blob)
        struct.pack_into("<HH", out, 8, major, minor)
        body = bytes(out[:-4])
        return body + struct.pack("<I", zlib.crc32(body))

    assert "ISA version 2.0 is not supported" in _load_error(tmp_path, with_version(2, 0))
    assert "ISA version 1.7 is not supported" in _load_error(tmp_path, with_version(1, 7))
    corrupt = bytearray(blob)
    corrupt[200] ^= 0xFF
    assert "checksum mismatch" in _load_error(tmp_path, bytes(corrupt))
    assert "unexpected bytes after the end" in _load_error(tmp_path, bytes(blob) + b"\0")


def test_address_beyond_scratchpad_names_instruction_and_queue(tmp_path, edge):
    p = small_program()
    p.instructions[2] = Vec(func=VecFunc.RELU, dst=sp(0x3FFF0, "f32"), a=sp(0, "f32"), rows=4, cols=16,
                            pop_prev=True, push_next=True, layer=1)
    p.save(tmp_path / "p.bin")
    with pytest.raises(LutcError) as info:
        load_program(tmp_path / "p.bin", edge)
    assert info.value.message == ("instruction #2 (compute queue, VEC.RELU, layer 'copy'): scratchpad overflow: "
                                  "dst sp[0x3fff0..0x400f0) ends 240 bytes past the end of the 262144-byte scratchpad")


def test_address_beyond_dram(edge):
    top = edge.dram.size_bytes
    b = ProgramBuilder("far")
    t = b.tensor("t", "input", "u8", (256,), addr=top - 256)
    b.emit(Load(sp=sp(0), dram=t.addr, rows=1, row_bytes=512))
    b.finish()
    with pytest.raises(LutcError, match=r"instruction #0 \(load queue, LOAD\): src dram\[0x3fffff00..0x40000100\): address beyond DRAM"):
        validate_program(b.build(), edge)


def test_dma_outside_declared_tensors(edge):
    b = ProgramBuilder("gap")
    b.tensor("t", "input", "u8", (64,))
    b.tensor("u", "input", "u8", (64,), addr=1024)
    b.emit(Load(sp=sp(0), dram=32, rows=1, row_bytes=64))
    b.finish()
    with pytest.raises(LutcError, match=r"src dram\[0x20..0x60\) is outside every declared DRAM tensor"):
        validate_program(b.build(), edge)


def test_program_for_another_config(edge, ltc):
    with pytest.raises(LutcError, match="program was built for a different accelerator"):
        validate_program(small_program(edge), ltc)
    validate_program(small_program(None), ltc)  # unbound programs run anywhere they fit


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p.instructions.pop(), "does not end with FINISH"),
    (lambda p: p.instructions.insert(0, Finish()), "instruction #0: FINISH before the end"),
    (lambda p: p.tensors.append(DramTensor("z", "activation", DType.F32, (4,), 8)), "overlap"),
    (lambda p: p.data.pop("w"), "weight tensor 'w' has no data"),
    (lambda p: p.tensors.append(DramTensor("x", "output", DType.F32, (4,), 4096)), "declared twice"),
])
def test_structure_errors(mutate, message, edge):
    p = small_program()
    mutate(p)
    with pytest.raises(LutcError, match=message):
        validate_program(p, edge)


def test_illegal_dependency_tokens(edge):
    p = small_program()
    p.instructions[0] = Load(sp=sp(0), dram=0, rows=4, row_bytes=64, push_next=True, pop_prev=True)
    with pytest.raises(LutcError, match=r"instruction #0 \(load queue, LOAD\): pop_prev is not possible in the load queue"):
        validate_program(p, edge)
    p = small_program()
    p.instructions[0] = Sync(sync_queue=Queue.STORE, push_next=True)
    with pytest.raises(LutcError, match="push_next is not possible in the store queue"):
        validate_program(p, edge)


def test_inputs_are_checked(edge):
    p = small_program(edge)
    with pytest.raises(LutcError, match=r"missing input 'x' \(f32, shape \[4, 16\]\)"):
        load_inputs(p, {})
    with pytest.raises(LutcError, match=r"tensor 'x' has shape \[4, 16\], got an array of shape \[16, 4\]"):
        load_inputs(p, {"x": np.zeros((16, 4), np.float32)})
    with pytest.raises(LutcError, match="input 'q' is not a tensor of the program"):
        load_inputs(p, {"q": np.zeros(1)})
    with pytest.raises(LutcError, match="tensor 'y' is an output tensor"):
        load_inputs(p, {"x": np.zeros((4, 16)), "y": np.zeros((4, 16))})
    raw = load_inputs(p, {"x": np.ones((4, 16))})  # float64 -> f32 is allowed
    assert raw["x"].view(np.float32).tolist() == [1.0] * 64


def _small_addresses(instr):
    """Pull addresses and sizes into a range where bounds and alignment checks can go either way."""
    from dataclasses import fields, replace

    from lutc.backends.accel.isa import Operand

    changes = {}
    for f in fields(instr):
        value = getattr(instr, f.name)
        if isinstance(value, Operand) and not value.is_none:
            changes[f.name] = replace(value, addr=value.addr % (300 * 1024))
        elif f.name == "dram":
            changes[f.name] = value % 8192
        elif f.name in ("rows", "row_bytes", "m", "n", "k", "cols", "qgroup"):
            changes[f.name] = value % 300
        elif f.name in ("dram_stride", "sp_stride"):
            changes[f.name] = value % 600
    return replace(instr, **changes, layer=0)


def _both_checkers(edge, instr, dram_bytes: int) -> tuple[str | None, str | None]:
    """(scalar message, vectorized message) for a one-instruction program; None where a checker accepts it."""
    program = Program([instr, Finish()], [DramTensor("t", "input", DType.U8, (dram_bytes,), 0)])
    ctx = CheckContext(edge, program)
    try:
        check_instruction(instr, edge, ctx)
        for access in instruction_accesses(instr, edge):
            ctx.check_bounds(access)
        scalar = None
    except InstructionError as err:
        scalar = str(err)
    try:
        validate_program(program, edge)
        vectorized = None
    except LutcError as err:
        vectorized = err.message
    return scalar, vectorized


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(instructions())
def test_vectorized_validation_agrees_with_the_scalar_checks(edge, instr):
    instr = _small_addresses(instr)
    if instr.OPCODE is Opcode.FINISH:
        return
    scalar, vectorized = _both_checkers(edge, instr, dram_bytes=4096)
    if scalar is None:
        assert vectorized is None
    else:
        assert vectorized is not None and vectorized.endswith(scalar)


def _valid_instructions():
    from lutc.backends.accel.assembler import assemble_file

    from .conftest import PROGRAMS

    out = []
    for name in ("gemv_lut2", "gemv_lut4", "gemm_double_buffer", "vec_epilogue"):
        out += [i for i in assemble_file(PROGRAMS / f"{name}.s").instructions if i.OPCODE is not Opcode.FINISH]
    return out


_VALID = _valid_instructions()


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_VALID), st.data())
def test_vectorized_bounds_and_alignment_agree_with_the_scalar_checks(edge, instr, data):
    """Valid instructions with one address or size moved at random: valid or not, both checkers agree."""
    from dataclasses import fields, replace

    from lutc.backends.accel.isa import Operand

    candidates = [f.name for f in fields(instr) if isinstance(getattr(instr, f.name), Operand) and not getattr(instr, f.name).is_none]
    candidates += [f.name for f in fields(instr) if f.name in ("dram", "rows", "row_bytes", "dram_stride", "sp_stride", "m", "n", "cols")]
    name = data.draw(st.sampled_from(candidates))
    value = getattr(instr, name)
    if isinstance(value, Operand):
        top = edge.scratchpad.size_bytes if value.space.name == "SP" else edge.accumulator.size_bytes
        instr = replace(instr, **{name: replace(value, addr=data.draw(st.integers(0, top + 64)))})
    else:
        instr = replace(instr, **{name: data.draw(st.integers(1, 4 * value + 64))})
    scalar, vectorized = _both_checkers(edge, replace(instr, layer=0), dram_bytes=8192)
    assert (scalar is None) == (vectorized is None), (scalar, vectorized)
    if scalar is not None:
        assert vectorized.endswith(scalar)
