"""`lutc sim`: assembly or binary programs, report forms, and one-line errors with exit status 2."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from lutc.cli import main

from .conftest import EXAMPLES, PROGRAMS

EDGE = str(EXAMPLES / "edge.toml")


def sim(*args):
    return CliRunner().invoke(main, ["sim", *map(str, args)])


def test_sim_assembly_prints_the_text_report():
    result = sim(PROGRAMS / "gemv_lut2.s", "--config", EDGE)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("lutc accel simulation: program 'gemv_lut2' on 'edge'")
    assert "total cycles: " in result.output


def test_sim_json_trace_outputs_and_binary(tmp_path):
    trace, report, outputs, binary = (tmp_path / n for n in ("t.json", "r.json", "o.npz", "p.bin"))
    result = sim(PROGRAMS / "gemm_double_buffer.s", "--config", EDGE, "--json", "--trace", trace, "-o", report,
                 "--save-outputs", outputs, "--save-binary", binary)
    assert result.exit_code == 0, result.output
    assert result.output == ""
    data = json.loads(report.read_text())
    assert data["program"] == "gemm_double_buffer"
    assert json.loads(trace.read_text())["traceEvents"]
    c = np.load(outputs)["c"]
    assert c.shape == (16, 32) and c.dtype == np.int32
    again = sim(binary, "--config", EDGE, "--json")
    assert again.exit_code == 0 and json.loads(again.output)["total_cycles"] == data["total_cycles"]


def test_sim_inputs_override(tmp_path):
    inputs = tmp_path / "in.npz"
    np.savez(inputs, x=np.zeros((4, 16), np.float32))
    out = tmp_path / "out.npz"
    result = sim(PROGRAMS / "vec_epilogue.s", "--config", EDGE, "--inputs", inputs, "--save-outputs", out)
    assert result.exit_code == 0, result.output
    y = np.load(out)["y"]  # with x = 0, every row is softmax(silu(bias))
    np.testing.assert_allclose(y, np.broadcast_to(y[0], y.shape))
    assert not np.allclose(y[0], y[0, 0])


def test_errors_are_one_line_with_exit_status_2(tmp_path):
    cases = [
        (sim(PROGRAMS / "deadlock.s", "--config", EDGE), "deadlock.s:6: error: instruction #1 (compute queue, VEC.RELU): deadlock"),
        (sim(PROGRAMS / "oob.s", "--config", EDGE), "oob.s:5: error: instruction #0 (load queue, LOAD): scratchpad overflow"),
        (sim(tmp_path / "none.s", "--config", EDGE), "error: no such program file"),
        (sim(PROGRAMS / "gemv_lut2.s", "--config", tmp_path / "none.toml"), "error: no such accelerator config file"),
        (sim(PROGRAMS / "gemv_lut2.s", "--config", EDGE, "--inputs", tmp_path / "none.npz"), "error: no such inputs file"),
    ]
    bogus = tmp_path / "prog.bin"
    bogus.write_bytes(b"hello world, not a program")
    cases.append((sim(bogus, "--config", EDGE), "error: invalid program file: bad magic"))
    for result, message in cases:
        assert result.exit_code == 2, result.output
        assert message in result.output
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_sim_kernels_option_gives_the_same_report_and_outputs(tmp_path):
    runs = {}
    for mode in ("numpy", "compiled"):
        outputs = tmp_path / f"{mode}.npz"
        result = sim(PROGRAMS / "gemv_lut4.s", "--config", EDGE, "--kernels", mode, "--save-outputs", outputs)
        assert result.exit_code == 0, result.output
        runs[mode] = (result.output, dict(np.load(outputs)))
    assert runs["numpy"][0] == runs["compiled"][0]
    assert runs["numpy"][1].keys() == runs["compiled"][1].keys()
    for name, value in runs["numpy"][1].items():
        assert np.array_equal(value, runs["compiled"][1][name]), name
    bad = sim(PROGRAMS / "gemv_lut4.s", "--config", EDGE, "--kernels", "fast")
    assert bad.exit_code == 2 and "'fast' is not one of" in bad.output
