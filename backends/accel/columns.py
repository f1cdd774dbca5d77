"""A program's instructions as NumPy columns: what validation, analysis and simulation read.

`InstructionColumns` holds, for every instruction, its class, layer tag and dependency
flags, and for every class the encoded fields of its instructions as int64 (float64 for
the f32 immediate) arrays named like the instruction attributes (`rows`, `dst.addr`,
`dst.dtype`, `dst.space`, `dst.bcast`, `func`...). It is built once when a program is
loaded, like parsing:

* from the binary words (`from_words`): `np.frombuffer` over the 32-byte instructions and
  vectorized bit-field extraction (one class at a time in NumPy, or all classes in one call of
  the compiled `decode_fields` kernel once the simulator's kernels are loaded: the same
  columns, ~0.2 ms less on a 530-instruction program); every check `isa.decode` makes is done
  column-wise, and the first bad word is handed to `isa.decode` for its error message (one source);
* from instruction objects (`from_instructions`: programs made by the builder or the
  assembler), reading the fields off the objects once.

Everything downstream (analysis, schedule, simulation) reads these columns, never
instruction attributes; instruction objects are used only for error messages and for the
few instructions whose function is prepared from one (see functional.prepare).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter

import numpy as np

from lutc.backends.accel import isa, kernels
from lutc.backends.accel.isa import (
    ADDR_OFFSET_BITS, FORMATS, HEADER_BITS, INSTR_BYTES, INSTRUCTION_CLASSES, DType, EncodingError, Finish, Instruction,
    Kind, Load, LutBuild, LutMma, Mma, Opcode, Red, RedFunc, Store, Sync, Vec, VecFunc,
)

CLASSES = (Load, Store, LutBuild, LutMma, Mma, Vec, Red, Sync, Finish)
CLASS_CODE = {cls: k for k, cls in enumerate(CLASSES)}
_CODE_OF_OPCODE = np.full(256, -1, dtype=np.int64)
for _op, _cls in INSTRUCTION_CLASSES.items():
    _CODE_OF_OPCODE[int(_op)] = CLASS_CODE[_cls]
DEP_NAMES = ("pop_prev", "pop_next", "push_prev", "push_next")


@dataclass(eq=False)
class InstructionColumns:
    kind: np.ndarray  # (n,) index into CLASSES
    layer: np.ndarray  # (n,) int64
    deps: np.ndarray  # (n, 4) bool: pop_prev, pop_next, push_prev, push_next
    groups: dict  # class -> instruction indices (increasing)
    columns: dict  # class -> {field name: array}, rows follow groups[class]
    snapshot: list | None = None  # the instruction objects these columns were read from (None: from words)

    @property
    def n(self) -> int:
        return len(self.kind)

    # -- from instruction objects --------------------------------------------------------
    @classmethod
    def from_instructions(cls, instrs: list[Instruction]) -> InstructionColumns:
        n = len(instrs)
        kind = np.fromiter(map(CLASS_CODE.__getitem__, map(type, instrs)), dtype=np.int64, count=n)
        layer = np.fromiter(map(attrgetter("layer"), instrs), dtype=np.int64, count=n)
        deps = np.empty((n, 4), dtype=bool)
        for k, name in enumerate(DEP_NAMES):
            deps[:, k] = np.fromiter(map(attrgetter(name), instrs), dtype=bool, count=n)
        groups, columns = {}, {}
        for klass in CLASSES:
            idx = np.flatnonzero(kind == CLASS_CODE[klass])
            if len(idx):
                groups[klass] = idx
                columns[klass] = extract_columns([instrs[i] for i in idx.tolist()], klass)
        return cls(kind, layer, deps, groups, columns)

    # -- from binary words ---------------------------------------------------------------
    @classmethod
    def from_words(cls, data: bytes) -> InstructionColumns:
        """Decode an instruction stream column-wise; EncodingError (isa.decode's message) on a bad word.
        The bit fields come from one compiled call when the simulator kernels are loaded
        (`kernels.decode_fields`), else from NumPy, one class at a time: the same columns."""
        if len(data) % INSTR_BYTES:
            raise EncodingError(f"instruction stream of {len(data)} bytes is not a multiple of {INSTR_BYTES}")
        words = np.frombuffer(data, dtype="<u8").reshape(-1, 4)
        w0 = words[:, 0]
        opcode = (w0 & 0xFF).astype(np.int64)
        kind = _CODE_OF_OPCODE[opcode]
        func = ((w0 >> np.uint64(8)) & 0xFF).astype(np.int64)
        bad = kind < 0
        bad |= ((w0 >> np.uint64(20)) & 0xF) != 0
        layer = ((w0 >> np.uint64(24)) & 0xFFFF).astype(np.int64)
        deps = (w0[:, None] >> _DEP_SHIFTS) & np.uint64(1) != 0
        groups, columns = {}, {}
        by_kind = np.argsort(kind, kind="stable")  # each class's instructions, in program order
        bounds = np.searchsorted(kind[by_kind], np.arange(len(CLASSES) + 1)).tolist()
        compiled = kernels.sim_kernels() if kernels.is_loaded() else None
        if compiled is not None:  # every field of every instruction, grouped by class, in one call
            fields = np.empty((_FIELD_ROWS, len(kind)), dtype=np.uint64)
            bad_in_order = np.empty(len(kind), dtype=np.uint8)
            # (a copy of the words: DLPack cannot pass a read-only array)
            compiled.decode_fields()(np.array(words), by_kind, kind, *_field_tables(compiled), fields, bad_in_order)
            bad[by_kind] |= bad_in_order.view(bool)
        else:
            by_word = np.ascontiguousarray(words.T)  # (4, n): each class's words gathered row by row
        for code, klass in enumerate(CLASSES):
            lo, hi = bounds[code], bounds[code + 1]
            if lo == hi:
                continue
            idx = by_kind[lo:hi]
            plan = _bit_plan(klass.OPCODE)
            if compiled is not None:
                raw = fields[1:1 + len(plan.names), lo:hi]  # row 0: the function code, checked by the kernel
            else:
                raw, bad_here = _decode_class(by_word[:, idx], plan, klass.OPCODE, func[idx])
                bad[idx] |= bad_here
            groups[klass], columns[klass] = idx, _named_columns(plan, raw, klass.OPCODE, func[idx])
        if bad.any():
            i = int(np.argmax(bad))
            isa.decode(bytes(data[i * INSTR_BYTES:(i + 1) * INSTR_BYTES]), i)  # raises the message
            raise AssertionError(f"instruction #{i} failed a vectorized decode check that isa.decode accepts")  # pragma: no cover
        return cls(kind, layer, deps, groups, columns)


_DEP_SHIFTS = np.array([16, 17, 18, 19], dtype=np.uint64)  # pop_prev, pop_next, push_prev, push_next


@dataclass(frozen=True)
class _BitPlan:
    """Where every column of one opcode's encoding sits: bit fields (word, shift, mask), all
    extracted by one broadcast; fields that cross a 64-bit word boundary get their high part after."""

    names: tuple[str, ...]
    word: np.ndarray
    shift: np.ndarray
    mask: np.ndarray
    straddling: tuple[tuple[int, int, int, int], ...]  # (column, next word, left shift, mask)
    floats: tuple[int, ...]  # columns holding an f32's bits
    queues: tuple[int, ...]  # columns holding a queue selector
    operands: tuple[tuple[int, int, int, int], ...]  # (space, addr, dtype, bcast) columns per operand
    used: np.ndarray  # the bits the encoding may set, as four uint64 words


_BIT_PLANS: dict = {}


def _bit_plan(opcode: Opcode) -> _BitPlan:
    plan = _BIT_PLANS.get(opcode)
    if plan is not None:
        return plan
    fields: list[tuple[str, int, int]] = []  # (name, lsb, width); width 0: always zero
    floats, queues, operands = [], [], []
    for f in FORMATS[opcode]:
        if f.kind is Kind.OPERAND:
            operands.append(tuple(range(len(fields), len(fields) + 4)))
            fields += [(f"{f.attr}.space", f.lsb + ADDR_OFFSET_BITS, f.width - ADDR_OFFSET_BITS),
                       (f"{f.attr}.addr", f.lsb, ADDR_OFFSET_BITS),
                       (f"{f.attr}.dtype", f.dtype_lsb or 0, 4 if f.dtype_lsb is not None else 0),
                       (f"{f.attr}.bcast", f.bcast_lsb or 0, 2 if f.bcast_lsb is not None else 0)]
            continue
        if f.kind is Kind.F32:
            floats.append(len(fields))
        elif f.kind is Kind.QUEUE:
            queues.append(len(fields))
        fields.append((f.attr, f.lsb, f.width))
    used = (1 << HEADER_BITS) - 1
    for f in FORMATS[opcode]:
        for _, lsb, width in f.slots:
            used |= ((1 << width) - 1) << lsb
    straddling = tuple((c, lsb // 64 + 1, 64 - lsb % 64, (1 << width) - 1)
                       for c, (_, lsb, width) in enumerate(fields) if lsb % 64 + width > 64)
    plan = _BIT_PLANS[opcode] = _BitPlan(
        tuple(name for name, _, _ in fields), np.array([lsb // 64 for _, lsb, _ in fields], dtype=np.int64),
        np.array([lsb % 64 for _, lsb, _ in fields], dtype=np.uint64),
        np.array([(1 << width) - 1 for _, _, width in fields], dtype=np.uint64), straddling, tuple(floats),
        tuple(queues), tuple(operands),
        np.array([(used >> (64 * k)) & ((1 << 64) - 1) for k in range(4)], dtype=np.uint64))
    return plan


def _decode_class(w: np.ndarray, plan: _BitPlan, opcode: Opcode, func: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fields (plan.names order, as uint64 rows) of same-opcode words ((4, n): the four 64-bit
    parts of each word), and which words isa.decode would reject."""
    bad = ((w & ~plan.used[:, None]) != 0).any(axis=0)
    bad |= func > _LARGEST_FUNC.get(opcode, 0)
    raw = w[plan.word]  # (columns, n): every field at once, shifted and masked in place
    np.right_shift(raw, plan.shift[:, None], out=raw)
    np.bitwise_and(raw, plan.mask[:, None], out=raw)
    for c, word, left, mask in plan.straddling:
        raw[c] |= (w[word] << np.uint64(left)) & np.uint64(mask)
    table = raw.view(np.int64)  # every field is narrower than 63 bits
    if plan.operands:
        space, addr, dtype, bcast = (table[list(k)] for k in zip(*plan.operands))
        bad |= (space > 2).any(axis=0)
        bad |= (dtype >= len(DType)).any(axis=0)
        bad |= ((space == 0) & ((addr != 0) | (dtype != 0) | (bcast != 0))).any(axis=0)
    for c in plan.queues:
        bad |= table[c] > 2
    return raw, bad


def _named_columns(plan: _BitPlan, raw: np.ndarray, opcode: Opcode, func: np.ndarray) -> dict[str, np.ndarray]:
    """A class's field columns by name from its decoded fields (uint64 rows in plan.names order)."""
    table = raw.view(np.int64)  # every field is narrower than 63 bits
    cols: dict[str, np.ndarray] = dict(zip(plan.names, table))
    for c in plan.floats:
        cols[plan.names[c]] = raw[c].astype(np.uint32).view(np.float32).astype(np.float64)
    if opcode in (Opcode.VEC, Opcode.RED):
        cols["func"] = func
    return cols


_LARGEST_FUNC = {Opcode.VEC: len(VecFunc) - 1, Opcode.RED: len(RedFunc) - 1}  # other opcodes: 0
_FIELD_ROWS = 1 + max(len(_bit_plan(cls.OPCODE).names) for cls in CLASSES)  # the function code, then the fields


@lru_cache(maxsize=None)
def _field_tables(compiled: kernels.SimKernels) -> tuple:
    """The encodings of every class as the tables `kernels.decode_fields` reads (rows by class
    code; field 0 is the function code, then the fields of _bit_plan), as FFI tensors."""
    classes, slots = len(CLASSES), max(len(_bit_plan(cls.OPCODE).operands) for cls in CLASSES) or 1
    word = np.zeros((classes, _FIELD_ROWS), dtype=np.int64)
    shift, mask, hi_shift, most = (np.zeros((classes, _FIELD_ROWS), dtype=np.uint64) for _ in range(4))
    hi_word = np.full((classes, _FIELD_ROWS), -1, dtype=np.int64)
    operands = np.full((classes, slots, 4), -1, dtype=np.int64)
    used = np.zeros((classes, 4), dtype=np.uint64)
    for code, cls in enumerate(CLASSES):
        plan = _bit_plan(cls.OPCODE)
        k = len(plan.names)
        shift[code, 0], mask[code, 0], most[code, 0] = 8, 0xFF, _LARGEST_FUNC.get(cls.OPCODE, 0)
        word[code, 1:k + 1], shift[code, 1:k + 1], mask[code, 1:k + 1] = plan.word, plan.shift, plan.mask
        most[code, 1:k + 1] = plan.mask
        for c, next_word, left, _ in plan.straddling:
            hi_word[code, c + 1], hi_shift[code, c + 1] = next_word, left
        for c in plan.queues:
            most[code, c + 1] = 2
        for o, (space, addr, dtype, bcast) in enumerate(plan.operands):
            operands[code, o] = (space + 1, addr + 1, dtype + 1, bcast + 1)
            most[code, space + 1] = 2
            most[code, dtype + 1] = min(int(most[code, dtype + 1]), len(DType) - 1)
        used[code] = plan.used
    return tuple(compiled.tensor(t) for t in (word, shift, mask, hi_word, hi_shift, most, operands, used))


def signature_representatives(data: bytes) -> np.ndarray:
    """For an encoded instruction stream: the index of the first instruction of each distinct
    *signature* (its encoding without addresses, token flags and layer: what validation
    checks once per signature), ascending. One sort of the masked 32-byte words, instead of a
    `distinct_rows` of each class's columns; the same classes of instructions."""
    words = np.frombuffer(data, dtype="<u8").reshape(-1, 4)
    masked = words & _SIGNATURE_MASKS[(words[:, 0] & 0xFF).astype(np.int64)]
    # Rows grouped by a 64-bit mix of their words (an integer sort), then checked against the
    # group's first row, so a collision cannot merge two signatures (it takes the exact, slower
    # sort of whole rows instead).
    mixed = (masked * _MIX).sum(axis=1, dtype=np.uint64)
    _, first, group = np.unique(mixed, return_index=True, return_inverse=True)
    if not (masked == masked[first[group.reshape(-1)]]).all():
        rows = np.ascontiguousarray(masked).view(np.dtype((np.void, INSTR_BYTES))).reshape(-1)
        _, first = np.unique(rows, return_index=True)
    return np.sort(first)


def _signature_masks() -> np.ndarray:
    """(256, 4) uint64: per opcode, the bits of a signature (see signature_representatives):
    the bits its encoding uses, less the token flags, the layer and every address."""
    masks = np.zeros((256, 4), dtype=np.uint64)
    for opcode in FORMATS:
        keep = sum(int(word) << (64 * k) for k, word in enumerate(_bit_plan(opcode).used))
        keep &= ~(((1 << HEADER_BITS) - 1) & ~0xFFFF)  # the header but its opcode and function
        for f in FORMATS[opcode]:
            if f.kind is Kind.OPERAND:
                keep &= ~(((1 << ADDR_OFFSET_BITS) - 1) << f.lsb)
            elif f.kind is Kind.DRAM:
                keep &= ~(((1 << f.width) - 1) << f.lsb)
        masks[int(opcode)] = [(keep >> (64 * k)) & ((1 << 64) - 1) for k in range(4)]
    return masks


_SIGNATURE_MASKS = _signature_masks()
_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93], dtype=np.uint64)


# ---------------------------------------------------------------------------------------
# Reading fields off instruction objects
# ---------------------------------------------------------------------------------------

def extract_columns(instrs: list[Instruction], cls: type) -> dict[str, np.ndarray]:
    """The fields of same-class instructions as arrays: `rows`, `dst.addr`, `dst.dtype`..."""
    count = len(instrs)
    cols: dict[str, np.ndarray] = {}

    def ints(attr: str) -> np.ndarray:
        return np.fromiter(map(attrgetter(attr), instrs), dtype=np.int64, count=count)

    def enums(attr: str) -> np.ndarray:
        # NumPy converts an IntEnum member through its slow generic path; its `_value_` is a
        # plain int (5x faster). Fields set to plain ints (no `_value_`) take the slow path.
        try:
            return ints(attr + "._value_")
        except AttributeError:
            return ints(attr)

    def bools(attr: str) -> np.ndarray:
        values = list(map(attrgetter(attr), instrs))
        if set(map(type, values)) <= {bool}:  # converting bools to int64 directly is slow too
            return np.fromiter(values, dtype=bool, count=count).astype(np.int64)
        return np.fromiter(values, dtype=np.int64, count=count)

    # map(attrgetter) keeps the per-instruction work in C: programs have many thousands.
    for f in FORMATS[cls.OPCODE]:
        if f.kind is Kind.OPERAND:
            ops = list(map(attrgetter(f.attr), instrs))
            cols[f"{f.attr}.space"] = enum_column(ops, "space")
            cols[f"{f.attr}.addr"] = np.fromiter(map(attrgetter("addr"), ops), dtype=np.int64, count=count)
            cols[f"{f.attr}.dtype"] = enum_column(ops, "dtype")
            cols[f"{f.attr}.bcast"] = enum_column(ops, "bcast")
        elif f.kind is Kind.F32:
            cols[f.attr] = np.fromiter(map(attrgetter(f.attr), instrs), dtype=np.float64, count=count)
        elif f.kind is Kind.BOOL:
            cols[f.attr] = bools(f.attr)
        elif f.kind is Kind.QUEUE:
            cols[f.attr] = enums(f.attr)
        else:
            cols[f.attr] = ints(f.attr)
    if cls in (Vec, Red):
        cols["func"] = enums("func")
    return cols


def enum_column(objs: list, attr: str) -> np.ndarray:
    """An IntEnum attribute of `objs` as int64 (see extract_columns: through `_value_` when it can)."""
    try:
        return np.fromiter(map(attrgetter(attr + "._value_"), objs), dtype=np.int64, count=len(objs))
    except AttributeError:
        return np.fromiter(map(attrgetter(attr), objs), dtype=np.int64, count=len(objs))


def distinct_rows(cols: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """For same-length integer (or float64, compared bit for bit) columns: (row of the first
    occurrence of each distinct row, the distinct row of every row).

    A few rows go through a dict of tuples (NumPy's fixed cost per call is larger there).
    Otherwise constant columns are dropped first (they tell no rows apart; often all are, and
    no sort is needed), and what is left is sorted once, as one integer or one byte string per row."""
    columns = [c.view(np.int64) if c.dtype == np.float64 else c for c in cols.values()]
    n = len(columns[0]) if columns else 0
    if n <= _FEW_ROWS:
        seen: dict = {}
        first, which = [], []
        for i, row in enumerate(zip(*[c.tolist() for c in columns])):
            w = seen.get(row)
            if w is None:
                w = seen[row] = len(first)
                first.append(i)
            which.append(w)
        return np.array(first, dtype=np.int64), np.array(which, dtype=np.int64)
    table = np.array(columns, dtype=np.int64)
    table = table[(table != table[:, :1]).any(axis=1)]
    if not len(table):
        return np.zeros(1, dtype=np.int64), np.zeros(n, dtype=np.int64)
    rows = table[0] if len(table) == 1 else np.ascontiguousarray(table.T).view(np.dtype((np.void, len(table) * 8))).reshape(-1)
    _, first, which = np.unique(rows, return_index=True, return_inverse=True)
    return first, which.reshape(-1)


_FEW_ROWS = 40  # below this, a dict of tuples is faster than NumPy's sort (measured)
