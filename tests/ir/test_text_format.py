"""Printer and parser: exact round trips, resources, locations, and error positions."""

import numpy as np
import pytest
from hypothesis import given

from lutc.diagnostics import ParseError
from lutc.ir import parse, print_module, verify
from lutc.ir.attributes import DenseResourceAttr
from tests.strategies import random_graphs

MLP = """
"func.func"() ({
^bb0(%x: tensor<1x4xf32>):
  %w = "graph.constant"() {value = dense_resource<w0> : tensor<4x8xf32>} : () -> tensor<4x8xf32>
  %0 = "graph.matmul"(%x, %w) : (tensor<1x4xf32>, tensor<4x8xf32>) -> tensor<1x8xf32>
  %1 = "graph.gelu"(%0) {approximate = "tanh"} : (tensor<1x8xf32>) -> tensor<1x8xf32>
  "func.return"(%1) : (tensor<1x8xf32>) -> ()
}) {sym_name = "main", function_type = (tensor<1x4xf32>) -> tensor<1x8xf32>, arg_names = ["x"]} : () -> ()
{-#
  dialect_resources: {
    builtin: {
      w0: "0x04000000BLOB"
    }
  }
#-}
""".replace("BLOB", np.arange(32, dtype="<f4").tobytes().hex())


def test_round_trip_is_exact():
    text = print_module(parse(MLP))
    assert print_module(parse(text)) == text


def test_resource_is_loaded_and_printed_as_blob():
    module = parse(MLP)
    verify(module)
    const = module.function().regions[0].block.ops[0]
    attr = const.attributes["value"]
    assert isinstance(attr, DenseResourceAttr)
    np.testing.assert_array_equal(attr.value, np.arange(32, dtype=np.float32).reshape(4, 8))
    text = print_module(module)
    assert "dense_resource<w0> : tensor<4x8xf32>" in text
    assert "dialect_resources" in text


def test_elided_constants_print_without_blobs():
    text = print_module(parse(MLP), elide_constants=True)
    assert "dense_resource<__elided__>" in text
    assert "dialect_resources" not in text
    assert print_module(parse(text), elide_constants=True) == text


def test_attributes_round_trip():
    text = """
"func.func"() ({
^bb0(%x: tensor<2xf32>):
  "func.return"(%x) : (tensor<2xf32>) -> ()
}) {sym_name = "main", function_type = (tensor<2xf32>) -> tensor<2xf32>, a = 1.0e-05 : f32, b = 0x7FC00000 : f32,
    c = [1 : i64, "s\\n", true, f16, array<f32: 0.5, 2.0>], d = dense<[[1, 2], [3, 4]]> : tensor<2x2xi8>, e, f = -3 : i32,
    g = 0xFF800000 : f32, h = dense<true> : tensor<3xi1>, "quoted key" = "v"} : () -> ()
"""
    module = parse(text)
    fn = module.function()
    assert fn.attr("a") == pytest.approx(1e-5)
    assert np.isnan(fn.attr("b")) and fn.attr("g") == -np.inf
    assert fn.attr("c")[1] == "s\n"
    np.testing.assert_array_equal(fn.attr("d"), [[1, 2], [3, 4]])
    assert fn.attr("e") is True and fn.attr("f") == -3
    printed = print_module(module)
    assert print_module(parse(printed)) == printed


def test_multiple_results_and_locations():
    text = """
"func.func"() ({
^bb0(%x: tensor<2xf32>):
  %0:2 = "test.pair"(%x) : (tensor<2xf32>) -> (tensor<2xf32>, tensor<2xf32>) loc("node_7")
  "func.return"(%0#1) : (tensor<2xf32>) -> ()
}) {sym_name = "main", function_type = (tensor<2xf32>) -> tensor<2xf32>} : () -> ()
"""
    module = parse(text, "t.mlir")
    pair = module.function().regions[0].block.ops[0]
    assert pair.loc.name == "node_7"
    ret = module.function().regions[0].block.ops[1]
    assert ret.operands[0] is pair.results[1]
    printed = print_module(module, print_locations=True)
    assert '%0:2 = "test.pair"' in printed and 'loc("node_7")' in printed
    assert print_module(parse(printed), print_locations=True) == printed


@pytest.mark.parametrize(
    "text, line, col, message",
    [
        ('"func.func"() ({\n  %0 = "graph.relu"(%9) : (tensor<2xf32>) -> tensor<2xf32>\n', 2, 21, "undefined value '%9'"),
        ('"graph.relu"(', 1, 14, "expected an operand"),
        ('%0 = "graph.constant"() {value = dense<[1.0, 2.0]> : tensor<3xf32>} : () -> tensor<3xf32>', 1, 34, "does not match"),
        ('%0 = "x.y"() : () -> tensor<2xf99>', 1, 31, "expected an element type"),
        ('"x.y"() : () -> ()\n"x.z"() {a = dense_resource<nope> : tensor<2xf32>} : () -> ()', 2, 14, "not defined"),
        ('%0 = "a.b"() : () -> tensor<2xi8>\n%0 = "a.c"() : () -> tensor<2xi8>', 2, 1, "redefinition"),
        ('%1 = "a.b"() {v = array<i8: 300>} : () -> tensor<2xi8>', 1, 29, "does not fit"),
    ],
)
def test_parse_errors_carry_position(text, line, col, message):
    with pytest.raises(ParseError) as info:
        parse(text, "bad.mlir")
    err = info.value
    assert message in err.message
    assert (err.loc.file, err.loc.line, err.loc.col) == ("bad.mlir", line, col)
    assert err.render().splitlines()[0].startswith(f"bad.mlir:{line}:{col}: error:")
    assert err.render().splitlines()[-1].index("^") == col - 1


@given(random_graphs())
def test_random_graphs_survive_print_parse(case):
    module, _ = case
    verify(module)
    text = print_module(module)
    reparsed = parse(text)
    verify(reparsed)
    assert print_module(reparsed) == text
