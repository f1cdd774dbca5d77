"""`plan-memory`: op order, scratchpad addresses, spills and reloads (COSMA on CP-SAT).

    plan-memory{capacity=262144,alignment=64,solver=cpsat,time-limit=10.0,part-size=64,workers=1}

Each top-level op of a function (a `graph.fused` counts as one op) is scheduled; each SSA
value is a tensor of `TensorType.nbytes`; function arguments and `graph.constant`s live in
DRAM. The pass reorders the block to the planned order and records the plan:

* per op: `mem.step` (its step), `mem.addr` (address of each result), `mem.operand_addr`
  (address of each operand while the op runs), and when non-empty `mem.reload` (operand
  indices reloaded from DRAM before the op, non-compulsory), `mem.evict` (operand indices)
  and `mem.evict_results` (result indices) evicted after the op although used later;
* on the module: `mem.summary`, one string per function (solver, status, traffic, bound,
  gap, compulsory and total DRAM bytes).

`report=true` also prints the summary to stderr. See docs/plan_memory.md.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from lutc.diagnostics import LutcError
from lutc.ir.core import Module, Operation, OpResult, Value, function_body
from lutc.ir.types import TensorType
from lutc.passes.memplan_problem import Op, Plan, Problem, Tensor, align_up, positions
from lutc.passes.memplan_validate import validate_plan
from lutc.passes.pass_manager import Pass, register_pass

if TYPE_CHECKING:
    from lutc.passes.memplan_cpsat import CpsatOptions

DRAM_OPS = ("graph.constant",)


def check_fits(problem: Problem) -> tuple[str, int, str] | None:
    """("tensor"|"op", index, message) for the first tensor or op that cannot fit, else None."""
    cap = problem.capacity
    for t, tensor in enumerate(problem.tensors):
        if problem.slot(t) > cap:
            return "tensor", t, (f"tensor {tensor.name} needs {problem.slot(t)} bytes "
                                 f"({tensor.size} + alignment), more than the scratchpad capacity {cap}")
    for i, op in enumerate(problem.ops):
        need = problem.footprint(i)
        if need > cap:
            return "op", i, (f"{op.name} needs {need} bytes resident at once (operands + results), "
                             f"more than the scratchpad capacity {cap}")
    return None


def plan_problem(problem: Problem, solver: str = "cpsat", opts: CpsatOptions | None = None) -> Plan:
    """Plan `problem` with the greedy baseline or CP-SAT; the result is always validated.

    CP-SAT never returns worse than greedy: the greedy plan is its hint and the fallback
    (on timeout without a solution, or if the time limit left CP-SAT behind greedy).
    """
    # The solvers (OR-Tools, networkx) load on first use: registering the pass stays cheap
    # for every `lutc` invocation that never plans memory.
    from lutc.passes.memplan_cpsat import CpsatOptions, solve_fixed_order, solve_joint
    from lutc.passes.memplan_greedy import plan_greedy

    opts = opts or CpsatOptions()
    bad = check_fits(problem)
    if bad is not None:
        raise ValueError(bad[2])
    greedy = plan_greedy(problem)
    validate_plan(problem, greedy)
    if solver == "greedy" or not problem.ops:
        return greedy
    candidates: list[Plan] = []
    notes: list[str] = []
    if len(problem.ops) <= opts.joint_max_ops:
        joint = solve_joint(problem, opts, hint=greedy)
        if joint is None:
            notes.append("joint model: no solution within the time limit")
        else:
            candidates.append(joint)
    if not candidates or candidates[0].status != "OPTIMAL":
        fixed = solve_fixed_order(problem, greedy.order, opts, hint=greedy)
        if fixed is None:
            notes.append("fixed-order model: a part found no solution within the time limit")
        else:
            candidates.append(fixed)
    for c in candidates:
        validate_plan(problem, c)
    best = min(candidates, key=lambda c: (c.traffic, c.bound_scope != "global"), default=None)
    if best is None:
        greedy.notes += notes + ["CP-SAT found no feasible plan in time: fell back to greedy"]
        greedy.solver = "greedy(fallback)"
        return greedy
    # a global bound from the joint model also bounds the fixed-order plan's traffic
    glob = [c.bound for c in candidates if c.bound_scope == "global" and c.bound is not None]
    if glob and best.bound_scope != "global":
        best.bound, best.bound_scope = max(glob), "global"
    if best.traffic > greedy.traffic:
        greedy.notes += notes + [f"CP-SAT's best ({best.traffic} B) is worse than greedy within the time limit: kept greedy"]
        greedy.solver = "greedy(fallback)"
        return greedy
    best.notes += notes
    best.solve_seconds = sum(c.solve_seconds for c in candidates)
    return best


# -- from IR to the problem and back ------------------------------------------------------------


@dataclass
class _Built:
    problem: Problem
    ops: list[Operation]           # problem op index -> IR op
    values: list[Value]            # problem tensor index -> IR value
    dram_ops: list[Operation]      # constants, kept in front of the block


def _value_name(v: Value, fn_arg_names: list[str]) -> str:
    if isinstance(v, OpResult):
        base = v.op.name
        idx = v.op.results.index(v)
        return f"result {idx} of {base}" + (f" ({v.op.loc.name})" if getattr(v.op.loc, "name", None) else "")
    i = v.index if hasattr(v, "index") else 0
    return f"argument {fn_arg_names[i] if i < len(fn_arg_names) else '#' + str(i)}"


def build_problem(fn: Operation, capacity: int, alignment: int) -> _Built:
    block = function_body(fn)
    arg_names = list(fn.attr("arg_names") or [])
    body = block.ops[:-1]                          # the return is not scheduled
    ret = block.ops[-1]
    dram_ops = [op for op in body if op.name in DRAM_OPS]
    ops = [op for op in body if op.name not in DRAM_OPS]
    index: dict[Value, int] = {}
    values: list[Value] = []
    producer: dict[int, int | None] = {}
    consumers: dict[int, list[int]] = {}

    def tensor_of(v: Value, prod: int | None) -> int:
        if v not in index:
            t = v.type
            if not isinstance(t, TensorType) or not t.is_static:
                where = v.op if isinstance(v, OpResult) else fn
                raise LutcError(f"plan-memory: {_value_name(v, arg_names)} has type {t}; "
                                "memory planning needs statically shaped tensors", where.loc)
            index[v] = len(values)
            values.append(v)
            producer[index[v]] = prod
            consumers[index[v]] = []
        return index[v]

    pops = []
    for i, op in enumerate(ops):
        ins = []
        for v in op.operands:
            t = tensor_of(v, None)
            if t not in ins:
                ins.append(t)
            if i not in consumers[t]:
                consumers[t].append(i)
        outs = [tensor_of(r, i) for r in op.results]
        pops.append(Op(op.name, tuple(ins), tuple(outs)))
    outputs = {index[v] for v in ret.operands if v in index}
    tensors = [Tensor(_value_name(v, arg_names), v.type.nbytes, producer[t], tuple(consumers[t]), t in outputs)
               for t, v in enumerate(values)]
    return _Built(Problem(pops, tensors, capacity, alignment), ops, values, dram_ops)


def summary_text(fn_name: str, problem: Problem, plan: Plan) -> str:
    compulsory = problem.compulsory_bytes()
    bound = "none" if plan.bound is None else f"{plan.bound} ({plan.bound_scope})"
    gap = "n/a" if plan.gap is None else f"{100 * plan.gap:.1f}%"
    text = (f"@{fn_name}: solver={plan.solver} status={plan.status} traffic={plan.traffic} "
            f"bound={bound} gap={gap} compulsory={compulsory} dram_total={compulsory + plan.traffic} "
            f"capacity={problem.capacity} ops={len(problem.ops)} tensors={len(problem.tensors)}")
    return text + "".join(f"; {n}" for n in plan.notes)


def annotate(built: _Built, plan: Plan, block) -> None:
    """Reorder the block to the plan and attach the per-op attributes."""
    problem = built.problem
    pos = positions(plan.order)
    tensor_index = {v: t for t, v in enumerate(built.values)}
    by_tensor: dict[int, list] = {}
    for r in plan.residencies:
        by_tensor.setdefault(r.tensor, []).append(r)

    def at(t: int, s: int):
        return next(r for r in by_tensor[t] if r.start <= s <= r.end)

    for i, op in enumerate(built.ops):
        s = pos[i]
        pop = problem.ops[i]
        op.set_attr("mem.step", s)
        op.set_attr("mem.addr", [at(t, s).addr for t in pop.outputs])
        operand_t = [tensor_index[v] for v in op.operands]
        op.set_attr("mem.operand_addr", [at(t, s).addr for t in operand_t])
        reload = [k for k, t in enumerate(operand_t)
                  if at(t, s).start == s and by_tensor[t][0] is not at(t, s)]
        evict = [k for k, t in enumerate(operand_t) if at(t, s).end == s and at(t, s) is not by_tensor[t][-1]]
        evict_res = [k for k, t in enumerate(pop.outputs) if at(t, s).end == s and at(t, s) is not by_tensor[t][-1]]
        for name, value in (("mem.reload", reload), ("mem.evict", evict), ("mem.evict_results", evict_res)):
            if value:
                op.set_attr(name, value)
            else:
                op.attributes.pop(name, None)
    # constants first (no operands), then the planned order, then the return: dominance holds
    # because the plan's order is topological
    block.ops[:] = built.dram_ops + [built.ops[i] for i in plan.order] + [block.ops[-1]]


@register_pass
@dataclass
class PlanMemory(Pass):
    name = "plan-memory"
    summary = "Schedule ops and allocate the scratchpad (CP-SAT, greedy fallback); record the plan as attributes."

    capacity: int = 262144
    alignment: int = 64
    solver: Literal["cpsat", "greedy"] = "cpsat"
    time_limit: float = 10.0
    part_size: int = 64
    workers: int = 1
    seed: int = 0
    joint_max_ops: int = 10
    deterministic_limit: float = 0.0   # > 0: CP-SAT deterministic-time limit (reproducible cut-off)
    report: bool = False

    def run(self, module: Module) -> None:
        from lutc.passes.memplan_cpsat import CpsatOptions

        if self.capacity <= 0 or self.alignment <= 0 or self.capacity % self.alignment:
            raise LutcError(f"plan-memory: capacity {self.capacity} must be a positive multiple "
                            f"of the alignment {self.alignment}")
        opts = CpsatOptions(self.time_limit, self.workers, self.seed, self.part_size, self.joint_max_ops,
                            self.deterministic_limit or None)
        summaries = []
        for fn in module.functions:
            built = build_problem(fn, self.capacity, self.alignment)
            bad = check_fits(built.problem)
            if bad is not None:
                kind, i, message = bad
                if kind == "op":
                    loc = built.ops[i].loc
                else:              # a tensor: point at its producer (or the function for an argument)
                    v = built.values[i]
                    loc = v.op.loc if isinstance(v, OpResult) else fn.loc
                raise LutcError(f"plan-memory: {message}", loc)
            plan = plan_problem(built.problem, self.solver, opts)
            annotate(built, plan, function_body(fn))
            summaries.append(summary_text(fn.attr("sym_name"), built.problem, plan))
            if self.report:
                sys.stderr.write("plan-memory: " + summaries[-1] + "\n")
        module.set_attr("mem.summary", summaries)
