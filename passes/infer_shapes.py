"""`infer-shapes`: refine result types from the op definitions' shape inference.

With `input-shapes`, dynamic input dimensions are first bound to static sizes
(`infer-shapes{input-shapes="x=1x128,mask=1x128"}`); the function signature follows.
"""

from __future__ import annotations

from dataclasses import dataclass

from lutc.diagnostics import PipelineError
from lutc.ir.builder import infer_result_types
from lutc.ir.core import Module, Operation, function_body, sync_function_type
from lutc.ir.interpreter import input_names
from lutc.ir.opdef import lookup
from lutc.ir.types import TensorType
from lutc.passes.pass_manager import Pass, register_pass


def refine(have, inferred):
    """The more static of two compatible types (the inferred one wins on unknown dimensions)."""
    if isinstance(have, TensorType) and isinstance(inferred, TensorType) and have.compatible(inferred):
        return TensorType(tuple(h if h is not None else i for h, i in zip(have.shape, inferred.shape)), have.element)
    return have


def parse_input_shapes(text: str) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, _, dims = item.partition("=")
        try:
            shapes[name.strip()] = tuple(int(d) for d in dims.split("x")) if dims.strip() else ()
        except ValueError:
            raise PipelineError(f"infer-shapes: bad shape '{dims}' for input '{name}' (expected e.g. 1x128)") from None
    return shapes


def bind_inputs(fn: Operation, shapes: dict[str, tuple[int, ...]]) -> None:
    names = input_names(fn)
    unknown = sorted(set(shapes) - set(names))
    if unknown:
        raise PipelineError(f"infer-shapes: unknown input(s) {', '.join(unknown)} (inputs: {', '.join(names)})")
    for name, arg in zip(names, function_body(fn).args):
        if name in shapes:
            bound = TensorType(shapes[name], arg.type.element)
            if not arg.type.compatible(bound):
                raise PipelineError(f"infer-shapes: input '{name}' is {arg.type}; it cannot be bound to {bound}")
            arg.type = bound


@register_pass
@dataclass
class InferShapes(Pass):
    name = "infer-shapes"
    summary = "Refine dynamic result dimensions from operand shapes (optionally binding input shapes first)."
    input_shapes: str = ""

    def run(self, module: Module) -> None:
        shapes = parse_input_shapes(self.input_shapes)
        for fn in module.functions:
            if shapes:
                bind_inputs(fn, shapes)
            for op in fn.walk():
                opdef = lookup(op.name)
                if opdef is None or not op.results or op is fn:
                    continue
                inferred = infer_result_types(op.name, op.operands, op.attributes, op.loc, required=False) or []
                for result, new in zip(op.results, inferred):
                    result.type = refine(result.type, new)
            sync_function_type(fn)
