"""`lutc import MODEL.onnx`: import an ONNX model and print its IR (the graph dialect).

Registered on the `lutc` group by compiler/cli.py. Bad input (an unreadable or non-ONNX file,
an unsupported op, an undefined input, a cycle, an unsafe external-data path...) is one line
on stderr naming the file, the node and the cause, with exit status 2 and no output.
"""

from __future__ import annotations

import click

from lutc.diagnostics import LutcError


def parse_input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """`name=1x128` -> ("name", (1, 128)); `name=` is a scalar."""
    name, sep, dims = text.partition("=")
    if not sep or not name:
        raise LutcError(f"--input-shape expects NAME=DIMS (e.g. input_ids=1x128), got '{text}'")
    try:
        shape = tuple(int(d) for d in dims.split("x")) if dims else ()
    except ValueError:
        raise LutcError(f"--input-shape: bad dimensions '{dims}' for '{name}' (expected e.g. 1x128)") from None
    if any(d < 0 for d in shape):
        raise LutcError(f"--input-shape: dimensions of '{name}' must be non-negative, got '{dims}'")
    return name, shape


@click.command("import")
@click.argument("model")
@click.option("-o", "--output", default=None, help="Write the IR here instead of stdout.")
@click.option("--elide-constants", is_flag=True, help="Print large constants as dense_resource<__elided__>.")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME=DIMS",
              help="Bind a dynamic input's shape, e.g. input_ids=1x128 (repeatable).")
@click.option("--print-debuginfo", is_flag=True, help="Print each op's source location (the ONNX node).")
def import_command(model: str, output: str | None, elide_constants: bool, input_shapes: tuple[str, ...], print_debuginfo: bool) -> None:
    """Import an ONNX model and print it as lutc IR."""
    from lutc.cli import write_output
    from lutc.frontends.onnx import import_onnx
    from lutc.ir.printer import print_module

    shapes = dict(parse_input_shape(s) for s in input_shapes)
    module = import_onnx(model, input_shapes=shapes)
    write_output(output, print_module(module, elide_constants=elide_constants, print_locations=print_debuginfo))
