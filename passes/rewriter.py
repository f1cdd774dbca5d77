"""Pattern rewriting: `RewritePattern.match_and_rewrite(op, rewriter)` and a greedy driver
that applies a set of patterns until nothing changes (as MLIR's greedy rewrite driver).

The driver also erases pure ops whose results are unused, so patterns only build the
replacement and leave the dead producers to it.
"""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar, Iterable, Sequence

import numpy as np

from lutc.diagnostics import LutcError
from lutc.ir.builder import Builder
from lutc.ir.core import Module, Operation, Value
from lutc.ir.opdef import Trait, lookup
from lutc.ir.types import ElementType, Type


class RewritePattern:
    """Matches ops named `root` (any op if None); `match_and_rewrite` returns True if it changed the IR.

    Keep the structural match (is this the shape we rewrite?) apart from the semantic
    check (is it legal here?), as TVM's pattern language does: match first, check next,
    and only then touch the IR.
    """

    root: ClassVar[str | None] = None

    def match_and_rewrite(self, op: Operation, rewriter: "PatternRewriter") -> bool:
        raise NotImplementedError


class PatternRewriter:
    """What a pattern may do to the IR. New ops go just before the op being rewritten."""

    def __init__(self, driver: "GreedyRewriteDriver"):
        self.driver = driver
        self.current: Operation | None = None

    # -- creating ops ---------------------------------------------------------------------
    def create(
        self,
        name: str,
        operands: Sequence[Value] = (),
        attributes: dict[str, Any] | None = None,
        result_types: Sequence[Type] | None = None,
        regions=(),
    ) -> Operation:
        op = Builder.before(self.current).create(name, operands, attributes, result_types, regions, loc=self.current.loc)
        self.driver.add(op)
        return op

    def op(self, name: str, *operands: Value, **attributes: Any) -> Value:
        return self.create(name, operands, attributes).result

    def constant(self, array: np.ndarray, element: ElementType | None = None, name: str = "cst") -> Value:
        op = Builder.before(self.current).constant(array, element, name).op
        self.driver.add(op)
        return op.result

    # -- changing ops ---------------------------------------------------------------------
    def replace_op(self, op: Operation, new_values: Value | Sequence[Value]) -> None:
        if isinstance(new_values, Value):
            new_values = [new_values]
        for old, new in zip(op.results, new_values):
            self.replace_all_uses_with(old, new)
        self.erase_op(op)

    def replace_all_uses_with(self, old: Value, new: Value) -> None:
        for user in old.users:
            self.driver.add(user)
        old.replace_all_uses_with(new)
        self.driver.changed = True

    def erase_op(self, op: Operation) -> None:
        for value in op.operands:
            if isinstance(getattr(value, "op", None), Operation):
                self.driver.add(value.op)  # its producer may now be dead
        op.erase()
        self.driver.changed = True

    def modified(self, op: Operation) -> None:
        """Call after changing `op` in place (attributes, operands)."""
        self.driver.add(op)
        for r in op.results:
            for user in r.users:
                self.driver.add(user)
        self.driver.changed = True


class GreedyRewriteDriver:
    def __init__(self, patterns: Iterable[RewritePattern], max_rewrites: int | None = None):
        self.by_root: dict[str | None, list[RewritePattern]] = {}
        for p in patterns:
            self.by_root.setdefault(p.root, []).append(p)
        self.worklist: deque[Operation] = deque()
        self.queued: set[int] = set()
        self.changed = False
        self.max_rewrites = max_rewrites

    def add(self, op: Operation) -> None:
        if id(op) not in self.queued:
            self.queued.add(id(op))
            self.worklist.append(op)

    def run(self, root: Operation) -> bool:
        """Apply the patterns to every op nested in `root` until a fixed point; True if anything changed."""
        for op in root.walk():
            if op is not root:
                self.add(op)
        budget = self.max_rewrites or 100 * (len(self.worklist) + 10)
        rewriter = PatternRewriter(self)
        any_change = False
        while self.worklist:
            op = self.worklist.popleft()
            self.queued.discard(id(op))
            if op.parent is None:  # erased meanwhile
                continue
            if is_trivially_dead(op):
                rewriter.current = op
                rewriter.erase_op(op)
                any_change = True
                continue
            for pattern in self.by_root.get(op.name, []) + self.by_root.get(None, []):
                rewriter.current = op
                self.changed = False
                if pattern.match_and_rewrite(op, rewriter):
                    any_change = True
                    budget -= 1
                    if budget < 0:
                        raise LutcError(
                            f"pattern rewriting did not converge (last pattern: {type(pattern).__name__} on '{op.name}')",
                            op.loc,
                        )
                    break
        return any_change


def is_trivially_dead(op: Operation) -> bool:
    opdef = lookup(op.name)
    return (
        opdef is not None
        and opdef.has(Trait.PURE)
        and not opdef.has(Trait.TERMINATOR)
        and all(not r.uses for r in op.results)
    )


def apply_patterns_greedily(module: Module, patterns: Iterable[RewritePattern]) -> bool:
    return GreedyRewriteDriver(patterns).run(module)
