"""The CPU backend: TVM-compiled results equal the reference interpreter.

Tolerances, and why: the compiled code sums in another order than NumPy (vector partial
sums in the kernels, TVM's loop order in legalized ops), so float32 results differ by a few
ulps of the magnitude of the terms summed. For the matmuls that magnitude is
|x| @ |terms|^T, and the bound is 1e-5 of it (K <= 256 terms of ~6e-8 relative error each
stay well below that). Elementwise-only differences (erf, exp in TVM vs NumPy) are 1e-6.
Each module is compiled once (module-scoped fixtures): TVM compiles take seconds.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import lutc
from lutc.diagnostics import LutcError
from lutc.ir import Builder, Module, make_function, sync_function_type, tensor
from lutc.ir.core import function_body
from lutc.ir.types import ElementType
from lutc.passes import PassManager

MODELS = Path(__file__).resolve().parents[1] / "models" / "onnx"


def finish(fn) -> Module:
    sync_function_type(fn)
    module = Module()
    module.body.append(fn)
    return module


def assert_close_to_magnitude(got: np.ndarray, want: np.ndarray, magnitude: np.ndarray, rel: float = 1e-5) -> None:
    """|got - want| <= rel * magnitude + 1e-6, magnitude = the sum of |terms| behind each output."""
    assert got.shape == want.shape and got.dtype == want.dtype
    excess = np.abs(got.astype(np.float64) - want) - (rel * magnitude + 1e-6)
    assert excess.max() <= 0, f"max excess {excess.max():.3g} over the rounding bound"


# -- a small MLP in graph ops -----------------------------------------------------------


def mlp_module(seed: int = 0) -> Module:
    rng = np.random.default_rng(seed)
    fn = make_function("main", [tensor((4, 32), "f32")])
    fn.set_attr("arg_names", ["x"])
    fn.set_attr("result_names", ["probs", "hidden"])
    b = Builder(function_body(fn))
    x = function_body(fn).args[0]
    w1 = b.constant(rng.standard_normal((32, 64)).astype(np.float32) / 6, name="w1")
    b1 = b.constant(rng.standard_normal(64).astype(np.float32), name="b1")
    w2 = b.constant(rng.standard_normal((64, 16)).astype(np.float32) / 8, name="w2")
    gamma = b.constant(rng.uniform(0.5, 1.5, 64).astype(np.float32), name="gamma")
    h = b.op("graph.gelu", b.op("graph.add", b.op("graph.matmul", x, w1), b1))
    h = b.create("graph.layer_norm", [h, gamma], {"axis": -1, "epsilon": 1e-5}).result
    logits = b.op("graph.matmul", h, w2)
    probs = b.create("graph.softmax", [logits], {"axis": -1}).result
    b.create("func.return", [probs, h], result_types=[])
    return finish(fn)


MLP_INPUT = {"x": np.random.default_rng(1).standard_normal((4, 32)).astype(np.float32)}


@pytest.fixture(scope="module")
def mlp():
    module = mlp_module()
    return module, lutc.compile(module, target="cpu")


def test_mlp_matches_reference(mlp):
    module, model = mlp
    want = lutc.compile(module, target="reference").run(MLP_INPUT)
    got = model.run(MLP_INPUT)
    assert [g.shape for g in got] == [(4, 16), (4, 64)]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[0].sum(-1), 1, rtol=1e-5)  # softmax rows, not zeros


def test_run_takes_lists_and_checks_inputs(mlp):
    _, model = mlp
    np.testing.assert_array_equal(model.run([MLP_INPUT["x"]])[0], model.run(MLP_INPUT)[0])
    with pytest.raises(LutcError, match="missing"):
        model.run({})
    with pytest.raises(LutcError, match="shape"):
        model.run({"x": np.zeros((3, 32), np.float32)})


def test_fused_graph_matches_reference():
    module = mlp_module()
    PassManager.parse("fuse-ops").run(module)
    assert any(op.name == "graph.fused" for op in module.walk())
    got = lutc.compile(module, target="cpu").run(MLP_INPUT)
    want = lutc.compile(module, target="reference").run(MLP_INPUT)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def test_export_and_load_in_a_fresh_process(mlp, tmp_path):
    _, model = mlp
    folder = model.export(tmp_path / "mlp")
    assert {p.name for p in folder.iterdir()} == {"model.so", "params.bin", "manifest.json"}
    np.save(tmp_path / "x.npy", MLP_INPUT["x"])
    script = textwrap.dedent(f"""
        import numpy as np
        from lutc.backends.cpu import load_cpu_model
        model = load_cpu_model({str(folder)!r})
        outs = model.run({{"x": np.load({str(tmp_path / 'x.npy')!r})}})
        np.savez({str(tmp_path / 'out.npz')!r}, *outs)
        print(model.input_names, model.output_names)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "['x'] ['probs', 'hidden']" in done.stdout
    with np.load(tmp_path / "out.npz") as data:
        loaded = [data[f"arr_{i}"] for i in range(2)]
    for g, w in zip(loaded, model.run(MLP_INPUT)):
        np.testing.assert_array_equal(g, w)  # the same machine code: bit-identical


# -- mpgemm: dequantize kernel, and the LUT kernels after lut-rewrite ----------------------

# (bits, group size, zero points?, which input): 2- and 4-bit, with and without zeros; the
# 3-bit case has K = 200, not a whole number of groups, and a 3-D activation.
MPGEMM_CASES = [(2, 64, False, 0), (2, 128, True, 0), (4, 128, False, 0), (4, 32, True, 0), (3, 64, True, 1)]
N_OUT = 48


def mpgemm_case_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    weights = []
    for bits, group, zeros, which in MPGEMM_CASES:
        k = 256 if which == 0 else 200
        blocks = -(-k // group)
        codes = rng.integers(0, 2**bits, (N_OUT, k)).astype(np.uint8)
        scales = rng.uniform(-0.2, 0.2, (N_OUT, blocks)).astype(np.float32)
        z = rng.integers(0, 2**bits, (N_OUT, blocks)).astype(np.uint8) if zeros else None
        weights.append((codes, scales, z))
    inputs = {"x": rng.standard_normal((2, 256)).astype(np.float32),
              "x3": rng.standard_normal((1, 3, 200)).astype(np.float32)}
    return weights, inputs


MPGEMM_WEIGHTS, MPGEMM_INPUTS = mpgemm_case_data()


def mpgemm_module() -> Module:
    fn = make_function("main", [tensor((2, 256), "f32"), tensor((1, 3, 200), "f32")])
    fn.set_attr("arg_names", ["x", "x3"])
    b = Builder(function_body(fn))
    args = function_body(fn).args
    outs = []
    for (bits, group, _, which), (codes, scales, zeros) in zip(MPGEMM_CASES, MPGEMM_WEIGHTS):
        operands = [args[which], b.constant(codes, ElementType(f"ui{bits}")), b.constant(scales)]
        if zeros is not None:
            operands.append(b.constant(zeros, ElementType(f"ui{bits}")))
        outs.append(b.create("graph.mpgemm", operands, {"bits": bits, "group_size": group}).result)
    b.create("func.return", outs, result_types=[])
    return finish(fn)


def mpgemm_magnitudes() -> list[np.ndarray]:
    """Per output, sum over k of |x| * |s| * (q + z): the terms the kernels add up."""
    out = []
    for (bits, group, _, which), (codes, scales, zeros) in zip(MPGEMM_CASES, MPGEMM_WEIGHTS):
        x = MPGEMM_INPUTS["x" if which == 0 else "x3"]
        k = codes.shape[1]
        s = np.repeat(np.abs(scales), group, axis=1)[:, :k]
        z = 2 ** (bits - 1) if zeros is None else np.repeat(zeros, group, axis=1)[:, :k]
        out.append(np.abs(x.astype(np.float64)) @ (s * (codes + z)).T)
    return out


@pytest.fixture(scope="module")
def mpgemm_reference():
    return lutc.compile(mpgemm_module(), target="reference").run(MPGEMM_INPUTS)


def test_mpgemm_dequant_kernel_matches_reference(mpgemm_reference):
    got = lutc.compile(mpgemm_module(), target="cpu").run(MPGEMM_INPUTS)
    for g, w, mag in zip(got, mpgemm_reference, mpgemm_magnitudes()):
        assert_close_to_magnitude(g, w, mag)


def test_lut_kernels_with_f32_tables_match_mpgemm(mpgemm_reference):
    module = mpgemm_module()
    PassManager.parse("lut-rewrite{policy=always}").run(module)
    names = {op.name for op in module.walk()}
    assert {"lut.table", "lut.gemm"} <= names and "graph.mpgemm" not in names
    got = lutc.compile(module, target="cpu").run(MPGEMM_INPUTS)
    # f32 tables compute the normal form up to rounding (symmetric tables add +-x sums: 2x).
    for g, w, mag in zip(got, mpgemm_reference, mpgemm_magnitudes()):
        assert_close_to_magnitude(g, w, mag, rel=2e-5)


def test_lut_kernels_with_int8_tables_match_their_reference():
    module = mpgemm_module()
    PassManager.parse("lut-rewrite{policy=always,table-dtype=i8}").run(module)
    assert any(op.name == "lut.table" and str(op.attr("table_type")) == "i8" for op in module.walk())
    want = lutc.compile(module, target="reference").run(MPGEMM_INPUTS)
    got = lutc.compile(module, target="cpu").run(MPGEMM_INPUTS)
    # The int8 entries are computed the same way (round half to even of T / scale); a table
    # entry whose f32 value sits on a rounding tie could still round the other way, so the
    # bound is the f32 rounding bound, not bit equality.
    for g, w, mag in zip(got, want, mpgemm_magnitudes()):
        assert_close_to_magnitude(g, w, mag, rel=2e-5)
    # ...and they are still the mpgemm within the int8 table error (docs/lut.md: < 2%).
    exact = lutc.compile(mpgemm_module(), target="reference").run(MPGEMM_INPUTS)
    for g, e in zip(got, exact):
        assert np.linalg.norm(g - e) / np.linalg.norm(e) < 0.02


def test_mpgemm_with_codes_computed_at_run_time():
    """Codes as an input (no compile-time packing): the kernel reads one code per byte."""
    rng = np.random.default_rng(5)
    fn = make_function("main", [tensor((1, 128), "f32"), tensor((16, 128), "ui2")])
    b = Builder(function_body(fn))
    x, codes = function_body(fn).args
    scales = b.constant(rng.uniform(0.5, 1, (16, 2)).astype(np.float32))
    y = b.create("graph.mpgemm", [x, codes, scales], {"bits": 2, "group_size": 64}).result
    b.create("func.return", [y], result_types=[])
    module = finish(fn)
    inputs = [rng.standard_normal((1, 128)).astype(np.float32), rng.integers(0, 4, (16, 128)).astype(np.uint8)]
    want = lutc.compile(module, target="reference").run(inputs)[0]
    got = lutc.compile(module, target="cpu").run(inputs)[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


# -- a real model ---------------------------------------------------------------------------


def test_llama_matmulnbits_model_matches_reference_and_onnxruntime():
    path = MODELS / "llama_q4_matmulnbits.onnx"
    module = lutc.import_onnx(str(path))
    assert any(op.name == "graph.mpgemm" for op in module.walk())
    with np.load(path.with_suffix(".npz")) as data:
        inputs = {k.split(":", 1)[1]: data[k] for k in data.files if k.startswith("input:")}
        ort = [data[k] for k in data.files if k.startswith("output:")]
    got = lutc.compile(module, target="cpu").run(inputs)
    want = lutc.compile(module, target="reference").run(inputs)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[0], ort[0], rtol=1e-4, atol=1e-4)  # ORT's own kernels: looser


# -- errors -------------------------------------------------------------------------------


def test_unsupported_ops_are_listed_in_one_error():
    module = lutc.parse(textwrap.dedent("""
        "func.func"() ({
        ^bb0(%x: tensor<6xf32>):
          %0:2 = "graph.topk"(%x) {k = 2 : i64} : (tensor<6xf32>) -> (tensor<2xf32>, tensor<2xi64>)
          %1 = "graph.cumsum"(%0#0) {axis = 0 : i64} : (tensor<2xf32>) -> tensor<2xf32>
          "func.return"(%1) : (tensor<2xf32>) -> ()
        }) {sym_name = "main", function_type = (tensor<6xf32>) -> tensor<2xf32>} : () -> ()
    """))
    with pytest.raises(LutcError) as err:
        lutc.compile(module, target="cpu")
    assert "graph.topk" in str(err.value) and "graph.cumsum" in str(err.value) and "2 op(s)" in str(err.value)


def test_target_config_overrides_the_defaults():
    from lutc.backends.cpu.model import default_target, make_target

    assert default_target()["kind"] == "llvm" and default_target()["mcpu"] != "native"
    target = make_target({"mcpu": "x86-64", "num-cores": 1})
    assert str(target.attrs["mcpu"]) == "x86-64" and int(target.attrs["num-cores"]) == 1
    with pytest.raises(LutcError, match="invalid cpu target"):
        make_target({"kind": "no-such-kind"})
