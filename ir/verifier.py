"""The verifier: structural rules (SSA dominance, terminators, function signatures) and each
op's declared rules (operand and result counts, attributes, inferred types, own checks)."""

from __future__ import annotations

from lutc.diagnostics import VerifyError
from lutc.ir.core import Block, Operation
from lutc.ir.opdef import InferError, OpDef, Trait, lookup
from lutc.ir.types import TensorType


def op_error(op: Operation, message: str) -> VerifyError:
    return VerifyError(f"'{op.name}' op {message}", op.loc)


def verify(module: Operation, *, allow_unregistered: bool = False) -> None:
    """Raise the first VerifyError found in `module`."""
    errors = collect_errors(module, allow_unregistered=allow_unregistered)
    if errors:
        raise errors[0]


def collect_errors(module: Operation, *, allow_unregistered: bool = False) -> list[VerifyError]:
    """Every error in `module` (an op with an error is reported once; checking goes on after it)."""
    errors: list[VerifyError] = []
    _verify_op(module, set(), errors, allow_unregistered)
    return errors


def _verify_op(op: Operation, visible: set[int], errors: list[VerifyError], allow_unregistered: bool) -> None:
    for i, value in enumerate(op.operands):
        if id(value) not in visible:
            errors.append(op_error(op, f"operand #{i} is used before it is defined (or is not visible here)"))
            return
    opdef = lookup(op.name)
    if opdef is None:
        if not allow_unregistered:
            errors.append(op_error(op, "is not registered: no dialect defines it"))
            return
    else:
        message = check_op(op, opdef)
        if message:
            errors.append(op_error(op, message))
            return
    isolated = opdef is not None and opdef.has(Trait.ISOLATED)
    errors_before = len(errors)
    for region in op.regions:
        for block in region.blocks:
            _verify_block(block, set() if isolated else set(visible), errors, allow_unregistered)
    # Rules that look into the regions (a function's signature against its return) run after
    # the nested ops verified, so the innermost error is the one reported.
    if opdef is not None and len(errors) == errors_before:
        message = opdef.verify_op(op)
        if message:
            errors.append(op_error(op, message))


def _verify_block(block: Block, visible: set[int], errors: list[VerifyError], allow_unregistered: bool) -> None:
    visible.update(id(a) for a in block.args)
    for index, op in enumerate(block.ops):
        opdef = lookup(op.name)
        if opdef is not None and opdef.has(Trait.TERMINATOR) and index != len(block.ops) - 1:
            errors.append(op_error(op, "must be the last operation of its block"))
        _verify_op(op, visible, errors, allow_unregistered)
        visible.update(id(r) for r in op.results)


def check_op(op: Operation, opdef: type[OpDef]) -> str | None:
    """The first problem with `op` against its definition, or None."""
    if not opdef.operand_count_ok(len(op.operands)):
        names = ", ".join(d.name + ("?" if d.optional else "*" if d.variadic else "") for d in opdef.operand_defs())
        return f"expects operands ({names}), got {len(op.operands)}"
    if opdef.num_results is not None and len(op.results) != opdef.num_results:
        return f"expects {opdef.num_results} result(s), got {len(op.results)}"
    if opdef.parent is not None and (op.parent_op is None or op.parent_op.name != opdef.parent):
        return f"must be inside a '{opdef.parent}'"
    if len(op.regions) != opdef.num_regions:
        return f"expects {opdef.num_regions} region(s), got {len(op.regions)}"
    for a in opdef.attributes:
        attr = op.attributes.get(a.name)
        if attr is None:
            if a.required:
                return f"requires attribute '{a.name}'"
            continue
        if not isinstance(attr, a.kind):
            kinds = a.kind if isinstance(a.kind, tuple) else (a.kind,)
            expected = " or ".join(k.__name__ for k in kinds)
            return f"attribute '{a.name}' must be a {expected}, got {attr}"
        if a.choices and attr.value not in a.choices:
            return f"attribute '{a.name}' must be one of {', '.join(map(str, a.choices))}; got {attr.value!r}"
    types = op.operand_types
    attrs = opdef.attr_values(op.attributes)
    try:
        opdef.check(types, attrs)
        inferred = opdef.infer(types, attrs)
    except InferError as err:
        return str(err)
    if inferred is not None:
        if len(inferred) != len(op.results):
            return f"infers {len(inferred)} result(s) but has {len(op.results)}"
        for i, (have, want) in enumerate(zip(op.result_types, inferred)):
            if not _compatible(have, want):
                return f"result #{i} has type {have}, but the operands give {want}"
    return None


def _compatible(have, want) -> bool:
    if isinstance(have, TensorType) and isinstance(want, TensorType):
        return have.compatible(want)
    return have == want
