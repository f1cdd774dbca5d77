"""Types: element types spelled as MLIR spells them, ranked tensors, function types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import ml_dtypes
import numpy as np


@dataclass(frozen=True)
class ElementType:
    """A scalar type: `f32`, `bf16`, `i8` (signed), `ui4` (unsigned), `i1` (bool)..."""

    name: str

    @property
    def is_float(self) -> bool:
        return self.name in FLOAT_TYPES

    @property
    def is_int(self) -> bool:
        return not self.is_float and self.name != "i1"

    @property
    def is_bool(self) -> bool:
        return self.name == "i1"

    @property
    def is_unsigned(self) -> bool:
        return self.name.startswith("ui")

    @property
    def bitwidth(self) -> int:
        return int(self.name.lstrip("uibf")) if self.name != "bf16" else 16

    @property
    def np_dtype(self) -> np.dtype:
        """The NumPy dtype that stores values of this type (sub-byte integers use one byte each)."""
        return _NP_STORAGE[self.name]

    def int_range(self) -> tuple[int, int]:
        bits = self.bitwidth
        return (0, 2**bits - 1) if self.is_unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)

    def __str__(self) -> str:
        return self.name


FLOAT_TYPES = ("f64", "f32", "f16", "bf16")
INT_TYPES = ("i64", "i32", "i16", "i8", "i4", "i3", "i2", "ui64", "ui32", "ui16", "ui8", "ui4", "ui3", "ui2", "ui1")
ELEMENT_TYPES = FLOAT_TYPES + INT_TYPES + ("i1",)

_NP_STORAGE: dict[str, np.dtype] = {
    "f64": np.dtype(np.float64),
    "f32": np.dtype(np.float32),
    "f16": np.dtype(np.float16),
    "bf16": np.dtype(ml_dtypes.bfloat16),
    "i64": np.dtype(np.int64),
    "i32": np.dtype(np.int32),
    "i16": np.dtype(np.int16),
    "i8": np.dtype(np.int8),
    "i4": np.dtype(np.int8),
    "i3": np.dtype(np.int8),
    "i2": np.dtype(np.int8),
    "ui64": np.dtype(np.uint64),
    "ui32": np.dtype(np.uint32),
    "ui16": np.dtype(np.uint16),
    "ui8": np.dtype(np.uint8),
    "ui4": np.dtype(np.uint8),
    "ui3": np.dtype(np.uint8),  # 3-bit weight codes (graph.mpgemm bits = 3)
    "ui2": np.dtype(np.uint8),
    "ui1": np.dtype(np.uint8),
    "i1": np.dtype(np.bool_),
}

f64, f32, f16, bf16 = (ElementType(n) for n in FLOAT_TYPES)
i64, i32, i16, i8, i4, i2 = (ElementType(n) for n in ("i64", "i32", "i16", "i8", "i4", "i2"))
ui8, ui4, ui2, i1 = (ElementType(n) for n in ("ui8", "ui4", "ui2", "i1"))


def element_type(name: str) -> ElementType:
    if name not in _NP_STORAGE:
        raise ValueError(f"unknown element type '{name}'")
    return ElementType(name)


def element_type_for_dtype(dtype: np.dtype) -> ElementType:
    """The lutc element type of a NumPy array (the widest type for its storage)."""
    dtype = np.dtype(dtype)
    for name in ("f64", "f32", "f16", "bf16", "i64", "i32", "i16", "i8", "ui64", "ui32", "ui16", "ui8", "i1"):
        if _NP_STORAGE[name] == dtype:
            return ElementType(name)
    raise ValueError(f"no lutc element type for NumPy dtype {dtype}")


# A dimension is a static size, or None for a dynamic one (printed `?`).
Dim = Union[int, None]


@dataclass(frozen=True)
class TensorType:
    """A ranked tensor: `tensor<4x?x16xf32>`; rank 0 is `tensor<f32>`."""

    shape: tuple[Dim, ...]
    element: ElementType

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(self.shape))

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_static(self) -> bool:
        return all(d is not None for d in self.shape)

    @property
    def num_elements(self) -> int:
        assert self.is_static, f"{self} has dynamic dimensions"
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        """Bytes when packed at the element's bit width (sub-byte types are packed)."""
        return (self.num_elements * self.element.bitwidth + 7) // 8

    def with_shape(self, shape) -> "TensorType":
        return TensorType(tuple(shape), self.element)

    def with_element(self, element: ElementType) -> "TensorType":
        return TensorType(self.shape, element)

    def compatible(self, other: "TensorType") -> bool:
        """Equal up to dynamic dimensions (as MLIR's `areCompatibleShapes`)."""
        return (
            self.element == other.element
            and self.rank == other.rank
            and all(a is None or b is None or a == b for a, b in zip(self.shape, other.shape))
        )

    def __str__(self) -> str:
        dims = "".join(("?" if d is None else str(d)) + "x" for d in self.shape)
        return f"tensor<{dims}{self.element}>"


@dataclass(frozen=True)
class FunctionType:
    inputs: tuple["Type", ...]
    results: tuple["Type", ...]

    def __str__(self) -> str:
        ins = ", ".join(map(str, self.inputs))
        if len(self.results) == 1 and not isinstance(self.results[0], FunctionType):
            return f"({ins}) -> {self.results[0]}"
        return f"({ins}) -> ({', '.join(map(str, self.results))})"


Type = Union[TensorType, ElementType, FunctionType]


def tensor(shape, element: ElementType | str) -> TensorType:
    """Shorthand: `tensor((1, 64), "f32")`."""
    if isinstance(element, str):
        element = element_type(element)
    return TensorType(tuple(shape), element)


def tensor_type_of(array: np.ndarray, element: ElementType | None = None) -> TensorType:
    return TensorType(tuple(int(d) for d in array.shape), element or element_type_for_dtype(array.dtype))
