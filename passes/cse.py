"""`cse`: common-subexpression elimination of pure ops within a block."""

from __future__ import annotations

from dataclasses import dataclass

from lutc.ir.core import Block, Module, Operation
from lutc.ir.opdef import Trait, lookup
from lutc.passes.pass_manager import Pass, register_pass


def op_key(op: Operation) -> tuple | None:
    """What makes two ops interchangeable: name, operands, attributes, result types."""
    opdef = lookup(op.name)
    if opdef is None or not opdef.has(Trait.PURE) or op.regions:
        return None
    return (
        op.name,
        tuple(id(v) for v in op.operands),
        tuple(sorted(op.attributes.items(), key=lambda kv: kv[0])),
        tuple(op.result_types),
    )


def eliminate_common_subexpressions(block: Block) -> int:
    seen: dict[tuple, Operation] = {}
    replaced = 0
    for op in list(block.ops):
        for region in op.regions:
            for inner in region.blocks:
                replaced += eliminate_common_subexpressions(inner)
        key = op_key(op)
        if key is None:
            continue
        existing = seen.get(key)
        if existing is None:
            seen[key] = op
            continue
        op.replace_all_uses_with(existing.results)
        op.erase()
        replaced += 1
    return replaced


@register_pass
@dataclass
class CommonSubexpressionElimination(Pass):
    name = "cse"
    summary = "Merge identical pure operations (same name, operands, attributes and result types)."

    def run(self, module: Module) -> None:
        eliminate_common_subexpressions(module.body)
