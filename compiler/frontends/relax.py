"""Import a TVM Relax function into lutc's graph dialect.

    import lutc
    from tvm.relax.frontend.onnx import from_onnx
    module = lutc.import_relax(from_onnx(onnx.load("model.onnx"), keep_params_in_input=False))

The importer walks the function's binding blocks (dataflow or not) in order. Every binding of
a `relax.Call` to an operator is converted by the entry for that operator's name in
`CONVERTERS` (a table: Relax op name -> converter function plus the lutc ops it needs);
constants become `graph.constant`, tuples and `TupleGetItem` are tracked on the Python side,
and shape values (`R.shape`, `R.shape_of` of a static tensor) are folded at import time.
Before building anything, every call is checked against the table, so that a module with
several unsupported operators fails with one `ImportError_` listing all of them.

Types come from Relax's type annotations (`Var.ty`, struct info in older TVM): static dims
become ints, symbolic ones None. After each conversion, the result type lutc infers is checked
against Relax's, which catches a wrong mapping at the binding that caused it.

docs/frontend_relax.md lists what is supported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from lutc.diagnostics import ImportError_, Location
from lutc.ir.builder import Builder
from lutc.ir.core import Module, Operation, Value, function_body, make_function, sync_function_type
from lutc.ir.opdef import lookup
from lutc.ir.types import ElementType, TensorType

__all__ = ["import_relax", "CONVERTERS", "supported_ops"]

# Relax dtype names -> lutc element types (MLIR spelling).
DTYPES = {
    "float64": "f64", "float32": "f32", "float16": "f16", "bfloat16": "bf16",
    "int64": "i64", "int32": "i32", "int16": "i16", "int8": "i8", "int4": "i4",
    "uint64": "ui64", "uint32": "ui32", "uint16": "ui16", "uint8": "ui8", "uint4": "ui4",
    "bool": "i1",
}

INT64_MAX = 2**63 - 1


def element_type(dtype: Any) -> ElementType:
    name = DTYPES.get(str(dtype))
    if name is None:
        raise ImportError_(f"Relax dtype '{dtype}' has no lutc element type")
    return ElementType(name)


@dataclass(frozen=True)
class ShapeValue:
    """A Relax shape value (`R.shape([...])`), folded at import time; None for a symbolic dim."""

    dims: tuple


@dataclass(frozen=True)
class Converter:
    fn: Callable[["RelaxImporter", Any], Any]
    needs: tuple[str, ...]  # lutc ops the converter emits; missing ones make the Relax op unsupported


CONVERTERS: dict[str, Converter] = {}


def converter(*relax_ops: str, needs: Sequence[str] = ()):
    """Register `fn(importer, call) -> Value | list | ShapeValue` for the Relax ops `relax_ops`."""

    def register(fn):
        for name in relax_ops:
            CONVERTERS[name] = Converter(fn, tuple(needs))
        return fn

    return register


def supported_ops() -> list[str]:
    """Relax op names the importer converts with the lutc ops registered now."""
    return sorted(name for name, conv in CONVERTERS.items() if all(lookup(n) is not None for n in conv.needs))


# -- small helpers on TVM objects ---------------------------------------------------------------


def _relax_type(expr: Any) -> Any:
    """The Relax type annotation of an expression (`ty` in TVM 0.27, `struct_info` before)."""
    ty = getattr(expr, "ty", None)
    return ty if ty is not None else getattr(expr, "struct_info", None)


def _dims(shape_expr: Any) -> tuple | None:
    """Static dims of a Relax shape (ShapeExpr or list of PrimExprs); None entries for symbolic ones."""
    if shape_expr is None:
        return None
    values = getattr(shape_expr, "values", shape_expr)
    return tuple(int(v.value) if _is_int_imm(v) else None for v in values)


def _is_int_imm(v: Any) -> bool:
    return type(v).__name__ == "IntImm"


def _tensor_type_of(ty: Any, what: str) -> TensorType:
    """A lutc tensor type from a Relax TensorType / TensorStructInfo."""
    if ty is None or type(ty).__name__ not in ("TensorType", "TensorStructInfo"):
        raise ImportError_(f"{what} must be a tensor, got {ty}")
    dims = _dims(ty.shape)
    if dims is None:
        if ty.ndim < 0:
            raise ImportError_(f"{what} has unknown rank ({ty}); lutc needs ranked tensors")
        dims = (None,) * ty.ndim
    return TensorType(dims, element_type(ty.dtype))


def _ints(values: Any) -> list[int] | None:
    if values is None:
        return None
    if _is_int_imm(values) or isinstance(values, (int, np.integer)):
        return [int(values)]
    return [int(v) for v in values]


def _op_name(call: Any) -> str:
    op = call.op
    name = getattr(op, "name", None)
    if isinstance(name, str) and name:
        return name
    if type(op).__name__ == "GlobalVar":
        return f"call to function '{op.name_hint if hasattr(op, 'name_hint') else op}'"
    return type(op).__name__


# -- the importer ---------------------------------------------------------------------------------


class RelaxImporter:
    """Converts one Relax function; converters call back into `value`, `tensor`, `emit`, `fail`..."""

    def __init__(self, fn: Any, name: str, params: Mapping[str, np.ndarray]):
        self.fn = fn
        self.name = name
        self.params = dict(params)
        self.env: dict[int, Any] = {}
        self.constants: dict[int, Value] = {}
        self.builder: Builder | None = None
        self.loc = Location(name=name)

    # -- values ----------------------------------------------------------------------------
    def value(self, expr: Any) -> Any:
        """What a Relax expression evaluates to at import time: a lutc Value, a list (tuple),
        a ShapeValue, or a Python scalar (PrimValue / IntImm / FloatImm / StringImm)."""
        kind = type(expr).__name__
        if kind in ("Var", "DataflowVar"):
            key = expr.id_ if hasattr(expr, "id_") else id(expr)
            if key not in self.env:
                raise ImportError_(f"Relax variable '{_var_name(expr)}' is used before it is bound", self.loc)
            return self.env[key]
        if kind in ("GenericConst", "Constant"):
            return self.constant(expr)
        if kind == "Tuple":
            return [self.value(f) for f in expr.fields]
        if kind == "TupleGetItem":
            return self.value(expr.tuple_value)[int(expr.index)]
        if kind == "ShapeExpr":
            return ShapeValue(_dims(expr))
        if kind in ("IntImm", "FloatImm", "StringImm"):
            return expr.value
        if kind == "PrimValue":
            return self.value(expr.value)
        if kind == "DataTypeImm":
            return str(expr.value)
        if kind == "Call":
            return self.call(expr)
        raise ImportError_(f"unsupported Relax expression {kind}: {str(expr)[:80]}", self.loc)

    def tensor(self, expr: Any) -> Value:
        v = self.value(expr)
        if isinstance(v, ShapeValue):  # a shape used as a tensor: its values as i64
            if None in v.dims:
                raise ImportError_(f"shape {v.dims} with symbolic dims used as a tensor", self.loc)
            return self.const_array(np.asarray(v.dims, np.int64))
        if not isinstance(v, Value):
            raise ImportError_(f"expected a tensor, got {type(v).__name__} from {str(expr)[:60]}", self.loc)
        return v

    def constant(self, expr: Any) -> Value:
        key = expr.id_ if hasattr(expr, "id_") else id(expr)
        if key not in self.constants:
            data = expr.value if hasattr(expr, "value") else expr.data
            array = data.numpy() if hasattr(data, "numpy") else np.asarray(data)
            ty = _tensor_type_of(_relax_type(expr), "a constant")
            self.constants[key] = self.const_array(array, ty.element)
        return self.constants[key]

    def const_array(self, array: np.ndarray, element: ElementType | None = None) -> Value:
        assert self.builder is not None
        return self.builder.constant(np.asarray(array), element, name=f"{self.name}_cst{len(self.builder.block.ops)}")

    def constant_value(self, value: Value) -> np.ndarray | None:
        """The array of a value produced by `graph.constant`, else None."""
        op = value.op if hasattr(value, "op") else None
        if isinstance(op, Operation) and op.name == "graph.constant":
            return np.asarray(op.attr("value"))
        return None

    def emit(self, name: str, *operands: Value, **attributes: Any) -> Value:
        assert self.builder is not None
        return self.builder.op(name, *operands, loc=self.loc, **attributes)

    def emit_multi(
        self, name: str, operands: Sequence[Value], attributes: dict[str, Any], result_types: Sequence[TensorType] | None = None
    ) -> list[Value]:
        assert self.builder is not None
        return list(self.builder.create(name, operands, attributes, result_types=result_types, loc=self.loc).results)

    # -- calls -----------------------------------------------------------------------------
    def call(self, call: Any) -> Any:
        name = _op_name(call)
        conv = CONVERTERS.get(name)
        if conv is None:
            raise ImportError_(f"unsupported Relax operator {name}", self.loc)
        return conv.fn(self, call)

    def unsupported(self) -> dict[str, int]:
        """Relax operators in the function that the table cannot convert, with their counts."""
        found: dict[str, int] = {}

        def visit(expr: Any) -> None:
            kind = type(expr).__name__
            if kind == "Call":
                name = _op_name(expr)
                conv = CONVERTERS.get(name)
                missing = [] if conv is None else [n for n in conv.needs if lookup(n) is None]
                if conv is None or missing:
                    label = name if conv is None else f"{name} (needs {', '.join(missing)})"
                    found[label] = found.get(label, 0) + 1
                for arg in expr.args:
                    visit(arg)
            elif kind == "Tuple":
                for f in expr.fields:
                    visit(f)
            elif kind == "TupleGetItem":
                visit(expr.tuple_value)
            elif kind in ("If", "Function", "SeqExpr"):
                found[f"control flow ({kind})"] = found.get(f"control flow ({kind})", 0) + 1

        for block in self.fn.body.blocks:
            for binding in block.bindings:
                visit(binding.value)
        visit(self.fn.body.body)
        return found

    # -- the function ----------------------------------------------------------------------
    def run(self) -> Module:
        missing = self.unsupported()
        if missing:
            listed = ", ".join(f"{k} (x{v})" if v > 1 else k for k, v in sorted(missing.items()))
            raise ImportError_(f"unsupported Relax operators in '{self.name}': {listed}", self.loc)

        arg_params = [p for p in self.fn.params if _var_name(p) not in self.params]
        unknown = sorted(set(self.params) - {_var_name(p) for p in self.fn.params})
        if unknown:
            raise ImportError_(f"params {', '.join(unknown)} are not parameters of '{self.name}'", self.loc)
        arg_types = [_tensor_type_of(_relax_type(p), f"parameter '{_var_name(p)}'") for p in arg_params]
        fn = make_function(self.name, arg_types, loc=self.loc)
        body = function_body(fn)
        self.builder = Builder(body, loc=self.loc)
        for p, arg in zip(arg_params, body.args):
            self.env[p.id_] = arg
        for p in self.fn.params:
            if _var_name(p) in self.params:
                ty = _tensor_type_of(_relax_type(p), f"parameter '{_var_name(p)}'")
                self.env[p.id_] = self.const_array(np.asarray(self.params[_var_name(p)]), ty.element)

        for block in self.fn.body.blocks:
            for binding in block.bindings:
                self.bind(binding)

        outputs, names = self.flatten_output(self.fn.body.body)
        self.builder.create("func.return", outputs, result_types=[])
        fn.set_attr("arg_names", [_var_name(p) for p in arg_params])
        fn.set_attr("result_names", names)
        sync_function_type(fn)
        module = Module(loc=self.loc)
        module.body.append(fn)
        return module

    def bind(self, binding: Any) -> None:
        """A VarBinding, or a MatchCast (a type refinement: its value passes through unchanged)."""
        var = binding.var
        self.loc = Location(name=_var_name(var))
        self.builder.loc = self.loc
        result = self.value(binding.value)
        self.check_type(_relax_type(var), result)
        self.env[var.id_] = result

    def check_type(self, ty: Any, result: Any) -> None:
        """Compare the lutc type of `result` with Relax's annotation `ty` (catches wrong mappings)."""
        kind = type(ty).__name__
        if isinstance(result, list) and kind in ("TupleType", "TupleStructInfo") and len(ty.fields) == len(result):
            for field, item in zip(ty.fields, result):
                self.check_type(field, item)
        elif isinstance(result, Value) and kind in ("TensorType", "TensorStructInfo"):
            want = _tensor_type_of(ty, "the result")
            got = result.type
            same_shape = got.rank == want.rank and all(a is None or b is None or a == b for a, b in zip(got.shape, want.shape))
            if not same_shape or got.element != want.element:
                raise ImportError_(f"lutc infers {got} where Relax says {want} (a bug in the converter for this op)", self.loc)

    def flatten_output(self, expr: Any, name: str = "output") -> tuple[list[Value], list[str]]:
        """The function's result as a flat list of values, named after Relax variables."""
        kind = type(expr).__name__
        if kind == "Tuple":
            values, names = [], []
            for i, f in enumerate(expr.fields):
                v, n = self.flatten_output(f, f"{name}.{i}")
                values += v
                names += n
            return values, names
        value = self.value(expr)
        name = _var_name(expr) if kind in ("Var", "DataflowVar") else name
        if isinstance(value, list):
            flat = _flatten_list(value)
            return [self.as_tensor(v) for v in flat], [f"{name}.{i}" for i in range(len(flat))]
        return [self.as_tensor(value)], [name]

    def as_tensor(self, v: Any) -> Value:
        if isinstance(v, Value):
            return v
        if isinstance(v, ShapeValue) and None not in v.dims:
            return self.const_array(np.asarray(v.dims, np.int64))
        raise ImportError_(f"the function returns a {type(v).__name__}, which lutc cannot represent", self.loc)

    # -- helpers for converters ------------------------------------------------------------
    def result_type(self, call: Any) -> TensorType:
        return _tensor_type_of(_relax_type(call), "the result")

    def static_shape(self, call: Any) -> tuple[int, ...]:
        shape = self.result_type(call).shape
        if None in shape:
            raise ImportError_(f"{_op_name(call)} with a symbolic result shape {shape} is not supported", self.loc)
        return shape

    def fail(self, message: str) -> ImportError_:
        return ImportError_(message, self.loc)


def _var_name(var: Any) -> str:
    for attr in ("name", "name_hint"):
        v = getattr(var, attr, None)
        if isinstance(v, str):
            return v
    return str(var)


def _flatten_list(items: list) -> list:
    out = []
    for item in items:
        out += _flatten_list(item) if isinstance(item, list) else [item]
    return out


# -- the table: elementwise ops -----------------------------------------------------------------

UNARY = {
    "relax.exp": "graph.exp", "relax.log": "graph.log", "relax.sqrt": "graph.sqrt", "relax.rsqrt": "graph.rsqrt",
    "relax.tanh": "graph.tanh", "relax.sigmoid": "graph.sigmoid", "relax.erf": "graph.erf",
    "relax.negative": "graph.neg", "relax.abs": "graph.abs", "relax.sign": "graph.sign",
    "relax.floor": "graph.floor", "relax.ceil": "graph.ceil",
    "relax.sin": "graph.sin", "relax.cos": "graph.cos", "relax.tan": "graph.tan",
    "relax.asin": "graph.asin", "relax.acos": "graph.acos", "relax.atan": "graph.atan",
    "relax.sinh": "graph.sinh", "relax.cosh": "graph.cosh",
    "relax.asinh": "graph.asinh", "relax.acosh": "graph.acosh", "relax.atanh": "graph.atanh",
    "relax.isnan": "graph.is_nan", "relax.isinf": "graph.is_inf",
    "relax.logical_not": "graph.not", "relax.bitwise_not": "graph.bitwise_not",
    "relax.nn.relu": "graph.relu", "relax.nn.silu": "graph.silu", "relax.nn.selu": "graph.selu",
    "relax.nn.gelu": "graph.gelu",
}

BINARY = {
    "relax.add": "graph.add", "relax.subtract": "graph.sub", "relax.multiply": "graph.mul",
    "relax.divide": "graph.div", "relax.power": "graph.pow",
    "relax.maximum": "graph.max", "relax.minimum": "graph.min",
    "relax.equal": "graph.equal", "relax.less": "graph.less", "relax.greater": "graph.greater",
    "relax.less_equal": "graph.less_equal", "relax.greater_equal": "graph.greater_equal",
    "relax.logical_and": "graph.and", "relax.logical_or": "graph.or", "relax.logical_xor": "graph.xor",
    "relax.bitwise_and": "graph.bitwise_and", "relax.bitwise_or": "graph.bitwise_or", "relax.bitwise_xor": "graph.bitwise_xor",
}


def _register_table() -> None:
    for relax_name, graph_name in UNARY.items():
        converter(relax_name, needs=[graph_name])(lambda imp, call, g=graph_name: imp.emit(g, imp.tensor(call.args[0])))
    for relax_name, graph_name in BINARY.items():
        converter(relax_name, needs=[graph_name])(
            lambda imp, call, g=graph_name: imp.emit(g, imp.tensor(call.args[0]), imp.tensor(call.args[1]))
        )


_register_table()


@converter("relax.nn.gelu_tanh", needs=["graph.gelu"])
def _gelu_tanh(imp: RelaxImporter, call: Any) -> Value:
    return imp.emit("graph.gelu", imp.tensor(call.args[0]), approximate="tanh")


@converter("relax.square", needs=["graph.mul"])
def _square(imp: RelaxImporter, call: Any) -> Value:
    x = imp.tensor(call.args[0])
    return imp.emit("graph.mul", x, x)


@converter("relax.not_equal", needs=["graph.equal", "graph.not"])
def _not_equal(imp: RelaxImporter, call: Any) -> Value:
    return imp.emit("graph.not", imp.emit("graph.equal", imp.tensor(call.args[0]), imp.tensor(call.args[1])))


@converter("relax.mod", needs=["graph.mod"])
def _mod(imp: RelaxImporter, call: Any) -> Value:
    # TVM's mod truncates (C fmod: the sign of the dividend); floor_mod takes the divisor's sign.
    return imp.emit("graph.mod", imp.tensor(call.args[0]), imp.tensor(call.args[1]), fmod=True)


def _floor_mod_values(imp: RelaxImporter, a: Value, b: Value) -> Value:
    """a - floor(a / b) * b: the remainder with the divisor's sign. lutc's graph.mod takes the
    dividend's sign for floats (as ONNX requires fmod = 1 there), so floats are spelled out."""
    if a.type.element.is_float:
        return imp.emit("graph.sub", a, imp.emit("graph.mul", imp.emit("graph.floor", imp.emit("graph.div", a, b)), b))
    return imp.emit("graph.mod", a, b, fmod=False)


@converter("relax.floor_mod", needs=["graph.mod", "graph.sub", "graph.mul", "graph.floor", "graph.div"])
def _floor_mod(imp: RelaxImporter, call: Any) -> Value:
    return _floor_mod_values(imp, imp.tensor(call.args[0]), imp.tensor(call.args[1]))


@converter("relax.floor_divide", needs=["graph.mod", "graph.sub", "graph.floor", "graph.div"])
def _floor_divide(imp: RelaxImporter, call: Any) -> Value:
    a, b = imp.tensor(call.args[0]), imp.tensor(call.args[1])
    if a.type.element.is_float:
        return imp.emit("graph.floor", imp.emit("graph.div", a, b))
    # a - floor_mod(a, b) is a multiple of b, so graph.div's truncation is exact there.
    return imp.emit("graph.div", imp.emit("graph.sub", a, imp.emit("graph.mod", a, b, fmod=False)), b)


@converter("relax.ewise_fma", needs=["graph.mul", "graph.add"])
def _fma(imp: RelaxImporter, call: Any) -> Value:
    a, b, c = (imp.tensor(x) for x in call.args)
    return imp.emit("graph.add", imp.emit("graph.mul", a, b), c)


@converter("relax.nn.leakyrelu", needs=["graph.leaky_relu"])
def _leaky_relu(imp: RelaxImporter, call: Any) -> Value:
    return imp.emit("graph.leaky_relu", imp.tensor(call.args[0]), alpha=float(call.attrs.alpha))


@converter("relax.nn.prelu", needs=["graph.prelu", "graph.reshape"])
def _prelu(imp: RelaxImporter, call: Any) -> Value:
    x, slope = imp.tensor(call.args[0]), imp.tensor(call.args[1])
    axis = int(call.attrs.axis) % x.type.rank
    # Relax's slope is 1-D along `axis`; lutc's broadcasts NumPy-style, so give it x's rank.
    shape = [1] * x.type.rank
    shape[axis] = -1
    return imp.emit("graph.prelu", x, imp.emit("graph.reshape", slope, shape=shape))


@converter("relax.clip", needs=["graph.clip"])
def _clip(imp: RelaxImporter, call: Any) -> Value:
    lo, hi = imp.value(call.args[1]), imp.value(call.args[2])
    return imp.emit("graph.clip", imp.tensor(call.args[0]), min=float(lo), max=float(hi))


@converter("relax.where", needs=["graph.where"])
def _where(imp: RelaxImporter, call: Any) -> Value:
    return imp.emit("graph.where", *(imp.tensor(a) for a in call.args))


@converter("relax.astype", needs=["graph.cast"])
def _astype(imp: RelaxImporter, call: Any) -> Value:
    x = imp.tensor(call.args[0])
    to = element_type(call.attrs.dtype)
    return x if x.type.element == to else imp.emit("graph.cast", x, to=to)


@converter("relax.hint_on_device", "relax.wrap_param", "relax.builtin.stop_lift_params")
def _identity(imp: RelaxImporter, call: Any) -> Any:
    return imp.value(call.args[0])


@converter("relax.nn.dropout")
def _dropout(imp: RelaxImporter, call: Any) -> list:
    x = imp.tensor(call.args[0])
    return [x, x]  # inference: the identity (the mask result is not meaningful)


# -- linear algebra and normalization -----------------------------------------------------------


@converter("relax.matmul", needs=["graph.matmul", "graph.cast"])
def _matmul(imp: RelaxImporter, call: Any) -> Value:
    y = imp.emit("graph.matmul", imp.tensor(call.args[0]), imp.tensor(call.args[1]))
    out_dtype = call.attrs.out_dtype if call.attrs is not None else None
    if out_dtype is not None and str(out_dtype) not in ("", "void") and element_type(out_dtype) != y.type.element:
        y = imp.emit("graph.cast", y, to=element_type(out_dtype))
    return y


@converter("relax.einsum", needs=["graph.einsum"])
def _einsum(imp: RelaxImporter, call: Any) -> Value:
    operands = [imp.tensor(v) if not isinstance(v, Value) else v for v in _as_list(imp.value(call.args[0]))]
    return imp.emit("graph.einsum", *operands, equation=str(call.attrs.subscripts))


def _trailing_axis(imp: RelaxImporter, axes: list[int], rank: int, op: str) -> int:
    """lutc's norms normalize dims axis..rank-1; Relax's list the axes, which must be those."""
    norm = sorted(a % rank for a in axes)
    if norm != list(range(norm[0], rank)):
        raise imp.fail(f"{op} over axes {axes} of a rank-{rank} tensor: only trailing axes are supported")
    return norm[0]


@converter("relax.nn.layer_norm", needs=["graph.layer_norm"])
def _layer_norm(imp: RelaxImporter, call: Any) -> Value:
    x, gamma, beta = (imp.tensor(a) for a in call.args)
    a = call.attrs
    axis = _trailing_axis(imp, _ints(a.axes), x.type.rank, "layer_norm")
    if not (a.center and a.scale):
        # TVM 0.27 documents center/scale = False as "no beta / no gamma", but its compiled code
        # applies both anyway; rather than pick one meaning, refuse.
        raise imp.fail("layer_norm with center=False or scale=False is ambiguous (TVM's compiled code ignores the flags)")
    return imp.emit("graph.layer_norm", x, gamma, beta, axis=axis, epsilon=float(a.epsilon))


@converter("relax.nn.rms_norm", needs=["graph.rms_norm"])
def _rms_norm(imp: RelaxImporter, call: Any) -> Value:
    x, weight = imp.tensor(call.args[0]), imp.tensor(call.args[1])
    axis = _trailing_axis(imp, _ints(call.attrs.axes), x.type.rank, "rms_norm")
    return imp.emit("graph.rms_norm", x, weight, axis=axis, epsilon=float(call.attrs.epsilon))


@converter("relax.nn.batch_norm", needs=["graph.batch_norm"])
def _batch_norm(imp: RelaxImporter, call: Any) -> list:
    x, gamma, beta, mean, var = (imp.tensor(a) for a in call.args)
    a = call.attrs
    if int(a.axis) % x.type.rank != 1:
        raise imp.fail(f"batch_norm over axis {int(a.axis)}: only channel axis 1 is supported")
    if bool(getattr(a, "training", False)):
        raise imp.fail("batch_norm in training mode is not supported (inference only)")
    if not a.scale:
        gamma = imp.const_array(np.ones(gamma.type.shape, gamma.type.element.np_dtype))
    if not a.center:
        beta = imp.const_array(np.zeros(beta.type.shape, beta.type.element.np_dtype))
    y = imp.emit("graph.batch_norm", x, gamma, beta, mean, var, epsilon=float(a.epsilon))
    return [y, mean, var]  # Relax also returns the (unchanged, in inference) running statistics


@converter("relax.nn.instance_norm", needs=["graph.instance_norm"])
def _instance_norm(imp: RelaxImporter, call: Any) -> Value:
    x, gamma, beta = (imp.tensor(a) for a in call.args)
    a = call.attrs
    rank = x.type.rank
    if int(a.channel_axis) % rank != 1 or sorted(v % rank for v in _ints(a.axes)) != list(range(2, rank)):
        raise imp.fail("instance_norm is supported with channel axis 1 over all spatial axes")
    return imp.emit("graph.instance_norm", x, gamma, beta, epsilon=float(a.epsilon))


@converter("relax.nn.softmax", needs=["graph.softmax"])
def _softmax(imp: RelaxImporter, call: Any) -> Value:
    return imp.emit("graph.softmax", imp.tensor(call.args[0]), axis=int(call.attrs.axis))


@converter("relax.nn.log_softmax", needs=["graph.log_softmax"])
def _log_softmax(imp: RelaxImporter, call: Any) -> Value:
    return imp.emit("graph.log_softmax", imp.tensor(call.args[0]), axis=int(call.attrs.axis))


# -- convolution and pooling ----------------------------------------------------------------------

CHANNELS_FIRST = {1: ("NCW", "OIW"), 2: ("NCHW", "OIHW"), 3: ("NCDHW", "OIDHW")}


def _check_layouts(imp: RelaxImporter, attrs: Any, d: int, kernel_layout: str | None) -> None:
    data, kernel = CHANNELS_FIRST[d]
    kernel = kernel_layout or kernel
    layouts = {"data_layout": data, "kernel_layout": kernel, "out_layout": data, "layout": data}
    for field, want in layouts.items():
        got = getattr(attrs, field, None)
        if got is not None and str(got) not in ("", want):
            raise imp.fail(f"{field} {got} is not supported (lutc's convolutions and pools are {want})")


def _onnx_pads(padding: list[int], d: int) -> list[int]:
    """Relax padding (1, d or 2*d entries: begins then ends) as ONNX pads (begins then ends)."""
    if len(padding) == 1:
        return padding * (2 * d)
    if len(padding) == d:
        return padding + padding
    return padding


def _conv(d: int, transpose: bool):
    def convert(imp: RelaxImporter, call: Any) -> Value:
        x, w = imp.tensor(call.args[0]), imp.tensor(call.args[1])
        a = call.attrs
        _check_layouts(imp, a, d, ("IOW", "IOHW", "IODHW")[d - 1] if transpose else None)
        attrs = dict(
            strides=_ints(a.strides), pads=_onnx_pads(_ints(a.padding), d), dilations=_ints(a.dilation), groups=int(a.groups)
        )
        if transpose:
            attrs["output_padding"] = _ints(a.output_padding)
        y = imp.emit(f"graph.conv{d}d{'_transpose' if transpose else ''}", x, w, **attrs)
        out_dtype = getattr(a, "out_dtype", None)
        if out_dtype is not None and str(out_dtype) not in ("", "void") and element_type(out_dtype) != y.type.element:
            y = imp.emit("graph.cast", y, to=element_type(out_dtype))
        return y

    return convert


for _d in (1, 2, 3):
    converter(f"relax.nn.conv{_d}d", needs=[f"graph.conv{_d}d", "graph.cast"])(_conv(_d, False))
    converter(f"relax.nn.conv{_d}d_transpose", needs=[f"graph.conv{_d}d_transpose", "graph.cast"])(_conv(_d, True))


def _pool(d: int, kind: str):
    def convert(imp: RelaxImporter, call: Any) -> Value:
        x = imp.tensor(call.args[0])
        a = call.attrs
        _check_layouts(imp, a, d, None)
        attrs: dict[str, Any] = dict(
            kernel=_ints(a.pool_size), strides=_ints(a.strides), pads=_onnx_pads(_ints(a.padding), d),
            dilations=_ints(a.dilation), ceil_mode=bool(a.ceil_mode),
        )
        if kind == "avg":
            attrs["count_include_pad"] = bool(a.count_include_pad)
        return imp.emit(f"graph.{kind}_pool{d}d", x, **attrs)

    return convert


for _d in (1, 2, 3):
    for _kind in ("max", "avg"):
        converter(f"relax.nn.{_kind}_pool{_d}d", needs=[f"graph.{_kind}_pool{_d}d"])(_pool(_d, _kind))


def _adaptive_avg_pool(d: int):
    def convert(imp: RelaxImporter, call: Any) -> Value:
        x = imp.tensor(call.args[0])
        _check_layouts(imp, call.attrs, d, None)
        spatial = x.type.shape[2:]
        out = _ints(call.attrs.output_size) if call.attrs.output_size is not None else list(spatial)
        if len(out) == 1:
            out = out * d
        if None in spatial:
            raise imp.fail("adaptive_avg_pool with symbolic spatial dims is not supported")
        if all(o == 1 for o in out):  # global average pooling
            return imp.emit("graph.reduce_mean", x, axes=list(range(2, 2 + d)), keepdims=True)
        if any(s % o for s, o in zip(spatial, out)):
            raise imp.fail(f"adaptive_avg_pool from {list(spatial)} to {out}: only whole-window pooling is supported")
        kernel = [s // o for s, o in zip(spatial, out)]
        return imp.emit(f"graph.avg_pool{d}d", x, kernel=kernel, strides=kernel)

    return convert


for _d in (1, 2, 3):
    converter(f"relax.nn.adaptive_avg_pool{_d}d", needs=["graph.reduce_mean", f"graph.avg_pool{_d}d"])(_adaptive_avg_pool(_d))


# Relax pad modes (as TVM legalizes them) -> graph.pad's (NumPy's names).
PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


@converter("relax.nn.pad", needs=["graph.pad"])
def _pad(imp: RelaxImporter, call: Any) -> Value:
    x = imp.tensor(call.args[0])
    a = call.attrs
    width = _ints(a.pad_width)  # (before0, after0, before1, after1, ...)
    mode = PAD_MODES.get(str(a.pad_mode))
    if mode is None:
        raise imp.fail(f"pad mode '{a.pad_mode}' is not supported")
    pads = width[0::2] + width[1::2]
    value = float(a.pad_value) if getattr(a, "pad_value", None) is not None else 0.0
    return imp.emit("graph.pad", x, pads=pads, mode=mode, value=value)


# -- reductions -----------------------------------------------------------------------------------

REDUCE = {
    "relax.sum": "graph.reduce_sum", "relax.mean": "graph.reduce_mean", "relax.max": "graph.reduce_max",
    "relax.min": "graph.reduce_min", "relax.prod": "graph.reduce_prod",
}


def _reduce(graph_name: str):
    def convert(imp: RelaxImporter, call: Any) -> Value:
        x = imp.tensor(call.args[0])
        axes = _ints(call.attrs.axis)
        axes = list(range(x.type.rank)) if axes is None else [a % max(x.type.rank, 1) for a in axes]
        return imp.emit(graph_name, x, axes=axes, keepdims=bool(call.attrs.keepdims))

    return convert


for _relax_name, _graph_name in REDUCE.items():
    converter(_relax_name, needs=[_graph_name])(_reduce(_graph_name))


def _arg_reduce(graph_name: str):
    def convert(imp: RelaxImporter, call: Any) -> Value:
        x = imp.tensor(call.args[0])
        axis = call.attrs.axis
        keepdims = bool(call.attrs.keepdims)
        if axis is None:  # over the flattened tensor
            y = imp.emit(graph_name, imp.emit("graph.reshape", x, shape=[-1]), axis=0, keepdims=False)
            return imp.emit("graph.reshape", y, shape=[1] * x.type.rank) if keepdims else y
        return imp.emit(graph_name, x, axis=int(axis), keepdims=keepdims)

    return convert


converter("relax.argmax", needs=["graph.argmax", "graph.reshape"])(_arg_reduce("graph.argmax"))
converter("relax.argmin", needs=["graph.argmin", "graph.reshape"])(_arg_reduce("graph.argmin"))


@converter("relax.cumsum", "relax.cumprod", needs=["graph.cumsum", "graph.cumprod", "graph.reshape", "graph.cast"])
def _cumulative(imp: RelaxImporter, call: Any) -> Value:
    x = imp.tensor(call.args[0])
    a = call.attrs
    if a.dtype is not None and str(a.dtype) not in ("", "void") and element_type(a.dtype) != x.type.element:
        x = imp.emit("graph.cast", x, to=element_type(a.dtype))
    if a.axis is None:
        x, axis = imp.emit("graph.reshape", x, shape=[-1]), 0
    else:
        axis = int(a.axis)
    name = "graph.cumsum" if _op_name(call) == "relax.cumsum" else "graph.cumprod"
    return imp.emit(name, x, axis=axis, exclusive=bool(a.exclusive) if a.exclusive is not None else False)


@converter("relax.topk", needs=["graph.topk", "graph.cast"])
def _topk(imp: RelaxImporter, call: Any) -> Any:
    x = imp.tensor(call.args[0])
    a = call.attrs
    values, indices = imp.emit_multi("graph.topk", [x], dict(k=int(a.k), axis=int(a.axis), largest=bool(a.largest)))
    index_type = element_type(a.dtype)
    if index_type != indices.type.element:
        indices = imp.emit("graph.cast", indices, to=index_type)
    ret = str(a.ret_type)
    return [values, indices] if ret == "both" else values if ret == "values" else indices


# -- layout ---------------------------------------------------------------------------------------


@converter("relax.permute_dims", needs=["graph.transpose"])
def _permute_dims(imp: RelaxImporter, call: Any) -> Value:
    x = imp.tensor(call.args[0])
    axes = _ints(call.attrs.axes)
    perm = list(reversed(range(x.type.rank))) if axes is None else [a % x.type.rank for a in axes]
    return imp.emit("graph.transpose", x, perm=perm)


def _reshape_to_result(imp: RelaxImporter, call: Any) -> Value:
    """Reshape to the static result shape Relax inferred (one symbolic dim becomes -1)."""
    x = imp.tensor(call.args[0])
    shape = imp.result_type(call).shape
    if shape.count(None) > 1:
        raise imp.fail(f"{_op_name(call)} to a shape with several symbolic dims {shape} is not supported")
    return imp.emit("graph.reshape", x, shape=[-1 if d is None else d for d in shape])


converter("relax.reshape", "relax.flatten", "relax.nn.batch_flatten", needs=["graph.reshape"])(_reshape_to_result)


@converter("relax.expand_dims", needs=["graph.unsqueeze"])
def _expand_dims(imp: RelaxImporter, call: Any) -> Value:
    x = imp.tensor(call.args[0])
    rank = x.type.rank + len(_ints(call.attrs.axis))
    return imp.emit("graph.unsqueeze", x, axes=sorted(a % rank for a in _ints(call.attrs.axis)))


@converter("relax.squeeze", needs=["graph.squeeze"])
def _squeeze(imp: RelaxImporter, call: Any) -> Value:
    x = imp.tensor(call.args[0])
    axes = _ints(call.attrs.axis)
    if axes is None:
        if None in x.type.shape:
            raise imp.fail("squeeze of all unit dims needs a static shape")
        axes = [i for i, d in enumerate(x.type.shape) if d == 1]
    return imp.emit("graph.squeeze", x, axes=sorted(a % x.type.rank for a in axes))


@converter("relax.broadcast_to", needs=["graph.broadcast_to"])
def _broadcast_to(imp: RelaxImporter, call: Any) -> Value:
    return imp.emit("graph.broadcast_to", imp.tensor(call.args[0]), shape=list(imp.static_shape(call)))


@converter("relax.tile", needs=["graph.tile"])
def _tile(imp: RelaxImporter, call: Any) -> Value:
    x = imp.tensor(call.args[0])
    repeats = _ints(call.attrs.repeats)
    if len(repeats) < x.type.rank:  # numpy.tile semantics: leading ones
        repeats = [1] * (x.type.rank - len(repeats)) + repeats
    elif len(repeats) > x.type.rank:
        x = imp.emit("graph.reshape", x, shape=[1] * (len(repeats) - x.type.rank) + list(x.type.shape))
    return imp.emit("graph.tile", x, repeats=repeats)


def _as_list(v: Any) -> list:
    return v if isinstance(v, list) else [v]


@converter("relax.concat", needs=["graph.concat", "graph.reshape"])
def _concat(imp: RelaxImporter, call: Any) -> Value:
    parts = [p if isinstance(p, Value) else imp.tensor(p) for p in _as_list(imp.value(call.args[0]))]
    axis = call.attrs.axis
    if axis is None:  # concatenate the flattened tensors
        parts, axis = [imp.emit("graph.reshape", p, shape=[-1]) for p in parts], 0
    return imp.emit("graph.concat", *parts, axis=int(axis))


@converter("relax.stack", needs=["graph.concat", "graph.unsqueeze"])
def _stack(imp: RelaxImporter, call: Any) -> Value:
    parts = _as_list(imp.value(call.args[0]))
    rank = parts[0].type.rank + 1
    axis = int(call.attrs.axis) % rank if call.attrs.axis is not None else 0
    return imp.emit("graph.concat", *(imp.emit("graph.unsqueeze", p, axes=[axis]) for p in parts), axis=axis)


@converter("relax.split", needs=["graph.split"])
def _split(imp: RelaxImporter, call: Any) -> list:
    x = imp.tensor(call.args[0])
    axis = int(call.attrs.axis) % x.type.rank
    size = x.type.shape[axis]
    if size is None:
        raise imp.fail("split along a symbolic dim is not supported")
    spec = call.attrs.indices_or_sections
    if _is_int_imm(spec) or isinstance(spec, int):  # n equal sections (the last may be smaller)
        n = int(spec)
        step = -(-size // n)
        bounds = [min(step * i, size) for i in range(1, n)]
    else:  # split points
        bounds = [min(max(int(i), 0), size) for i in spec]
    edges = [0] + bounds + [size]
    sizes = [max(b - a, 0) for a, b in zip(edges, edges[1:])]
    types = [x.type.with_shape(x.type.shape[:axis] + (s,) + x.type.shape[axis + 1:]) for s in sizes]
    return imp.emit_multi("graph.split", [x], dict(axis=axis, sizes=sizes), types)


@converter("relax.strided_slice", needs=["graph.slice"])
def _strided_slice(imp: RelaxImporter, call: Any) -> Value:
    x = imp.tensor(call.args[0])
    fields = [_as_list(imp.value(a)) for a in call.args[1:]]
    axes, begin, end = ([int(v) for v in f] for f in fields[:3])
    strides = [int(v) for v in fields[3]] if len(fields) > 3 else [1] * len(axes)
    if len(strides) == 1 and len(axes) > 1:
        strides = strides * len(axes)
    return imp.emit("graph.slice", x, starts=begin, ends=end, axes=[a % x.type.rank for a in axes], steps=strides)


@converter("relax.take", needs=["graph.gather", "graph.mod", "graph.clip", "graph.reshape"])
def _take(imp: RelaxImporter, call: Any) -> Value:
    x, indices = imp.tensor(call.args[0]), imp.tensor(call.args[1])
    axis = call.attrs.axis
    if axis is None:
        x, axis = imp.emit("graph.reshape", x, shape=[-1]), 0
    axis = int(axis) % x.type.rank
    size = x.type.shape[axis]
    mode = str(getattr(call.attrs, "mode", "fast"))
    if mode in ("wrap", "clip"):
        if size is None:
            raise imp.fail(f"take with mode '{mode}' along a symbolic dim is not supported")
        known = imp.constant_value(indices)
        if known is not None:  # fold the index arithmetic
            folded = np.mod(known, size) if mode == "wrap" else np.clip(known, 0, size - 1)
            indices = imp.const_array(folded.astype(known.dtype), indices.type.element)
        elif mode == "wrap":
            indices = imp.emit("graph.mod", indices, imp.const_array(np.asarray(size, indices.type.element.np_dtype)))
        else:
            indices = imp.emit("graph.clip", indices, min=0.0, max=float(size - 1))
    # "fast" assumes in-range indices; negative ones then count from the end, as in lutc's gather.
    return imp.emit("graph.gather", x, indices, axis=axis)


@converter("relax.gather_elements", needs=["graph.gather_elements"])
def _gather_elements(imp: RelaxImporter, call: Any) -> Value:
    return imp.emit("graph.gather_elements", imp.tensor(call.args[0]), imp.tensor(call.args[1]), axis=int(call.attrs.axis))


@converter("relax.gather_nd", needs=["graph.gather_nd"])
def _gather_nd(imp: RelaxImporter, call: Any) -> Value:
    return imp.emit("graph.gather_nd", imp.tensor(call.args[0]), imp.tensor(call.args[1]), batch_dims=int(call.attrs.batch_dims))


SCATTER_REDUCTIONS = {"update": "none", "add": "add", "mul": "mul", "max": "max", "min": "min"}


@converter("relax.scatter_elements", needs=["graph.scatter_elements"])
def _scatter_elements(imp: RelaxImporter, call: Any) -> Value:
    reduction = SCATTER_REDUCTIONS.get(str(call.attrs.reduction))
    if reduction is None:
        raise imp.fail(f"scatter_elements reduction '{call.attrs.reduction}' is not supported")
    x, indices, updates = (imp.tensor(a) for a in call.args)
    return imp.emit("graph.scatter_elements", x, indices, updates, axis=int(call.attrs.axis), reduction=reduction)


@converter("relax.scatter_nd", needs=["graph.scatter_nd"])
def _scatter_nd(imp: RelaxImporter, call: Any) -> Value:
    reduction = SCATTER_REDUCTIONS.get(str(call.attrs.reduction))
    if reduction is None:
        raise imp.fail(f"scatter_nd reduction '{call.attrs.reduction}' is not supported")
    x, indices, updates = (imp.tensor(a) for a in call.args)
    return imp.emit("graph.scatter_nd", x, indices, updates, reduction=reduction)


@converter("relax.tril", "relax.triu", needs=["graph.trilu"])
def _trilu(imp: RelaxImporter, call: Any) -> Value:
    k = int(imp.value(call.args[1])) if len(call.args) > 1 else int(getattr(call.attrs, "k", 0))
    return imp.emit("graph.trilu", imp.tensor(call.args[0]), upper=_op_name(call) == "relax.triu", k=k)


@converter("relax.one_hot", needs=["graph.one_hot"])
def _one_hot(imp: RelaxImporter, call: Any) -> Value:
    indices = imp.tensor(call.args[0])
    on, off = imp.value(call.args[1]), imp.value(call.args[2])
    element = imp.result_type(call).element
    values = imp.const_array(np.asarray([off, on], element.np_dtype), element)
    return imp.emit("graph.one_hot", indices, values, depth=int(call.attrs.depth), axis=int(call.attrs.axis))


@converter("relax.dequantize", needs=["graph.dequantize", "graph.cast"])
def _dequantize(imp: RelaxImporter, call: Any) -> Value:
    x, scale = imp.tensor(call.args[0]), imp.tensor(call.args[1])
    zero = imp.tensor(call.args[2]) if len(call.args) > 2 else None
    operands = [x, scale] + ([zero] if zero is not None else [])
    y = imp.emit("graph.dequantize", *operands, axis=int(call.attrs.axis) % x.type.rank)
    want = element_type(call.attrs.out_dtype)
    return y if y.type.element == want else imp.emit("graph.cast", y, to=want)


# -- shapes and constants folded at import time -------------------------------------------------


@converter("relax.shape_of")
def _shape_of(imp: RelaxImporter, call: Any) -> ShapeValue:
    x = imp.tensor(call.args[0])
    return ShapeValue(tuple(x.type.shape))


@converter("relax.shape_to_tensor")
def _shape_to_tensor(imp: RelaxImporter, call: Any) -> Value:
    return imp.tensor(call.args[0])


@converter("relax.tensor_to_shape")
def _tensor_to_shape(imp: RelaxImporter, call: Any) -> ShapeValue:
    known = imp.constant_value(imp.tensor(call.args[0]))
    if known is None:
        raise imp.fail("tensor_to_shape of a computed tensor (a data-dependent shape) is not supported")
    return ShapeValue(tuple(int(v) for v in known.reshape(-1)))


def _fill(imp: RelaxImporter, call: Any, fill: Any) -> Value:
    ty = imp.result_type(call)
    shape = imp.static_shape(call)
    return imp.const_array(np.full(shape, fill, ty.element.np_dtype), ty.element)


@converter("relax.zeros", "relax.zeros_like")
def _zeros(imp: RelaxImporter, call: Any) -> Value:
    return _fill(imp, call, 0)


@converter("relax.ones", "relax.ones_like")
def _ones(imp: RelaxImporter, call: Any) -> Value:
    return _fill(imp, call, 1)


@converter("relax.full", "relax.full_like", needs=["graph.broadcast_to", "graph.cast"])
def _full(imp: RelaxImporter, call: Any) -> Value:
    ty = imp.result_type(call)
    fill = imp.tensor(call.args[1])
    known = imp.constant_value(fill)
    if known is not None:
        return _fill(imp, call, known.reshape(()))
    if fill.type.element != ty.element:
        fill = imp.emit("graph.cast", fill, to=ty.element)
    return imp.emit("graph.broadcast_to", fill, shape=list(imp.static_shape(call)))


@converter("relax.arange")
def _arange(imp: RelaxImporter, call: Any) -> Value:
    start, end, step = (imp.value(a) for a in call.args)
    ty = imp.result_type(call)
    if not all(isinstance(v, (int, float)) for v in (start, end, step)):
        raise imp.fail("arange with computed bounds is not supported")
    return imp.const_array(np.arange(start, end, step).astype(ty.element.np_dtype), ty.element)


# -- entry point ----------------------------------------------------------------------------------


def import_relax(mod: Any, function: str = "main", *, params: Mapping[str, np.ndarray] | None = None) -> Module:
    """Convert Relax function `function` of IRModule `mod` (or a `relax.Function`) to a lutc Module.

    `params` binds parameters by name to constant arrays; the remaining parameters become the
    lutc function's inputs, in order. Without `params`, weights attached to the function the
    way `from_onnx(..., keep_params_in_input=True)` attaches them (attributes `num_input` and
    `params`) are bound. Raises `lutc.LutcError` (`ImportError_`) listing every Relax operator
    that has no converter.
    """
    fn = mod
    if hasattr(mod, "functions") or type(mod).__name__ == "IRModule":
        names = [gv.name_hint for gv in mod.get_global_vars()]
        if function not in names:
            raise ImportError_(f"the IRModule has no function '{function}' (functions: {', '.join(sorted(names)) or 'none'})")
        fn = mod[function]
    if type(fn).__name__ != "Function" or not hasattr(fn, "params"):
        raise ImportError_(f"'{function}' is a {type(fn).__name__}, not a Relax function")
    if type(fn.body).__name__ != "SeqExpr":
        raise ImportError_(f"the body of '{function}' is not in normal form (a SeqExpr); run relax.transform.Normalize()")
    if params is None:
        params = _attached_params(fn)
    arrays = {k: v.numpy() if hasattr(v, "numpy") else np.asarray(v) for k, v in params.items()}
    return RelaxImporter(fn, function, arrays).run()


def _attached_params(fn: Any) -> dict[str, Any]:
    """Weights that TVM's frontends attach to a function: `params` for the parameters after `num_input`."""
    attrs = fn.attrs
    if attrs is None or "params" not in attrs or "num_input" not in attrs:
        return {}
    weights = fn.params[int(attrs["num_input"]):]
    return {_var_name(p): t for p, t in zip(weights, attrs["params"])}
