"""The `graph` dialect: framework-level tensor ops, as ONNX and Relax express them.

Each op is a declarative class with its shape inference; its NumPy reference semantics
sits right below it (`@impl`). Elementwise ops are defined from tables.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from lutc.ir.attributes import BoolAttr, DenseArrayAttr, DenseAttr, DenseResourceAttr, IntAttr, StringAttr, TypeAttr
from lutc.ir.opdef import Attr, Dialect, InferError, OpDef, Optional, Trait, impl
from lutc.ir.types import ElementType, TensorType, Type, i1

graph = Dialect("graph", "Framework-level tensor operations (what ONNX and Relax express).")

PURE = {Trait.PURE}


# -- shape inference helpers --------------------------------------------------------------


def tensor_operand(types: list[Type], index: int, what: str = "operand") -> TensorType:
    t = types[index]
    if not isinstance(t, TensorType):
        raise InferError(f"{what} #{index} must be a tensor, got {t}")
    return t


def broadcast_shapes(*shapes: tuple) -> tuple:
    """NumPy broadcasting, with None for dimensions unknown at compile time."""
    rank = max(len(s) for s in shapes)
    out = []
    for dims in zip(*[(1,) * (rank - len(s)) + tuple(s) for s in shapes]):
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            raise InferError(f"shapes {' and '.join(str(list(s)) for s in shapes)} do not broadcast")
        if known:
            out.append(known.pop())
        elif any(d is None for d in dims):
            out.append(None)
        else:
            out.append(1)
    return tuple(out)


def same_element(types: list[TensorType]) -> ElementType:
    elements = {t.element for t in types}
    if len(elements) != 1:
        raise InferError(f"operands must have the same element type, got {', '.join(sorted(map(str, elements)))}")
    return elements.pop()


def normalize_axis(axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise InferError(f"axis {axis} is out of range for rank {rank}")
    return axis % max(rank, 1)


# -- constants ----------------------------------------------------------------------------


@graph.op
class Constant(OpDef):
    name = "graph.constant"
    summary = "A tensor constant, inline (`dense<...>`) or in the resource table (`dense_resource<...>`)."
    attributes = (Attr("value", (DenseAttr, DenseResourceAttr)),)
    traits = {Trait.PURE, Trait.CONSTANT_LIKE}

    @staticmethod
    def verify_op(op) -> str | None:
        value_type = op.attributes["value"].type
        if value_type != op.results[0].type:
            return f"value of type {value_type} does not match the result type {op.results[0].type}"
        return None


@impl(Constant)
def _constant(*, value):
    return value


# -- elementwise ops, from tables ---------------------------------------------------------


def define_elementwise(
    name: str,
    fn: Callable[..., np.ndarray],
    *,
    arity: int,
    summary: str,
    commutative: bool = False,
    result_element: ElementType | None = None,
    float_only: bool = False,
    attributes: tuple[Attr, ...] = (),
) -> type[OpDef]:
    """Define an elementwise op and its reference from one table row."""

    def infer(types: list[Type], attrs: dict[str, Any]) -> list[Type]:
        tensors = [tensor_operand(types, i) for i in range(arity)]
        element = same_element(tensors)
        if float_only and not element.is_float:
            raise InferError(f"expects floating-point operands, got {element}")
        shape = broadcast_shapes(*(t.shape for t in tensors))
        return [TensorType(shape, result_element or element)]

    traits = {Trait.PURE, Trait.ELEMENTWISE} | ({Trait.BROADCAST} if arity > 1 else set())
    traits |= {Trait.COMMUTATIVE} if commutative else set()
    operand_names = ("input",) if arity == 1 else ("lhs", "rhs") if arity == 2 else tuple(f"x{i}" for i in range(arity))
    cls = type(
        name.split(".")[1].title().replace("_", ""),
        (OpDef,),
        {
            "name": name,
            "summary": summary,
            "operands": operand_names,
            "attributes": attributes,
            "traits": traits,
            "infer": staticmethod(infer),
        },
    )
    graph.op(cls)

    def reference(*arrays, **attrs):
        return fn(*arrays, **attrs)

    impl(cls)(reference)
    return cls


def _erf(x: np.ndarray) -> np.ndarray:
    """erf in float64 (Numerical Recipes' erfc, fractional error < 1.2e-7), returned in x's dtype."""
    z = np.abs(x.astype(np.float64))
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (
        0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))
    erfc = t * np.exp(poly)
    return np.where(x >= 0, 1.0 - erfc, erfc - 1.0).astype(x.dtype)


def _gelu(x: np.ndarray, *, approximate: str = "none") -> np.ndarray:
    if approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)
        return (0.5 * x * (1.0 + np.tanh(inner))).astype(x.dtype)
    return (0.5 * x * (1.0 + _erf(x / np.asarray(math.sqrt(2.0), x.dtype)))).astype(x.dtype)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # Split by sign so that exp never overflows.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "iu":  # ONNX integer division truncates toward zero
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.trunc(np.true_divide(a, b)).astype(a.dtype)
    return np.divide(a, b)


UNARY_FLOAT = {
    "graph.exp": (np.exp, "e^x"),
    "graph.log": (np.log, "Natural logarithm."),
    "graph.sqrt": (np.sqrt, "Square root."),
    "graph.rsqrt": (lambda x: (1 / np.sqrt(x)).astype(x.dtype), "1 / sqrt(x)."),
    "graph.reciprocal": (lambda x: (1 / x).astype(x.dtype), "1 / x."),
    "graph.tanh": (np.tanh, "Hyperbolic tangent."),
    "graph.erf": (_erf, "The error function."),
    "graph.sigmoid": (_sigmoid, "1 / (1 + e^-x)."),
    "graph.silu": (lambda x: (x * _sigmoid(x)).astype(x.dtype), "x * sigmoid(x) (swish)."),
}
UNARY_ANY = {
    "graph.neg": (np.negative, "-x."),
    "graph.abs": (np.abs, "|x|."),
    "graph.relu": (lambda x: np.maximum(x, np.zeros((), x.dtype)), "max(x, 0)."),
}
BINARY = {
    # name: (fn, commutative, summary)
    "graph.add": (np.add, True, "lhs + rhs, broadcasting."),
    "graph.sub": (np.subtract, False, "lhs - rhs, broadcasting."),
    "graph.mul": (np.multiply, True, "lhs * rhs, broadcasting."),
    "graph.div": (_div, False, "lhs / rhs, broadcasting; integers truncate toward zero."),
    "graph.max": (np.maximum, True, "Elementwise maximum (NaN propagates)."),
    "graph.min": (np.minimum, True, "Elementwise minimum (NaN propagates)."),
    "graph.pow": (lambda a, b: np.power(a, b).astype(a.dtype), False, "lhs ** rhs."),
}
COMPARE = {
    "graph.equal": (np.equal, True, "lhs == rhs, as i1."),
    "graph.less": (np.less, False, "lhs < rhs, as i1."),
    "graph.greater": (np.greater, False, "lhs > rhs, as i1."),
}

for _name, (_fn, _summary) in UNARY_FLOAT.items():
    define_elementwise(_name, _fn, arity=1, summary=_summary, float_only=True)
for _name, (_fn, _summary) in UNARY_ANY.items():
    define_elementwise(_name, _fn, arity=1, summary=_summary)
define_elementwise(
    "graph.gelu", _gelu, arity=1, float_only=True,
    summary="Gaussian error linear unit; `approximate` = none (erf) or tanh.",
    attributes=(Attr("approximate", StringAttr, "none", ("none", "tanh")),),
)
for _name, (_fn, _comm, _summary) in BINARY.items():
    define_elementwise(_name, _fn, arity=2, commutative=_comm, summary=_summary)
for _name, (_fn, _comm, _summary) in COMPARE.items():
    define_elementwise(_name, _fn, arity=2, commutative=_comm, summary=_summary, result_element=i1)


@graph.op
class Cast(OpDef):
    name = "graph.cast"
    summary = "Convert to element type `to` (floats to integers truncate toward zero, as ONNX)."
    operands = ("input",)
    attributes = (Attr("to", TypeAttr),)
    traits = {Trait.PURE, Trait.ELEMENTWISE}

    @staticmethod
    def infer(types, attrs):
        if not isinstance(attrs["to"], ElementType):
            raise InferError(f"'to' must be an element type, got {attrs['to']}")
        return [tensor_operand(types, 0).with_element(attrs["to"])]


@impl(Cast)
def _cast(x, *, to):
    return cast_array(x, to)


def cast_array(x: np.ndarray, to: ElementType) -> np.ndarray:
    """ONNX Cast: float to int truncates; values outside a sub-byte type's range wrap."""
    if to.is_bool:
        return x != 0
    if to.is_int and x.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            x = np.trunc(x)
    out = x.astype(to.np_dtype)
    if to.is_int and to.bitwidth < 8:
        lo, hi = to.int_range()
        out = ((out.astype(np.int64) - lo) % (hi - lo + 1) + lo).astype(to.np_dtype)
    return out


# -- linear algebra -----------------------------------------------------------------------


def matmul_shape(a: tuple, b: tuple) -> tuple:
    """ONNX/NumPy matmul: 1-D operands are promoted and the added dimension dropped."""
    if not a or not b:
        raise InferError("matmul operands must have rank >= 1")
    a2 = (1,) + a if len(a) == 1 else a
    b2 = b + (1,) if len(b) == 1 else b
    if a2[-1] is not None and b2[-2] is not None and a2[-1] != b2[-2]:
        raise InferError(f"inner dimensions differ: {list(a)} x {list(b)}")
    batch = broadcast_shapes(a2[:-2], b2[:-2])
    out = batch + (a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


@graph.op
class MatMul(OpDef):
    name = "graph.matmul"
    summary = "Matrix product with NumPy/ONNX broadcasting of batch dimensions."
    operands = ("lhs", "rhs")
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        a, b = tensor_operand(types, 0), tensor_operand(types, 1)
        element = same_element([a, b])
        return [TensorType(matmul_shape(a.shape, b.shape), element)]


@impl(MatMul)
def _matmul(a, b):
    return np.matmul(a, b)


MPGEMM_BITS = (1, 2, 3, 4, 8)


@graph.op
class MpGemm(OpDef):
    """y[..., m, n] = sum_k x[..., m, k] * s[n, k/G] * (q[n, k] - z[n, k/G]).

    The one normal form of a low-bit matmul (DESIGN.md §4): codes `q` are unsigned
    `bits`-bit integers, N rows of K ("NT" layout); `scales` and `zeros` have one entry per
    group of `group_size` consecutive k. Without `zeros`, z = 2^(bits-1); ternary weights
    are bits = 2 with codes {0, 1, 2} and z = 1.
    """

    name = "graph.mpgemm"
    summary = "Mixed-precision matmul: float activations x low-bit weight codes."
    operands = ("x", "codes", "scales", Optional("zeros"))
    attributes = (
        Attr("bits", IntAttr, choices=MPGEMM_BITS),
        Attr("group_size", IntAttr),
        Attr("ternary", BoolAttr, False),
    )
    traits = PURE

    @staticmethod
    def check(types, attrs):
        x, codes, scales = (tensor_operand(types, i) for i in range(3))
        bits, group = attrs["bits"], attrs["group_size"]
        if codes.rank != 2:
            raise InferError(f"codes must be N x K, got {codes}")
        if codes.element != ElementType(f"ui{bits}") and not (bits == 8 and codes.element.name == "ui8"):
            raise InferError(f"codes of a {bits}-bit mpgemm must be ui{bits}, got {codes.element}")
        if attrs["ternary"] and bits != 2:
            raise InferError("ternary weights are stored as 2-bit codes (bits = 2)")
        if group <= 0:
            raise InferError(f"group_size must be positive, got {group}")
        n, k = codes.shape
        if x.rank < 1 or (x.shape[-1] is not None and k is not None and x.shape[-1] != k):
            raise InferError(f"x's last dimension must be K = {k}, got {x}")
        if not x.element.is_float or not scales.element.is_float:
            raise InferError("x and scales must be floating point")
        if k is not None and n is not None:
            blocks = -(-k // group)
            if scales.shape != (n, blocks):
                raise InferError(f"scales must be {n}x{blocks} (N x ceil(K/group_size)), got {scales}")
            if len(types) == 4 and tensor_operand(types, 3).shape != (n, blocks):
                raise InferError(f"zeros must be {n}x{blocks}, got {types[3]}")

    @staticmethod
    def infer(types, attrs):
        x, codes = tensor_operand(types, 0), tensor_operand(types, 1)
        return [TensorType(x.shape[:-1] + (codes.shape[0],), x.element)]


def default_zero_point(bits: int, ternary: bool) -> int:
    return 1 if ternary else 2 ** (bits - 1)


def dequantize_weights(codes, scales, zeros, *, bits: int, group_size: int, ternary: bool = False) -> np.ndarray:
    """W[n, k] = s[n, k/G] * (q[n, k] - z[n, k/G]), in float32."""
    k = codes.shape[1]
    scale = np.repeat(scales.astype(np.float32), group_size, axis=1)[:, :k]
    if zeros is None:
        zero = np.float32(default_zero_point(bits, ternary))
    else:
        zero = np.repeat(zeros.astype(np.float32), group_size, axis=1)[:, :k]
    return scale * (codes.astype(np.float32) - zero)


@impl(MpGemm)
def _mpgemm(x, codes, scales, zeros=None, *, bits, group_size, ternary):
    w = dequantize_weights(codes, scales, zeros, bits=bits, group_size=group_size, ternary=ternary)
    return np.matmul(x.astype(np.float32), w.T).astype(x.dtype)


# -- layout -------------------------------------------------------------------------------


@graph.op
class Reshape(OpDef):
    name = "graph.reshape"
    summary = "Reshape to `shape`; one entry may be -1 (inferred from the element count)."
    operands = ("input",)
    attributes = (Attr("shape", DenseArrayAttr),)
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x = tensor_operand(types, 0)
        target = list(attrs["shape"])
        if target.count(-1) > 1 or any(d < -1 for d in target):
            raise InferError(f"shape {target} may contain one -1 and no other negative entry")
        if -1 in target:
            rest = math.prod(d for d in target if d != -1)
            if x.is_static:
                if rest == 0 or x.num_elements % rest:
                    raise InferError(f"cannot reshape {x} to {target}")
                target[target.index(-1)] = x.num_elements // rest
            else:
                target[target.index(-1)] = None
        elif x.is_static and math.prod(target) != x.num_elements:
            raise InferError(f"cannot reshape {x} ({x.num_elements} elements) to {target}")
        return [TensorType(tuple(target), x.element)]


@impl(Reshape)
def _reshape(x, *, shape):
    return np.reshape(x, shape)


@graph.op
class Transpose(OpDef):
    name = "graph.transpose"
    summary = "Permute dimensions: result.shape[i] = input.shape[perm[i]]."
    operands = ("input",)
    attributes = (Attr("perm", DenseArrayAttr),)
    traits = PURE

    @staticmethod
    def infer(types, attrs):
        x = tensor_operand(types, 0)
        perm = list(attrs["perm"])
        if sorted(perm) != list(range(x.rank)):
            raise InferError(f"perm {perm} is not a permutation of the {x.rank} dimensions of {x}")
        return [x.with_shape(x.shape[p] for p in perm)]


@impl(Transpose)
def _transpose(x, *, perm):
    return np.transpose(x, perm)
