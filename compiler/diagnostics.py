"""User-facing errors.

Every error that bad input can cause is a `LutcError`. The CLI prints it as one line,
`file:line:col: error: message` (MLIR's diagnostic shape), and exits with status 2.
Anything else that escapes is a bug in lutc and is reported as an internal error.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where an operation or a diagnostic comes from.

    `file`/`line`/`col` for parsed text (1-based), `name` for imported nodes
    (the ONNX node name), or nothing at all (unknown).
    """

    file: str | None = None
    line: int | None = None
    col: int | None = None
    name: str | None = None

    def __str__(self) -> str:
        parts = []
        if self.file is not None:
            parts.append(self.file)
            if self.line is not None:
                parts.append(str(self.line))
                if self.col is not None:
                    parts.append(str(self.col))
        where = ":".join(parts)
        if self.name:
            return f"{where}: {self.name}" if where else self.name
        return where

    def mlir(self) -> str:
        """The location in MLIR's `loc(...)` syntax."""
        if self.file is not None and self.line is not None:
            inner = f'"{self.file}":{self.line}:{self.col or 0}'
            return f'loc("{self.name}"({inner}))' if self.name else f"loc({inner})"
        if self.name:
            return f'loc("{self.name}")'
        return "loc(unknown)"


UNKNOWN_LOC = Location()


class LutcError(Exception):
    """An error in the user's input: printed as one line, exit status 2."""

    def __init__(self, message: str, loc: Location | None = None, *, source_line: str | None = None):
        super().__init__(message)
        self.message = message
        self.loc = loc or UNKNOWN_LOC
        # The offending source line, shown under the message with a caret (parse errors).
        self.source_line = source_line

    def __str__(self) -> str:
        where = str(self.loc)
        return f"{where}: error: {self.message}" if where else f"error: {self.message}"

    def render(self) -> str:
        """The diagnostic as the CLI prints it: one line, then the source line and a caret if known."""
        text = str(self)
        if self.source_line is not None and self.loc.col is not None:
            caret = " " * (self.loc.col - 1) + "^"
            text += f"\n{self.source_line}\n{caret}"
        return text


class ParseError(LutcError):
    """Malformed IR text."""


class VerifyError(LutcError):
    """IR that is well formed but breaks an op's or the function's rules."""


class PipelineError(LutcError):
    """A bad pass pipeline string: unknown pass, unknown option, bad value."""


class ImportError_(LutcError):
    """A model that cannot be imported (named with a trailing underscore: `ImportError` is a builtin)."""


class InterpreterError(LutcError):
    """The reference interpreter cannot evaluate a function (missing input, elided constant...)."""
