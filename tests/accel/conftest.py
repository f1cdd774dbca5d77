"""Shared fixtures for the accelerator tests: the shipped configs and the hand-written programs."""

from __future__ import annotations

from pathlib import Path

import pytest

from lutc.backends.accel import kernels
from lutc.backends.accel.assembler import assemble_file
from lutc.backends.accel.config import AccelConfig, load_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "accel"
PROGRAMS = Path(__file__).resolve().parent / "programs"


@pytest.fixture(scope="session")
def edge() -> AccelConfig:
    return load_config(EXAMPLES / "edge.toml")


@pytest.fixture(scope="session")
def ltc() -> AccelConfig:
    return load_config(EXAMPLES / "lut_tensor_core.toml")


@pytest.fixture
def program_path():
    def path(name: str) -> Path:
        return PROGRAMS / f"{name}.s"

    return path


@pytest.fixture
def assembled(edge):
    """assembled("gemv_lut2") -> the program from tests/accel/programs, bound to edge.toml."""

    def load(name: str, config: AccelConfig | None = None):
        return assemble_file(PROGRAMS / f"{name}.s", config or edge)

    return load


@pytest.fixture(scope="session")
def sim_kernels() -> kernels.SimKernels:
    """The simulator's compiled kernels: TVM is a dependency, so having none is a failure, not a skip."""
    found = kernels.sim_kernels()
    assert found is not None, kernels.unavailable_reason
    return found


@pytest.fixture(scope="session", params=[False, True], ids=["numpy", "compiled"])
def kernels_or_none(request, sim_kernels):
    """Each path of a check that runs with or without the compiled kernels: None, then the kernels."""
    return sim_kernels if request.param else None
