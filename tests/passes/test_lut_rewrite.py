"""lut-rewrite: lut.table + lut.gemm compute the mpgemm normal form (f32 tables: up to float
rounding; f16/int8 tables: within the measured table-quantization error)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lutc.ir import Builder, Module, make_function, parse, print_module, run, sync_function_type, tensor
from lutc.ir.core import function_body
from lutc.ir.dialects.graph import dequantize_weights
from lutc.ir.types import ElementType
from lutc.passes import PassManager
from lutc.passes.lut_accuracy import ErrorCase, table_error


def mpgemm_module(x_shape, codes, scales, zeros, *, bits, group, ternary=False, constant_codes=True) -> Module:
    inputs = [tensor(x_shape, "f32")] + ([] if constant_codes else [tensor(codes.shape, f"ui{bits}")])
    fn = make_function("main", inputs)
    b = Builder(function_body(fn))
    args = function_body(fn).args
    q = b.constant(codes, ElementType(f"ui{bits}"), "codes") if constant_codes else args[1]
    operands = [args[0], q, b.constant(scales, name="scales")]
    if zeros is not None:
        operands.append(b.constant(zeros, ElementType(f"ui{bits}"), "zeros"))
    y = b.create("graph.mpgemm", operands, {"bits": bits, "group_size": group, "ternary": ternary}).result
    b.create("func.return", [y], result_types=[])
    sync_function_type(fn)
    module = Module()
    module.body.append(fn)
    return module


def rounding_bound(x, codes, scales, zeros, *, bits, group, ternary) -> np.ndarray:
    """|x| @ |W|^T: float32 sums of these magnitudes in any order differ by a few ulps of it."""
    w = dequantize_weights(codes, scales, zeros, bits=bits, group_size=group, ternary=ternary)
    return np.abs(x.astype(np.float64)) @ np.abs(w.astype(np.float64)).T


def check_rewrite(pipeline, x, codes, scales, zeros=None, *, bits, group, ternary=False, constant_codes=True):
    module = mpgemm_module(x.shape, codes, scales, zeros, bits=bits, group=group, ternary=ternary,
                           constant_codes=constant_codes)
    inputs = [x] if constant_codes else [x, codes]
    expected = run(module, inputs)[0]
    PassManager.parse(pipeline).run(module)
    assert not any(op.name == "graph.mpgemm" for op in module.walk())
    got = run(module, inputs)[0]
    return module, got, expected


@st.composite
def mpgemm_cases(draw):
    bits = draw(st.integers(1, 4))
    g = draw(st.sampled_from([1, 2, 3, 4]))
    group = g * draw(st.integers(1, 6))
    n, k = draw(st.integers(1, 9)), draw(st.integers(1, 50))
    batch = draw(st.sampled_from([(1,), (3,), (2, 2)]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    blocks = -(-k // group)
    codes = rng.integers(0, 2**bits, (n, k)).astype(np.uint8)
    scales = rng.uniform(-2, 2, (n, blocks)).astype(np.float32)
    zeros = rng.integers(0, 2**bits, (n, blocks)).astype(np.uint8) if draw(st.booleans()) else None
    x = rng.standard_normal(batch + (k,)).astype(np.float32)
    return dict(bits=bits, g=g, group=group, codes=codes, scales=scales, zeros=zeros, x=x,
                symmetric=draw(st.booleans()), constant_codes=draw(st.booleans()))


@given(mpgemm_cases())
def test_f32_tables_equal_the_normal_form(case):
    """Random shapes (K not a multiple of g included), bits 1-4, g 1-4, group sizes, symmetric and
    plain tables, zero points or not, codes folded at compile time or repacked at run time."""
    pipeline = f"lut-rewrite{{policy=always,g={case['g']},symmetric={str(case['symmetric']).lower()}}}"
    _, got, expected = check_rewrite(pipeline, case["x"], case["codes"], case["scales"], case["zeros"],
                                     bits=case["bits"], group=case["group"], constant_codes=case["constant_codes"])
    bound = rounding_bound(case["x"], case["codes"], case["scales"], case["zeros"], bits=case["bits"],
                           group=case["group"], ternary=False)
    assert np.all(np.abs(got.astype(np.float64) - expected) <= 1e-5 * bound + 1e-6)


@given(n=st.integers(1, 9), k=st.integers(1, 40), group=st.sampled_from([2, 4, 6, 8, 32]), base3=st.booleans(),
       symmetric=st.booleans(), seed=st.integers(0, 2**16))
def test_ternary_tables_equal_the_normal_form(n, k, group, base3, symmetric, seed):
    """Ternary codes {0, 1, 2} (z = 1): bit-serial over two planes, or base-3 pairs (TL1)."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 3, (n, k)).astype(np.uint8)
    scales = rng.uniform(0.1, 1, (n, -(-k // group))).astype(np.float32)
    x = rng.standard_normal((2, k)).astype(np.float32)
    g = 4 if group % 4 == 0 else 2
    pipeline = f"lut-rewrite{{policy=always,g={g},base3={str(base3).lower()},symmetric={str(symmetric).lower()}}}"
    module, got, expected = check_rewrite(pipeline, x, codes, scales, bits=2, group=group, ternary=True)
    gemm = next(op for op in module.walk() if op.name == "lut.gemm")
    assert gemm.attr("base3") == base3 and gemm.attr("g") == (2 if base3 else g)
    bound = rounding_bound(x, codes, scales, None, bits=2, group=group, ternary=True)
    assert np.all(np.abs(got.astype(np.float64) - expected) <= 1e-5 * bound + 1e-6)


# Relative RMS error of low-precision tables. `python -m lutc.passes.lut_accuracy` measures
# 0.6% for int8 tables with one scale per 64 activations (T-MAC reports about 1%), 0.9% with
# one scale per row and 2e-4 for f16 tables on 8 x 4096 x 512; the smaller shapes here measure
# about the same. The bounds leave a 2x margin: int8 rounding of each table entry is the
# error, and nothing else in the rewrite may add to it.
TABLE_ERROR_BOUNDS = [
    ("table-dtype=i8,act-group=64", 2, False, 0.013),
    ("table-dtype=i8,act-group=0", 2, False, 0.018),
    ("table-dtype=i8,base3=true", 2, True, 0.016),
    ("table-dtype=i8,symmetric=false", 4, False, 0.027),
    ("table-dtype=f16", 3, False, 5e-4),
]


@pytest.mark.parametrize("options,bits,ternary,bound", TABLE_ERROR_BOUNDS)
def test_low_precision_tables_error_is_bounded(options, bits, ternary, bound):
    error = table_error(ErrorCase(4, 64, 1024, bits, ternary=ternary), f"lut-rewrite{{policy=always,{options}}}")
    assert error < bound


def test_int8_tables_entries_and_scales():
    """T-MAC's table quantization: scale = max_j sum_t |x_t| / 127 per activation group."""
    x = np.random.default_rng(0).standard_normal((2, 32)).astype(np.float32)
    codes = np.zeros((3, 32), np.uint8)
    module, _, _ = check_rewrite("lut-rewrite{policy=always,table-dtype=i8,act-group=16}", x, codes,
                                 np.ones((3, 1), np.float32), bits=2, group=32)
    table = next(op for op in module.walk() if op.name == "lut.table")
    interpreter_values = run_table(module, x)
    tables, scales, sums = interpreter_values
    assert tables.dtype == np.int8 and np.abs(tables).max() <= 127
    expected_scales = np.abs(x).reshape(2, 2, 4, 4).sum(-1).max(-1) / 127
    np.testing.assert_allclose(scales, expected_scales, rtol=1e-6)
    np.testing.assert_allclose(sums, x.sum(-1, keepdims=True), rtol=1e-5)
    assert table.attr("sum_group") == 32


def run_table(module: Module, x: np.ndarray):
    from lutc.ir.interpreter import Interpreter

    table = next(op for op in module.walk() if op.name == "lut.table")
    return Interpreter(module).evaluate(table, [x])


def test_shared_table_with_different_group_sizes():
    """Q (G = 8) and K (G = 32) share one table whose sums are per gcd = 8 k."""
    rng = np.random.default_rng(3)
    fn = make_function("main", [tensor((2, 64), "f32")])
    b = Builder(function_body(fn))
    x = function_body(fn).args[0]
    outs = []
    for n, group in ((16, 8), (8, 32), (8, 64)):
        codes = b.constant(rng.integers(0, 4, (n, 64)).astype(np.uint8), ElementType("ui2"))
        scales = b.constant(rng.uniform(0.5, 1, (n, 64 // group)).astype(np.float32))
        outs.append(b.create("graph.mpgemm", [x, codes, scales], {"bits": 2, "group_size": group}).result)
    b.create("func.return", outs, result_types=[])
    sync_function_type(fn)
    module = Module()
    module.body.append(fn)
    xv = rng.standard_normal((2, 64)).astype(np.float32)
    expected = run(module, [xv])
    PassManager.parse("lut-rewrite{policy=always}").run(module)
    tables = [op for op in module.walk() if op.name == "lut.table"]
    assert len(tables) == 1 and tables[0].attr("sum_group") == 8
    for want, got in zip(expected, run(module, [xv])):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_rewriting_twice_gives_identical_text():
    rng = np.random.default_rng(0)
    module = mpgemm_module((1, 64), rng.integers(0, 4, (32, 64)).astype(np.uint8),
                           rng.uniform(0.5, 1, (32, 2)).astype(np.float32), None, bits=2, group=32)
    text = print_module(module)
    outputs = []
    for _ in range(2):
        m = parse(text)
        PassManager.parse("lut-rewrite{table-dtype=i8},fuse-ops").run(m)
        outputs.append(print_module(m))
    assert outputs[0] == outputs[1]


def llama_block(d: int = 64, hidden: int = 128) -> Module:
    """rms_norm -> Q/K/V projections; rms_norm -> gate/up -> silu * up -> down, residual add."""
    rng = np.random.default_rng(7)
    fn = make_function("main", [tensor((2, d), "f32")])
    b = Builder(function_body(fn))
    x = function_body(fn).args[0]

    def weight(k, n, name):
        return b.constant((rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32), name=name)

    norm_w = b.constant(rng.uniform(0.5, 1.5, d).astype(np.float32), name="norm")
    n1 = b.op("graph.rms_norm", x, norm_w, axis=-1, epsilon=1e-5)
    q, k, v = (b.op("graph.matmul", n1, weight(d, d, name)) for name in ("wq", "wk", "wv"))
    attn = b.op("graph.add", b.op("graph.mul", q, k), v)
    h = b.op("graph.add", x, attn)
    n2 = b.op("graph.rms_norm", h, norm_w, axis=-1, epsilon=1e-5)
    gate, up = b.op("graph.matmul", n2, weight(d, hidden, "wg")), b.op("graph.matmul", n2, weight(d, hidden, "wu"))
    down = b.op("graph.matmul", b.op("graph.mul", b.op("graph.silu", gate), up), weight(hidden, d, "wd"))
    b.create("func.return", [b.op("graph.add", h, down)], result_types=[])
    sync_function_type(fn)
    module = Module()
    module.body.append(fn)
    return module


@pytest.mark.parametrize("bits,scheme", [(2, "sym"), (4, "asym"), (2, "ternary")])
def test_pipeline_stage_by_stage(bits, scheme):
    """quantize-weights changes the numbers (by the quantization error); lut-rewrite with f32
    tables and fuse-ops (with the tables fused into the norms) then keep them, up to float
    rounding. Tables are shared: one per activation (two norms, one gate*up)."""
    module = llama_block()
    x = np.random.default_rng(8).standard_normal((2, 64)).astype(np.float32)
    exact = run(module, [x])[0]
    PassManager.parse(f"quantize-weights{{bits={bits},scheme={scheme},group-size=32,report=none}}").run(module)
    quantized = run(module, [x])[0]
    # A sanity bound: 2-bit and ternary weights through a whole block (with a q * k product).
    assert np.linalg.norm(quantized - exact) / np.linalg.norm(exact) < 0.75
    PassManager.parse("lut-rewrite{policy=always,base3=true}").run(module)
    assert sum(op.name == "lut.table" for op in module.walk()) == 3
    looked_up = run(module, [x])[0]
    np.testing.assert_allclose(looked_up, quantized, rtol=1e-4, atol=1e-4 * np.abs(quantized).max())
    PassManager.parse("fuse-ops").run(module)
    np.testing.assert_array_equal(run(module, [x])[0], looked_up)  # fusion reorders nothing numerically
    names = [op.attr("name") for op in module.walk() if op.name == "graph.fused"]
    assert "fused_rms_norm_lut_table" in names and "fused_lut_gemm_silu_mul_lut_table" in names


MODELS = Path(__file__).resolve().parents[1] / "models" / "onnx"


@pytest.mark.parametrize("pipeline,tolerance", [
    ("lut-rewrite{policy=always},fuse-ops", 1e-5),         # f32 tables: float rounding
    ("lut-rewrite{policy=always,table-dtype=i8},fuse-ops", 0.03),  # int8 tables: ~1% (docs/lut.md)
])
def test_quantized_llama_through_lut_and_fusion(pipeline, tolerance):
    """A 4-bit MatMulNBits LLaMA from onnxruntime's quantizer: every mpgemm becomes a lut.gemm,
    each rms_norm's group builds the table shared by the projections after it."""
    path = MODELS / "llama_q4_matmulnbits.onnx"
    if not path.exists():
        pytest.skip("the ONNX test models are not built")
    from lutc.frontends.onnx import import_onnx

    module = import_onnx(path)
    inputs = {"input_ids": np.load(MODELS / "llama_q4_matmulnbits.npz")["input:input_ids"]}
    expected = run(module, inputs)[0]
    PassManager.parse(pipeline).run(module)
    ops = [op.name for op in module.walk()]
    assert "graph.mpgemm" not in ops and ops.count("lut.gemm") > ops.count("lut.table") > 0
    got = run(module, inputs)[0]
    assert np.abs(got - expected).max() <= tolerance * np.abs(expected).max()
    fused = [op.attr("name") for op in module.walk() if op.name == "graph.fused"]
    assert any(name.endswith("_lut_table") for name in fused)
