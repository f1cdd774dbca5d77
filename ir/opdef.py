"""Declarative op definitions, one registry per dialect, and reference implementations.

An op is defined by a class (IRDL-style, as xDSL does):

    @graph.op
    class Transpose(OpDef):
        name = "graph.transpose"
        summary = "Permute the dimensions of a tensor."
        operands = ("input",)
        attributes = (Attr("perm", DenseArrayAttr),)
        traits = {Trait.PURE}

        @staticmethod
        def infer(types, attrs):
            return [types[0].with_shape(types[0].shape[p] for p in attrs["perm"])]

and its NumPy semantics sit beside it:

    @impl(Transpose)
    def _(x, *, perm):
        return np.transpose(x, perm)

Attributes reach `infer` and the implementation as Python values, with defaults filled in.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

from lutc.ir.attributes import Attribute
from lutc.ir.types import Type


class Trait(enum.Enum):
    PURE = "Pure"                      # no side effects: may be erased when unused, CSE'd, folded
    ELEMENTWISE = "Elementwise"        # result[i] depends on operands[i] only (after broadcasting)
    COMMUTATIVE = "Commutative"        # binary op whose operands may be swapped
    BROADCAST = "Broadcast"            # operands broadcast NumPy-style
    CONSTANT_LIKE = "ConstantLike"     # materializes an attribute as a value
    TERMINATOR = "Terminator"          # ends a block
    ISOLATED = "IsolatedFromAbove"     # regions use only their own block arguments
    SYMBOL = "Symbol"                  # has a sym_name (functions)


REQUIRED = object()


@dataclass(frozen=True)
class Attr:
    """An attribute an op accepts: its name, attribute class(es), default and allowed values."""

    name: str
    kind: type[Attribute] | tuple[type[Attribute], ...]
    default: Any = REQUIRED
    choices: tuple = ()

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class Operand:
    name: str
    optional: bool = False  # 0 or 1 value
    variadic: bool = False  # any number of values


def Optional(name: str) -> Operand:  # noqa: N802  (reads like a type in op definitions)
    return Operand(name, optional=True)


def Variadic(name: str) -> Operand:  # noqa: N802
    return Operand(name, variadic=True)


class InferError(Exception):
    """Raised by `infer` or `verify` when operands or attributes are inconsistent."""


class OpDef:
    """Base of op definitions. Subclasses set the class attributes below."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    operands: ClassVar[tuple[str | Operand, ...]] = ()
    num_results: ClassVar[int | None] = 1  # None: variadic
    attributes: ClassVar[tuple[Attr, ...]] = ()
    traits: ClassVar[set[Trait]] = set()
    num_regions: ClassVar[int] = 0
    # The op that must directly enclose this one (MLIR's HasParent trait), e.g. a terminator's.
    parent: ClassVar[str | None] = None
    # Set by @impl: reference(*arrays, **attrs) -> array or tuple of arrays.
    reference: ClassVar[Callable[..., Any] | None] = None
    # Set by @impl(..., with_op=True): reference(interpreter, op, *arrays, **attrs).
    reference_needs_op: ClassVar[bool] = False

    @staticmethod
    def infer(types: list[Type], attrs: dict[str, Any]) -> list[Type] | None:
        """Result types from operand types and attributes; None when the op cannot infer them."""
        return None

    @staticmethod
    def check(types: list[Type], attrs: dict[str, Any]) -> None:
        """Op-specific checks beyond what `infer` and the declaration cover; raise InferError."""

    @staticmethod
    def verify_op(op) -> str | None:
        """Checks that need the op itself (its regions, its neighbours); return a message or None."""
        return None

    # -- helpers used by the verifier, builder and interpreter ----------------------------
    @classmethod
    def operand_defs(cls) -> list[Operand]:
        return [o if isinstance(o, Operand) else Operand(o) for o in cls.operands]

    @classmethod
    def has(cls, trait: Trait) -> bool:
        return trait in cls.traits

    @classmethod
    def attr_values(cls, attributes: dict[str, Attribute]) -> dict[str, Any]:
        """Declared attributes as Python values, defaults filled in (undeclared ones are left out)."""
        values = {}
        for a in cls.attributes:
            if a.name in attributes:
                values[a.name] = attributes[a.name].value
            elif not a.required:
                values[a.name] = a.default
        return values

    @classmethod
    def group_operands(cls, operands: list) -> dict[str, Any]:
        """Map operand names to values: one value, None for a missing optional, a list for a variadic."""
        defs = cls.operand_defs()
        extra = len(operands) - sum(not (d.optional or d.variadic) for d in defs)
        groups, i = {}, 0
        for d in defs:
            if d.variadic:  # takes every value not claimed by a fixed or earlier optional operand
                take, extra = extra, 0
            elif d.optional:
                take = min(extra, 1)
                extra -= take
            else:
                take = 1
            chunk = list(operands[i : i + take])
            groups[d.name] = chunk if d.variadic else (chunk[0] if chunk else None)
            i += take
        return groups

    @classmethod
    def operand_count_ok(cls, count: int) -> bool:
        defs = cls.operand_defs()
        fixed = sum(not (d.optional or d.variadic) for d in defs)
        if any(d.variadic for d in defs):
            return count >= fixed
        return fixed <= count <= fixed + sum(d.optional for d in defs)


def _types(types) -> str:
    return "(" + ", ".join(map(str, types)) + ")"


def check_region_signature(op, inputs, results, terminator: str, expected: str) -> str | None:
    """Check that `op`'s one region is one block with arguments of types `inputs`, ending in
    `terminator` with operands of types `results`; `expected` says where those types come from."""
    blocks = op.regions[0].blocks
    if len(blocks) != 1:
        return f"region must have exactly one block, got {len(blocks)}"
    block = blocks[0]
    arg_types = [a.type for a in block.args]
    if arg_types != list(inputs):
        return f"block arguments {_types(arg_types)} do not match {expected}"
    if not block.ops or block.ops[-1].name != terminator:
        return f"region must end with '{terminator}'"
    returned = block.ops[-1].operand_types
    if returned != list(results):
        return f"returns {_types(returned)} but {expected}"
    return None


class Dialect:
    """A namespace of op definitions; `@dialect.op` registers a class."""

    def __init__(self, name: str, description: str = ""):
        self.name = name
        self.description = description
        self.ops: dict[str, type[OpDef]] = {}
        DIALECTS[name] = self

    def op(self, cls: type[OpDef]) -> type[OpDef]:
        assert cls.name.startswith(self.name + "."), f"{cls.name} is not in dialect {self.name}"
        assert cls.name not in OPS, f"op {cls.name} defined twice"
        self.ops[cls.name] = cls
        OPS[cls.name] = cls
        return cls


DIALECTS: dict[str, Dialect] = {}
OPS: dict[str, type[OpDef]] = {}


def lookup(name: str) -> type[OpDef] | None:
    """The definition of op `name`, or None if no dialect defines it."""
    if not OPS:
        import lutc.ir.dialects  # noqa: F401  (registers the dialects on first use)
    return OPS.get(name)


def impl(opdef: type[OpDef], *, with_op: bool = False):
    """Register the NumPy reference implementation of `opdef`."""

    def register(fn):
        opdef.reference = staticmethod(fn)
        opdef.reference_needs_op = with_op
        return fn

    return register
