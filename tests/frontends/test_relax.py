"""`lutc.import_relax` on whole modules: what TVM's own ONNX frontend makes of the test models
(tests/models/onnx, docs/models.md) and modules written in TVMScript. The lutc reference
interpreter must agree with TVM's compiled result (`tvm.compile(mod, target="llvm")`, run by
the Relax VM) on the same inputs.

Tolerance: 1e-4 of each output's largest magnitude (as in tests/models/test_onnx_models.py:
float32 on both sides, different summation orders and libm; real mapping errors are >= 1e-3).
"""

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

tvm = pytest.importorskip("tvm")
from tvm import relax  # noqa: E402
from tvm.relax.frontend.onnx import from_onnx  # noqa: E402
from tvm.script import ir as I  # noqa: E402
from tvm.script import relax as R  # noqa: E402
from tvm.script import tirx as T  # noqa: E402

from lutc.diagnostics import LutcError  # noqa: E402
from lutc.frontends.relax import import_relax  # noqa: E402
from lutc.ir.interpreter import run  # noqa: E402
from lutc.ir.types import TensorType  # noqa: E402
from lutc.ir.verifier import verify  # noqa: E402

MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "onnx"
RTOL = 1e-4

# TVM 0.27's ONNX frontend imports the dynamo exports; the TorchScript exports of the
# transformers fail inside it (ConstantOfShape of a 0-d shape), MatMulNBits is unknown to it,
# blocked int4 DequantizeLinear trips its tensor copy, and MobileNetV2's Clip with tensor bounds
# becomes R.call_tir (tested below as an unsupported-op error).
TVM_IMPORTABLE = ["llama_dynamo", "gpt2_dynamo", "bert_dynamo", "resnet18_dynamo", "resnet18_torchscript"]


def flatten(value: Any) -> list[np.ndarray]:
    if hasattr(value, "numpy"):
        return [value.numpy()]
    return [a for item in value for a in flatten(item)]


def run_tvm(mod: "tvm.IRModule", arrays: list[np.ndarray]) -> list[np.ndarray]:
    vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
    return flatten(vm["main"](*(tvm.runtime.tensor(a) for a in arrays)))


def assert_close(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert np.asarray(g).shape == w.shape, f"output {i}: {np.asarray(g).shape} vs TVM's {w.shape}"
        scale = float(np.max(np.abs(w)))
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=RTOL * scale, err_msg=f"output {i}")


def model_inputs(name: str) -> list[np.ndarray]:
    with np.load(MODEL_DIR / f"{name}.npz") as data:
        return [data[k] for k in data.files if k.startswith("input:")]


@pytest.mark.parametrize("name", TVM_IMPORTABLE)
def test_tvm_onnx_frontend_models_match_tvm(name: str) -> None:
    mod = from_onnx(onnx.load(MODEL_DIR / f"{name}.onnx"), keep_params_in_input=False)
    module = import_relax(mod)
    verify(module)
    inputs = model_inputs(name)
    assert_close(run(module, inputs), run_tvm(mod, inputs))


def test_weights_attached_as_params_are_bound() -> None:
    # keep_params_in_input=True makes the weights function parameters, with the arrays in the
    # function's "params" attribute: lutc binds them, and only the real input stays an argument.
    mod = from_onnx(onnx.load(MODEL_DIR / "resnet18_torchscript.onnx"), keep_params_in_input=True)
    module = import_relax(mod)
    fn = module.function()
    assert fn.attr("arg_names") == ["input"]
    inputs = model_inputs("resnet18_torchscript")
    with np.load(MODEL_DIR / "resnet18_torchscript.npz") as data:
        expected = data["output:logits"]
    assert_close(run(module, inputs), [expected])


def test_explicit_params_replace_arguments() -> None:
    mod = from_onnx(onnx.load(MODEL_DIR / "resnet18_torchscript.onnx"), keep_params_in_input=True)
    fn = mod["main"]
    weights = {p.name: t.numpy() for p, t in zip(fn.params[1:], fn.attrs["params"])}
    weights["fc.bias"] = weights["fc.bias"] + 1.0  # an explicit array wins over the attached one
    module = import_relax(mod, params=weights)
    inputs = model_inputs("resnet18_torchscript")
    without = run(import_relax(mod), inputs)[0]
    np.testing.assert_allclose(run(module, inputs)[0], without + 1.0, rtol=1e-5, atol=1e-5)


# -- TVMScript modules ----------------------------------------------------------------------------


@I.ir_module
class AttentionBlock:
    """One pre-norm attention head plus a SiLU-gated MLP, as a LLaMA layer spells it in Relax."""

    @R.function
    def main(
        x: R.Tensor((1, 6, 16), "float32"),
        norm_w: R.Tensor((16,), "float32"),
        wqkv: R.Tensor((16, 48), "float32"),
        w_gate: R.Tensor((16, 32), "float32"),
        w_down: R.Tensor((32, 16), "float32"),
    ) -> R.Tuple(R.Tensor((1, 6, 16), "float32"), R.Tensor((1, 6, 6), "float32")):
        with R.dataflow():
            h = R.nn.rms_norm(x, norm_w, axes=[-1], epsilon=1e-6)
            qkv = R.matmul(h, wqkv)
            parts = R.split(qkv, 3, axis=-1)
            q = parts[0]
            k = parts[1]
            v = parts[2]
            scores = R.matmul(q, R.permute_dims(k, [0, 2, 1]))
            scaled = R.multiply(scores, R.const(0.25, "float32"))
            causal = R.triu(R.full((6, 6), R.const(-1e9, "float32")), 1)
            probs = R.nn.softmax(R.add(scaled, causal), axis=-1)
            attn = R.matmul(probs, v)
            y = R.add(x, attn)
            gate = R.nn.silu(R.matmul(y, w_gate))
            out = R.add(y, R.matmul(gate, w_down))
            result = (out, probs)
            R.output(result)
        return result


@I.ir_module
class ConvBlock:
    """Conv + batch norm (a tuple result) + ReLU + pools + a classifier, on a symbolic batch."""

    @R.function
    def main(
        x: R.Tensor(("n", 3, 8, 8), "float32"),
        w: R.Tensor((8, 3, 3, 3), "float32"),
        gamma: R.Tensor((8,), "float32"),
        beta: R.Tensor((8,), "float32"),
        mean: R.Tensor((8,), "float32"),
        var: R.Tensor((8,), "float32"),
        fc: R.Tensor((8, 5), "float32"),
    ) -> R.Tensor(("n", 5), "float32"):
        n = T.int64()
        with R.dataflow():
            c = R.nn.conv2d(x, w, padding=[1, 1, 1, 1])
            bn = R.nn.batch_norm(c, gamma, beta, mean, var, axis=1, epsilon=1e-5, training=False)
            r = R.nn.relu(bn[0])
            p = R.nn.max_pool2d(r, pool_size=[2, 2], strides=[2, 2])
            g = R.nn.adaptive_avg_pool2d(p, output_size=[1, 1])
            flat = R.reshape(g, R.shape([n, 8]))
            logits = R.matmul(flat, fc)
            R.output(logits)
        return logits


@I.ir_module
class IndexingBlock:
    """Embedding lookup, slicing, concat, reductions, casts and a boolean mask."""

    @R.function
    def main(ids: R.Tensor((2, 5), "int64"), table: R.Tensor((10, 4), "float32")) -> R.Tuple(
        R.Tensor((2, 4), "float32"), R.Tensor((2,), "int64"), R.Tensor((2, 5, 4), "float32")
    ):
        with R.dataflow():
            emb = R.take(table, ids, axis=0)
            head = R.strided_slice(emb, axes=[1], begin=[0], end=[2])
            tail = R.strided_slice(emb, axes=[1], begin=[-1], end=[-4], strides=[-1])
            both = R.concat((tail, head), axis=1)
            pooled = R.mean(both, axis=[1])
            best = R.argmax(R.sum(emb, axis=[2]), axis=1)
            mask = R.greater(R.astype(ids, "float32"), R.const(4.5, "float32"))
            masked = R.where(R.expand_dims(mask, [-1]), emb, R.zeros((2, 5, 4), "float32"))
            result = (pooled, best, masked)
            R.output(result)
        return result


def random_inputs(mod: "tvm.IRModule", seed: int, shapes: dict[str, tuple] | None = None) -> list[np.ndarray]:
    """Random inputs for `main`'s parameters (`shapes` fixes symbolic ones); ints index a 10-row table."""
    rng = np.random.default_rng(seed)
    arrays = []
    for p in mod["main"].params:
        shape = (shapes or {}).get(p.name) or tuple(int(d) for d in p.ty.shape.values)
        dtype = str(p.ty.dtype)
        if dtype == "int64":
            arrays.append(rng.integers(0, 10, size=shape).astype(np.int64))
        elif p.name == "var":
            arrays.append(rng.uniform(0.5, 2.0, size=shape).astype(np.float32))
        else:
            arrays.append(rng.standard_normal(shape).astype(np.float32))
    return arrays


def test_attention_block_matches_tvm() -> None:
    module = import_relax(AttentionBlock)
    verify(module)
    inputs = random_inputs(AttentionBlock, 0)
    got = run(module, inputs)
    assert_close(got, run_tvm(AttentionBlock, inputs))


def test_conv_block_with_a_symbolic_batch_matches_tvm() -> None:
    module = import_relax(ConvBlock)
    x_type = module.function().regions[0].block.args[0].type
    assert x_type == TensorType((None, 3, 8, 8), x_type.element), "the symbolic batch dim becomes '?'"
    for batch in (1, 3):  # one import serves every batch size
        inputs = random_inputs(ConvBlock, batch, {"x": (batch, 3, 8, 8)})
        assert_close(run(module, inputs), run_tvm(ConvBlock, inputs))


def test_indexing_block_matches_tvm() -> None:
    module = import_relax(IndexingBlock)
    inputs = random_inputs(IndexingBlock, 2)
    got = run(module, inputs)
    want = run_tvm(IndexingBlock, inputs)
    np.testing.assert_array_equal(got[1], want[1])
    assert_close([got[0], got[2]], [want[0], want[2]])


def test_names_follow_the_relax_function() -> None:
    fn = import_relax(AttentionBlock).function()
    assert fn.attr("sym_name") == "main"
    assert fn.attr("arg_names") == ["x", "norm_w", "wqkv", "w_gate", "w_down"]
    assert fn.attr("result_names") == ["result.0", "result.1"]


# -- errors ---------------------------------------------------------------------------------------


@I.ir_module
class Unsupported:
    @R.function
    def main(x: R.Tensor((4, 8), "float32")) -> R.Tensor((4, 8), "float32"):
        with R.dataflow():
            a = R.sort(x, axis=1)
            b = R.sort(a, axis=0)
            c = R.flip(b, axis=1)
            d = R.nn.relu(c)
            R.output(d)
        return d


def test_unsupported_ops_are_listed_in_one_error() -> None:
    with pytest.raises(LutcError) as err:
        import_relax(Unsupported)
    message = str(err.value)
    assert "relax.sort (x2)" in message and "relax.flip" in message
    assert "relax.nn.relu" not in message


def test_call_tir_from_tvm_onnx_frontend_is_reported() -> None:
    # TVM lowers MobileNetV2's Clip (bounds given as tensors) to TIR functions lutc cannot read.
    mod = from_onnx(onnx.load(MODEL_DIR / "mobilenetv2_dynamo.onnx"), keep_params_in_input=False)
    with pytest.raises(LutcError, match=r"relax\.call_tir \(x\d+\)"):
        import_relax(mod)


def test_missing_function_is_an_error() -> None:
    with pytest.raises(LutcError, match="no function 'forward'.*main"):
        import_relax(AttentionBlock, "forward")


@I.ir_module
class LayerNormWithoutBeta:
    @R.function
    def main(x: R.Tensor((2, 4), "float32"), g: R.Tensor((4,), "float32"), b: R.Tensor((4,), "float32")) -> R.Tensor((2, 4), "float32"):
        with R.dataflow():
            y = R.nn.layer_norm(x, g, b, axes=[-1], center=False)
            R.output(y)
        return y


def test_layer_norm_flags_that_tvm_ignores_are_refused() -> None:
    with pytest.raises(LutcError, match="center=False"):
        import_relax(LayerNormWithoutBeta)


@I.ir_module
class CallsAndBranches:
    @R.function
    def helper(x: R.Tensor((2, 3), "float32")) -> R.Tensor((2, 3), "float32"):
        return R.nn.relu(x)

    @R.function
    def main(x: R.Tensor((2, 3), "float32"), c: R.Tensor((), "bool")) -> R.Tensor((2, 3), "float32"):
        y = CallsAndBranches.helper(x)
        if c:
            z = R.exp(y)
        else:
            z = R.log(y)
        return z


def test_function_calls_and_control_flow_are_reported() -> None:
    with pytest.raises(LutcError, match=r"call to function 'helper'.*control flow \(If\)"):
        import_relax(CallsAndBranches)


@I.ir_module
class MatchCastOutsideDataflow:
    @R.function
    def main(x: R.Tensor(("n", 3), "float32")) -> R.Tensor((2, 3), "float32"):
        y = R.match_cast(x, R.Tensor((2, 3), "float32"))
        z = R.nn.relu(y)
        return z


def test_match_cast_outside_a_dataflow_block_passes_values_through() -> None:
    module = import_relax(MatchCastOutsideDataflow)
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(run(module, [x])[0], np.maximum(x, 0))
