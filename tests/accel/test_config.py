"""Accelerator configs: the shipped examples load, every field is checked, errors name file/field/cause."""

from __future__ import annotations

import re
import tomllib

import pytest

from lutc.backends.accel.config import AccelConfig, load_config
from lutc.diagnostics import LutcError

from .conftest import EXAMPLES


def edge_dict() -> dict:
    return tomllib.loads((EXAMPLES / "edge.toml").read_text())


def error_of(data: dict) -> str:
    with pytest.raises(LutcError) as info:
        AccelConfig.from_dict(data, "cfg.toml")
    return str(info.value)


def test_shipped_examples_load(edge, ltc):
    assert edge.name == "edge"
    assert edge.scratchpad.size_bytes == 256 * 1024
    assert edge.dram.bandwidth_bytes_per_cycle == 8
    assert edge.lut.symmetric and edge.lut.table_entries == 8
    assert edge.lut.table_dtype == "int8" and edge.lut.accum_dtype == "int16"
    assert ltc.lut.table_dtype == "fp16" and ltc.lut.accum_dtype == "fp32"
    assert ltc.scratchpad.size_bytes > edge.scratchpad.size_bytes
    assert ltc.lut_peak_lookups_per_cycle == ltc.lut.rows * ltc.lut.cols


def test_every_field_of_the_examples_is_commented():
    for path in EXAMPLES.glob("*.toml"):
        for line in path.read_text().splitlines():
            if re.match(r"\s*[a-z_]+\s*=", line) and not line.lstrip().startswith("#"):
                assert "#" in line, f"{path.name}: field without a comment: {line.strip()}"


def test_to_dict_round_trips(edge):
    assert AccelConfig.from_dict(edge.to_dict(), edge.source) == edge


@pytest.mark.parametrize("section, key", [("dram", "latency_cycles"), ("lut", "group"), ("energy", "mac"), ("vector", "lanes")])
def test_missing_field_is_named(section, key):
    data = edge_dict()
    del data[section][key]
    assert error_of(data) == f"cfg.toml: error: accelerator config: [{section}] {key}: missing field"


def test_missing_section_and_clock():
    data = edge_dict()
    del data["mma"]
    assert "[mma]: missing section" in error_of(data)
    data = edge_dict()
    del data["clock_mhz"]
    assert "clock_mhz: missing field" in error_of(data)


@pytest.mark.parametrize("section, key, value, cause", [
    ("scratchpad", "size_bytes", 0, "must be >= 1, got 0"),
    ("dram", "bandwidth_bytes_per_cycle", -8, "must be > 0"),
    ("dram", "latency_cycles", -1, "must be >= 0, got -1"),
    ("lut", "group", 3, "must be one of 1, 2, 4, 8"),
    ("lut", "weight_bits", [2, 9], "must be <= 8, got 9"),
    ("lut", "table_dtype", "int4", "must be one of 'int8', 'fp16'"),
    ("scratchpad", "banks", 6, "must be a power of two"),
    ("lut", "rows", "two", "must be an integer"),
    ("energy", "lookup", -0.5, "must be >= 0.0"),
])
def test_out_of_range_fields(section, key, value, cause):
    data = edge_dict()
    data[section][key] = value
    message = error_of(data)
    assert f"[{section}] {key}: " in message and cause in message


@pytest.mark.parametrize("section, fields, cause", [
    ("lut", {"table_entries": 12}, "inconsistent with group = 4: expected 16 (full tables, 2^g) or 8 (symmetric"),
    ("lut", {"table_dtype": "fp16", "accum_dtype": "int16"}, "'int16' is inconsistent with table_dtype = 'fp16'"),
    ("mma", {"dtype": "int8", "accum_dtype": "fp32"}, "'fp32' is inconsistent with dtype = 'int8'"),
    ("vector", {"special_functions": ["silu"]}, "'silu' is computed with 'exp', which is not listed"),
    ("scratchpad", {"size_bytes": 1000, "banks": 16}, "16 banks do not divide size_bytes = 1000"),
])
def test_inconsistent_fields(section, fields, cause):
    data = edge_dict()
    data[section].update(fields)
    assert cause in error_of(data)


def test_unknown_fields_are_rejected():
    data = edge_dict()
    data["lut"]["grup"] = 4
    assert "[lut] grup: unknown field" in error_of(data)
    data = edge_dict()
    data["cache"] = {}
    assert "cache: unknown field or section" in error_of(data)


def test_full_tables_are_not_symmetric(edge):
    full = edge.replace(lut={"table_entries": 16})
    assert not full.lut.symmetric and edge.lut.symmetric


def test_file_errors(tmp_path):
    with pytest.raises(LutcError, match="no such accelerator config file"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("clock_mhz = [\n")
    with pytest.raises(LutcError) as info:
        load_config(bad)
    assert str(info.value).startswith(f"{bad}: error: invalid TOML")


def test_arch_hash_ignores_timing_and_energy(edge):
    faster = edge.replace(dram={"bandwidth_bytes_per_cycle": 64, "latency_cycles": 10}, energy={"mac": 9.0})
    assert faster.arch_hash == edge.arch_hash
    bigger = edge.replace(scratchpad={"size_bytes": 512 * 1024})
    assert bigger.arch_hash != edge.arch_hash
