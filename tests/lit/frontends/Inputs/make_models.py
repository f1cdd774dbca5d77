"""Write the small ONNX models the golden import tests read (fixed seeds; rerun to regenerate):

    .venv/bin/python tests/lit/frontends/Inputs/make_models.py
"""

from __future__ import annotations

from pathlib import Path

import ml_dtypes
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent


def pack_codes(codes: np.ndarray, bits: int) -> np.ndarray:
    """Codes (..., count) -> bytes: a little-endian bit stream per row, low bits first (MatMulNBits)."""
    planes = (codes[..., None] >> np.arange(bits)) & 1
    return np.packbits(planes.reshape(codes.shape[:-1] + (-1,)).astype(np.uint8), axis=-1, bitorder="little")


def save(name: str, nodes, inputs, outputs, initializers, opsets) -> None:
    graph = helper.make_graph(nodes, name, inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets], producer_name="lutc-tests")
    onnx.checker.check_model(model)
    onnx.save(model, str(HERE / f"{name}.onnx"))


def matmul_nbits() -> None:
    """4-bit MatMulNBits, K=64, N=16, block 32, packed zero points, bias."""
    rng = np.random.default_rng(0)
    k, n, block, bits = 64, 16, 32, 4
    codes = rng.integers(0, 16, size=(n, k // block, block)).astype(np.uint8)
    zero_points = rng.integers(0, 16, size=(n, k // block)).astype(np.uint8)
    inits = [
        numpy_helper.from_array(pack_codes(codes, bits), "proj.qweight"),
        numpy_helper.from_array(rng.uniform(0.01, 0.1, (n, k // block)).astype(np.float32), "proj.scales"),
        numpy_helper.from_array(pack_codes(zero_points, bits), "proj.qzeros"),
        numpy_helper.from_array(rng.standard_normal(n).astype(np.float32), "proj.bias"),
    ]
    node = helper.make_node("MatMulNBits", ["x", "proj.qweight", "proj.scales", "proj.qzeros", "", "proj.bias"], ["y"],
                            name="proj/MatMulNBits", domain="com.microsoft", K=k, N=n, bits=bits, block_size=block)
    save("matmul_nbits", [node], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, k])],
         [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, n])], inits, [("", 21), ("com.microsoft", 1)])


def blocked_dq_matmul() -> None:
    """int4 weight (N x K) blocked along K, DequantizeLinear -> Transpose -> MatMul (opset 21)."""
    rng = np.random.default_rng(1)
    k, n, block = 64, 8, 16
    inits = [
        numpy_helper.from_array(rng.integers(-8, 8, size=(n, k)).astype(ml_dtypes.int4), "fc.weight_q"),
        numpy_helper.from_array(rng.uniform(0.01, 0.1, (n, k // block)).astype(np.float32), "fc.weight_scale"),
    ]
    nodes = [
        helper.make_node("DequantizeLinear", ["fc.weight_q", "fc.weight_scale"], ["w"], name="fc/dq", axis=1, block_size=block),
        helper.make_node("Transpose", ["w"], ["wt"], name="fc/t", perm=[1, 0]),
        helper.make_node("MatMul", ["x", "wt"], ["y"], name="fc/MatMul"),
    ]
    save("blocked_dq_matmul", nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, k])],
         [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, n])], inits, [("", 21)])


def ternary_matmul() -> None:
    """A float weight whose columns are {-1, 0, +1} * scale: imported as a ternary mpgemm."""
    rng = np.random.default_rng(2)
    weight = rng.integers(-1, 2, size=(32, 4)).astype(np.float32) * rng.uniform(0.1, 1.0, (1, 4)).astype(np.float32)
    save("ternary_matmul", [helper.make_node("MatMul", ["x", "w"], ["y"], name="bitlinear")],
         [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
         [numpy_helper.from_array(weight, "w")], [("", 17)])


def shape_arithmetic() -> None:
    """Flatten as exporters write it: Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1]))."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "zero"], ["n"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"], name="unsqueeze"),
        helper.make_node("Concat", ["n1", "minus_one"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"], name="flatten"),
    ]
    inits = [numpy_helper.from_array(np.array(0, np.int64), "zero"), numpy_helper.from_array(np.array([0], np.int64), "axes"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus_one")]
    save("shape_arithmetic", nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 4])],
         [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 12])], inits, [("", 17)])


def conv_block() -> None:
    """A MobileNet-like block: grouped Conv (SAME_UPPER, stride 2) -> BatchNormalization -> Relu
    -> GlobalAveragePool -> Flatten -> Gemm (transB)."""
    rng = np.random.default_rng(3)
    f32 = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    inits = [numpy_helper.from_array(f32(8, 2, 3, 3), "conv.weight"), numpy_helper.from_array(f32(8), "bn.scale"),
             numpy_helper.from_array(f32(8), "bn.bias"), numpy_helper.from_array(f32(8), "bn.mean"),
             numpy_helper.from_array(np.abs(f32(8)) + 0.5, "bn.var"), numpy_helper.from_array(f32(10, 8), "fc.weight"),
             numpy_helper.from_array(f32(10), "fc.bias")]
    nodes = [
        helper.make_node("Conv", ["x", "conv.weight"], ["c"], name="conv", group=2, strides=[2, 2], auto_pad="SAME_UPPER"),
        helper.make_node("BatchNormalization", ["c", "bn.scale", "bn.bias", "bn.mean", "bn.var"], ["b"], name="bn", epsilon=1e-3),
        helper.make_node("Relu", ["b"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1),
    ]
    save("conv_block", nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 9, 9])],
         [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], inits, [("", 17)])


def opset11_reduce() -> None:
    """An opset-11 model (ReduceSum takes axes as an attribute): upgraded to opset 13 first."""
    nodes = [helper.make_node("ReduceSum", ["x"], ["s"], name="sum", axes=[1], keepdims=0),
             helper.make_node("Softmax", ["s"], ["y"], name="softmax", axis=1)]
    save("opset11_reduce", nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
         [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])], [], [("", 11)])


def group_norm() -> None:
    """GroupNormalization (opset 21) has no converter: its ONNX function body is imported."""
    rng = np.random.default_rng(4)
    inits = [numpy_helper.from_array(rng.standard_normal(6).astype(np.float32), "gn.scale"),
             numpy_helper.from_array(rng.standard_normal(6).astype(np.float32), "gn.bias")]
    node = helper.make_node("GroupNormalization", ["x", "gn.scale", "gn.bias"], ["y"], name="gn", num_groups=3, epsilon=1e-5)
    save("group_norm", [node], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6, 5])],
         [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 6, 5])], inits, [("", 21)])


def bad_models() -> None:
    """Models the importer must refuse with one clear line (written without the checker)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])

    def write(name, nodes, inputs=(x,), inits=(), opsets=(("", 17),)):
        graph = helper.make_graph(nodes, name, list(inputs), [y], list(inits))
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
        onnx.save(model, str(HERE / f"{name}.onnx"))

    write("bad_unsupported_ops", [helper.make_node("Foo", ["x"], ["t"], name="foo0", domain="custom"),
                                  helper.make_node("Loop", ["", "", "t"], ["u"], name="loop0"),
                                  helper.make_node("Foo", ["u"], ["y"], name="foo1", domain="custom")],
          opsets=(("", 17), ("custom", 1)))
    write("bad_cycle", [helper.make_node("Add", ["x", "b"], ["a"], name="add0"), helper.make_node("Relu", ["a"], ["b"], name="relu0"),
                        helper.make_node("Identity", ["a"], ["y"], name="out")])
    write("bad_missing_initializer", [helper.make_node("MatMul", ["x", "fc.weight"], ["y"], name="fc")])
    write("bad_dtype", [helper.make_node("Add", ["x", "i"], ["y"], name="add_mixed")],
          inputs=(x, helper.make_tensor_value_info("i", TensorProto.INT64, [2, 4])))
    weight = numpy_helper.from_array(np.ones((4, 4), np.float32), "W")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    entry = weight.external_data.add()
    entry.key, entry.value = "location", "../weights.bin"
    write("bad_external_data", [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")], inits=[weight])


if __name__ == "__main__":
    matmul_nbits()
    blocked_dq_matmul()
    ternary_matmul()
    shape_arithmetic()
    conv_block()
    opset11_reduce()
    group_norm()
    bad_models()
