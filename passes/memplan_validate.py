"""Independent checker for memory plans: shares no logic with the planners.

Every plan (greedy or CP-SAT) goes through `validate_plan` before it is used; a failure
is a planner bug, reported as `PlanInvalid` (an AssertionError that survives `python -O`).
"""

from __future__ import annotations

from collections import defaultdict

from lutc.passes.memplan_problem import Plan, Problem


class PlanInvalid(AssertionError):
    pass


def _fail(message: str) -> None:
    raise PlanInvalid(f"invalid memory plan: {message}")


def recompute_traffic(problem: Problem, plan: Plan) -> tuple[int, int, int]:
    """(non-compulsory, spill, reload) bytes, counted from the residencies alone."""
    per_tensor: dict[int, int] = defaultdict(int)
    for r in plan.residencies:
        per_tensor[r.tensor] += 1
    spill = reload = 0
    for t, n in per_tensor.items():
        tensor = problem.tensors[t]
        if n > 1:
            reload += (n - 1) * tensor.size
            # a produced intermediate must be written back once before it can be re-read;
            # DRAM tensors are clean and a graph output's write-back is compulsory
            if tensor.producer is not None and not tensor.is_output:
                spill += tensor.size
    return spill + reload, spill, reload


def validate_plan(problem: Problem, plan: Plan) -> None:
    """Raise PlanInvalid unless `plan` is a correct schedule + allocation for `problem`."""
    n = len(problem.ops)
    cap, align = problem.capacity, problem.alignment
    order = plan.order
    if sorted(order) != list(range(n)):
        _fail(f"order {order} is not a permutation of the {n} ops")
    pos = {op: s for s, op in enumerate(order)}
    for i, op in enumerate(problem.ops):
        for t in op.inputs:
            p = problem.tensors[t].producer
            if p is not None and pos[p] >= pos[i]:
                _fail(f"op {op.name} runs at step {pos[i]} before the producer of {problem.tensors[t].name}")

    by_tensor: dict[int, list] = defaultdict(list)
    for r in plan.residencies:
        name = problem.tensors[r.tensor].name
        if not (0 <= r.start <= r.end < n):
            _fail(f"residency of {name} [{r.start}, {r.end}] is outside steps 0..{n - 1}")
        if r.addr % align:
            _fail(f"{name} at address {r.addr} is not aligned to {align}")
        slot = -(-problem.tensors[r.tensor].size // align) * align
        if r.addr < 0 or r.addr + slot > cap:
            _fail(f"{name} at [{r.addr}, {r.addr + slot}) is outside the scratchpad of {cap} bytes")
        by_tensor[r.tensor].append(r)

    for t, rs in by_tensor.items():
        rs.sort(key=lambda r: r.start)
        for a, b in zip(rs, rs[1:]):
            if b.start <= a.end:
                _fail(f"two residencies of {problem.tensors[t].name} overlap in time: {a} and {b}")
        p = problem.tensors[t].producer
        if p is not None and rs[0].start != pos[p]:
            _fail(f"{problem.tensors[t].name} is first resident at step {rs[0].start}, "
                  f"not at its producer's step {pos[p]}")

    def resident(t: int, s: int):
        return next((r for r in by_tensor.get(t, ()) if r.start <= s <= r.end), None)

    for i, op in enumerate(problem.ops):
        for t in (*op.inputs, *op.outputs):
            if resident(t, pos[i]) is None:
                _fail(f"{problem.tensors[t].name} is not resident when {op.name} runs (step {pos[i]})")

    # sweep the steps: at each, the resident address ranges must be disjoint (this implies capacity)
    live: list[list] = [[] for _ in range(n)]
    for r in plan.residencies:
        for s in range(r.start, r.end + 1):
            live[s].append(r)
    for s, rs in enumerate(live):
        used = sum(problem.tensors[r.tensor].size for r in rs)
        if used > cap:
            _fail(f"step {s} holds {used} bytes, more than the capacity {cap}")
        spans = sorted((r.addr, r.addr + -(-problem.tensors[r.tensor].size // align) * align, r) for r in rs)
        for (a0, a1, ra), (b0, b1, rb) in zip(spans, spans[1:]):
            if b0 < a1:
                _fail(f"step {s}: {problem.tensors[ra.tensor].name} [{a0}, {a1}) overlaps "
                      f"{problem.tensors[rb.tensor].name} [{b0}, {b1})")

    traffic, _, _ = recompute_traffic(problem, plan)
    if traffic != plan.traffic:
        _fail(f"{plan.solver} claims {plan.traffic} non-compulsory bytes, the residencies imply {traffic}")
    if plan.bound is not None and plan.bound > traffic and plan.bound_scope in ("global", "fixed-order"):
        _fail(f"{plan.solver} bound {plan.bound} exceeds the traffic {traffic} of its own plan")
