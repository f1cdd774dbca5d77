"""CP-SAT models for memory planning (COSMA's problem on OR-Tools CP-SAT).

Two models:

* **Fixed order** (`solve_fixed_order`): the op order is given. For each tensor, its
  *events* are the steps where it must be resident (producer, consumers). Each event is a
  1-step rectangle (time × address) with an address variable; each gap between two events
  is an optional rectangle whose presence literal `keep` says "stay resident in between";
  `keep ⇒ same address on both sides`. Dropping a gap costs a reload (+ one spill for a
  produced intermediate). All rectangles go into `add_no_overlap_2d`; a redundant
  `add_cumulative` over the time intervals states the capacity directly, which helps the
  propagation. Large graphs are cut along the order into parts of `part_size` steps, each
  solved with its own time limit; the live set at a part boundary (tensor + fixed address)
  enters the next part as optional "entry" rectangles, so a part can always evict what it
  inherited (that keeps every part feasible) and pays the reload if it does.

* **Joint** (`solve_joint`, small graphs): order and allocation together, COSMA-style
  step-indexed: `x[o, s]` (op o at step s), `res[t, s]` (t resident at s) with an address
  `L[t, s]` held fixed while resident, one `add_no_overlap` per step.

Both are hinted with the greedy plan, use a fixed `random_seed` and a wall-clock limit.
With 1 worker a solve that ends before its limit is reproducible; with several workers, or
when the limit cuts the search, the plan may differ between runs (the traffic reported is
always that of the returned plan, and the plan is validated).
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass

from ortools.sat.python import cp_model

from lutc.passes.memplan_problem import Plan, Problem, Residency, event_steps, positions


@dataclass
class CpsatOptions:
    time_limit: float = 10.0       # seconds per solve (per part when partitioned)
    workers: int = 1
    seed: int = 0
    part_size: int = 64            # steps per part of the fixed-order model
    joint_max_ops: int = 10        # graphs up to this many ops also get the joint model
    deterministic_limit: float | None = None   # CP-SAT max_deterministic_time: a limit that cuts
                                               # the search at the same point on every run


def _solver(opts: CpsatOptions, time_limit: float | None = None) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = float(time_limit if time_limit is not None else opts.time_limit)
    solver.parameters.num_workers = int(opts.workers)
    solver.parameters.random_seed = int(opts.seed)
    if opts.deterministic_limit is not None:
        solver.parameters.max_deterministic_time = float(opts.deterministic_limit)
    return solver


def _covering(plan: Plan | None, t: int, s: int) -> Residency | None:
    if plan is None:
        return None
    return next((r for r in plan.residencies if r.tensor == t and r.start <= s <= r.end), None)


def solve_fixed_order(problem: Problem, order: list[int], opts: CpsatOptions, hint: Plan | None = None) -> Plan | None:
    """Addresses, spills and reloads for a fixed `order`; None if some part found no solution in time."""
    start_time = time.perf_counter()
    n = len(order)
    align = problem.alignment
    cap_u = problem.capacity // align              # work in units of the alignment
    pos = positions(order)
    events = [event_steps(problem, pos, t) for t in range(len(problem.tensors))]
    if hint is not None and hint.order != list(order):
        hint = None                                # a hint for another order is no help
    hint_by_tensor: dict[int, list[Residency]] = {}
    for r in (hint.residencies if hint else ()):
        hint_by_tensor.setdefault(r.tensor, []).append(r)

    def hinted(t: int, s: int) -> Residency | None:
        return next((r for r in hint_by_tensor.get(t, ()) if r.start <= s <= r.end), None)

    ev_addr: dict[tuple[int, int], int] = {}       # (tensor, step) -> address in units
    gap_kept: dict[tuple[int, int], bool] = {}     # (tensor, i): resident from events[i] to events[i+1]
    entry: dict[int, int] = {}                     # live set at the boundary: tensor -> address (units)
    spilled: set[int] = set()
    total, bound, statuses = 0, 0, []
    size_of = [t.size for t in problem.tensors]
    slot_u = [problem.slot(t) // align for t in range(len(problem.tensors))]
    parts = [(a, min(a + opts.part_size, n)) for a in range(0, n, max(1, opts.part_size))]

    for a, b in parts:
        m = cp_model.CpModel()
        xs, ys, demands, cost_terms = [], [], [], []
        readback: list = []                        # what to read from the solution
        for t in range(len(problem.tensors)):
            E = events[t]
            in_ev = [e for e in E if a <= e < b]
            has_future = bool(E) and E[-1] >= b
            if not in_ev and t not in entry:
                continue
            su, size = slot_u[t], size_of[t]
            tensor = problem.tensors[t]
            # a reload of a produced intermediate also needs its one write-back
            spill_var = None
            if tensor.producer is not None and not tensor.is_output and t not in spilled:
                spill_var = m.new_bool_var(f"spill_t{t}")
            drops = []

            def rect(lo: int, hi: int, addr, present=None) -> None:
                """Time steps [lo, hi] × [addr, addr + su) (optional when `present` is given)."""
                if hi < lo:
                    return
                if present is None:
                    xs.append(m.new_fixed_size_interval_var(lo, hi - lo + 1, ""))
                    ys.append(m.new_fixed_size_interval_var(addr, su, ""))
                else:
                    xs.append(m.new_optional_fixed_size_interval_var(lo, hi - lo + 1, present, ""))
                    ys.append(m.new_optional_fixed_size_interval_var(addr, su, present, ""))
                demands.append(su)

            def gap(lo: int, hi: int, addr, next_addr, gi: int, hint_keep: bool) -> None:
                keep = m.new_bool_var(f"keep_t{t}_{lo}")
                if next_addr is not None:
                    m.add(addr == next_addr).only_enforce_if(keep)
                rect(lo, hi, addr, keep)
                drops.append(keep.Not())
                m.add_hint(keep, hint_keep)
                readback.append(("gap", t, gi, keep))

            addrs = []
            for e in in_ev:
                v = m.new_int_var(0, cap_u - su, f"addr_t{t}_s{e}")
                r = hinted(t, e)
                if r is not None:
                    m.add_hint(v, r.addr // align)
                rect(e, e, v)
                addrs.append(v)
                readback.append(("addr", t, e, v))
            if t in entry:
                # inherited from the previous part at a fixed address; keep it or evict it at a
                gi = bisect.bisect_left(E, a) - 1
                r = hinted(t, a - 1)
                keep_hint = r is not None and r.end >= a and r.addr // align == entry[t]
                gap(a, (in_ev[0] - 1) if in_ev else b - 1, entry[t], addrs[0] if addrs else None, gi, keep_hint)
            for k in range(len(in_ev) - 1):
                gi = E.index(in_ev[k])
                r = hinted(t, in_ev[k])
                gap(in_ev[k] + 1, in_ev[k + 1] - 1, addrs[k], addrs[k + 1], gi,
                    r is not None and r.end >= in_ev[k + 1])
            if in_ev and has_future:
                gi = E.index(in_ev[-1])
                r = hinted(t, in_ev[-1])
                gap(in_ev[-1] + 1, b - 1, addrs[-1], None, gi, r is not None and r.end >= b)
            for d in drops:
                cost_terms.append(size * d)
            if spill_var is not None:
                if drops:
                    m.add_max_equality(spill_var, drops)       # spilled iff some gap dropped
                    cost_terms.append(size * spill_var)
                    readback.append(("spill", t, None, spill_var))
                else:
                    m.add(spill_var == 0)
        if xs:
            m.add_no_overlap_2d(xs, ys)
            m.add_cumulative(xs, demands, cap_u)              # redundant: capacity per step
        m.minimize(sum(cost_terms))
        solver = _solver(opts)
        status = solver.solve(m)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return None
        statuses.append(solver.status_name(status))
        # the plan's cost evaluated on the returned values: after a limit-stopped search
        # `objective_value` was seen to differ from the returned assignment's cost
        total += int(sum(solver.value(c) for c in cost_terms))
        bound += int(-(-solver.best_objective_bound // 1)) if cost_terms else 0
        next_entry: dict[int, int] = {}
        last_addr: dict[int, int] = {}
        for kind, t, key, var in readback:
            if kind == "addr":
                ev_addr[(t, key)] = solver.value(var)
                last_addr[t] = solver.value(var)
            elif kind == "spill" and solver.value(var):
                spilled.add(t)
        for kind, t, gi, var in readback:
            if kind != "gap":
                continue
            kept = bool(solver.value(var))
            gap_kept[(t, gi)] = gap_kept.get((t, gi), True) and kept
            E = events[t]
            # the gap crosses b: carry the tensor into the next part if it stayed resident
            if kept and gi + 1 < len(E) and E[gi] < b <= E[gi + 1]:
                next_entry[t] = last_addr.get(t, entry.get(t))
        entry = next_entry

    residencies = []
    for t, E in enumerate(events):
        run_start = None
        for i, e in enumerate(E):
            if run_start is None:
                run_start = e
            if i + 1 < len(E) and gap_kept.get((t, i), False):
                assert ev_addr[(t, E[i + 1])] == ev_addr[(t, E[i])], "kept gap changed address"
                continue
            residencies.append(Residency(t, run_start, e, ev_addr[(t, run_start)] * align))
            run_start = None
    residencies.sort(key=lambda r: (r.start, r.tensor))
    single = len(parts) == 1
    worst = "OPTIMAL" if all(s == "OPTIMAL" for s in statuses) else "FEASIBLE"
    return Plan(list(order), residencies, total, solver="cpsat-fixed-order" if single else f"cpsat-partitioned({len(parts)} parts)",
                status=worst, bound=bound, bound_scope="fixed-order" if single else "per-part",
                solve_seconds=time.perf_counter() - start_time)


def solve_joint(problem: Problem, opts: CpsatOptions, hint: Plan | None = None) -> Plan | None:
    """Order and allocation together (small graphs); None if no solution was found in time."""
    start_time = time.perf_counter()
    n = len(problem.ops)
    align = problem.alignment
    cap_u = problem.capacity // align
    steps = range(n)
    m = cp_model.CpModel()
    x = [[m.new_bool_var(f"x_o{o}_s{s}") for s in steps] for o in range(n)]
    for o in range(n):
        m.add_exactly_one(x[o])
    for s in steps:
        m.add_exactly_one(x[o][s] for o in range(n))
    pos = [sum(s * x[o][s] for s in steps) for o in range(n)]
    for o in range(n):
        for p in problem.predecessors(o):
            m.add(pos[p] + 1 <= pos[o])
    hint_pos = positions(hint.order) if hint else None
    if hint:
        for o in range(n):
            for s in steps:
                m.add_hint(x[o][s], hint_pos[o] == s)

    cost = []
    res, addr = {}, {}
    per_step: list[list] = [[] for _ in steps]
    for t, tensor in enumerate(problem.tensors):
        users = list(tensor.consumers) + ([tensor.producer] if tensor.producer is not None else [])
        if not users:
            continue
        su = problem.slot(t) // align
        r = [m.new_bool_var(f"res_t{t}_s{s}") for s in steps]
        L = [m.new_int_var(0, cap_u - su, f"L_t{t}_s{s}") for s in steps]
        for s in steps:
            per_step[s].append((m.new_optional_fixed_size_interval_var(L[s], su, r[s], ""), su, r[s]))
            if hint:
                h = _covering(hint, t, s)
                m.add_hint(r[s], h is not None)
                if h is not None:
                    m.add_hint(L[s], h.addr // align)
        event_at = [sum(x[u][s] for u in set(users)) for s in steps]      # 0/1: t is used/produced at s
        use_at = [sum(x[c][s] for c in set(tensor.consumers)) for s in steps]
        created = [x[tensor.producer][s] if tensor.producer is not None else None for s in steps]
        loads = []
        for s in steps:
            for u in set(users):
                m.add_implication(x[u][s], r[s])                          # operands/results resident
            if tensor.producer is not None:
                m.add(r[s] <= sum(x[tensor.producer][q] for q in range(s + 1)))   # not before created
            # residencies start and end at events: reload right before a use, evict right after one
            prev = r[s - 1] if s > 0 else None
            nxt = r[s + 1] if s + 1 < n else None
            m.add(r[s] - (nxt if nxt is not None else 0) <= event_at[s])
            if s > 0:
                m.add(L[s] == L[s - 1]).only_enforce_if([r[s], r[s - 1]])
            ld = m.new_bool_var(f"ld_t{t}_s{s}")                          # exact: r[s] ∧ ¬r[s-1] ∧ ¬created
            m.add_implication(ld, r[s])
            if prev is not None:
                m.add_implication(ld, prev.Not())
            if created[s] is not None:
                m.add_implication(ld, created[s].Not())
            lits = [r[s].Not(), ld] + ([prev] if prev is not None else []) + ([created[s]] if created[s] is not None else [])
            m.add_bool_or(lits)
            m.add(ld <= use_at[s])
            loads.append(ld)
        if tensor.producer is None:
            cost.append(tensor.size * (sum(loads) - 1))                    # the first load is compulsory
        else:
            cost.append(tensor.size * sum(loads))
            if not tensor.is_output:
                spill = m.new_bool_var(f"spill_t{t}")
                m.add_max_equality(spill, loads)
                cost.append(tensor.size * spill)
        res[t], addr[t] = r, L
    for s in steps:
        if per_step[s]:
            m.add_no_overlap([iv for iv, _, _ in per_step[s]])
            m.add(sum(su * p for _, su, p in per_step[s]) <= cap_u)        # redundant capacity
    objective = sum(cost)
    m.minimize(objective)
    solver = _solver(opts)
    status = solver.solve(m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    order = sorted(range(n), key=lambda o: next(s for s in steps if solver.value(x[o][s])))
    residencies = []
    for t, r in res.items():
        s = 0
        while s < n:
            if solver.value(r[s]):
                e = s
                while e + 1 < n and solver.value(r[e + 1]):
                    e += 1
                residencies.append(Residency(t, s, e, solver.value(addr[t][s]) * align))
                s = e + 1
            else:
                s += 1
    residencies.sort(key=lambda r: (r.start, r.tensor))
    return Plan(order, residencies, int(solver.value(objective)), solver="cpsat-joint",
                status=solver.status_name(status), bound=int(-(-solver.best_objective_bound // 1)),
                bound_scope="global", solve_seconds=time.perf_counter() - start_time)
