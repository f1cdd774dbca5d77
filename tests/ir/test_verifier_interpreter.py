"""The verifier's rules, op definitions, and the reference interpreter."""

import numpy as np
import pytest

from lutc.diagnostics import InterpreterError, VerifyError
from lutc.ir import Builder, Module, collect_errors, make_function, parse, run, sync_function_type, tensor, verify
from lutc.ir.core import function_body
from lutc.ir.dialects.graph import dequantize_weights


def build(input_types, body, names=None):
    """A module whose main function applies `body(builder, *args) -> outputs`."""
    fn = make_function("main", input_types)
    if names:
        fn.set_attr("arg_names", names)
    b = Builder(function_body(fn))
    outputs = body(b, *function_body(fn).args)
    b.create("func.return", list(outputs), result_types=[])
    sync_function_type(fn)
    module = Module()
    module.body.append(fn)
    verify(module)
    return module


def test_builder_infers_broadcast_and_matmul_types():
    def body(b, x, w):
        h = b.op("graph.matmul", x, w)
        return [b.op("graph.add", h, b.constant(np.ones((8,), np.float32)))]

    module = build([tensor((2, 3, 4), "f32"), tensor((4, 8), "f32")], body)
    assert str(module.function().attr("function_type")) == "(tensor<2x3x4xf32>, tensor<4x8xf32>) -> tensor<2x3x8xf32>"


def test_builder_rejects_bad_operands():
    fn = make_function("main", [tensor((2, 3), "f32"), tensor((4, 3), "f32")])
    b = Builder(function_body(fn))
    x, y = function_body(fn).args
    with pytest.raises(VerifyError, match="do not broadcast"):
        b.op("graph.add", x, y)
    with pytest.raises(VerifyError, match="inner dimensions differ"):
        b.op("graph.matmul", x, y)
    with pytest.raises(VerifyError, match="not a permutation"):
        b.op("graph.transpose", x, perm=[0, 0])


@pytest.mark.parametrize(
    "body, message",
    [
        ('%0 = "graph.relu"(%x) : (tensor<2xf32>) -> tensor<3xf32>\n "func.return"(%0) : (tensor<3xf32>) -> ()',
         "result #0 has type tensor<3xf32>, but the operands give tensor<2xf32>"),
        ('%0 = "graph.transpose"(%x) : (tensor<2xf32>) -> tensor<2xf32>\n "func.return"(%0) : (tensor<2xf32>) -> ()',
         "requires attribute 'perm'"),
        ('%0 = "graph.gelu"(%x) {approximate = "cubic"} : (tensor<2xf32>) -> tensor<2xf32>\n "func.return"(%0) : (tensor<2xf32>) -> ()',
         "must be one of none, tanh"),
        ('"func.return"(%x) : (tensor<2xf32>) -> ()\n %0 = "graph.relu"(%x) : (tensor<2xf32>) -> tensor<2xf32>',
         "must be the last operation"),
        ('%0 = "graph.exp"(%i) : (tensor<2xi32>) -> tensor<2xi32>\n "func.return"(%x) : (tensor<2xf32>) -> ()',
         "expects floating-point operands"),
    ],
)
def test_verifier_errors(body, message):
    text = (
        '"func.func"() ({\n^bb0(%x: tensor<2xf32>, %i: tensor<2xi32>):\n ' + body + "\n}) "
        '{sym_name = "main", function_type = (tensor<2xf32>, tensor<2xi32>) -> tensor<2xf32>} : () -> ()'
    )
    errors = collect_errors(parse(text, "v.mlir"))
    assert errors and any(message in e.message for e in errors), [e.message for e in errors]
    assert all(e.loc.file == "v.mlir" and e.loc.line is not None for e in errors)


def test_function_signature_must_match_return():
    text = """"func.func"() ({
^bb0(%x: tensor<2xf32>):
  "func.return"(%x) : (tensor<2xf32>) -> ()
}) {sym_name = "main", function_type = (tensor<2xf32>) -> tensor<3xf32>} : () -> ()"""
    with pytest.raises(VerifyError, match="returns"):
        verify(parse(text))


def test_mpgemm_checks_shapes():
    def body(b, x):
        codes = b.constant(np.zeros((8, 64), np.uint8), element=__import__("lutc").ir.types.ui2)
        scales = b.constant(np.ones((8, 3), np.float32))  # wrong: ceil(64/32) = 2 groups
        return [b.op("graph.mpgemm", x, codes, scales, bits=2, group_size=32)]

    with pytest.raises(VerifyError, match="scales must be 8x2"):
        build([tensor((1, 64), "f32")], body)


def test_mpgemm_reference_matches_dequantized_matmul():
    rng = np.random.default_rng(0)
    n, k, g = 6, 40, 16  # K is not a multiple of the group size: the last group is short
    codes = rng.integers(0, 4, (n, k)).astype(np.uint8)
    scales = rng.random((n, 3)).astype(np.float32)
    zeros = rng.integers(0, 4, (n, 3)).astype(np.float32)
    x = rng.standard_normal((2, k)).astype(np.float32)

    def body(b, xa):
        from lutc.ir.types import ui2

        return [b.op("graph.mpgemm", xa, b.constant(codes, ui2), b.constant(scales), b.constant(zeros), bits=2, group_size=g)]

    (y,) = run(build([tensor((2, k), "f32")], body), [x])
    w = np.array([[scales[i, j // g] * (codes[i, j] - zeros[i, j // g]) for j in range(k)] for i in range(n)])
    np.testing.assert_allclose(y, x @ w.T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dequantize_weights(codes, scales, None, bits=2, group_size=g)[0, :g], scales[0, 0] * (codes[0, :g] - 2.0))


def test_interpreter_runs_named_inputs_and_checks_them():
    module = build([tensor((2, 2), "f32")], lambda b, x: [b.op("graph.sigmoid", x)], names=["pixels"])
    x = np.array([[0.0, 100.0], [-100.0, 1.0]], np.float32)
    (y,) = run(module, {"pixels": x})
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-x.astype(np.float64))), rtol=1e-6, atol=1e-30)
    assert np.isfinite(y).all()  # no overflow warnings turned into NaN for large |x|
    with pytest.raises(InterpreterError, match="missing input"):
        run(module, {})
    with pytest.raises(InterpreterError, match="shape"):
        run(module, {"pixels": np.zeros((3, 2), np.float32)})
    with pytest.raises(InterpreterError, match="dtype"):
        run(module, {"pixels": np.zeros((2, 2), np.int32)})


def test_reference_semantics_follow_onnx():
    def body(b, x, i, j):
        return [b.op("graph.gelu", x), b.op("graph.div", i, j), b.op("graph.max", x, b.constant(np.float32([np.nan, 0.0, 1.0])))]

    module = build([tensor((3,), "f32"), tensor((3,), "i32"), tensor((3,), "i32")], body)
    x = np.float32([-1.0, 0.5, 3.0])
    gelu, div, mx = run(module, [x, np.int32([-7, 7, 9]), np.int32([2, 2, -4])])
    from math import erf, sqrt

    np.testing.assert_allclose(gelu, [0.5 * v * (1 + erf(v / sqrt(2))) for v in x], rtol=1e-6)
    np.testing.assert_array_equal(div, [-3, 3, -2])  # truncation toward zero, as ONNX Div
    assert np.isnan(mx[0]) and mx[2] == 3.0
