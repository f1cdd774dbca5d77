"""Simulation reports: figures computed once, rendered as text (for FileCheck), JSON and a
Chrome / Perfetto trace (`traceEvents`: one track per unit, one slice per instruction).

docs/simulator.md says what every figure means.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lutc.diagnostics import LutcError
from lutc.backends.accel.analysis import CLASS_CODE, CLASSES, Analysis, write_runs
from lutc.backends.accel.isa import MNEMONIC, Finish, Load, LutMma, Opcode, Queue, Red, RedFunc, Store, Vec, VecFunc
from lutc.backends.accel.kernels import SimKernels
from lutc.backends.accel.program import MEM_ACC, MEM_SP, TRAFFIC_CLASSES, TensorIndex
from lutc.backends.accel.timing import ACTION_LEVEL, ACTIONS, ENERGY_FIELD, UNIT_OF_CLASS, UNITS, Schedule

# CLASSES index -> UNITS index (-1: SYNC and FINISH occupy no unit)
_UNIT_OF_CLASS = np.array([UNITS.index(UNIT_OF_CLASS[cls]) if UNIT_OF_CLASS[cls] else -1 for cls in CLASSES], dtype=np.int64)

UNIT_LABEL = {"load": "load DMA", "lut": "LUT array", "mma": "MMA array", "vec": "vector unit", "store": "store DMA"}
QUEUES = ("load", "compute", "store")
LEVELS = ("dram", "scratchpad", "accumulator", "logic")


@dataclass
class QueueFigures:
    busy: int
    stall: int
    idle: int
    stall_causes: dict[str, int]  # "token from <queue>" -> cycles


@dataclass
class UnitFigures:
    instructions: int
    busy: int
    idle: int
    utilization: float  # busy / total


@dataclass
class LayerFigures:
    name: str
    instructions: int
    start: int
    end: int
    busy: dict[str, int]  # per queue


@dataclass
class SimReport:
    program: str
    config: str
    clock_mhz: float
    tokens: int
    total_cycles: int
    time_us: float
    instructions: int
    queues: dict[str, QueueFigures]
    units: dict[str, UnitFigures]
    layers: list[LayerFigures]
    lut_lookups: int
    lut_peak_per_cycle: float
    lut_mma_cycles: int
    lut_utilization: float  # lookups / (peak * total cycles)
    lut_utilization_busy: float  # lookups / (peak * LUT.MMA cycles)
    dram_read: dict[str, int]  # per traffic class
    dram_written: dict[str, int]
    dram_by_tensor: dict[str, dict[str, int]]  # tensor -> {"read": .., "written": ..}
    scratchpad_high_water: int
    scratchpad_capacity: int
    scratchpad_written: int
    accumulator_high_water: int
    accumulator_capacity: int
    opcode_counts: dict[str, int]
    energy_pj: float
    energy_by_unit: dict[str, float]
    energy_by_level: dict[str, float]
    actions: dict[str, int]
    leftover_tokens: dict[str, int] = field(default_factory=dict)
    # (program, schedule, slots, units): what the trace is built from, on demand.
    _timeline_source: tuple | None = field(default=None, repr=False, compare=False)

    @property
    def energy_per_token_pj(self) -> float:
        return self.energy_pj / self.tokens

    # -- renderers ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("_timeline_source")
        out["energy_per_token_pj"] = self.energy_per_token_pj
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def to_text(self) -> str:
        return _render_text(self)

    def to_trace(self) -> dict:
        return _render_trace(self)

    def write_trace(self, path: str | Path) -> None:
        try:
            Path(path).write_text(json.dumps(self.to_trace()), encoding="utf-8")
        except OSError as err:
            raise LutcError(f"cannot write trace '{path}': {err.strerror}") from None


# ---------------------------------------------------------------------------------------
# Building the figures
# ---------------------------------------------------------------------------------------

def _mnemonic_order(name: str) -> tuple:
    head, _, func = name.partition(".")
    for op, m in MNEMONIC.items():
        if name == m:
            return (int(op), 0)
    if head == "VEC":
        return (int(Opcode.VEC), int(VecFunc[func]))
    if head == "RED":
        return (int(Opcode.RED), int(RedFunc[func]))
    return (99, 0)


def written_bytes(an: Analysis, mem: int) -> int:
    """How many distinct bytes of memory `mem` the program writes (union of its write ranges)."""
    run_lo, run_hi = write_runs(an, mem)
    return int((run_hi - run_lo).sum())


@dataclass
class _Sums:
    """The integer figures a report is built from (report_sums in kernels.py, or NumPy)."""

    queue_busy: list[int]  # per queue
    unit_sums: np.ndarray  # (1 + units, 2 + actions): instructions, busy cycles, action counts; row 0: no unit
    layer_sums: np.ndarray  # (layer ids, 7): instructions, busy per queue, first start, last end, first instruction
    traffic: np.ndarray  # (tensors by address, 2): DRAM bytes loaded, stored
    lut_mma_cycles: int
    sp_high_water: int
    acc_high_water: int


def build_report(an: Analysis, sched: Schedule, cycles: np.ndarray, actions: np.ndarray,
                 compiled: SimKernels | None = None) -> SimReport:
    """All report figures, from the analysis (per-instruction arrays) and the schedule.
    `compiled`: the simulator's kernels, whose `report_sums` sums the integer figures in one call
    (the same figures as NumPy's)."""
    program, config = an.program, an.config
    n = an.n
    total = sched.total_cycles
    index = TensorIndex(program.tensors)
    kernel = compiled and compiled.report_sums()
    if kernel and n:
        sums = _sums_compiled(kernel, an, sched, cycles, actions, index)
    else:
        sums = _sums(an, sched, cycles, actions, index)

    queues = {}
    for q in Queue:
        busy = sums.queue_busy[q]
        causes = {f"token from {src.text}": c for (dst, src), c in sorted(sched.stalls.items()) if dst == q}
        stall = sum(causes.values())
        queues[q.text] = QueueFigures(busy, stall, total - busy - stall, causes)

    per_unit = sums.unit_sums.tolist()
    unit_figs = {u: UnitFigures(count, busy, total - busy, busy / total if total else 0.0)
                 for u, (count, busy, *_) in zip(UNITS, per_unit[1:])}

    layer_rows = [(row[6], lid, row) for lid, row in enumerate(sums.layer_sums.tolist()) if row[0]]
    layers = [LayerFigures(program.layer_name(lid) or "-", row[0], row[4], row[5], {q.text: row[1 + q] for q in Queue})
              for _, lid, row in sorted(layer_rows)]  # in order of first appearance

    totals = [sum(column) for column in zip(*per_unit)][2:]  # per action, over all instructions (exact)
    lookups = totals[ACTIONS.index("lookups")]
    peak = config.lut_peak_lookups_per_cycle
    lut_mma_cycles = sums.lut_mma_cycles

    dram_read = dict.fromkeys(TRAFFIC_CLASSES, 0)
    dram_written = dict.fromkeys(TRAFFIC_CLASSES, 0)
    by_tensor = {}
    for t, (read, written) in zip(index.ordered, sums.traffic.tolist()):
        dram_read[t.traffic_class] += read
        dram_written[t.traffic_class] += written
        if read or written:
            by_tensor[t.name] = {"read": read, "written": written}
    by_tensor = {t.name: by_tensor[t.name] for t in program.tensors if t.name in by_tensor}  # in declaration order

    counts: dict[str, int] = {}
    for cls, idx in an.groups.items():
        if cls in (Vec, Red):
            funcs = np.bincount(an.columns[cls]["func"])
            enum = VecFunc if cls is Vec else RedFunc
            for f, c in enumerate(funcs.tolist()):
                if c:
                    counts[f"{'VEC' if cls is Vec else 'RED'}.{enum(f).name}"] = c
        else:
            counts[MNEMONIC[cls.OPCODE]] = len(idx)
    counts = dict(sorted(counts.items(), key=lambda kv: _mnemonic_order(kv[0])))

    # Energy from the exact integer action counts: pJ per action times its count, summed in ACTIONS order.
    pj = [getattr(config.energy, ENERGY_FIELD[a]) for a in ACTIONS]
    by_unit = {u: sum(p * c for p, c in zip(pj, row[2:])) for u, row in zip(UNITS, per_unit[1:])}
    by_level = dict.fromkeys(LEVELS, 0.0)
    for a, p, c in zip(ACTIONS, pj, totals):
        by_level[ACTION_LEVEL[a]] += p * c

    report = SimReport(
        program=program.name, config=config.name, clock_mhz=config.clock_mhz, tokens=program.tokens,
        total_cycles=total, time_us=total / config.clock_mhz, instructions=n,
        queues=queues, units=unit_figs, layers=layers,
        lut_lookups=lookups, lut_peak_per_cycle=peak, lut_mma_cycles=lut_mma_cycles,
        lut_utilization=lookups / (peak * total) if total else 0.0,
        lut_utilization_busy=lookups / (peak * lut_mma_cycles) if lut_mma_cycles else 0.0,
        dram_read=dram_read, dram_written=dram_written, dram_by_tensor=by_tensor,
        scratchpad_high_water=sums.sp_high_water, scratchpad_capacity=config.scratchpad.size_bytes,
        scratchpad_written=written_bytes(an, MEM_SP),
        accumulator_high_water=sums.acc_high_water, accumulator_capacity=config.accumulator.size_bytes,
        opcode_counts=counts, energy_pj=sum(p * c for p, c in zip(pj, totals)), energy_by_unit=by_unit,
        energy_by_level=by_level, actions=dict(zip(ACTIONS, totals)),
        leftover_tokens={f"{src.text}->{dst.text}": c for (src, dst), c in sched.leftover_tokens.items()},
    )
    report._timeline_source = (program, sched, _UNIT_OF_CLASS[an.kind])
    return report


def _sums(an: Analysis, sched: Schedule, cycles: np.ndarray, actions: np.ndarray, index: TensorIndex) -> _Sums:
    """The report's integer figures in NumPy (sums by bincount: exact, float64 holds them)."""
    unit_row = _UNIT_OF_CLASS[an.kind] + 1
    queue_busy = np.bincount(an.queue, weights=cycles, minlength=len(Queue)).astype(np.int64).tolist()
    rows = 1 + len(UNITS)
    unit_sums = np.stack([np.bincount(unit_row, minlength=rows), np.bincount(unit_row, weights=cycles, minlength=rows)]
                         + [np.bincount(unit_row, weights=actions[:, k], minlength=rows)
                            for k in range(actions.shape[1])], axis=1).astype(np.int64)
    body = np.flatnonzero(an.kind != CLASS_CODE[Finish])
    layer = an.layer[body]
    ids = int(an.layer.max()) + 1 if an.n else 0  # as the kernel's table: every tag, FINISH's too
    layer_sums = np.zeros((ids, 7), dtype=np.int64)
    layer_sums[:, 0] = np.bincount(layer, minlength=ids)
    layer_sums[:, 1:4] = np.bincount(layer * 3 + an.queue[body], weights=cycles[body], minlength=3 * ids).reshape(ids, 3)
    layer_sums[:, 4], layer_sums[:, 5], layer_sums[:, 6] = np.iinfo(np.int64).max, np.iinfo(np.int64).min, -1
    np.minimum.at(layer_sums[:, 4], layer, sched.start[body])
    np.maximum.at(layer_sums[:, 5], layer, sched.end[body])
    present, first = np.unique(layer, return_index=True)  # each layer's first instruction
    layer_sums[present, 6] = body[first]
    traffic = np.zeros((len(index.ordered), 2), dtype=np.int64)
    for cls, slot in ((Load, 0), (Store, 1)):
        idx = an.groups.get(cls)
        if idx is not None:
            k = np.searchsorted(np.asarray(index.starts, dtype=np.int64), an.lo[idx, slot], side="right") - 1
            nbytes = an.pattern[idx, slot, 0] * an.pattern[idx, slot, 1]
            traffic[:, slot] = np.bincount(k, weights=nbytes, minlength=len(index.ordered))
    sp_used, acc_used = an.used & (an.mem == MEM_SP), an.used & (an.mem == MEM_ACC)
    return _Sums(queue_busy, unit_sums, layer_sums, traffic, int(cycles[an.kind == CLASS_CODE[LutMma]].sum()),
                 int(an.hi[sp_used].max()) if sp_used.any() else 0, int(an.hi[acc_used].max()) if acc_used.any() else 0)


def _sums_compiled(kernel, an: Analysis, sched: Schedule, cycles: np.ndarray, actions: np.ndarray,
                   index: TensorIndex) -> _Sums:
    n_actions = actions.shape[1]
    queue_sums, extremes = np.empty(3, dtype=np.int64), np.empty(3, dtype=np.int64)
    unit_sums = np.empty((1 + len(UNITS), 2 + n_actions), dtype=np.int64)
    layer_sums = np.empty((int(an.layer.max()) + 1, 7), dtype=np.int64)
    tensor_starts = np.array(index.starts or [np.iinfo(np.int64).max], dtype=np.int64)  # no empty arrays
    traffic = np.empty((len(tensor_starts), 2), dtype=np.int64)
    kernel(an.kind, an.queue, an.layer.astype(np.int64, copy=False), cycles.astype(np.int64, copy=False), sched.start,
           sched.end, actions.astype(np.int64, copy=False), _UNIT_ROW, _REPORT_CODES, an.mem, an.lo, an.hi,
           an.used.view(np.uint8), an.pattern, tensor_starts, queue_sums, unit_sums, layer_sums, traffic, extremes)
    lut_mma_cycles, sp_hw, acc_hw = extremes.tolist()
    return _Sums(queue_sums.tolist(), unit_sums, layer_sums, traffic[:len(index.ordered)], lut_mma_cycles, sp_hw, acc_hw)


_UNIT_ROW = _UNIT_OF_CLASS + 1  # CLASSES index -> row of _Sums.unit_sums
_REPORT_CODES = np.array([CLASS_CODE[cls] for cls in (Finish, LutMma, Load, Store)], dtype=np.int64)


def _timeline(r: SimReport) -> list[dict]:
    """One entry per instruction (FINISH excluded), built when a trace is asked for."""
    if r._timeline_source is None:
        return []
    program, sched, unit_code = r._timeline_source
    out = []
    for i, ins in enumerate(program.instructions):
        if isinstance(ins, Finish):
            continue
        waited = int(sched.waited_for[i])
        out.append({
            "index": i, "name": ins.mnemonic, "queue": ins.queue.text,
            "unit": UNITS[unit_code[i]] if unit_code[i] >= 0 else None,
            "layer": program.layer_name(ins.layer), "ready": int(sched.ready[i]), "start": int(sched.start[i]),
            "end": int(sched.end[i]), "waited_for": Queue(waited).text if waited >= 0 else None,
        })
    return out


# ---------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------

def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _render_text(r: SimReport) -> str:
    out = []
    w = out.append
    w(f"lutc accel simulation: program '{r.program}' on '{r.config}' ({r.clock_mhz:g} MHz)")
    w(f"total cycles: {r.total_cycles}")
    w(f"total time: {r.time_us:.3f} us")
    w(f"instructions: {r.instructions}")
    w("")
    w(f"{'queue':<10}{'busy':>10}{'stall':>10}{'idle':>10}")
    for name in QUEUES:
        q = r.queues[name]
        w(f"{name:<10}{q.busy:>10}{q.stall:>10}{q.idle:>10}")
    w("")
    w(f"{'unit':<10}{'instrs':>10}{'busy':>10}{'idle':>10}{'util':>10}")
    for name in UNITS:
        u = r.units[name]
        w(f"{name:<10}{u.instructions:>10}{u.busy:>10}{u.idle:>10}{_pct(u.utilization):>10}")
    w("")
    w("stalls:")
    any_stall = False
    for name in QUEUES:
        for cause, cyc in r.queues[name].stall_causes.items():
            w(f"  {name} waits for {cause}: {cyc} cycles")
            any_stall = True
    if not any_stall:
        w("  none")
    w("")
    names = max([20] + [len(layer.name) + 2 for layer in r.layers])  # fused layers have long names
    w(f"{'layer':<{names}}{'instrs':>8}{'start':>10}{'end':>10}{'span':>10}{'load':>10}{'compute':>10}{'store':>10}")
    for layer in r.layers:
        w(f"{layer.name:<{names}}{layer.instructions:>8}{layer.start:>10}{layer.end:>10}{layer.end - layer.start:>10}"
          f"{layer.busy['load']:>10}{layer.busy['compute']:>10}{layer.busy['store']:>10}")
    w("")
    w(f"lut array: {r.lut_lookups} lookups, peak {r.lut_peak_per_cycle:g}/cycle, "
      f"utilization {_pct(r.lut_utilization)} of total, {_pct(r.lut_utilization_busy)} while LUT.MMA runs")
    w(f"{'dram bytes':<14}{'read':>12}{'written':>12}")
    for cls in TRAFFIC_CLASSES:
        w(f"  {cls:<12}{r.dram_read[cls]:>12}{r.dram_written[cls]:>12}")
    w(f"  {'total':<12}{sum(r.dram_read.values()):>12}{sum(r.dram_written.values()):>12}")
    w(f"scratchpad: high-water {r.scratchpad_high_water} of {r.scratchpad_capacity} bytes "
      f"({_pct(r.scratchpad_high_water / r.scratchpad_capacity)}), {r.scratchpad_written} bytes written")
    w(f"accumulator: high-water {r.accumulator_high_water} of {r.accumulator_capacity} bytes "
      f"({_pct(r.accumulator_high_water / r.accumulator_capacity)})")
    w("opcodes: " + ", ".join(f"{k} {v}" for k, v in r.opcode_counts.items()))
    w(f"energy: {r.energy_pj:.1f} pJ total, {r.energy_per_token_pj:.1f} pJ per token ({r.tokens} token{'s' if r.tokens != 1 else ''})")
    w("  by unit: " + ", ".join(f"{u} {r.energy_by_unit[u]:.1f}" for u in UNITS))
    w("  by level: " + ", ".join(f"{lv} {r.energy_by_level[lv]:.1f}" for lv in LEVELS))
    if r.leftover_tokens:
        w("warning: tokens pushed but never popped: " + ", ".join(f"{k} {v}" for k, v in r.leftover_tokens.items()))
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------
# Trace
# ---------------------------------------------------------------------------------------

_TRACKS = {"load": 1, "lut": 2, "mma": 3, "vec": 4, "store": 5}
_STALL_TRACKS = {"load": 6, "compute": 7, "store": 8}


def _render_trace(r: SimReport) -> dict:
    us = 1.0 / r.clock_mhz
    pid = 1
    events: list[dict] = [{"ph": "M", "pid": pid, "name": "process_name", "args": {"name": f"lutc accel: {r.program} on {r.config}"}}]
    for unit, tid in _TRACKS.items():
        events.append({"ph": "M", "pid": pid, "tid": tid, "name": "thread_name", "args": {"name": UNIT_LABEL[unit]}})
        events.append({"ph": "M", "pid": pid, "tid": tid, "name": "thread_sort_index", "args": {"sort_index": tid}})
    for queue, tid in _STALL_TRACKS.items():
        events.append({"ph": "M", "pid": pid, "tid": tid, "name": "thread_name", "args": {"name": f"{queue} queue: stalls and syncs"}})
        events.append({"ph": "M", "pid": pid, "tid": tid, "name": "thread_sort_index", "args": {"sort_index": tid}})
    for e in _timeline(r):
        args = {"index": e["index"], "layer": e["layer"], "start_cycle": e["start"], "cycles": e["end"] - e["start"]}
        if e["start"] > e["ready"]:
            events.append({"ph": "X", "pid": pid, "tid": _STALL_TRACKS[e["queue"]], "name": f"wait {e['waited_for']}",
                           "cat": "stall", "ts": e["ready"] * us, "dur": (e["start"] - e["ready"]) * us,
                           "args": {"index": e["index"], "cycles": e["start"] - e["ready"]}})
        tid = _TRACKS[e["unit"]] if e["unit"] else _STALL_TRACKS[e["queue"]]
        events.append({"ph": "X", "pid": pid, "tid": tid, "name": e["name"], "cat": e["layer"] or "-",
                       "ts": e["start"] * us, "dur": (e["end"] - e["start"]) * us, "args": args})
    return {"traceEvents": events, "displayTimeUnit": "ns",
            "otherData": {"program": r.program, "config": r.config, "total_cycles": r.total_cycles, "clock_mhz": r.clock_mhz}}
