"""The reference interpreter: runs a function op by op through the registered NumPy
implementations. It is the numerical ground truth for every pass and backend."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from lutc.diagnostics import InterpreterError
from lutc.ir.core import Block, Module, Operation, function_body
from lutc.ir.opdef import lookup
from lutc.ir.types import TensorType


def input_names(fn: Operation) -> list[str]:
    names = fn.attr("arg_names")
    return list(names) if names else [f"arg{i}" for i in range(len(function_body(fn).args))]


def output_names(fn: Operation) -> list[str]:
    names = fn.attr("result_names")
    return list(names) if names else [f"result{i}" for i in range(len(fn.attr("function_type").results))]


def check_value(value: np.ndarray, type: TensorType, what: str) -> np.ndarray:
    """`value` as the storage of `type`; an error if its shape or kind of dtype disagrees."""
    value = np.asarray(value)
    want = type.element.np_dtype
    if value.dtype != want:
        if value.dtype.kind != want.kind and not (value.dtype.kind in "iu" and want.kind in "iu"):
            raise InterpreterError(f"{what} has dtype {value.dtype}, but {type} needs {want}")
        value = value.astype(want)
    if value.ndim != type.rank or any(d is not None and d != s for d, s in zip(type.shape, value.shape)):
        raise InterpreterError(f"{what} has shape {list(value.shape)}, but the type is {type}")
    return value


class Interpreter:
    def __init__(self, module: Module):
        self.module = module

    def run(self, inputs: Mapping[str, np.ndarray] | Sequence[np.ndarray], function: str | None = None) -> list[np.ndarray]:
        fn = self.module.function(function)
        body = function_body(fn)
        names = input_names(fn)
        if isinstance(inputs, Mapping):
            unknown = sorted(set(inputs) - set(names))
            if unknown:
                raise InterpreterError(f"unknown input(s) {', '.join(unknown)}; the function takes {', '.join(names)}")
            missing = [n for n in names if n not in inputs]
            if missing:
                raise InterpreterError(f"missing input(s) {', '.join(missing)}")
            args = [inputs[n] for n in names]
        else:
            args = list(inputs)
            if len(args) != len(names):
                raise InterpreterError(f"the function takes {len(names)} inputs, got {len(args)}")
        args = [check_value(a, arg.type, f"input '{n}'") for a, arg, n in zip(args, body.args, names)]
        return self.run_block(body, args)

    def run_block(self, block: Block, args: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Evaluate `block` with its arguments bound to `args`; returns the terminator's operands."""
        env: dict[int, np.ndarray] = {id(a): v for a, v in zip(block.args, args)}
        for op in block.ops[:-1]:
            results = self.evaluate(op, [env[id(v)] for v in op.operands])
            for result, value in zip(op.results, results):
                env[id(result)] = value
        return [env[id(v)] for v in block.ops[-1].operands]

    def evaluate(self, op: Operation, args: list[np.ndarray]) -> list[np.ndarray]:
        opdef = lookup(op.name)
        if opdef is None or opdef.reference is None:
            raise InterpreterError(f"'{op.name}' has no reference implementation", op.loc)
        attrs = opdef.attr_values(op.attributes)
        with np.errstate(all="ignore"):  # IEEE results (inf, nan) are the semantics, not errors
            if opdef.reference_needs_op:
                out = opdef.reference(self, op, *args, **attrs)
            else:
                out = opdef.reference(*args, **attrs)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        return [check_value(v, r.type, f"result #{i} of '{op.name}' at {op.loc}") for i, (v, r) in enumerate(zip(outs, op.results))]


def run(module: Module, inputs: Mapping[str, np.ndarray] | Sequence[np.ndarray], function: str | None = None) -> list[np.ndarray]:
    return Interpreter(module).run(inputs, function)


