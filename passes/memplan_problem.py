"""The memory-planning problem (COSMA): op order, scratchpad residencies, spills and reloads.

Model
-----
* Ops form a DAG; op `i` reads tensors `inputs` and writes tensors `outputs`.
* A tensor is either produced by one op, or lives in DRAM from the start (graph input,
  weight, constant: `producer is None`).
* Time is discrete: step `s` is the `s`-th op of the chosen order.
* A *residency* of a tensor is a closed step interval `[start, end]` during which it sits
  in the scratchpad at one fixed, aligned address. A tensor may have several residencies
  (it is evicted and reloaded in between); they never overlap in time.
* When step `s` runs, all its inputs and outputs are resident. A produced tensor's first
  residency starts at its producer's step (that is where it is created).
* Space: residencies overlapping in time must not overlap in address; each residency
  occupies `aligned(size)` bytes inside `[0, capacity)`.

Traffic (bytes moved between DRAM and scratchpad)
-------------------------------------------------
* Compulsory: each DRAM tensor read once, each graph output written once.
* Non-compulsory (the objective): every residency after a tensor's first is a *reload*
  (`size` bytes read). A produced tensor that is not a graph output and is ever reloaded
  must have been *spilled* (written back) once, `size` bytes; later evictions are free
  because the DRAM copy is clean. A graph output's spill is its compulsory write.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def align_up(n: int, alignment: int) -> int:
    return -(-n // alignment) * alignment


@dataclass(frozen=True)
class Tensor:
    name: str
    size: int                      # bytes
    producer: int | None           # op index, None for DRAM tensors (inputs, weights)
    consumers: tuple[int, ...]     # op indices (with repetition removed)
    is_output: bool = False        # a graph output: its one DRAM write is compulsory


@dataclass(frozen=True)
class Op:
    name: str
    inputs: tuple[int, ...]        # tensor indices, distinct
    outputs: tuple[int, ...]


@dataclass
class Problem:
    ops: list[Op]
    tensors: list[Tensor]
    capacity: int
    alignment: int = 1

    def slot(self, t: int) -> int:
        """Bytes tensor `t` occupies in the scratchpad (size rounded up to the alignment)."""
        return align_up(self.tensors[t].size, self.alignment)

    def footprint(self, op: int) -> int:
        """Bytes op `op` needs resident at once: its distinct inputs and outputs."""
        o = self.ops[op]
        return sum(self.slot(t) for t in set(o.inputs) | set(o.outputs))

    def compulsory_bytes(self) -> int:
        total = 0
        for t in self.tensors:
            if t.producer is None and t.consumers:
                total += t.size
            if t.is_output:
                total += t.size
        return total

    def predecessors(self, op: int) -> set[int]:
        return {self.tensors[t].producer for t in self.ops[op].inputs if self.tensors[t].producer is not None}

    def mem_required(self) -> int:
        """COSMA's M_R: the largest single-op footprint (a lower bound on any feasible capacity)."""
        return max((self.footprint(i) for i in range(len(self.ops))), default=0)

    def with_capacity(self, capacity: int) -> "Problem":
        return Problem(self.ops, self.tensors, capacity, self.alignment)


@dataclass(frozen=True)
class Residency:
    tensor: int
    start: int                     # first step resident (inclusive)
    end: int                       # last step resident (inclusive)
    addr: int                      # byte offset in the scratchpad


@dataclass
class Plan:
    order: list[int]                       # op indices in execution order
    residencies: list[Residency]
    traffic: int                           # non-compulsory bytes the planner claims
    solver: str = "greedy"
    status: str = "FEASIBLE"
    bound: int | None = None               # solver's lower bound on `traffic`
    bound_scope: str = "none"              # what the bound bounds: global / fixed-order / per-part / none
    solve_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def gap(self) -> float | None:
        """Relative gap (traffic - bound) / traffic; 0 when both are 0."""
        if self.bound is None:
            return None
        if self.traffic == 0:
            return 0.0
        return max(0, self.traffic - self.bound) / self.traffic


def event_steps(problem: Problem, pos: list[int], t: int) -> list[int]:
    """Steps at which tensor `t` must be resident (its producer's and its consumers'), sorted."""
    tensor = problem.tensors[t]
    steps = {pos[c] for c in tensor.consumers}
    if tensor.producer is not None:
        steps.add(pos[tensor.producer])
    return sorted(steps)


def positions(order: list[int]) -> list[int]:
    pos = [0] * len(order)
    for s, op in enumerate(order):
        pos[op] = s
    return pos


def normalize_residencies(problem: Problem, order: list[int], residencies: list[Residency]) -> list[Residency]:
    """Shrink every residency to its first and last event (a reload happens right before its
    first use, an eviction right after its last); drop residencies that contain no event.

    Shrinking only frees space, so a valid plan stays valid, and traffic can only drop.
    """
    pos = positions(order)
    out = []
    for r in residencies:
        ev = [s for s in event_steps(problem, pos, r.tensor) if r.start <= s <= r.end]
        if ev:
            out.append(Residency(r.tensor, ev[0], ev[-1], r.addr))
    return sorted(out, key=lambda r: (r.start, r.tensor))


def traffic_of(problem: Problem, residencies: list[Residency]) -> int:
    """Non-compulsory bytes implied by `residencies` (see the module docstring)."""
    count = [0] * len(problem.tensors)
    for r in residencies:
        count[r.tensor] += 1
    total = 0
    for t, tensor in enumerate(problem.tensors):
        reloads = max(0, count[t] - 1)
        total += reloads * tensor.size
        if reloads and tensor.producer is not None and not tensor.is_output:
            total += tensor.size
    return total


def random_problem(seed: int, n_ops: int, *, n_inputs: int = 2, max_fanin: int = 3, sizes=(1, 2, 3, 4, 6, 8),
                   unit: int = 64, capacity: int | None = None, alignment: int = 64) -> Problem:
    """A seeded random DAG (tests and benchmarks): each op reads 1..max_fanin earlier tensors
    (biased towards recent ones, as in real networks) and writes one tensor; sizes are
    `unit` × a choice from `sizes`. Capacity defaults to the best case M_R."""
    import random

    rng = random.Random(seed)
    tensors: list[dict] = [dict(name=f"in{i}", size=unit * rng.choice(sizes), producer=None, consumers=[])
                           for i in range(n_inputs)]
    ops = []
    for i in range(n_ops):
        k = rng.randint(1, min(max_fanin, len(tensors)))
        pool = list(range(len(tensors)))
        weights = [1.0 + 4.0 * (j >= len(tensors) - 3) for j in pool]
        ins: list[int] = []
        while len(ins) < k:
            j = rng.choices(pool, weights)[0]
            if j not in ins:
                ins.append(j)
        out = len(tensors)
        tensors.append(dict(name=f"t{i}", size=unit * rng.choice(sizes), producer=i, consumers=[]))
        for j in ins:
            tensors[j]["consumers"].append(i)
        ops.append(Op(f"op{i}", tuple(ins), (out,)))
    ts = [Tensor(d["name"], d["size"], d["producer"], tuple(d["consumers"]),
                 is_output=d["producer"] is not None and not d["consumers"]) for d in tensors]
    p = Problem(ops, ts, capacity or 1, alignment)
    if capacity is None:
        p.capacity = p.mem_required()
    return p
