"""`dce`: erase pure ops whose results are never used."""

from __future__ import annotations

from dataclasses import dataclass

from lutc.ir.core import Block, Module
from lutc.passes.pass_manager import Pass, register_pass
from lutc.passes.rewriter import is_trivially_dead


def eliminate_dead_code(block: Block) -> int:
    """Erase dead ops in `block` (and nested blocks), walking backwards so chains die at once."""
    erased = 0
    for op in reversed(list(block.ops)):
        for region in op.regions:
            for inner in region.blocks:
                erased += eliminate_dead_code(inner)
        if is_trivially_dead(op):
            op.erase()
            erased += 1
    return erased


@register_pass
@dataclass
class DeadCodeElimination(Pass):
    name = "dce"
    summary = "Erase pure operations whose results are unused."

    def run(self, module: Module) -> None:
        eliminate_dead_code(module.body)
