"""One ONNX operator at a time, with the attribute variants that matter: lutc (import_onnx + the
reference interpreter) against onnxruntime on seeded random inputs.

Floats agree to 1e-5 of the output's largest magnitude (one op, float32 on both sides: only
summation order and libm differ); integers and booleans exactly. The ONNX node-test suite
(bench/onnx_conformance.py, checked in test_onnx_conformance.py) covers the ops more broadly;
these cases add the shapes and attribute combinations of exported CNNs and transformers.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import lutc

ONNX_TYPES = {"float32": TensorProto.FLOAT, "int64": TensorProto.INT64, "int32": TensorProto.INT32, "bool": TensorProto.BOOL,
              "uint8": TensorProto.UINT8, "float16": TensorProto.FLOAT16}


@dataclass
class Case:
    op: str
    inputs: list                     # (shape, dtype) per runtime input, or (shape, dtype, low, high)
    attrs: dict = field(default_factory=dict)
    consts: dict = field(default_factory=dict)   # input position -> constant array (an initializer)
    opset: int = 17
    outputs: int = 1
    special: str | None = None       # "nan": sprinkle NaNs into float inputs

    @property
    def id(self) -> str:
        attrs = ",".join(f"{k}={v}" for k, v in sorted(self.attrs.items()))
        return f"{self.op}[{attrs}]" + (f"-{self.special}" if self.special else "")


def I(*shape, dtype="float32", low=-2.0, high=2.0):  # noqa: E743  (an input spec)
    return (shape, dtype, low, high)


CASES = [
    # convolutions: groups, dilations, pads, strides, auto_pad, 1-D and 3-D, transposed
    Case("Conv", [I(1, 4, 9, 9)], dict(pads=[1, 1, 1, 1], strides=[2, 2]), consts={1: ("w", (6, 4, 3, 3)), 2: ("w", (6,))}),
    Case("Conv", [I(2, 6, 8, 7)], dict(group=3, dilations=[2, 1], pads=[2, 0, 1, 1]), consts={1: ("w", (9, 2, 3, 2))}),
    Case("Conv", [I(1, 8, 7, 7)], dict(group=8, auto_pad="SAME_UPPER", strides=[2, 2]), consts={1: ("w", (8, 1, 3, 3))}),
    Case("Conv", [I(1, 3, 6, 6)], dict(auto_pad="SAME_LOWER", strides=[2, 2]), consts={1: ("w", (2, 3, 4, 4))}),
    Case("Conv", [I(1, 3, 6, 6)], dict(auto_pad="VALID"), consts={1: ("w", (2, 3, 3, 3))}),
    Case("Conv", [I(2, 3, 11)], dict(pads=[2, 1], dilations=[2]), consts={1: ("w", (4, 3, 3))}),
    Case("Conv", [I(1, 2, 4, 5, 5)], dict(strides=[1, 2, 2]), consts={1: ("w", (3, 2, 2, 3, 3))}),
    Case("ConvTranspose", [I(1, 4, 5, 5)], dict(strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]),
         consts={1: ("w", (4, 3, 3, 3)), 2: ("w", (3,))}),
    Case("ConvTranspose", [I(1, 4, 3, 4)], dict(group=2, dilations=[2, 1]), consts={1: ("w", (4, 2, 3, 3))}),
    Case("ConvTranspose", [I(1, 2, 4, 4)], dict(strides=[2, 2], output_shape=[9, 9]), consts={1: ("w", (2, 3, 3, 3))}),
    # pooling
    Case("MaxPool", [I(1, 3, 9, 9)], dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    Case("MaxPool", [I(1, 2, 8, 8)], dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    Case("MaxPool", [I(1, 2, 7, 7)], dict(kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_UPPER")),
    Case("MaxPool", [I(1, 2, 7, 7)], dict(kernel_shape=[2, 2], dilations=[2, 2], pads=[1, 0, 1, 1])),
    Case("AveragePool", [I(1, 3, 7, 7)], dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    Case("AveragePool", [I(1, 3, 7, 7)], dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)),
    Case("AveragePool", [I(1, 2, 8, 8)], dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    Case("GlobalAveragePool", [I(2, 5, 4, 3)]),
    Case("GlobalMaxPool", [I(2, 5, 4, 3)]),
    # normalizations and activations
    Case("BatchNormalization", [I(2, 3, 4, 4)], dict(epsilon=1e-3),
         consts={1: ("w", (3,)), 2: ("w", (3,)), 3: ("w", (3,)), 4: ("pos", (3,))}),
    Case("LayerNormalization", [I(2, 5, 8)], dict(axis=-1, epsilon=1e-5), consts={1: ("w", (8,)), 2: ("w", (8,))}),
    Case("LayerNormalization", [I(2, 5, 8)], dict(axis=1), consts={1: ("w", (5, 8))}),
    Case("RMSNormalization", [I(2, 5, 8)], dict(epsilon=1e-6), consts={1: ("w", (8,))}, opset=23),
    Case("InstanceNormalization", [I(2, 3, 5, 4)], consts={1: ("w", (3,)), 2: ("w", (3,))}),
    Case("Softmax", [I(2, 3, 7)], dict(axis=1)),
    Case("LogSoftmax", [I(2, 3, 7)], dict(axis=-1)),
    Case("Gelu", [I(3, 10)], opset=20),
    Case("Gelu", [I(3, 10)], dict(approximate="tanh"), opset=20),
    Case("Sigmoid", [I(4, 5, low=-30, high=30)]),
    Case("Erf", [I(4, 5)]),
    Case("HardSigmoid", [I(4, 5)], dict(alpha=0.3, beta=0.4)),
    Case("HardSwish", [I(4, 5, low=-5, high=5)]),
    Case("LeakyRelu", [I(4, 5)], dict(alpha=0.2)),
    Case("Elu", [I(4, 5)], dict(alpha=0.5)),
    Case("Softplus", [I(4, 5, low=-30, high=30)]),
    Case("PRelu", [I(2, 3, 4)], consts={1: ("w", (3, 1))}),
    Case("Clip", [I(4, 5)], consts={1: ("scalar", -0.5), 2: ("scalar", 0.7)}),
    Case("Clip", [I(4, 5, dtype="int64", low=-10, high=10)], consts={1: ("int", -3)}),
    # elementwise semantics: broadcasting, integers, NaN
    Case("Add", [I(2, 1, 4), I(3, 1)]),
    Case("Div", [I(3, 4, dtype="int32", low=-20, high=20), I(4, dtype="int32", low=1, high=5)]),
    Case("Mod", [I(3, 4, dtype="int64", low=-20, high=20), I(4, dtype="int64", low=1, high=6)]),
    Case("Mod", [I(3, 4), I(3, 4, low=0.5, high=2)], dict(fmod=1)),
    Case("Pow", [I(3, 4, low=0.1, high=3), I(4, dtype="int64", low=0, high=3)]),
    Case("Max", [I(3, 4), I(4), I(3, 1)], special="nan"),
    Case("Where", [I(3, 1, dtype="bool"), I(1, 4), I(3, 4)]),
    Case("Equal", [I(3, 4, dtype="int64", low=0, high=3), I(4, dtype="int64", low=0, high=3)]),
    Case("And", [I(3, 4, dtype="bool"), I(4, dtype="bool")]),
    Case("Not", [I(3, 4, dtype="bool")]),
    Case("Cast", [I(3, 4, low=-9, high=9)], dict(to=TensorProto.INT32)),
    Case("Cast", [I(3, 4, dtype="int64", low=-3, high=3)], dict(to=TensorProto.BOOL)),
    Case("Round", [(( 7,), "float32", None, None)]),
    # reductions: axes as attribute (opset 17) or input (opset 18+), keepdims, NaN
    Case("ReduceMean", [I(2, 3, 4)], dict(axes=[1, 2], keepdims=0)),
    Case("ReduceMean", [I(2, 3, 4)], dict(keepdims=1), consts={1: ("int", [-1])}, opset=18),
    Case("ReduceSum", [I(2, 3, 4)], dict(keepdims=0), consts={1: ("int", [0, 2])}),
    Case("ReduceMax", [I(2, 3, 4)], dict(axes=[1])),  # (with NaN, ORT's answer depends on the position)
    Case("ReduceMin", [I(2, 3, 4, dtype="int32", low=-50, high=50)], dict(axes=[0, 2], keepdims=0)),
    Case("ReduceProd", [I(2, 3, 4, low=0.5, high=1.5)], dict(axes=[2])),
    Case("ReduceL2", [I(2, 3, 4)], dict(axes=[1])),
    Case("ReduceLogSumExp", [I(2, 3, 4, low=-50, high=50)], dict(axes=[2])),
    Case("ArgMax", [I(3, 5)], dict(axis=1, keepdims=0)),
    Case("ArgMin", [I(3, 5, dtype="int64", low=0, high=3)], dict(axis=0, select_last_index=1)),
    Case("CumSum", [I(3, 5)], dict(exclusive=1, reverse=1), consts={1: ("int", 1)}),
    Case("TopK", [I(3, 6)], dict(axis=1, largest=0), consts={1: ("int", [2])}, outputs=2),
    # layout and indexing
    Case("Transpose", [I(2, 3, 4)], dict(perm=[2, 0, 1])),
    Case("Flatten", [I(2, 3, 4)], dict(axis=2)),
    Case("Reshape", [I(2, 3, 4)], consts={1: ("int", [0, -1])}),
    Case("Squeeze", [I(2, 1, 4, 1)], consts={1: ("int", [-1])}),
    Case("Unsqueeze", [I(2, 4)], consts={1: ("int", [0, -1])}),
    Case("Concat", [I(2, 3), I(2, 1), I(2, 2)], dict(axis=-1)),
    Case("Split", [I(6, 4)], dict(axis=0), consts={1: ("int", [1, 2, 3])}, outputs=3),
    Case("Split", [I(7, 4)], dict(axis=0, num_outputs=3), opset=18, outputs=3),
    Case("Slice", [I(5, 6)], consts={1: ("int", [4, -100]), 2: ("int", [-6, 100]), 3: ("int", [0, 1]), 4: ("int", [-2, 3])}),
    Case("Gather", [I(5, 4), I(2, 3, dtype="int64", low=-5, high=5)], dict(axis=0)),
    Case("GatherElements", [I(3, 4), I(3, 2, dtype="int64", low=-4, high=4)], dict(axis=1)),
    Case("GatherND", [I(2, 3, 4), I(2, 1, dtype="int64", low=0, high=3)], dict(batch_dims=1)),
    Case("ScatterElements", [I(3, 4)], dict(axis=1, reduction="add"), consts={1: ("int", [[0, 1], [3, 3], [2, 0]]), 2: ("w", (3, 2))}),
    Case("ScatterND", [I(4, 3)], consts={1: ("int", [[1], [3]]), 2: ("w", (2, 3))}),
    Case("Expand", [I(3, 1)], consts={1: ("int", [2, 3, 4])}),
    Case("Tile", [I(2, 3)], consts={1: ("int", [2, 3])}),
    Case("Pad", [I(3, 4)], dict(mode="reflect"), consts={1: ("int", [1, 2, 2, 1])}),
    Case("Pad", [I(3, 4)], dict(mode="edge"), consts={1: ("int", [0, 1, 2, 0])}),
    Case("Pad", [I(3, 4)], consts={1: ("int", [1, -1, 0, 2]), 2: ("scalar", 1.5)}),
    Case("Trilu", [I(2, 4, 5)], dict(upper=0), consts={1: ("int", 1)}),
    Case("Range", [], consts={0: ("scalar", 1.0), 1: ("scalar", 7.5), 2: ("scalar", 1.5)}),
    Case("OneHot", [I(2, 3, dtype="int64", low=-4, high=4)], dict(axis=1), consts={1: ("int", 4), 2: ("w", (2,))}),
    Case("DepthToSpace", [I(1, 8, 2, 3)], dict(blocksize=2, mode="CRD")),
    Case("SpaceToDepth", [I(1, 2, 4, 6)], dict(blocksize=2)),
    Case("Einsum", [I(2, 3, 4), I(2, 4, 5)], dict(equation="bij,bjk->bik")),
    Case("Gemm", [I(4, 3)], dict(transA=1, alpha=0.5, beta=2.0), consts={1: ("w", (4, 5)), 2: ("w", (5,))}),
    Case("MatMul", [I(2, 1, 3, 4), I(5, 4, 2)]),
    Case("QuantizeLinear", [I(3, 4, low=-3, high=3)], dict(axis=1), consts={1: ("pos", (4,)), 2: ("uint8", [10, 128, 0, 255])}),
    Case("DequantizeLinear", [I(3, 4, dtype="uint8", low=0, high=255)], consts={1: ("pos", ()), 2: ("uint8", 7)}),
]


def constant(kind, value, rng):
    if kind == "w":
        return rng.standard_normal(value).astype(np.float32)
    if kind == "pos":
        return rng.uniform(0.5, 1.5, value).astype(np.float32)
    if kind == "scalar":
        return np.array(value, np.float32)
    if kind == "uint8":
        return np.array(value, np.uint8)
    return np.array(value, np.int64)


def sample(spec, rng, nan):
    shape, dtype, low, high = spec
    if low is None:  # halves: Round must round them to even
        return np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.7], np.float32)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype.startswith(("int", "uint")):
        return rng.integers(low, high, size=shape).astype(dtype)
    x = rng.uniform(low, high, size=shape).astype(dtype)
    if nan and x.size > 2:
        x.reshape(-1)[:: max(1, x.size // 3)] = np.nan
    return x


def build(case: Case, rng):
    n_inputs = len(case.inputs) + len(case.consts)
    names, graph_inputs, initializers, feeds = [], [], [], {}
    runtime = iter(case.inputs)
    for i in range(n_inputs):
        name = f"in{i}"
        names.append(name)
        if i in case.consts:
            initializers.append(numpy_helper.from_array(constant(*case.consts[i], rng), name))
        else:
            spec = next(runtime)
            value = sample(spec, rng, case.special == "nan")
            feeds[name] = value
            graph_inputs.append(helper.make_tensor_value_info(name, ONNX_TYPES[str(value.dtype)], value.shape))
    outputs = [f"out{i}" for i in range(case.outputs)]
    node = helper.make_node(case.op, names, outputs, name="node", **case.attrs)
    graph = helper.make_graph([node], "g", graph_inputs, [helper.make_empty_tensor_value_info(o) for o in outputs], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", case.opset)])
    return onnx.shape_inference.infer_shapes(model), feeds


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_op_matches_onnxruntime(case: Case):
    rng = np.random.default_rng(zlib.crc32(case.id.encode()))
    model, feeds = build(case, rng)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    got = lutc.compile(lutc.import_onnx(model), target="reference").run(feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, w.shape, g.dtype, w.dtype)
        if w.dtype.kind in "iub":
            np.testing.assert_array_equal(g, w)
        else:
            finite = np.abs(w[np.isfinite(w)])
            scale = float(finite.max()) if finite.size else 0.0
            np.testing.assert_allclose(g, w, rtol=0, atol=1e-5 * max(scale, 1e-6), equal_nan=True)


def test_every_case_op_has_a_converter():
    from lutc.frontends.onnx_ops import CONVERTERS

    assert {c.op for c in CASES} <= set(CONVERTERS)
