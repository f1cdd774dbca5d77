"""Greedy baseline: topological order, Belady eviction, greedy-by-size placement.

This is the TFLite-arena-style planner COSMA compares against, and the fallback whenever
CP-SAT has no answer in time. Two phases:

1. Walk the order and decide residencies under a byte budget: load/create what the op
   needs; while over budget, evict the resident tensor whose next use is farthest (Belady).
2. Place the residencies greedy-by-size (largest first, best-fitting gap among the
   already-placed residencies that overlap it in time).

Phase 2 can fail where phase 1 succeeded (fragmentation), so the budget shrinks until it
works; the last resort evicts everything after each step, which always packs when every
op's own footprint fits.
"""

from __future__ import annotations

import bisect
import time

import networkx as nx

from lutc.passes.memplan_problem import Plan, Problem, Residency, event_steps, normalize_residencies, positions


def topological_order(problem: Problem) -> list[int]:
    """A topological order that keeps the given op order where it can (smallest index first)."""
    g = nx.DiGraph()
    g.add_nodes_from(range(len(problem.ops)))
    for i in range(len(problem.ops)):
        for p in problem.predecessors(i):
            g.add_edge(p, i)
    return list(nx.lexicographical_topological_sort(g, key=lambda i: i))


def _simulate(problem: Problem, order: list[int], budget: float, per_step: bool) -> tuple[list[Residency], int]:
    """Phase 1: residencies (address 0 for now) and the traffic they cost."""
    pos = positions(order)
    events = [event_steps(problem, pos, t) for t in range(len(problem.tensors))]

    def next_use(t: int, s: int) -> float:
        i = bisect.bisect_right(events[t], s)
        return events[t][i] if i < len(events[t]) else float("inf")

    resident: dict[int, int] = {}          # tensor -> start step of its current residency
    seen: set[int] = set()                 # tensors that had a residency already
    spilled: set[int] = set()
    out: list[Residency] = []
    traffic = 0

    def end_residency(t: int, end: int) -> None:
        nonlocal traffic
        out.append(Residency(t, resident.pop(t), end, 0))
        tensor = problem.tensors[t]
        if next_use(t, end) != float("inf") and tensor.producer is not None and not tensor.is_output \
                and t not in spilled:
            spilled.add(t)                 # write-back needed once before the reload
            traffic += tensor.size

    for s, i in enumerate(order):
        op = problem.ops[i]
        needed = set(op.inputs) | set(op.outputs)
        for t in (*op.inputs, *op.outputs):
            if t not in resident:
                if t in seen:
                    traffic += problem.tensors[t].size      # reload
                resident[t] = s
                seen.add(t)
        used = sum(problem.slot(t) for t in resident)
        while used > budget:
            victims = [t for t in resident if t not in needed]
            if not victims:
                break
            # Belady: farthest next use first; among equals the larger frees more space
            v = max(victims, key=lambda t: (next_use(t, s), problem.slot(t), -t))
            end_residency(v, s - 1)
            used -= problem.slot(v)
        for t in list(resident):
            if per_step or next_use(t, s) == float("inf"):
                end_residency(t, s)
    for t in list(resident):
        end_residency(t, len(order) - 1)
    return out, traffic


def place_greedy_by_size(problem: Problem, residencies: list[Residency]) -> list[Residency] | None:
    """Phase 2: addresses for residencies, largest first into the best-fitting gap; None if they don't fit."""
    placed: list[Residency] = []
    align, cap = problem.alignment, problem.capacity
    for r in sorted(residencies, key=lambda r: (-problem.slot(r.tensor), r.start, r.tensor)):
        size = problem.slot(r.tensor)
        busy = sorted((p.addr, p.addr + problem.slot(p.tensor)) for p in placed
                      if p.start <= r.end and r.start <= p.end)
        best, best_gap, cursor = None, None, 0
        for lo, hi in busy + [(cap, cap)]:
            gap = lo - cursor
            if gap >= size and (best_gap is None or gap < best_gap):
                best, best_gap = cursor, gap
            cursor = max(cursor, -(-hi // align) * align)
        if best is None:
            return None
        placed.append(Residency(r.tensor, r.start, r.end, best))
    return sorted(placed, key=lambda r: (r.start, r.tensor))


def plan_greedy(problem: Problem, order: list[int] | None = None) -> Plan:
    """Greedy plan for `problem` (in `order`, default: topological). Assumes every op fits."""
    start = time.perf_counter()
    order = topological_order(problem) if order is None else list(order)
    cap = problem.capacity
    attempts = [(cap * f, False) for f in (1.0, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0)]
    attempts.append((0.0, True))
    for budget, per_step in attempts:
        residencies, traffic = _simulate(problem, order, budget, per_step)
        placed = place_greedy_by_size(problem, normalize_residencies(problem, order, residencies))
        if placed is not None:
            notes = [] if budget == cap else [f"greedy placement needed a budget of {budget:.0f} bytes"
                                               + (" with per-step eviction" if per_step else "")]
            return Plan(order, placed, traffic, solver="greedy", status="FEASIBLE",
                        solve_seconds=time.perf_counter() - start, notes=notes)
    raise AssertionError("greedy planner: per-step eviction failed to pack although every op fits")
