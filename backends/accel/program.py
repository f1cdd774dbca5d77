"""Program container: instruction stream, DRAM image layout, metadata; file format; validation.

File layout (little-endian):

    offset  size  field
    0       8     magic b"LUTCPROG"
    8       2     ISA major version
    10      2     ISA minor version
    12      4     flags (0)
    16      32    config architecture hash (SHA-256, AccelConfig.arch_hash; zeros = any config)
    48      4     instruction count
    52      4     metadata bytes (UTF-8 JSON: name, tokens, layers, tensors, inputs, outputs)
    56      8     data bytes (initial DRAM contents of the tensors that have them)
    64      ...   metadata, zero-padded to a multiple of 32 bytes
    ...           instructions, 32 bytes each
    ...           data
    end-4   4     CRC-32 of everything before it

`load_program(path, config)` checks the file (size, magic, version, checksum, every
instruction word) and, given a config, everything a program must satisfy to run on it
(`validate_program`): addresses inside DRAM and the on-chip memories, dtypes and shapes
the units support, legal dependency tokens.
"""

from __future__ import annotations

import bisect
import json
import math
import struct
from isal.isal_zlib import crc32  # zlib.crc32, bit for bit, ~4x faster (PCLMULQDQ)
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from lutc.diagnostics import Location, LutcError
from lutc.backends.accel import isa
from lutc.backends.accel.config import AccelConfig
from lutc.backends.accel.isa import (
    INSTR_BYTES, ISA_VERSION, Bcast, DType, Finish, Instruction, Load, LutBuild, LutMma, Mma, Operand,
    Queue, Red, Space, Store, Sync, Vec, VecFunc,
)
from lutc.backends.accel.lut import table_block_layout, table_entries, weight_plane_bytes

MAGIC = b"LUTCPROG"
HEADER = struct.Struct("<8sHHI32sIIQ")
assert HEADER.size == 64
NO_HASH = bytes(32)

TENSOR_KINDS = ("input", "output", "weight", "activation", "spill")
# Report classes of DRAM traffic.
TENSOR_CLASS = {"input": "activations", "output": "activations", "activation": "activations",
                "weight": "weights", "spill": "spills"}
TRAFFIC_CLASSES = ("weights", "activations", "spills")

# Memory levels an access can touch.
MEM_DRAM, MEM_SP, MEM_ACC = 0, 1, 2
MEM_NAMES = ("dram", "sp", "acc")


@dataclass
class DramTensor:
    """A named region of the DRAM image."""

    name: str
    kind: str
    dtype: DType
    shape: tuple[int, ...]
    addr: int
    init: str | None = None  # how the assembler filled it ("zeros", "random:7"); None otherwise

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.size

    @property
    def end(self) -> int:
        return self.addr + self.nbytes

    @property
    def traffic_class(self) -> str:
        return TENSOR_CLASS[self.kind]

    def to_json(self) -> dict:
        out = {"name": self.name, "kind": self.kind, "dtype": self.dtype.text, "shape": list(self.shape), "addr": self.addr}
        if self.init is not None:
            out["init"] = self.init
        return out


@dataclass(frozen=True, slots=True)
class Access:
    """A byte range an instruction reads or writes: bounding [lo, hi), plus its 2-D pattern."""

    mem: int
    lo: int
    hi: int
    write: bool
    role: str
    rows: int = 1
    row_bytes: int = 0
    stride: int = 0

    @property
    def strided(self) -> bool:
        return self.rows > 1 and self.stride != self.row_bytes

    def describe(self) -> str:
        return f"{MEM_NAMES[self.mem]}[{self.lo:#x}..{self.hi:#x})"


@dataclass
class Program:
    """An accelerator program: what `lutc sim` runs and the compiler's codegen emits."""

    instructions: list[Instruction]
    tensors: list[DramTensor]
    layers: list[str] = field(default_factory=lambda: [""])
    data: dict[str, np.ndarray] = field(default_factory=dict)  # tensor name -> raw bytes (uint8)
    name: str = "program"
    tokens: int = 1
    config_hash: bytes = NO_HASH
    source: str = "<program>"
    lines: list[int] | None = field(default=None, repr=False)  # source line per instruction (assembled text)

    def __post_init__(self) -> None:
        # Loading state, not part of the program's value (so not dataclass fields): the
        # instruction columns, the words the instruction objects are decoded from (lazily)
        # when the program was read from a file, and the last validation's Analysis.
        self._columns = None
        self._words: bytes | None = None
        self._analysis = None

    def __getattr__(self, name: str):
        # Only called when normal lookup fails: `instructions` of a program decoded from a file
        # is built on first use (simulation reads the columns, not the objects).
        if name == "instructions" and self.__dict__.get("_words") is not None:
            instrs = isa.decode_stream(self._words)
            self.__dict__["instructions"] = instrs
            cols = self.__dict__.get("_columns")
            if cols is not None:
                cols.snapshot = list(instrs)
            return instrs
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    @property
    def decoded(self) -> bool:
        """Whether the instruction objects exist (always, except for a file not yet looked into)."""
        return "instructions" in self.__dict__

    @property
    def instruction_count(self) -> int:
        cols = self._columns
        if not self.decoded and cols is not None:
            return cols.n
        return len(self.instructions)

    def instruction(self, index: int) -> Instruction:
        """Instruction `index` (decoded alone when the program's objects were not built yet)."""
        if self.decoded:
            return self.instructions[index]
        one = self.__dict__.setdefault("_one", {})
        instr = one.get(index)
        if instr is None:
            instr = one[index] = isa.decode(self._words[index * INSTR_BYTES:(index + 1) * INSTR_BYTES], index)
        return instr

    def columns(self):
        """The instructions as columns (`columns.InstructionColumns`), built once; rebuilt if the
        instruction list was changed since (compared element by element, identity first)."""
        from lutc.backends.accel.columns import InstructionColumns

        cols = self._columns
        if not self.decoded:
            return cols
        if cols is not None and cols.snapshot == self.instructions:
            return cols
        cols = InstructionColumns.from_instructions(self.instructions)
        cols.snapshot = list(self.instructions)
        self._columns = cols
        self._analysis = None
        return cols

    # -- layout queries -----------------------------------------------------------------
    def tensor(self, name: str) -> DramTensor:
        for t in self.tensors:
            if t.name == name:
                return t
        raise LutcError(f"program has no DRAM tensor named '{name}'", Location(file=self.source))

    @property
    def inputs(self) -> list[DramTensor]:
        return [t for t in self.tensors if t.kind == "input"]

    @property
    def outputs(self) -> list[DramTensor]:
        return [t for t in self.tensors if t.kind == "output"]

    @property
    def dram_size(self) -> int:
        return max((t.end for t in self.tensors), default=0)

    def layer_name(self, index: int) -> str:
        return self.layers[index] if 0 <= index < len(self.layers) else f"#{index}"

    # -- data ---------------------------------------------------------------------------
    def set_data(self, name: str, array: np.ndarray) -> None:
        """Set a tensor's initial DRAM contents (shape and dtype must match, or be raw bytes)."""
        tensor = self.tensor(name)
        self.data[name] = tensor_bytes(tensor, array, self.source)

    def tensor_array(self, name: str) -> np.ndarray | None:
        """A tensor's initial contents, typed and shaped; None if it has none."""
        tensor = self.tensor(name)
        raw = self.data.get(name)
        return None if raw is None else raw.view(tensor.dtype.np).reshape(tensor.shape)

    # -- serialization ------------------------------------------------------------------
    def metadata(self) -> dict:
        return {
            "name": self.name,
            "tokens": self.tokens,
            "layers": self.layers,
            "tensors": [t.to_json() for t in self.tensors],
            "inputs": [t.name for t in self.inputs],
            "outputs": [t.name for t in self.outputs],
            "data": [name for name in (t.name for t in self.tensors) if name in self.data],
        }

    def to_bytes(self) -> bytes:
        meta = json.dumps(self.metadata(), separators=(",", ":")).encode()
        meta += b"\0" * (-len(meta) % INSTR_BYTES)
        code = self._words if not self.decoded else isa.encode_stream(self.instructions)
        blob = b"".join(self.data[t.name].tobytes() for t in self.tensors if t.name in self.data)
        header = HEADER.pack(MAGIC, ISA_VERSION[0], ISA_VERSION[1], 0, self.config_hash,
                             len(self.instructions), len(meta), len(blob))
        body = header + meta + code + blob
        return body + struct.pack("<I", crc32(body))

    def save(self, path: str | Path) -> None:
        try:
            Path(path).write_bytes(self.to_bytes())
        except OSError as err:
            raise LutcError(f"cannot write program '{path}': {err.strerror}") from None

    @classmethod
    def from_bytes(cls, blob: bytes, source: str = "<program>") -> Program:
        return _read_container(blob, source)

    def validate(self, config: AccelConfig) -> None:
        validate_program(self, config)


def tensor_bytes(tensor: DramTensor, array: np.ndarray, source: str = "<program>", *, copy: bool = True) -> np.ndarray:
    """The raw bytes of `array` as `tensor`'s contents (a view of it where it can be, unless `copy`);
    LutcError if it does not fit."""
    loc = Location(file=source)
    array = np.asarray(array)
    if array.dtype == np.uint8 and array.ndim == 1 and array.size == tensor.nbytes and tensor.dtype is not DType.U8:
        raw = np.ascontiguousarray(array)
        return raw.copy() if copy else raw
    if tuple(array.shape) != tensor.shape:
        raise LutcError(f"tensor '{tensor.name}' has shape {list(tensor.shape)}, got an array of shape {list(array.shape)}", loc)
    target = tensor.dtype.np
    if array.dtype != target:
        if not np.can_cast(array.dtype, target, casting="same_kind"):
            raise LutcError(f"tensor '{tensor.name}' is {tensor.dtype.text}, got an array of {array.dtype}", loc)
        array = array.astype(target)
    raw = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    return raw.copy() if copy else raw


def initial_data(tensor: DramTensor, spec: str) -> np.ndarray:
    """Contents from an init spec: `zeros`, `ones`, `random:SEED` (normal floats, uniform ints)."""
    shape, dtype = tensor.shape, tensor.dtype.np
    if spec == "zeros":
        arr = np.zeros(shape, dtype)
    elif spec == "ones":
        arr = np.ones(shape, dtype)
    elif spec.startswith("random:") and spec[7:].isdigit():
        rng = np.random.default_rng(int(spec[7:]))
        if tensor.dtype.is_float:
            arr = rng.standard_normal(shape).astype(dtype)
        else:
            info = np.iinfo(dtype)
            arr = rng.integers(info.min, int(info.max) + 1, size=shape, dtype=dtype)
    else:
        raise ValueError(f"unknown init '{spec}' (zeros, ones, random:SEED)")
    return np.frombuffer(arr.tobytes(), dtype=np.uint8).copy()


# ---------------------------------------------------------------------------------------
# Reading a file
# ---------------------------------------------------------------------------------------

def load_program(path: str | Path, config: AccelConfig | None = None) -> Program:
    """Read a program file; with a config, also validate it against that accelerator."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise LutcError(f"no such program file: '{path}'") from None
    except OSError as err:
        raise LutcError(f"cannot read program '{path}': {err.strerror}") from None
    program = _read_container(blob, str(path))
    if config is not None:
        validate_program(program, config)
    return program


def _read_container(blob: bytes, source: str) -> Program:
    loc = Location(file=source)
    blob = bytes(blob)  # immutable (a no-op for bytes): the tensors' data are read-only views of it

    def fail(msg: str) -> LutcError:
        return LutcError(f"invalid program file: {msg}", loc)

    if blob[: len(MAGIC)] != MAGIC:
        if MAGIC.startswith(blob):
            raise fail(f"truncated: {len(blob)} bytes, shorter than the {HEADER.size}-byte header")
        raise fail(f"bad magic {blob[:8]!r} (expected {MAGIC!r}): not a lutc accelerator program")
    if len(blob) < HEADER.size + 4:
        raise fail(f"truncated: {len(blob)} bytes, shorter than the {HEADER.size}-byte header")
    magic, major, minor, flags, chash, n_instr, meta_len, data_len = HEADER.unpack_from(blob)
    if major != ISA_VERSION[0] or minor > ISA_VERSION[1]:
        raise fail(f"ISA version {major}.{minor} is not supported (this simulator implements {ISA_VERSION[0]}.{ISA_VERSION[1]})")
    if flags:
        raise fail(f"unknown header flags {flags:#x}")
    if meta_len % INSTR_BYTES:
        raise fail(f"metadata size {meta_len} is not a multiple of {INSTR_BYTES}")
    expected = HEADER.size + meta_len + n_instr * INSTR_BYTES + data_len + 4
    if len(blob) < expected:
        raise fail(f"truncated: {len(blob)} bytes, the header announces {expected}")
    if len(blob) > expected:
        raise fail(f"{len(blob) - expected} unexpected bytes after the end of the program")
    (crc,) = struct.unpack_from("<I", blob, expected - 4)
    if crc32(memoryview(blob)[: expected - 4]) != crc:
        raise fail("checksum mismatch: the file is corrupted")
    pos = HEADER.size
    try:
        meta = json.loads(blob[pos: pos + meta_len].rstrip(b"\0").decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise fail(f"metadata is not valid JSON: {err}") from None
    pos += meta_len
    from lutc.backends.accel.columns import InstructionColumns

    words = bytes(blob[pos: pos + n_instr * INSTR_BYTES])
    try:
        columns = InstructionColumns.from_words(words)  # the instruction objects are decoded lazily
    except LutcError as err:
        raise fail(err.message) from None
    columns.snapshot = None
    pos += n_instr * INSTR_BYTES
    try:
        tensors = [
            DramTensor(t["name"], t["kind"], DType.parse(t["dtype"]), tuple(int(d) for d in t["shape"]), int(t["addr"]), t.get("init"))
            for t in meta["tensors"]
        ]
        layers = [str(x) for x in meta["layers"]]
        with_data = list(meta.get("data", []))
        program = Program([], tensors, layers, {}, str(meta.get("name", "program")), int(meta.get("tokens", 1)), chash, source)
        program._columns, program._words = columns, words
        del program.instructions  # built from _words on first use
    except (KeyError, TypeError, ValueError) as err:
        raise fail(f"malformed metadata: {err}") from None
    data_end = pos + data_len
    for name in with_data:
        tensor = program.tensor(name)
        if pos + tensor.nbytes > data_end:
            raise fail(f"data section too short for tensor '{name}'")
        program.data[name] = np.frombuffer(blob, dtype=np.uint8, count=tensor.nbytes, offset=pos)
        pos += tensor.nbytes
    if pos != data_end:
        raise fail(f"data section has {data_end - pos} bytes that belong to no tensor")
    check_structure(program)
    return program


# ---------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------

def check_structure(program: Program) -> None:
    """Checks that need no config: FINISH, layers, DRAM layout, data."""
    from lutc.backends.accel.columns import CLASS_CODE

    loc = Location(file=program.source)
    cols = program.columns()  # the scans below are column-wise: programs are long
    finish = CLASS_CODE[Finish]
    if not cols.n or cols.kind[-1] != finish:
        raise LutcError("program does not end with FINISH", loc)
    early = np.flatnonzero(cols.kind[:-1] == finish)
    if len(early):
        i = int(early[0])
        raise LutcError(f"instruction #{i}: FINISH before the end of the program (only the last instruction may be FINISH)", loc)
    if cols.deps[-1].any():
        raise LutcError(f"instruction #{cols.n - 1}: FINISH takes no dependency tokens", loc)
    if not program.layers or program.layers[0] != "":
        raise LutcError("layer table must start with the untagged layer ''", loc)
    beyond = cols.layer >= len(program.layers)
    if beyond.any():
        i = int(np.argmax(beyond))
        raise LutcError(f"instruction #{i}: layer tag {int(cols.layer[i])} is not in the layer table ({len(program.layers)} layers)", loc)
    if program.tokens < 1:
        raise LutcError(f"tokens must be >= 1, got {program.tokens}", loc)
    seen: set[str] = set()
    for t in program.tensors:
        if t.name in seen:
            raise LutcError(f"DRAM tensor '{t.name}' is declared twice", loc)
        seen.add(t.name)
        if t.kind not in TENSOR_KINDS:
            raise LutcError(f"DRAM tensor '{t.name}': unknown kind '{t.kind}' (kinds: {', '.join(TENSOR_KINDS)})", loc)
        if t.dtype is DType.NONE or not t.shape or any(d < 1 for d in t.shape):
            raise LutcError(f"DRAM tensor '{t.name}': needs a dtype and a shape of positive sizes", loc)
        if t.addr < 0 or t.end > 1 << 48:
            raise LutcError(f"DRAM tensor '{t.name}' at {t.addr:#x} does not fit the 48-bit DRAM address space", loc)
        if t.kind == "weight" and t.name not in program.data:
            raise LutcError(f"weight tensor '{t.name}' has no data", loc)
        if t.name in program.data and program.data[t.name].size != t.nbytes:
            raise LutcError(f"DRAM tensor '{t.name}': data has {program.data[t.name].size} bytes, the tensor {t.nbytes}", loc)
    ordered = sorted(program.tensors, key=lambda t: t.addr)
    for a, b in zip(ordered, ordered[1:]):
        if b.addr < a.end:
            raise LutcError(f"DRAM tensors '{a.name}' [{a.addr:#x}..{a.end:#x}) and '{b.name}' [{b.addr:#x}..{b.end:#x}) overlap", loc)
    for name in program.data:
        program.tensor(name)


LEGAL_DEPS = {
    Queue.LOAD: ("pop_next", "push_next"),
    Queue.COMPUTE: ("pop_prev", "pop_next", "push_prev", "push_next"),
    Queue.STORE: ("pop_prev", "push_prev"),
}
_NUMERIC = (DType.I8, DType.I16, DType.I32, DType.F16, DType.BF16, DType.F32)
_ON_CHIP = (Space.SP, Space.ACC)


class InstructionError(Exception):
    """A check on one instruction failed; the caller adds which instruction it is."""


def validate_program(program: Program, config: AccelConfig) -> None:
    """Everything that must hold for `program` to run on `config`; LutcError otherwise.

    The checks are `check_structure`, `check_instruction` and the bounds of
    `instruction_accesses`, applied column-wise by `analysis.analyze` (fast on long programs).
    """
    from lutc.backends.accel.analysis import analyze

    analyze(program, config)


def instruction_location(program: Program, index: int) -> Location:
    """Where instruction `index` comes from: the assembly line when known, else the program file."""
    if program.lines is not None and index < len(program.lines):
        return Location(file=program.source, line=program.lines[index])
    return Location(file=program.source)


def describe_instruction(program: Program, index: int) -> str:
    instr = program.instruction(index)
    layer = program.layer_name(instr.layer)
    where = f", layer '{layer}'" if layer else ""
    return f"instruction #{index} ({instr.queue.text} queue, {instr.mnemonic}{where})"


class TensorIndex:
    """Finds the DRAM tensor that holds a byte range (tensors do not overlap)."""

    def __init__(self, tensors: Iterable[DramTensor]):
        self.ordered = sorted(tensors, key=lambda t: t.addr)
        self.starts = [t.addr for t in self.ordered]
        self.ends = [t.end for t in self.ordered]

    def find(self, lo: int, hi: int) -> DramTensor | None:
        k = bisect.bisect_right(self.starts, lo) - 1
        if k >= 0 and hi <= self.ends[k]:
            return self.ordered[k]
        return None


class CheckContext:
    """Config-derived constants for the checks, computed once per validation."""

    def __init__(self, config: AccelConfig, program: Program | None = None):
        self.config = config
        self.table = DType.parse(config.lut.table_dtype)
        self.lut_acc = DType.parse(config.lut.accum_dtype)
        self.mma = DType.parse(config.mma.dtype)
        self.mma_acc = DType.parse(config.mma.accum_dtype)
        self.tensors = TensorIndex(program.tensors if program else ())

    def check_bounds(self, access: Access) -> None:
        config = self.config
        if access.mem == MEM_DRAM:
            if access.hi > config.dram.size_bytes:
                raise InstructionError(f"{access.role} {access.describe()}: address beyond DRAM ({config.dram.size_bytes} bytes)")
            if self.tensors.find(access.lo, access.hi) is None:
                raise InstructionError(f"{access.role} {access.describe()} is outside every declared DRAM tensor")
            return
        if access.mem == MEM_SP:
            cap, what = config.scratchpad.size_bytes, "scratchpad"
        else:
            cap, what = config.accumulator.size_bytes, "accumulator buffer"
        if access.hi <= cap:
            return
        if access.lo >= cap:
            raise InstructionError(f"{access.role} {access.describe()}: out-of-bounds address, the {what} has {cap} bytes")
        raise InstructionError(f"{what} overflow: {access.role} {access.describe()} ends {access.hi - cap} bytes past the end of the {cap}-byte {what}")


def _space(op: Operand, role: str, allowed: tuple[Space, ...]) -> None:
    if op.space not in allowed:
        raise InstructionError(f"operand '{role}' must be in {' or '.join(s.text for s in allowed)}, got {op}")


def _typed(op: Operand, role: str, allowed: tuple[DType, ...] = _NUMERIC + (DType.U8,)) -> None:
    if op.dtype not in allowed:
        raise InstructionError(f"operand '{role}' must have dtype {'/'.join(d.text for d in allowed)}, got {op}")
    if op.addr % op.dtype.size:
        raise InstructionError(f"operand '{role}' at {op.addr:#x} is not aligned to its {op.dtype.size}-byte {op.dtype.text} elements")


def _positive(*dims: tuple[str, int]) -> None:
    for name, v in dims:
        if v < 1:
            raise InstructionError(f"{name} must be >= 1, got {v}")


def _sym_matches(sym: bool, config: AccelConfig) -> None:
    if sym != config.lut.symmetric:
        raise InstructionError(f"sym={int(sym)} but the config's tables are {'symmetric' if config.lut.symmetric else 'full'}")


def check_instruction(instr: Instruction, config: AccelConfig, ctx: CheckContext | None = None) -> None:
    """Operand spaces, dtypes, shapes and dependency tokens, against the config (raises InstructionError)."""
    ctx = ctx or CheckContext(config)
    if instr.pop_prev or instr.pop_next or instr.push_prev or instr.push_next:
        legal = LEGAL_DEPS[instr.queue]
        for dep in ("pop_prev", "pop_next", "push_prev", "push_next"):
            if getattr(instr, dep) and dep not in legal:
                side = "previous" if "prev" in dep else "next"
                raise InstructionError(f"{dep} is not possible in the {instr.queue.text} queue (it has no {side} queue)")
    g = config.lut.group
    cls = type(instr)
    if cls is Load or cls is Store:
        _space(instr.sp, "sp", _ON_CHIP)
        if instr.sp.dtype is not DType.NONE or instr.sp.bcast is not Bcast.TILE:
            raise InstructionError("DMA operands are untyped")
        _positive(("rows", instr.rows), ("bytes", instr.row_bytes))
        for name, stride in (("dram stride", instr.dram_stride), ("on-chip stride", instr.sp_stride)):
            if stride and stride < instr.row_bytes:
                raise InstructionError(f"{name} {stride} is smaller than a row ({instr.row_bytes} bytes)")
    elif cls is LutBuild:
        _space(instr.dst, "dst", (Space.SP,))
        _space(instr.src, "src", (Space.SP,))
        if instr.dst.dtype is not ctx.table:
            raise InstructionError(f"table dtype must be the config's {ctx.table.text}, got {instr.dst.dtype.text}")
        if instr.dst.addr % 4:
            raise InstructionError(f"table block at {instr.dst.addr:#x} must be 4-byte aligned")
        _typed(instr.src, "src", (DType.F32, DType.F16, DType.BF16, DType.I8, DType.I16))
        _positive(("rows", instr.rows), ("k", instr.k), ("qgroup", instr.qgroup))
        if instr.k % g:
            raise InstructionError(f"k = {instr.k} is not a multiple of g = {g}")
        if instr.qgroup % g or instr.k % instr.qgroup:
            raise InstructionError(f"qgroup = {instr.qgroup} must be a multiple of g = {g} that divides k = {instr.k}")
        _sym_matches(instr.sym, config)
    elif cls is LutMma:
        _space(instr.dst, "dst", (Space.ACC,))
        _space(instr.tables, "tbl", (Space.SP,))
        _space(instr.weights, "w", (Space.SP,))
        if instr.dst.dtype is not ctx.lut_acc:
            raise InstructionError(f"accumulator dtype must be the config's {ctx.lut_acc.text}, got {instr.dst.dtype.text}")
        _typed(instr.dst, "dst", (ctx.lut_acc,))
        if instr.tables.dtype is not ctx.table:
            raise InstructionError(f"table dtype must be the config's {ctx.table.text}, got {instr.tables.dtype.text}")
        _typed(instr.tables, "tbl", (ctx.table,))
        if instr.weights.dtype is not DType.NONE:
            raise InstructionError("weights are untyped packed bytes")
        _positive(("m", instr.m), ("n", instr.n), ("k", instr.k))
        if instr.bits not in config.lut.weight_bits:
            raise InstructionError(f"{instr.bits}-bit weights are not supported (config: {', '.join(map(str, config.lut.weight_bits))})")
        if instr.k % g or instr.k % 8:
            raise InstructionError(f"k = {instr.k} must be a multiple of g = {g} and of 8")
        _sym_matches(instr.sym, config)
    elif cls is Mma:
        _space(instr.dst, "dst", (Space.ACC,))
        _space(instr.a, "a", (Space.SP,))
        _space(instr.b, "b", (Space.SP,))
        _typed(instr.dst, "dst", (ctx.mma_acc,))
        _typed(instr.a, "a", (ctx.mma,))
        _typed(instr.b, "b", (ctx.mma,))
        _positive(("m", instr.m), ("n", instr.n), ("k", instr.k))
    elif cls is Vec:
        _check_vec(instr, config)
    elif cls is Red:
        _space(instr.dst, "dst", _ON_CHIP)
        _space(instr.src, "src", _ON_CHIP)
        _typed(instr.dst, "dst", (DType.F32, DType.I32, DType.F16))
        _typed(instr.src, "src")
        _positive(("rows", instr.rows), ("cols", instr.cols))
    elif cls is not Sync and cls is not Finish:  # pragma: no cover - every class is listed
        raise InstructionError(f"unknown instruction {instr!r}")


def _check_vec(instr: Vec, config: AccelConfig) -> None:
    func = instr.func
    special = isa.VEC_SPECIAL.get(func)
    if special is not None and not config.supports_function(special):
        raise InstructionError(f"the vector unit of '{config.name}' has no {special} "
                          f"(special_functions: {', '.join(config.vector.special_functions) or 'none'})")
    arity = isa.VEC_ARITY[func]
    _space(instr.dst, "dst", _ON_CHIP)
    _typed(instr.dst, "dst", _NUMERIC)
    if instr.dst.bcast is not Bcast.TILE:
        raise InstructionError("dst cannot be broadcast")
    _positive(("rows", instr.rows), ("cols", instr.cols))
    for position, (role, op) in enumerate((("a", instr.a), ("b", instr.b), ("c", instr.c))):
        if position >= arity:
            if not op.is_none:
                raise InstructionError(f"VEC.{func.name} takes no operand '{role}'")
            continue
        _space(op, role, _ON_CHIP)
        _typed(op, role, _NUMERIC)
    if func is VecFunc.DEQ:
        if instr.a.bcast is not Bcast.TILE:
            raise InstructionError("DEQ's accumulator operand 'a' must be a tile")
        for role, op in (("b", instr.b), ("c", instr.c)):
            if op.dtype is not DType.F32 or op.bcast is not Bcast.TILE:
                raise InstructionError(f"DEQ's '{role}' is an f32 parameter record (no broadcast mode), got {op}")
        if not instr.dst.dtype.is_float:
            raise InstructionError("DEQ writes a float tile")
    if func not in (VecFunc.MULI, VecFunc.ADDI, VecFunc.DEQ) and instr.imm != 0.0:
        raise InstructionError(f"VEC.{func.name} takes no immediate (imm={instr.imm})")


# ---------------------------------------------------------------------------------------
# Byte ranges
# ---------------------------------------------------------------------------------------

_MEM_OF = {Space.SP: MEM_SP, Space.ACC: MEM_ACC}


def _span(op: Operand, nbytes: int, role: str, write: bool) -> Access:
    return Access(_MEM_OF.get(op.space, MEM_SP), op.addr, op.addr + nbytes, write, role)


def _dma_pattern(mem: int, base: int, rows: int, row_bytes: int, stride: int, write: bool, role: str) -> Access:
    pitch = stride or row_bytes
    return Access(mem, base, base + (rows - 1) * pitch + row_bytes, write, role, rows, row_bytes, pitch)


def vec_operand_bytes(op: Operand, rows: int, cols: int) -> int:
    count = {Bcast.TILE: rows * cols, Bcast.COL: cols, Bcast.ROW: rows, Bcast.SCALAR: 1}[op.bcast]
    return count * op.dtype.size


def instruction_accesses(instr: Instruction, config: AccelConfig) -> list[Access]:
    """Every byte range `instr` reads or writes (reads first), for bounds, races and reports."""
    g = config.lut.group
    if isinstance(instr, Load):
        return [_dma_pattern(MEM_DRAM, instr.dram, instr.rows, instr.row_bytes, instr.dram_stride, False, "src"),
                _dma_pattern(_MEM_OF.get(instr.sp.space, MEM_SP), instr.sp.addr, instr.rows, instr.row_bytes, instr.sp_stride, True, "dst")]
    if isinstance(instr, Store):
        return [_dma_pattern(_MEM_OF.get(instr.sp.space, MEM_SP), instr.sp.addr, instr.rows, instr.row_bytes, instr.sp_stride, False, "src"),
                _dma_pattern(MEM_DRAM, instr.dram, instr.rows, instr.row_bytes, instr.dram_stride, True, "dst")]
    if isinstance(instr, LutBuild):
        _, _, total = table_block_layout(instr.rows, instr.k, g, instr.sym, instr.dst.dtype.size, instr.qgroup)
        return [_span(instr.src, instr.rows * instr.k * instr.src.dtype.size, "src", False),
                _span(instr.dst, total, "dst", True)]
    if isinstance(instr, LutMma):
        tbytes = (instr.k // g) * instr.m * table_entries(g, instr.sym) * instr.tables.dtype.size
        out = [_span(instr.tables, tbytes, "tbl", False),
               _span(instr.weights, weight_plane_bytes(instr.n, instr.k, instr.bits), "w", False)]
        dst_bytes = instr.m * instr.n * instr.dst.dtype.size
        if instr.accum:
            out.append(_span(instr.dst, dst_bytes, "dst", False))
        out.append(_span(instr.dst, dst_bytes, "dst", True))
        return out
    if isinstance(instr, Mma):
        esz = instr.a.dtype.size
        out = [_span(instr.a, instr.m * instr.k * esz, "a", False), _span(instr.b, instr.k * instr.n * instr.b.dtype.size, "b", False)]
        dst_bytes = instr.m * instr.n * instr.dst.dtype.size
        if instr.accum:
            out.append(_span(instr.dst, dst_bytes, "dst", False))
        out.append(_span(instr.dst, dst_bytes, "dst", True))
        return out
    if isinstance(instr, Vec):
        out = []
        if instr.func is VecFunc.DEQ:
            out.append(_span(instr.a, instr.rows * instr.cols * instr.a.dtype.size, "a", False))
            out.append(_span(instr.b, 2 * instr.cols * 4, "b", False))
            out.append(_span(instr.c, 2 * instr.rows * 4, "c", False))
        else:
            for role in ("a", "b", "c"):
                op = getattr(instr, role)
                if not op.is_none:
                    out.append(_span(op, vec_operand_bytes(op, instr.rows, instr.cols), role, False))
        dst_bytes = instr.rows * instr.cols * instr.dst.dtype.size
        if instr.accum:
            out.append(_span(instr.dst, dst_bytes, "dst", False))
        out.append(_span(instr.dst, dst_bytes, "dst", True))
        return out
    if isinstance(instr, Red):
        out = [_span(instr.src, instr.rows * instr.cols * instr.src.dtype.size, "src", False)]
        if instr.accum:
            out.append(_span(instr.dst, instr.rows * instr.dst.dtype.size, "dst", False))
        out.append(_span(instr.dst, instr.rows * instr.dst.dtype.size, "dst", True))
        return out
    return []


# ---------------------------------------------------------------------------------------
# Building programs from Python (the compiler's codegen uses this)
# ---------------------------------------------------------------------------------------

class ProgramBuilder:
    """Collects DRAM tensors and instructions; `build()` checks and returns the Program.

        b = ProgramBuilder("gemv", config=cfg)
        x = b.tensor("x", "input", "f32", (1, 64))
        b.set_layer("fc1")
        b.emit(Load(sp=sp(0), dram=x.addr, rows=1, row_bytes=x.nbytes, push_next=True))
        ...
        program = b.build()
    """

    ALIGN = 64  # DRAM placement alignment for tensors placed automatically

    def __init__(self, name: str = "program", *, config: AccelConfig | None = None, tokens: int = 1):
        self.name = name
        self.config = config
        self.tokens = tokens
        self.instructions: list[Instruction] = []
        self.tensors: list[DramTensor] = []
        self.data: dict[str, np.ndarray] = {}
        self.layers: list[str] = [""]
        self._layer = 0
        self._next_addr = 0

    def tensor(self, name: str, kind: str, dtype: DType | str, shape: Iterable[int], *, addr: int | None = None,
               data: np.ndarray | None = None, init: str | None = None) -> DramTensor:
        """Declare a DRAM tensor; placed after the previous one (64-byte aligned) unless `addr` is given."""
        dtype = dtype if isinstance(dtype, DType) else DType.parse(dtype)
        if addr is None:
            addr = -(-self._next_addr // self.ALIGN) * self.ALIGN
        t = DramTensor(name, kind, dtype, tuple(int(d) for d in shape), addr, init)
        self.tensors.append(t)
        self._next_addr = max(self._next_addr, t.end)
        if data is not None:
            self.data[name] = tensor_bytes(t, data)
        elif init is not None:
            self.data[name] = initial_data(t, init)
        return t

    def set_layer(self, name: str) -> int:
        """Tag the following instructions with layer `name` ('' = untagged); returns its index."""
        if name not in self.layers:
            self.layers.append(name)
        self._layer = self.layers.index(name)
        return self._layer

    def emit(self, instr: Instruction) -> Instruction:
        if instr.layer == 0 and self._layer:
            instr = replace(instr, layer=self._layer)
        self.instructions.append(instr)
        return instr

    def finish(self) -> Instruction:
        return self.emit(Finish())

    def build(self) -> Program:
        program = Program(list(self.instructions), list(self.tensors), list(self.layers), dict(self.data), self.name,
                          self.tokens, self.config.arch_hash if self.config else NO_HASH)
        if self.config is not None:
            validate_program(program, self.config)
        else:
            check_structure(program)
        return program


def load_inputs(program: Program, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Raw bytes for every input tensor, from `inputs` (views of the arrays given, where they can
    be: the simulator copies them into its DRAM) or the program's own data; LutcError if missing."""
    loc = Location(file=program.source)
    names = {t.name for t in program.tensors}
    for key in inputs:
        if key not in names:
            raise LutcError(f"input '{key}' is not a tensor of the program (inputs: {', '.join(t.name for t in program.inputs) or 'none'})", loc)
    out = {}
    for t in program.tensors:
        if t.name in inputs:
            if t.kind not in ("input", "weight"):
                raise LutcError(f"tensor '{t.name}' is an {t.kind} tensor; only inputs and weights can be given", loc)
            out[t.name] = tensor_bytes(t, inputs[t.name], program.source, copy=False)  # copied into DRAM next
        elif t.name in program.data:
            out[t.name] = program.data[t.name]
        elif t.kind == "input":
            raise LutcError(f"missing input '{t.name}' ({t.dtype.text}, shape {list(t.shape)})", loc)
    return out
