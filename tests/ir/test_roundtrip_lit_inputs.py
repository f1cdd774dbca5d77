"""Every lit input round-trips through `lutc opt`, and the printed IR parses in xDSL."""

import re
from pathlib import Path

import pytest
from xdsl.context import Context
from xdsl.dialects.builtin import Builtin
from xdsl.dialects.func import Func
from xdsl.parser import Parser as XdslParser

from lutc.driver import split_input
from lutc.diagnostics import LutcError
from lutc.ir import parse, print_module, verify

LIT = Path(__file__).resolve().parents[1] / "lit"


def lit_chunks():
    """(id, text) of every split-input chunk of every lit .mlir input that is valid IR."""
    for path in sorted(LIT.rglob("*.mlir")):
        if "Inputs" in path.parts:
            continue
        text = path.read_text()
        chunks = split_input(text) if "--split-input-file" in text else [(text, 0)]
        for index, (chunk, _) in enumerate(chunks):
            if "expected-error" in chunk or not re.search(r'"(func\.func|builtin\.module)"', chunk):
                continue
            yield pytest.param(chunk, id=f"{path.relative_to(LIT)}#{index}")


def valid_modules():
    for param in lit_chunks():
        (chunk,) = param.values
        try:
            module = parse(chunk)
            verify(module)
        except LutcError:
            continue  # inputs of negative tests
        yield pytest.param(module, id=param.id)


@pytest.mark.parametrize("module", list(valid_modules()))
def test_printed_ir_is_a_fixed_point(module):
    text = print_module(module)
    assert print_module(parse(text)) == text


def xdsl_context() -> Context:
    ctx = Context(allow_unregistered=True)
    ctx.load_dialect(Builtin)
    ctx.load_dialect(Func)
    return ctx


@pytest.mark.parametrize("module", list(valid_modules()))
def test_printed_ir_parses_in_xdsl(module):
    for elide in (False, True):
        text = print_module(module, elide_constants=elide)
        parsed = XdslParser(xdsl_context(), text).parse_module()
        assert parsed is not None


def test_lit_suite_is_large_enough():
    tests = [p for p in LIT.rglob("*.mlir") if "Inputs" not in p.parts] + list(LIT.rglob("*.s"))
    assert len(tests) >= 40, f"only {len(tests)} lit tests"
