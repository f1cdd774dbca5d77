"""The simulator: functional execution on NumPy arrays, driven by the timing model.

    result = Simulator(config).run(program, {"x": x})
    result.outputs["y"], result.report.to_text()

A run has four phases. (1) Static: `analysis.analyze` validates the program and computes
every instruction's byte ranges, and the timing model its cycles and actions, column by
column with NumPy. (2) Schedule: `timing.schedule` gives every instruction's start and end
cycle. (3) Functional: each instruction's function runs, in start order: DMAs through one
handler with precomputed slices, compute instructions through closures over NumPy views
prepared once per distinct instruction. (4) Data races are found from the timeline; the
report is computed. `Simulator(config, functional=False)` skips phase 3.

Every byte of every memory has a "written" flag: reading a byte that was never written is
a hazard, as are out-of-bounds addresses (validation), deadlocks (schedule), data races
and integer accumulator overflow. Each is a LutcError naming the instruction and its queue.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from lutc.diagnostics import LutcError
from lutc.backends.accel.analysis import SLOT_ROLES, Analysis, analyze
from lutc.backends.accel.config import AccelConfig
from lutc.backends.accel.isa import (
    Bcast, DType, Instruction, Load, LutBuild, LutMma, Mma, Operand, Red, RedFunc, Store, Vec, VecFunc,
)
from lutc.backends.accel.lut import (
    TABLE_QMAX, build_tables, lut_mma_bound, make_lut_mma, table_block_layout, table_entries, weight_plane_bytes,
)
from lutc.backends.accel.program import (
    MEM_ACC, MEM_DRAM, MEM_NAMES, MEM_SP, Program, TensorIndex, describe_instruction, instruction_location,
    load_inputs,
)
from lutc.backends.accel.report import SimReport, build_report
from lutc.backends.accel.timing import Hazard, actions_for, cycles_for, find_race, schedule


@dataclass
class SimResult:
    outputs: dict[str, np.ndarray]
    report: SimReport


class _Memories(dict):
    """The memory levels by MEM_* code, plus scratch tiles shared by instruction functions
    (instructions run one at a time, so one buffer per shape suffices)."""

    def __init__(self, levels: dict):
        super().__init__(levels)
        self._scratch: dict[tuple, np.ndarray] = {}
        self.table_cache: dict = {}  # LUT tables prepared for lookup, by content (see lut.make_lut_mma)

    def scratch(self, shape: tuple[int, ...], slot: int = 0) -> np.ndarray:
        key = (shape, slot)
        buf = self._scratch.get(key)
        if buf is None:
            buf = self._scratch[key] = np.empty(shape, dtype=np.float32)
        return buf


class _Memory:
    """One memory level: its bytes and a written flag per byte."""

    __slots__ = ("name", "mem", "data", "valid")

    def __init__(self, name: str, mem: int, size: int):
        self.name = name
        self.mem = mem
        self.data = np.zeros(size, dtype=np.uint8)
        self.valid = np.zeros(size, dtype=np.bool_)

    def view(self, addr: int, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        """A typed view of the bytes at `addr` (it sees later writes)."""
        return np.ndarray(shape, dtype=dtype, buffer=self.data, offset=addr)


class Simulator:
    """Functional + timing simulation of one accelerator config.

    `functional=False` skips the functional model (no outputs, no uninitialized-read or
    overflow checks): timing, energy and every static check stay, at several times the speed,
    which is what design-space sweeps over bandwidth, latency or energy need.
    """

    def __init__(self, config: AccelConfig, *, check_races: bool = True, functional: bool = True):
        self.config = config
        self.check_races = check_races
        self.functional = functional

    def run(self, program: Program, inputs: Mapping[str, np.ndarray] | None = None) -> SimResult:
        # A run allocates many small, acyclic objects (views, closures); the cyclic garbage
        # collector's passes over them cost ~15% and find nothing, so it waits until the end.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._run(program, inputs)
        finally:
            if was_enabled:
                gc.enable()

    def _run(self, program: Program, inputs: Mapping[str, np.ndarray] | None) -> SimResult:
        config = self.config
        an = analyze(program, config)
        cycles = cycles_for(an)

        def describe(i: int) -> str:
            return describe_instruction(program, i)

        def fail(i: int | None, message: str) -> LutcError:
            if i is None:
                return LutcError(message, instruction_location(program, 0))
            return LutcError(f"{describe(i)}: {message}", instruction_location(program, i))

        try:
            sched = schedule(an.queue, an.deps, cycles)
        except Hazard as hz:
            raise fail(hz.index, hz.message) from None
        outputs, unwritten = self._execute(an, sched, inputs or {}, fail) if self.functional else ({}, [])
        if self.check_races:
            race = find_race(an, sched.start, sched.end)
            if race is not None:
                raise fail(race[0], _race_message(an, sched, *race, describe))
        for name, first in unwritten:
            raise LutcError(f"output '{name}' was not fully written by the program (DRAM byte {first:#x} never stored)",
                            instruction_location(program, an.n - 1))
        return SimResult(outputs, build_report(an, sched, cycles, actions_for(an)))

    def _execute(self, an: Analysis, sched, inputs: Mapping[str, np.ndarray], fail) -> tuple[dict, list]:
        """Run every instruction's function in start order: (outputs, [(output not fully written, first byte)])."""
        program, config = an.program, self.config
        initial = load_inputs(program, inputs)
        dram = _Memory("DRAM", MEM_DRAM, program.dram_size)
        for name, raw in initial.items():
            t = program.tensor(name)
            dram.data[t.addr:t.end] = raw
            dram.valid[t.addr:t.end] = True
        memories = _Memories({MEM_DRAM: dram, MEM_SP: _Memory("scratchpad", MEM_SP, config.scratchpad.size_bytes),
                              MEM_ACC: _Memory("accumulator buffer", MEM_ACC, config.accumulator.size_bytes)})
        handlers, args = _prepare(an, memories, preloaded=set(initial))
        # Functions run in time order (ties: program order), so memory is seen as the hardware would.
        order = np.lexsort((np.arange(an.n), sched.start)).tolist()
        try:
            with np.errstate(all="ignore"):
                _execute(order, handlers, args)
        except Hazard as hz:
            raise fail(hz.index, hz.message) from None
        outputs, unwritten = {}, []
        for t in program.outputs:
            written = dram.valid[t.addr:t.end]
            if not written.all():
                unwritten.append((t.name, t.addr + int(np.argmin(written))))
            outputs[t.name] = dram.data[t.addr:t.end].view(t.dtype.np).reshape(t.shape).copy()
        return outputs, unwritten


def _execute(order: list[int], handlers: list, args: list) -> None:
    i = -1
    try:
        for i in order:
            h = handlers[i]
            if h is not None:
                h(args[i])
    except Hazard as hz:
        hz.index = i
        raise


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
# Preparing instruction functions
# ---------------------------------------------------------------------------------------

def _prepare(an: Analysis, memories: dict, preloaded: set[str]) -> tuple[list, list]:
    """handlers[i](args[i]) performs instruction i; None for SYNC and FINISH.

    `preloaded`: the DRAM tensors written before the run (inputs, weights); loads from them
    need no initialization check, since written flags never revert.
    """
    n = an.n
    handlers: list = [None] * n
    args: list = [None] * n
    instrs = an.program.instructions
    # DMAs: one generic handler, arguments from the range arrays.
    for cls in (Load, Store):
        idx = an.groups.get(cls)
        if idx is None:
            continue
        src_mem, dst_mem = an.mem[idx, 0], an.mem[idx, 1]
        slo, shi, dlo, dhi = an.lo[idx, 0], an.hi[idx, 0], an.lo[idx, 1], an.hi[idx, 1]
        strided = ((an.pattern[idx, 0, 0] > 1) & (an.pattern[idx, 0, 1] != an.pattern[idx, 0, 2])) | \
                  ((an.pattern[idx, 1, 0] > 1) & (an.pattern[idx, 1, 1] != an.pattern[idx, 1, 2]))
        needs_check = np.ones(len(idx), dtype=bool)
        if cls is Load:
            tensors = TensorIndex(an.program.tensors)
            k = np.searchsorted(np.asarray(tensors.starts, dtype=np.int64), slo, side="right") - 1
            done = np.array([t.name in preloaded for t in tensors.ordered], dtype=bool)
            needs_check = ~done[k]
        mem_list = [memories[m] for m in range(3)]
        for j, i, sm, dm, a, b, c, d, st, chk in zip(range(len(idx)), idx.tolist(), src_mem.tolist(), dst_mem.tolist(),
                                                    slo.tolist(), shi.tolist(), dlo.tolist(), dhi.tolist(),
                                                    strided.tolist(), needs_check.tolist()):
            src, dst = mem_list[sm], mem_list[dm]
            if st:
                handlers[i] = _dma_strided
                args[i] = (src, dst, tuple(an.pattern[i, 0]), tuple(an.pattern[i, 1]), a, c)
            else:
                handlers[i] = _dma_checked if chk else _dma_packed
                args[i] = (src.data, src.valid, a, b, dst.data, dst.valid, c, d, src.name)
    # Compute: a closure per distinct instruction.
    closures: dict[Instruction, Callable] = {}
    for cls in (LutBuild, LutMma, Mma, Vec, Red):
        idx = an.groups.get(cls)
        if idx is None:
            continue
        roles = SLOT_ROLES[cls]
        for i, mems, los, his, writes, used in zip(idx.tolist(), an.mem[idx].tolist(), an.lo[idx].tolist(),
                                                    an.hi[idx].tolist(), an.write[idx].tolist(), an.used[idx].tolist()):
            instr = instrs[i]
            fn = closures.get(instr)
            if fn is None:
                ranges = [(memories[m], lo, hi, role, w) for m, lo, hi, role, w, u in zip(mems, los, his, roles, writes, used) if u]
                fn = closures[instr] = _compile(instr, ranges, memories, an.config)
            handlers[i] = fn
    return handlers, args


def _dma_packed(a) -> None:
    src, _, slo, shi, dst, dvalid, dlo, dhi, _ = a
    dst[dlo:dhi] = src[slo:shi]
    dvalid[dlo:dhi] = True


def _dma_checked(a) -> None:
    src, svalid, slo, shi, dst, dvalid, dlo, dhi, name = a
    ok = svalid[slo:shi]
    if not ok.all():
        first = slo + int(np.argmin(ok))
        raise Hazard(f"read of uninitialized {name}: src [{slo:#x}..{shi:#x}) byte {first:#x} was never written")
    dst[dlo:dhi] = src[slo:shi]
    dvalid[dlo:dhi] = True


def _pattern_view(arr: np.ndarray, lo: int, pattern) -> np.ndarray:
    rows, row_bytes, stride = (int(v) for v in pattern)
    return np.ndarray((rows, row_bytes), dtype=arr.dtype, buffer=arr, offset=lo, strides=(stride * arr.itemsize, arr.itemsize))


def _dma_strided(a) -> None:
    src, dst, sp_, dp_, slo, dlo = a
    ok = _pattern_view(src.valid, slo, sp_)
    if not ok.all():
        rows, row_bytes, stride = (int(v) for v in sp_)
        row, col = divmod(int(np.argmin(ok.reshape(-1))), row_bytes)
        raise Hazard(f"read of uninitialized {src.name}: src byte {slo + row * stride + col:#x} was never written")
    _pattern_view(dst.data, dlo, dp_)[...] = _pattern_view(src.data, slo, sp_)
    _pattern_view(dst.valid, dlo, dp_)[...] = True


def _compile(instr: Instruction, ranges: list, memories: _Memories, config: AccelConfig) -> Callable:
    """The function that performs compute instruction `instr` on the memories.

    `ranges`: (memory, lo, hi, role, is_write) of each byte range it touches. Written flags
    only ever go from false to true, so once an instruction's reads were found initialized
    and its writes marked, later runs of the same (identical) instruction skip both.
    """
    reads = [(mem.valid[lo:hi], mem, lo, hi, role) for mem, lo, hi, role, w in ranges if not w]
    marks = [mem.valid[lo:hi] for mem, lo, hi, role, w in ranges if w]
    body = _BODIES[type(instr)](instr, memories, config)
    settled = False

    def run(_=None) -> None:
        nonlocal settled
        if settled:
            body()
            return
        for valid, mem, lo, hi, role in reads:
            if not valid.all():
                first = lo + int(np.argmin(valid))
                raise Hazard(f"read of uninitialized {mem.name}: {role} {MEM_NAMES[mem.mem]}[{lo:#x}..{hi:#x}) "
                             f"byte {first:#x} was never written")
        body()
        for m in marks:
            m[...] = True
        settled = True

    return run


# ---------------------------------------------------------------------------------------
# Instruction bodies
# ---------------------------------------------------------------------------------------

_MEM_OF_SPACE = (MEM_SP, MEM_SP, MEM_ACC)  # by Space code (NONE never reaches a body)
_NP_OF_DTYPE = tuple(d.np for d in DType)  # by DType code
_INT_RANGE = {np.dtype(np.int8): (-128, 127), np.dtype(np.int16): (-32768, 32767),
              np.dtype(np.int32): (-(1 << 31), (1 << 31) - 1), np.dtype(np.uint8): (0, 255)}


def _typed(memories, op: Operand, shape: tuple[int, ...]) -> np.ndarray:
    data = memories[_MEM_OF_SPACE[op.space]].data
    return np.ndarray(shape, dtype=_NP_OF_DTYPE[op.dtype], buffer=data, offset=op.addr)


def _store_result(dst: np.ndarray, result: np.ndarray) -> None:
    """Write a float32 or int64 result into dst: floats cast, ints round-half-even and saturate."""
    if dst.dtype.kind in "iu":
        lo, hi = _INT_RANGE[dst.dtype]
        if result.dtype.kind == "f":
            result = np.rint(result)
            np.clip(result, lo, hi, out=result)
            if np.isnan(result.sum()):  # clipped values are finite, so only a NaN makes the sum NaN
                raise Hazard(f"NaN converted to {dst.dtype.name}")
        else:
            result = np.clip(result, lo, hi)
    dst[...] = result


def _body_lut_build(instr: LutBuild, memories, config: AccelConfig):
    g = config.lut.group
    x = _typed(memories, instr.src, (instr.rows, instr.k))
    _, params_at, _ = table_block_layout(instr.rows, instr.k, g, instr.sym, instr.dst.dtype.size, instr.qgroup)
    sp = memories[MEM_SP]
    entries = sp.view(instr.dst.addr, instr.dst.dtype.np, (instr.k // g, instr.rows, table_entries(g, instr.sym)))
    params = sp.view(instr.dst.addr + params_at, np.dtype(np.float32), (instr.k // instr.qgroup, 2, instr.rows))
    tdtype = instr.dst.dtype.np

    def body() -> None:
        try:
            e, p = build_tables(x, g, instr.sym, tdtype, instr.qgroup)
        except ValueError as err:
            raise Hazard(str(err)) from None
        entries[...] = e
        params[...] = p

    return body


def _overflow(dtype: np.dtype, value: np.ndarray, what: str) -> Hazard:
    lo, hi = _INT_RANGE[dtype]
    bad = value[(value < lo) | (value > hi)]
    return Hazard(f"{what} overflows the {dtype.name} accumulator: {int(bad.flat[0])} is outside [{lo}, {hi}]")


def _body_lut_mma(instr: LutMma, memories, config: AccelConfig):
    g = config.lut.group
    sp = memories[MEM_SP]
    tables = sp.view(instr.tables.addr, instr.tables.dtype.np, (instr.k // g, instr.m, table_entries(g, instr.sym)))
    weights = sp.data[instr.weights.addr: instr.weights.addr + weight_plane_bytes(instr.n, instr.k, instr.bits)]
    dst = _typed(memories, instr.dst, (instr.m, instr.n))
    compute = make_lut_mma(tables, weights, instr.m, instr.n, instr.k, instr.bits, g, instr.sym, memories.table_cache)
    if dst.dtype.kind != "i":
        def body_float() -> None:
            res = compute()
            if instr.accum:
                res = dst.astype(np.float32) + res
            dst[...] = res

        return body_float
    lo, hi = _INT_RANGE[dst.dtype]
    # int8 entries have magnitude <= 128: small enough tiles cannot overflow, so skip the check.
    check = instr.accum or lut_mma_bound(TABLE_QMAX + 1, instr.k, instr.bits, g) > hi

    def body_int() -> None:
        res = compute()
        if instr.accum:
            res = res + dst
        if check and (res.min() < lo or res.max() > hi):
            raise _overflow(dst.dtype, res, "LUT.MMA result")
        dst[...] = res

    return body_int


def _body_mma(instr: Mma, memories, config: AccelConfig):
    a = _typed(memories, instr.a, (instr.m, instr.k))
    b = _typed(memories, instr.b, (instr.n, instr.k) if instr.transpose_b else (instr.k, instr.n))
    dst = _typed(memories, instr.dst, (instr.m, instr.n))
    integer = dst.dtype.kind == "i"
    lo, hi = _INT_RANGE.get(dst.dtype, (0, 0))

    def body() -> None:
        bm = b.T if instr.transpose_b else b
        if integer:
            # int8 products summed over k < 2^37 stay below 2^53: float64 BLAS is exact here.
            res = (a.astype(np.float64) @ bm.astype(np.float64)).astype(np.int64)
            if instr.accum:
                res = res + dst
            if res.size and (res.min() < lo or res.max() > hi):
                raise _overflow(dst.dtype, res, "MMA result")
        else:
            res = a.astype(np.float32) @ bm.astype(np.float32)
            if instr.accum:
                res = dst.astype(np.float32) + res
        dst[...] = res

    return body


def _vec_source(memories, op: Operand, rows: int, cols: int) -> np.ndarray:
    shape = {Bcast.TILE: (rows, cols), Bcast.COL: (cols,), Bcast.ROW: (rows, 1), Bcast.SCALAR: (1,)}[op.bcast]
    return _typed(memories, op, shape)


_INT_FUNCS = {VecFunc.MOV, VecFunc.ADD, VecFunc.SUB, VecFunc.MUL, VecFunc.MAX, VecFunc.MIN, VecFunc.FMA, VecFunc.RELU}
_GELU_C = np.float32(np.sqrt(2.0 / np.pi))


def _vec_math(func: VecFunc, a, b, c, imm):
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


def _body_vec(instr: Vec, memories, config: AccelConfig):
    rows, cols, func = instr.rows, instr.cols, instr.func
    dst = _typed(memories, instr.dst, (rows, cols))
    imm = np.float32(instr.imm)
    if func is VecFunc.DEQ:
        a = _typed(memories, instr.a, (rows, cols))
        b = _typed(memories, instr.b, (2, cols))
        c = _typed(memories, instr.c, (2, rows))
        scale, zero = b[0], b[1]  # per column
        row_scale, row_sum = c[0][:, None], c[1][:, None]  # per row
        tile = memories.scratch((rows, cols), 0)
        correction = memories.scratch((rows, cols), 1)

        direct = dst.dtype == np.float32 and not instr.accum  # write the last product straight into dst

        def deq() -> None:
            # scale[c] * ((imm * row_scale[r]) * a[r, c] - zero[c] * row_sum[r]), in f32, in this order
            np.multiply(a, imm * row_scale, out=tile)
            np.multiply(zero, row_sum, out=correction)
            np.subtract(tile, correction, out=tile)
            if direct:
                np.multiply(tile, scale, out=dst)
                return
            np.multiply(tile, scale, out=tile)
            if instr.accum:
                np.add(dst, tile, out=tile)
            dst[...] = tile

        return deq
    srcs = [_vec_source(memories, op, rows, cols) if not op.is_none else None for op in (instr.a, instr.b, instr.c)]
    used = [s for s in srcs if s is not None]
    integer = func in _INT_FUNCS and dst.dtype.kind in "iu" and all(s.dtype.kind in "iu" for s in used)
    work = np.int64 if integer else np.float32

    def body() -> None:
        a, b, c = (np.asarray(s, dtype=work) if s is not None else None for s in srcs)
        res = _vec_math(func, a, b, c, imm)
        if instr.accum:
            res = dst.astype(work) + res
        _store_result(dst, res)

    return body


def _body_red(instr: Red, memories, config: AccelConfig):
    src = _typed(memories, instr.src, (instr.rows, instr.cols))
    dst = _typed(memories, instr.dst, (instr.rows,))
    integer = src.dtype.kind in "iu" and dst.dtype.kind in "iu"
    work = np.int64 if integer else np.float32
    func = instr.func

    def body() -> None:
        x = src.astype(work)
        if func is RedFunc.SUM:
            res = x.sum(axis=1, dtype=work)
        elif func is RedFunc.SUMSQ:
            res = (x * x).sum(axis=1, dtype=work)
        else:
            res = x.max(axis=1)
        if instr.accum:
            prev = dst.astype(work)
            res = np.maximum(prev, res) if func is RedFunc.MAX else prev + res
        _store_result(dst, res)

    return body


_BODIES = {LutBuild: _body_lut_build, LutMma: _body_lut_mma, Mma: _body_mma, Vec: _body_vec, Red: _body_red}
