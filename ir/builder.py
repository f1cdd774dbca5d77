"""Build IR: create ops at an insertion point, inferring result types from the op definitions."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from lutc.diagnostics import UNKNOWN_LOC, Location, VerifyError
from lutc.ir.attributes import elements_attr, to_attr
from lutc.ir.core import Block, Operation, Region, Value
from lutc.ir.opdef import InferError, lookup
from lutc.ir.types import ElementType, Type, element_type_for_dtype, tensor_type_of


def infer_result_types(
    name: str, operands: Sequence[Value], attributes: dict[str, Any], loc: Location = UNKNOWN_LOC, *, required: bool = True
) -> list[Type] | None:
    """Result types of op `name` from its operands and attributes, as its definition infers them.

    Ops that cannot infer (ops with regions, say) raise, or give None when not `required`.
    """
    opdef = lookup(name)
    if opdef is None:
        raise VerifyError(f"cannot create '{name}': no dialect defines it", loc)
    attrs = {k: to_attr(v) for k, v in attributes.items()}
    types = [v.type for v in operands]
    try:
        values = opdef.attr_values(attrs)
        missing = [a.name for a in opdef.attributes if a.required and a.name not in attrs]
        if missing:
            raise InferError(f"requires attribute '{missing[0]}'")
        opdef.check(types, values)
        inferred = opdef.infer(types, values)
    except InferError as err:
        raise VerifyError(f"'{name}' op {err}", loc) from None
    if inferred is None and required:
        raise VerifyError(f"'{name}' cannot infer its result types; pass result_types", loc)
    return inferred


class Builder:
    """Inserts new ops into `block` at `index` (the end by default), advancing past each one."""

    def __init__(self, block: Block, index: int | None = None, loc: Location = UNKNOWN_LOC):
        self.block = block
        self.index = len(block.ops) if index is None else index
        self.loc = loc

    @classmethod
    def before(cls, op: Operation) -> "Builder":
        return cls(op.parent, op.parent.ops.index(op), op.loc)

    @classmethod
    def after(cls, op: Operation) -> "Builder":
        return cls(op.parent, op.parent.ops.index(op) + 1, op.loc)

    def insert(self, op: Operation) -> Operation:
        self.block.insert(self.index, op)
        self.index += 1
        return op

    def create(
        self,
        name: str,
        operands: Sequence[Value] = (),
        attributes: dict[str, Any] | None = None,
        result_types: Sequence[Type] | None = None,
        regions: Sequence[Region] = (),
        loc: Location | None = None,
    ) -> Operation:
        attributes = attributes or {}
        loc = loc or self.loc
        if result_types is None:
            result_types = infer_result_types(name, operands, attributes, loc)
        return self.insert(Operation(name, operands, result_types, attributes, regions, loc))

    def op(self, name: str, *operands: Value, loc: Location | None = None, **attributes: Any) -> Value:
        """Create a single-result op and return its result: `b.op("graph.add", x, y)`."""
        return self.create(name, operands, attributes, loc=loc).result

    def constant(self, array: np.ndarray, element: ElementType | None = None, name: str = "cst") -> Value:
        array = np.asarray(array)
        type = tensor_type_of(array, element or element_type_for_dtype(array.dtype))
        return self.create("graph.constant", [], {"value": elements_attr(array, type, name)}, [type]).result
