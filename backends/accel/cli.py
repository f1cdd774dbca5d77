"""`lutc sim PROGRAM --config CFG`: run an accelerator program (binary or `.s` assembly).

This module does not import `lutc.cli` (which imports it), so that either can be imported first.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import click
import numpy as np

from lutc.diagnostics import Location, LutcError
from lutc.backends.accel.assembler import assemble_file
from lutc.backends.accel.config import load_config
from lutc.backends.accel.program import MAGIC, Program, load_program
from lutc.backends.accel.simulator import Simulator

ASSEMBLY_SUFFIXES = (".s", ".asm")
_KERNEL_MODES = {"auto": None, "compiled": True, "numpy": False}  # --kernels -> Simulator(compiled=...)


def read_program(path: str, config) -> Program:
    """A program from a binary file (by its magic) or an assembly file (by its suffix)."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            head = f.read(len(MAGIC))
    except FileNotFoundError:
        raise LutcError(f"no such program file: '{path}'") from None
    except IsADirectoryError:
        raise LutcError(f"'{path}' is a directory, not a program") from None
    except OSError as err:
        raise LutcError(f"cannot read program '{path}': {err.strerror}") from None
    if head != MAGIC and p.suffix in ASSEMBLY_SUFFIXES:
        return assemble_file(p, config)
    return load_program(p, config)


def read_inputs(path: str | None) -> dict[str, np.ndarray]:
    if path is None:
        return {}
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not hasattr(npz, "files"):
                raise LutcError("inputs must be an .npz archive (np.savez), not a single .npy array", Location(file=path))
            return {name: npz[name] for name in npz.files}
    except FileNotFoundError:
        raise LutcError(f"no such inputs file: '{path}'") from None
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise LutcError(f"cannot read inputs: {err}", Location(file=path)) from None


def _write(path: str | None, text: str) -> None:
    if path is None or path == "-":
        sys.stdout.write(text)
        return
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as err:
        raise LutcError(f"cannot write '{path}': {err.strerror}") from None


@click.command("sim")
@click.argument("program_path", metavar="PROGRAM")
@click.option("--config", "config_path", required=True, metavar="CFG", help="Accelerator config (TOML).")
@click.option("--inputs", "inputs_path", metavar="NPZ", help="Input tensors by name (np.savez archive).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of text.")
@click.option("--trace", "trace_path", metavar="FILE", help="Write a Chrome/Perfetto trace (JSON).")
@click.option("-o", "--output", "output_path", metavar="FILE", help="Write the report here instead of stdout.")
@click.option("--save-outputs", "outputs_path", metavar="NPZ", help="Write the program's outputs (np.savez).")
@click.option("--save-binary", "binary_path", metavar="FILE", help="Write the program as a binary file (e.g. after assembling).")
@click.option("--timing-only", is_flag=True, help="Skip the functional model: timing, energy and static checks only (faster).")
@click.option("--kernels", type=click.Choice(sorted(_KERNEL_MODES)), default="auto", show_default=True,
              help="Compiled simulator kernels: auto (programs with enough LUT work), compiled (always), or numpy "
                   "(the reference path). Results are identical.")
def sim(program_path: str, config_path: str, inputs_path: str | None, as_json: bool, trace_path: str | None,
        output_path: str | None, outputs_path: str | None, binary_path: str | None, timing_only: bool,
        kernels: str) -> None:
    """Simulate PROGRAM (a program file, or `.s` assembly) on the accelerator CFG."""
    config = load_config(config_path)
    program = read_program(program_path, config)
    if binary_path:
        program.save(binary_path)
    if timing_only and outputs_path:
        raise LutcError("--save-outputs needs the functional model: drop --timing-only")
    simulator = Simulator(config, functional=not timing_only, compiled=_KERNEL_MODES[kernels])
    result = simulator.run(program, read_inputs(inputs_path))
    if trace_path:
        result.report.write_trace(trace_path)
    if outputs_path:
        try:
            np.savez(outputs_path, **result.outputs)
        except OSError as err:
            raise LutcError(f"cannot write '{outputs_path}': {err.strerror}") from None
    _write(output_path, result.report.to_json() if as_json else result.report.to_text())
