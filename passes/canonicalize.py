"""`canonicalize`: local simplifications, one small pattern per rule.

Algebraic identities only fire when the replacement has exactly the op's result type
(x + zeros(broadcast shape) must keep its broadcast), so they never change a shape.
"""

from __future__ import annotations

from dataclasses import dataclass

from lutc.ir.core import Module, Operation
from lutc.ir.opdef import Trait, lookup
from lutc.passes.matchers import constant_value, defining_op, is_splat_of
from lutc.passes.pass_manager import Pass, register_pass
from lutc.passes.rewriter import PatternRewriter, RewritePattern, apply_patterns_greedily


class IdentityOperand(RewritePattern):
    """`op(x, neutral) -> x`, e.g. x + 0, x * 1, x / 1 (and neutral on the left if commutative)."""

    def __init__(self, root: str, neutral: float, commutative: bool):
        self.root = root  # type: ignore[misc]
        self.neutral = neutral
        self.commutative = commutative

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        lhs, rhs = op.operands
        candidates = [(lhs, rhs)] + ([(rhs, lhs)] if self.commutative else [])
        for kept, neutral in candidates:
            if is_splat_of(neutral, self.neutral) and kept.type == op.result.type:
                rewriter.replace_op(op, kept)
                return True
        return False


class ConstantToRight(RewritePattern):
    """Commutative ops keep a constant operand on the right, so identical ops look identical to CSE."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        opdef = lookup(op.name)
        if opdef is None or not opdef.has(Trait.COMMUTATIVE) or len(op.operands) != 2:
            return False
        lhs, rhs = op.operands
        if defining_op(lhs, "graph.constant") and not defining_op(rhs, "graph.constant"):
            op.set_operands([rhs, lhs])
            rewriter.modified(op)
            return True
        return False


class ReshapeOfReshape(RewritePattern):
    root = "graph.reshape"

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        inner = defining_op(op.operands[0], "graph.reshape")
        if inner is None:
            return False
        rewriter.replace_op(op, rewriter.op("graph.reshape", inner.operands[0], shape=op.attr("shape")))
        return True


class NoOpReshape(RewritePattern):
    root = "graph.reshape"

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        source = op.operands[0]
        if source.type != op.result.type or not source.type.is_static:
            return False
        rewriter.replace_op(op, source)
        return True


class TransposeOfTranspose(RewritePattern):
    root = "graph.transpose"

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        inner = defining_op(op.operands[0], "graph.transpose")
        if inner is None:
            return False
        outer_perm, inner_perm = op.attr("perm"), inner.attr("perm")
        composed = [inner_perm[p] for p in outer_perm]
        rewriter.replace_op(op, rewriter.op("graph.transpose", inner.operands[0], perm=composed))
        return True


class IdentityTranspose(RewritePattern):
    root = "graph.transpose"

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        if list(op.attr("perm")) != list(range(len(op.attr("perm")))):
            return False
        rewriter.replace_op(op, op.operands[0])
        return True


class NoOpCast(RewritePattern):
    root = "graph.cast"

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        if op.operands[0].type != op.result.type:
            return False
        rewriter.replace_op(op, op.operands[0])
        return True


class Involution(RewritePattern):
    """`f(f(x)) -> x` for f = neg."""

    def __init__(self, root: str):
        self.root = root  # type: ignore[misc]

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        inner = defining_op(op.operands[0], self.root)
        if inner is None:
            return False
        rewriter.replace_op(op, inner.operands[0])
        return True


class ReshapeOfConstant(RewritePattern):
    """Reshaping a constant is a constant (cheap at any size: no data is computed)."""

    root = "graph.reshape"

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        value = constant_value(op.operands[0])
        if value is None or not op.result.type.is_static:
            return False
        rewriter.replace_op(op, rewriter.constant(value.reshape(op.result.type.shape), op.result.type.element))
        return True


def canonicalization_patterns() -> list[RewritePattern]:
    return [
        IdentityOperand("graph.add", 0.0, commutative=True),
        IdentityOperand("graph.sub", 0.0, commutative=False),
        IdentityOperand("graph.mul", 1.0, commutative=True),
        IdentityOperand("graph.div", 1.0, commutative=False),
        IdentityOperand("graph.pow", 1.0, commutative=False),
        ConstantToRight(),
        ReshapeOfReshape(),
        NoOpReshape(),
        ReshapeOfConstant(),
        TransposeOfTranspose(),
        IdentityTranspose(),
        NoOpCast(),
        Involution("graph.neg"),
    ]


@register_pass
@dataclass
class Canonicalize(Pass):
    name = "canonicalize"
    summary = "Local simplifications (x+0, x*1, reshape of reshape, transpose of transpose...) and dead-code removal."

    def run(self, module: Module) -> None:
        apply_patterns_greedily(module, canonicalization_patterns())
