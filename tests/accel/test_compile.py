"""target="accel": LUT-form graphs compiled to accelerator programs, simulated, and compared
with the reference interpreter running the same LUT-form module.

Tolerance. The accelerator builds its int8 tables with the same T-MAC rule as `lut.table`
(one scale per `act_group` activations = LUT.BUILD's qgroup, round half to even, +-127), so
the integer lookups agree; what differs is float evaluation order: the accelerator sums
integer lookups exactly and scales once (VEC.DEQ), the interpreter scales each lookup in f32;
table entries are summed t = 0 first vs. a small f32 matmul, so an entry at a rounding tie
can differ by one int8 step; the vector unit's silu is built from exp and recip. We check
|y_accel - y_ref| <= 1e-3 * max|y_ref|; measured errors are ~1e-7 relative (a rare tie flipping
one int8 entry moves y by about 1/127 of one activation group's share, still inside it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import lutc
from lutc.backends.accel import load_config
from lutc.backends.accel.compile import AccelModel, compile_accel
from lutc.diagnostics import LutcError
from lutc.ir import Builder, Module, make_function, print_module, run, sync_function_type, tensor
from lutc.ir.core import function_body
from lutc.passes import PassManager

ROOT = Path(__file__).resolve().parents[2]
EDGE = ROOT / "examples" / "accel" / "edge.toml"
RTOL = 1e-3


def lut_pipeline(bits: int, group: int = 128, fuse: bool = False) -> str:
    p = (f"quantize-weights{{bits={bits},group-size={group},report=none}},"
         "lut-rewrite{policy=always,table-dtype=i8}")
    return p + (",fuse-ops" if fuse else "")


def finish(fn) -> Module:
    sync_function_type(fn)
    m = Module()
    m.body.append(fn)
    return m


def gemv_module(k=256, n=128, seed=0) -> Module:
    rng = np.random.default_rng(seed)
    fn = make_function("main", [tensor((1, k), "f32")])
    b = Builder(function_body(fn))
    x = function_body(fn).args[0]
    y = b.create("graph.matmul", [x, b.constant(rng.standard_normal((k, n)).astype(np.float32), name="w")]).result
    y = b.create("graph.add", [y, b.constant(rng.standard_normal(n).astype(np.float32), name="bias")]).result
    y = b.create("graph.silu", [y]).result
    b.create("func.return", [y], result_types=[])
    return finish(fn)


def mlp_module(m=1, d=256, h=128, seed=0) -> Module:
    """y = (silu(x Wg) * (x Wu)) Wd + x: gate and up share the table of x."""
    rng = np.random.default_rng(seed)
    fn = make_function("main", [tensor((m, d), "f32")])
    b = Builder(function_body(fn))
    x = function_body(fn).args[0]
    w = lambda shape, name: b.constant((0.1 * rng.standard_normal(shape)).astype(np.float32), name=name)  # noqa: E731
    g = b.create("graph.matmul", [x, w((d, h), "wg")]).result
    u = b.create("graph.matmul", [x, w((d, h), "wu")]).result
    hid = b.create("graph.mul", [b.create("graph.silu", [g]).result, u]).result
    y = b.create("graph.add", [b.create("graph.matmul", [hid, w((h, d), "wd")]).result, x]).result
    b.create("func.return", [y], result_types=[])
    return finish(fn)


def lowered(module: Module, pipeline: str) -> Module:
    PassManager.parse(pipeline).run(module)
    return module


def check_close(model: AccelModel, module: Module, x: np.ndarray):
    result = model.simulate([x])
    got = result.outputs[model.output_names[0]]
    ref = run(module, [x])[0]
    assert got.shape == ref.shape
    err = np.abs(got - ref).max()
    assert err <= RTOL * np.abs(ref).max(), (err, np.abs(ref).max())
    return result


@pytest.fixture(scope="module")
def edge():
    return load_config(EDGE)


@pytest.mark.parametrize("bits", [2, 4])
@pytest.mark.parametrize("fuse", [False, True])
def test_gemv_matches_reference(edge, bits, fuse):
    module = lowered(gemv_module(), lut_pipeline(bits, fuse=fuse))
    model = compile_accel(module, edge)
    x = np.random.default_rng(1).standard_normal((1, 256)).astype(np.float32)
    result = check_close(model, module, x)
    r = result.report
    assert r.opcode_counts["LUT.BUILD"] == 1
    assert r.opcode_counts["LUT.MMA"] == 4 * 4  # 4 N tiles of 32 x 4 K chunks of act_group 64
    assert r.opcode_counts["VEC.SILU"] == 4 and r.opcode_counts["VEC.ADD"] == 4
    assert r.lut_utilization > 0 and r.lut_lookups == bits * 128 * 256 // 4
    # Loads overlap compute: the gemm layer's queues were busy for longer than its span.
    gemm = [layer for layer in r.layers if "gemm" in layer.name][0]
    assert gemm.end - gemm.start < sum(gemm.busy.values())
    assert r.total_cycles < sum(q.busy for q in r.queues.values())
    if fuse:
        assert any(layer.name == "fused_lut_gemm_add_silu" for layer in r.layers)
    # run() gives the outputs in order; a second run reuses the simulator's static work.
    assert np.array_equal(model.run([x])[0], result.outputs[model.output_names[0]])


@pytest.mark.parametrize("fuse", [False, True])
@pytest.mark.parametrize("rows", [1, 4])
def test_mlp_shares_tables(edge, fuse, rows):
    module = lowered(mlp_module(m=rows), lut_pipeline(2, group=64, fuse=fuse))
    model = compile_accel(module, edge)
    x = np.random.default_rng(2).standard_normal((rows, 256)).astype(np.float32)
    result = check_close(model, module, x)
    counts = result.report.opcode_counts
    # Three lut.gemms, two tables: gate and up read one build of x's tables.
    assert sum(op.name == "lut.gemm" for op in module.walk()) == 3
    assert sum(op.name == "lut.table" for op in module.walk()) == 2
    assert counts["LUT.BUILD"] == 2
    assert counts["VEC.MUL"] > 0 and counts["VEC.SILU"] > 0
    assert result.report.lut_utilization > 0


def test_api_and_export(tmp_path):
    module = lowered(gemv_module(k=64, n=32), lut_pipeline(2, group=64))
    model = lutc.compile(module, target="accel", config=str(EDGE))
    assert isinstance(model, AccelModel)
    assert model.input_names == ["arg0"] and model.output_names == ["result0"]
    assert [tuple(t.shape) for t in model.input_types] == [(1, 64)]
    path = model.export(tmp_path)
    assert path.exists() and (tmp_path / "model.s").exists()
    assert "total cycles" in (tmp_path / "model.report.txt").read_text()
    assert ".layer" in (tmp_path / "model.s").read_text()
    from lutc.backends.accel import Simulator, load_program

    program = load_program(path, model.config)
    x = np.random.default_rng(3).standard_normal((1, 64)).astype(np.float32)
    out = Simulator(model.config).run(program, {"arg0": x}).outputs["result0"]
    assert np.array_equal(out, model.run([x])[0])


def test_unsupported_ops_listed_together(edge):
    text = """
"builtin.module"() ({
  "func.func"() ({
  ^bb0(%a: tensor<2x8xf32>, %b: tensor<8x4xf32>):
    %0 = "graph.matmul"(%a, %b) : (tensor<2x8xf32>, tensor<8x4xf32>) -> tensor<2x4xf32>
    %1 = "graph.softmax"(%0) {axis = -1 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
    "func.return"(%1) : (tensor<2x4xf32>) -> ()
  }) {function_type = (tensor<2x8xf32>, tensor<8x4xf32>) -> tensor<2x4xf32>, sym_name = "main"} : () -> ()
}) : () -> ()
"""
    module = lutc.parse(text, "bad.mlir")
    with pytest.raises(LutcError) as info:
        compile_accel(module, edge)
    msg = str(info.value)
    assert "2 unsupported op(s)" in msg and "graph.matmul" in msg and "graph.softmax" in msg
    assert "bad.mlir:5" in msg and "bad.mlir:6" in msg


def test_cli_compile_and_unsupported(tmp_path):
    from lutc.cli import main

    good = tmp_path / "gemv.mlir"
    good.write_text(print_module(gemv_module(k=64, n=32)))
    runner = CliRunner()
    res = runner.invoke(main, ["compile", str(good), "--target", "accel", "--config", str(EDGE),
                               "-p", lut_pipeline(2, group=64, fuse=True), "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "model.bin").exists() and (tmp_path / "out" / "model.s").exists()
    # Without lut-rewrite the matmul stays: one error line, exit 2.
    res = runner.invoke(main, ["compile", str(good), "--target", "accel", "--config", str(EDGE),
                               "-p", "canonicalize", "-o", str(tmp_path / "out2")])
    assert res.exit_code == 2
    assert "unsupported op" in res.output and "graph.matmul" in res.output


def test_too_large_tensor(edge):
    module = lowered(gemv_module(k=4096, n=32), lut_pipeline(2))
    small = edge.replace(scratchpad={"size_bytes": 16384})
    with pytest.raises(LutcError) as info:
        compile_accel(module, small)
    msg = str(info.value)
    assert "lut.table" in msg and "16384 bytes" in msg and "capacity 16384" in msg
