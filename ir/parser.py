"""Parse MLIR generic syntax into lutc IR.

A recursive-descent parser over the raw text (the grammar is small, and working on
characters keeps every error's line and column exact). Errors are `ParseError`s that
carry `file:line:col` and the source line, printed with a caret.
"""

from __future__ import annotations

import bisect
import re

import numpy as np

from lutc.diagnostics import Location, ParseError
from lutc.ir.attributes import (
    ELIDED,
    ArrayAttr,
    Attribute,
    BoolAttr,
    DenseArrayAttr,
    DenseAttr,
    DenseResourceAttr,
    FloatAttr,
    IntAttr,
    Resource,
    StringAttr,
    TypeAttr,
    UnitAttr,
)
from lutc.ir.core import Block, Module, Operation, Region, Value
from lutc.ir.types import (
    ELEMENT_TYPES,
    ElementType,
    FunctionType,
    TensorType,
    Type,
    f32,
    f64,
    i64,
)

_WS = re.compile(r"(?:\s+|//[^\n]*)+")
_VALUE_ID = re.compile(r"%([A-Za-z0-9_$.\-]+)(?:#(\d+))?")
_BLOCK_ID = re.compile(r"\^([A-Za-z0-9_$.\-]+)")
_BARE_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_$.\-]*")
_NUMBER = re.compile(r"[-+]?(?:0x[0-9A-Fa-f]+|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)")
_STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
_DIM = re.compile(r"(\?|\d+)x")
_TENSOR_TYPES: dict[str, TensorType] = {}
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


def unescape(body: str) -> str:
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
        elif body[i + 1] in _ESCAPES:
            out.append(_ESCAPES[body[i + 1]])
            i += 2
        else:  # \XX: a hex-coded byte
            out.append(chr(int(body[i + 1 : i + 3], 16)))
            i += 3
    return "".join(out)


class Parser:
    def __init__(self, text: str, filename: str = "<string>", line_offset: int = 0):
        self.text = text
        self.filename = filename
        self.line_offset = line_offset  # for --split-input-file chunks: report original lines
        self.pos = 0
        # Offsets of line starts, so that positions map to line:col in O(log n).
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        # Resources referenced by name, filled in from the dialect_resources section.
        self.resource_refs: dict[str, list[tuple[Resource, TensorType, int]]] = {}

    # -- errors and positions -------------------------------------------------------------
    def location(self, pos: int | None = None) -> Location:
        pos = self.pos if pos is None else pos
        line = bisect.bisect_right(self.line_starts, pos) - 1
        return Location(self.filename, line + 1 + self.line_offset, pos - self.line_starts[line] + 1)

    def error(self, message: str, pos: int | None = None) -> ParseError:
        pos = self.pos if pos is None else pos
        start = self.text.rfind("\n", 0, pos) + 1
        end = self.text.find("\n", pos)
        source_line = self.text[start : end if end != -1 else len(self.text)]
        return ParseError(message, self.location(pos), source_line=source_line)

    # -- lexing helpers -------------------------------------------------------------------
    def skip(self) -> None:
        m = _WS.match(self.text, self.pos)
        if m:
            self.pos = m.end()

    def at_end(self) -> bool:
        self.skip()
        return self.pos >= len(self.text)

    def peek(self, token: str) -> bool:
        self.skip()
        return self.text.startswith(token, self.pos)

    def accept(self, token: str) -> bool:
        if self.peek(token):
            self.pos += len(token)
            return True
        return False

    def expect(self, token: str, context: str = "") -> None:
        if not self.accept(token):
            found = self.describe_next()
            where = f" {context}" if context else ""
            raise self.error(f"expected '{token}'{where}, found {found}")

    def describe_next(self) -> str:
        self.skip()
        if self.pos >= len(self.text):
            return "end of file"
        m = re.compile(r"\S+").match(self.text, self.pos)
        return f"'{m.group(0)[:20]}'"

    def match(self, pattern: re.Pattern):
        self.skip()
        m = pattern.match(self.text, self.pos)
        if m:
            self.pos = m.end()
        return m

    def sequence(self, parse_item, close: str, what: str) -> list:
        """Items separated by commas up to `close` (the opening token is already consumed)."""
        items: list = []
        if self.accept(close):
            return items
        while True:
            items.append(parse_item())
            if self.accept(close):
                return items
            self.expect(",", f"or '{close}' {what}")

    def string(self, what: str = "a string") -> str:
        m = self.match(_STRING)
        if not m:
            raise self.error(f"expected {what}, found {self.describe_next()}")
        return unescape(m.group(1))

    def bare_id(self, what: str = "an identifier") -> str:
        m = self.match(_BARE_ID)
        if not m:
            raise self.error(f"expected {what}, found {self.describe_next()}")
        return m.group(0)

    def integer(self, what: str = "an integer") -> int:
        self.skip()
        start = self.pos
        m = self.match(_NUMBER)
        if not m or any(c in m.group(0) for c in ".eE") and not m.group(0).lower().startswith(("0x", "-0x")):
            self.pos = start
            raise self.error(f"expected {what}, found {self.describe_next()}")
        return int(m.group(0), 0)

    # -- types ----------------------------------------------------------------------------
    def parse_type(self) -> Type:
        self.skip()
        start = self.pos
        if self.accept("tensor<"):
            return self.tensor_type_body(start)
        if self.peek("("):
            return self.function_type()
        m = self.match(_BARE_ID)
        if m and m.group(0) in ELEMENT_TYPES:
            return ElementType(m.group(0))
        self.pos = start
        raise self.error(f"expected a type, found {self.describe_next()}")

    def tensor_type_body(self, start: int) -> TensorType:
        # Models repeat a few types thousands of times: parse each spelling once.
        end = self.text.find(">", self.pos)
        spelling = self.text[self.pos : end]
        cached = _TENSOR_TYPES.get(spelling)
        if cached is not None:
            self.pos = end + 1
            return cached
        shape: list[int | None] = []
        while True:
            m = _DIM.match(self.text, self.pos)
            if not m:
                break
            shape.append(None if m.group(1) == "?" else int(m.group(1)))
            self.pos = m.end()
        m = _BARE_ID.match(self.text, self.pos)
        if not m or m.group(0) not in ELEMENT_TYPES:
            found = repr(m.group(0)) if m else self.describe_next()
            raise self.error(f"expected an element type ({', '.join(ELEMENT_TYPES)}), found {found}")
        self.pos = m.end()
        self.expect(">", "to close the tensor type")
        result = _TENSOR_TYPES[spelling] = TensorType(tuple(shape), ElementType(m.group(0)))
        return result

    def type_list(self) -> list[Type]:
        self.expect("(")
        return self.sequence(self.parse_type, ")", "in the type list")

    def function_type(self) -> FunctionType:
        inputs = self.type_list()
        self.expect("->", "in a function type")
        results = self.type_list() if self.peek("(") else [self.parse_type()]
        return FunctionType(tuple(inputs), tuple(results))

    # -- attributes -----------------------------------------------------------------------
    def attribute(self) -> Attribute:
        self.skip()
        start = self.pos
        if self.peek('"'):
            return StringAttr(self.string())
        if self.accept("["):
            return ArrayAttr(tuple(self.sequence(self.attribute, "]", "in the array")))
        if self.accept("dense_resource<"):
            return self.dense_resource_body(start)
        if self.accept("dense<"):
            return self.dense_body(start)
        if self.accept("array<"):
            return self.dense_array_body()
        m = _NUMBER.match(self.text, self.pos)
        if m:
            return self.number_attr()
        for word, attr in (("true", BoolAttr(True)), ("false", BoolAttr(False)), ("unit", UnitAttr())):
            if re.compile(word + r"\b").match(self.text, self.pos):
                self.pos += len(word)
                return attr
        try:
            return TypeAttr(self.parse_type())
        except ParseError:
            self.pos = start
            raise self.error(f"expected an attribute value, found {self.describe_next()}") from None

    def number_attr(self) -> Attribute:
        start = self.pos
        text = self.match(_NUMBER).group(0)
        type = None
        if self.accept(":"):
            type = self.parse_type()
            if not isinstance(type, ElementType):
                raise self.error(f"a number's type must be an element type, not {type}", start)
        is_hex = text.lower().lstrip("-+").startswith("0x")
        is_float = not is_hex and any(c in text for c in ".eE")
        if type is None:
            type = f64 if is_float else i64
        if type.is_float:
            return FloatAttr(self.float_value(text, type, start), type)
        if is_float:
            raise self.error(f"a float literal cannot have integer type {type}", start)
        if type.is_bool:
            return BoolAttr(bool(int(text, 0)))
        return IntAttr(int(text, 0), type)

    def float_value(self, text: str, type: ElementType, pos: int) -> float:
        if text.lower().lstrip("-+").startswith("0x"):  # the value's bits, as MLIR spells inf and nan
            bits = int(text, 16)
            if type == f64:
                return float(np.array([bits], dtype=np.uint64).view(np.float64)[0])
            if type == f32:
                return float(np.array([bits], dtype=np.uint32).view(np.float32)[0])
            raise self.error(f"hexadecimal float literals are supported for f32 and f64, not {type}", pos)
        value = float(text)
        return float(type.np_dtype.type(value)) if type != f64 else value

    def dense_array_body(self) -> DenseArrayAttr:
        element = self.parse_type()
        if not isinstance(element, ElementType):
            raise self.error("array<...> holds scalars: expected an element type")
        values: list = []
        if self.accept(":"):
            values.append(self.scalar(element))
            while self.accept(","):
                values.append(self.scalar(element))
        self.expect(">", "to close array<...>")
        return DenseArrayAttr(element, tuple(values))

    def scalar(self, element: ElementType):
        self.skip()
        start = self.pos
        if element.is_bool:
            for word, v in (("true", True), ("false", False)):
                if self.accept(word):
                    return v
        m = self.match(_NUMBER)
        if not m:
            raise self.error(f"expected a {element} value, found {self.describe_next()}")
        text = m.group(0)
        if element.is_float:
            return self.float_value(text, element, start)
        if any(c in text for c in ".eE") and not text.lower().lstrip("-+").startswith("0x"):
            raise self.error(f"expected an integer for element type {element}, found '{text}'", start)
        value = int(text, 0)
        if element.is_bool:
            return bool(value)
        lo, hi = element.int_range()
        if not lo <= value <= hi:
            raise self.error(f"value {value} does not fit in {element} (range {lo}..{hi})", start)
        return value

    def dense_literal(self, element: ElementType):
        if self.accept("["):
            return self.sequence(lambda: self.dense_literal(element), "]", "in the dense literal")
        return self.scalar(element)

    def dense_body(self, start: int) -> DenseAttr:
        # The literal's element type comes after it; scan ahead for it.
        depth, i = 1, self.pos
        while i < len(self.text) and depth:
            depth += {"<": 1, ">": -1}.get(self.text[i], 0)
            i += 1
        saved = self.pos
        self.pos = i
        self.expect(":", "after dense<...>")
        type = self.parse_type()
        end = self.pos
        if not isinstance(type, TensorType):
            raise self.error("a dense attribute needs a tensor type", start)
        if not type.is_static:
            raise self.error(f"a dense attribute needs a static shape, not {type}", start)
        self.pos = saved
        if self.peek('"'):  # dense<"0x...">: raw little-endian bytes
            raw = bytes.fromhex(self.string()[2:])
            array = np.frombuffer(raw, dtype=type.element.np_dtype)
        else:
            array = np.array(self.dense_literal(type.element), dtype=type.element.np_dtype)
        self.expect(">", "to close dense<...>")
        if array.ndim == 0:  # a splat
            array = np.full(type.shape, array, dtype=type.element.np_dtype)
        if array.size != type.num_elements:
            raise self.error(f"dense literal of shape {list(array.shape)} does not match {type}", start)
        array = array.reshape(type.shape)
        self.pos = end
        return DenseAttr(array, type)

    def dense_resource_body(self, start: int) -> DenseResourceAttr:
        name = self.bare_id("a resource name")
        self.expect(">", "to close dense_resource<...>")
        self.expect(":", "after dense_resource<...>")
        type = self.parse_type()
        if not isinstance(type, TensorType) or not type.is_static:
            raise self.error("a dense_resource attribute needs a static tensor type", start)
        if name == ELIDED:
            return DenseResourceAttr(Resource(ELIDED, None), type)
        refs = self.resource_refs.setdefault(name, [])
        resource = refs[0][0] if refs else Resource(name, None)
        refs.append((resource, type, start))
        return DenseResourceAttr(resource, type)

    def attr_dict(self, closing: str = "}") -> dict[str, Attribute]:
        attrs: dict[str, Attribute] = {}
        if self.accept(closing):
            return attrs
        while True:
            self.skip()
            start = self.pos
            key = self.string() if self.peek('"') else self.bare_id("an attribute name")
            if key in attrs:
                raise self.error(f"duplicate attribute '{key}'", start)
            attrs[key] = self.attribute() if self.accept("=") else UnitAttr()
            if self.accept(closing):
                return attrs
            self.expect(",", "or '" + closing + "' in the attribute dictionary")

    # -- operations -----------------------------------------------------------------------
    def location_suffix(self) -> Location | None:
        if not self.accept("loc("):
            return None
        if self.accept("unknown"):
            self.expect(")")
            return Location()
        name = self.string()
        loc = Location(name=name)
        if self.accept(":"):
            line = self.integer("a line number")
            self.expect(":")
            col = self.integer("a column number")
            loc = Location(file=name, line=line, col=col)
        elif self.accept("("):
            file = self.string()
            self.expect(":")
            line = self.integer()
            self.expect(":")
            col = self.integer()
            self.expect(")")
            loc = Location(file=file, line=line, col=col, name=name)
        self.expect(")", "to close loc(...)")
        return loc

    def operation(self, scope: dict[str, Value]) -> Operation:
        result_defs: list[tuple[str, int, int]] = []  # (name, count, position)
        if self.peek("%"):
            while True:
                self.skip()
                pos = self.pos
                m = self.match(_VALUE_ID)
                if not m or m.group(2) is not None:
                    raise self.error("expected a result name like %0", pos)
                count = 1
                if self.peek(":") and not self.peek("::"):
                    self.accept(":")
                    count = self.integer("a result count")
                result_defs.append((m.group(1), count, pos))
                if not self.accept(","):
                    break
            self.expect("=", "after the result names")
        self.skip()
        name_pos = self.pos
        if not self.peek('"'):
            raise self.error(f"expected an operation name in quotes (generic syntax), found {self.describe_next()}")
        name = self.string()
        self.expect("(", f"to start the operands of '{name}'")
        operand_refs = self.sequence(self.operand_ref, ")", "between operands")
        operands = [self.resolve(scope, *ref) for ref in operand_refs]
        attributes: dict[str, Attribute] = {}
        if self.accept("<{"):
            attributes.update(self.attr_dict("}>"))
        regions: list[Region] = []
        if self.peek("(") and self.text.startswith("{", self._after_ws(self.pos + 1)):
            self.expect("(")
            regions.append(self.region(scope))
            while self.accept(","):
                regions.append(self.region(scope))
            self.expect(")", "to close the region list")
        if self.accept("{"):
            for key, value in self.attr_dict().items():
                if key in attributes:
                    raise self.error(f"attribute '{key}' given twice")
                attributes[key] = value
        self.expect(":", f"and the type of '{name}'")
        type_pos = self.pos
        ftype = self.function_type()
        loc = self.location_suffix() or self.location(name_pos)
        if len(ftype.inputs) != len(operands):
            raise self.error(f"'{name}' has {len(operands)} operands but its type lists {len(ftype.inputs)}", type_pos)
        for (ref_name, _, pos), value, declared in zip(operand_refs, operands, ftype.inputs):
            if value.type != declared:
                raise self.error(
                    f"use of value '%{ref_name}' as {declared}, but it has type {value.type}", pos
                )
        n_results = sum(count for _, count, _ in result_defs)
        if n_results != len(ftype.results):
            raise self.error(f"'{name}' defines {n_results} results but its type lists {len(ftype.results)}", type_pos)
        op = Operation(name, operands, ftype.results, attributes, regions, loc=loc)
        index = 0
        for res_name, count, pos in result_defs:
            if res_name in scope:
                raise self.error(f"redefinition of SSA value '%{res_name}'", pos)
            if count == 1:
                scope[res_name] = op.results[index]
            else:
                for k in range(count):
                    scope[f"{res_name}#{k}"] = op.results[index + k]
                scope[res_name] = op.results[index]
            index += count
        return op

    def operand_ref(self) -> tuple[str, int | None, int]:
        """`%name` or `%name#index`, with its position."""
        self.skip()
        pos = self.pos
        m = self.match(_VALUE_ID)
        if not m:
            raise self.error(f"expected an operand (%name), found {self.describe_next()}")
        return m.group(1), int(m.group(2)) if m.group(2) else None, pos

    def block_argument(self, block: Block, scope: dict[str, Value]) -> None:
        self.skip()
        pos = self.pos
        m = self.match(_VALUE_ID)
        if not m:
            raise self.error(f"expected a block argument (%name), found {self.describe_next()}")
        self.expect(":", "after the block argument name")
        arg = block.add_arg(self.parse_type())
        if m.group(1) in scope:
            raise self.error(f"redefinition of SSA value '%{m.group(1)}'", pos)
        scope[m.group(1)] = arg

    def _after_ws(self, pos: int) -> int:
        m = _WS.match(self.text, pos)
        return m.end() if m else pos

    def resolve(self, scope: dict[str, Value], name: str, index: int | None, pos: int) -> Value:
        key = name if index is None else f"{name}#{index}"
        value = scope.get(key)
        if value is None:
            if index is not None and name in scope:
                raise self.error(f"result number {index} out of range for '%{name}'", pos)
            raise self.error(f"use of undefined value '%{key}'", pos)
        return value

    def region(self, scope: dict[str, Value]) -> Region:
        self.expect("{", "to start a region")
        # A nested region sees the enclosing scope, except inside functions (isolated from above).
        inner = dict(scope)
        region = Region()
        first = True
        while not self.accept("}"):
            if self.at_end():
                raise self.error("unexpected end of file: a region is not closed with '}'")
            block = Block()
            if self.peek("^"):
                self.match(_BLOCK_ID)
                if self.accept("("):
                    self.sequence(lambda: self.block_argument(block, inner), ")", "between block arguments")
                self.expect(":", "after the block label")
            elif not first:
                raise self.error("expected a block label (^bbN)")
            first = False
            region.add_block(block)
            while not self.peek("}") and not self.peek("^"):
                if self.at_end():
                    raise self.error("unexpected end of file: a region is not closed with '}'")
                is_function = self.peek('"func.func"')
                block.append(self.operation({} if is_function else inner))
        return region

    # -- the file -------------------------------------------------------------------------
    def resources_section(self) -> None:
        self.expect("{-#")
        while not self.accept("#-}"):
            section = self.bare_id("'dialect_resources' or 'external_resources'")
            self.expect(":")
            self.expect("{")
            while not self.accept("}"):
                dialect = self.bare_id("a dialect name")
                self.expect(":")
                self.expect("{")
                while not self.accept("}"):
                    pos = self.pos
                    key = self.bare_id("a resource name")
                    self.expect(":")
                    blob_pos = self.pos
                    blob = self.string("a hex blob")
                    if section == "dialect_resources" and dialect == "builtin":
                        self.fill_resource(key, blob, blob_pos)
                    del pos
                    self.accept(",")
                self.accept(",")
            self.accept(",")

    def fill_resource(self, name: str, blob: str, pos: int) -> None:
        refs = self.resource_refs.get(name)
        if not refs:
            return  # an unused blob is harmless, as in MLIR
        if not blob.startswith("0x") or len(blob) < 10:
            raise self.error(f"resource '{name}' is not a hex blob (\"0x\" + alignment + data)", pos)
        try:
            raw = bytes.fromhex(blob[10:])
        except ValueError:
            raise self.error(f"resource '{name}' has invalid hex data", pos) from None
        resource, type, _ = refs[0]
        expected = type.num_elements * type.element.np_dtype.itemsize
        if len(raw) != expected:
            raise self.error(f"resource '{name}' has {len(raw)} bytes, but {type} needs {expected}", pos)
        array = np.frombuffer(raw, dtype=type.element.np_dtype.newbyteorder("<")).astype(type.element.np_dtype)
        resource.data = array.reshape(type.shape)
        resource.data.setflags(write=False)

    def parse_module(self) -> Module:
        ops: list[Operation] = []
        scope: dict[str, Value] = {}
        while not self.at_end() and not self.peek("{-#"):
            ops.append(self.operation({} if self.peek('"func.func"') else scope))
        if self.peek("{-#"):
            self.resources_section()
        if not self.at_end():
            raise self.error(f"unexpected {self.describe_next()} after the module")
        for name, refs in self.resource_refs.items():
            if refs[0][0].data is None:
                raise self.error(f"resource '{name}' is referenced but not defined in dialect_resources", refs[0][2])
        if len(ops) == 1 and ops[0].name == "builtin.module":
            return as_module(ops[0])
        module = Module()
        for op in ops:
            module.body.append(op)
        return module


def as_module(op: Operation) -> Module:
    """Rebuild a parsed `builtin.module` op as a `Module` (moving its body)."""
    module = Module(loc=op.loc, attributes=dict(op.attributes))
    if op.regions and op.regions[0].blocks:
        for inner in list(op.regions[0].blocks[0].ops):
            op.regions[0].blocks[0].ops.remove(inner)
            inner.parent = None
            module.body.append(inner)
    return module


def parse(text: str, filename: str = "<string>", *, line_offset: int = 0) -> Module:
    """Parse IR text into a Module (not yet verified: see `lutc.ir.verify`)."""
    return Parser(text, filename, line_offset).parse_module()
