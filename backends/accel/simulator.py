"""The simulator: functional execution on NumPy arrays, driven by the timing model.

    result = Simulator(config).run(program, {"x": x})
    result.outputs["y"], result.report.to_text()

A run has four phases. (1) Static: `analysis.analyze` validates the program and computes
every instruction's byte ranges, and the timing model its cycles and actions, column by
column with NumPy. (2) Schedule: `timing.schedule` gives every instruction's start and end
cycle. (3) Functional: each instruction's function (`functional.prepare`) runs, in start
order: DMAs through one handler with precomputed slices, compute instructions through
closures over NumPy views prepared once per distinct instruction; integer LUT.MMA lookups and
VEC.DEQ epilogues through TVM-compiled kernels where they apply (kernels.py; the same bits as
the NumPy path). (4) Data races are found from the timeline; the report is computed.
`Simulator(config, functional=False)` skips phase 3.

Reading a byte nothing has written is a hazard, as are out-of-bounds addresses
(validation), deadlocks (schedule), data races and integer accumulator overflow. Each is a
LutcError naming the instruction and its queue. Byte ranges and the execution order are
static, so which bytes are written when is worked out before running
(`dataflow.check_written`): the hot loop only moves and computes data.
"""

from __future__ import annotations

import gc
import threading
import weakref
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from lutc.diagnostics import LutcError
from lutc.backends.accel.analysis import Analysis, analyze
from lutc.backends.accel.config import AccelConfig
from lutc.backends.accel.dataflow import check_written
from lutc.backends.accel.functional import COMPILED_MIN, Views, kernels_for, plan as make_plan, prepare
from lutc.backends.accel.kernels import SimKernels
from lutc.backends.accel.program import MEM_DRAM, Program, describe_instruction, instruction_location, load_inputs
from lutc.backends.accel.report import SimReport, build_report
from lutc.backends.accel.timing import Hazard, actions_for, cycles_for, find_race, schedule

__all__ = ["COMPILED_MIN", "SimResult", "Simulator"]


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
        return SimResult(outputs, build_report(an, sched, static.cycles, static.actions, static.kernels))


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
        found = kernels_for(an, compiled, fail)
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
            views = Views(mems)
            self._plan = (mems, views, order, pos, prepare(an, views, pos, self.kernels))
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
            uninit, unwritten = check_written(an, pos, preloaded, self.kernels)
            stop = an.n if uninit is None else uninit[0]  # run up to the bad read: earlier hazards come first
            plan = make_plan(handlers, order[:stop].tolist(), views, self.kernels)
            self._uninit[which] = (uninit, plan, unwritten)
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
