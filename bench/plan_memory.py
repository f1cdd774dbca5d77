"""Benchmark plan-memory: non-compulsory DRAM traffic of greedy (topological order, Belady,
greedy-by-size) vs CP-SAT, at COSMA's three budgets per graph:

  M_R  = max over ops of (input + output bytes)     -- the smallest feasible scratchpad
  M_P  = peak live bytes of the greedy order with no eviction (an upper estimate of the
         best-order peak, which is unknown for these graphs)
  mid  = (M_R + M_P) / 2, aligned

    .venv/bin/python bench/plan_memory.py [--time-limit 5] [--workers 1] [--onnx] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

from lutc.passes.memplan_cpsat import CpsatOptions
from lutc.passes.memplan_greedy import topological_order
from lutc.passes.memplan_problem import Problem, event_steps, positions, random_problem
from lutc.passes.plan_memory import build_problem, plan_problem


def greedy_order_peak(p: Problem) -> int:
    """Peak of live bytes in the greedy topological order when nothing is evicted."""
    order = topological_order(p)
    pos = positions(order)
    live = [0] * len(order)
    for t in range(len(p.tensors)):
        ev = event_steps(p, pos, t)
        for s in range(ev[0], ev[-1] + 1) if ev else ():
            live[s] += p.slot(t)
    return max(live, default=0)


def budgets(p: Problem) -> dict[str, int]:
    m_r, m_p = p.mem_required(), max(greedy_order_peak(p), p.mem_required())
    mid = (m_r + m_p) // 2 // p.alignment * p.alignment
    return {"M_R": m_r, "mid": max(mid, m_r), "M_P": m_p}


def onnx_problems() -> list[tuple[str, Problem]]:
    import glob

    import lutc

    out = []
    for path in sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "tests", "models", "onnx", "*torchscript.onnx"))):
        try:
            module = lutc.import_onnx(path)
            built = build_problem(module.function(), 1 << 40, 64)
        except Exception as err:  # a model the importer or planner can't take is skipped, and said so
            print(f"# skipped {os.path.basename(path)}: {type(err).__name__}: {str(err)[:100]}")
            continue
        out.append((os.path.basename(path).replace(".onnx", ""), built.problem))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--time-limit", type=float, default=5.0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--part-size", type=int, default=64)
    ap.add_argument("--onnx", action="store_true", help="also plan the imported tests/models/onnx graphs")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    opts = CpsatOptions(time_limit=args.time_limit, workers=args.workers, seed=0, part_size=args.part_size)

    graphs = [(f"rand{n}-s{seed}", random_problem(seed, n, n_inputs=3))
              for n in ((12, 40) if args.quick else (12, 40, 120, 300)) for seed in range(3 if not args.quick else 1)]
    if args.onnx:
        graphs += onnx_problems()
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"CP-SAT workers={args.workers}, time limit {args.time_limit}s per solve/part, part size {args.part_size}")
    print(f"{'graph':16} {'ops':>4} {'budget':>6} {'bytes':>9} {'greedy B':>10} {'cpsat B':>10} {'reduct':>7} "
          f"{'t_greedy':>8} {'t_cpsat':>8} {'gap':>6} {'bound':>10} solver/status")
    rows = []
    for name, base in graphs:
        for label, cap in budgets(base).items():
            p = base.with_capacity(cap)
            t0 = time.perf_counter()
            g = plan_problem(p, "greedy")
            tg = time.perf_counter() - t0
            t0 = time.perf_counter()
            c = plan_problem(p, "cpsat", opts)
            tc = time.perf_counter() - t0
            red = 100.0 * (g.traffic - c.traffic) / g.traffic if g.traffic else 0.0
            gap = "n/a" if c.gap is None else f"{100 * c.gap:.1f}%"
            bound = "-" if c.bound is None else f"{c.bound}:{c.bound_scope[:5]}"
            print(f"{name:16} {len(p.ops):>4} {label:>6} {cap:>9} {g.traffic:>10} {c.traffic:>10} {red:>6.1f}% "
                  f"{tg:>7.2f}s {tc:>7.2f}s {gap:>6} {bound:>10} {c.solver}/{c.status}")
            rows.append((label, g.traffic, c.traffic, red, tg, tc))
    print("\n# summary per budget: total non-compulsory bytes, reduction of the total, mean per-graph "
          "reduction (graphs with greedy traffic > 0), median solve times")
    for label in ("M_R", "mid", "M_P"):
        rs = [r for r in rows if r[0] == label]
        gt, ct = sum(r[1] for r in rs), sum(r[2] for r in rs)
        per = [r[3] for r in rs if r[1] > 0]
        print(f"{label:>4}: greedy {gt:>10} B  cpsat {ct:>10} B  total -{100 * (gt - ct) / gt if gt else 0:.1f}%  "
              f"mean -{statistics.mean(per) if per else 0:.1f}% over {len(per)}  "
              f"median t_greedy {statistics.median(r[4] for r in rs):.2f}s  t_cpsat {statistics.median(r[5] for r in rs):.2f}s")


if __name__ == "__main__":
    main()
