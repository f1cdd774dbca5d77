"""The `lutc opt` driver (lutc's MlirOptMain): split inputs, run pipelines, check expected
diagnostics. Usable from Python; the CLI only parses options and prints."""

from __future__ import annotations

import re

from typing import TYPE_CHECKING

from lutc.diagnostics import LutcError

if TYPE_CHECKING:
    from lutc.passes import PassManager

SPLIT_MARKER = re.compile(r"^// -----.*$", re.MULTILINE)
EXPECTED = re.compile(r"//\s*expected-(error|warning|note)\s*(?:@([+-]\d+|above|below))?\s*\{\{(.*?)\}\}")


def split_input(text: str) -> list[tuple[str, int]]:
    """Chunks separated by `// -----` lines, each with the number of lines before it."""
    chunks, start, line = [], 0, 0
    for m in SPLIT_MARKER.finditer(text):
        chunks.append((text[start : m.start()], line))
        line += text.count("\n", start, m.end()) + 1
        start = m.end() + 1
    chunks.append((text[start:], line))
    return chunks


def expected_diagnostics(chunk: str, line_offset: int) -> list[tuple[int, str]]:
    """`// expected-error@+1 {{message}}` comments: (absolute line, message) pairs."""
    expected = []
    for index, line in enumerate(chunk.split("\n")):
        for m in EXPECTED.finditer(line):
            offset = m.group(2)
            delta = {None: 0, "above": -1, "below": 1}.get(offset)
            if delta is None:
                delta = int(offset)
            expected.append((line_offset + index + 1 + delta, m.group(3)))
    return expected


def run_opt_chunk(chunk: str, filename: str, line_offset: int, pm_options: dict, print_options: dict) -> tuple[str, "PassManager"]:
    """Parse, verify and transform one input; returns the printed result and the pass manager."""
    from lutc.ir.parser import parse as parse_ir
    from lutc.ir.printer import print_module
    from lutc.ir.verifier import verify
    from lutc.passes import PassManager

    module = parse_ir(chunk, filename, line_offset=line_offset)
    verify(module)
    pm = PassManager.parse(pm_options["pipeline"], print_ir_after_all=pm_options["print_ir_after_all"],
                           elide_constants=print_options["elide_constants"])
    pm.run(module)
    return print_module(module, **print_options), pm


def check_diagnostics(chunk: str, filename: str, line_offset: int, pm_options: dict) -> list[str]:
    """Run a chunk and compare its errors with the `expected-error` comments; returns the mismatches."""
    from lutc.ir.parser import parse as parse_ir
    from lutc.ir.verifier import collect_errors
    from lutc.passes import PassManager

    produced: list[LutcError] = []
    try:
        module = parse_ir(chunk, filename, line_offset=line_offset)
        produced = collect_errors(module)
        if not produced:
            PassManager.parse(pm_options["pipeline"]).run(module)
    except LutcError as err:
        produced.append(err)
    expected = expected_diagnostics(chunk, line_offset)
    problems = []
    unmatched = list(produced)
    for line, message in expected:
        hit = next((e for e in unmatched if e.loc.line == line and message in e.message), None)
        if hit is None:
            problems.append(f"{filename}:{line}: error: expected error \"{message}\" was not produced")
        else:
            unmatched.remove(hit)
    problems.extend(f"{e} (unexpected error)" for e in unmatched)
    return problems


def with_source_line(err: LutcError, filename: str, text: str) -> LutcError:
    """Attach the offending line of `text` to an error located in it (verifier errors have none)."""
    if err.source_line is None and err.loc.file == filename and err.loc.line is not None:
        lines = text.split("\n")
        if 0 < err.loc.line <= len(lines):
            err.source_line = lines[err.loc.line - 1]
    return err
