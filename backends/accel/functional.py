"""The functional model: one function per instruction, over NumPy views of the memories.

`prepare` turns a validated program into `handlers[i]()`, each performing instruction i on
the simulator's memories (DRAM, scratchpad, accumulator buffer: flat byte arrays), so that
the hot loop is one call per instruction. The functions are made once per program from the
instruction columns, shared by instructions that are equal, and take their work from what is
static: operand versions (`dataflow.read_versions`) say when two reads see the same bytes,
which is how integer MMAs share one BLAS call and LUT.MMAs one byte-sum table. Integer
LUT.MMA lookups and VEC.DEQ epilogues run through the TVM-compiled kernels of `kernels.py`
where they apply (the same bits as the NumPy code here). An instruction function raises
`timing.Hazard` for what needs data to detect (accumulator overflow, NaN to integer).
"""

from __future__ import annotations

import heapq
import operator
from functools import lru_cache, partial
from itertools import repeat
from typing import Callable, NamedTuple

import numpy as np

from lutc.backends.accel import kernels
from lutc.backends.accel.analysis import Analysis, is_strided
from lutc.backends.accel.columns import distinct_rows
from lutc.backends.accel.config import AccelConfig
from lutc.backends.accel.dataflow import read_versions
from lutc.backends.accel.isa import (
    Bcast, DType, Load, LutBuild, LutMma, Mma, Operand, Red, RedFunc, Space, Store, Vec, VecFunc,
)
from lutc.backends.accel.kernels import COPY_DRAM_SP, COPY_SP_DRAM, RUN_CAST, RUN_COPY, RUN_DEQ, RUN_LUT_MMA, RUN_OP_FIELDS, SimKernels
from lutc.backends.accel.lut import (
    TABLE_QMAX, build_tables, lut_mma_bound, make_lut_mma, bytewise_indices, bytewise_table, table_block_layout, table_entries,
    weight_plane_bytes,
)
from lutc.backends.accel.program import MEM_ACC, MEM_DRAM, MEM_SP
from lutc.backends.accel.timing import Hazard

_MEM_OF_SPACE = (MEM_SP, MEM_SP, MEM_ACC)  # by Space code (NONE never reaches a body)
_NP_OF_DTYPE = tuple(d.np for d in DType)  # by DType code


class Views:
    """The memories; typed views of them, shared by the instructions that name the same operand;
    scratch buffers (instructions run one at a time, so one per shape suffices); caches."""

    def __init__(self, mems: list[np.ndarray]):
        self.mems = mems
        self._views: dict[tuple, np.ndarray] = {}
        self._scratch: dict[tuple, np.ndarray] = {}
        self.table_cache: dict = {}  # LUT tables prepared for lookup, by content (see lut.py)
        self.converted: dict = {}  # MMA operands converted for BLAS, by (range, version)
        self._flat: dict = {}  # whole memories as typed FFI tensors, for the compiled kernels
        self.runs: Runs | None = None  # what the compiled executor runs (see prepare)

    def get(self, mem: int, addr: int, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        key = (mem, addr, dtype, shape)
        v = self._views.get(key)
        if v is None:
            v = self._views[key] = np.ndarray(shape, dtype=dtype, buffer=self.mems[mem], offset=addr)
        return v

    def operand(self, op: Operand, shape: tuple[int, ...]) -> np.ndarray:
        return self.get(_MEM_OF_SPACE[op.space], op.addr, _NP_OF_DTYPE[op.dtype], shape)

    def flat(self, mem: int, dtype: np.dtype, compiled: SimKernels):
        """Memory `mem` as one flat array of `dtype`, as a kernel argument (typed operands are
        aligned to their size, so an operand at byte addr is element addr // itemsize)."""
        key = (mem, dtype.num)
        t = self._flat.get(key)
        if t is None:
            raw = self.mems[mem]
            flat = raw[:raw.size - raw.size % dtype.itemsize].view(dtype)
            # An empty memory (a program with no DRAM tensors) is never read or written; the FFI
            # refuses empty arrays, so the kernels get one unused element instead.
            t = self._flat[key] = compiled.tensor(flat if flat.size else np.zeros(1, dtype))
        return t

    def scratch(self, shape: tuple[int, ...], slot: int = 0, dtype=np.float32) -> np.ndarray:
        key = (shape, slot, dtype)
        buf = self._scratch.get(key)
        if buf is None:
            buf = self._scratch[key] = np.empty(shape, dtype=dtype)
        return buf


class Runs:
    """The instructions the compiled executor runs (`kernels.executor`): integer LUT.MMAs
    that need no overflow check, VEC.DEQs from the accumulator into f32 scratchpad tiles,
    DMAs, and the stores of integer MMAs whose products cannot overflow. Per instruction: its
    executor (an index into `executors`; -1: not run by one), op row and immediate, made from
    the columns with NumPy rather than a function per instruction; what must run just before
    an instruction's row (`before`: the fill of a byte-sum table, called before its first
    reader; an MMA batch's BLAS products, before its first store); the tables' arenas; the
    arena of f32 MMA products. `plan` makes consecutive instructions of one executor one call."""

    ANY = -2  # an executor id for rows every executor runs (DMAs): they join the run around them

    def __init__(self, n: int):
        self.executor = np.full(n, -1, dtype=np.int64)
        self.rows = np.zeros((n, RUN_OP_FIELDS), dtype=np.int64)
        self.imm = np.zeros(n, dtype=np.float32)
        self.executors: list[tuple[np.dtype, np.dtype]] = []  # (byte-sum table type, accumulator type)
        self.before: dict[int, Callable] = {}  # instruction -> what runs just before its row
        self.arenas: dict[np.dtype, np.ndarray] = {}  # table type -> every table, back to back
        self.products = np.zeros(1, dtype=np.float32)  # MMA batch products (see _prepare_mmas)

    def executor_id(self, table: np.dtype, acc: np.dtype) -> int:
        if (table, acc) not in self.executors:
            self.executors.append((table, acc))
        return self.executors.index((table, acc))


def plan(handlers: list, order: list[int], views: Views, compiled: SimKernels | None) -> list[tuple[int, Callable]]:
    """(instruction, function) pairs to call, in `order`: each instruction's handler, except
    that consecutive instructions of one executor are one call over their op rows (a table
    fill or BLAS call, called first, starts a new run). Runs are found with NumPy; the loop is per call."""
    runs = views.runs
    if runs is None or not (runs.executor != -1).any():
        return [(i, handlers[i]) for i in order if handlers[i] is not None]
    order = np.asarray(order, dtype=np.int64)
    executor = _join_runs(runs, runs.executor[order])
    in_run = executor >= 0
    has_before = np.zeros(len(runs.executor), dtype=bool)
    has_before[list(runs.before)] = True
    new_run = np.ones(len(order), dtype=bool)
    new_run[1:] = executor[1:] != executor[:-1]
    events = np.flatnonzero(~in_run | (in_run & (new_run | has_before[order])))
    lengths = np.empty_like(events)  # up to the next event (np.diff(append=) costs several calls)
    lengths[:-1] = events[1:] - events[:-1]
    lengths[-1:] = len(order) - events[-1:]
    first_row = np.cumsum(in_run) - 1
    ops = compiled.tensor(np.ascontiguousarray(runs.rows[order[in_run]]))
    imm = compiled.tensor(np.ascontiguousarray(runs.imm[order[in_run]]))
    flat = partial(views.flat, compiled=compiled)
    calls = [partial(compiled.executor(table, acc), flat(MEM_DRAM, _U8), flat(MEM_SP, _U8), flat(MEM_ACC, _U8),
                     flat(MEM_ACC, acc), flat(MEM_SP, _F32), compiled.tensor(runs.arenas.get(table, np.zeros(1, table))),
                     compiled.tensor(runs.products), ops, imm)
             for table, acc in runs.executors]
    out: list = []
    append, before = out.append, runs.before
    for i, e, first, length in zip(order[events].tolist(), executor[events].tolist(), first_row[events].tolist(),
                                   lengths.tolist()):
        if e < 0:
            h = handlers[i]
            if h is not None:
                append((i, h))
        else:
            if i in before:
                append((i, before[i]))
            append((i, partial(calls[e], first, first + length)))
    return out


def _join_runs(runs: Runs, executor: np.ndarray) -> np.ndarray:
    """Executor ids in execution order, each ANY row taking the one before it (leading ones: the first
    after them; all ANY: a default executor), so that DMAs extend the runs around them."""
    anywhere = executor == Runs.ANY
    if not anywhere.any():
        return executor
    known = executor >= 0
    if not known.any():
        return np.where(anywhere, runs.executor_id(_I32, _I32), executor)
    last = np.where(known, np.arange(len(executor)), -1)
    np.maximum.accumulate(last, out=last)
    last[last < 0] = np.argmax(known)
    return np.where(anywhere, executor[last], executor)


# Below this many LUT.MMA and VEC.DEQ instructions, NumPy finishes sooner than loading the
# compiled kernels (~0.2 s, once per process) takes.
COMPILED_MIN = 64


def kernels_for(an: Analysis, compiled: bool | None, fail) -> SimKernels | None:
    """The compiled kernels this run uses (see Simulator), or None for NumPy throughout."""
    if compiled is False:
        return None
    if compiled is None and not kernels.is_loaded():
        vec = an.groups.get(Vec)
        deqs = 0 if vec is None else int(np.count_nonzero(an.columns[Vec]["func"] == int(VecFunc.DEQ)))
        if len(an.groups.get(LutMma, ())) + deqs < COMPILED_MIN:
            return None
    found = kernels.sim_kernels()
    if found is None and compiled:
        raise fail(None, f"the compiled simulator kernels are unavailable ({kernels.unavailable_reason})")
    return found


def prepare(an: Analysis, views: Views, pos: np.ndarray, compiled: SimKernels | None = None) -> list:
    """handlers[i]() performs instruction i; None for SYNC and FINISH, and for the LUT.MMAs and
    VEC.DEQs that `views.runs` gives the compiled executor (see `plan`). `compiled`: the
    kernels integer LUT.MMAs and VEC.DEQs run through where they apply."""
    handlers: list = [None] * an.n
    views.runs = Runs(an.n) if compiled else None
    if views.runs is not None:
        _run_dmas(an, views.runs)
    else:
        _prepare_dmas(an, views.mems, handlers)
    # Compute: a closure per distinct instruction (equal field columns), over shared views.
    # Distinct rows come from the columns, not from hashing instruction objects (slow).
    instruction = an.program.instruction
    for cls in (LutBuild, LutMma, Mma, Vec, Red):
        idx = an.groups.get(cls)
        if idx is None:
            continue
        cols = an.columns[cls]
        todo = idx
        if cls is Vec:  # VEC.DEQ epilogues differ only in addresses: built in bulk, no closure each
            deq = cols["func"] == int(VecFunc.DEQ)
            if deq.any() and views.runs is not None:  # those the executor runs need no function
                run = np.zeros(len(idx), dtype=bool)
                run[deq] = _run_deqs(idx[deq], {name: c[deq] for name, c in cols.items()}, views.runs, compiled)
                idx, cols, deq = idx[~run], {name: c[~run] for name, c in cols.items()}, deq[~run]
                todo = idx
            if deq.any():  # once per distinct DEQ (equal columns), shared like the closures below
                deq_cols = {name: c[deq] for name, c in cols.items()}
                first, which = distinct_rows(deq_cols)
                made: list = [None] * len(first)
                _prepare_deq(range(len(first)), {name: c[first] for name, c in deq_cols.items()}, views, made, compiled)
                for i, w in zip(idx[deq].tolist(), which.tolist()):
                    handlers[i] = made[w]
                todo = idx[~deq]
                cols = {name: c[~deq] for name, c in cols.items()}
        if not len(todo):
            continue
        if cls is Mma:  # prepared from the columns; their functions take operand versions
            _prepare_mmas(an, todo, cols, views, pos, handlers, compiled)
            continue
        if cls is LutMma:
            _prepare_lut_mmas(an, todo, cols, views, pos, handlers, compiled)
            continue
        make = _BODIES[cls]
        first, which = distinct_rows(cols)
        made = [make(instruction(i), views, an.config) for i in todo[first].tolist()]
        for i, w in zip(todo.tolist(), which.tolist()):
            handlers[i] = made[w]
    return handlers


def _prepare_dmas(an: Analysis, mems: list[np.ndarray], handlers: list) -> None:
    """handlers[i] for every LOAD and STORE. A DMA runs no Python code of ours: a contiguous one is a
    memoryview slice assignment (a memmove, a fifth of np.copyto's per-call cost), a strided one
    an assignment between two views (`dst[...] = src`: half of np.copyto's cost, which goes
    through a Python-level dispatcher). The contiguous ones are made by `map`, per pair of memories:
    thousands of them, so no Python loop per DMA."""
    raw = [memoryview(mem) for mem in mems]
    idx = np.concatenate([an.groups[cls] for cls in (Load, Store) if cls in an.groups] or [np.zeros(0, np.int64)])
    src_mem, dst_mem = an.mem[idx, 0], an.mem[idx, 1]
    strided = is_strided(an.pattern[idx, 0]) | is_strided(an.pattern[idx, 1])
    two_d = idx[strided]
    made = map(partial, repeat(operator.setitem), _pattern_views(mems, an, two_d, 1), repeat(Ellipsis),
               _pattern_views(mems, an, two_d, 0))
    for i, handler in zip(two_d.tolist(), made):
        handlers[i] = handler
    for sm, dm in set(zip(src_mem[~strided].tolist(), dst_mem[~strided].tolist())):
        sel = idx[~strided & (src_mem == sm) & (dst_mem == dm)]
        made = map(partial, repeat(raw[dm].__setitem__), map(slice, an.lo[sel, 1].tolist(), an.hi[sel, 1].tolist()),
                   map(raw[sm].__getitem__, map(slice, an.lo[sel, 0].tolist(), an.hi[sel, 0].tolist())))
        for i, handler in zip(sel.tolist(), made):
            handlers[i] = handler


def _run_dmas(an: Analysis, runs: Runs) -> None:
    """Every LOAD and STORE as an executor row (any executor): direction, byte offsets, rows, row
    bytes, strides; a DMA contiguous on both sides as one row."""
    idx = np.concatenate([an.groups[cls] for cls in (Load, Store) if cls in an.groups] or [np.zeros(0, np.int64)])
    src_mem, dst_mem = an.mem[:, 0][idx], an.mem[:, 1][idx]  # column views first: see analysis.analyze
    src, dst = an.pattern[idx, 0], an.pattern[idx, 1]
    rows, row_bytes = src[:, 0].copy(), src[:, 1].copy()
    contiguous = ~(is_strided(src) | is_strided(dst))
    row_bytes[contiguous] *= rows[contiguous]
    rows[contiguous] = 1
    direction = np.where(src_mem == MEM_DRAM, dst_mem - MEM_SP + COPY_DRAM_SP, src_mem - MEM_SP + COPY_SP_DRAM)
    runs.executor[idx] = Runs.ANY
    runs.rows[idx] = np.stack([np.full(len(idx), RUN_COPY), direction, an.lo[:, 0][idx], an.lo[:, 1][idx], rows,
                               row_bytes, src[:, 2], dst[:, 2]], axis=1)


def _pattern_views(mems: list[np.ndarray], an: Analysis, idx: np.ndarray, slot: int) -> list[np.ndarray]:
    """Range `slot` of instructions `idx` as (rows, row_bytes) byte views, strided or not. Ranges with
    the same memory and pattern are rows of one window view (one view per start byte), so each
    is a plain index into it, made by `map` (no Python frame per range)."""
    mem, pattern, lo = an.mem[idx, slot], an.pattern[idx, slot], an.lo[idx, slot]
    first, which = distinct_rows({"mem": mem, "rows": pattern[:, 0], "row_bytes": pattern[:, 1], "stride": pattern[:, 2]})
    windows = []
    for m, (rows, row_bytes, stride) in zip(mem[first].tolist(), pattern[first].tolist()):
        buf, span = mems[m], (rows - 1) * stride + row_bytes
        windows.append(np.ndarray((len(buf) - span + 1, rows, row_bytes), dtype=buf.dtype, buffer=buf, strides=(1, stride, 1)))
    if len(windows) == 1:  # the usual case: one pattern
        return list(map(windows[0].__getitem__, lo.tolist()))
    return [windows[w][start] for w, start in zip(which.tolist(), lo.tolist())]


# ---------------------------------------------------------------------------------------
# Instruction bodies
# ---------------------------------------------------------------------------------------

_I8, _U8, _I32, _I64, _F32, _F64 = (np.dtype(t) for t in (np.int8, np.uint8, np.int32, np.int64, np.float32, np.float64))
_INT_RANGE = {np.dtype(np.int8): (-128, 127), np.dtype(np.int16): (-32768, 32767),
              np.dtype(np.int32): (-(1 << 31), (1 << 31) - 1), np.dtype(np.uint8): (0, 255)}


def _float_bounds(lo: int, hi: int) -> tuple[np.float32, np.float32]:
    """The f32 values nearest inside [lo, hi]: f32(2^31 - 1) rounds up to 2^31, which no int32 holds."""
    flo, fhi = np.float32(lo), np.float32(hi)
    return (np.nextafter(flo, np.float32(0)) if flo < lo else flo), (np.nextafter(fhi, np.float32(0)) if fhi > hi else fhi)


_FLOAT_CLIP = {dtype: _float_bounds(lo, hi) for dtype, (lo, hi) in _INT_RANGE.items()}


def _store_result(dst: np.ndarray, result: np.ndarray) -> None:
    """Write a float32 or int64 result into dst: floats cast, ints round-half-even and saturate.
    A float result is a temporary of the caller's and is rounded in place."""
    if dst.dtype.kind in "iu":
        # np.maximum / np.minimum rather than np.clip: the same result, a third of the per-call cost.
        if result.dtype.kind == "f":
            lo, hi = _FLOAT_CLIP[dst.dtype]
            np.rint(result, out=result)
            np.maximum(result, lo, out=result)
            np.minimum(result, hi, out=result)
            total = np.add.reduce(result, axis=None)
            if total != total:  # clipped values are finite, so only a NaN makes the sum NaN
                raise Hazard(f"NaN converted to {dst.dtype.name}")
        else:
            lo, hi = _INT_RANGE[dst.dtype]
            result = np.minimum(np.maximum(result, lo), hi)
    dst[...] = result


def _body_lut_build(instr: LutBuild, views: Views, config: AccelConfig):
    g = config.lut.group
    x = views.operand(instr.src, (instr.rows, instr.k))
    _, params_at, _ = table_block_layout(instr.rows, instr.k, g, instr.sym, instr.dst.dtype.size, instr.qgroup)
    entries = views.get(MEM_SP, instr.dst.addr, instr.dst.dtype.np, (instr.k // g, instr.rows, table_entries(g, instr.sym)))
    params = views.get(MEM_SP, instr.dst.addr + params_at, np.dtype(np.float32), (instr.k // instr.qgroup, 2, instr.rows))
    tdtype, sym, qgroup = instr.dst.dtype.np, instr.sym, instr.qgroup

    def body() -> None:
        try:
            e, p = build_tables(x, g, sym, tdtype, qgroup)
        except ValueError as err:
            raise Hazard(str(err)) from None
        entries[...] = e
        params[...] = p

    return body


def _overflow(dtype: np.dtype, value: np.ndarray, what: str) -> Hazard:
    lo, hi = _INT_RANGE[dtype]
    bad = value[(value < lo) | (value > hi)]
    return Hazard(f"{what} overflows the {dtype.name} accumulator: {int(bad.flat[0])} is outside [{lo}, {hi}]")


_LUT_MMA_FIELDS = ("m", "n", "k", "bits", "sym", "accum", "tables.addr", "tables.dtype", "weights.addr", "dst.space",
                   "dst.addr", "dst.dtype")


def _prepare_lut_mmas(an: Analysis, idx: np.ndarray, cols: dict, views: Views, pos: np.ndarray, handlers: list,
                      compiled: SimKernels | None) -> None:
    """handlers[i] for the LUT.MMAs `idx` (field columns `cols`), made once per distinct LUT.MMA
    from the columns (no instruction object). An integer LUT.MMA looks up a byte-sum table made
    from the version of its table bytes (read_versions: the last write before the read is
    static). The first reader of each version, in execution order, fills that table, in a
    buffer made here; every later reader only looks up."""
    versions = read_versions(an, pos, idx, 0, compiled)
    if views.runs is not None:  # those the executor runs need no function
        run = _run_lut_mmas(an, idx, cols, versions, pos, views, compiled)
        idx, cols, versions = idx[~run], {name: c[~run] for name, c in cols.items()}, versions[~run]
        if not len(idx):
            return
    first, which = distinct_rows(cols)
    made = [_lut_mma_function(views, compiled, an.config.lut.group, *row)
            for row in zip(*(cols[name][first].tolist() for name in _LUT_MMA_FIELDS))]
    by_pos = np.argsort(pos[idx], kind="stable")
    tables: dict = {}  # (table key, version) -> the byte-sum table its readers look up
    readers: dict = {}  # (distinct LUT.MMA, table key, version) -> their handler after the first reader
    for i, w, v in zip(idx[by_pos].tolist(), which[by_pos].tolist(), versions[by_pos].tolist()):
        f = made[w]
        if not isinstance(f, _IntLutMma):
            handlers[i] = f
            continue
        key = (f.table_key, v)
        if key not in tables:  # the first reader of this version: fills the table, then looks up
            fill, table = tables[key] = f.new_table()
            handlers[i] = partial(_then, fill, f.handler(table))
            continue
        handler = readers.get((w, key))
        if handler is None:
            handler = readers[(w, key)] = f.handler(tables[key][1])
        handlers[i] = handler


def _run_lut_mmas(an: Analysis, idx: np.ndarray, cols: dict, versions: np.ndarray, pos: np.ndarray, views: Views,
                  compiled: SimKernels) -> np.ndarray:
    """Give the executor the LUT.MMAs `idx` it can run (integer, no overflow check): their op
    rows, and a byte-sum table per version of their table bytes in the arena of its type,
    filled just before its first reader in execution order. Which it took."""
    runs, g = views.runs, an.config.lut.group
    kind_first, kind_of = distinct_rows({name: cols[name] for name in _LUT_MMA_KIND})
    executor, work, itemsize, sums = [], [], [], []  # per kind
    for row in kind_first.tolist():
        k, bits, sym, accum, tables_dtype, dst_dtype = (int(cols[name][row]) for name in _LUT_MMA_KIND)
        dst_type = _NP_OF_DTYPE[dst_dtype]
        if dst_type.kind == "i":
            check, work_type, _, _, kernel, fill = _int_lut_mma_kind(compiled, g, k, bits, bool(sym), bool(accum),
                                                                     tables_dtype, dst_dtype)
        else:  # float tables: not the executor's
            check, work_type, kernel, fill = True, None, None, None
        runnable = kernel and not check and compiled.executor(work_type, dst_type)
        executor.append(runs.executor_id(work_type, dst_type) if runnable else -1)
        work.append(work_type)
        itemsize.append(dst_type.itemsize)
        sums.append(fill)
    executor = np.array(executor)
    taken = executor[kind_of] >= 0
    sel = np.flatnonzero(taken)
    if not len(sel):
        return taken
    sel = sel[np.argsort(pos[idx[sel]])]  # execution order: a table's first reader comes first
    c = {name: cols[name][sel] for name in ("m", "n", "k", "bits", "tables.addr", "weights.addr", "dst.addr")}
    kind = kind_of[sel]
    # One table per (table bytes, shape, version): its size and place in its type's arena.
    t_first, t_of = distinct_rows({"tables.addr": c["tables.addr"], "m": c["m"], "kind": kind, "version": versions[sel]})
    t_kind = kind[t_first]
    t_size = c["m"][t_first] * c["bits"][t_first] * (c["k"][t_first] // 8) * 256
    t_offset = np.zeros(len(t_first), dtype=np.int64)
    t_work = [work[k] for k in t_kind.tolist()]
    for dtype in set(t_work):
        these = np.array([w == dtype for w in t_work])
        t_offset[these] = np.cumsum(t_size[these]) - t_size[these]
        runs.arenas[dtype] = np.empty(int(t_size[these].sum()), dtype=dtype)
    stored = views.flat(MEM_SP, _I8, compiled)
    for r, k, offset, size in zip(t_first.tolist(), t_kind.tolist(), t_offset.tolist(), t_size.tolist()):
        shape = (int(c["m"][r]), int(c["bits"][r]), int(c["k"][r]) // 8, 256)
        table = runs.arenas[work[k]][offset:offset + size].reshape(shape)
        runs.before[int(idx[sel[r]])] = partial(sums[k], stored, int(c["tables.addr"][r]), compiled.tensor(table))
    ins = idx[sel]
    runs.executor[ins] = executor[kind]
    runs.rows[ins] = np.stack([np.full(len(ins), RUN_LUT_MMA), c["weights.addr"], c["dst.addr"] // np.array(itemsize)[kind],
                               c["m"], c["n"], c["bits"], c["k"] // 8, t_offset[t_of]], axis=1)
    return taken


_LUT_MMA_KIND = ("k", "bits", "sym", "accum", "tables.dtype", "dst.dtype")  # what selects the arithmetic


def _then(first, second) -> None:
    first()
    second()


class _IntLutMma(NamedTuple):
    """An integer LUT.MMA (see _prepare_lut_mmas): `lookup(table)` sums into dst, or into an
    int64 tile that `store()` checks and stores; `new_table()` -> (fill, table): a byte-sum
    table buffer and what fills it from the current table bytes."""
    table_key: tuple
    new_table: Callable
    lookup: partial
    store: partial | None

    def handler(self, table):
        lookup = partial(self.lookup, table)  # of a partial: one flat partial, no Python frame of ours
        return lookup if self.store is None else partial(_then, lookup, self.store)


def _lut_mma_function(views: Views, compiled: SimKernels | None, g: int, m: int, n: int, k: int, bits: int, sym: int,
                      accum: int, tables_addr: int, tables_dtype: int, weights_addr: int, dst_space: int, dst_addr: int,
                      dst_dtype: int):
    sym, accum = bool(sym), bool(accum)
    table_type, dst_type = _NP_OF_DTYPE[tables_dtype], _NP_OF_DTYPE[dst_dtype]
    weights = partial(views.get, MEM_SP, weights_addr, _U8, (weight_plane_bytes(n, k, bits),))
    tables = partial(views.get, MEM_SP, tables_addr, table_type, (k // g, m, table_entries(g, sym)))
    dst = partial(_operand_view, views, dst_space, dst_addr, dst_dtype, (m, n))
    if dst_type.kind != "i":
        return _lut_mma_float(tables(), weights(), dst(), m, n, k, bits, g, sym, accum, views.table_cache)
    # Integer tables: exact sums, so the lookups can go a whole weight byte at a time, through a
    # byte-sum table (lut.bytewise_table) per version of the table bytes.
    check, work, lo, hi, kernel, sums = _int_lut_mma_kind(compiled, g, k, bits, sym, accum, tables_dtype, dst_dtype)
    out = views.scratch((m, n), 2, _I64) if check else None
    store = None if out is None else partial(_checked_store, out, accum, dst(), lo, hi)
    shape = (m, bits, k // 8, 256)
    kernel = kernel if check else None  # the executor runs the unchecked ones (_run_lut_mmas)
    if kernel:  # into an int64 tile, which the store checks
        lookup = partial(kernel, views.flat(MEM_SP, _U8, compiled), weights_addr, compiled.tensor(out.reshape(-1)), 0,
                         m, n, bits, k // 8)
        new_table = partial(_new_table, partial(sums, views.flat(MEM_SP, _I8, compiled), tables_addr), shape, work,
                            compiled.tensor)
    else:
        fill = partial(bytewise_table, tables(), m, k, bits, g, sym, work)
        planes, base, idx3, idx2 = bytewise_indices(weights(), n, k, bits, views.scratch((bits, k // 8, n), 0, np.intp))
        lookup = partial(_bytewise_lookup, planes, base, idx3, idx2, views.scratch((m, bits * (k // 8), n), 1, work),
                         dst() if out is None else out)
        new_table = partial(_new_table, fill, shape, work, None)
    # one key per table range, shape and form (array or FFI tensor)
    return _IntLutMma((tables_addr, m, k, bits, sym, tables_dtype, bool(kernel)), new_table, lookup, store)


@lru_cache(maxsize=None)
def _int_lut_mma_kind(compiled: SimKernels | None, g: int, k: int, bits: int, sym: bool, accum: bool, tables_dtype: int,
                      dst_dtype: int) -> tuple:
    """What the integer LUT.MMAs of one kind share: (check, work type, lo, hi, lookup kernel,
    byte-sum kernel); both kernels None where they do not apply."""
    table_type, dst_type = _NP_OF_DTYPE[tables_dtype], _NP_OF_DTYPE[dst_dtype]
    lo, hi = _INT_RANGE[dst_type]
    # int8 entries have magnitude <= 128, so no sum exceeds `bound`: small enough tiles cannot
    # overflow (no check), and int32 lookups (half the bytes of int64) are exact below 2^31.
    bound = lut_mma_bound(TABLE_QMAX + 1, k, bits, g)
    check = accum or bound > hi
    work = _I32 if bound <= _INT_RANGE[_I32][1] else _I64
    # |every partial sum| <= the static bound <= the accumulator's maximum: summing straight into
    # dst is exact (the same integers as an int64 sum), with no temporary. Otherwise into int64,
    # then checked and stored.
    kernel = compiled and compiled.lut_mma(work, _I64 if check else dst_type)
    sums = compiled and table_type == np.int8 and compiled.byte_sums(work, g, sym)
    return (check, work, lo, hi) + ((kernel, sums) if kernel and sums else (None, None))


def _new_table(fill: partial, shape: tuple[int, int, int, int], dtype: np.dtype, tensor):
    """(fill, table): a byte-sum table buffer of `shape` (rows, planes, k/8, 256), as the lookup
    takes it ((rows, planes * k/8 * 256); an FFI tensor for the kernels), and `fill()`."""
    buffer = np.empty(shape, dtype=dtype)
    flat = buffer.reshape(shape[0], -1)
    if tensor is None:
        return partial(fill, out=buffer), flat
    return partial(fill, tensor(buffer)), tensor(flat)


def _lut_mma_float(tables, weights, dst, m, n, k, bits, g, sym, accum, cache):
    compute = make_lut_mma(tables, weights, m, n, k, bits, g, sym, cache)

    def body_float() -> None:
        res = compute()
        if accum:
            res = dst.astype(np.float32) + res
        dst[...] = res

    return body_float


def _bytewise_lookup(planes, base, idx3, idx2, looked, out, tables) -> None:
    """out = the sum of every weight byte's byte-sum table entry (lut.make_lut_mma_bytewise), in out's type."""
    np.add(planes, base, out=idx3)
    tables.take(idx2, axis=1, out=looked, mode="clip")  # indices are in range (bytes < 256): no check, no buffer
    np.add.reduce(looked, axis=1, out=out)


def _checked_store(out: np.ndarray, accum: bool, dst: np.ndarray, lo: int, hi: int) -> None:
    if accum:
        out += dst
    if out.min() < lo or out.max() > hi:
        raise _overflow(dst.dtype, out, "LUT.MMA result")
    dst[...] = out


_EXACT_F32, _EXACT_F64 = 1 << 24, 1 << 53  # integers of magnitude up to these are exact in f32 / f64


def _operand_view(views: Views, space: int, addr: int, dtype: int, shape: tuple[int, int]) -> np.ndarray:
    return views.get(_MEM_OF_SPACE[space], addr, _NP_OF_DTYPE[dtype], shape)


def _prepare_mmas(an: Analysis, idx: np.ndarray, cols: dict, views: Views, pos: np.ndarray, handlers: list,
                  compiled: SimKernels | None) -> None:
    """handlers[i] for the MMAs `idx` (field columns `cols`).

    Integer MMAs reading the same B range with the same version (the last write before the read,
    see read_versions) form a batch, in execution order, as long as each one's A bytes are final
    before the batch's first MMA runs (its A version comes earlier): that first MMA computes every
    product of the batch with one BLAS call, and each MMA, at its own time, only accumulates and
    stores its rows (a GEMM's m-tiles sharing a B tile cost one call instead of one each). The
    products are exact integers (see _mma_work_dtype), so batching changes no bit; overflow is
    still checked by the MMA that stores it, at its own time.
    """
    versions = read_versions(an, pos, np.concatenate([idx, idx]), np.repeat([0, 1], len(idx)), compiled)
    a_versions, b_versions = versions[:len(idx)], versions[len(idx):]
    integer = _IS_INT_DTYPE[cols["dst.dtype"]]
    for r in np.flatnonzero(~integer).tolist():  # float MMAs: one at a time
        m, n, k, transpose_b = (int(cols[name][r]) for name in ("m", "n", "k", "transpose_b"))
        a, b, dst = (_operand_view(views, *(int(cols[f"{op}.{field}"][r]) for field in ("space", "addr", "dtype")), shape)
                     for op, shape in (("a", (m, k)), ("b", (n, k) if transpose_b else (k, n)), ("dst", (m, n))))
        handlers[int(idx[r])] = _body_mma_float(a, b, dst, bool(transpose_b), bool(cols["accum"][r]))
    rows = np.flatnonzero(integer)
    if not len(rows):
        return
    keys = {name: cols[name][rows] for name in _MMA_BATCH_KEY}
    keys["b.version"] = b_versions[rows]
    _, key = distinct_rows(keys)  # MMAs with equal keys read the same B bytes
    where = pos[idx]
    rows = rows[np.lexsort((where[rows], key))]  # by key, each group in execution order
    batches = _split_batches(key[rows], where[rows], a_versions[rows])
    # Per MMA in batch order; per batch, whether its A tiles lie back to back.
    c = {name: cols[name][rows] for name in _MMA_FIELDS}
    a_size = c["m"] * c["k"] * _DTYPE_ITEMSIZE[c["a.dtype"]]
    adjacent = (np.diff(c["a.addr"]) == a_size[:-1]) & (np.diff(c["a.space"]) == 0)  # row r + 1 follows row r
    breaks = np.concatenate([[0], np.cumsum(~adjacent)])
    first, stop = (np.array(v, dtype=np.int64) for v in zip(*batches))
    stacked = (breaks[stop - 1] == breaks[first]).tolist()
    bound = c["k"] * _MAGNITUDE[c["a.dtype"]] * _MAGNITUDE[c["b.dtype"]]  # the largest |product| entry
    # A plain store needs no check: nothing to accumulate, and no product can overflow dst.
    plain = (c["accum"] == 0) & (bound <= _INT_MAX[c["dst.dtype"]])
    # Each batch's products get a place in one arena per work type (the f32 one is the executor's).
    results = _ResultBuffers()
    where = where[rows].tolist()
    works = [_mma_work_dtype(k, _NP_OF_DTYPE[a], _NP_OF_DTYPE[b])
             for k, a, b in zip(*(c[name][first].tolist() for name in ("k", "a.dtype", "b.dtype")))]
    tile = (c["m"] * c["n"]).tolist()
    places = [results.take((hi - lo) * tile[lo], work, where[lo], where[hi - 1]) for (lo, hi), work in zip(batches, works)]
    arenas = results.arenas()
    ins = idx[rows]
    to_executor = _executor_stores(views.runs, compiled, ins, plain & (bound <= _EXACT_F32), c, first, stop, places, arenas)
    plain = plain.tolist()
    c = {name: v.tolist() for name, v in c.items()}
    ins, a_versions, b_versions = ins.tolist(), a_versions[rows].tolist(), b_versions[rows].tolist()
    for (lo, hi), back_to_back, work, place, executed in zip(batches, stacked, works, places, to_executor):
        m, n, k, a_space, a_dtype, b_dtype = (c[name][lo] for name in ("m", "n", "k", "a.space", "a.dtype", "b.dtype"))
        out = arenas[work][place:place + (hi - lo) * m * n].reshape(hi - lo, m, n)
        if back_to_back:  # one view of all A tiles (a GEMM's m-tiles)
            a_sources = (_operand_view(views, a_space, c["a.addr"][lo], a_dtype, ((hi - lo) * m, k)),)
        else:
            a_sources = tuple(_operand_view(views, space, addr, a_dtype, (m, k))
                              for space, addr in zip(c["a.space"][lo:hi], c["a.addr"][lo:hi]))
        b = _operand_view(views, c["b.space"][lo], c["b.addr"][lo], b_dtype, (n, k) if c["transpose_b"][lo] else (k, n))
        compute = partial(_mma_batch, views.converted, work, (tuple(map(id, a_sources)), tuple(a_versions[lo:hi])),
                          a_sources, (id(b), b_versions[lo]), b, bool(c["transpose_b"][lo]), out.reshape(-1, n))
        if executed:  # its stores are executor rows; the products are computed just before the first
            views.runs.before[ins[lo]] = compute
            continue
        dsts = [_operand_view(views, *key) for key in zip(c["dst.space"][lo:hi], c["dst.addr"][lo:hi], c["dst.dtype"][lo:hi],
                                                           repeat((m, n)))]
        if all(plain[lo:hi]):  # plain (exact) casts into the accumulator, made by map
            made = map(partial, repeat(operator.setitem), dsts, repeat(Ellipsis), out)
        else:
            made = (partial(operator.setitem, dst, Ellipsis, res) if is_plain else
                    partial(_mma_store, res, bool(accum), dst, *_INT_RANGE[dst.dtype])
                    for dst, res, is_plain, accum in zip(dsts, out, plain[lo:hi], c["accum"][lo:hi]))
        for i, store in zip(ins[lo:hi], made):
            handlers[i] = store
        handlers[ins[lo]] = partial(_compute_then_store, compute, handlers[ins[lo]])


def _executor_stores(runs: Runs | None, compiled: SimKernels | None, ins: np.ndarray, eligible: np.ndarray, c: dict,
                     first: np.ndarray, stop: np.ndarray, places: list[int], arenas: dict) -> list[bool]:
    """Give the executor the stores of the MMA batches [first, stop) whose every MMA it can store
    (`eligible`: plain stores of f32 products; into the accumulator, of an integer type an
    executor has): a RUN_CAST row each, from the batch's place in the f32 arena. Per batch,
    whether it took them."""
    executor = np.full(len(ins), -1, dtype=np.int64)
    if runs is not None:
        eligible = eligible & (c["dst.space"] == Space.ACC)
        for code in np.unique(c["dst.dtype"][eligible]).tolist():
            acc = _NP_OF_DTYPE[code]
            if acc.kind == "i" and compiled.executor(_I32, acc):
                executor[eligible & (c["dst.dtype"] == code)] = runs.executor_id(_I32, acc)
    whole = np.minimum.reduceat(executor, first) >= 0
    if not whole.any():
        return whole.tolist()
    batch_of = np.repeat(np.arange(len(first)), stop - first)
    offset = np.array(places)[batch_of] + (np.arange(len(ins)) - first[batch_of]) * c["m"] * c["n"]
    sel = np.flatnonzero(whole[batch_of])
    runs.products = arenas[_F32]
    runs.executor[ins[sel]] = executor[sel]
    runs.rows[ins[sel], :4] = np.stack([np.full(len(sel), RUN_CAST), offset[sel],
                                        c["dst.addr"][sel] // _DTYPE_ITEMSIZE[c["dst.dtype"][sel]], c["m"][sel] * c["n"][sel]],
                                       axis=1)
    return whole.tolist()


_MMA_FIELDS = ("m", "n", "k", "accum", "transpose_b", "a.space", "a.addr", "a.dtype", "b.space", "b.addr", "b.dtype",
               "dst.space", "dst.addr", "dst.dtype")
_MMA_BATCH_KEY = ("m", "n", "k", "transpose_b", "a.dtype", "b.space", "b.addr", "b.dtype")
_IS_INT_DTYPE = np.array([_NP_OF_DTYPE[code].kind == "i" for code in range(len(_NP_OF_DTYPE))])
_DTYPE_ITEMSIZE = np.array([_NP_OF_DTYPE[code].itemsize for code in range(len(_NP_OF_DTYPE))], dtype=np.int64)


def _split_batches(key: np.ndarray, where: np.ndarray, a_version: np.ndarray) -> list[tuple[int, int]]:
    """[lo, hi) runs of MMAs (grouped by `key`, in execution order within a group) that form batches:
    a group splits where an MMA's A version is not before the current batch's first MMA."""
    starts = [0] + (np.flatnonzero(key[1:] != key[:-1]) + 1).tolist() + [len(key)]  # where each group begins
    head_pos = np.repeat(where[starts[:-1]], np.diff(starts))
    if (a_version < head_pos).all():  # the usual case: every group is one batch
        return list(zip(starts[:-1], starts[1:]))
    batches = []
    where, a_version = where.tolist(), a_version.tolist()
    for lo, hi in zip(starts[:-1], starts[1:]):
        head = lo
        for r in range(lo + 1, hi):
            if a_version[r] >= where[head]:
                batches.append((head, r))
                head = r
        batches.append((head, hi))
    return batches


class _ResultBuffers:
    """Places for MMA batch products in one arena per type: a place is reused once every MMA of
    the batch holding it has stored (execution positions first..last)."""

    def __init__(self):
        self._free: dict[tuple, list] = {}  # (elements, dtype) -> heap of (last position using it, offset)
        self._size: dict[np.dtype, int] = {}  # dtype -> elements taken so far

    def take(self, count: int, dtype: np.dtype, first: int, last: int) -> int:
        """The element offset of `count` elements free from position `first` until `last`."""
        heap = self._free.setdefault((count, dtype), [])
        if heap and heap[0][0] < first:
            _, offset = heapq.heappop(heap)
        else:
            offset = self._size.get(dtype, 0)
            self._size[dtype] = offset + count
        heapq.heappush(heap, (last, offset))
        return offset

    def arenas(self) -> dict[np.dtype, np.ndarray]:
        return {dtype: np.empty(size, dtype=dtype) for dtype, size in self._size.items()}


def _mma_work_dtype(k: int, a_dtype: np.dtype, b_dtype: np.dtype):
    """The narrowest float type whose BLAS sums of k products of these integers are exact."""
    bound = k * _INT_MAGNITUDE[a_dtype] * _INT_MAGNITUDE[b_dtype]  # the largest |A . B| entry
    if bound > _EXACT_F64:  # pragma: no cover - k beyond 2^37 for 8-bit operands
        raise Hazard(f"MMA with k = {k} is too long to simulate exactly")
    return _F32 if bound <= _EXACT_F32 else _F64


_INT_MAGNITUDE = {dtype: max(-lo, hi) for dtype, (lo, hi) in _INT_RANGE.items()}
# By DType code (0 for floats): the largest magnitude of an integer type, and its largest value.
_MAGNITUDE = np.array([_INT_MAGNITUDE.get(_NP_OF_DTYPE[code], 0) for code in range(len(_NP_OF_DTYPE))], dtype=np.int64)
_INT_MAX = np.array([_INT_RANGE.get(_NP_OF_DTYPE[code], (0, 0))[1] for code in range(len(_NP_OF_DTYPE))], dtype=np.int64)


def _converted(converted: dict, key, sources: tuple[np.ndarray, ...], work) -> np.ndarray:
    """An MMA operand (its row blocks `sources`) converted for BLAS, once per (ranges, versions)."""
    x = converted.get(key)
    if x is None:
        if len(converted) > 256:  # keep memory bounded; a miss only costs a conversion
            converted.pop(next(iter(converted)))
        x = converted[key] = sources[0].astype(work) if len(sources) == 1 else np.concatenate(sources, dtype=work)
    return x


def _mma_batch(converted, work, a_key, a_sources, b_key, b, transpose_b, out) -> None:
    """The products of one batch of integer MMAs, into `out` (exact: see _mma_work_dtype)."""
    bm = _converted(converted, b_key, (b,), work)
    np.matmul(_converted(converted, a_key, a_sources, work), bm.T if transpose_b else bm, out=out)


def _mma_store(res, accum, dst, lo, hi) -> None:
    """One MMA's rows of its batch's products: accumulate, check overflow, store."""
    if accum:
        res = res.astype(np.int64)
        res += dst
    if res.min() < lo or res.max() > hi:
        raise _overflow(dst.dtype, res.astype(np.int64), "MMA result")
    dst[...] = res


def _compute_then_store(compute, store) -> None:
    compute()
    store()


def _body_mma_float(a: np.ndarray, b: np.ndarray, dst: np.ndarray, transpose_b: bool, accum: bool):
    def body_float() -> None:
        bm = b.T if transpose_b else b
        res = a.astype(np.float32) @ bm.astype(np.float32)
        if accum:
            res = dst.astype(np.float32) + res
        dst[...] = res

    return body_float


def _vec_source(views: Views, op: Operand, rows: int, cols: int) -> np.ndarray:
    shape = {Bcast.TILE: (rows, cols), Bcast.COL: (cols,), Bcast.ROW: (rows, 1), Bcast.SCALAR: (1,)}[op.bcast]
    return views.operand(op, shape)


_INT_FUNCS = {VecFunc.MOV, VecFunc.ADD, VecFunc.SUB, VecFunc.MUL, VecFunc.MAX, VecFunc.MIN, VecFunc.FMA, VecFunc.RELU}
_GELU_C = np.float32(np.sqrt(2.0 / np.pi))


def _vec_math(func: VecFunc, a, b, c, imm):
    """The result of a VEC function as a new array (callers may modify it)."""
    if func is VecFunc.MOV:
        return a.copy()
    if func is VecFunc.ADD:
        return a + b
    if func is VecFunc.SUB:
        return a - b
    if func is VecFunc.MUL:
        return a * b
    if func is VecFunc.MAX:
        return np.maximum(a, b)
    if func is VecFunc.MIN:
        return np.minimum(a, b)
    if func is VecFunc.FMA:
        return a * b + c
    if func is VecFunc.MULI:
        return a * imm
    if func is VecFunc.ADDI:
        return a + imm
    if func is VecFunc.RELU:
        return np.maximum(a, a.dtype.type(0))
    if func is VecFunc.EXP:
        return np.exp(a)
    if func is VecFunc.RSQRT:
        return np.float32(1) / np.sqrt(a)
    if func is VecFunc.RECIP:
        return np.float32(1) / a
    if func is VecFunc.SIGMOID:
        return np.float32(1) / (np.float32(1) + np.exp(-a))
    if func is VecFunc.SILU:
        return a / (np.float32(1) + np.exp(-a))
    if func is VecFunc.TANH:
        return np.tanh(a)
    if func is VecFunc.GELU:
        inner = _GELU_C * (a + np.float32(0.044715) * a * a * a)
        return np.float32(0.5) * a * (np.float32(1) + np.tanh(inner))
    raise AssertionError(func)  # pragma: no cover - DEQ is handled by the caller


def _body_vec(instr: Vec, views: Views, config: AccelConfig):
    rows, cols, func, accum = instr.rows, instr.cols, instr.func, instr.accum
    dst = views.operand(instr.dst, (rows, cols))
    imm = np.float32(instr.imm)
    if func is VecFunc.DEQ:
        return _body_deq(instr, views, dst, imm)
    srcs = [_vec_source(views, op, rows, cols) if not op.is_none else None for op in (instr.a, instr.b, instr.c)]
    used = [s for s in srcs if s is not None]
    integer = func in _INT_FUNCS and dst.dtype.kind in "iu" and all(s.dtype.kind in "iu" for s in used)
    work = np.int64 if integer else np.float32
    if func in (VecFunc.MULI, VecFunc.ADDI) and srcs[0].dtype == np.float32 and not accum:
        return _body_vec_immediate(func, srcs[0], dst, imm, views.scratch((rows, cols), 2))

    def body() -> None:
        a, b, c = (np.asarray(s, dtype=work) if s is not None else None for s in srcs)
        res = _vec_math(func, a, b, c, imm)
        if accum:
            res = dst.astype(work) + res
        _store_result(dst, res)

    return body


def _body_vec_immediate(func: VecFunc, a: np.ndarray, dst: np.ndarray, imm, tile: np.ndarray):
    """VEC.MULI / ADDI of an f32 tile (requantization): the same operations, into a scratch tile."""
    op = np.multiply if func is VecFunc.MULI else np.add

    def body() -> None:
        op(a, imm, out=tile)
        _store_result(dst, tile)

    return body


def _body_deq(instr: Vec, views: Views, dst: np.ndarray, imm):
    handlers = [None]
    cols = {"rows": [instr.rows], "cols": [instr.cols], "imm": [instr.imm], "accum": [instr.accum]}
    for op in ("dst", "a", "b", "c"):
        operand = getattr(instr, op)
        cols.update({f"{op}.space": [operand.space], f"{op}.addr": [operand.addr], f"{op}.dtype": [operand.dtype]})
    _prepare_deq([0], cols, views, handlers)
    return handlers[0]


def _prepare_deq(idx, cols: dict, views: Views, handlers: list, compiled: SimKernels | None = None) -> None:
    """handlers[i] for the VEC.DEQ instructions `idx` (field columns `cols`): the dequantize
    epilogue as a partial over shared views, no closure and no instruction object per DEQ;
    a compiled kernel where one applies (f32 dst overlapping no source: it writes as it reads)."""
    def column(name):
        c = cols[name]
        return c.tolist() if isinstance(c, np.ndarray) else list(c)

    memo: dict = {}  # views by plain-int key: most DEQs share their a, b, c operands

    def view(space: int, addr: int, dtype: int, shape: tuple) -> np.ndarray:
        key = (space, addr, dtype, shape)
        v = memo.get(key)
        if v is None:
            v = memo[key] = _operand_view(views, space, addr, dtype, shape)
        return v

    scratch: dict = {}
    for i, rows, ncols, imm, accum, ds, da, dd, as_, aa, ad, bs, ba, bd, cs, ca, cd in zip(
            list(idx), *map(column, ("rows", "cols", "imm", "accum", "dst.space", "dst.addr", "dst.dtype", "a.space",
                                     "a.addr", "a.dtype", "b.space", "b.addr", "b.dtype", "c.space", "c.addr", "c.dtype"))):
        a_type = _NP_OF_DTYPE[ad]
        kernel = compiled and dd == DType.F32 and compiled.deq(a_type, bool(accum))
        dst_mem, a_mem, b_mem, c_mem = _MEM_OF_SPACE[ds], _MEM_OF_SPACE[as_], _MEM_OF_SPACE[bs], _MEM_OF_SPACE[cs]
        # b and c are f32 records (validated): [scale, zero] x columns, [row scale, row sum] x rows
        if kernel and _disjoint((dst_mem, da, da + 4 * rows * ncols), (a_mem, aa, aa + a_type.itemsize * rows * ncols),
                                (b_mem, ba, ba + 8 * ncols), (c_mem, ca, ca + 8 * rows)):
            handlers[i] = partial(kernel, views.flat(a_mem, a_type, compiled), aa // a_type.itemsize,
                                  views.flat(b_mem, _F32, compiled), ba // 4, views.flat(c_mem, _F32, compiled), ca // 4,
                                  views.flat(dst_mem, _F32, compiled), da // 4, rows, ncols, imm)
            continue
        bsize, csize = _NP_OF_DTYPE[bd].itemsize, _NP_OF_DTYPE[cd].itemsize
        dst = view(ds, da, dd, (rows, ncols))
        scale, zero = view(bs, ba, bd, (ncols,)), view(bs, ba + ncols * bsize, bd, (ncols,))  # per column
        row_scale, row_sum = view(cs, ca, cd, (rows, 1)), view(cs, ca + rows * csize, cd, (rows, 1))  # per row
        tiles = scratch.get((rows, ncols))
        if tiles is None:
            tiles = scratch[(rows, ncols)] = (views.scratch((rows, ncols), 0), views.scratch((rows, ncols), 1))
        a = view(as_, aa, ad, (rows, ncols))
        direct = dd == DType.F32 and not accum
        handlers[i] = partial(_deq_direct if direct else _deq, a, np.float32(imm), row_scale, zero, row_sum, scale,
                              *tiles, dst, bool(accum))


def _run_deqs(idx: np.ndarray, cols: dict, runs: Runs, compiled: SimKernels) -> np.ndarray:
    """Give the executor the VEC.DEQs `idx` it can run (accumulator -> f32 scratchpad tile,
    scales in the scratchpad, dst overlapping neither: it writes as it reads); which it took."""
    size = cols["rows"] * cols["cols"]
    dst, b, c = cols["dst.addr"], cols["b.addr"], cols["c.addr"]
    apart = (((dst + 4 * size <= b) | (b + 8 * cols["cols"] <= dst)) & ((dst + 4 * size <= c) | (c + 8 * cols["rows"] <= dst)))
    taken = (apart & (cols["dst.dtype"] == DType.F32) & (cols["a.space"] == Space.ACC) & (cols["b.space"] == Space.SP)
             & (cols["c.space"] == Space.SP) & (cols["dst.space"] == Space.SP))
    for code in np.unique(cols["a.dtype"][taken]).tolist():
        a_type = _NP_OF_DTYPE[code]
        these = taken & (cols["a.dtype"] == code)
        if not compiled.executor(_I32, a_type):
            taken &= ~these
            continue
        ins = idx[these]
        runs.executor[ins] = runs.executor_id(_I32, a_type)
        runs.rows[ins] = np.stack([np.full(len(ins), RUN_DEQ), cols["a.addr"][these] // a_type.itemsize, b[these] // 4,
                                   c[these] // 4, dst[these] // 4, cols["rows"][these], cols["cols"][these],
                                   cols["accum"][these]], axis=1)
        runs.imm[ins] = cols["imm"][these]
    return taken


def _disjoint(target: tuple[int, int, int], *sources: tuple[int, int, int]) -> bool:
    """Whether byte range `target` (memory, start, end) overlaps none of `sources`."""
    mem, lo, hi = target
    return all(m != mem or end <= lo or start >= hi for m, start, end in sources)


def _deq_direct(a, imm, row_scale, zero, row_sum, scale, tile, correction, dst, accum) -> None:
    # scale[c] * ((imm * row_scale[r]) * a[r, c] - zero[c] * row_sum[r]), in f32, in this order
    np.multiply(a, imm * row_scale, out=tile)
    np.multiply(zero, row_sum, out=correction)
    np.subtract(tile, correction, out=tile)
    np.multiply(tile, scale, out=dst)  # the last product goes straight to dst


def _deq(a, imm, row_scale, zero, row_sum, scale, tile, correction, dst, accum) -> None:
    np.multiply(a, imm * row_scale, out=tile)
    np.multiply(zero, row_sum, out=correction)
    np.subtract(tile, correction, out=tile)
    if accum and dst.dtype == np.float32:  # dst + tile in f32, as below, written in place
        np.multiply(tile, scale, out=tile)
        np.add(dst, tile, out=dst)
        return
    np.multiply(tile, scale, out=tile)
    if accum:
        np.add(dst, tile, out=tile)
    dst[...] = tile


def _body_red(instr: Red, views: Views, config: AccelConfig):
    src = views.operand(instr.src, (instr.rows, instr.cols))
    dst = views.operand(instr.dst, (instr.rows,))
    integer = src.dtype.kind in "iu" and dst.dtype.kind in "iu"
    work = np.int64 if integer else np.float32
    func, accum = instr.func, instr.accum

    def body() -> None:
        x = src.astype(work)
        if func is RedFunc.SUM:
            res = x.sum(axis=1, dtype=work)
        elif func is RedFunc.SUMSQ:
            res = (x * x).sum(axis=1, dtype=work)
        else:
            res = x.max(axis=1)
        if accum:
            prev = dst.astype(work)
            res = np.maximum(prev, res) if func is RedFunc.MAX else prev + res
        _store_result(dst, res)

    return body


_BODIES = {LutBuild: _body_lut_build, Vec: _body_vec, Red: _body_red}
