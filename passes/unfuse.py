"""`unfuse`: inline every `graph.fused` op back into its block (the inverse of fuse-ops).

The members are cloned in place of the fused op, block arguments replaced by the fused op's
operands and its results by the yielded values, so `fuse-ops,unfuse` gives back the flat
graph (in a valid order; contiguous groups come back exactly where they were).
"""

from __future__ import annotations

from dataclasses import dataclass

from lutc.ir.core import Module, Operation, Value
from lutc.passes.pass_manager import Pass, register_pass


def inline_fused(fused: Operation) -> None:
    block = fused.regions[0].block
    mapping: dict[Value, Value] = dict(zip(block.args, fused.operands))
    *body, terminator = block.ops
    for op in body:
        fused.parent.insert_before(fused, op.clone(mapping))
    fused.replace_all_uses_with([mapping.get(v, v) for v in terminator.operands])
    fused.erase()


@register_pass
@dataclass
class Unfuse(Pass):
    name = "unfuse"
    summary = "Inline graph.fused ops back into their blocks."

    def run(self, module: Module) -> None:
        # Outermost groups first; groups nested in them are cloned out and found on the next round.
        while True:
            outermost = [
                op for op in module.walk()
                if op.name == "graph.fused" and (op.parent_op is None or op.parent_op.name != "graph.fused")
            ]
            if not outermost:
                return
            for fused in outermost:
                inline_fused(fused)
