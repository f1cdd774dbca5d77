"""plan-memory: the problem model, greedy and CP-SAT planners, validator, and the pass."""

from __future__ import annotations

import dataclasses

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lutc
from lutc.diagnostics import LutcError
from lutc.ir.core import function_body
from lutc.ir.interpreter import run as interpret
from lutc.passes import PassManager
from lutc.passes.memplan_cpsat import CpsatOptions, solve_fixed_order, solve_joint
from lutc.passes.memplan_greedy import plan_greedy
from lutc.passes.memplan_problem import Residency, random_problem
from lutc.passes.memplan_validate import PlanInvalid, recompute_traffic, validate_plan
from lutc.passes.plan_memory import plan_problem

FAST = CpsatOptions(time_limit=2.0, workers=1, seed=0, part_size=64, joint_max_ops=8)


def budgets(p):
    """M_R and the midpoint between M_R and everything-resident, aligned."""
    m_r = p.mem_required()
    greedy_peak = max(sum(p.slot(t) for t in range(len(p.tensors))), m_r)
    return [m_r, (m_r + greedy_peak) // 2 // p.alignment * p.alignment]


@given(seed=st.integers(0, 10_000), n_ops=st.integers(2, 14), tight=st.booleans())
@settings(max_examples=25)
def test_random_dags_both_planners_valid_and_cpsat_not_worse(seed, n_ops, tight):
    p = random_problem(seed, n_ops)
    p.capacity = budgets(p)[0 if tight else 1]
    greedy = plan_problem(p, "greedy")
    cpsat = plan_problem(p, "cpsat", FAST)
    validate_plan(p, greedy)            # plan_problem validated already; checking again is cheap
    validate_plan(p, cpsat)
    assert cpsat.traffic <= greedy.traffic
    assert cpsat.bound is None or cpsat.bound <= cpsat.traffic
    assert cpsat.gap is None or 0.0 <= cpsat.gap <= 1.0


def brute_force_optimum(p) -> int:
    """Min over every topological order of the fixed-order optimum (each solved to OPTIMAL)."""
    g = nx.DiGraph()
    g.add_nodes_from(range(len(p.ops)))
    g.add_edges_from((q, i) for i in range(len(p.ops)) for q in p.predecessors(i))
    best = None
    for order in nx.all_topological_sorts(g):
        plan = solve_fixed_order(p, list(order), CpsatOptions(time_limit=10.0, part_size=100))
        assert plan is not None and plan.status == "OPTIMAL"
        validate_plan(p, plan)
        best = plan.traffic if best is None else min(best, plan.traffic)
    return best


@pytest.mark.parametrize("seed", range(8))
def test_joint_optimum_equals_brute_force_over_orders(seed):
    p = random_problem(seed, 5, n_inputs=2)
    p.capacity = p.mem_required()
    joint = solve_joint(p, CpsatOptions(time_limit=10.0))
    assert joint is not None and joint.status == "OPTIMAL"
    validate_plan(p, joint)
    assert joint.bound == joint.traffic and joint.gap == 0.0
    assert joint.traffic == brute_force_optimum(p)


def test_some_tiny_case_needs_reordering_or_spills():
    # guard against the brute-force test passing vacuously (all zeros)
    traffics = []
    for seed in range(8):
        p = random_problem(seed, 5, n_inputs=2)
        p.capacity = p.mem_required()
        traffics.append(plan_problem(p, "cpsat", FAST).traffic)
    assert any(t > 0 for t in traffics)


def test_partitioned_large_graph_is_valid_and_not_worse_than_greedy():
    p = random_problem(7, 90)
    opts = dataclasses.replace(FAST, part_size=30, time_limit=1.0)
    plan = plan_problem(p, "cpsat", opts)
    greedy = plan_problem(p, "greedy")
    assert plan.solver.startswith("cpsat-partitioned(3 parts)") or plan.solver == "greedy(fallback)"
    assert plan.traffic <= greedy.traffic
    direct = solve_fixed_order(p, greedy.order, opts, hint=greedy)
    validate_plan(p, direct)
    assert direct.bound_scope == "per-part"


def test_fixed_seed_single_worker_is_reproducible():
    p = random_problem(3, 30)
    a = plan_problem(p, "cpsat", FAST)
    b = plan_problem(p, "cpsat", FAST)
    assert a.status == "OPTIMAL"
    assert (a.order, a.residencies, a.traffic) == (b.order, b.residencies, b.traffic)


def test_no_solution_in_time_falls_back_to_greedy():
    p = random_problem(2, 40)
    plan = plan_problem(p, "cpsat", dataclasses.replace(FAST, time_limit=1e-9, joint_max_ops=0))
    validate_plan(p, plan)
    assert plan.solver == "greedy(fallback)"
    assert any("fell back to greedy" in n for n in plan.notes)


def test_greedy_uses_belady_and_cpsat_beats_it_somewhere():
    wins = 0
    for seed in range(6):
        p = random_problem(seed, 30)
        g, c = plan_problem(p, "greedy"), plan_problem(p, "cpsat", FAST)
        assert g.traffic > 0                   # tight budget: spills are unavoidable here
        wins += c.traffic < g.traffic
    assert wins >= 3


# -- the validator rejects broken plans ---------------------------------------------------------


@pytest.fixture
def planned():
    p = random_problem(5, 12)
    return p, plan_greedy(p)


def test_validator_accepts_and_recomputes(planned):
    p, plan = planned
    validate_plan(p, plan)
    assert recompute_traffic(p, plan)[0] == plan.traffic


def test_validator_rejects_overlap(planned):
    p, plan = planned
    rs = list(plan.residencies)
    # move some residency onto another that is live at the same step
    for i, r in enumerate(rs):
        other = next((q for q in rs if q is not r and q.start <= r.end and r.start <= q.end), None)
        if other is not None and other.addr + p.slot(r.tensor) <= p.capacity:
            rs[i] = dataclasses.replace(r, addr=other.addr)
            break
    with pytest.raises(PlanInvalid, match="overlaps"):
        validate_plan(p, dataclasses.replace(plan, residencies=rs))


def test_validator_rejects_missing_operand(planned):
    p, plan = planned
    rs = [r for r in plan.residencies if r.tensor != p.ops[plan.order[-1]].inputs[0]]
    with pytest.raises(PlanInvalid, match="not resident|first resident"):
        validate_plan(p, dataclasses.replace(plan, residencies=rs))


def test_validator_rejects_wrong_claim_misalignment_and_range(planned):
    p, plan = planned
    with pytest.raises(PlanInvalid, match="claims"):
        validate_plan(p, dataclasses.replace(plan, traffic=plan.traffic + 1))
    r0 = plan.residencies[0]
    with pytest.raises(PlanInvalid, match="not aligned"):
        validate_plan(p, dataclasses.replace(plan, residencies=[dataclasses.replace(r0, addr=r0.addr + 1)] + plan.residencies[1:]))
    with pytest.raises(PlanInvalid, match="outside the scratchpad"):
        validate_plan(p, dataclasses.replace(plan, residencies=[dataclasses.replace(r0, addr=p.capacity)] + plan.residencies[1:]))


def test_validator_rejects_capacity_and_order(planned):
    p, plan = planned
    with pytest.raises(PlanInvalid):
        validate_plan(p.with_capacity(p.capacity // 2), plan)
    with pytest.raises(PlanInvalid, match="before the producer"):
        validate_plan(p, dataclasses.replace(plan, order=list(reversed(plan.order))))


def test_too_large_problem_is_refused():
    p = random_problem(1, 6)
    with pytest.raises(ValueError, match="more than the scratchpad capacity"):
        plan_problem(p.with_capacity(p.mem_required() - p.alignment))


# -- the pass ---------------------------------------------------------------------------------

SRC = """
"func.func"() ({
^bb0(%x: tensor<4x16xf32>, %y: tensor<4x16xf32>):
  %w = "graph.constant"() {value = dense<0.5> : tensor<4x16xf32>} : () -> tensor<4x16xf32>
  %a = "graph.exp"(%x) : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %b = "graph.tanh"(%a) : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %p = "graph.neg"(%y) : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %c = "graph.relu"(%b) : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %m = "graph.mul"(%p, %w) : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  %q = "graph.add"(%c, %m) : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  %r = "graph.sub"(%q, %a) : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  "func.return"(%r, %b) : (tensor<4x16xf32>, tensor<4x16xf32>) -> ()
}) {sym_name = "main", function_type = (tensor<4x16xf32>, tensor<4x16xf32>) -> (tensor<4x16xf32>, tensor<4x16xf32>)} : () -> ()
"""


@pytest.mark.parametrize("pipeline", ["plan-memory{capacity=768}", "plan-memory{capacity=1024,solver=greedy}",
                                      "plan-memory{capacity=768,joint-max-ops=0,part-size=3}"])
def test_pass_reorders_semantics_preserving(pipeline):
    module = lutc.parse(SRC)
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((4, 16)).astype(np.float32) for _ in range(2)]
    expected = interpret(module, inputs)
    PassManager.parse(pipeline).run(module)      # verifies after the pass (dominance included)
    ops = function_body(module.function()).ops
    steps = [op.attr("mem.step") for op in ops if op.attr("mem.step") is not None]
    assert steps == list(range(7))               # block order is the planned order
    assert ops[0].name == "graph.constant"       # constants (DRAM) stay in front
    for got, want in zip(interpret(module, inputs), expected):
        np.testing.assert_array_equal(got, want)
    summary = module.attr("mem.summary")
    assert len(summary) == 1 and summary[0].startswith("@main: solver=")
    # the summary's traffic matches the attributes: each reloaded operand costs its bytes
    reloads = sum(len(op.attr("mem.reload") or []) for op in ops)
    traffic = int(summary[0].split("traffic=")[1].split()[0])
    assert (traffic > 0) == (reloads > 0)


def test_pass_proves_optimum_on_small_graph():
    # 7 ops: the joint order + allocation model closes the gap well within the time limit
    module = lutc.parse(SRC)
    PassManager.parse("plan-memory{capacity=768}").run(module)
    summary = module.attr("mem.summary")[0]
    assert "status=OPTIMAL" in summary and "gap=0.0%" in summary


def test_pass_error_names_op_and_capacity():
    module = lutc.parse(SRC)
    with pytest.raises(LutcError, match=r"<string>:9:8: error: plan-memory: graph.mul needs 768 bytes .* capacity 704"):
        PassManager.parse("plan-memory{capacity=704}").run(module)


def test_pass_report_goes_to_stderr(capsys):
    module = lutc.parse(SRC)
    PassManager.parse("plan-memory{capacity=1024,report=true}").run(module)
    assert "plan-memory: @main: solver=cpsat" in capsys.readouterr().err


def test_limit_stopped_search_claims_the_returned_plans_cost():
    # regression: a search cut by its limit once reported an objective_value above the cost
    # of the assignment it returned; the validator caught the claim (plan_problem validates)
    base = random_problem(2, 120, n_inputs=3)
    p = base.with_capacity(7360)
    for dt in (0.1,):
        opts = CpsatOptions(time_limit=30.0, part_size=64, joint_max_ops=0, deterministic_limit=dt)
        a = plan_problem(p, "cpsat", opts)
        b = plan_problem(p, "cpsat", opts)
        assert a.traffic == recompute_traffic(p, a)[0]
        assert (a.order, a.residencies) == (b.order, b.residencies)   # deterministic limit: reproducible
