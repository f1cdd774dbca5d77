"""The simulator: functional execution on NumPy arrays, driven by the timing model.

    result = Simulator(config).run(program, {"x": x})
    result.outputs["y"], result.report.to_text()

A run has four phases. (1) Static: `analysis.analyze` validates the program and computes
every instruction's byte ranges, and the timing model its cycles and actions, column by
column with NumPy. (2) Schedule: `timing.schedule` gives every instruction's start and end
cycle. (3) Functional: each instruction's function runs, in start order: DMAs through one
handler with precomputed slices, compute instructions through closures over NumPy views
prepared once per distinct instruction; integer LUT.MMA lookups and VEC.DEQ epilogues through
TVM-compiled kernels where they apply (kernels.py; the same bits as the NumPy path). (4)
Data races are found from the timeline; the report is computed.
`Simulator(config, functional=False)` skips phase 3.

Reading a byte nothing has written is a hazard, as are out-of-bounds addresses
(validation), deadlocks (schedule), data races and integer accumulator overflow. Each is a
LutcError naming the instruction and its queue. Byte ranges and the execution order are
static, so which bytes are written when is worked out before running
(`first_uninitialized_read`): the hot loop only moves and computes data.
"""

from __future__ import annotations

import gc
import heapq
import operator
import threading
import weakref
from dataclasses import dataclass
from functools import lru_cache, partial
from itertools import repeat
from typing import Callable, Mapping, NamedTuple

import numpy as np

from lutc.diagnostics import LutcError
from lutc.backends.accel import kernels
from lutc.backends.accel.analysis import RANGES, SLOT_ROLES, Analysis, analyze, is_strided, write_runs
from lutc.backends.accel.columns import distinct_rows
from lutc.backends.accel.config import AccelConfig
from lutc.backends.accel.isa import (
    Bcast, DType, Load, LutBuild, LutMma, Mma, Operand, Red, RedFunc, Store, Vec, VecFunc,
)
from lutc.backends.accel.lut import (
    TABLE_QMAX, build_tables, lut_mma_bound, make_lut_mma, bytewise_indices, bytewise_table, table_block_layout, table_entries,
    weight_plane_bytes,
)
from lutc.backends.accel.kernels import SimKernels
from lutc.backends.accel.program import (
    MEM_ACC, MEM_DRAM, MEM_NAMES, MEM_SP, Program, TensorIndex, describe_instruction, instruction_location, load_inputs,
)
from lutc.backends.accel.report import SimReport, build_report
from lutc.backends.accel.timing import Hazard, actions_for, cycles_for, find_race, schedule


@dataclass
class SimResult:
    outputs: dict[str, np.ndarray]
    report: SimReport


class Simulator:
    """Functional + timing simulation of one accelerator config.

    `functional=False` skips the functional model (no outputs, no uninitialized-read or
    overflow checks): timing, energy and every static check stay, at several times the speed,
    which is what design-space sweeps over bandwidth, latency or energy need.

    What depends only on the program and the config (validation, schedule, races, the
    uninitialized-read analysis, the prepared instruction functions) is computed on the first
    run of a program and reused by later runs of the same, unchanged program (new inputs
    only): `Simulator(...).run` on a program seen before does only the functional work and
    the report. A changed program (any instruction, tensor, layer, data set) is rebuilt.

    `compiled` chooses how the integer LUT.MMA lookups and VEC.DEQ epilogues run: through the
    TVM-compiled kernels of `kernels.py` (True), NumPy (False), or the kernels when the program
    has at least `COMPILED_MIN` such instructions or they are loaded already (None). Results
    are identical either way; True fails if the kernels cannot be had.
    """

    def __init__(self, config: AccelConfig, *, check_races: bool = True, functional: bool = True,
                 compiled: bool | None = None):
        self.config = config
        self.check_races = check_races
        self.functional = functional
        self.compiled = compiled
        self._static: _Static | None = None  # the last program's static work
        self._lock = threading.Lock()  # a run in another thread builds its own instead of sharing memories

    def run(self, program: Program, inputs: Mapping[str, np.ndarray] | None = None) -> SimResult:
        # A run allocates many small, acyclic objects (views, closures); the cyclic garbage
        # collector's passes over them cost ~15% and find nothing, so it waits until the end.
        was_enabled = gc.isenabled()
        gc.disable()
        exclusive = self._lock.acquire(blocking=False)
        try:
            return self._run(program, inputs or {}, exclusive)
        finally:
            if exclusive:
                self._lock.release()
            if was_enabled:
                gc.enable()

    def _run(self, program: Program, inputs: Mapping[str, np.ndarray], exclusive: bool) -> SimResult:
        def fail(i: int | None, message: str) -> LutcError:
            if i is None:
                return LutcError(message, instruction_location(program, 0))
            return LutcError(f"{describe_instruction(program, i)}: {message}", instruction_location(program, i))

        static = self._static if exclusive else None
        key = _fingerprint(program)
        if static is None or static.program() is not program or static.key != key:
            static = _Static.build(program, self.config, key, self.check_races, self.compiled, fail)
            if exclusive:
                self._static = static
        an, sched = static.an, static.sched
        outputs, unwritten = static.execute(inputs, fail) if self.functional else ({}, [])
        if static.race is not None:
            raise fail(static.race[0], _race_message(an, sched, *static.race, lambda i: describe_instruction(program, i)))
        for name, first in unwritten:
            raise LutcError(f"output '{name}' was not fully written by the program (DRAM byte {first:#x} never stored)",
                            instruction_location(program, an.n - 1))
        return SimResult(outputs, build_report(an, sched, static.cycles, static.actions))


def _fingerprint(program: Program) -> tuple:
    """Everything of `program` a run depends on, cheap to compare: instructions by identity first
    (list equality tries `is` before `==`), tensors, layers, which tensors carry data."""
    return (program.columns(), [(t.name, t.kind, t.dtype, t.shape, t.addr) for t in program.tensors],
            list(program.layers), sorted(program.data), program.tokens, program.config_hash, program.source,
            None if program.lines is None else list(program.lines))


class _Static:
    """A program's static work for one config, plus its execution plan (memories, prepared
    instruction functions) once a functional run needed it."""

    def __init__(self, program: Program, key: tuple, an: Analysis, cycles, sched, actions, race, found):
        self.program = weakref.ref(program)
        self.key = key
        self.an, self.cycles, self.sched, self.actions, self.race = an, cycles, sched, actions, race
        self.kernels: SimKernels | None = found  # the compiled kernels its runs use, if any
        self._plan = None
        self._uninit: dict = {}  # preloaded tensors -> (first uninitialized read, unwritten outputs)

    @classmethod
    def build(cls, program: Program, config: AccelConfig, key: tuple, check_races: bool, compiled: bool | None,
              fail) -> _Static:
        an = analyze(program, config)
        found = _kernels_for(an, compiled, fail)
        cycles = cycles_for(an)
        try:
            sched = schedule(an.queue, an.deps, cycles, found)
        except Hazard as hz:
            raise fail(hz.index, hz.message) from None
        race = find_race(an, sched.start, sched.end, found) if check_races else None
        return cls(program, key, an, cycles, sched, actions_for(an), race, found)

    def execute(self, inputs: Mapping[str, np.ndarray], fail) -> tuple[dict, list]:
        """Run every instruction's function in start order: (outputs, [(output not fully written, first byte)])."""
        an = self.an
        program, config = an.program, an.config
        initial = load_inputs(program, inputs)
        if self._plan is None:
            mems = [np.zeros(program.dram_size, dtype=np.uint8), np.zeros(config.scratchpad.size_bytes, dtype=np.uint8),
                    np.zeros(config.accumulator.size_bytes, dtype=np.uint8)]
            # Functions run in time order (ties: program order), so memory is seen as the hardware would.
            order = np.lexsort((np.arange(an.n), self.sched.start))
            pos = np.empty(an.n, dtype=np.int64)
            pos[order] = np.arange(an.n)
            views = _Views(mems)
            self._plan = (mems, views, order, pos, _prepare(an, views, pos, self.kernels))
        else:
            mems, views, order, pos, _ = self._plan
            for mem in mems:
                mem.fill(0)
            views.converted.clear()  # keyed by positions within a run
        mems, views, order, pos, handlers = self._plan
        preloaded = []  # DRAM byte ranges that hold data before the run
        for name, raw in initial.items():
            t = program.tensor(name)
            mems[MEM_DRAM][t.addr:t.end] = raw
            preloaded.append((t.addr, t.end))
        which = frozenset(initial)
        if which not in self._uninit:
            uninit = first_uninitialized_read(an, pos, preloaded, self.kernels)
            stop = an.n if uninit is None else uninit[0]  # run up to the bad read: earlier hazards come first
            plan = [(i, handlers[i]) for i in order[:stop].tolist() if handlers[i] is not None]
            self._uninit[which] = (uninit, plan, unwritten_outputs(an, preloaded))
        uninit, plan, unwritten = self._uninit[which]
        i = -1
        try:
            with np.errstate(all="ignore"):
                for i, perform in plan:  # the hot loop: one call per instruction
                    perform()
        except Hazard as hz:
            raise fail(i, hz.message) from None
        if uninit is not None:
            raise fail(uninit[1], uninit[2])
        outputs = {t.name: mems[MEM_DRAM][t.addr:t.end].view(t.dtype.np).reshape(t.shape).copy() for t in program.outputs}
        return outputs, unwritten


def _race_message(an: Analysis, sched, later: int, earlier: int, slot_l: int, slot_e: int, describe) -> str:
    x = an.accesses(later)
    y = an.accesses(earlier)
    xa, ya = _slot_access(an, later, slot_l, x), _slot_access(an, earlier, slot_e, y)
    return (f"data race: {'writes' if xa.write else 'reads'} {xa.role} {xa.describe()} at cycle {sched.start[later]} while "
            f"{describe(earlier)} {'writes' if ya.write else 'reads'} {ya.describe()} (cycles {sched.start[earlier]}.."
            f"{sched.end[earlier]}); a dependency token between the two is missing")


def _slot_access(an: Analysis, i: int, slot: int, accesses):
    """The scalar Access for range slot `slot` of instruction i (slots skip unused ranges in the scalar list)."""
    used_before = int(an.used[i, :slot].sum())
    return accesses[used_before]


# ---------------------------------------------------------------------------------------
# Written bytes, worked out statically: uninitialized reads, unwritten outputs, versions
# ---------------------------------------------------------------------------------------

_MEM_TITLES = ("DRAM", "scratchpad", "accumulator buffer")


def _inside(lo: np.ndarray, hi: np.ndarray, ranges: list[tuple[int, int]]) -> np.ndarray:
    """Whether each [lo, hi) lies inside one of the disjoint `ranges`."""
    if not ranges:
        return np.zeros(len(lo), dtype=bool)
    starts, ends = (np.array(v, dtype=np.int64) for v in zip(*sorted(ranges)))
    k = np.searchsorted(starts, lo, side="right") - 1
    return (k >= 0) & (hi <= ends[np.maximum(k, 0)])


def _flag_view(flags: np.ndarray, lo: int, hi: int, rows: int, row_bytes: int, stride: int) -> np.ndarray:
    if rows == 1 or row_bytes == stride:
        return flags[lo:hi]
    return np.ndarray((rows, row_bytes), dtype=flags.dtype, buffer=flags, offset=lo, strides=(stride, 1))


def first_uninitialized_read(an: Analysis, pos: np.ndarray, preloaded: list[tuple[int, int]],
                             compiled: SimKernels | None = None):
    """(execution position, instruction, message) of the first read of a byte nothing wrote before, or None.

    Needs no data: byte ranges and the execution order (`pos`) are static. It walks, in
    execution order (an instruction's reads before its writes), only the first occurrence of
    each distinct read or write range, over one written flag per byte: a later occurrence
    of a range cannot fail where the first passed, since written flags never revert. The walk
    runs in a compiled kernel when `compiled` has it (the same events, the same result).
    """
    # The used ranges in execution order, with no sort: the instructions' rows taken in
    # execution order, so a flat nonzero lists them by (position, slot).
    n = len(pos)
    order = np.empty(n, dtype=np.int64)
    order[pos] = np.arange(n)
    p, slot = np.divmod(np.flatnonzero(an.used[order]), RANGES)
    ins = order[p]
    flat = ins * RANGES + slot  # into the (n, RANGES) tables, raveled
    mem, lo, hi, write = an.mem.ravel()[flat], an.lo.ravel()[flat], an.hi.ravel()[flat], an.write.ravel()[flat]
    pat = an.pattern.reshape(-1, 3)[flat]
    reads = ~write & ~((mem == MEM_DRAM) & _inside(lo, hi, preloaded))  # inputs and weights are written
    if not reads.any():
        return None
    # Flags are kept per segment: the scratchpad, the accumulator buffer, and each DRAM tensor
    # (every DRAM range lies inside one: validated), so a few read activations between megabytes
    # of weights need flags for those activations only.
    tensors = TensorIndex(an.program.tensors)
    dram = mem == MEM_DRAM
    segment = mem.copy()
    segment[dram] = len(_MEM_TITLES) + np.searchsorted(np.asarray(tensors.starts, dtype=np.int64), lo[dram], side="right") - 1
    watched = np.zeros(len(_MEM_TITLES) + len(tensors.ordered), dtype=bool)
    watched[segment[reads]] = True  # writes to segments nobody reads need no flags
    sel = np.flatnonzero(reads | (write & watched[segment]))
    first = _first_of_each(np.stack([mem[sel] * 2 + write[sel], lo[sel], hi[sel] - lo[sel], pat[sel, 0], pat[sel, 2]]))
    events = sel[first]  # each distinct range's earliest occurrence, in (position, slot) order
    events = events[np.argsort(p[events] * (2 * RANGES) + write[events] * RANGES + slot[events], kind="stable")]
    ev_seg, ev_lo, ev_hi = segment[events], lo[events], hi[events]
    # Flags only for the bytes some event touches: [base, end) of each watched segment, as slices
    # of one array (which the compiled walk takes whole).
    base, size = [0] * len(watched), [0] * len(watched)
    for m in np.flatnonzero(watched).tolist():
        on = ev_seg == m
        base[m] = int(ev_lo[on].min())
        size[m] = int(ev_hi[on].max()) - base[m]
    offset = np.cumsum([0] + size)
    all_flags = np.zeros(int(offset[-1]), dtype=bool)
    written = [all_flags[offset[m]:offset[m + 1]] for m in range(len(watched))]
    for m in np.flatnonzero(watched[len(_MEM_TITLES):]).tolist():
        m += len(_MEM_TITLES)  # a DRAM tensor that is read: the preloaded part of it (if any) is written
        for a, b in preloaded:
            a, b = max(a - base[m], 0), min(b - base[m], size[m])
            if a < b:
                written[m][a:b] = True
    ev_pat, ev_write = pat[events], write[events]
    walk = compiled and compiled.first_unwritten()
    if walk:
        k = _walk_compiled(walk, all_flags, offset[ev_seg] + ev_lo - np.asarray(base)[ev_seg], ev_hi - ev_lo, ev_pat,
                           ev_write)
    else:
        k = _walk(written, base, ev_seg, ev_lo, ev_hi, ev_pat, ev_write)
    if k is None:
        return None
    e, m, a, b = int(events[k]), int(ev_seg[k]), int(ev_lo[k]), int(ev_hi[k])
    rows, row_bytes, stride = ev_pat[k].tolist()
    flags = _flag_view(written[m], a - base[m], b - base[m], rows, row_bytes, stride)  # as the failing read found them
    bad = int(np.argmin(flags.reshape(-1)))
    if flags.ndim == 2:
        row, col = divmod(bad, row_bytes)
        bad = row * stride + col
    i = int(ins[e])
    return int(p[e]), i, _uninitialized_message(an, i, int(slot[e]), int(mem[e]), a, b, a + bad)


def _walk(written: list, base: list, ev_seg, ev_lo, ev_hi, ev_pat, ev_write) -> int | None:
    """The first event that reads a flag nothing set (writes set theirs, in order), or None."""
    all_set = np.logical_and.reduce  # ndarray.all() without its Python-level wrapper
    for k, (m, a, b, (rows, row_bytes, stride), writes) in enumerate(zip(
            ev_seg.tolist(), ev_lo.tolist(), ev_hi.tolist(), ev_pat.tolist(), ev_write.tolist())):
        flags = _flag_view(written[m], a - base[m], b - base[m], rows, row_bytes, stride)
        if writes:
            flags[...] = True
        elif not all_set(flags, axis=None):
            return k
    return None


def _walk_compiled(walk, all_flags: np.ndarray, start: np.ndarray, nbytes: np.ndarray, ev_pat: np.ndarray,
                   ev_write: np.ndarray) -> int | None:
    """_walk through the compiled kernel (kernels.py, first_unwritten), over all flags at once:
    `start` is each event's first flag in `all_flags`."""
    contiguous = (ev_pat[:, 0] == 1) | (ev_pat[:, 1] == ev_pat[:, 2])  # as _flag_view decides
    rows = np.where(contiguous, 1, ev_pat[:, 0])
    width = np.where(contiguous, nbytes, ev_pat[:, 1])
    stride = np.where(contiguous, 0, ev_pat[:, 2])
    result = np.empty(1, dtype=np.int64)
    walk(all_flags.view(np.uint8), start, rows, width, stride, ev_write.astype(np.int64), result)
    return None if result[0] < 0 else int(result[0])


def _pack(keys: np.ndarray) -> np.ndarray | None:
    """Each column of the integer (k, m) `keys` as one int64 with the same order and equality, when
    the fields are non-negative and fit in 63 bits together (they do for real memory sizes); else None."""
    if not keys.shape[1] or keys.min() < 0:
        return None
    widths = [int(row.max()).bit_length() for row in keys]
    if sum(widths) > 63:
        return None
    packed = np.zeros(keys.shape[1], dtype=np.int64)
    for row, w in zip(keys, widths):
        packed = (packed << w) | row
    return packed


def _first_of_each(keys: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each distinct column of the integer (k, m) `keys`, ascending."""
    if not keys.shape[1]:
        return np.zeros(0, dtype=np.int64)
    packed = _pack(keys)
    if packed is not None:  # one stable sort instead of a k-key lexsort
        perm = np.argsort(packed, kind="stable")
        ordered = packed[perm]
        new = np.ones(len(perm), dtype=bool)
        new[1:] = ordered[1:] != ordered[:-1]
    else:
        perm = np.lexsort(tuple(keys[::-1]))  # stable: ties keep their order
        ordered = keys[:, perm]
        new = np.ones(len(perm), dtype=bool)
        new[1:] = (ordered[:, 1:] != ordered[:, :-1]).any(axis=0)
    return np.sort(perm[new])


def _uninitialized_message(an: Analysis, i: int, slot: int, m: int, lo: int, hi: int, byte: int) -> str:
    instr = an.program.instruction(i)
    if isinstance(instr, (Load, Store)):
        if is_strided(an.pattern[i, :2]).any():
            return f"read of uninitialized {_MEM_TITLES[m]}: src byte {byte:#x} was never written"
        return f"read of uninitialized {_MEM_TITLES[m]}: src [{lo:#x}..{hi:#x}) byte {byte:#x} was never written"
    role = SLOT_ROLES[type(instr)][slot]
    return f"read of uninitialized {_MEM_TITLES[m]}: {role} {MEM_NAMES[m]}[{lo:#x}..{hi:#x}) byte {byte:#x} was never written"


def unwritten_outputs(an: Analysis, preloaded: list[tuple[int, int]]) -> list[tuple[str, int]]:
    """[(output tensor, its first byte that neither the initial image nor any write covers)]."""
    outs = an.program.outputs
    if not outs:
        return []
    run_lo, run_hi = write_runs(an, MEM_DRAM, preloaded)
    missing = []
    for t in outs:
        k = int(np.searchsorted(run_lo, t.addr, side="right")) - 1
        reach = int(run_hi[k]) if k >= 0 else t.addr
        if reach < t.end:
            missing.append((t.name, max(reach, t.addr)))
    return missing


def writes_in_order(an: Analysis, pos: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every write range in execution order: (memory, lo, hi, execution position)."""
    wi, ws = np.nonzero(an.used & an.write)
    by_time = np.argsort(pos[wi], kind="stable")
    wi, ws = wi[by_time], ws[by_time]
    return an.mem[wi, ws], an.lo[wi, ws], an.hi[wi, ws], pos[wi]


def read_versions(an: Analysis, pos: np.ndarray, idx: np.ndarray, slot: int, writes=None) -> np.ndarray:
    """For range `slot` of instructions `idx`: the execution position of the last write before it
    that overlaps the range (-1: none). Two reads of a range with the same version see the same bytes.
    `writes`: writes_in_order(an, pos), when the caller has it."""
    wm, wl, wh, wp = writes_in_order(an, pos) if writes is None else writes
    m, lo, hi, p = an.mem[idx, slot], an.lo[idx, slot], an.hi[idx, slot], pos[idx]
    keys = np.stack([m, lo, hi])
    packed = _pack(keys)
    if packed is None:
        ranges, which = np.unique(keys.T, axis=0, return_inverse=True)
    else:  # one int64 per range: a plain unique instead of a (slow) row-wise one
        _, first, which = np.unique(packed, return_index=True, return_inverse=True)
        ranges = keys[:, first].T
    which = which.reshape(-1)
    before = np.searchsorted(wp, p) - 1  # the writes executed before each read: wp[:before + 1]
    out = np.full(len(idx), -1, dtype=np.int64)
    if len(ranges) * len(wp) <= 1 << 21:  # all at once: which writes overlap which range
        um, ul, uh = (c[:, None] for c in ranges.T)
        overlap = (wm == um) & (wl < uh) & (ul < wh)
        last = np.maximum.accumulate(np.where(overlap, np.arange(len(wp)), -1), axis=1)  # last overlapping write so far
        if len(wp):
            k = np.where(before >= 0, last[which, np.maximum(before, 0)], -1)
            out = np.where(k >= 0, wp[np.maximum(k, 0)], -1)
        return out
    for u, (um, ul, uh) in enumerate(ranges.tolist()):  # many ranges and writes: one range at a time
        hits = wp[(wm == um) & (wl < uh) & (ul < wh)]
        if len(hits):
            sel = np.flatnonzero(which == u)
            k = np.searchsorted(hits, p[sel]) - 1
            out[sel] = np.where(k >= 0, hits[np.maximum(k, 0)], -1)
    return out


# ---------------------------------------------------------------------------------------
# Preparing instruction functions
# ---------------------------------------------------------------------------------------

_MEM_OF_SPACE = (MEM_SP, MEM_SP, MEM_ACC)  # by Space code (NONE never reaches a body)
_NP_OF_DTYPE = tuple(d.np for d in DType)  # by DType code


class _Views:
    """The memories; typed views of them, shared by the instructions that name the same operand;
    scratch buffers (instructions run one at a time, so one per shape suffices); caches."""

    def __init__(self, mems: list[np.ndarray]):
        self.mems = mems
        self._views: dict[tuple, np.ndarray] = {}
        self._scratch: dict[tuple, np.ndarray] = {}
        self.table_cache: dict = {}  # LUT tables prepared for lookup, by content (see lut.py)
        self.converted: dict = {}  # MMA operands converted for BLAS, by (range, version)
        self._flat: dict = {}  # whole memories as typed FFI tensors, for the compiled kernels

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
            t = self._flat[key] = compiled.tensor(raw[:raw.size - raw.size % dtype.itemsize].view(dtype))
        return t

    def scratch(self, shape: tuple[int, ...], slot: int = 0, dtype=np.float32) -> np.ndarray:
        key = (shape, slot, dtype)
        buf = self._scratch.get(key)
        if buf is None:
            buf = self._scratch[key] = np.empty(shape, dtype=dtype)
        return buf


# Below this many LUT.MMA and VEC.DEQ instructions, NumPy finishes sooner than loading the
# compiled kernels (~0.2 s, once per process) takes.
COMPILED_MIN = 64


def _kernels_for(an: Analysis, compiled: bool | None, fail) -> SimKernels | None:
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


def _prepare(an: Analysis, views: _Views, pos: np.ndarray, compiled: SimKernels | None = None) -> list:
    """handlers[i]() performs instruction i; None for SYNC and FINISH. `compiled`: the kernels
    integer LUT.MMAs and VEC.DEQs run through where they apply."""
    handlers: list = [None] * an.n
    _prepare_dmas(an, views.mems, handlers)
    writes = writes_in_order(an, pos) if Mma in an.groups or LutMma in an.groups else None  # for operand versions
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
            _prepare_mmas(an, todo, cols, views, pos, writes, handlers)
            continue
        if cls is LutMma:
            _prepare_lut_mmas(an, todo, cols, views, pos, writes, handlers, compiled)
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

_I8, _U8, _I32, _I64, _F32 = (np.dtype(t) for t in (np.int8, np.uint8, np.int32, np.int64, np.float32))
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


def _body_lut_build(instr: LutBuild, views: _Views, config: AccelConfig):
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


def _prepare_lut_mmas(an: Analysis, idx: np.ndarray, cols: dict, views: _Views, pos: np.ndarray, writes: tuple,
                      handlers: list, compiled: SimKernels | None) -> None:
    """handlers[i] for the LUT.MMAs `idx` (field columns `cols`), made once per distinct LUT.MMA
    from the columns (no instruction object). An integer LUT.MMA looks up a byte-sum table made
    from the version of its table bytes (read_versions: the last write before the read is
    static). The first reader of each version, in execution order, fills that table, in a
    buffer made here; every later reader only looks up."""
    first, which = distinct_rows(cols)
    made = [_lut_mma_function(views, compiled, an.config.lut.group, *row)
            for row in zip(*(cols[name][first].tolist() for name in _LUT_MMA_FIELDS))]
    by_pos = np.argsort(pos[idx], kind="stable")
    tables: dict = {}  # (table key, version) -> the byte-sum table its readers look up
    readers: dict = {}  # (distinct LUT.MMA, table key, version) -> their handler after the first reader
    for i, w, v in zip(idx[by_pos].tolist(), which[by_pos].tolist(),
                       read_versions(an, pos, idx, 0, writes)[by_pos].tolist()):
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


def _lut_mma_function(views: _Views, compiled: SimKernels | None, g: int, m: int, n: int, k: int, bits: int, sym: int,
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
    if kernel:  # dst is in the accumulator, weights in the scratchpad: no overlap
        target = ((compiled.tensor(out.reshape(-1)), 0) if check
                  else (views.flat(_MEM_OF_SPACE[dst_space], dst_type, compiled), dst_addr // dst_type.itemsize))
        lookup = partial(kernel, views.flat(MEM_SP, _U8, compiled), weights_addr, *target, m, n, bits, k // 8)
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


def _operand_view(views: _Views, space: int, addr: int, dtype: int, shape: tuple[int, int]) -> np.ndarray:
    return views.get(_MEM_OF_SPACE[space], addr, _NP_OF_DTYPE[dtype], shape)


def _prepare_mmas(an: Analysis, idx: np.ndarray, cols: dict, views: _Views, pos: np.ndarray, writes: tuple,
                  handlers: list) -> None:
    """handlers[i] for the MMAs `idx` (field columns `cols`; `writes`: writes_in_order).

    Integer MMAs reading the same B range with the same version (the last write before the read,
    see read_versions) form a batch, in execution order, as long as each one's A bytes are final
    before the batch's first MMA runs (its A version comes earlier): that first MMA computes every
    product of the batch with one BLAS call, and each MMA, at its own time, only accumulates and
    stores its rows (a GEMM's m-tiles sharing a B tile cost one call instead of one each). The
    products are exact integers (see _mma_work_dtype), so batching changes no bit; overflow is
    still checked by the MMA that stores it, at its own time.
    """
    versions = read_versions(an, pos, np.concatenate([idx, idx]), np.repeat([0, 1], len(idx)), writes)
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
    # Everything per MMA in batch order, as lists; per batch, whether its A tiles lie back to back.
    c = {name: cols[name][rows] for name in _MMA_FIELDS}
    a_size = c["m"] * c["k"] * _DTYPE_ITEMSIZE[c["a.dtype"]]
    adjacent = (np.diff(c["a.addr"]) == a_size[:-1]) & (np.diff(c["a.space"]) == 0)  # row r + 1 follows row r
    breaks = np.concatenate([[0], np.cumsum(~adjacent)])
    first, stop = (np.array(v, dtype=np.int64) for v in zip(*batches))
    stacked = (breaks[stop - 1] == breaks[first]).tolist()
    # An MMA whose store needs no Python: nothing to accumulate, and no product can overflow dst.
    plain = ((c["accum"] == 0) & (c["k"] * _MAGNITUDE[c["a.dtype"]] * _MAGNITUDE[c["b.dtype"]] <= _INT_MAX[c["dst.dtype"]])).tolist()
    c = {name: v.tolist() for name, v in c.items()}
    ins, where, a_versions, b_versions = idx[rows].tolist(), where[rows].tolist(), a_versions[rows].tolist(), b_versions[rows].tolist()
    dst_keys = list(zip(c["dst.space"], c["dst.addr"], c["dst.dtype"], zip(c["m"], c["n"])))
    dst_of = {key: _operand_view(views, *key) for key in set(dst_keys)}
    dsts = list(map(dst_of.__getitem__, dst_keys))
    results = _ResultBuffers()
    for (lo, hi), back_to_back in zip(batches, stacked):
        m, n, k, a_space, a_dtype, b_dtype = (c[name][lo] for name in ("m", "n", "k", "a.space", "a.dtype", "b.dtype"))
        work = _mma_work_dtype(k, _NP_OF_DTYPE[a_dtype], _NP_OF_DTYPE[b_dtype])
        out = results.take((hi - lo, m, n), work, where[lo], where[hi - 1])
        if back_to_back:  # one view of all A tiles (a GEMM's m-tiles)
            a_sources = (_operand_view(views, a_space, c["a.addr"][lo], a_dtype, ((hi - lo) * m, k)),)
        else:
            a_sources = tuple(_operand_view(views, space, addr, a_dtype, (m, k))
                              for space, addr in zip(c["a.space"][lo:hi], c["a.addr"][lo:hi]))
        b = _operand_view(views, c["b.space"][lo], c["b.addr"][lo], b_dtype, (n, k) if c["transpose_b"][lo] else (k, n))
        compute = partial(_mma_batch, views.converted, work, (tuple(map(id, a_sources)), tuple(a_versions[lo:hi])),
                          a_sources, (id(b), b_versions[lo]), b, bool(c["transpose_b"][lo]), out.reshape(-1, n))
        if all(plain[lo:hi]):  # plain (exact) casts into the accumulator, made by map
            made = map(partial, repeat(operator.setitem), dsts[lo:hi], repeat(Ellipsis), out)
        else:
            made = (partial(operator.setitem, dst, Ellipsis, res) if is_plain else
                    partial(_mma_store, res, bool(accum), dst, *_INT_RANGE[dst.dtype])
                    for dst, res, is_plain, accum in zip(dsts[lo:hi], out, plain[lo:hi], c["accum"][lo:hi]))
        for i, store in zip(ins[lo:hi], made):
            handlers[i] = store
        handlers[ins[lo]] = partial(_compute_then_store, compute, handlers[ins[lo]])


_MMA_FIELDS = ("m", "n", "k", "accum", "transpose_b", "a.space", "a.addr", "a.dtype", "b.space", "b.addr", "b.dtype",
               "dst.space", "dst.addr", "dst.dtype")
_MMA_BATCH_KEY = ("m", "n", "k", "transpose_b", "a.dtype", "b.space", "b.addr", "b.dtype")
_IS_INT_DTYPE = np.array([_NP_OF_DTYPE[code].kind == "i" for code in range(len(_NP_OF_DTYPE))])
_DTYPE_ITEMSIZE = np.array([_NP_OF_DTYPE[code].itemsize for code in range(len(_NP_OF_DTYPE))], dtype=np.int64)


def _split_batches(key: np.ndarray, where: np.ndarray, a_version: np.ndarray) -> list[tuple[int, int]]:
    """[lo, hi) runs of MMAs (grouped by `key`, in execution order within a group) that form batches:
    a group splits where an MMA's A version is not before the current batch's first MMA."""
    starts = np.flatnonzero(np.diff(key, prepend=-1) != 0).tolist() + [len(key)]
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
    """Result buffers for MMA batches, reused once every MMA of the batch holding one has stored."""

    def __init__(self):
        self._free: dict[tuple, list] = {}  # (shape, dtype) -> heap of (last position using it, n, buffer)

    def take(self, shape: tuple[int, int], dtype, first: int, last: int) -> np.ndarray:
        heap = self._free.setdefault((shape, dtype), [])
        if heap and heap[0][0] < first:
            _, _, buf = heapq.heappop(heap)
        else:
            buf = np.empty(shape, dtype=dtype)
        heapq.heappush(heap, (last, id(buf), buf))
        return buf


def _mma_work_dtype(k: int, a_dtype: np.dtype, b_dtype: np.dtype):
    """The narrowest float type whose BLAS sums of k products of these integers are exact."""
    bound = k * _INT_MAGNITUDE[a_dtype] * _INT_MAGNITUDE[b_dtype]  # the largest |A . B| entry
    if bound > _EXACT_F64:  # pragma: no cover - k beyond 2^37 for 8-bit operands
        raise Hazard(f"MMA with k = {k} is too long to simulate exactly")
    return np.float32 if bound <= _EXACT_F32 else np.float64


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


def _vec_source(views: _Views, op: Operand, rows: int, cols: int) -> np.ndarray:
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


def _body_vec(instr: Vec, views: _Views, config: AccelConfig):
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


def _body_deq(instr: Vec, views: _Views, dst: np.ndarray, imm):
    handlers = [None]
    cols = {"rows": [instr.rows], "cols": [instr.cols], "imm": [instr.imm], "accum": [instr.accum]}
    for op in ("dst", "a", "b", "c"):
        operand = getattr(instr, op)
        cols.update({f"{op}.space": [operand.space], f"{op}.addr": [operand.addr], f"{op}.dtype": [operand.dtype]})
    _prepare_deq([0], cols, views, handlers)
    return handlers[0]


def _prepare_deq(idx, cols: dict, views: _Views, handlers: list, compiled: SimKernels | None = None) -> None:
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


def _body_red(instr: Red, views: _Views, config: AccelConfig):
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
