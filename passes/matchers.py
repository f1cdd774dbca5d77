"""Small structural matchers shared by patterns."""

from __future__ import annotations

import numpy as np

from lutc.ir.attributes import DenseAttr, DenseResourceAttr
from lutc.ir.core import Operation, Value


def defining_op(value: Value, name: str | None = None) -> Operation | None:
    """The op that defines `value` (if it is an op result, and named `name` when given)."""
    op = getattr(value, "op", None)
    if op is None or (name is not None and op.name != name):
        return None
    return op


def constant_value(value: Value) -> np.ndarray | None:
    """The array of a `graph.constant` result, or None (also None for an elided constant)."""
    op = defining_op(value, "graph.constant")
    if op is None:
        return None
    attr = op.attributes["value"]
    if isinstance(attr, DenseResourceAttr) and attr.resource.data is None:
        return None
    return attr.value


def is_splat_of(value: Value, scalar: float) -> bool:
    """True if `value` is a constant whose every element equals `scalar`."""
    op = defining_op(value, "graph.constant")
    if op is None or not isinstance(op.attributes["value"], DenseAttr):
        return False  # large resources are never neutral splats: they would be inline
    array = op.attributes["value"].array
    return array.size > 0 and bool(np.all(array == scalar))
