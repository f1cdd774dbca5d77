"""Print IR in MLIR's generic syntax.

The output is valid MLIR (it parses with `mlir-opt --allow-unregistered-dialect` and with
xDSL), and `parse(print(m))` prints the same text again. Values are renamed in order of
definition: `%argN` for block arguments, `%N` for op results, numbered per function.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from lutc.ir.attributes import (
    ELIDED,
    Attribute,
    DenseResourceAttr,
    Resource,
    UnitAttr,
    escape_string,
)
from lutc.ir.core import Block, Module, Operation, Region, Value

BARE_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_$.]*$")
INDENT = "  "


def attr_key(name: str) -> str:
    return name if BARE_ID.match(name) else escape_string(name)


@dataclass
class PrintOptions:
    elide_constants: bool = False   # dense_resource<__elided__>, no blobs (for golden tests)
    print_locations: bool = False   # append loc(...) to each op


@dataclass
class _Namer:
    """SSA names for one isolated scope (a function)."""

    names: dict[int, str] = field(default_factory=dict)
    next_result: int = 0
    next_arg: int = 0

    def name_block_args(self, block: Block) -> None:
        for arg in block.args:
            self.names[id(arg)] = f"%arg{self.next_arg}"
            self.next_arg += 1

    def name_results(self, op: Operation) -> None:
        if len(op.results) == 1:
            self.names[id(op.results[0])] = f"%{self.next_result}"
        else:
            for i, r in enumerate(op.results):
                self.names[id(r)] = f"%{self.next_result}#{i}"
        if op.results:
            self.next_result += 1


class Printer:
    def __init__(self, options: PrintOptions | None = None):
        self.options = options or PrintOptions()
        self.lines: list[str] = []
        self.resources: dict[str, Resource] = {}   # printed name -> resource
        self._resource_names: dict[int, str] = {}  # id(resource) -> printed name

    # -- values and attributes ------------------------------------------------------------
    def value_name(self, namer: _Namer, value: Value) -> str:
        name = namer.names.get(id(value))
        # A value from outside the printed scope (possible only in invalid IR) still prints.
        return name if name is not None else "%<<UNKNOWN>>"

    def resource_name(self, resource: Resource) -> str:
        if self.options.elide_constants or resource.data is None:
            return ELIDED
        key = id(resource)
        if key not in self._resource_names:
            base = re.sub(r"[^A-Za-z0-9_.]", "_", resource.name) or "cst"
            if not re.match(r"[A-Za-z_]", base):
                base = "_" + base
            name, n = base, 0
            while name in self.resources:
                n += 1
                name = f"{base}_{n}"
            self.resources[name] = resource
            self._resource_names[key] = name
        return self._resource_names[key]

    def attribute(self, attr: Attribute) -> str:
        if isinstance(attr, DenseResourceAttr):
            return f"dense_resource<{self.resource_name(attr.resource)}> : {attr.type}"
        return str(attr)

    def attr_dict(self, attributes: dict[str, Attribute]) -> str:
        items = []
        for key in sorted(attributes):
            attr = attributes[key]
            items.append(attr_key(key) if isinstance(attr, UnitAttr) else f"{attr_key(key)} = {self.attribute(attr)}")
        return "{" + ", ".join(items) + "}"

    # -- operations -----------------------------------------------------------------------
    def op(self, op: Operation, namer: _Namer | None, depth: int) -> str:
        if op.name == "func.func" or namer is None:
            namer = _Namer()  # functions are isolated from above: names restart
        namer.name_results(op)
        prefix = ""
        if op.results:
            first = namer.names[id(op.results[0])].split("#")[0]
            prefix = f"{first} = " if len(op.results) == 1 else f"{first}:{len(op.results)} = "
        operands = ", ".join(self.value_name(namer, v) for v in op.operands)
        text = f"{INDENT * depth}{prefix}{escape_string(op.name)}({operands})"
        if op.regions:
            text += " (" + ", ".join(self.region(r, namer, depth) for r in op.regions) + ")"
        return text + self.op_tail(op)

    def op_tail(self, op: Operation) -> str:
        attrs = f" {self.attr_dict(op.attributes)}" if op.attributes else ""
        ins = ", ".join(str(v.type) for v in op.operands)
        outs = [str(r.type) for r in op.results]
        result_text = outs[0] if len(outs) == 1 and not outs[0].startswith("(") else "(" + ", ".join(outs) + ")"
        loc = f" {op.loc.mlir()}" if self.options.print_locations else ""
        return f"{attrs} : ({ins}) -> {result_text}{loc}"

    def region(self, region: Region, namer: _Namer, depth: int) -> str:
        """`{` + blocks + `}`: block labels at the op's indentation, ops one level deeper."""
        lines = ["{"]
        for index, block in enumerate(region.blocks):
            namer.name_block_args(block)
            if block.args or index > 0:
                args = ", ".join(f"{namer.names[id(a)]}: {a.type}" for a in block.args)
                lines.append(f"{INDENT * depth}^bb{index}" + (f"({args})" if block.args else "") + ":")
            lines.extend(self.op(op, namer, depth + 1) for op in block.ops)
        lines.append(f"{INDENT * depth}}}")
        return "\n".join(lines)

    # -- the whole file -------------------------------------------------------------------
    def module(self, module: Operation) -> str:
        text = self.op(module, None, 0)
        if self.resources:
            blobs = [f'      {name}: "{encode_blob(res.data)}"' for name, res in self.resources.items()]
            text += "\n{-#\n  dialect_resources: {\n    builtin: {\n" + ",\n".join(blobs) + "\n    }\n  }\n#-}"
        return text + "\n"


def encode_blob(array: np.ndarray) -> str:
    """MLIR's resource blob: a 4-byte little-endian alignment, then the raw little-endian bytes."""
    data = np.ascontiguousarray(array)
    if data.dtype.byteorder == ">":
        data = data.byteswap().view(data.dtype.newbyteorder("<"))
    alignment = max(data.dtype.itemsize, 1)
    return "0x" + alignment.to_bytes(4, "little").hex().upper() + data.tobytes().hex().upper()


def print_module(module: Operation, *, elide_constants: bool = False, print_locations: bool = False) -> str:
    return Printer(PrintOptions(elide_constants, print_locations)).module(module)


def print_op(op: Operation) -> str:
    """One op (with its regions) for messages and debugging; not a full file."""
    return Printer(PrintOptions(elide_constants=True)).op(op, None, 0)
