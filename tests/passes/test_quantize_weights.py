"""quantize-weights: round-to-nearest per group, checked element by element and end to end."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lutc.ir import Builder, Module, make_function, parse, print_module, run, sync_function_type, tensor
from lutc.ir.core import function_body
from lutc.passes import PassManager
from lutc.passes.quantize_weights import QuantizeWeights, quantize, relative_l2


def matmul_module(w: np.ndarray, rows: int = 3, dtype: str = "f32") -> Module:
    k, n = w.shape
    fn = make_function("main", [tensor((rows, k), dtype)])
    b = Builder(function_body(fn))
    y = b.op("graph.matmul", function_body(fn).args[0], b.constant(w, name="w"))
    b.create("func.return", [y], result_types=[])
    sync_function_type(fn)
    module = Module()
    module.body.append(fn)
    return module


@given(
    k=st.integers(1, 70), n=st.integers(1, 6), bits=st.sampled_from([2, 3, 4, 8]),
    group=st.sampled_from([4, 8, 32, 128]), scheme=st.sampled_from(["sym", "asym"]), seed=st.integers(0, 2**16),
)
def test_round_to_nearest_error_is_at_most_one_step(k, n, bits, group, scheme, seed):
    w = np.random.default_rng(seed).standard_normal((k, n)).astype(np.float32)
    q = quantize(w, bits=bits, group_size=group, scheme=scheme)
    assert q.codes.shape == (n, k) and q.codes.max() <= 2**bits - 1
    assert q.scales.shape == (n, -(-k // group))
    step = np.repeat(np.abs(q.scales), group, axis=1)[:, :k]
    # Rounding costs half a step; the one code a group cannot reach (sym: +2^(b-1); asym: the
    # rounded zero point shifting the grid) costs at most one step.
    assert np.all(np.abs(q.dequantize() - w.T) <= step * (1 + 1e-5) + 1e-7)


@given(k=st.integers(1, 40), n=st.integers(1, 5), bits=st.sampled_from([2, 3, 4]), seed=st.integers(0, 2**16))
def test_representable_weights_come_back_exactly(k, n, bits, seed):
    """W = s (q - 2^(b-1)) with a code 0 in every group: sym quantization recovers q and s."""
    rng = np.random.default_rng(seed)
    group = 4
    codes = rng.integers(0, 2**bits, (n, k))
    codes[:, ::group] = 0  # the group's extreme weight, -2^(b-1) s
    scales = rng.uniform(0.5, 2, (n, -(-k // group))).astype(np.float32)
    w_t = np.repeat(scales, group, axis=1)[:, :k] * (codes - 2 ** (bits - 1))
    q = quantize(w_t.T, bits=bits, group_size=group, scheme="sym")
    np.testing.assert_array_equal(q.codes, codes)
    np.testing.assert_allclose(q.scales, scales, rtol=1e-6)


@given(k=st.integers(1, 70), n=st.integers(1, 6), group=st.sampled_from([8, 64]), seed=st.integers(0, 2**16))
def test_ternary_is_absmean_round_clip(k, n, group, seed):
    w = np.random.default_rng(seed).standard_normal((k, n)).astype(np.float32)
    q = quantize(w, bits=2, group_size=group, scheme="ternary")
    assert q.ternary and q.zeros is None and set(np.unique(q.codes)) <= {0, 1, 2}
    w_t = np.pad(np.abs(w.T), ((0, 0), (0, -k % group)), constant_values=np.nan).reshape(n, -1, group)
    np.testing.assert_allclose(q.scales, np.nanmean(w_t, axis=-1), rtol=1e-5)
    s = np.repeat(q.scales, group, axis=1)[:, :k]
    np.testing.assert_array_equal(q.codes, np.clip(np.rint(w.T / s), -1, 1) + 1)


# Relative L2 output error on Gaussian weights (K = 256, groups of 32): round to nearest loses
# about half a step per weight, so the error roughly halves per extra bit. The bounds sit
# about 1.5x above what these seeds measure (8: 0.006, 4: 0.085, 3: 0.16, 2: 0.38,
# ternary: 0.45, asym 4: 0.083).
ERROR_BOUNDS = [(8, "sym", 0.01), (4, "sym", 0.12), (3, "sym", 0.25), (2, "sym", 0.55), (2, "ternary", 0.7), (4, "asym", 0.14)]


@pytest.mark.parametrize("bits,scheme,bound", ERROR_BOUNDS)
def test_pass_output_is_within_the_quantization_error(bits, scheme, bound):
    rng = np.random.default_rng(1)
    w = rng.standard_normal((256, 16)).astype(np.float32)
    x = rng.standard_normal((3, 256)).astype(np.float32)
    module = matmul_module(w)
    expected = run(module, [x])[0]
    qpass = QuantizeWeights(bits=bits, group_size=32, scheme=scheme, report="none")
    PassManager([qpass]).run(module)
    ops = [op.name for op in function_body(module.function()).ops]
    assert ops == ["graph.constant"] * (3 if scheme == "asym" else 2) + ["graph.mpgemm", "func.return"]
    got = run(module, [x])[0]
    # The mpgemm computes x @ dequantized(W) (up to float rounding), and that is as far from
    # x @ W as the quantization error says.
    q = quantize(w, bits=bits, group_size=32, scheme=scheme)
    np.testing.assert_allclose(got, x @ q.dequantize().T, rtol=1e-5, atol=1e-4)
    assert relative_l2(got, expected) < bound
    (report,) = qpass.errors
    assert report.shape == (256, 16)
    assert report.weight_rel_l2 == pytest.approx(relative_l2(q.dequantize().T, w), rel=1e-6)
    assert report.output_rel_l2 < bound


def test_report_goes_to_stderr_or_a_file(tmp_path, capsys):
    w = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32)
    PassManager.parse("quantize-weights{group-size=8}").run(matmul_module(w))
    assert capsys.readouterr().err.startswith("quantize-weights: w (16x4): weight rel-L2 ")
    path = tmp_path / "report.txt"
    PassManager.parse(f'quantize-weights{{group-size=8,report="{path}"}}').run(matmul_module(w))
    assert capsys.readouterr().err == "" and "output rel-L2" in path.read_text()


def test_f16_weights_keep_f16_scales():
    w = np.random.default_rng(0).standard_normal((32, 4)).astype(np.float16)
    module = matmul_module(w, dtype="f16")
    PassManager.parse("quantize-weights{report=none}").run(module)
    gemm = next(op for op in module.walk() if op.name == "graph.mpgemm")
    assert str(gemm.operands[2].type) == "tensor<4x1xf16>" and str(gemm.result.type) == "tensor<3x4xf16>"
    x = np.random.default_rng(1).standard_normal((3, 32)).astype(np.float16)
    assert run(module, [x])[0].dtype == np.float16


def test_quantizing_twice_gives_identical_text():
    w = np.random.default_rng(0).standard_normal((64, 8)).astype(np.float32)
    text = print_module(matmul_module(w))
    outputs = []
    for _ in range(2):
        module = parse(text)
        PassManager.parse("quantize-weights{bits=3,scheme=asym,report=none}").run(module)
        outputs.append(print_module(module))
    assert outputs[0] == outputs[1]
