"""The IR's structure, after MLIR: operations hold regions, regions hold blocks, blocks hold
operations; values are defined once (an op result or a block argument) and know their uses.

There is one `Operation` class for every op (tinygrad's "one small node type"): what an op
means is looked up by name in the op registry (`lutc.ir.opdef`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

from lutc.diagnostics import UNKNOWN_LOC, Location
from lutc.ir.attributes import Attribute, to_attr
from lutc.ir.types import FunctionType, TensorType, Type


@dataclass(frozen=True)
class Use:
    """Operand `index` of `user` reads this value."""

    user: "Operation"
    index: int


class Value:
    """An SSA value. `uses` is kept up to date by `Operation`."""

    def __init__(self, type: Type):
        self.type = type
        self.uses: list[Use] = []

    @property
    def users(self) -> list["Operation"]:
        seen: dict[int, Operation] = {}
        for use in self.uses:
            seen.setdefault(id(use.user), use.user)
        return list(seen.values())

    @property
    def has_uses(self) -> bool:
        return bool(self.uses)

    @property
    def owner_block(self) -> "Block | None":
        raise NotImplementedError

    def replace_all_uses_with(self, new: "Value") -> None:
        for use in list(self.uses):
            use.user.set_operand(use.index, new)

    def replace_uses_if(self, new: "Value", predicate) -> None:
        for use in list(self.uses):
            if predicate(use):
                use.user.set_operand(use.index, new)


class OpResult(Value):
    def __init__(self, type: Type, op: "Operation", index: int):
        super().__init__(type)
        self.op = op
        self.index = index

    @property
    def owner_block(self) -> "Block | None":
        return self.op.parent

    def __repr__(self) -> str:
        return f"<result {self.index} of {self.op.name}: {self.type}>"


class BlockArgument(Value):
    def __init__(self, type: Type, block: "Block", index: int):
        super().__init__(type)
        self.block = block
        self.index = index

    @property
    def owner_block(self) -> "Block | None":
        return self.block

    def __repr__(self) -> str:
        return f"<arg {self.index}: {self.type}>"


class Operation:
    """`%r = "dialect.op"(%a, %b) ({regions}) {attrs} : (types) -> types loc(...)`."""

    def __init__(
        self,
        name: str,
        operands: Sequence[Value] = (),
        result_types: Sequence[Type] = (),
        attributes: dict[str, Any] | None = None,
        regions: Sequence["Region"] = (),
        loc: Location = UNKNOWN_LOC,
    ):
        self.name = name
        self._operands: list[Value] = []
        self.results = [OpResult(t, self, i) for i, t in enumerate(result_types)]
        self.attributes: dict[str, Attribute] = {k: to_attr(v) for k, v in (attributes or {}).items()}
        self.regions: list[Region] = []
        self.parent: Block | None = None
        self.loc = loc
        for value in operands:
            self._append_operand(value)
        for region in regions:
            self.add_region(region)

    # -- operands -------------------------------------------------------------------------
    @property
    def operands(self) -> tuple[Value, ...]:
        return tuple(self._operands)

    def _append_operand(self, value: Value) -> None:
        if not isinstance(value, Value):
            raise TypeError(f"operand of {self.name} must be a Value, got {value!r}")
        value.uses.append(Use(self, len(self._operands)))
        self._operands.append(value)

    def set_operand(self, index: int, value: Value) -> None:
        old = self._operands[index]
        old.uses.remove(Use(self, index))
        self._operands[index] = value
        value.uses.append(Use(self, index))

    def set_operands(self, values: Sequence[Value]) -> None:
        self.drop_operands()
        for value in values:
            self._append_operand(value)

    def drop_operands(self) -> None:
        for i, value in enumerate(self._operands):
            value.uses.remove(Use(self, i))
        self._operands = []

    @property
    def operand_types(self) -> list[Type]:
        return [v.type for v in self._operands]

    @property
    def result_types(self) -> list[Type]:
        return [r.type for r in self.results]

    @property
    def result(self) -> OpResult:
        """The single result of a one-result op."""
        assert len(self.results) == 1, f"{self.name} has {len(self.results)} results"
        return self.results[0]

    # -- attributes -----------------------------------------------------------------------
    def attr(self, name: str, default: Any = None) -> Any:
        """The Python value of attribute `name` (or `default` if absent)."""
        attribute = self.attributes.get(name)
        return default if attribute is None else attribute.value

    def set_attr(self, name: str, value: Any) -> None:
        self.attributes[name] = to_attr(value)

    # -- regions and nesting --------------------------------------------------------------
    def add_region(self, region: "Region") -> "Region":
        region.parent = self
        self.regions.append(region)
        return region

    @property
    def parent_op(self) -> "Operation | None":
        return self.parent.parent_op if self.parent is not None else None

    def walk(self) -> Iterator["Operation"]:
        """This op and every op nested in it, in pre-order."""
        yield self
        for region in self.regions:
            for block in region.blocks:
                for op in list(block.ops):
                    yield from op.walk()

    def is_ancestor_of(self, other: "Operation") -> bool:
        while other is not None:
            if other is self:
                return True
            other = other.parent_op
        return False

    # -- mutation -------------------------------------------------------------------------
    def erase(self) -> None:
        """Remove this op from its block; its results must be unused."""
        for result in self.results:
            assert not result.uses, f"erasing {self.name} whose result still has uses"
        for region in self.regions:
            for block in region.blocks:
                for op in reversed(block.ops):
                    op.drop_operands()
        self.drop_operands()
        if self.parent is not None:
            self.parent.ops.remove(self)
            self.parent = None

    def replace_all_uses_with(self, values: Sequence[Value]) -> None:
        assert len(values) == len(self.results), f"{self.name}: {len(values)} replacements for {len(self.results)} results"
        for old, new in zip(self.results, values):
            old.replace_all_uses_with(new)

    def clone(self, mapping: dict[Value, Value] | None = None) -> "Operation":
        """A deep copy; operands are remapped through `mapping`, which is extended with the clone's results."""
        mapping = {} if mapping is None else mapping
        new = Operation(
            self.name,
            [mapping.get(v, v) for v in self._operands],
            [r.type for r in self.results],
            dict(self.attributes),
            loc=self.loc,
        )
        for region in self.regions:
            new.add_region(region.clone(mapping))
        for old, res in zip(self.results, new.results):
            mapping[old] = res
        return new

    def __repr__(self) -> str:
        return f"<op {self.name} at {self.loc}>"


class Block:
    def __init__(self, arg_types: Iterable[Type] = ()):
        self.args: list[BlockArgument] = []
        self.ops: list[Operation] = []
        self.parent: Region | None = None
        for t in arg_types:
            self.add_arg(t)

    def add_arg(self, type: Type) -> BlockArgument:
        arg = BlockArgument(type, self, len(self.args))
        self.args.append(arg)
        return arg

    def erase_arg(self, index: int) -> None:
        assert not self.args[index].uses, "erasing a block argument that is still used"
        del self.args[index]
        for i, arg in enumerate(self.args):
            arg.index = i

    @property
    def parent_op(self) -> Operation | None:
        return self.parent.parent if self.parent is not None else None

    def append(self, op: Operation) -> Operation:
        return self.insert(len(self.ops), op)

    def insert(self, index: int, op: Operation) -> Operation:
        assert op.parent is None, f"{op.name} is already in a block"
        op.parent = self
        self.ops.insert(index, op)
        return op

    def insert_before(self, anchor: Operation, op: Operation) -> Operation:
        return self.insert(self.ops.index(anchor), op)

    @property
    def terminator(self) -> Operation | None:
        return self.ops[-1] if self.ops else None

    def clone(self, mapping: dict[Value, Value]) -> "Block":
        new = Block()
        for arg in self.args:
            mapping[arg] = new.add_arg(arg.type)
        for op in self.ops:
            new.append(op.clone(mapping))
        return new


class Region:
    def __init__(self, blocks: Iterable[Block] = ()):
        self.blocks: list[Block] = []
        self.parent: Operation | None = None
        for block in blocks:
            self.add_block(block)

    def add_block(self, block: Block) -> Block:
        block.parent = self
        self.blocks.append(block)
        return block

    @property
    def block(self) -> Block:
        """The single block of a single-block region."""
        assert len(self.blocks) == 1
        return self.blocks[0]

    def clone(self, mapping: dict[Value, Value]) -> "Region":
        return Region(block.clone(mapping) for block in self.blocks)


# -- functions and modules ----------------------------------------------------------------


class Module(Operation):
    """`builtin.module`: a list of `func.func` ops, plus helpers to find and print them."""

    def __init__(self, loc: Location = UNKNOWN_LOC, attributes: dict[str, Any] | None = None):
        super().__init__("builtin.module", attributes=attributes, regions=[Region([Block()])], loc=loc)

    @property
    def body(self) -> Block:
        return self.regions[0].block

    @property
    def functions(self) -> list[Operation]:
        return [op for op in self.body.ops if op.name == "func.func"]

    def function(self, name: str | None = None) -> Operation:
        """The function called `name`, or the only (else the `main`) function when no name is given."""
        functions = self.functions
        if name is None:
            if len(functions) == 1:
                return functions[0]
            name = "main"
        for fn in functions:
            if fn.attr("sym_name") == name:
                return fn
        from lutc.diagnostics import LutcError

        known = ", ".join(f"'{f.attr('sym_name')}'" for f in functions) or "none"
        raise LutcError(f"no function named '{name}' in the module (functions: {known})")

    def clone(self, mapping: dict[Value, Value] | None = None) -> "Module":
        new = Module(loc=self.loc, attributes=dict(self.attributes))
        mapping = {} if mapping is None else mapping
        for op in self.body.ops:
            new.body.append(op.clone(mapping))
        return new

    def __str__(self) -> str:
        from lutc.ir.printer import print_module

        return print_module(self)


def make_function(name: str, input_types: Sequence[Type], loc: Location = UNKNOWN_LOC) -> Operation:
    """A `func.func` with an entry block whose arguments have `input_types`.

    The function type's results are set by `set_function_results` when the body is complete.
    """
    fn = Operation(
        "func.func",
        attributes={"sym_name": name, "function_type": FunctionType(tuple(input_types), ())},
        regions=[Region([Block(input_types)])],
        loc=loc,
    )
    return fn


def function_body(fn: Operation) -> Block:
    return fn.regions[0].block


def function_return(fn: Operation) -> Operation:
    return function_body(fn).ops[-1]


def sync_function_type(fn: Operation) -> None:
    """Set `function_type` from the entry block's arguments and the `func.return` operands."""
    body = function_body(fn)
    results = tuple(v.type for v in function_return(fn).operands) if body.ops else ()
    fn.set_attr("function_type", FunctionType(tuple(a.type for a in body.args), results))


def ranked(value: Value) -> TensorType:
    """The tensor type of a value (every value in the graph dialect is a ranked tensor)."""
    assert isinstance(value.type, TensorType), f"{value} is not a tensor"
    return value.type
