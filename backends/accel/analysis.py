"""Static analysis of a program, column by column: validation and byte ranges.

Programs have tens of thousands of instructions and validation must not dominate a
simulation, so the checks that depend on addresses (alignment, bounds, DRAM tensors) and the byte ranges every
instruction touches are computed with NumPy over all instructions of a class at once.
Checks that do not depend on addresses run once per distinct *signature* (the instruction
with its addresses left out). Whenever a vectorized check fails, the scalar checks of
program.py explain the first failing instruction, so error messages have one source.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lutc.diagnostics import Location, LutcError
from lutc.backends.accel.config import AccelConfig
from lutc.backends.accel.isa import (
    DType, Load, LutBuild, LutMma, Mma, Queue, Red, Store, Sync, Vec, VecFunc,
)
from lutc.backends.accel.program import (
    LEGAL_DEPS, MEM_ACC, MEM_DRAM, MEM_SP, NO_HASH, Program, TensorIndex, CheckContext, InstructionError, check_instruction,
    check_structure, describe_instruction, instruction_accesses, instruction_location,
)

from lutc.backends.accel.columns import CLASSES, DEP_NAMES, distinct_rows, extract_columns, enum_column as _enum_column  # noqa: F401 (re-exported)
from lutc.backends.accel.columns import signature_representatives
# The operand each byte-range slot belongs to, per class (the roles program.instruction_accesses names).
SLOT_ROLES = {
    Load: ("src", "dst"), Store: ("src", "dst"), LutBuild: ("src", "dst"), LutMma: ("tbl", "w", "dst", "dst"),
    Mma: ("a", "b", "dst", "dst"), Vec: ("a", "b", "c", "dst", "dst"), Red: ("src", "dst", "dst"),
}
from lutc.backends.accel.columns import CLASS_CODE  # noqa: F401 (re-exported)
_CLASS_QUEUE = np.array([int(cls.QUEUE) for cls in CLASSES], dtype=np.int64)  # SYNC's comes from its field
# Which token flags (pop_prev, pop_next, push_prev, push_next) each queue may set (program.LEGAL_DEPS).
_LEGAL_DEP_MASK = np.array([[name in LEGAL_DEPS[q] for name in DEP_NAMES] for q in Queue])
RANGES = 5  # byte ranges per instruction, at most (VEC: a, b, c, dst read, dst write)

_DTYPE_SIZE = np.array([DType(c).size for c in range(len(DType))] + [0] * (16 - len(DType)), dtype=np.int64)
_SPACE_MEM = np.array([MEM_SP, MEM_SP, MEM_ACC, MEM_SP], dtype=np.int64)  # Space code -> memory (NONE: unused)


@dataclass
class Analysis:
    """Per-instruction facts, as arrays indexed by instruction."""

    program: Program
    config: AccelConfig
    kind: np.ndarray  # index into CLASSES
    queue: np.ndarray
    layer: np.ndarray
    deps: np.ndarray  # (n, 4) bool: pop_prev, pop_next, push_prev, push_next
    groups: dict[type, np.ndarray]  # class -> instruction indices
    columns: dict[type, dict[str, np.ndarray]]  # class -> field columns (rows follow groups[class])
    mem: np.ndarray  # (n, RANGES) memory of each byte range
    lo: np.ndarray  # (n, RANGES)
    hi: np.ndarray  # (n, RANGES)
    write: np.ndarray  # (n, RANGES) bool
    used: np.ndarray  # (n, RANGES) bool
    pattern: np.ndarray  # (n, RANGES, 3): rows, row_bytes, stride of 2-D DMA ranges (rows = 1 otherwise)

    @property
    def n(self) -> int:
        return len(self.kind)

    def accesses(self, i: int):
        """Instruction i's byte ranges, as program.Access (scalar, for messages)."""
        return instruction_accesses(self.program.instruction(i), self.config)


def analyze(program: Program, config: AccelConfig) -> Analysis:
    """Validate `program` against `config` (LutcError on the first problem) and compute its byte ranges.

    The result is kept with the program (loading validates; the simulator then reuses it) and
    recomputed when the program changed."""
    cached = program._analysis
    key = _analysis_key(program, config)
    if cached is not None and cached[0] == key:
        return cached[1]
    check_structure(program)
    loc = Location(file=program.source)
    if program.config_hash != NO_HASH and program.config_hash != config.arch_hash:
        raise LutcError(
            f"program was built for a different accelerator (architecture hash {program.config_hash.hex()[:12]}, "
            f"config '{config.name}' has {config.arch_hash.hex()[:12]})", loc)
    if program.dram_size > config.dram.size_bytes:
        raise LutcError(f"the DRAM image ({program.dram_size} bytes) is larger than the config's DRAM "
                        f"({config.dram.size_bytes} bytes)", loc)
    ic = program.columns()
    n = ic.n
    kind, layer, deps = ic.kind, ic.layer, ic.deps
    # Every class runs in its fixed queue except SYNC, which names one.
    queue = _CLASS_QUEUE[kind]
    if Sync in ic.groups:
        queue[ic.groups[Sync]] = ic.columns[Sync]["sync_queue"]

    mem = np.zeros((n, RANGES), dtype=np.int64)
    lo = np.zeros((n, RANGES), dtype=np.int64)
    hi = np.zeros((n, RANGES), dtype=np.int64)
    write = np.zeros((n, RANGES), dtype=bool)
    used = np.zeros((n, RANGES), dtype=bool)
    pattern = np.zeros((n, RANGES, 3), dtype=np.int64)
    pattern[:, :, 0] = 1
    groups, columns = {}, {}
    failures: list[int] = []  # instructions a vectorized check flagged
    ctx = CheckContext(config, program)
    # One instruction per distinct signature is checked (from the words when the program was read
    # from a file: one sort for all classes).
    representatives = None if program.decoded else signature_representatives(program._words)
    representative_kind = None if representatives is None else kind[representatives]
    illegal_tokens = (deps & ~_LEGAL_DEP_MASK[queue]).any(axis=1)  # checked here, so not part of signatures
    if illegal_tokens.any():
        failures.append(int(np.argmax(illegal_tokens)))
    for cls in CLASSES:
        idx = ic.groups.get(cls)
        if idx is None:
            continue
        cols = ic.columns[cls]
        groups[cls], columns[cls] = idx, cols
        bad = _check_signatures(program, idx, cols, config, ctx, None if representatives is None else
                                representatives[representative_kind == CLASS_CODE[cls]])
        if bad is not None:
            failures.append(bad)
            continue
        ranges = _RANGE_BUILDERS.get(cls)
        if ranges is None:
            continue
        for slot, (m, a, b, w, u, pat) in enumerate(ranges(cols, config)):
            # Into each table's column view: NumPy's mixed `table[idx, slot] = x` costs ~4x as much.
            mem[:, slot][idx], lo[:, slot][idx], hi[:, slot][idx] = m, a, b
            write[:, slot][idx], used[:, slot][idx] = w, u
            if pat is not None:
                pattern[idx, slot] = pat
        misaligned = _misaligned(cls, cols)
        if misaligned is not None and misaligned.any():
            failures.append(int(idx[np.argmax(misaligned)]))
    failures.extend(_bounds_failures(mem, lo, hi, used, config, ctx))
    if failures:
        i = min(failures)
        _explain(program, i, config, ctx)
    an = Analysis(program, config, kind, queue, layer, deps, groups, columns, mem, lo, hi, write, used, pattern)
    program._analysis = (key, an)  # loading a program validates it; the simulator reuses the result
    return an


def _analysis_key(program: Program, config: AccelConfig) -> tuple:
    """What an Analysis depends on, cheap to compare: the config (by identity), the instruction
    columns (rebuilt whenever the instructions change), the DRAM layout and metadata."""
    return (config, program.columns(), [(t.name, t.kind, t.dtype, t.shape, t.addr) for t in program.tensors],
            list(program.layers), sorted((name, raw.size) for name, raw in program.data.items()), program.tokens,
            program.config_hash, program.source, None if program.lines is None else list(program.lines))


def _explain(program: Program, i: int, config: AccelConfig, ctx: CheckContext) -> None:
    """Raise the scalar checks' message for instruction i (flagged by a vectorized check)."""
    instr = program.instruction(i)
    try:
        check_instruction(instr, config, ctx)
        for access in instruction_accesses(instr, config):
            ctx.check_bounds(access)
    except InstructionError as err:
        raise LutcError(f"{describe_instruction(program, i)}: {err}", instruction_location(program, i)) from None
    raise AssertionError(f"instruction #{i} failed a vectorized check that the scalar checks accept")  # pragma: no cover


def _check_signatures(program, idx, cols, config, ctx, representatives: np.ndarray | None) -> int | None:
    """Run the address-independent checks once per distinct signature (the fields without addresses
    and token flags, which `analyze` checks column-wise) of the class of instructions `idx`; the
    first bad instruction or None. `representatives`: the class's, when known already."""
    if representatives is not None:
        todo = representatives
    else:
        signature = {name: c for name, c in cols.items() if not name.endswith(".addr") and name != "dram"}
        if not signature:  # FINISH: nothing but token flags
            signature = {"none": np.zeros(len(idx), dtype=np.int64)}
        todo = idx[np.sort(distinct_rows(signature)[0])]
    for i in todo.tolist():
        try:
            check_instruction(program.instruction(i), config, ctx)
        except InstructionError:
            return i
    return None


def _misaligned(cls, cols) -> np.ndarray | None:
    """Operands whose address is not a multiple of their element size (and LUT.BUILD blocks not 4-aligned)."""
    out = None
    for name in cols:
        if not name.endswith(".addr"):
            continue
        op = name[:-5]
        dtype_col = cols.get(op + ".dtype")
        if dtype_col is None:
            continue
        size = np.maximum(_DTYPE_SIZE[dtype_col], 1)
        bad = cols[name] % size != 0
        if cls is LutBuild and op == "dst":
            bad |= cols[name] % 4 != 0
        out = bad if out is None else out | bad
    return out


def _bounds_failures(mem, lo, hi, used, config, ctx) -> list[int]:
    out = []
    cap = np.array([config.dram.size_bytes, config.scratchpad.size_bytes, config.accumulator.size_bytes], dtype=np.int64)
    over = used & (hi > cap[mem])
    if over.any():
        out.append(int(np.argmax(over.any(axis=1))))
    dram = used & (mem == MEM_DRAM)
    if dram.any():
        index: TensorIndex = ctx.tensors
        starts = np.asarray(index.starts, dtype=np.int64)
        ends = np.asarray(index.ends, dtype=np.int64)
        k = np.searchsorted(starts, lo, side="right") - 1
        inside = (k >= 0) & (hi <= ends[np.maximum(k, 0)]) if len(starts) else np.zeros_like(dram)
        outside = dram & ~inside
        if outside.any():
            out.append(int(np.argmax(outside.any(axis=1))))
    return out


def is_strided(pattern: np.ndarray) -> np.ndarray:
    """For (..., 3) patterns (rows, row_bytes, stride): rows that are not one contiguous range."""
    return (pattern[..., 0] > 1) & (pattern[..., 1] != pattern[..., 2])


def write_runs(an: Analysis, mem: int, extra: list[tuple[int, int]] = ()) -> tuple[np.ndarray, np.ndarray]:
    """The union of the write ranges to `mem` (strided ones row by row) and `extra`: sorted disjoint
    runs [lo, hi), as two arrays."""
    ins, slot = np.nonzero(an.used & an.write & (an.mem == mem))
    lo, hi, pat = an.lo[ins, slot], an.hi[ins, slot], an.pattern[ins, slot]
    strided = is_strided(pat)
    if strided.any():
        rows, row_bytes, stride = (pat[strided, k] for k in range(3))
        row = np.arange(int(rows.sum())) - np.repeat(np.cumsum(rows) - rows, rows)  # row number within its range
        starts = np.repeat(lo[strided], rows) + row * np.repeat(stride, rows)
        lo = np.concatenate([lo[~strided], starts])
        hi = np.concatenate([hi[~strided], starts + np.repeat(row_bytes, rows)])
    lo = np.concatenate([lo, np.array([a for a, _ in extra], dtype=np.int64)])
    hi = np.concatenate([hi, np.array([b for _, b in extra], dtype=np.int64)])
    if not len(lo):
        return lo, hi
    order = np.argsort(lo, kind="stable")
    lo, hi = lo[order], hi[order]
    reach = np.maximum.accumulate(hi)
    new = np.concatenate([[True], lo[1:] > reach[:-1]])  # a run starts after everything before it has ended
    return lo[new], np.maximum.reduceat(hi, np.flatnonzero(new))


# ---------------------------------------------------------------------------------------
# Byte ranges per class, in the order of program.instruction_accesses
# ---------------------------------------------------------------------------------------

def _span(cols, op: str, nbytes, write: bool, used=True):
    return (_SPACE_MEM[cols[op + ".space"]], cols[op + ".addr"], cols[op + ".addr"] + nbytes, write, used, None)


def _dma(mem, base, rows, row_bytes, stride, write: bool):
    pitch = np.where(stride == 0, row_bytes, stride)
    return (mem, base, base + (rows - 1) * pitch + row_bytes, write, True, np.stack([rows, row_bytes, pitch], axis=1))


def _ranges_load(c, config):
    return [_dma(MEM_DRAM, c["dram"], c["rows"], c["row_bytes"], c["dram_stride"], False),
            _dma(_SPACE_MEM[c["sp.space"]], c["sp.addr"], c["rows"], c["row_bytes"], c["sp_stride"], True)]


def _ranges_store(c, config):
    return [_dma(_SPACE_MEM[c["sp.space"]], c["sp.addr"], c["rows"], c["row_bytes"], c["sp_stride"], False),
            _dma(MEM_DRAM, c["dram"], c["rows"], c["row_bytes"], c["dram_stride"], True)]


def _table_entries(config, sym):
    g = config.lut.group
    return np.where(sym != 0, 1 << (g - 1), 1 << g)


def _ranges_lut_build(c, config):
    g = config.lut.group
    entries = (c["k"] // g) * c["rows"] * _table_entries(config, c["sym"]) * _DTYPE_SIZE[c["dst.dtype"]]
    params = (c["k"] // np.maximum(c["qgroup"], 1)) * 2 * c["rows"] * 4
    return [_span(c, "src", c["rows"] * c["k"] * _DTYPE_SIZE[c["src.dtype"]], False),
            _span(c, "dst", ((entries + 3) & ~3) + params, True)]


def _ranges_lut_mma(c, config):
    g = config.lut.group
    tables = (c["k"] // g) * c["m"] * _table_entries(config, c["sym"]) * _DTYPE_SIZE[c["tables.dtype"]]
    dst = c["m"] * c["n"] * _DTYPE_SIZE[c["dst.dtype"]]
    accum = c["accum"] != 0
    return [_span(c, "tables", tables, False), _span(c, "weights", c["bits"] * c["n"] * c["k"] // 8, False),
            _span(c, "dst", dst, False, accum), _span(c, "dst", dst, True)]


def _ranges_mma(c, config):
    dst = c["m"] * c["n"] * _DTYPE_SIZE[c["dst.dtype"]]
    accum = c["accum"] != 0
    return [_span(c, "a", c["m"] * c["k"] * _DTYPE_SIZE[c["a.dtype"]], False),
            _span(c, "b", c["k"] * c["n"] * _DTYPE_SIZE[c["b.dtype"]], False),
            _span(c, "dst", dst, False, accum), _span(c, "dst", dst, True)]


def vec_operand_counts(bcast: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Elements a VEC source reads, per broadcast mode (tile, col, row, scalar)."""
    return np.choose(bcast, [rows * cols, cols, rows, np.ones_like(rows)])


def _ranges_vec(c, config):
    rows, ncols = c["rows"], c["cols"]
    deq = c["func"] == int(VecFunc.DEQ)
    out = []
    for op in ("a", "b", "c"):
        count = vec_operand_counts(c[op + ".bcast"], rows, ncols)
        if op == "b":
            count = np.where(deq, 2 * ncols, count)
        elif op == "c":
            count = np.where(deq, 2 * rows, count)
        out.append(_span(c, op, count * _DTYPE_SIZE[c[op + ".dtype"]], False, c[op + ".space"] != 0))
    dst = rows * ncols * _DTYPE_SIZE[c["dst.dtype"]]
    out += [_span(c, "dst", dst, False, c["accum"] != 0), _span(c, "dst", dst, True)]
    return out


def _ranges_red(c, config):
    dst = c["rows"] * _DTYPE_SIZE[c["dst.dtype"]]
    return [_span(c, "src", c["rows"] * c["cols"] * _DTYPE_SIZE[c["src.dtype"]], False),
            _span(c, "dst", dst, False, c["accum"] != 0), _span(c, "dst", dst, True)]


_RANGE_BUILDERS = {Load: _ranges_load, Store: _ranges_store, LutBuild: _ranges_lut_build, LutMma: _ranges_lut_mma,
                   Mma: _ranges_mma, Vec: _ranges_vec, Red: _ranges_red}
