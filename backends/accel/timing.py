"""Timing model: cycles and actions per instruction, the queue schedule, and race detection.

Units: the load DMA engine, the compute units (LUT array, dense MMA array, vector unit) fed
by the one in-order compute queue, and the store DMA engine. docs/simulator.md explains
the model; in short:

* DMA: latency + ceil(bytes / bandwidth) cycles, one request at a time per engine.
* LUT.MMA: ceil(m / rows) * ceil(n / cols) * (k / g) passes, each `bits` planes of
  `cycles_per_plane` cycles. LUT.BUILD: ceil(entries / build_entries_per_cycle).
* MMA: ceil(m / rows) * ceil(n / cols) * ceil(k / depth).
* VEC: ceil(rows * cols / lanes) lane groups, times the function's cost (basic ops + special
  primitives * special_cycles). RED: ceil(rows * cols / lanes).
* SYNC and FINISH: 0 cycles.

Each queue starts its next instruction as soon as its unit is free and the tokens it pops
have been pushed (tokens are pushed when the pushing instruction completes); `schedule`
computes every start and end cycle before anything runs (see its docstring). The simulator
then runs the instructions' functions in start order. Two instructions of different queues
that overlap in time and touch the same bytes, one of them writing, are a data race
(`find_race`).

The scalar functions (`instruction_cycles`, `instruction_actions`) define the model; the
vectorized ones (`cycles_for`, `actions_for`) compute the same for a whole program, and a
test checks that they agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lutc.backends.accel.config import AccelConfig
from lutc.backends.accel.isa import (
    Finish, Instruction, Load, LutBuild, LutMma, Mma, Queue, Red, Space, Store, Sync, Vec, VecFunc,
)
from lutc.backends.accel.lut import table_block_layout, table_entries, weight_plane_bytes
from lutc.backends.accel.program import MEM_ACC, MEM_DRAM, MEM_SP, vec_operand_bytes

if TYPE_CHECKING:
    from lutc.backends.accel.analysis import Analysis
    from lutc.backends.accel.kernels import SimKernels

UNITS = ("load", "lut", "mma", "vec", "store")
UNIT_QUEUE = {"load": Queue.LOAD, "lut": Queue.COMPUTE, "mma": Queue.COMPUTE, "vec": Queue.COMPUTE, "store": Queue.STORE}
# Action counters, in this order, per instruction.
ACTIONS = ("dram_bytes", "scratchpad_bytes", "accumulator_bytes", "lookups", "adds", "macs", "vector_ops")
ENERGY_FIELD = {"dram_bytes": "dram_byte", "scratchpad_bytes": "scratchpad_byte", "accumulator_bytes": "accumulator_byte",
                "lookups": "lookup", "adds": "add", "macs": "mac", "vector_ops": "vector_op"}
ACTION_LEVEL = {"dram_bytes": "dram", "scratchpad_bytes": "scratchpad", "accumulator_bytes": "accumulator",
                "lookups": "logic", "adds": "logic", "macs": "logic", "vector_ops": "logic"}

# (basic operations, special-function primitives) per element, for VEC functions.
VEC_COST = {
    VecFunc.MOV: (1, 0), VecFunc.ADD: (1, 0), VecFunc.SUB: (1, 0), VecFunc.MUL: (1, 0), VecFunc.MAX: (1, 0),
    VecFunc.MIN: (1, 0), VecFunc.FMA: (1, 0), VecFunc.DEQ: (2, 0), VecFunc.MULI: (1, 0), VecFunc.ADDI: (1, 0),
    VecFunc.RELU: (1, 0), VecFunc.EXP: (0, 1), VecFunc.RSQRT: (0, 1), VecFunc.RECIP: (0, 1),
    VecFunc.SIGMOID: (2, 2), VecFunc.SILU: (3, 2), VecFunc.TANH: (3, 2), VecFunc.GELU: (6, 2),
}

# Token channels between queues: (from, to).
CHANNELS = ((Queue.LOAD, Queue.COMPUTE), (Queue.COMPUTE, Queue.LOAD), (Queue.COMPUTE, Queue.STORE), (Queue.STORE, Queue.COMPUTE))


UNIT_OF_CLASS: dict[type, str | None] = {
    Load: "load", Store: "store", LutBuild: "lut", LutMma: "lut", Mma: "mma", Vec: "vec", Red: "vec",
    Sync: None, Finish: None,
}


def instruction_unit(instr: Instruction) -> str | None:
    """The unit an instruction occupies (None: SYNC and FINISH occupy none)."""
    return UNIT_OF_CLASS[type(instr)]


def dma_cycles(nbytes: int, config: AccelConfig) -> int:
    return config.dram.latency_cycles + math.ceil(nbytes / config.dram.bandwidth_bytes_per_cycle)


def lut_mma_passes(m: int, n: int, k: int, config: AccelConfig) -> int:
    lut = config.lut
    return -(-m // lut.rows) * -(-n // lut.cols) * (k // lut.group)


def instruction_cycles(instr: Instruction, config: AccelConfig) -> int:
    """Cycles `instr` occupies its unit."""
    if isinstance(instr, (Load, Store)):
        return dma_cycles(instr.rows * instr.row_bytes, config)
    if isinstance(instr, LutBuild):
        entries = instr.rows * (instr.k // config.lut.group) * table_entries(config.lut.group, instr.sym)
        return -(-entries // config.lut.build_entries_per_cycle)
    if isinstance(instr, LutMma):
        return lut_mma_passes(instr.m, instr.n, instr.k, config) * instr.bits * config.lut.cycles_per_plane
    if isinstance(instr, Mma):
        mma = config.mma
        return -(-instr.m // mma.rows) * -(-instr.n // mma.cols) * -(-instr.k // mma.depth)
    if isinstance(instr, Vec):
        basic, special = VEC_COST[instr.func]
        groups = -(-(instr.rows * instr.cols) // config.vector.lanes)
        return groups * (basic + special * config.vector.special_cycles)
    if isinstance(instr, Red):
        return -(-(instr.rows * instr.cols) // config.vector.lanes)
    return 0


def _mem_bytes(counts: dict, space: Space, nbytes: int) -> None:
    key = "accumulator_bytes" if space is Space.ACC else "scratchpad_bytes"
    counts[key] += nbytes


def instruction_actions(instr: Instruction, config: AccelConfig) -> tuple[int, ...]:
    """How many of each energy-costed action `instr` performs, in ACTIONS order."""
    c = dict.fromkeys(ACTIONS, 0)
    g = config.lut.group
    if isinstance(instr, (Load, Store)):
        nbytes = instr.rows * instr.row_bytes
        c["dram_bytes"] = nbytes
        _mem_bytes(c, instr.sp.space, nbytes)
    elif isinstance(instr, LutBuild):
        entries = instr.rows * (instr.k // g) * table_entries(g, instr.sym)
        _, _, block = table_block_layout(instr.rows, instr.k, g, instr.sym, instr.dst.dtype.size, instr.qgroup)
        c["scratchpad_bytes"] = instr.rows * instr.k * instr.src.dtype.size + block
        c["adds"] = entries  # one add per entry (entries differ from a neighbour by one term)
    elif isinstance(instr, LutMma):
        lookups = instr.bits * instr.m * instr.n * (instr.k // g)
        c["lookups"] = lookups
        c["adds"] = lookups
        c["scratchpad_bytes"] = ((instr.k // g) * instr.m * table_entries(g, instr.sym) * instr.tables.dtype.size
                                 + weight_plane_bytes(instr.n, instr.k, instr.bits))
        c["accumulator_bytes"] = instr.m * instr.n * instr.dst.dtype.size * (2 if instr.accum else 1)
    elif isinstance(instr, Mma):
        c["macs"] = instr.m * instr.n * instr.k
        c["scratchpad_bytes"] = instr.m * instr.k * instr.a.dtype.size + instr.k * instr.n * instr.b.dtype.size
        c["accumulator_bytes"] = instr.m * instr.n * instr.dst.dtype.size * (2 if instr.accum else 1)
    elif isinstance(instr, Vec):
        basic, special = VEC_COST[instr.func]
        c["vector_ops"] = instr.rows * instr.cols * (basic + special * config.vector.special_cycles)
        for role in ("a", "b", "c"):
            op = getattr(instr, role)
            if not op.is_none:
                nbytes = vec_operand_bytes(op, instr.rows, instr.cols) if instr.func is not VecFunc.DEQ or role == "a" \
                    else 2 * (instr.cols if role == "b" else instr.rows) * 4
                _mem_bytes(c, op.space, nbytes)
        _mem_bytes(c, instr.dst.space, instr.rows * instr.cols * instr.dst.dtype.size * (2 if instr.accum else 1))
    elif isinstance(instr, Red):
        c["vector_ops"] = instr.rows * instr.cols
        _mem_bytes(c, instr.src.space, instr.rows * instr.cols * instr.src.dtype.size)
        _mem_bytes(c, instr.dst.space, instr.rows * instr.dst.dtype.size * (2 if instr.accum else 1))
    return tuple(c[a] for a in ACTIONS)


# ---------------------------------------------------------------------------------------
# The same, for all instructions at once (the simulator's path; tests check it against the above)
# ---------------------------------------------------------------------------------------

_VEC_BASIC = np.array([VEC_COST[VecFunc(f)][0] for f in range(len(VecFunc))], dtype=np.int64)
_VEC_SPECIAL = np.array([VEC_COST[VecFunc(f)][1] for f in range(len(VecFunc))], dtype=np.int64)


def _ceil_div(a, b):
    return -(-a // b)


def cycles_for(an: Analysis) -> np.ndarray:
    """instruction_cycles for every instruction."""
    config = an.config
    out = np.zeros(an.n, dtype=np.int64)
    cols, groups = an.columns, an.groups
    lut, mma, vec = config.lut, config.mma, config.vector
    for cls in (Load, Store):
        if cls in groups:
            c = cols[cls]
            nbytes = c["rows"] * c["row_bytes"]
            out[groups[cls]] = config.dram.latency_cycles + np.ceil(nbytes / config.dram.bandwidth_bytes_per_cycle).astype(np.int64)
    if LutBuild in groups:
        c = cols[LutBuild]
        entries = c["rows"] * (c["k"] // lut.group) * np.where(c["sym"] != 0, 1 << (lut.group - 1), 1 << lut.group)
        out[groups[LutBuild]] = _ceil_div(entries, lut.build_entries_per_cycle)
    if LutMma in groups:
        c = cols[LutMma]
        passes = _ceil_div(c["m"], lut.rows) * _ceil_div(c["n"], lut.cols) * (c["k"] // lut.group)
        out[groups[LutMma]] = passes * c["bits"] * lut.cycles_per_plane
    if Mma in groups:
        c = cols[Mma]
        out[groups[Mma]] = _ceil_div(c["m"], mma.rows) * _ceil_div(c["n"], mma.cols) * _ceil_div(c["k"], mma.depth)
    if Vec in groups:
        c = cols[Vec]
        lanes_groups = _ceil_div(c["rows"] * c["cols"], vec.lanes)
        out[groups[Vec]] = lanes_groups * (_VEC_BASIC[c["func"]] + _VEC_SPECIAL[c["func"]] * vec.special_cycles)
    if Red in groups:
        c = cols[Red]
        out[groups[Red]] = _ceil_div(c["rows"] * c["cols"], vec.lanes)
    return out


def actions_for(an: Analysis) -> np.ndarray:
    """instruction_actions for every instruction, as an (n, len(ACTIONS)) array. Memory traffic is
    the byte ranges the analysis found (a 2-D DMA's rows only; an accumulating destination is
    read and written), summed per memory."""
    config = an.config
    g = config.lut.group
    out = np.zeros((an.n, len(ACTIONS)), dtype=np.int64)
    col = {a: k for k, a in enumerate(ACTIONS)}
    rows, row_bytes = an.pattern[..., 0], an.pattern[..., 1]
    nbytes = np.where(row_bytes > 0, rows * row_bytes, an.hi - an.lo) * an.used  # DMA ranges carry their pattern
    for mem, action in ((MEM_DRAM, "dram_bytes"), (MEM_SP, "scratchpad_bytes"), (MEM_ACC, "accumulator_bytes")):
        out[:, col[action]] = (nbytes * (an.mem == mem)).sum(axis=1)
    cols, groups = an.columns, an.groups
    if LutBuild in groups:
        c = cols[LutBuild]
        out[groups[LutBuild], col["adds"]] = c["rows"] * (c["k"] // g) * np.where(c["sym"] != 0, 1 << (g - 1), 1 << g)
    if LutMma in groups:
        c = cols[LutMma]
        lookups = c["bits"] * c["m"] * c["n"] * (c["k"] // g)
        out[groups[LutMma], col["lookups"]] = lookups
        out[groups[LutMma], col["adds"]] = lookups
    if Mma in groups:
        c = cols[Mma]
        out[groups[Mma], col["macs"]] = c["m"] * c["n"] * c["k"]
    if Vec in groups:
        c = cols[Vec]
        ops = _VEC_BASIC[c["func"]] + _VEC_SPECIAL[c["func"]] * config.vector.special_cycles
        out[groups[Vec], col["vector_ops"]] = c["rows"] * c["cols"] * ops
    if Red in groups:
        c = cols[Red]
        out[groups[Red], col["vector_ops"]] = c["rows"] * c["cols"]
    return out


# ---------------------------------------------------------------------------------------
# The scheduler
# ---------------------------------------------------------------------------------------

class Hazard(Exception):
    """Something a correct program never does; the simulator turns it into a LutcError."""

    def __init__(self, message: str, index: int | None = None):
        super().__init__(message)
        self.message = message
        self.index = index


@dataclass
class Schedule:
    start: np.ndarray  # cycle each instruction starts (program order)
    end: np.ndarray  # cycle it completes
    ready: np.ndarray  # cycle its unit was free; start - ready cycles were spent waiting for tokens
    waited_for: np.ndarray  # the queue whose token it waited for last (-1: no stall)
    total_cycles: int
    stalls: dict[tuple[Queue, Queue], int]  # (waiting queue, queue whose token it waited for) -> cycles
    leftover_tokens: dict[tuple[Queue, Queue], int]  # tokens pushed but never popped, per channel


# The channel each token flag (pop_prev, pop_next, push_prev, push_next) uses, per queue; -1: none.
_CHANNEL_OF_FLAG = np.array([[-1, 1, -1, 0], [0, 3, 1, 2], [2, -1, 3, -1]])


def schedule(queue: np.ndarray, deps: np.ndarray, cycles: np.ndarray, compiled: SimKernels | None = None) -> Schedule:
    """Start and end cycle of every instruction.

    Each queue runs its instructions in order, one at a time; an instruction starts when its
    queue's previous one has finished and the tokens it pops have been pushed. Tokens on a
    channel are first-in first-out and each channel has one pushing and one popping queue,
    so the k-th pop on a channel always consumes the k-th push: the dependencies are known
    before running, and the schedule is a longest path through them. A pop without a
    matching push, or a cycle of waits, is a deadlock (Hazard). The last instruction
    (FINISH) completes when all queues have drained. `compiled`: the simulator's kernels
    (kernels.py), whose `schedule_queues` does all of this in one call.
    """
    n = len(cycles)
    body = n - 1  # FINISH is not queued
    kernel = compiled and compiled.schedule_queues()
    found = _schedule_compiled(kernel, queue[:body], deps[:body], cycles[:body]) if kernel and body else None
    if found is None:  # no kernel, or a hazard: the NumPy path (which names it)
        q_arr = queue[:body]
        src, leftover = _token_sources(np.where(deps[:body], _CHANNEL_OF_FLAG[q_arr], -1))
        members = [np.flatnonzero(q_arr == q) for q in range(3)]
        start_a, end_a, free = _longest_path(members, src, cycles, q_arr)
        ready, waited, stalls = _stalls(q_arr, members, src[0], src[1], start_a[:body], end_a[:body])
    else:
        start_a, end_a, free, ready, waited, stalls, leftover = found
    total = max(free)
    if n:
        start_a[n - 1] = end_a[n - 1] = total
        ready = np.append(ready, total)
        waited = np.append(waited, -1)
    return Schedule(start_a, end_a, ready, waited, total, stalls, leftover)


def _schedule_compiled(kernel, queue: np.ndarray, deps: np.ndarray, cycles: np.ndarray):
    """schedule's figures through the compiled kernel (start and end with room for FINISH); None
    on a hazard."""
    n = len(queue)
    start, end = np.zeros(n + 1, dtype=np.int64), np.zeros(n + 1, dtype=np.int64)
    ready, waited = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    counts, stall, state = np.empty(11, dtype=np.int64), np.empty(9, dtype=np.int64), np.empty(4, dtype=np.int64)
    kernel(queue.astype(np.int64, copy=False), deps.view(np.uint8), _CHANNEL_OF_FLAG, cycles.astype(np.int64, copy=False),
           np.empty((3, n), dtype=np.int64), np.empty((4, n), dtype=np.int64), np.empty((2, n), dtype=np.int64),
           start[:n], end[:n], ready, waited, counts, stall, state)
    if state[0]:
        return None
    stalls = {(Queue(k // 3), Queue(k % 3)): c for k, c in enumerate(stall.tolist()) if c}
    pushes, pops = counts[:4].tolist(), counts[4:8].tolist()
    leftover = {CHANNELS[c]: pushes[c] - pops[c] for c in range(len(CHANNELS)) if pushes[c] > pops[c]}
    return start, end, state[1:].tolist(), ready, waited, stalls, leftover


def _longest_path(members: list[np.ndarray], src: np.ndarray, cycles: np.ndarray, queue: np.ndarray):
    """(start, end, each queue's free cycle) of every queued instruction; Hazard on a deadlock."""
    n = len(cycles)
    src_a, src_b = src[0].tolist(), src[1].tolist()
    cyc = cycles.tolist()
    order = [m.tolist() for m in members]
    lens = [len(o) for o in order]
    ptr = [0, 0, 0]
    free = [0, 0, 0]
    start = [0] * n
    end = [-1] * n
    remaining = sum(lens)
    # The longest path: each queue advances until an instruction waits for a token whose pushing
    # instruction has not been scheduled yet; then the next queue. Only start and end are kept
    # here (one step per instruction); stalls are worked out afterwards, column-wise.
    while remaining:
        progress = False
        for q in (0, 1, 2):
            o, p, t_free = order[q], ptr[q], free[q]
            while p < lens[q]:
                i = o[p]
                t = t_free
                a = src_a[i]
                if a >= 0:
                    e = end[a]
                    if e < 0:
                        break
                    if e > t:
                        t = e
                b = src_b[i]
                if b >= 0:
                    e = end[b]
                    if e < 0:
                        break
                    if e > t:
                        t = e
                start[i] = t
                t_free = end[i] = t + cyc[i]
                p += 1
            if p != ptr[q]:
                remaining -= p - ptr[q]
                ptr[q], free[q] = p, t_free
                progress = True
        if not progress:
            raise _cycle(order, ptr, lens, src_a, src_b, end, queue.tolist())
    return np.array(start, dtype=np.int64), np.array(end, dtype=np.int64), free


def _token_sources(chan: np.ndarray) -> tuple[np.ndarray, dict]:
    """For the (instructions, 4) channels of their token flags (-1: flag not set): the instruction
    whose push each pop_prev / pop_next consumes, as (2, instructions) (-1: no pop), and the
    tokens pushed but never popped per channel. The k-th pop on a channel takes the k-th push."""
    src = np.full((2, len(chan)), -1, dtype=np.int64)
    pusher, push_flag = np.nonzero(chan[:, 2:] >= 0)  # in program order
    push_channel = chan[pusher, 2 + push_flag]
    pushers = pusher[np.argsort(push_channel, kind="stable")]  # by channel, in program order within
    pushes = np.bincount(push_channel, minlength=len(CHANNELS))
    popper, pop_flag = np.nonzero(chan[:, :2] >= 0)
    pop_channel = chan[popper, pop_flag]
    by_channel = np.argsort(pop_channel, kind="stable")
    popper, pop_flag, pop_channel = popper[by_channel], pop_flag[by_channel], pop_channel[by_channel]
    pops = np.bincount(pop_channel, minlength=len(CHANNELS))
    rank = np.arange(len(popper)) - (np.cumsum(pops) - pops)[pop_channel]  # this pop is the rank-th on its channel
    underflow = rank >= pushes[pop_channel]
    if underflow.any():  # the first channel short of tokens, its first pop without one
        k = int(np.argmax(underflow))
        (from_q, to_q), pushed = CHANNELS[pop_channel[k]], int(pushes[pop_channel[k]])
        raise Hazard(f"deadlock (token underflow): waits for token #{pushed + 1} from the {from_q.text} queue, "
                     f"which pushes only {pushed} to the {to_q.text} queue", int(popper[k]))
    src[pop_flag, popper] = pushers[(np.cumsum(pushes) - pushes)[pop_channel] + rank]
    leftover = {CHANNELS[c]: int(pushes[c] - pops[c]) for c in np.flatnonzero(pushes > pops).tolist()}
    return src, leftover


def _stalls(queue: np.ndarray, members: list[np.ndarray], src_a: np.ndarray, src_b: np.ndarray, start: np.ndarray,
            end: np.ndarray):
    """(ready, waited_for, stall cycles per (waiting queue, queue waited for)) of a schedule: an
    instruction is ready when its queue's previous one ends, and waited for the token that came
    last, if it came after that (the first source on a tie)."""
    ready = np.zeros(len(start), dtype=np.int64)
    for m in members:
        ready[m[1:]] = end[m[:-1]]
    end_a = np.where(src_a >= 0, end[src_a], -1)
    end_b = np.where(src_b >= 0, end[src_b], -1)
    why = np.where(end_b > np.maximum(ready, end_a), src_b, np.where(end_a > ready, src_a, -1))
    waited = np.where(why >= 0, queue[why], -1)
    stalled = np.flatnonzero(why >= 0)
    per_pair = np.bincount(queue[stalled] * 3 + waited[stalled], weights=(start - ready)[stalled], minlength=9)
    stalls = {(Queue(k // 3), Queue(k % 3)): int(c) for k, c in enumerate(per_pair.tolist()) if c}  # a stall is > 0
    return ready, waited, stalls



def _cycle(order, ptr, lens, src_a, src_b, end, queue_of) -> Hazard:
    """Every unfinished queue waits for a token that a blocked instruction would push."""
    waits, first = [], None
    for q in (0, 1, 2):
        if ptr[q] == lens[q]:
            continue
        i = order[q][ptr[q]]
        first = i if first is None else min(first, i)
        for s in (src_a[i], src_b[i]):
            if s >= 0 and end[s] < 0:
                waits.append(f"#{i} ({Queue(q).text} queue) waits for a token from #{s} ({Queue(queue_of[s]).text} queue)")
                break
    return Hazard("deadlock (circular wait): " + ", ".join(waits) + "; each of them waits for another", first)


# ---------------------------------------------------------------------------------------
# Data races, found after the run from the timeline
# ---------------------------------------------------------------------------------------

def find_race(an: Analysis, start: np.ndarray, end: np.ndarray,
              compiled: SimKernels | None = None) -> tuple[int, int, int, int] | None:
    """The earliest pair of instructions of different queues that overlap in time and touch the
    same bytes, one of them writing: (later, earlier, its range slot, the other's range slot).
    `compiled`: the simulator's kernels (kernels.py), whose `first_race` does all of it in one
    call; else NumPy, per pair of queues."""
    kernel = compiled and compiled.first_race()
    if kernel and an.n:
        result = np.empty(4, dtype=np.int64)
        kernel(an.queue, start, end, an.mem, an.lo, an.hi, an.write.view(np.uint8), an.used.view(np.uint8), an.pattern,
               np.empty((3, an.n), dtype=np.int64), result)
        return None if result[0] < 0 else tuple(result.tolist())
    busy = end > start
    members = [np.flatnonzero((an.queue == q) & busy) for q in range(3)]
    candidates = []  # per ordered pair of queues: (later instructions, earlier ones, earlier's queue)
    for qa, a_idx in enumerate(members):
        if not len(a_idx):
            continue
        a_start, a_end = start[a_idx], end[a_idx]  # increasing, disjoint: one unit per queue
        for qb, b_idx in enumerate(members):
            if qb == qa or not len(b_idx):
                continue
            # b started while a was running: a_start <= b_start < a_end. (The other order is qa<->qb.)
            k = np.searchsorted(a_start, start[b_idx], side="right") - 1
            ok = k >= 0
            k = np.maximum(k, 0)
            cand = ok & (a_end[k] > start[b_idx])
            if cand.any():
                candidates.append((b_idx[cand], a_idx[k[cand]], qa))
    if not candidates:
        return None
    best = None
    table = _range_table(an)
    # Per queue, only the range slots its instructions use (a LOAD or STORE has 2 of 5).
    slots = [np.flatnonzero(an.used[idx].any(axis=0)) for idx in members]
    for bi, ai, qa in candidates:
        hit = _conflicts(an, table, bi, ai, slots[int(an.queue[bi[0]])], slots[qa])
        if hit is None:
            continue
        row, sb, sa = hit
        pair = (int(bi[row]), int(ai[row]), sb, sa)
        if best is None or (start[pair[0]], pair[0]) < (start[best[0]], best[0]):
            best = pair
    return best


def _range_table(an: Analysis) -> np.ndarray:
    """(n, 4, RANGES): memory (-1: slot unused), lo, hi, write of every range slot, so a candidate
    pair's ranges come with one gather per side instead of one per field."""
    return np.stack([np.where(an.used, an.mem, -1), an.lo, an.hi, an.write.astype(np.int64)], axis=1)


def _conflicts(an: Analysis, table: np.ndarray, bi: np.ndarray, ai: np.ndarray, slots_b: np.ndarray,
               slots_a: np.ndarray) -> tuple[int, int, int] | None:
    """First candidate pair (instructions bi, ai; only their range slots slots_b, slots_a, the ones
    their queues use) whose ranges conflict: (row, slot in b, slot in a)."""
    b, a = table[bi[:, None], :, slots_b], table[ai[:, None], :, slots_a]  # (pairs, slots, fields)
    mb, lb, hb, wb = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    ma, la, ha, wa = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    hit = ((ma >= 0)[:, None, :] & (mb[:, :, None] == ma[:, None, :]) & ((wb[:, :, None] | wa[:, None, :]) != 0)
           & (lb[:, :, None] < ha[:, None, :]) & (la[:, None, :] < hb[:, :, None]))
    for row, jb, ja in zip(*np.nonzero(hit)):
        sb, sa = int(slots_b[jb]), int(slots_a[ja])
        pb, pa = an.pattern[bi[row], sb], an.pattern[ai[row], sa]
        if _exact_overlap(int(lb[row, jb]), int(hb[row, jb]), pb, int(la[row, ja]), int(ha[row, ja]), pa):
            return int(row), sb, sa
    return None


def _exact_overlap(lo_x: int, hi_x: int, px, lo_y: int, hi_y: int, py) -> bool:
    """Do two byte ranges share a byte? Each is [lo, hi) with its 2-D pattern (rows, row_bytes,
    stride); a contiguous one (one row, or rows that touch, or not a DMA range: row_bytes 0) is
    its whole [lo, hi)."""
    rows_x, bytes_x, stride_x = _rows(lo_x, hi_x, px)
    rows_y, bytes_y, stride_y = _rows(lo_y, hi_y, py)
    if rows_x == 1 and rows_y == 1:
        return True  # both contiguous and their bounding ranges overlap
    xs = lo_x + np.arange(rows_x, dtype=np.int64) * stride_x
    ys = lo_y + np.arange(rows_y, dtype=np.int64) * stride_y
    j = np.minimum(np.searchsorted(ys + bytes_y, xs, side="right"), rows_y - 1)
    return bool(np.any((ys[j] < xs + bytes_x) & (xs < ys[j] + bytes_y)))


def _rows(lo: int, hi: int, pattern) -> tuple[int, int, int]:
    """(rows, row bytes, stride) of a range: a contiguous one as one row of hi - lo bytes."""
    rows, row_bytes, stride = (int(v) for v in pattern)
    if rows == 1 or row_bytes == stride:
        return 1, hi - lo, hi - lo
    return rows, row_bytes, stride
