"""`fold-constants`: evaluate pure ops whose operands are all constants, through the
reference interpreter, and replace them with constants."""

from __future__ import annotations

from dataclasses import dataclass

from lutc.ir.core import Module, Operation
from lutc.ir.interpreter import Interpreter
from lutc.ir.opdef import Trait, lookup
from lutc.passes.matchers import constant_value
from lutc.passes.pass_manager import Pass, register_pass
from lutc.passes.rewriter import PatternRewriter, RewritePattern, apply_patterns_greedily


class FoldConstantOperands(RewritePattern):
    def __init__(self, interpreter: Interpreter, size_limit: int):
        self.interpreter = interpreter
        self.size_limit = size_limit

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        opdef = lookup(op.name)
        if opdef is None or not opdef.has(Trait.PURE) or opdef.has(Trait.CONSTANT_LIKE) or op.regions:
            return False
        if not op.operands or not all(r.type.is_static for r in op.results):
            return False
        if any(r.type.num_elements > self.size_limit for r in op.results):
            return False  # folding would bloat the module with a large constant
        values = [constant_value(v) for v in op.operands]
        if any(v is None for v in values):
            return False
        results = self.interpreter.evaluate(op, values)
        rewriter.replace_op(
            op,
            [rewriter.constant(v, r.type.element, name=f"folded_{op.name.split('.')[-1]}") for v, r in zip(results, op.results)],
        )
        return True


@register_pass
@dataclass
class FoldConstants(Pass):
    name = "fold-constants"
    summary = "Evaluate operations whose operands are all constant (results up to size-limit elements)."
    size_limit: int = 1 << 16

    def run(self, module: Module) -> None:
        apply_patterns_greedily(module, [FoldConstantOperands(Interpreter(module), self.size_limit)])
