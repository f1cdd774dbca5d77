"""Passes, their registry, the pipeline syntax and the pass manager.

A pass is a dataclass whose fields are its options (as xDSL's `ModulePass`):

    @register_pass
    @dataclass
    class FuseOps(Pass):
        name = "fuse-ops"
        summary = "Group producers and consumers into graph.fused ops."
        max_ops: int = 16            # spelled max-ops in a pipeline

        def run(self, module: Module) -> None: ...

Pipelines are written as `canonicalize,fuse-ops{max-ops=8,allow-opaque=false}`; a value
may be quoted to hold commas: `infer-shapes{input-shapes="x=1x16,y=4x4"}`.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import time
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, TextIO

from lutc.diagnostics import Location, PipelineError
from lutc.ir.core import Module
from lutc.ir.printer import print_module
from lutc.ir.verifier import verify


@dataclass
class Pass:
    """Base of all passes. Subclasses are dataclasses; each field is an option."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""

    def run(self, module: Module) -> None:
        raise NotImplementedError

    @classmethod
    def options(cls) -> dict[str, dataclasses.Field]:
        """Option spelling (kebab-case) -> dataclass field."""
        return {f.name.replace("_", "-"): f for f in dataclasses.fields(cls) if f.init}

    def pipeline_text(self) -> str:
        """This pass as it would be written in a pipeline (non-default options only)."""
        opts = []
        for spelling, f in self.options().items():
            value = getattr(self, f.name)
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            if value != default:
                text = str(value).lower() if isinstance(value, bool) else str(value)
                if re.search(r'[,{}\s"]', text) or not text:
                    text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
                opts.append(f"{spelling}={text}")
        return self.name + ("{" + ",".join(opts) + "}" if opts else "")


PASSES: dict[str, type[Pass]] = {}


def register_pass(cls: type[Pass]) -> type[Pass]:
    assert cls.name not in PASSES, f"pass {cls.name} registered twice"
    PASSES[cls.name] = cls
    return cls


def known_passes() -> dict[str, type[Pass]]:
    import lutc.passes  # noqa: F401  (imports every pass module, which registers them)

    return PASSES


# -- pipeline syntax ----------------------------------------------------------------------

_PASS_NAME = re.compile(r"\s*([A-Za-z][A-Za-z0-9_\-]*)\s*")
_OPTION = re.compile(r"\s*([A-Za-z][A-Za-z0-9_\-]*)\s*=\s*")
_VALUE = re.compile(r'"((?:[^"\\]|\\.)*)"|([^,}\s]*)')


def _pipeline_error(text: str, pos: int, message: str) -> PipelineError:
    return PipelineError(message, Location("<pipeline>", 1, pos + 1), source_line=text)


def convert_option(value: str, hint: Any, where: str) -> Any:
    """Convert option text to the field's type, or raise ValueError with what was expected."""
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        choices = typing.get_args(hint)
        for choice in choices:
            if str(choice) == value:
                return choice
        raise ValueError(f"expected one of {', '.join(map(str, choices))}")
    if hint is bool:
        if value.lower() in ("true", "1", "on"):
            return True
        if value.lower() in ("false", "0", "off"):
            return False
        raise ValueError("expected true or false")
    if hint is int:
        try:
            return int(value, 0)
        except ValueError:
            raise ValueError("expected an integer") from None
    if hint is float:
        try:
            return float(value)
        except ValueError:
            raise ValueError("expected a number") from None
    return value


def parse_pipeline(text: str) -> list[Pass]:
    passes_by_name = known_passes()
    result: list[Pass] = []
    pos = 0
    if not text.strip():
        return result
    while True:
        m = _PASS_NAME.match(text, pos)
        if not m:
            raise _pipeline_error(text, pos, f"expected a pass name at '{text[pos:pos + 20]}'")
        name, name_pos = m.group(1), m.start(1)
        pos = m.end()
        cls = passes_by_name.get(name)
        if cls is None:
            known = ", ".join(sorted(passes_by_name))
            raise _pipeline_error(text, name_pos, f"unknown pass '{name}' (known passes: {known})")
        kwargs: dict[str, Any] = {}
        if text.startswith("{", pos):
            pos += 1
            options = cls.options()
            hints = typing.get_type_hints(cls)
            while not text.startswith("}", pos):
                om = _OPTION.match(text, pos)
                if not om:
                    raise _pipeline_error(text, pos, f"expected option=value in the options of '{name}'")
                spelling, opt_pos = om.group(1), om.start(1)
                f = options.get(spelling)
                if f is None:
                    names = ", ".join(options) or "none"
                    raise _pipeline_error(text, opt_pos, f"pass '{name}' has no option '{spelling}' (options: {names})")
                pos = om.end()
                vm = _VALUE.match(text, pos)
                raw = re.sub(r"\\(.)", r"\1", vm.group(1)) if vm.group(1) is not None else vm.group(2)
                try:
                    kwargs[f.name] = convert_option(raw, hints[f.name], name)
                except ValueError as err:
                    raise _pipeline_error(
                        text, pos, f"invalid value '{raw}' for option '{spelling}' of pass '{name}': {err}"
                    ) from None
                pos = vm.end()
                pos = len(text) - len(text[pos:].lstrip())
                if text.startswith(",", pos):
                    pos += 1
                elif not text.startswith("}", pos):
                    raise _pipeline_error(text, pos, f"expected ',' or '}}' in the options of '{name}'")
            pos += 1
        result.append(cls(**kwargs))
        pos = len(text) - len(text[pos:].lstrip())
        if pos >= len(text):
            return result
        if not text.startswith(",", pos):
            raise _pipeline_error(text, pos, f"expected ',' between passes, found '{text[pos:pos + 20]}'")
        pos += 1


# -- the pass manager ---------------------------------------------------------------------


@dataclass
class PassTiming:
    name: str
    seconds: float


@dataclass
class PassManager:
    """Runs passes in order, verifying after each one (the pipeline's safety net)."""

    passes: list[Pass] = field(default_factory=list)
    verify_each: bool = True
    print_ir_after_all: bool = False
    elide_constants: bool = False
    ir_stream: TextIO | None = None
    timings: list[PassTiming] = field(default_factory=list)

    @classmethod
    def parse(cls, pipeline: str, **kwargs: Any) -> "PassManager":
        return cls(parse_pipeline(pipeline), **kwargs)

    def add(self, p: Pass) -> "PassManager":
        self.passes.append(p)
        return self

    def run(self, module: Module) -> Module:
        """Run every pass on `module` in place; returns it for chaining."""
        for p in self.passes:
            start = time.perf_counter()
            p.run(module)
            self.timings.append(PassTiming(p.name, time.perf_counter() - start))
            if self.verify_each:
                start = time.perf_counter()
                verify(module)
                self.timings.append(PassTiming("(verifier)", time.perf_counter() - start))
            if self.print_ir_after_all:
                stream = self.ir_stream or sys.stderr
                stream.write(f"// -----// IR Dump After {p.pipeline_text()} //----- //\n")
                stream.write(print_module(module, elide_constants=self.elide_constants))
        return module

    def pipeline_text(self) -> str:
        return ",".join(p.pipeline_text() for p in self.passes)

    def timing_rows(self) -> list[tuple[str, float]]:
        """(name, seconds) per pass in order, the verifier's runs added up into one row."""
        rows: list[tuple[str, float]] = []
        verifier = 0.0
        for t in self.timings:
            if t.name == "(verifier)":
                verifier += t.seconds
            else:
                rows.append((t.name, t.seconds))
        if verifier:
            rows.append(("(verifier)", verifier))
        return rows
