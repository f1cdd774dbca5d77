"""fuse-ops and unfuse: results are preserved exactly, groups are acyclic and follow the rules."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lutc.diagnostics import PipelineError
from lutc.ir import Builder, Module, make_function, parse, print_module, run, sync_function_type, tensor, verify
from lutc.ir.core import function_body
from lutc.passes import PassManager
from lutc.passes.fuse_ops import FusionKind, classify
from tests.strategies import random_graphs

UNARY = ["graph.relu", "graph.exp", "graph.silu", "graph.gelu", "graph.tanh"]
BINARY = ["graph.add", "graph.mul", "graph.sub"]


@st.composite
def layered_graphs(draw, max_ops: int = 14) -> tuple[Module, list[np.ndarray]]:
    """Graphs of (rows x d) activations mixing every fusion kind: elementwise, broadcast (bias),
    injective (transpose pairs), reductions (reduce_sum, softmax), anchors (matmul) and
    values reused far downstream (diamonds)."""
    rows, d = draw(st.integers(1, 3)), draw(st.sampled_from([2, 4]))
    fn = make_function("main", [tensor((rows, d), "f32")])
    b = Builder(function_body(fn))
    values = list(function_body(fn).args)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    for _ in range(draw(st.integers(2, max_ops))):
        x = draw(st.sampled_from(values))
        kind = draw(st.sampled_from(["unary", "binary", "bias", "matmul", "transpose", "reduce", "softmax"]))
        if kind == "unary":
            y = b.op(draw(st.sampled_from(UNARY)), b.op("graph.tanh", x))  # tanh keeps exp finite
        elif kind == "binary":
            y = b.op(draw(st.sampled_from(BINARY)), x, draw(st.sampled_from(values)))
        elif kind == "bias":
            y = b.op("graph.add", x, b.constant(rng.standard_normal(d).astype(np.float32)))
        elif kind == "matmul":
            y = b.op("graph.matmul", x, b.constant(rng.standard_normal((d, d)).astype(np.float32) / d))
        elif kind == "transpose":
            y = b.op("graph.transpose", b.op("graph.transpose", x, perm=[1, 0]), perm=[1, 0])
        elif kind == "reduce":
            y = b.op("graph.add", x, b.op("graph.reduce_sum", x, axes=[1], keepdims=True))
        else:
            y = b.op("graph.softmax", x, axis=-1)
        values.append(y)
    outputs = [values[-1]] + ([values[len(values) // 2]] if len(values) > 3 else [])
    b.create("func.return", outputs, result_types=[])
    sync_function_type(fn)
    module = Module()
    module.body.append(fn)
    return module, [rng.standard_normal((rows, d)).astype(np.float32)]


def fused_ops(module: Module):
    return [op for op in module.walk() if op.name == "graph.fused"]


def check_fused(module: Module, inputs, pipeline: str = "fuse-ops") -> Module:
    expected = run(module, inputs)
    fused = module.clone()
    PassManager.parse(pipeline).run(fused)  # verifies: isolated regions, SSA dominance, types
    # Same NumPy ops on the same values in the same order: results are bit-identical.
    for want, got in zip(expected, run(fused, inputs)):
        np.testing.assert_array_equal(got, want)
    return fused


@given(layered_graphs())
def test_fusion_preserves_results_and_rules(case):
    module, inputs = case
    fused = check_fused(module, inputs)
    for op in fused_ops(fused):
        members = op.regions[0].block.ops[:-1]
        kinds = [classify(m) for m in members]
        anchors = kinds.count(FusionKind.OUT_ELEMENTWISE_FUSABLE)
        reductions = kinds.count(FusionKind.REDUCTION)
        assert len(members) >= 2 and anchors + reductions <= 1
        if reductions:  # nothing after a reduction inside its group
            reduction = members[kinds.index(FusionKind.REDUCTION)]
            assert all(user.parent is not reduction.parent for r in reduction.results for user in r.users
                       if user.name != "graph.yield")
        if anchors:  # an anchor takes its operands from outside the group
            anchor = members[kinds.index(FusionKind.OUT_ELEMENTWISE_FUSABLE)]
            assert all(getattr(v, "op", None) is None for v in anchor.operands)


@given(random_graphs(max_ops=14))
def test_fusion_of_shared_random_graphs(case):
    module, inputs = case
    check_fused(module, inputs)


@given(layered_graphs())
def test_unfuse_restores_the_flat_graph(case):
    module, inputs = case
    roundtrip = check_fused(module, inputs, "fuse-ops,unfuse")
    assert not fused_ops(roundtrip)
    assert sorted(op.name for op in roundtrip.walk()) == sorted(op.name for op in module.walk())


@given(layered_graphs())
def test_group_graph_is_acyclic(case):
    """The fused function is a DAG of ops, checked independently of the pass's own bookkeeping."""
    module, inputs = case
    fused = check_fused(module, inputs)
    body = function_body(fused.function())
    graph = nx.DiGraph()
    for op in body.ops:
        graph.add_node(id(op))
        for value in op.operands:
            if getattr(value, "op", None) is not None and value.op.parent is body:
                graph.add_edge(id(value.op), id(op))
    assert nx.is_directed_acyclic_graph(graph)


@given(layered_graphs())
def test_fusing_twice_gives_identical_text(case):
    module, _ = case
    texts = []
    for _ in range(2):
        copy = parse(print_module(module))
        PassManager.parse("fuse-ops").run(copy)
        texts.append(print_module(copy))
    assert texts[0] == texts[1]
    # A fused module has nothing left to fuse (groups are opaque to a second run).
    again = parse(texts[0])
    PassManager.parse("fuse-ops").run(again)
    assert print_module(again) == texts[0]


def chain(length: int) -> Module:
    text = "\n".join(
        f'  %{i + 1} = "graph.{"exp" if i % 2 else "relu"}"(%{i}) : (tensor<4xf32>) -> tensor<4xf32>' for i in range(length)
    )
    return parse(
        '"func.func"() ({\n^bb0(%0: tensor<4xf32>):\n' + text
        + f'\n  "func.return"(%{length}) : (tensor<4xf32>) -> ()\n'
        + '}) {sym_name = "main", function_type = (tensor<4xf32>) -> tensor<4xf32>} : () -> ()'
    )


@pytest.mark.parametrize("max_ops,sizes", [(1, []), (3, [3, 3, 3, 1]), (32, [10])])
def test_max_ops_bounds_group_size(max_ops, sizes):
    module = chain(10)
    x = np.linspace(-2, 2, 4, dtype=np.float32)
    fused = check_fused(module, [x], f"fuse-ops{{max-ops={max_ops}}}")
    assert [len(op.regions[0].block.ops) - 1 for op in fused_ops(fused)] == [s for s in sizes if s > 1]


def test_bad_options_are_pipeline_errors():
    module = chain(2)
    with pytest.raises(PipelineError, match="unknown kind 'injectiv'"):
        PassManager.parse('fuse-ops{allow="elementwise,injectiv"}').run(module)
    with pytest.raises(PipelineError, match="max-ops must be at least 1"):
        PassManager.parse("fuse-ops{max-ops=0}").run(module)


def test_classification_by_table_and_traits():
    module = parse("""
"func.func"() ({
^bb0(%x: tensor<2x4xf32>, %b: tensor<4xf32>, %w: tensor<4x4xf32>):
  %0 = "graph.add"(%x, %x) : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %1 = "graph.add"(%x, %b) : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  %2 = "graph.transpose"(%x) {perm = array<i64: 1, 0>} : (tensor<2x4xf32>) -> tensor<4x2xf32>
  %3 = "graph.softmax"(%x) {axis = -1 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %4 = "graph.matmul"(%x, %w) : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  %5:2 = "graph.topk"(%x) {k = 2 : i64, axis = -1 : i64} : (tensor<2x4xf32>) -> (tensor<2x2xf32>, tensor<2x2xi64>)
  "func.return"(%0) : (tensor<2x4xf32>) -> ()
}) {sym_name = "main", function_type = (tensor<2x4xf32>, tensor<4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>} : () -> ()
""")
    kinds = [classify(op) for op in function_body(module.function()).ops[:-1]]
    assert kinds == [FusionKind.ELEMENTWISE, FusionKind.BROADCAST, FusionKind.INJECTIVE, FusionKind.REDUCTION,
                     FusionKind.OUT_ELEMENTWISE_FUSABLE, FusionKind.OPAQUE]
    verify(module)
