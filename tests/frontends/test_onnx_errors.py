"""Bad ONNX input through `lutc import`: exactly one line on stderr naming the file, the node
(name and op type) and the cause; exit status 2; nothing on stdout; no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from lutc.cli import main

X = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])


def save(path: Path, nodes, inputs=(X,), outputs=(Y,), initializers=(), opsets=(("", 17),)) -> Path:
    graph = helper.make_graph(nodes, "g", list(inputs), list(outputs), list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    onnx.save(model, str(path))
    return path


def import_fails(path: Path) -> str:
    """Run `lutc import path`; assert the one-line failure and return the line."""
    result = CliRunner().invoke(main, ["import", str(path)])
    assert result.exit_code == 2, (result.exit_code, result.output, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip("\n").split("\n")
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith(f"{path}: error: "), lines[0]
    return lines[0]


def external_weight(location: str) -> onnx.TensorProto:
    tensor = numpy_helper.from_array(np.ones((4, 4), np.float32), "W")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location
    return tensor


def matmul_with(path: Path, weight: onnx.TensorProto) -> Path:
    return save(path, [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")], initializers=[weight])


def test_truncated_file(tmp_path):
    good = save(tmp_path / "good.onnx", [helper.make_node("Relu", ["x"], ["y"], name="relu0")])
    data = good.read_bytes()
    bad = tmp_path / "truncated.onnx"
    bad.write_bytes(data[: len(data) // 2])
    assert "not a valid ONNX model" in import_fails(bad)


def test_not_an_onnx_file(tmp_path):
    bad = tmp_path / "notes.onnx"
    bad.write_text("this is not a model\n")
    assert "not a valid ONNX model" in import_fails(bad)


def test_empty_file(tmp_path):
    bad = tmp_path / "empty.onnx"
    bad.write_bytes(b"")
    assert "not a valid ONNX model" in import_fails(bad)


def test_every_unsupported_op_is_listed_in_one_message(tmp_path):
    nodes = [
        helper.make_node("Foo", ["x"], ["t"], name="foo0", domain="custom"),
        helper.make_node("StringNormalizer", ["t"], ["u"], name="normalize"),
        helper.make_node("Foo", ["u"], ["y"], name="foo1", domain="custom"),
    ]
    line = import_fails(save(tmp_path / "ops.onnx", nodes, opsets=(("", 17), ("custom", 1))))
    assert "unsupported ONNX operators" in line
    assert "custom.Foo (nodes 'foo0', 'foo1')" in line and "StringNormalizer (node 'normalize')" in line


def test_missing_initializer(tmp_path):
    line = import_fails(save(tmp_path / "missing.onnx", [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")]))
    assert "MatMul node 'mm'" in line and "'W' is not defined" in line


def test_unnamed_node_is_named_by_its_output(tmp_path):
    line = import_fails(save(tmp_path / "unnamed.onnx", [helper.make_node("Add", ["x", "nowhere"], ["y"])]))
    assert "Add node 'y'" in line and "'nowhere' is not defined" in line


def test_cyclic_graph(tmp_path):
    nodes = [
        helper.make_node("Add", ["x", "b"], ["a"], name="add0"),
        helper.make_node("Relu", ["a"], ["b"], name="relu0"),
        helper.make_node("Identity", ["a"], ["y"], name="out"),
    ]
    line = import_fails(save(tmp_path / "cycle.onnx", nodes))
    assert "cycle" in line and "Add node 'add0'" in line and "Relu node 'relu0'" in line


def test_dtype_mismatch(tmp_path):
    i = helper.make_tensor_value_info("i", TensorProto.INT64, [2, 4])
    line = import_fails(save(tmp_path / "dtype.onnx", [helper.make_node("Add", ["x", "i"], ["y"], name="mixed")], inputs=(X, i)))
    assert "Add node 'mixed'" in line and "same element type" in line and "f32" in line and "i64" in line


@pytest.mark.parametrize("location", ["/etc/passwd", "../secret.bin", "sub/../../secret.bin"])
def test_external_data_outside_the_model_folder(tmp_path, location):
    (tmp_path / "secret.bin").write_bytes(np.ones(16, np.float32).tobytes())
    folder = tmp_path / "model"
    folder.mkdir()
    line = import_fails(matmul_with(folder / "ext.onnx", external_weight(location)))
    assert f"initializer 'W': external data path '{location}' leaves the model's folder" in line


def test_external_data_symlink_escaping_the_folder(tmp_path):
    (tmp_path / "secret.bin").write_bytes(np.ones(16, np.float32).tobytes())
    folder = tmp_path / "model"
    folder.mkdir()
    os.symlink(tmp_path / "secret.bin", folder / "weights.bin")
    line = import_fails(matmul_with(folder / "ext.onnx", external_weight("weights.bin")))
    assert "leaves the model's folder (through a symbolic link)" in line


def test_external_data_file_missing_or_short(tmp_path):
    line = import_fails(matmul_with(tmp_path / "ext.onnx", external_weight("absent.bin")))
    assert "external data file 'absent.bin' does not exist" in line
    (tmp_path / "short.bin").write_bytes(b"\0" * 10)
    weight = external_weight("short.bin")
    entry = weight.external_data.add()
    entry.key, entry.value = "length", "64"
    assert "is too short" in import_fails(matmul_with(tmp_path / "short.onnx", weight))


def nbits_model(path: Path, *, k=64, n=8, packed_shape=(8, 2, 16), scales_shape=(8, 2), block=32) -> Path:
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, k])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])
    inits = [numpy_helper.from_array(np.zeros(packed_shape, np.uint8), "B"), numpy_helper.from_array(np.ones(scales_shape, np.float32), "S")]
    node = helper.make_node("MatMulNBits", ["a", "B", "S"], ["y"], name="qmm", domain="com.microsoft", K=k, N=n, bits=4, block_size=block)
    return save(path, [node], inputs=(a,), outputs=(y,), initializers=inits, opsets=(("", 17), ("com.microsoft", 1)))


@pytest.mark.parametrize("case, expected", [
    (dict(n=16), "B is [8, 2, 16], but K=64, N=16, bits=4, block_size=32 need [16, 2, 16]"),
    (dict(block=16), "need [8, 4, 8]"),
    (dict(scales_shape=(8, 3)), "scales is [8, 3]"),
])
def test_matmul_nbits_attributes_disagreeing_with_shapes(tmp_path, case, expected):
    line = import_fails(nbits_model(tmp_path / "nbits.onnx", **case))
    assert "com.microsoft.MatMulNBits node 'qmm': attributes disagree with tensor shapes" in line and expected in line


def test_runtime_shape_is_an_unsupported_dynamic_error(tmp_path):
    shape = helper.make_tensor_value_info("shape", TensorProto.INT64, [2])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    line = import_fails(save(tmp_path / "dyn.onnx", [helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape0")],
                             inputs=(X, shape), outputs=(out,)))
    assert "Reshape node 'reshape0'" in line and "unsupported dynamic shape" in line


def test_no_output_file_is_written_on_error(tmp_path):
    out = tmp_path / "out.mlir"
    model = save(tmp_path / "missing.onnx", [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")])
    result = CliRunner().invoke(main, ["import", str(model), "-o", str(out)])
    assert result.exit_code == 2 and not out.exists()


def test_real_process_prints_no_traceback(tmp_path):
    # The installed console entry point, end to end (CliRunner shares this process).
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07\x12")
    result = subprocess.run([sys.executable, "-m", "lutc", "import", str(bad)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr and str(bad) in result.stderr
