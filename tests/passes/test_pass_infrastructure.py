"""Pipelines, the pass manager, the pattern rewriter, and the first passes."""

import io
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given

from lutc.diagnostics import PipelineError
from lutc.ir import Builder, Module, make_function, print_module, run, sync_function_type, tensor, verify
from lutc.ir.core import function_body
from lutc.passes import PassManager, RewritePattern, apply_patterns_greedily, parse_pipeline
from lutc.passes.pass_manager import Pass
from tests.strategies import random_graphs


def test_pipeline_parses_options_with_types():
    passes = parse_pipeline('canonicalize, fold-constants{size-limit=64} ,infer-shapes{input-shapes="x=1x4,y=2"}')
    assert [p.name for p in passes] == ["canonicalize", "fold-constants", "infer-shapes"]
    assert passes[1].size_limit == 64
    assert passes[2].input_shapes == "x=1x4,y=2"
    assert parse_pipeline("") == []


@pytest.mark.parametrize(
    "pipeline, message, col",
    [
        ("canonicalize,frobnicate", "unknown pass 'frobnicate'", 14),
        ("fold-constants{limit=3}", "has no option 'limit' (options: size-limit)", 16),
        ("fold-constants{size-limit=many}", "invalid value 'many' for option 'size-limit' of pass 'fold-constants': expected an integer", 27),
        ("cse dce", "expected ',' between passes", 5),
    ],
)
def test_pipeline_errors_name_the_cause_and_column(pipeline, message, col):
    with pytest.raises(PipelineError) as info:
        parse_pipeline(pipeline)
    assert message in info.value.message
    assert info.value.loc.col == col


def make_module(body, input_types):
    fn = make_function("main", input_types)
    b = Builder(function_body(fn))
    b.create("func.return", body(b, *function_body(fn).args), result_types=[])
    sync_function_type(fn)
    module = Module()
    module.body.append(fn)
    verify(module)
    return module


def test_pass_manager_prints_ir_after_each_pass_and_times_them():
    module = make_module(lambda b, x: [b.op("graph.neg", b.op("graph.neg", x))], [tensor((2,), "f32")])
    stream = io.StringIO()
    pm = PassManager.parse("canonicalize,cse", print_ir_after_all=True, ir_stream=stream)
    pm.run(module)
    dumps = stream.getvalue()
    assert dumps.count("// -----// IR Dump After") == 2
    assert "IR Dump After canonicalize" in dumps and "IR Dump After cse" in dumps
    assert [name for name, _ in pm.timing_rows()] == ["canonicalize", "cse", "(verifier)"]
    assert "graph.neg" not in print_module(module)


def test_pass_manager_verifies_after_each_pass():
    @dataclass
    class BreakTypes(Pass):
        name = "break-types"

        def run(self, module):
            op = function_body(module.function()).ops[0]
            op.results[0].type = tensor((3,), "f32")

    module = make_module(lambda b, x: [b.op("graph.relu", x)], [tensor((2,), "f32")])
    with pytest.raises(Exception, match="result #0 has type tensor<3xf32>"):
        PassManager([BreakTypes()]).run(module)


def test_greedy_driver_reaches_a_fixed_point_and_erases_dead_ops():
    class ReluOfReluIsRelu(RewritePattern):
        root = "graph.relu"

        def match_and_rewrite(self, op, rewriter):
            inner = getattr(op.operands[0], "op", None)
            if inner is None or inner.name != "graph.relu":
                return False
            rewriter.replace_op(op, inner.result)
            return True

    def body(b, x):
        v = x
        for _ in range(5):
            v = b.op("graph.relu", v)
        return [v]

    module = make_module(body, [tensor((4,), "f32")])
    assert apply_patterns_greedily(module, [ReluOfReluIsRelu()])
    assert print_module(module).count("graph.relu") == 1


def test_fold_constants_respects_size_limit():
    def body(b, x):
        small = b.op("graph.exp", b.constant(np.arange(4, dtype=np.float32)))
        big = b.op("graph.exp", b.constant(np.arange(100, dtype=np.float32)))
        return [b.op("graph.add", x, small), big]

    module = make_module(body, [tensor((4,), "f32")])
    PassManager.parse("fold-constants{size-limit=16}").run(module)
    text = print_module(module)
    assert text.count("graph.exp") == 1  # only the 100-element one is left
    (out, big) = run(module, [np.zeros(4, np.float32)])
    np.testing.assert_allclose(out, np.exp(np.arange(4, dtype=np.float32)))


def test_cse_merges_identical_ops_only():
    def body(b, x):
        a1 = b.op("graph.gelu", x)
        a2 = b.op("graph.gelu", x)
        a3 = b.op("graph.gelu", x, approximate="tanh")
        return [b.op("graph.add", a1, a2), a3]

    module = make_module(body, [tensor((4,), "f32")])
    PassManager.parse("cse").run(module)
    assert print_module(module).count('"graph.gelu"') == 2


def test_infer_shapes_binds_dynamic_inputs():
    def body(b, x, w):
        return [b.op("graph.relu", b.op("graph.matmul", x, w))]

    module = make_module(body, [tensor((None, 8), "f32"), tensor((8, 4), "f32")])
    module.function().set_attr("arg_names", ["x", "w"])
    assert "tensor<?x4xf32>" in print_module(module)
    PassManager.parse('infer-shapes{input-shapes="x=3x8"}').run(module)
    assert str(module.function().attr("function_type")) == "(tensor<3x8xf32>, tensor<8x4xf32>) -> tensor<3x4xf32>"
    with pytest.raises(PipelineError, match="unknown input"):
        PassManager.parse('infer-shapes{input-shapes="nope=1x2"}').run(module)


@given(random_graphs())
def test_simplification_never_changes_results(case):
    module, inputs = case
    before = run(module, inputs)
    PassManager.parse("canonicalize,cse,dce,fold-constants").run(module)
    after = run(module, inputs)
    for b, a in zip(before, after):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, equal_nan=True)
