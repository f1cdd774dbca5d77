"""`builtin.module`, `func.func` and `func.return`: the containers every module has."""

from __future__ import annotations

from lutc.ir.attributes import StringAttr, TypeAttr
from lutc.ir.opdef import Attr, Dialect, OpDef, Trait, Variadic, impl
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
        if len(op.regions[0].blocks) != 1:
            return "body must have exactly one block"
        block = op.regions[0].blocks[0]
        arg_types = tuple(a.type for a in block.args)
        if arg_types != ftype.inputs:
            return f"entry block arguments ({', '.join(map(str, arg_types))}) do not match the function type {ftype}"
        if not block.ops or block.ops[-1].name != "func.return":
            return "body must end with 'func.return'"
        ret_types = tuple(v.type for v in block.ops[-1].operands)
        if ret_types != ftype.results:
            return f"returns ({', '.join(map(str, ret_types))}) but the function type says {ftype}"
        return None


@func.op
class ReturnOp(OpDef):
    name = "func.return"
    summary = "Return the function's results."
    operands = (Variadic("values"),)
    num_results = 0
    traits = {Trait.TERMINATOR}

    @staticmethod
    def verify_op(op) -> str | None:
        parent = op.parent_op
        if parent is None or parent.name != "func.func":
            return "must be inside a 'func.func'"
        return None


@impl(ReturnOp)
def _return(*values):
    return values
