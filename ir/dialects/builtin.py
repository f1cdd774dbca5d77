"""`builtin.module`, `func.func` and `func.return`: the containers every module has."""

from __future__ import annotations

from lutc.ir.attributes import StringAttr, TypeAttr
from lutc.ir.opdef import Attr, Dialect, OpDef, Trait, Variadic, check_region_signature, impl
from lutc.ir.types import FunctionType

builtin = Dialect("builtin", "The top-level container.")
func = Dialect("func", "Functions and returns.")


@builtin.op
class ModuleOp(OpDef):
    name = "builtin.module"
    summary = "A list of functions."
    num_results = 0
    num_regions = 1
    traits = {Trait.ISOLATED}


@func.op
class FuncOp(OpDef):
    name = "func.func"
    summary = "A function: one region with one block whose arguments are the inputs."
    num_results = 0
    num_regions = 1
    attributes = (Attr("sym_name", StringAttr), Attr("function_type", TypeAttr))
    traits = {Trait.ISOLATED, Trait.SYMBOL}

    @staticmethod
    def verify_op(op) -> str | None:
        ftype = op.attr("function_type")
        if not isinstance(ftype, FunctionType):
            return f"'function_type' must be a function type, got {ftype}"
        return check_region_signature(op, ftype.inputs, ftype.results, "func.return", f"the function type says {ftype}")


@func.op
class ReturnOp(OpDef):
    name = "func.return"
    summary = "Return the function's results."
    operands = (Variadic("values"),)
    num_results = 0
    traits = {Trait.TERMINATOR}
    parent = "func.func"


@impl(ReturnOp)
def _return(*values):
    return values
