"""Low-bit weights imported as `graph.mpgemm` must compute what onnxruntime computes.

Each case builds a small model with onnx.helper (fixed seeds), runs it in onnxruntime, and runs
the imported module in lutc's reference interpreter. ORT runs with graph optimizations off:
with them on, ORT rewrites DequantizeLinear -> MatMul into MatMulNBits with accuracy_level 4,
which quantizes the *activations* to int8 (about 1% error) -- an ORT speed choice, not the
model's semantics. Tolerance: 1e-4 of the output's largest magnitude (float32 on both sides,
different summation orders).
"""

from __future__ import annotations

import zlib

import ml_dtypes
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import lutc
from lutc.frontends.onnx_quant import unpack_codes

RTOL = 1e-4


def make_model(nodes, inputs, outputs, initializers, opset=21, ms_domain=False) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializers)
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid("com.microsoft", 1)] if ms_domain else [])
    return helper.make_model(graph, opset_imports=opsets)


def run_ort(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def run_lutc(model: onnx.ModelProto, feeds: dict):
    module = lutc.import_onnx(model)
    return module, lutc.compile(module, target="reference").run(feeds)


def assert_close(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype
    scale = float(np.abs(want).max())
    assert np.abs(got.astype(np.float64) - want).max() <= RTOL * scale, (got, want)


def mpgemm_ops(module):
    return [op for op in module.walk() if op.name == "graph.mpgemm"]


def pack_codes(codes: np.ndarray, bits: int) -> np.ndarray:
    """(rows, count) codes -> bytes, as a little-endian bit stream (low bits first), per row."""
    bit_planes = (codes[..., None] >> np.arange(bits)) & 1
    stream = bit_planes.reshape(codes.shape[:-1] + (-1,)).astype(np.uint8)
    return np.packbits(stream, axis=-1, bitorder="little")


# -- com.microsoft.MatMulNBits ---------------------------------------------------------------


def matmul_nbits_model(rng, *, bits, k, n, block, zero_points, bias, a_shape, flat_scales=False):
    k_blocks = -(-k // block)
    codes = rng.integers(0, 2**bits, size=(n, k_blocks, block)).astype(np.uint8)
    packed = pack_codes(codes, bits)  # (n, k_blocks, block * bits / 8)
    scales = rng.uniform(0.01, 0.1, size=(n, k_blocks)).astype(np.float32)
    inits = [numpy_helper.from_array(packed, "B"), numpy_helper.from_array(scales.reshape(-1) if flat_scales else scales, "scales")]
    names = ["A", "B", "scales"]
    zeros = np.full((n, k_blocks), 2 ** (bits - 1), np.float32)
    if zero_points == "packed":
        zp = rng.integers(0, 2**bits, size=(n, k_blocks)).astype(np.uint8)
        inits.append(numpy_helper.from_array(pack_codes(zp, bits), "zp"))
        names.append("zp")
        zeros = zp.astype(np.float32)
    elif zero_points == "float":
        zp = rng.uniform(0, 2**bits - 1, size=(n, k_blocks)).astype(np.float32)
        inits.append(numpy_helper.from_array(zp, "zp"))
        names.append("zp")
        zeros = zp
    if bias:
        names += [""] * (5 - len(names)) + ["bias"]
        bias_value = rng.standard_normal(n).astype(np.float32)
        inits.append(numpy_helper.from_array(bias_value, "bias"))
    node = helper.make_node("MatMulNBits", names, ["Y"], name="qmatmul", domain="com.microsoft",
                            K=k, N=n, bits=bits, block_size=block)
    model = make_model([node], [helper.make_tensor_value_info("A", TensorProto.FLOAT, list(a_shape))],
                       [helper.make_tensor_value_info("Y", TensorProto.FLOAT, list(a_shape[:-1]) + [n])], inits, opset=17, ms_domain=True)
    weight = (codes.reshape(n, -1)[:, :k].astype(np.float32) - np.repeat(zeros, block, axis=1)[:, :k]) * np.repeat(scales, block, axis=1)[:, :k]
    return model, weight


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("zero_points", ["default", "packed", "float"])
def test_matmul_nbits_matches_onnxruntime(bits, zero_points):
    rng = np.random.default_rng(bits * 10 + len(zero_points))
    model, weight = matmul_nbits_model(rng, bits=bits, k=64, n=24, block=32, zero_points=zero_points, bias=False, a_shape=(3, 64))
    x = rng.standard_normal((3, 64)).astype(np.float32)
    module, (got,) = run_lutc(model, {"A": x})
    # onnxruntime's CPU kernel refuses 8-bit weights with float zero points: check the math directly.
    want = x @ weight.T if (bits, zero_points) == (8, "float") else run_ort(model, {"A": x})[0]
    assert_close(got, want)
    (op,) = mpgemm_ops(module)
    assert op.attr("bits") == bits and op.attr("group_size") == 32 and not op.attr("ternary")
    assert len(op.operands) == (3 if zero_points == "default" else 4)
    assert op.operands[1].type.element.name == f"ui{bits}"


def test_matmul_nbits_ragged_k_3d_input_bias_and_flat_scales():
    # K = 80 is not a multiple of the block size: the last block is padded with unused codes.
    rng = np.random.default_rng(7)
    model, _ = matmul_nbits_model(rng, bits=4, k=80, n=16, block=32, zero_points="packed", bias=True, a_shape=(2, 3, 80),
                                  flat_scales=True)
    x = rng.standard_normal((2, 3, 80)).astype(np.float32)
    module, (got,) = run_lutc(model, {"A": x})
    (want,) = run_ort(model, {"A": x})
    assert_close(got, want)
    (op,) = mpgemm_ops(module)
    assert op.operands[1].type.shape == (16, 80) and op.operands[2].type.shape == (16, 3)
    assert [u.user.name for u in op.result.uses] == ["graph.add"]  # the bias


def test_matmul_nbits_block_16_and_128():
    for block, k in [(16, 48), (128, 256)]:
        rng = np.random.default_rng(block)
        model, _ = matmul_nbits_model(rng, bits=4, k=k, n=8, block=block, zero_points="default", bias=False, a_shape=(1, k))
        x = rng.standard_normal((1, k)).astype(np.float32)
        module, (got,) = run_lutc(model, {"A": x})
        assert_close(got, run_ort(model, {"A": x})[0])
        assert mpgemm_ops(module)[0].attr("group_size") == block


def test_matmul_nbits_3bit_follows_the_documented_packing():
    # onnxruntime's CPU kernel runs only 2, 4 and 8 bits; 3-bit codes follow the same layout
    # (a little-endian bit stream per block), checked here against the dequantized weight.
    rng = np.random.default_rng(3)
    model, weight = matmul_nbits_model(rng, bits=3, k=64, n=8, block=32, zero_points="packed", bias=False, a_shape=(2, 64))
    x = rng.standard_normal((2, 64)).astype(np.float32)
    module, (got,) = run_lutc(model, {"A": x})
    assert_close(got, x @ weight.T)
    assert mpgemm_ops(module)[0].attr("bits") == 3


def test_unpack_codes_is_low_bits_first():
    # 4 bits: byte 0x21 holds codes 1 (low nibble) then 2; 2 bits: 0b11100100 holds 0, 1, 2, 3.
    assert unpack_codes(np.array([[0x21, 0x43]], np.uint8), 4, 4).tolist() == [[1, 2, 3, 4]]
    assert unpack_codes(np.array([[0b11100100]], np.uint8), 2, 4).tolist() == [[0, 1, 2, 3]]
    # 3 bits: codes 5, 3, 7 -> bits 101 110 111 -> stream 0b1_111_110_101 across two bytes.
    assert unpack_codes(np.array([[0b11110101, 0b1]], np.uint8), 3, 3).tolist() == [[5, 6, 7]]


# -- DequantizeLinear -> MatMul ----------------------------------------------------------------

QUANT_TYPES = {
    # name: (ONNX type, ml_dtypes storage, low, high (exclusive), opset)
    "int4": (TensorProto.INT4, ml_dtypes.int4, -8, 8, 21),
    "uint4": (TensorProto.UINT4, ml_dtypes.uint4, 0, 16, 21),
    "int2": (TensorProto.INT2, ml_dtypes.int2, -2, 2, 25),
    "uint2": (TensorProto.UINT2, ml_dtypes.uint2, 0, 4, 25),
    "int8": (TensorProto.INT8, np.int8, -128, 128, 21),
}


def dq_matmul_model(rng, qtype, *, k, n, block, with_zero_point, transposed, per="block"):
    onnx_type, storage, low, high, opset = QUANT_TYPES[qtype]
    shape = (n, k) if transposed else (k, n)
    k_axis = 1 if transposed else 0
    q = rng.integers(low, high, size=shape)
    if per == "block":
        param_shape = list(shape)
        param_shape[k_axis] = -(-k // block)
        attrs = {"axis": k_axis, "block_size": block}
    elif per == "channel":
        param_shape, attrs = [n], {"axis": 1 - k_axis}
    else:
        param_shape, attrs = [], {}
    scale = rng.uniform(0.01, 0.1, size=param_shape).astype(np.float32)
    inits = [numpy_helper.from_array(q.astype(storage), "wq"), numpy_helper.from_array(scale, "wscale")]
    dq_inputs = ["wq", "wscale"]
    if with_zero_point:
        zp = rng.integers(low, high, size=param_shape)
        inits.append(numpy_helper.from_array(np.asarray(zp).astype(storage), "wzp"))
        dq_inputs.append("wzp")
    nodes = [helper.make_node("DequantizeLinear", dq_inputs, ["w"], name="dq", **attrs)]
    if transposed:
        nodes.append(helper.make_node("Transpose", ["w"], ["wt"], name="t", perm=[1, 0]))
    nodes.append(helper.make_node("MatMul", ["x", "wt" if transposed else "w"], ["y"], name="mm"))
    return make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5, k])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5, n])], inits, opset=opset)


@pytest.mark.parametrize("qtype", ["int4", "uint4", "int2", "uint2"])
@pytest.mark.parametrize("with_zero_point", [False, True])
@pytest.mark.parametrize("transposed", [False, True])
def test_blocked_dequantize_matmul_matches_onnxruntime(qtype, with_zero_point, transposed):
    rng = np.random.default_rng(zlib.crc32(f"{qtype}-{with_zero_point}-{transposed}".encode()))
    model = dq_matmul_model(rng, qtype, k=96, n=12, block=32, with_zero_point=with_zero_point, transposed=transposed)
    x = rng.standard_normal((2, 5, 96)).astype(np.float32)
    module, (got,) = run_lutc(model, {"x": x})
    assert_close(got, run_ort(model, {"x": x})[0])
    (op,) = mpgemm_ops(module)
    bits = 4 if "4" in qtype else 2
    assert op.attr("bits") == bits and op.attr("group_size") == 32
    assert op.operands[1].type == lutc.ir.TensorType((12, 96), lutc.ir.ElementType(f"ui{bits}"))
    # A signed weight without a zero point needs none: its shifted zero point is mpgemm's default.
    assert len(op.operands) == (3 if qtype.startswith("int") and not with_zero_point else 4)
    assert not any(o.name in ("graph.dequantize", "graph.matmul") for o in module.walk())


@pytest.mark.parametrize("per", ["channel", "tensor"])
def test_per_channel_and_per_tensor_int8_weights_become_8bit_mpgemm(per):
    rng = np.random.default_rng(11)
    model = dq_matmul_model(rng, "int8", k=40, n=6, block=0, with_zero_point=True, transposed=False, per=per)
    x = rng.standard_normal((2, 5, 40)).astype(np.float32)
    module, (got,) = run_lutc(model, {"x": x})
    assert_close(got, run_ort(model, {"x": x})[0])
    (op,) = mpgemm_ops(module)
    assert op.attr("bits") == 8 and op.attr("group_size") == 40


def test_blocks_along_n_stay_a_dequantize_and_matmul():
    # Blocks along the output dimension do not fit one scale per (row, K-group): no mpgemm.
    rng = np.random.default_rng(5)
    onnx_type, storage, low, high, opset = QUANT_TYPES["int4"]
    q = rng.integers(low, high, size=(32, 16)).astype(storage)
    scale = rng.uniform(0.01, 0.1, size=(32, 2)).astype(np.float32)
    nodes = [helper.make_node("DequantizeLinear", ["wq", "s"], ["w"], axis=1, block_size=8), helper.make_node("MatMul", ["x", "w"], ["y"])]
    model = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 32])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 16])],
                       [numpy_helper.from_array(q, "wq"), numpy_helper.from_array(scale, "s")])
    x = rng.standard_normal((3, 32)).astype(np.float32)
    module, (got,) = run_lutc(model, {"x": x})
    assert_close(got, run_ort(model, {"x": x})[0])
    assert not mpgemm_ops(module) and any(o.name == "graph.matmul" for o in module.walk())


# -- ternary constants ------------------------------------------------------------------------


def float_matmul_model(weight: np.ndarray) -> onnx.ModelProto:
    k, n = weight.shape
    return make_model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, k])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, n])], [numpy_helper.from_array(weight, "w")], opset=17)


@pytest.mark.parametrize("per_row", [True, False])
def test_ternary_weight_becomes_ternary_mpgemm(per_row):
    rng = np.random.default_rng(2 + per_row)
    signs = rng.integers(-1, 2, size=(64, 10)).astype(np.float32)
    scale = rng.uniform(0.05, 0.5, size=(1, 10)).astype(np.float32) if per_row else np.float32(0.37)
    model = float_matmul_model(signs * scale)
    x = rng.standard_normal((4, 64)).astype(np.float32)
    module, (got,) = run_lutc(model, {"x": x})
    assert_close(got, run_ort(model, {"x": x})[0])
    (op,) = mpgemm_ops(module)
    assert op.attr("ternary") and op.attr("bits") == 2 and op.attr("group_size") == 64
    codes = op.operands[1].op.attr("value")
    assert set(np.unique(codes)) <= {0, 1, 2}


def test_general_float_weight_stays_a_matmul():
    rng = np.random.default_rng(9)
    weight = rng.standard_normal((16, 8)).astype(np.float32)
    weight[:, 0] = np.sign(weight[:, 0])  # one ternary column is not enough
    module, (got,) = run_lutc(float_matmul_model(weight), {"x": np.ones((4, 16), np.float32)})
    assert not mpgemm_ops(module)
    np.testing.assert_allclose(got, np.ones((4, 16), np.float32) @ weight, rtol=1e-5)


def test_gemm_with_trans_b_of_a_square_dequantized_weight():
    # Gemm(x, DQ(W_nk), transB=1) + bias: W is N x K blocked along K; square, so only the
    # orientation (not the shapes) tells rows from columns.
    rng = np.random.default_rng(12)
    _, storage, low, high, opset = QUANT_TYPES["uint4"]
    q = rng.integers(low, high, size=(32, 32)).astype(storage)
    scale = rng.uniform(0.01, 0.1, size=(32, 4)).astype(np.float32)
    zp = rng.integers(low, high, size=(32, 4)).astype(storage)
    bias = rng.standard_normal(32).astype(np.float32)
    nodes = [helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["w"], axis=1, block_size=8),
             helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)]
    model = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 32])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 32])],
                       [numpy_helper.from_array(q, "wq"), numpy_helper.from_array(scale, "s"), numpy_helper.from_array(zp, "z"),
                        numpy_helper.from_array(bias, "b")])
    x = rng.standard_normal((3, 32)).astype(np.float32)
    module, (got,) = run_lutc(model, {"x": x})
    assert_close(got, run_ort(model, {"x": x})[0])
    (op,) = mpgemm_ops(module)
    assert op.attr("group_size") == 8 and op.operands[3].type.shape == (32, 4)
