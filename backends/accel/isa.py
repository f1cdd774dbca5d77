"""The accelerator's instruction set: instruction classes, field layouts, binary encoding.

Every instruction is 256 bits (32 bytes, four little-endian 64-bit words). Bits 0..39 are a
common header (opcode, function, dependency tokens, layer tag); the rest is laid out per
opcode by the `FORMATS` tables below, which also drive the assembler, the disassembler and
docs/isa.md. Unused bits must be zero.

Why 256 bits and not VTA's 128: the fused dequantization epilogue (`VEC.DEQ`) reads four
on-chip operands and an f32 immediate, and 2-D DMAs carry two strides; 32-bit on-chip and
48-bit DRAM addresses keep large scratchpads and multi-GiB models addressable without
descriptor indirection.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, replace
from typing import ClassVar

import ml_dtypes
import numpy as np

from lutc.diagnostics import LutcError

ISA_VERSION = (1, 0)
INSTR_BYTES = 32
INSTR_BITS = INSTR_BYTES * 8


# ---------------------------------------------------------------------------------------
# Operand vocabulary
# ---------------------------------------------------------------------------------------

class DType(enum.IntEnum):
    """Element types. The code is the 4-bit value in the encoding."""

    NONE = 0
    U8 = 1
    I8 = 2
    I16 = 3
    I32 = 4
    F16 = 5
    BF16 = 6
    F32 = 7

    @property
    def text(self) -> str:
        return _DTYPE_TEXT[self]

    @property
    def np(self) -> np.dtype:
        return _DTYPE_NP[self]

    @property
    def size(self) -> int:
        return 0 if self is DType.NONE else _DTYPE_NP[self].itemsize

    @property
    def is_int(self) -> bool:
        return self in (DType.U8, DType.I8, DType.I16, DType.I32)

    @property
    def is_float(self) -> bool:
        return self in (DType.F16, DType.BF16, DType.F32)

    @classmethod
    def parse(cls, name: str) -> DType:
        """Accepts assembly names (`i8`, `f16`) and config names (`int8`, `fp16`)."""
        try:
            return _DTYPE_BY_NAME[name]
        except KeyError:
            raise ValueError(f"unknown dtype '{name}'") from None


_DTYPE_TEXT = {
    DType.NONE: "-", DType.U8: "u8", DType.I8: "i8", DType.I16: "i16", DType.I32: "i32",
    DType.F16: "f16", DType.BF16: "bf16", DType.F32: "f32",
}
_DTYPE_NP = {
    DType.NONE: np.dtype(np.uint8), DType.U8: np.dtype(np.uint8), DType.I8: np.dtype(np.int8),
    DType.I16: np.dtype(np.int16), DType.I32: np.dtype(np.int32), DType.F16: np.dtype(np.float16),
    DType.BF16: np.dtype(ml_dtypes.bfloat16), DType.F32: np.dtype(np.float32),
}
_DTYPE_BY_NAME = {t: d for d, t in _DTYPE_TEXT.items() if d is not DType.NONE}
_DTYPE_BY_NAME.update({
    "uint8": DType.U8, "int8": DType.I8, "int16": DType.I16, "int32": DType.I32,
    "fp16": DType.F16, "fp32": DType.F32, "float16": DType.F16, "float32": DType.F32,
})


class Space(enum.IntEnum):
    """On-chip memories an operand can name (2 bits)."""

    NONE = 0
    SP = 1  # scratchpad
    ACC = 2  # accumulator buffer

    @property
    def text(self) -> str:
        return {Space.NONE: "-", Space.SP: "sp", Space.ACC: "acc"}[self]


class Bcast(enum.IntEnum):
    """How a VEC source operand is read for a rows x cols result (2 bits)."""

    TILE = 0  # a rows x cols tile
    COL = 1  # one value per column (a vector of `cols`), repeated down the rows
    ROW = 2  # one value per row (a vector of `rows`), repeated along the columns
    SCALAR = 3  # one value

    @property
    def text(self) -> str:
        return self.name.lower()


class Queue(enum.IntEnum):
    LOAD = 0
    COMPUTE = 1
    STORE = 2

    @property
    def text(self) -> str:
        return self.name.lower()


class Opcode(enum.IntEnum):
    LOAD = 1
    STORE = 2
    LUT_BUILD = 3
    LUT_MMA = 4
    MMA = 5
    VEC = 6
    RED = 7
    SYNC = 8
    FINISH = 9


class VecFunc(enum.IntEnum):
    """VEC functions. Arity: how many of a, b, c they read; imm: whether they use the immediate."""

    MOV = 0  # a (dtype conversion through dst's dtype)
    ADD = 1  # a + b
    SUB = 2  # a - b
    MUL = 3  # a * b
    MAX = 4  # max(a, b)
    MIN = 5  # min(a, b)
    FMA = 6  # a * b + c
    DEQ = 7  # b[0,c] * (imm * c[0,r] * a[r,c] - b[1,c] * c[1,r])  (scale/zero epilogue)
    MULI = 8  # a * imm
    ADDI = 9  # a + imm
    RELU = 10  # max(a, 0)
    EXP = 11  # exp(a)
    RSQRT = 12  # 1 / sqrt(a)
    RECIP = 13  # 1 / a
    SIGMOID = 14  # 1 / (1 + exp(-a))
    SILU = 15  # a * sigmoid(a)
    TANH = 16  # tanh(a)
    GELU = 17  # gelu(a), tanh approximation


VEC_ARITY = {
    VecFunc.MOV: 1, VecFunc.ADD: 2, VecFunc.SUB: 2, VecFunc.MUL: 2, VecFunc.MAX: 2, VecFunc.MIN: 2,
    VecFunc.FMA: 3, VecFunc.DEQ: 3, VecFunc.MULI: 1, VecFunc.ADDI: 1, VecFunc.RELU: 1,
    VecFunc.EXP: 1, VecFunc.RSQRT: 1, VecFunc.RECIP: 1, VecFunc.SIGMOID: 1, VecFunc.SILU: 1,
    VecFunc.TANH: 1, VecFunc.GELU: 1,
}
# The config's name for the special function a VEC function needs, if any.
VEC_SPECIAL = {
    VecFunc.EXP: "exp", VecFunc.RSQRT: "rsqrt", VecFunc.RECIP: "recip", VecFunc.SIGMOID: "sigmoid",
    VecFunc.SILU: "silu", VecFunc.TANH: "tanh", VecFunc.GELU: "gelu",
}


class RedFunc(enum.IntEnum):
    SUM = 0  # dst[r] = sum_c src[r, c]
    MAX = 1  # dst[r] = max_c src[r, c]
    SUMSQ = 2  # dst[r] = sum_c src[r, c]^2   (RMS / layer norm)


@dataclass(frozen=True, slots=True)
class Operand:
    """An on-chip operand: memory, byte address, element type and (VEC sources) broadcast."""

    space: Space
    addr: int
    dtype: DType = DType.NONE
    bcast: Bcast = Bcast.TILE

    def __str__(self) -> str:
        text = f"{self.space.text}:{self.addr:#x}"
        if self.dtype is not DType.NONE:
            text += f":{self.dtype.text}"
        if self.bcast is not Bcast.TILE:
            text += f":{self.bcast.text}"
        return text

    @property
    def is_none(self) -> bool:
        return self.space is Space.NONE


NO_OPERAND = Operand(Space.NONE, 0)


def sp(addr: int, dtype: DType | str = DType.NONE, bcast: Bcast | str = Bcast.TILE) -> Operand:
    """A scratchpad operand: `sp(0x100, "f32")`."""
    return Operand(Space.SP, addr, _as_dtype(dtype), _as_bcast(bcast))


def acc(addr: int, dtype: DType | str = DType.NONE, bcast: Bcast | str = Bcast.TILE) -> Operand:
    """An accumulator-buffer operand: `acc(0, "i32")`."""
    return Operand(Space.ACC, addr, _as_dtype(dtype), _as_bcast(bcast))


def _as_dtype(d: DType | str) -> DType:
    return d if isinstance(d, DType) else DType.parse(d)


def _as_bcast(b: Bcast | str) -> Bcast:
    return b if isinstance(b, Bcast) else Bcast[b.upper()]


# ---------------------------------------------------------------------------------------
# Instructions
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class Instruction:
    """Fields every instruction has: dependency tokens and a layer tag.

    Tokens (as VTA): `pop_prev`/`pop_next` wait for and consume a token that the previous /
    next queue pushed to this one before the instruction starts; `push_prev`/`push_next`
    send one when it completes. Queue order: load -> compute -> store.
    """

    pop_prev: bool = False
    pop_next: bool = False
    push_prev: bool = False
    push_next: bool = False
    layer: int = 0

    OPCODE: ClassVar[Opcode]
    QUEUE: ClassVar[Queue] = Queue.COMPUTE

    @property
    def mnemonic(self) -> str:
        return MNEMONIC[self.OPCODE]

    @property
    def queue(self) -> Queue:
        return self.QUEUE

    def with_deps(self, **deps: bool) -> Instruction:
        return replace(self, **deps)


@dataclass(frozen=True, kw_only=True)
class Load(Instruction):
    """2-D DMA DRAM -> on-chip: `rows` rows of `row_bytes`, row pitch `dram_stride` / `sp_stride` (0: packed)."""

    OPCODE: ClassVar[Opcode] = Opcode.LOAD
    QUEUE: ClassVar[Queue] = Queue.LOAD
    sp: Operand
    dram: int
    rows: int
    row_bytes: int
    dram_stride: int = 0
    sp_stride: int = 0


@dataclass(frozen=True, kw_only=True)
class Store(Instruction):
    """2-D DMA on-chip -> DRAM."""

    OPCODE: ClassVar[Opcode] = Opcode.STORE
    QUEUE: ClassVar[Queue] = Queue.STORE
    dram: int
    sp: Operand
    rows: int
    row_bytes: int
    dram_stride: int = 0
    sp_stride: int = 0


@dataclass(frozen=True, kw_only=True)
class LutBuild(Instruction):
    """Tables from a rows x k activation tile; dst's dtype is the table dtype."""

    OPCODE: ClassVar[Opcode] = Opcode.LUT_BUILD
    dst: Operand
    src: Operand
    rows: int
    k: int
    qgroup: int
    sym: bool = False


@dataclass(frozen=True, kw_only=True)
class LutMma(Instruction):
    """Lookups over `bits` weight bit planes, shift-accumulated into an m x n accumulator tile."""

    OPCODE: ClassVar[Opcode] = Opcode.LUT_MMA
    dst: Operand
    tables: Operand
    weights: Operand
    m: int
    n: int
    k: int
    bits: int
    sym: bool = False
    accum: bool = False


@dataclass(frozen=True, kw_only=True)
class Mma(Instruction):
    """Dense m x k by k x n (or n x k with `transpose_b`) into an accumulator tile."""

    OPCODE: ClassVar[Opcode] = Opcode.MMA
    dst: Operand
    a: Operand
    b: Operand
    m: int
    n: int
    k: int
    transpose_b: bool = False
    accum: bool = False


@dataclass(frozen=True, kw_only=True)
class Vec(Instruction):
    """Elementwise over a rows x cols tile: dst (+)= func(a, b, c, imm)."""

    OPCODE: ClassVar[Opcode] = Opcode.VEC
    func: VecFunc
    dst: Operand
    a: Operand
    b: Operand = NO_OPERAND
    c: Operand = NO_OPERAND
    rows: int
    cols: int
    imm: float = 0.0
    accum: bool = False

    @property
    def mnemonic(self) -> str:
        return f"VEC.{self.func.name}"


@dataclass(frozen=True, kw_only=True)
class Red(Instruction):
    """Row reduction of a rows x cols tile into a vector of rows."""

    OPCODE: ClassVar[Opcode] = Opcode.RED
    func: RedFunc
    dst: Operand
    src: Operand
    rows: int
    cols: int
    accum: bool = False

    @property
    def mnemonic(self) -> str:
        return f"RED.{self.func.name}"


@dataclass(frozen=True, kw_only=True)
class Sync(Instruction):
    """No data operation: carries dependency tokens in `queue` (0 cycles)."""

    OPCODE: ClassVar[Opcode] = Opcode.SYNC
    sync_queue: Queue = Queue.COMPUTE

    @property
    def queue(self) -> Queue:
        return self.sync_queue


@dataclass(frozen=True, kw_only=True)
class Finish(Instruction):
    """End of the program: completes when every queue has drained."""

    OPCODE: ClassVar[Opcode] = Opcode.FINISH


INSTRUCTION_CLASSES: dict[Opcode, type[Instruction]] = {
    Opcode.LOAD: Load, Opcode.STORE: Store, Opcode.LUT_BUILD: LutBuild, Opcode.LUT_MMA: LutMma,
    Opcode.MMA: Mma, Opcode.VEC: Vec, Opcode.RED: Red, Opcode.SYNC: Sync, Opcode.FINISH: Finish,
}
MNEMONIC = {
    Opcode.LOAD: "LOAD", Opcode.STORE: "STORE", Opcode.LUT_BUILD: "LUT.BUILD", Opcode.LUT_MMA: "LUT.MMA",
    Opcode.MMA: "MMA", Opcode.VEC: "VEC", Opcode.RED: "RED", Opcode.SYNC: "SYNC", Opcode.FINISH: "FINISH",
}


# ---------------------------------------------------------------------------------------
# Field layouts
# ---------------------------------------------------------------------------------------

class Kind(enum.Enum):
    UINT = "uint"  # unsigned integer, `width` bits
    BOOL = "bool"  # one bit; text 0/1
    DRAM = "dram"  # DRAM byte address; text dram:0x...
    OPERAND = "operand"  # on-chip address (2-bit space + 30-bit offset), optional dtype/bcast nibbles
    F32 = "f32"  # IEEE binary32 immediate
    QUEUE = "queue"  # 2-bit queue selector


@dataclass(frozen=True)
class Field:
    """One field of an instruction: its text key, attribute, kind and bit positions."""

    key: str  # assembly keyword
    attr: str  # Python attribute
    kind: Kind
    lsb: int  # first bit (of the 256) of the value / the address
    width: int  # bits of the value / the address
    dtype_lsb: int | None = None  # OPERAND: where its 4-bit dtype sits, if typed
    bcast_lsb: int | None = None  # OPERAND: where its 2-bit broadcast mode sits, if any
    doc: str = ""
    default_omitted: bool = True  # the disassembler omits the field when it is 0 / false / none

    @property
    def slots(self) -> list[tuple[str, int, int]]:
        """(part, lsb, width) of every bit range this field occupies."""
        out = [("value", self.lsb, self.width)]
        if self.dtype_lsb is not None:
            out.append(("dtype", self.dtype_lsb, 4))
        if self.bcast_lsb is not None:
            out.append(("bcast", self.bcast_lsb, 2))
        return out


ADDR_OFFSET_BITS = 30
HEADER_FIELDS = (
    ("opcode", 0, 8, "operation (1 LOAD, 2 STORE, 3 LUT.BUILD, 4 LUT.MMA, 5 MMA, 6 VEC, 7 RED, 8 SYNC, 9 FINISH)"),
    ("func", 8, 8, "VEC / RED function; 0 for other opcodes"),
    ("pop_prev", 16, 1, "wait for and consume a token from the previous queue before starting"),
    ("pop_next", 17, 1, "wait for and consume a token from the next queue before starting"),
    ("push_prev", 18, 1, "push a token to the previous queue on completion"),
    ("push_next", 19, 1, "push a token to the next queue on completion"),
    ("reserved", 20, 4, "must be zero"),
    ("layer", 24, 16, "layer tag: index into the program's layer table (0 = untagged)"),
)
HEADER_BITS = 40


def _op(key, attr, lsb, *, typed=False, bcast=False, doc=""):
    """An operand field: 32-bit address at lsb, then its dtype (and broadcast) nibbles."""
    return Field(key, attr, Kind.OPERAND, lsb, 32, lsb + 32 if typed else None,
                 (lsb + 36) if bcast else None, doc)


FORMATS: dict[Opcode, tuple[Field, ...]] = {
    Opcode.LOAD: (
        _op("dst", "sp", 40, doc="on-chip destination (sp or acc)"),
        Field("src", "dram", Kind.DRAM, 72, 48, doc="DRAM source byte address"),
        Field("rows", "rows", Kind.UINT, 120, 16, doc="rows to move (>= 1)", default_omitted=False),
        Field("bytes", "row_bytes", Kind.UINT, 136, 24, doc="bytes per row (>= 1)", default_omitted=False),
        Field("sstride", "dram_stride", Kind.UINT, 160, 32, doc="DRAM row pitch in bytes; 0 = row_bytes"),
        Field("dstride", "sp_stride", Kind.UINT, 192, 24, doc="on-chip row pitch in bytes; 0 = row_bytes"),
    ),
    Opcode.STORE: (
        Field("dst", "dram", Kind.DRAM, 72, 48, doc="DRAM destination byte address"),
        _op("src", "sp", 40, doc="on-chip source (sp or acc)"),
        Field("rows", "rows", Kind.UINT, 120, 16, doc="rows to move (>= 1)", default_omitted=False),
        Field("bytes", "row_bytes", Kind.UINT, 136, 24, doc="bytes per row (>= 1)", default_omitted=False),
        Field("dstride", "dram_stride", Kind.UINT, 160, 32, doc="DRAM row pitch in bytes; 0 = row_bytes"),
        Field("sstride", "sp_stride", Kind.UINT, 192, 24, doc="on-chip row pitch in bytes; 0 = row_bytes"),
    ),
    Opcode.LUT_BUILD: (
        _op("dst", "dst", 40, typed=True, doc="table block (sp); its dtype is the table dtype (i8 or f16)"),
        _op("src", "src", 76, typed=True, doc="rows x k activation tile (sp; f32, f16, bf16, i8 or i16)"),
        Field("rows", "rows", Kind.UINT, 112, 16, doc="activation rows (>= 1)", default_omitted=False),
        Field("k", "k", Kind.UINT, 128, 16, doc="activations per row (a multiple of g and of qgroup)", default_omitted=False),
        Field("qgroup", "qgroup", Kind.UINT, 144, 16, doc="activations per scale group (multiple of g)", default_omitted=False),
        Field("sym", "sym", Kind.BOOL, 160, 1, doc="1: symmetric tables of 2^(g-1) entries; 0: full tables of 2^g"),
    ),
    Opcode.LUT_MMA: (
        _op("dst", "dst", 40, typed=True, doc="m x n accumulator tile (acc; the LUT accumulator dtype)"),
        _op("tbl", "tables", 76, typed=True, doc="tables of the k-range (sp; the table dtype)"),
        _op("w", "weights", 112, doc="packed bit-plane indices, [bits][n][k/8] bytes (sp)"),
        Field("m", "m", Kind.UINT, 144, 16, doc="activation rows (= the LUT.BUILD's rows)", default_omitted=False),
        Field("n", "n", Kind.UINT, 160, 16, doc="output columns (weight rows)", default_omitted=False),
        Field("k", "k", Kind.UINT, 176, 16, doc="reduction length (multiple of g and of 8)", default_omitted=False),
        Field("bits", "bits", Kind.UINT, 192, 4, doc="weight bit planes (1..8)", default_omitted=False),
        Field("sym", "sym", Kind.BOOL, 196, 1, doc="tables are symmetric (must match the LUT.BUILD)"),
        Field("accum", "accum", Kind.BOOL, 197, 1, doc="1: dst += result; 0: dst = result"),
    ),
    Opcode.MMA: (
        _op("dst", "dst", 40, typed=True, doc="m x n accumulator tile (acc; the MMA accumulator dtype)"),
        _op("a", "a", 76, typed=True, doc="m x k tile (sp; the MMA dtype)"),
        _op("b", "b", 112, typed=True, doc="k x n tile, or n x k with tb=1 (sp; the MMA dtype)"),
        Field("m", "m", Kind.UINT, 148, 16, doc="rows of a", default_omitted=False),
        Field("n", "n", Kind.UINT, 164, 16, doc="columns of the result", default_omitted=False),
        Field("k", "k", Kind.UINT, 180, 16, doc="reduction length", default_omitted=False),
        Field("tb", "transpose_b", Kind.BOOL, 196, 1, doc="b is stored n x k"),
        Field("accum", "accum", Kind.BOOL, 197, 1, doc="1: dst += a.b; 0: dst = a.b"),
    ),
    Opcode.VEC: (
        _op("dst", "dst", 40, typed=True, doc="rows x cols result (sp or acc)"),
        _op("a", "a", 76, typed=True, bcast=True, doc="first source"),
        _op("b", "b", 114, typed=True, bcast=True, doc="second source (binary functions, FMA, DEQ)"),
        _op("c", "c", 152, typed=True, bcast=True, doc="third source (FMA, DEQ)"),
        Field("rows", "rows", Kind.UINT, 190, 16, doc="rows of the result", default_omitted=False),
        Field("cols", "cols", Kind.UINT, 206, 16, doc="columns of the result", default_omitted=False),
        Field("imm", "imm", Kind.F32, 222, 32, doc="f32 immediate (MULI, ADDI, DEQ)"),
        Field("accum", "accum", Kind.BOOL, 254, 1, doc="1: dst += result"),
    ),
    Opcode.RED: (
        _op("dst", "dst", 40, typed=True, doc="vector of rows results (sp or acc; f32 or i32)"),
        _op("src", "src", 76, typed=True, doc="rows x cols source tile"),
        Field("rows", "rows", Kind.UINT, 112, 16, doc="rows", default_omitted=False),
        Field("cols", "cols", Kind.UINT, 128, 16, doc="columns reduced per row", default_omitted=False),
        Field("accum", "accum", Kind.BOOL, 144, 1, doc="1: combine with dst (sum: add; max: max)"),
    ),
    Opcode.SYNC: (
        Field("queue", "sync_queue", Kind.QUEUE, 40, 2, doc="queue the SYNC runs in: 0 load, 1 compute, 2 store",
              default_omitted=False),
    ),
    Opcode.FINISH: (),
}


def _check_layout() -> None:
    """Fields must not overlap each other or the header (checked at import)."""
    for opcode, fmt in FORMATS.items():
        used = (1 << HEADER_BITS) - 1
        for f in fmt:
            for _, lsb, width in f.slots:
                mask = ((1 << width) - 1) << lsb
                assert lsb + width <= INSTR_BITS, (opcode, f.key)
                assert not used & mask, (opcode, f.key)
                used |= mask


_check_layout()


# ---------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------

class EncodingError(LutcError):
    """An instruction that cannot be encoded, or bytes that are not an instruction."""


def _value_limit(name: str, value: int, width: int) -> int:
    if not isinstance(value, (int, np.integer)):
        raise EncodingError(f"field '{name}' must be an integer, got {value!r}")
    value = int(value)
    if value < 0 or value >= 1 << width:
        raise EncodingError(f"field '{name}' = {value} does not fit in {width} bits")
    return value


def encode(instr: Instruction) -> bytes:
    """The 32-byte encoding of one instruction."""
    opcode = instr.OPCODE
    func = getattr(instr, "func", 0)
    bits = int(opcode) | (int(func) << 8)
    bits |= int(instr.pop_prev) << 16 | int(instr.pop_next) << 17 | int(instr.push_prev) << 18 | int(instr.push_next) << 19
    bits |= _value_limit("layer", instr.layer, 16) << 24
    for f in FORMATS[opcode]:
        value = getattr(instr, f.attr)
        if f.kind is Kind.OPERAND:
            if value.space is Space.NONE and value != NO_OPERAND:
                raise EncodingError(f"{instr.mnemonic}: operand '{f.key}' names no memory but has an address or type")
            bits |= int(value.space) << (f.lsb + ADDR_OFFSET_BITS)
            bits |= _value_limit(f.key, value.addr, ADDR_OFFSET_BITS) << f.lsb
            if f.dtype_lsb is not None:
                bits |= int(value.dtype) << f.dtype_lsb
            elif value.dtype is not DType.NONE:
                raise EncodingError(f"{instr.mnemonic}: operand '{f.key}' is untyped, got dtype {value.dtype.text}")
            if f.bcast_lsb is not None:
                bits |= int(value.bcast) << f.bcast_lsb
            elif value.bcast is not Bcast.TILE:
                raise EncodingError(f"{instr.mnemonic}: operand '{f.key}' takes no broadcast mode")
        elif f.kind is Kind.F32:
            try:
                bits |= struct.unpack("<I", struct.pack("<f", value))[0] << f.lsb
            except (OverflowError, struct.error):
                raise EncodingError(f"{instr.mnemonic}: '{f.key}' = {value!r} is not an f32") from None
        else:
            bits |= _value_limit(f.key, int(value), f.width) << f.lsb
    return bits.to_bytes(INSTR_BYTES, "little")


def decode(data: bytes, index: int | None = None) -> Instruction:
    """The instruction a 32-byte word encodes; raises EncodingError for invalid words."""
    if len(data) != INSTR_BYTES:
        raise EncodingError(f"{_where(index)}expected {INSTR_BYTES} bytes, got {len(data)}")
    bits = int.from_bytes(data, "little")
    code = bits & 0xFF
    plan = _DECODE_PLANS.get(code)
    if plan is None:
        raise EncodingError(f"{_where(index)}unknown opcode {code:#04x}")
    opcode, cls, used, fields = plan
    kwargs: dict = {
        "pop_prev": bool(bits >> 16 & 1), "pop_next": bool(bits >> 17 & 1),
        "push_prev": bool(bits >> 18 & 1), "push_next": bool(bits >> 19 & 1),
        "layer": bits >> 24 & 0xFFFF,
    }
    if bits >> 20 & 0xF:
        raise EncodingError(f"{_where(index)}reserved header bits are set")
    func = bits >> 8 & 0xFF
    if opcode is Opcode.VEC or opcode is Opcode.RED:
        members = _VEC_FUNCS if opcode is Opcode.VEC else _RED_FUNCS
        if func >= len(members):
            raise EncodingError(f"{_where(index)}unknown {MNEMONIC[opcode]} function {func}")
        kwargs["func"] = members[func]
    elif func:
        raise EncodingError(f"{_where(index)}{MNEMONIC[opcode]} has no function, got {func}")
    for f in fields:
        raw = bits >> f.lsb & ((1 << f.width) - 1)
        try:
            if f.kind is Kind.OPERAND:
                space = _member(_SPACES, Space, raw >> ADDR_OFFSET_BITS)
                addr = raw & _ADDR_MASK
                dtype = _member(_DTYPES, DType, bits >> f.dtype_lsb & 0xF) if f.dtype_lsb is not None else DType.NONE
                bcast = _member(_BCASTS, Bcast, bits >> f.bcast_lsb & 0x3) if f.bcast_lsb is not None else Bcast.TILE
                if space is Space.NONE:
                    if addr or dtype is not DType.NONE or bcast is not Bcast.TILE:
                        raise ValueError("names no memory but has an address or type")
                    kwargs[f.attr] = NO_OPERAND
                else:
                    kwargs[f.attr] = Operand(space, addr, dtype, bcast)
            elif f.kind is Kind.F32:
                kwargs[f.attr] = struct.unpack("<f", struct.pack("<I", raw))[0]
            elif f.kind is Kind.BOOL:
                kwargs[f.attr] = bool(raw)
            elif f.kind is Kind.QUEUE:
                kwargs[f.attr] = _member(_QUEUES, Queue, raw)
            else:
                kwargs[f.attr] = raw
        except ValueError as err:
            raise EncodingError(f"{_where(index)}{MNEMONIC[opcode]} field '{f.key}': {err}") from None
    if bits & ~used:
        raise EncodingError(f"{_where(index)}{MNEMONIC[opcode]} has bits set outside its fields")
    return cls(**kwargs)


def _where(index: int | None) -> str:
    return f"instruction #{index}: " if index is not None else ""


def _by_value(enum_type: type) -> tuple:
    """An IntEnum's members indexed by value (looked up instead of calling the enum, which is slow)."""
    members = tuple(enum_type)
    assert [int(m) for m in members] == list(range(len(members))), enum_type
    return members


def _member(members: tuple, enum_type: type, value: int):
    return members[value] if value < len(members) else enum_type(value)  # the enum raises its ValueError


_ADDR_MASK = (1 << ADDR_OFFSET_BITS) - 1
_SPACES, _DTYPES, _BCASTS, _QUEUES = (_by_value(e) for e in (Space, DType, Bcast, Queue))
_VEC_FUNCS, _RED_FUNCS = _by_value(VecFunc), _by_value(RedFunc)


def _decode_plans() -> dict[int, tuple]:
    """Per opcode value: (opcode, class, the bits its encoding may set, its fields)."""
    plans = {}
    for opcode, fields in FORMATS.items():
        used = (1 << HEADER_BITS) - 1
        for f in fields:
            for _, lsb, width in f.slots:
                used |= ((1 << width) - 1) << lsb
        plans[int(opcode)] = (opcode, INSTRUCTION_CLASSES[opcode], used, fields)
    return plans


_DECODE_PLANS = _decode_plans()


def encode_stream(instrs: list[Instruction]) -> bytes:
    return b"".join(encode(i) for i in instrs)


def decode_stream(data: bytes) -> list[Instruction]:
    if len(data) % INSTR_BYTES:
        raise EncodingError(f"instruction stream of {len(data)} bytes is not a multiple of {INSTR_BYTES}")
    return [decode(data[i:i + INSTR_BYTES], i // INSTR_BYTES) for i in range(0, len(data), INSTR_BYTES)]


_KIND_TEXT = {
    Kind.UINT: "unsigned integer", Kind.BOOL: "flag (0/1)", Kind.DRAM: "DRAM byte address",
    Kind.OPERAND: "on-chip operand", Kind.F32: "IEEE binary32", Kind.QUEUE: "queue (0 load, 1 compute, 2 store)",
}


def _bits(lsb: int, width: int) -> str:
    return f"{lsb}..{lsb + width - 1}"


def field_tables_markdown() -> str:
    """The header and per-opcode field tables of docs/isa.md, generated from the encoder's layout."""
    out = ["#### Header (all instructions)", "", "| field | bits | width | meaning |", "|---|---|---|---|"]
    for name, lsb, width, doc in HEADER_FIELDS:
        out.append(f"| `{name}` | {_bits(lsb, width)} | {width} | {doc} |")
    for opcode, fmt in FORMATS.items():
        queue = "SYNC's `queue` field" if opcode is Opcode.SYNC else INSTRUCTION_CLASSES[opcode].QUEUE.text + " queue"
        out += ["", f"#### `{MNEMONIC[opcode]}` (opcode {int(opcode)}, {queue})", ""]
        if not fmt:
            out.append("No fields beyond the header.")
            continue
        out += ["| field | bits | width | kind | meaning |", "|---|---|---|---|---|"]
        for f in fmt:
            if f.kind is Kind.OPERAND:
                out.append(f"| `{f.key}` | {_bits(f.lsb, 30)} | 30 | byte offset | {f.doc} |")
                out.append(f"| `{f.key}` space | {_bits(f.lsb + 30, 2)} | 2 | 0 none, 1 sp, 2 acc | memory of `{f.key}` |")
                if f.dtype_lsb is not None:
                    out.append(f"| `{f.key}` dtype | {_bits(f.dtype_lsb, 4)} | 4 | dtype code | element type of `{f.key}` |")
                if f.bcast_lsb is not None:
                    out.append(f"| `{f.key}` broadcast | {_bits(f.bcast_lsb, 2)} | 2 | 0 tile, 1 col, 2 row, 3 scalar | how `{f.key}` is read |")
            else:
                out.append(f"| `{f.key}` | {_bits(f.lsb, f.width)} | {f.width} | {_KIND_TEXT[f.kind]} | {f.doc} |")
    return "\n".join(out) + "\n"


__all__ = [
    "ISA_VERSION", "INSTR_BYTES", "DType", "Space", "Bcast", "Queue", "Opcode", "VecFunc", "RedFunc",
    "Operand", "NO_OPERAND", "sp", "acc", "Instruction", "Load", "Store", "LutBuild", "LutMma", "Mma",
    "Vec", "Red", "Sync", "Finish", "FORMATS", "HEADER_FIELDS", "Field", "Kind", "encode", "decode",
    "encode_stream", "decode_stream", "EncodingError", "VEC_ARITY", "VEC_SPECIAL", "MNEMONIC",
]
