"""Text assembly <-> instructions and programs.

    # comment
    .program gemv                                    program name
    .tokens 1                                        tokens the program produces (energy per token)
    .tensor x input f32 1x64 at=dram:0x0             DRAM tensor: name kind dtype shape address
    .tensor w weight u8 2x32x8 at=dram:0x100 init=random:1   (init: zeros | ones | random:SEED)
    .layer fc1                                       layer tag of the following instructions ('-': none)
    LOAD dst=sp:0x0 src=dram:0x0 rows=1 bytes=256 push=next
    LUT.BUILD dst=sp:0x400:i8 src=sp:0x0:f32 rows=1 k=64 qgroup=64 sym=1 pop=prev
    FINISH

An instruction is a mnemonic and `key=value` fields in any order; `pop=` and `push=` take
`prev`, `next` or `prev,next`. On-chip operands are `space:address[:dtype][:broadcast]`.
The disassembler prints the canonical form: fields in encoding-table order, defaults (0,
false, no operand) left out, single spaces. Canonical text round-trips exactly through
the binary encoding.
"""

from __future__ import annotations

import math
import re
from dataclasses import MISSING, fields, replace

import numpy as np

from lutc.diagnostics import Location, LutcError
from lutc.backends.accel import isa
from lutc.backends.accel.config import AccelConfig
from lutc.backends.accel.isa import (
    FORMATS, Bcast, DType, Instruction, Kind, Opcode, Operand, Queue, RedFunc, Space, VecFunc,
)
from lutc.backends.accel.program import (
    NO_HASH, TENSOR_KINDS, DramTensor, Program, check_structure, initial_data, validate_program,
)

_MNEMONICS: dict[str, tuple[Opcode, object]] = {}
for _op, _name in isa.MNEMONIC.items():
    if _op is Opcode.VEC:
        for _f in VecFunc:
            _MNEMONICS[f"VEC.{_f.name}"] = (_op, _f)
    elif _op is Opcode.RED:
        for _f in RedFunc:
            _MNEMONICS[f"RED.{_f.name}"] = (_op, _f)
    else:
        _MNEMONICS[_name] = (_op, None)

_DEPS = ("pop_prev", "pop_next", "push_prev", "push_next")
_TOKEN = re.compile(r"\S+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-/]*$")


class _Error(Exception):
    def __init__(self, message: str, col: int):
        super().__init__(message)
        self.message = message
        self.col = col


# ---------------------------------------------------------------------------------------
# Printing
# ---------------------------------------------------------------------------------------

def format_f32(value: float) -> str:
    """The shortest text that parses back to the same binary32 value."""
    v = np.float32(value)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return np.format_float_positional(v, unique=True, trim="-") if 1e-4 <= abs(v) < 1e16 or v == 0 else \
        np.format_float_scientific(v, unique=True, trim="-")


def _format_value(f: isa.Field, value) -> str | None:
    """The text of a field value, or None when the canonical form leaves it out."""
    if f.kind is Kind.OPERAND:
        return None if value.is_none and f.default_omitted else str(value)
    if f.kind is Kind.DRAM:
        return f"dram:{value:#x}"
    if f.kind is Kind.BOOL:
        return None if not value and f.default_omitted else str(int(value))
    if f.kind is Kind.F32:
        bits = np.float32(value).view(np.uint32)
        return None if bits == 0 and f.default_omitted else format_f32(value)
    if f.kind is Kind.QUEUE:
        return value.text
    return None if value == 0 and f.default_omitted else str(value)


def format_instruction(instr: Instruction) -> str:
    """The canonical assembly of one instruction (without its layer, which `.layer` lines carry)."""
    parts = [instr.mnemonic]
    for f in FORMATS[instr.OPCODE]:
        text = _format_value(f, getattr(instr, f.attr))
        if text is not None:
            parts.append(f"{f.key}={text}")
    pops = [d[4:] for d in _DEPS[:2] if getattr(instr, d)]
    pushes = [d[5:] for d in _DEPS[2:] if getattr(instr, d)]
    if pops:
        parts.append("pop=" + ",".join(pops))
    if pushes:
        parts.append("push=" + ",".join(pushes))
    return " ".join(parts)


def disassemble_instructions(instrs: list[Instruction], layers: list[str] | None = None) -> str:
    """Canonical text of an instruction list, with `.layer` lines where the tag changes."""
    lines, current = [], 0
    for instr in instrs:
        if instr.layer != current:
            name = layers[instr.layer] if layers and instr.layer < len(layers) else f"L{instr.layer}"
            lines.append(f".layer {name or '-'}")
            current = instr.layer
        lines.append(format_instruction(instr))
    return "\n".join(lines) + ("\n" if lines else "")


def format_tensor(t: DramTensor, has_data: bool) -> str:
    text = f".tensor {t.name} {t.kind} {t.dtype.text} {'x'.join(map(str, t.shape))} at=dram:{t.addr:#x}"
    if t.init is not None:
        text += f" init={t.init}"
    elif has_data:
        text += f"  # {t.nbytes} bytes of data in the program file"
    return text


def disassemble(program: Program) -> str:
    """Canonical text of a whole program: header directives, tensors, instructions."""
    lines = [f".program {program.name}"]
    if program.tokens != 1:
        lines.append(f".tokens {program.tokens}")
    lines += [format_tensor(t, t.name in program.data) for t in program.tensors]
    return "\n".join(lines) + "\n" + disassemble_instructions(program.instructions, program.layers)


# ---------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------

def _parse_int(text: str, col: int, what: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise _Error(f"{what}: expected an integer, got '{text}'", col) from None
    if value < 0:
        raise _Error(f"{what}: must be >= 0, got {value}", col)
    return value


def _parse_operand(text: str, col: int, key: str) -> Operand:
    parts = text.split(":")
    spaces = {"sp": Space.SP, "acc": Space.ACC}
    if parts[0] not in spaces or len(parts) < 2:
        raise _Error(f"'{key}': expected an on-chip operand 'sp:ADDR[:dtype][:broadcast]' or 'acc:...', got '{text}'", col)
    addr = _parse_int(parts[1], col, f"'{key}' address")
    if addr >= 1 << isa.ADDR_OFFSET_BITS:
        raise _Error(f"'{key}': address {addr:#x} does not fit in {isa.ADDR_OFFSET_BITS} bits", col)
    dtype, bcast = DType.NONE, Bcast.TILE
    for extra in parts[2:]:
        if extra.upper() in Bcast.__members__:
            bcast = Bcast[extra.upper()]
        else:
            try:
                dtype = DType.parse(extra)
            except ValueError:
                raise _Error(f"'{key}': unknown dtype or broadcast mode '{extra}' "
                             f"(dtypes: u8 i8 i16 i32 f16 bf16 f32; broadcast: tile col row scalar)", col) from None
    return Operand(spaces[parts[0]], addr, dtype, bcast)


def _parse_value(f: isa.Field, text: str, col: int):
    if f.kind is Kind.OPERAND:
        op = _parse_operand(text, col, f.key)
        if f.dtype_lsb is None and op.dtype is not DType.NONE:
            raise _Error(f"'{f.key}' is untyped: drop ':{op.dtype.text}'", col)
        if f.bcast_lsb is None and op.bcast is not Bcast.TILE:
            raise _Error(f"'{f.key}' takes no broadcast mode", col)
        return op
    if f.kind is Kind.DRAM:
        if not text.startswith("dram:"):
            raise _Error(f"'{f.key}': expected a DRAM address 'dram:ADDR', got '{text}'", col)
        value = _parse_int(text[5:], col, f"'{f.key}'")
    elif f.kind is Kind.BOOL:
        if text not in ("0", "1"):
            raise _Error(f"'{f.key}': expected 0 or 1, got '{text}'", col)
        return text == "1"
    elif f.kind is Kind.F32:
        try:
            value = float(text)
        except ValueError:
            raise _Error(f"'{f.key}': expected a number, got '{text}'", col) from None
        if math.isfinite(value) and abs(value) > float(np.finfo(np.float32).max):
            raise _Error(f"'{f.key}': {text} overflows f32", col)
        return float(np.float32(value))
    elif f.kind is Kind.QUEUE:
        try:
            return Queue[text.upper()]
        except KeyError:
            raise _Error(f"'{f.key}': expected load, compute or store, got '{text}'", col) from None
    else:
        value = _parse_int(text, col, f"'{f.key}'")
    if value >= 1 << f.width:
        raise _Error(f"'{f.key}' = {value} does not fit in {f.width} bits", col)
    return value


def _parse_instruction_tokens(tokens: list[tuple[str, int]]) -> Instruction:
    (mnem, mcol), rest = tokens[0], tokens[1:]
    if mnem not in _MNEMONICS:
        upper = mnem.upper()
        hint = f" (did you mean {upper}?)" if upper in _MNEMONICS else ""
        raise _Error(f"unknown instruction '{mnem}'{hint}", mcol)
    opcode, func = _MNEMONICS[mnem]
    cls = isa.INSTRUCTION_CLASSES[opcode]
    by_key = {f.key: f for f in FORMATS[opcode]}
    kwargs: dict = {}
    if func is not None:
        kwargs["func"] = func
    seen: set[str] = set()
    for text, col in rest:
        key, eq, value = text.partition("=")
        if not eq or not value:
            raise _Error(f"expected 'key=value', got '{text}'", col)
        if key in seen:
            raise _Error(f"field '{key}' given twice", col)
        seen.add(key)
        vcol = col + len(key) + 1
        if key in ("pop", "push"):
            for side in value.split(","):
                if side not in ("prev", "next"):
                    raise _Error(f"'{key}' takes prev, next or prev,next; got '{value}'", vcol)
                kwargs[f"{key}_{side}"] = True
            continue
        if key not in by_key:
            known = ", ".join(list(by_key) + ["pop", "push"])
            raise _Error(f"{mnem} has no field '{key}' (fields: {known})", col)
        f = by_key[key]
        kwargs[f.attr] = _parse_value(f, value, vcol)
    for fd in fields(cls):
        if fd.name not in kwargs and fd.default is MISSING and fd.default_factory is MISSING:
            key = next((f.key for f in FORMATS[opcode] if f.attr == fd.name), fd.name)
            raise _Error(f"{mnem} needs '{key}='", mcol)
    return cls(**kwargs)


def _tokens(line: str) -> list[tuple[str, int]]:
    code = line.split("#", 1)[0]
    return [(m.group(), m.start() + 1) for m in _TOKEN.finditer(code)]


def parse_instruction(line: str) -> Instruction:
    """One line of assembly -> an instruction (layer 0). LutcError with the column if invalid."""
    toks = _tokens(line)
    if not toks:
        raise LutcError("empty instruction", Location(col=1), source_line=line)
    try:
        return _parse_instruction_tokens(toks)
    except _Error as err:
        raise LutcError(err.message, Location(file="<string>", line=1, col=err.col), source_line=line) from None


def assemble(text: str, filename: str = "<string>", config: AccelConfig | None = None) -> Program:
    """Assemble a program. With a config, it is bound to it (architecture hash) and validated."""
    name, tokens = "program", 1
    tensors: list[DramTensor] = []
    data: dict[str, np.ndarray] = {}
    layers, layer = [""], 0
    instrs: list[Instruction] = []
    lines: list[int] = []
    source_lines = text.splitlines()
    for lineno, raw in enumerate(source_lines, start=1):
        toks = _tokens(raw)
        if not toks:
            continue
        loc = lambda col: Location(file=filename, line=lineno, col=col)  # noqa: E731
        try:
            head, hcol = toks[0]
            if head.startswith("."):
                if head == ".program":
                    _want_args(toks, 1, ".program NAME")
                    name = toks[1][0]
                elif head == ".tokens":
                    _want_args(toks, 1, ".tokens N")
                    tokens = _parse_int(toks[1][0], toks[1][1], ".tokens")
                    if tokens < 1:
                        raise _Error(".tokens must be >= 1", toks[1][1])
                elif head == ".layer":
                    _want_args(toks, 1, ".layer NAME")
                    lname, lcol = toks[1]
                    if lname == "-":
                        layer = 0
                    else:
                        if not _NAME.match(lname):
                            raise _Error(f"invalid layer name '{lname}'", lcol)
                        if lname not in layers:
                            layers.append(lname)
                        layer = layers.index(lname)
                        if layer >= 1 << 16:
                            raise _Error("more than 65535 layers", lcol)
                elif head == ".tensor":
                    tensor, init_data = _parse_tensor(toks)
                    if any(t.name == tensor.name for t in tensors):
                        raise _Error(f"tensor '{tensor.name}' declared twice", toks[1][1])
                    tensors.append(tensor)
                    if init_data is not None:
                        data[tensor.name] = init_data
                else:
                    raise _Error(f"unknown directive '{head}' (.program, .tokens, .tensor, .layer)", hcol)
                continue
            instr = _parse_instruction_tokens(toks)
            if layer:
                instr = _with_layer(instr, layer)
            instrs.append(instr)
            lines.append(lineno)
        except _Error as err:
            raise LutcError(err.message, loc(err.col), source_line=raw) from None
    program = Program(instrs, tensors, layers, data, name, tokens, config.arch_hash if config else NO_HASH, filename, lines)
    if config is not None:
        validate_program(program, config)
    else:
        check_structure(program)
    return program


def assemble_file(path, config: AccelConfig | None = None) -> Program:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise LutcError(f"no such assembly file: '{path}'") from None
    except (OSError, UnicodeDecodeError) as err:
        raise LutcError(f"cannot read assembly file '{path}': {err}") from None
    return assemble(text, str(path), config)


def _with_layer(instr: Instruction, layer: int) -> Instruction:
    return replace(instr, layer=layer)


def _want_args(toks, n: int, usage: str) -> None:
    if len(toks) != n + 1:
        col = toks[min(len(toks) - 1, n + 1)][1] if len(toks) > n + 1 else toks[0][1]
        raise _Error(f"usage: {usage}", col)


def _parse_tensor(toks) -> tuple[DramTensor, np.ndarray | None]:
    usage = ".tensor NAME KIND DTYPE SHAPE at=dram:ADDR [init=zeros|ones|random:SEED]"
    if len(toks) < 6:
        raise _Error(f"usage: {usage}", toks[0][1])
    (name, ncol), (kind, kcol), (dtype_text, dcol), (shape_text, scol) = toks[1:5]
    if not _NAME.match(name):
        raise _Error(f"invalid tensor name '{name}'", ncol)
    if kind not in TENSOR_KINDS:
        raise _Error(f"unknown tensor kind '{kind}' (kinds: {', '.join(TENSOR_KINDS)})", kcol)
    try:
        dtype = DType.parse(dtype_text)
    except ValueError:
        raise _Error(f"unknown dtype '{dtype_text}'", dcol) from None
    try:
        shape = tuple(int(d) for d in shape_text.split("x"))
    except ValueError:
        raise _Error(f"shape must look like 4x64, got '{shape_text}'", scol) from None
    if any(d < 1 for d in shape):
        raise _Error(f"shape dimensions must be >= 1, got '{shape_text}'", scol)
    addr, init = None, None
    for text, col in toks[5:]:
        key, _, value = text.partition("=")
        if key == "at" and value.startswith("dram:"):
            addr = _parse_int(value[5:], col + 3, "tensor address")
        elif key == "init" and value:
            init = value
            init_col = col + 5
        else:
            raise _Error(f"expected at=dram:ADDR or init=..., got '{text}'", col)
    if addr is None:
        raise _Error(f"tensor '{name}' needs at=dram:ADDR", toks[0][1])
    tensor = DramTensor(name, kind, dtype, shape, addr, init)
    init_data = None
    if init is not None:
        try:
            init_data = initial_data(tensor, init)
        except ValueError as err:
            raise _Error(str(err), init_col) from None
    return tensor, init_data
