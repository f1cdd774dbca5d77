"""Attributes: compile-time constants attached to operations.

Each attribute knows its MLIR spelling (`__str__`) and its Python value (`.value`),
which is what op implementations and passes read.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lutc.ir.types import ElementType, FunctionType, TensorType, Type, f32, f64, i1, i64


class Attribute:
    """Base class; subclasses are frozen dataclasses, so attributes hash and compare by value."""

    @property
    def value(self) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class IntAttr(Attribute):
    """`3 : i64`."""

    data: int
    type: ElementType = i64

    @property
    def value(self) -> int:
        return self.data

    def __str__(self) -> str:
        return f"{self.data} : {self.type}"


def format_float(x: float, type: ElementType = f64) -> str:
    """The shortest text that parses back to the same value, in MLIR's float literal syntax.

    MLIR needs a `.` in a float literal, and spells non-finite values by their bits.
    """
    if not math.isfinite(x):
        return "0x" + (struct.pack(">f", x) if type == f32 else struct.pack(">d", x)).hex().upper()
    # NumPy's str() of a scalar is the shortest text that round-trips at that precision.
    text = repr(float(x)) if type == f64 or not type.is_float else str(type.np_dtype.type(x))
    mantissa, _, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return f"{mantissa}e{exponent}" if exponent else mantissa


@dataclass(frozen=True)
class FloatAttr(Attribute):
    """`1.0e-05 : f32`."""

    data: float
    type: ElementType = f32

    @property
    def value(self) -> float:
        return self.data

    def __eq__(self, other):
        # NaN attributes are equal to themselves, so that CSE and round-trip checks work.
        return (
            isinstance(other, FloatAttr)
            and self.type == other.type
            and struct.pack("<d", self.data) == struct.pack("<d", other.data)
        )

    def __hash__(self):
        return hash((struct.pack("<d", self.data), self.type))

    def __str__(self) -> str:
        return f"{format_float(self.data, self.type)} : {self.type}"


@dataclass(frozen=True)
class BoolAttr(Attribute):
    data: bool

    @property
    def value(self) -> bool:
        return self.data

    def __str__(self) -> str:
        return "true" if self.data else "false"


@dataclass(frozen=True)
class UnitAttr(Attribute):
    """A present-or-absent flag: printed as the bare key in an attribute dictionary."""

    @property
    def value(self) -> bool:
        return True

    def __str__(self) -> str:
        return "unit"


def escape_string(s: str) -> str:
    out = []
    for ch in s:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


@dataclass(frozen=True)
class StringAttr(Attribute):
    data: str

    @property
    def value(self) -> str:
        return self.data

    def __str__(self) -> str:
        return escape_string(self.data)


@dataclass(frozen=True)
class ArrayAttr(Attribute):
    """`[a, b, c]` of any attributes."""

    elements: tuple[Attribute, ...]

    def __post_init__(self):
        object.__setattr__(self, "elements", tuple(self.elements))

    @property
    def value(self) -> list:
        return [e.value for e in self.elements]

    def __str__(self) -> str:
        return "[" + ", ".join(map(str, self.elements)) + "]"


@dataclass(frozen=True)
class DenseArrayAttr(Attribute):
    """`array<i64: 1, 0, 2>`: a list of integers or floats (axes, permutations, shapes)."""

    element: ElementType
    data: tuple

    def __post_init__(self):
        object.__setattr__(self, "data", tuple(self.data))

    @property
    def value(self) -> list:
        return list(self.data)

    def __str__(self) -> str:
        if not self.data:
            return f"array<{self.element}>"
        if self.element.is_float:
            body = ", ".join(format_float(v, self.element) for v in self.data)
        else:
            body = ", ".join(str(int(v)) for v in self.data)
        return f"array<{self.element}: {body}>"


@dataclass(frozen=True)
class TypeAttr(Attribute):
    data: Type

    @property
    def value(self) -> Type:
        return self.data

    def __str__(self) -> str:
        return str(self.data)


def _array_key(array: np.ndarray) -> tuple:
    return (array.dtype.str, array.shape, array.tobytes())


@dataclass(frozen=True, eq=False)
class DenseAttr(Attribute):
    """`dense<[[1.0, 2.0]]> : tensor<1x2xf32>`: a small constant printed inline."""

    array: np.ndarray
    type: TensorType

    def __post_init__(self):
        self.array.setflags(write=False)

    @property
    def value(self) -> np.ndarray:
        return self.array

    def __eq__(self, other):
        return isinstance(other, DenseAttr) and self.type == other.type and _array_key(self.array) == _array_key(other.array)

    def __hash__(self):
        return hash((self.type, _array_key(self.array)))

    def __str__(self) -> str:
        return f"dense<{format_dense_literal(self.array, self.type.element)}> : {self.type}"


def format_scalar(v, element: ElementType) -> str:
    if element.is_bool:
        return "true" if v else "false"
    if element.is_float:
        return format_float(float(v), element if element in (f32, f64) else f32)
    return str(int(v))


def format_dense_literal(array: np.ndarray, element: ElementType) -> str:
    """A splat prints as one scalar; otherwise nested lists as MLIR prints them."""
    flat = array.reshape(-1)
    if flat.size > 0 and (flat == flat[0]).all() and not (element.is_float and np.isnan(flat.astype(np.float64)).any()):
        return format_scalar(flat[0], element)
    if array.ndim == 0:
        return format_scalar(array.item(), element)

    def nest(a: np.ndarray) -> str:
        if a.ndim == 1:
            return "[" + ", ".join(format_scalar(v, element) for v in a.tolist()) + "]"
        return "[" + ", ".join(nest(sub) for sub in a) + "]"

    return nest(array)


@dataclass(eq=False)
class Resource:
    """A large constant, stored once and referenced by name (MLIR's `dense_resource`).

    `data` is None for an elided constant (`dense_resource<__elided__>`).
    """

    name: str
    data: np.ndarray | None

    def __post_init__(self):
        if self.data is not None:
            self.data.setflags(write=False)


ELIDED = "__elided__"


@dataclass(frozen=True, eq=False)
class DenseResourceAttr(Attribute):
    """`dense_resource<name> : tensor<4096x4096xf32>`."""

    resource: Resource
    type: TensorType

    @property
    def value(self) -> np.ndarray:
        if self.resource.data is None:
            from lutc.diagnostics import LutcError

            raise LutcError(f"constant '{self.resource.name}' was elided; its value is not available")
        return self.resource.data

    def __eq__(self, other):
        return isinstance(other, DenseResourceAttr) and self.resource is other.resource and self.type == other.type

    def __hash__(self):
        return hash((id(self.resource), self.type))

    def __str__(self) -> str:
        return f"dense_resource<{self.resource.name}> : {self.type}"


ElementsAttr = (DenseAttr, DenseResourceAttr)

# Constants with more elements than this are stored as resources rather than inline.
INLINE_ELEMENTS_LIMIT = 16


def elements_attr(array: np.ndarray, type: TensorType, name: str = "cst") -> Attribute:
    """A DenseAttr for a small or splat constant, a DenseResourceAttr for a large one."""
    array = np.ascontiguousarray(array, dtype=type.element.np_dtype).reshape(type.shape)
    flat = array.reshape(-1)
    is_splat = flat.size > 0 and bool((flat == flat[0]).all())
    if array.size <= INLINE_ELEMENTS_LIMIT or is_splat:
        return DenseAttr(array, type)
    return DenseResourceAttr(Resource(name, array), type)


def to_attr(value: Any) -> Attribute:
    """Wrap a plain Python value: int -> IntAttr, [1, 2] -> array<i64: 1, 2>, ..."""
    if isinstance(value, Attribute):
        return value
    if isinstance(value, bool):
        return BoolAttr(value)
    if isinstance(value, (int, np.integer)):
        return IntAttr(int(value))
    if isinstance(value, (float, np.floating)):
        return FloatAttr(float(value), f32)
    if isinstance(value, str):
        return StringAttr(value)
    if isinstance(value, (TensorType, ElementType, FunctionType)):
        return TypeAttr(value)
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
            return DenseArrayAttr(i64, tuple(int(v) for v in value))
        if all(isinstance(v, (float, np.floating)) for v in value):
            return DenseArrayAttr(f32, tuple(float(v) for v in value))
        return ArrayAttr(tuple(to_attr(v) for v in value))
    raise TypeError(f"cannot make an attribute from {value!r}")


__all__ = [
    "Attribute", "IntAttr", "FloatAttr", "BoolAttr", "UnitAttr", "StringAttr", "ArrayAttr",
    "DenseArrayAttr", "TypeAttr", "DenseAttr", "DenseResourceAttr", "Resource", "ELIDED",
    "ElementsAttr", "elements_attr", "to_attr", "format_float", "i1",
]
