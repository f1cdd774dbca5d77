"""Report forms: stable text, JSON with the same figures, and a Chrome / Perfetto trace."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lutc.backends.accel.simulator import Simulator


@pytest.fixture
def gemv_report(assembled, edge):
    return Simulator(edge).run(assembled("gemv_lut2")).report


def test_text_report_lines(gemv_report):
    text = gemv_report.to_text()
    lines = text.splitlines()
    assert lines[0] == "lutc accel simulation: program 'gemv_lut2' on 'edge' (500 MHz)"
    assert f"total cycles: {gemv_report.total_cycles}" in lines
    assert "opcodes: LOAD 3, STORE 2, LUT.BUILD 1, LUT.MMA 1, VEC.DEQ 1, FINISH 1" in lines
    assert any(line.startswith("gemv ") for line in lines) and any(line.startswith("writeback ") for line in lines)
    assert "  weights              768           0" in lines  # w (512 B) + colp (256 B)
    assert text == gemv_report.to_text()  # deterministic


def test_layer_table_columns_fit_long_layer_names(gemv_report):
    """Fused layers are named after every op they hold; the columns stay aligned."""
    long_name = "fused_lut_gemm_silu_mul_lut_table"
    gemv_report.layers[0].name = long_name
    lines = gemv_report.to_text().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("layer "))
    table = lines[header:header + 1 + len(gemv_report.layers)]
    assert table[1].startswith(long_name + "  ")
    assert len({len(line) for line in table}) == 1  # every row as wide as the header: right-aligned columns line up


def test_report_figures(gemv_report, edge):
    r = gemv_report
    assert r.instructions == 9 and r.opcode_counts["LUT.MMA"] == 1
    assert r.dram_read == {"weights": 768, "activations": 256, "spills": 0}
    assert r.dram_written == {"weights": 0, "activations": 192, "spills": 0}
    assert r.dram_by_tensor["x"] == {"read": 256, "written": 0} and r.dram_by_tensor["acc"] == {"read": 0, "written": 64}
    assert r.lut_lookups == 2 * 1 * 32 * 16
    assert r.lut_utilization == pytest.approx(r.lut_lookups / (64 * r.total_cycles))
    assert r.lut_utilization_busy == pytest.approx(0.5)  # m = 1 of the array's 2 rows
    assert r.scratchpad_high_water == 0x580 and r.scratchpad_capacity == 256 * 1024
    assert r.accumulator_high_water == 64
    assert [layer.name for layer in r.layers] == ["gemv", "writeback"]
    gemv = r.layers[0]
    assert gemv.start == 0 and gemv.busy["load"] == r.queues["load"].busy
    assert r.time_us == pytest.approx(r.total_cycles / 500)
    assert sum(r.energy_by_unit.values()) == pytest.approx(r.energy_pj)
    assert sum(r.energy_by_level.values()) == pytest.approx(r.energy_pj)


def test_json_has_the_same_figures(gemv_report):
    data = json.loads(gemv_report.to_json())
    assert data["total_cycles"] == gemv_report.total_cycles
    assert data["queues"]["compute"]["stall_causes"] == gemv_report.queues["compute"].stall_causes
    assert data["units"]["lut"]["busy"] == gemv_report.units["lut"].busy
    assert data["layers"][0]["name"] == "gemv"
    assert data["energy_per_token_pj"] == pytest.approx(gemv_report.energy_pj)
    assert "_timeline_source" not in data


def test_trace_has_a_track_per_unit_and_a_slice_per_instruction(gemv_report):
    trace = gemv_report.to_trace()
    events = trace["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {"load DMA", "LUT array", "MMA array", "vector unit", "store DMA"} <= set(names.values())
    slices = [e for e in events if e["ph"] == "X" and e.get("cat") != "stall"]
    assert [e["name"] for e in slices] == ["LOAD", "LOAD", "LOAD", "LUT.BUILD", "LUT.MMA", "VEC.DEQ", "STORE", "STORE"]
    by_unit = {names[e["tid"]] for e in slices}
    assert by_unit == {"load DMA", "LUT array", "vector unit", "store DMA"}
    lut = next(e for e in slices if e["name"] == "LUT.MMA")
    assert lut["dur"] == pytest.approx(lut["args"]["cycles"] / 500) and lut["args"]["layer"] == "gemv"
    stalls = [e for e in events if e.get("cat") == "stall"]
    assert stalls and all(e["dur"] > 0 for e in stalls)
    json.dumps(trace)  # serializable


@pytest.mark.parametrize("name", ["gemv_lut2", "gemm_double_buffer", "vec_epilogue"])
def test_timing_only_mode_reports_the_same_figures(assembled, edge, name):
    program = assembled(name)
    full = Simulator(edge).run(program)
    fast = Simulator(edge, functional=False).run(program)
    assert fast.outputs == {} and full.outputs
    assert fast.report.to_dict() == full.report.to_dict()


def _interleaved_layers(edge):
    """Layers whose ids and first appearances are in different orders, used again later."""
    from lutc.backends.accel.isa import Load, Store, sp
    from lutc.backends.accel.program import ProgramBuilder

    b = ProgramBuilder("layers", config=edge)
    x = b.tensor("x", "input", "u8", (256,))
    w = b.tensor("w", "weight", "u8", (512,), data=np.arange(512, dtype=np.uint8))
    y = b.tensor("y", "output", "u8", (256,))
    for name in ("late", "early", "late"):
        b.set_layer(name)
    b.set_layer("early")  # id 2, appears first
    b.emit(Load(sp=sp(0), dram=x.addr, rows=1, row_bytes=256))
    b.set_layer("late")  # id 1
    b.emit(Load(sp=sp(256), dram=w.addr, rows=2, row_bytes=128, dram_stride=256))
    b.set_layer("early")
    b.emit(Store(sp=sp(0), dram=y.addr, rows=1, row_bytes=256))
    b.finish()
    return b.build()


@pytest.mark.parametrize("name", ["gemv_lut2", "gemv_lut4", "gemm_double_buffer", "vec_epilogue", "layers"])
def test_compiled_report_sums_equal_numpy(assembled, edge, sim_kernels, name):
    """The report kernel's integer figures equal NumPy's, and so do the reports built from them."""
    from lutc.backends.accel import report as report_module
    from lutc.backends.accel.analysis import analyze
    from lutc.backends.accel.program import TensorIndex
    from lutc.backends.accel.timing import actions_for, cycles_for, schedule

    program = _interleaved_layers(edge) if name == "layers" else assembled(name)
    an = analyze(program, edge)
    cycles = cycles_for(an)
    sched = schedule(an.queue, an.deps, cycles)
    actions = actions_for(an)
    index = TensorIndex(program.tensors)
    want = report_module._sums(an, sched, cycles, actions, index)
    got = report_module._sums_compiled(sim_kernels.report_sums(), an, sched, cycles, actions, index)
    for field in ("queue_busy", "lut_mma_cycles", "sp_high_water", "acc_high_water"):
        assert getattr(got, field) == getattr(want, field), field
    for field in ("unit_sums", "layer_sums", "traffic"):
        np.testing.assert_array_equal(getattr(got, field), getattr(want, field), err_msg=field)
    numpy_report = report_module.build_report(an, sched, cycles, actions)
    assert report_module.build_report(an, sched, cycles, actions, sim_kernels).to_json() == numpy_report.to_json()
    if name == "layers":  # first appearance, not id order; per-tensor DRAM traffic
        assert [layer.name for layer in numpy_report.layers] == ["early", "late"]
        assert numpy_report.dram_by_tensor == {"x": {"read": 256, "written": 0}, "w": {"read": 256, "written": 0},
                                               "y": {"read": 0, "written": 256}}
