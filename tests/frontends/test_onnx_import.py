"""`lutc.import_onnx` mechanics: signature and names, locations, constants and resources, folding
of shape arithmetic, dynamic dimensions, external data, opsets, function expansion, the CLI."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

import lutc
from lutc.ir.attributes import DenseAttr, DenseResourceAttr
from lutc.cli import main
from lutc.frontends.onnx import MAX_OPSET


def make_model(nodes, inputs, outputs, initializers=(), opset=17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def tensor(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def run_ort(model, feeds):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)


def run_lutc(model, feeds, **kwargs):
    module = lutc.import_onnx(model, **kwargs)
    return module, lutc.compile(module, target="reference").run(feeds)


def ops_named(module, name):
    return [op for op in module.walk() if op.name == name]


def mlp_model():
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, 32)).astype(np.float32), "fc.weight")
    b = numpy_helper.from_array(rng.standard_normal(32).astype(np.float32), "fc.bias")
    nodes = [helper.make_node("MatMul", ["x", "fc.weight"], ["h"], name="fc/MatMul"),
             helper.make_node("Add", ["h", "fc.bias"], ["h2"], name="fc/Add"),
             helper.make_node("Relu", ["h2"], ["out"])]  # unnamed: located by its output
    return make_model(nodes, [tensor("x", [2, 8])], [tensor("out", [2, 32])], [w, b])


def test_inputs_outputs_names_and_values():
    model = mlp_model()
    x = np.random.default_rng(1).standard_normal((2, 8)).astype(np.float32)
    module, (got,) = run_lutc(model, {"x": x})
    fn = module.function()
    assert fn.attr("arg_names") == ["x"] and fn.attr("result_names") == ["out"]
    np.testing.assert_allclose(got, run_ort(model, {"x": x})[0], rtol=1e-5, atol=1e-6)


def test_locations_name_the_node_and_the_file(tmp_path):
    path = tmp_path / "mlp.onnx"
    onnx.save(mlp_model(), str(path))
    module = lutc.import_onnx(path)
    locations = {op.name: op.loc for op in module.walk() if op.name.startswith("graph.") and op.name != "graph.constant"}
    assert locations["graph.matmul"].name == "fc/MatMul" and locations["graph.matmul"].file == str(path)
    assert locations["graph.relu"].name == "out"  # no node name: the output's


def test_large_initializers_become_named_resources_small_ones_inline():
    module = lutc.import_onnx(mlp_model())
    constants = {op.attributes["value"].resource.name if isinstance(op.attributes["value"], DenseResourceAttr) else "inline": op
                 for op in ops_named(module, "graph.constant")}
    assert {"fc.weight", "fc.bias"} <= set(constants)
    text = str(module)
    assert "dense_resource<fc.weight> : tensor<8x32xf32>" in text and "fc.weight: \"0x04000000" in text
    small = make_model([helper.make_node("Add", ["x", "b"], ["y"])], [tensor("x", [3])], [tensor("y", [3])],
                       [numpy_helper.from_array(np.array([1, 2, 3], np.float32), "b")])
    (const,) = ops_named(lutc.import_onnx(small), "graph.constant")
    assert isinstance(const.attributes["value"], DenseAttr)


def shape_arithmetic_model(batch):
    """y = Reshape(x, Concat(Gather(Shape(x), 0), [-1])): the flatten PyTorch's exporters emit."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "zero"], ["n"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"], name="unsqueeze"),
        helper.make_node("Concat", ["n1", "minus_one"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"], name="reshape"),
    ]
    inits = [numpy_helper.from_array(np.array(0, np.int64), "zero"), numpy_helper.from_array(np.array([0], np.int64), "axes0"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus_one")]
    return make_model(nodes, [tensor("x", [batch, 3, 4])], [tensor("y", None)], inits)


def test_shape_arithmetic_folds_to_a_static_reshape():
    module = lutc.import_onnx(shape_arithmetic_model(2))
    names = [op.name for op in module.function().regions[0].block.ops]
    assert names == ["graph.reshape", "func.return"]
    assert ops_named(module, "graph.reshape")[0].attr("shape") == [2, 12]


def test_dynamic_batch_uses_inferred_shapes_and_runs_any_batch():
    module = lutc.import_onnx(shape_arithmetic_model("batch"))
    (reshape,) = ops_named(module, "graph.reshape")
    assert reshape.attr("shape") == [-1, 12] and not ops_named(module, "graph.shape")
    compiled = lutc.compile(module, target="reference")
    for batch in (1, 5):
        x = np.arange(batch * 12, dtype=np.float32).reshape(batch, 3, 4)
        np.testing.assert_array_equal(compiled.run({"x": x})[0], x.reshape(batch, 12))


def test_input_shapes_bind_dynamic_dims():
    module = lutc.import_onnx(shape_arithmetic_model("batch"), input_shapes={"x": (3, 3, 4)})
    assert module.function().regions[0].block.args[0].type.shape == (3, 3, 4)
    assert ops_named(module, "graph.reshape")[0].attr("shape") == [3, 12]


def test_constant_inputs_become_constants():
    shape = tensor("shape", [2], TensorProto.INT64)
    model = make_model([helper.make_node("Reshape", ["x", "shape"], ["y"])], [tensor("x", [2, 6]), shape], [tensor("y", None)])
    module = lutc.import_onnx(model, constant_inputs={"shape": np.array([3, 4])})
    assert module.function().attr("arg_names") == ["x"]
    assert ops_named(module, "graph.reshape")[0].attr("shape") == [3, 4]


def test_external_data_is_loaded(tmp_path):
    model = mlp_model()
    path = tmp_path / "mlp.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="mlp.weights",
                    size_threshold=0)
    assert (tmp_path / "mlp.weights").stat().st_size > 0
    x = np.ones((2, 8), np.float32)
    _, (got,) = run_lutc(str(path), {"x": x})
    np.testing.assert_allclose(got, run_ort(mlp_model(), {"x": x})[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("opset", [11, 13, 17, MAX_OPSET])
def test_opsets_old_and_new(opset):
    # ReduceSum moved axes from an attribute to an input in opset 13; opset 11 is upgraded first.
    if opset < 13:
        node = helper.make_node("ReduceSum", ["x"], ["y"], axes=[1], keepdims=0)
        inits = []
    else:
        node = helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)
        inits = [numpy_helper.from_array(np.array([1], np.int64), "axes")]
    softmax = helper.make_node("Softmax", ["y"], ["z"], axis=-1)
    model = make_model([node, softmax], [tensor("x", [2, 3, 4])], [tensor("z", [2, 4])], inits, opset=opset)
    x = np.random.default_rng(opset).standard_normal((2, 3, 4)).astype(np.float32)
    _, (got,) = run_lutc(model, {"x": x})
    np.testing.assert_allclose(got, run_ort(model, {"x": x})[0], rtol=1e-5, atol=1e-6)


def test_newer_opset_than_onnx_knows_is_refused():
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [tensor("x", [2])], [tensor("y", [2])], opset=MAX_OPSET + 1)
    with pytest.raises(lutc.LutcError, match=f"opset {MAX_OPSET + 1} is newer"):
        lutc.import_onnx(model)


def test_ops_without_converter_expand_through_their_function_body():
    # GroupNormalization has no converter: its ONNX function body is imported instead.
    rng = np.random.default_rng(4)
    inits = [numpy_helper.from_array(rng.standard_normal(6).astype(np.float32), "scale"),
             numpy_helper.from_array(rng.standard_normal(6).astype(np.float32), "bias")]
    node = helper.make_node("GroupNormalization", ["x", "scale", "bias"], ["y"], name="gn", num_groups=3, epsilon=1e-5)
    model = make_model([node], [tensor("x", [2, 6, 5])], [tensor("y", [2, 6, 5])], inits, opset=21)
    x = rng.standard_normal((2, 6, 5)).astype(np.float32)
    module, (got,) = run_lutc(model, {"x": x})
    np.testing.assert_allclose(got, run_ort(model, {"x": x})[0], rtol=1e-4, atol=1e-5)
    assert ops_named(module, "graph.reduce_mean") and all(op.loc.name.startswith("gn/") for op in ops_named(module, "graph.reduce_mean"))


def test_layer_norm_with_statistics_outputs_expands():
    rng = np.random.default_rng(6)
    inits = [numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "g")]
    node = helper.make_node("LayerNormalization", ["x", "g"], ["y", "mean", "inv_std"], axis=-1)
    model = make_model([node], [tensor("x", [3, 4])], [tensor("y", [3, 4]), tensor("mean", [3, 1]), tensor("inv_std", [3, 1])], inits)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    _, got = run_lutc(model, {"x": x})
    for a, b in zip(got, run_ort(model, {"x": x})):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_import_command_prints_ir_and_writes_files(tmp_path):
    path = tmp_path / "mlp.onnx"
    onnx.save(mlp_model(), str(path))
    result = CliRunner().invoke(main, ["import", str(path), "--elide-constants"])
    assert result.exit_code == 0, result.output
    assert "dense_resource<__elided__> : tensor<8x32xf32>" in result.stdout and "\"graph.matmul\"" in result.stdout
    assert "dialect_resources" not in result.stdout
    out = tmp_path / "mlp.mlir"
    result = CliRunner().invoke(main, ["import", str(path), "-o", str(out), "--print-debuginfo"])
    assert result.exit_code == 0 and result.stdout == ""
    text = out.read_text()
    assert 'loc("fc/MatMul")' in text and "dialect_resources" in text
    assert lutc.print_module(lutc.parse(text), print_locations=True) == text  # parses back to itself


def test_import_command_binds_input_shapes(tmp_path):
    path = tmp_path / "dyn.onnx"
    onnx.save(shape_arithmetic_model("batch"), str(path))
    result = CliRunner().invoke(main, ["import", str(path), "--input-shape", "x=4x3x4"])
    assert result.exit_code == 0 and "tensor<4x12xf32>" in result.stdout
    bad = CliRunner().invoke(main, ["import", str(path), "--input-shape", "x=4xq"])
    assert bad.exit_code == 2 and "bad dimensions '4xq'" in bad.stderr
