"""The `lutc` command line: a thin layer over the Python API.

Errors in the user's input (`LutcError`) print one line and exit with status 2;
`--debug` shows the traceback instead.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from lutc.diagnostics import LutcError

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 3


class LutcGroup(click.Group):
    """A click group that turns lutc errors into one-line diagnostics."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except LutcError as err:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(err.render(), err=True)
            ctx.exit(EXIT_USER_ERROR)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("lutc: interrupted", err=True)
            ctx.exit(130)
        except Exception as err:  # a bug in lutc, not in the input
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"lutc: internal error: {type(err).__name__}: {err} (rerun with --debug for a traceback)", err=True)
            ctx.exit(EXIT_INTERNAL_ERROR)


# click itself exits with status 2 on usage errors (unknown option, missing argument).
@click.group(cls=LutcGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show Python tracebacks instead of one-line errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """lutc: compile neural-network graphs to lookup-table (LUT) hardware."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def read_input(path: str) -> tuple[str, str]:
    """Read a text input, `-` meaning stdin; returns (display name, text)."""
    if path == "-":
        return "<stdin>", sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as f:
            return path, f.read()
    except FileNotFoundError:
        raise LutcError(f"no such file: '{path}'") from None
    except IsADirectoryError:
        raise LutcError(f"'{path}' is a directory, not a file") from None
    except UnicodeDecodeError as err:
        raise LutcError(f"'{path}' is not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise LutcError(f"cannot read '{path}': {err.strerror}") from None


def write_output(path: str | None, text: str) -> None:
    """Write the whole output at once, so that a failure leaves no partial file."""
    if path is None or path == "-":
        sys.stdout.write(text)
        return
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as err:
        raise LutcError(f"cannot write '{path}': {err.strerror}") from None



def load_inputs(compiled, npz: str | None, seed: int) -> dict:
    """Inputs from an .npz file (by input name), or seeded random values of the input types."""
    import numpy as np

    from lutc.api import example_inputs

    if npz is None:
        return example_inputs(compiled, seed)
    try:
        with np.load(npz) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError) as err:
        raise LutcError(f"cannot read inputs from '{npz}': {err}") from None


def compile_model_file(model: str, target: str, pipeline: str, config: str | None) -> Any:
    """Load and compile a model file; errors that name no place name the file."""
    from lutc.api import compile as compile_module, load
    from lutc.diagnostics import Location

    if target == "accel" and config is None:
        raise LutcError("target 'accel' needs --config ACCEL.toml", Location(file=model))
    try:
        return compile_module(load(model), target=target, pipeline=pipeline or None,
                              config=config if target == "accel" else None)
    except LutcError as err:
        if not str(err.loc):
            err.loc = Location(file=model)
        raise


def print_timing(pm) -> None:
    from rich.console import Console
    from rich.table import Table

    rows = pm.timing_rows()
    total = sum(seconds for _, seconds in rows) or 1e-12
    table = Table(title="Pass execution timing report")
    table.add_column("Pass")
    table.add_column("Wall time (ms)", justify="right")
    table.add_column("%", justify="right")
    for name, seconds in rows:
        table.add_row(name, f"{seconds * 1e3:.3f}", f"{100 * seconds / total:.1f}")
    table.add_row("Total", f"{total * 1e3:.3f}", "100.0")
    Console(stderr=True).print(table)


@main.command()
@click.argument("file", default="-")
@click.option("-p", "--pipeline", "pipeline", default="", help="Comma-separated passes, e.g. 'canonicalize,cse'.")
@click.option("-o", "--output", default=None, help="Write the IR here instead of stdout.")
@click.option("--split-input-file", is_flag=True, help="Treat '// -----' lines as separators of independent inputs.")
@click.option("--verify-diagnostics", is_flag=True, help="Check errors against '// expected-error' comments.")
@click.option("--print-ir-after-all", is_flag=True, help="Print the IR (to stderr) after every pass.")
@click.option("--timing", is_flag=True, help="Print how long each pass took (to stderr).")
@click.option("--elide-constants", is_flag=True, help="Print large constants as dense_resource<__elided__>.")
@click.option("--print-debuginfo", is_flag=True, help="Print each op's source location.")
def opt(file, pipeline, output, split_input_file, verify_diagnostics, print_ir_after_all, timing, elide_constants, print_debuginfo):
    """Parse IR, run a pass pipeline over it, print the result (lutc's mlir-opt)."""
    from lutc.driver import check_diagnostics, run_opt_chunk, split_input, with_source_line
    from lutc.passes.pass_manager import parse_pipeline

    filename, text = read_input(file)
    parse_pipeline(pipeline)  # a bad pipeline is reported before any input is read
    chunks = split_input(text) if split_input_file else [(text, 0)]
    pm_options = {"pipeline": pipeline, "print_ir_after_all": print_ir_after_all, "timing": timing}
    print_options = {"elide_constants": elide_constants, "print_locations": print_debuginfo}
    if verify_diagnostics:
        problems = [p for chunk, offset in chunks for p in check_diagnostics(chunk, filename, offset, pm_options)]
        if problems:
            click.echo("\n".join(problems), err=True)
            raise SystemExit(EXIT_USER_ERROR)
        return
    results = []
    try:
        for chunk, offset in chunks:
            printed, pm = run_opt_chunk(chunk, filename, offset, pm_options, print_options)
            results.append(printed)
            if timing:
                print_timing(pm)
    except LutcError as err:
        raise with_source_line(err, filename, text)
    write_output(output, "// -----\n".join(results))


@main.command()
@click.argument("model")
@click.option("--target", type=click.Choice(["reference", "cpu", "accel"]), default="reference", show_default=True,
              help="accel: simulate the compiled program and print the simulator's report.")
@click.option("--config", default=None, help="Target configuration (accel: a TOML file).")
@click.option("--inputs", default=None, help="An .npz file with one array per input name (default: seeded random).")
@click.option("--seed", default=0, show_default=True, help="Seed of the random inputs.")
@click.option("-p", "--pipeline", default="", help="Passes to run before evaluating.")
@click.option("-o", "--output", default=None, help="Save the outputs to this .npz file.")
@click.option("--compare-onnxruntime", "compare", is_flag=False, flag_value="", default=None, metavar="[ONNX]",
              help="Also run the .onnx model (MODEL, or the file given) in onnxruntime and report the difference.")
def run(model, target, config, inputs, seed, pipeline, output, compare):
    """Run a model (.onnx, IR, or a directory written by `lutc compile`) and summarize its outputs."""
    from lutc.api import onnxruntime_outputs

    import numpy as np
    from rich.console import Console
    from rich.table import Table

    if Path(model, "manifest.json").is_file():  # a model compiled for the CPU, loaded as deployed
        from lutc.backends.cpu import load_cpu_model

        compiled, target = load_cpu_model(model), "cpu (deployed library)"
    else:
        compiled = compile_model_file(model, target, pipeline, config)
    feeds = load_inputs(compiled, inputs, seed)
    simulation = compiled.simulate(feeds) if target == "accel" else None
    outputs = [simulation.outputs[n] for n in compiled.output_names] if simulation else compiled.run(feeds)
    peer = onnxruntime_outputs(compare or model, feeds) if compare is not None else None
    table = Table(title=f"{model}: outputs ({target})")
    columns = ["output", "shape", "dtype", "mean", "min", "max", "first values"]
    columns += ["max |lutc - ort| / max |ort|"] if peer else []
    for column in columns:
        table.add_column(column)
    for index, (name, value) in enumerate(zip(compiled.output_names, outputs)):
        flat = value.reshape(-1).astype(np.float64)
        row = [name, "x".join(map(str, value.shape)) or "scalar", str(value.dtype),
               *(f"{f(flat):.6g}" if flat.size else "-" for f in (np.mean, np.min, np.max)),
               " ".join(f"{v:.4g}" for v in flat[:4])]
        if peer:
            reference = peer[index].astype(np.float64)
            scale = np.abs(reference).max() or 1.0
            row.append(f"{np.abs(value.astype(np.float64) - reference).max() / scale:.3g}")
        table.add_row(*row)
    Console(width=140).print(table)
    if simulation is not None:
        click.echo(simulation.report.to_text())
    if output:
        np.savez(output, **dict(zip(compiled.output_names, outputs)))

@main.command(name="compile")
@click.argument("model")
@click.option("--target", type=click.Choice(["cpu", "accel"]), default="cpu", show_default=True)
@click.option("-p", "--pipeline", default="canonicalize,cse,lut-rewrite,fuse-ops", show_default=True,
              help="Passes to run before code generation.")
@click.option("--config", default=None, help="Target configuration (accel: a TOML file).")
@click.option("-o", "--output", default="out", show_default=True, help="Directory for the compiled artifacts.")
def compile_command(model, target, pipeline, config, output):
    """Compile a model (.onnx or IR) for a target and write a deployable artifact."""
    compiled = compile_model_file(model, target, pipeline, config)
    path = compiled.export(output)
    click.echo(f"wrote {path} ({target}): inputs {', '.join(compiled.input_names)}; outputs {', '.join(compiled.output_names)}")

from lutc.backends.accel.cli import sim  # noqa: E402
main.add_command(sim)
from lutc.frontends.cli import import_command  # noqa: E402
main.add_command(import_command, name="import")
