"""Import ONNX models into lutc's `graph` dialect.

    module = lutc.import_onnx("model.onnx")

The importer
  1. loads the model (refusing external-data paths that leave the model's folder),
     inlines model-local functions and upgrades opsets older than 13;
  2. runs ONNX shape inference (with data propagation) for the shapes of values that only
     ONNX can know (the result of a Reshape whose shape is computed at run time, say);
  3. checks the graph (every input defined, no cycle, every op supported) and reports
     every problem as one line naming the file, the node and the cause;
  4. converts node by node through the table in `onnx_ops.CONVERTERS` (ONNX op -> function).
     Values known at import time stay `Const`s and are folded through the ops' reference
     implementations, so that shape arithmetic (Shape -> Gather -> Concat -> Reshape) becomes
     static attributes; constants are materialized only where an op consumes them.
     An op without a converter whose ONNX schema defines a function body (Attention,
     GroupNormalization, ...) is expanded into that body.

Low-bit weights (MatMulNBits, blocked DequantizeLinear -> MatMul, ternary constants)
become `graph.mpgemm`: see `onnx_quant.py`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import ml_dtypes
import numpy as np
import onnx
from onnx import numpy_helper

from lutc.diagnostics import ImportError_, LutcError, Location, VerifyError
from lutc.ir.attributes import elements_attr
from lutc.ir.builder import Builder, infer_result_types
from lutc.ir.core import Module, Value, function_body, make_function, sync_function_type
from lutc.ir.opdef import Trait, lookup
from lutc.ir.types import ElementType, TensorType, element_type
from lutc.ir.verifier import verify

# Default-domain opsets imported as they are; older models are first upgraded to this.
MIN_OPSET = 13
MAX_OPSET = onnx.defs.onnx_opset_version()
DEFAULT_DOMAINS = ("", "ai.onnx")

# ONNX element types lutc represents (sub-byte integers are stored one per byte).
ONNX_ELEMENTS: dict[int, str] = {
    onnx.TensorProto.FLOAT: "f32", onnx.TensorProto.DOUBLE: "f64", onnx.TensorProto.FLOAT16: "f16",
    onnx.TensorProto.BFLOAT16: "bf16", onnx.TensorProto.INT64: "i64", onnx.TensorProto.INT32: "i32",
    onnx.TensorProto.INT16: "i16", onnx.TensorProto.INT8: "i8", onnx.TensorProto.UINT64: "ui64",
    onnx.TensorProto.UINT32: "ui32", onnx.TensorProto.UINT16: "ui16", onnx.TensorProto.UINT8: "ui8",
    onnx.TensorProto.BOOL: "i1", onnx.TensorProto.INT4: "i4", onnx.TensorProto.UINT4: "ui4",
    onnx.TensorProto.INT2: "i2", onnx.TensorProto.UINT2: "ui2",
}
ELEMENT_TO_ONNX: dict[str, int] = {v: k for k, v in ONNX_ELEMENTS.items()}
# NumPy dtypes numpy_helper.from_array needs for the types lutc stores in wider integers.
ONNX_STORAGE = {"i4": ml_dtypes.int4, "ui4": ml_dtypes.uint4, "i2": ml_dtypes.int2, "ui2": ml_dtypes.uint2}

# Ends every error about a value that must be known at import time but is computed at run time.
DYNAMIC_HINT = "(unsupported dynamic shape: bind the inputs' shapes with --input-shape / input_shapes=)"

# A folded constant larger than this (and larger than its inputs) is left as an op.
FOLD_LIMIT = 1 << 22


def onnx_element(dtype: int, what: str) -> ElementType:
    """The lutc element type of ONNX data type `dtype`; `what` names the value for the error."""
    name = ONNX_ELEMENTS.get(dtype)
    if name is None:
        type_name = onnx.TensorProto.DataType.Name(dtype) if dtype in onnx.TensorProto.DataType.values() else str(dtype)
        raise UnsupportedError(f"{what} has element type {type_name}, which lutc does not support")
    return element_type(name)


def tensor_to_array(tensor: onnx.TensorProto, what: str) -> tuple[np.ndarray, ElementType]:
    """A TensorProto's data as NumPy storage for its lutc element type."""
    element = onnx_element(tensor.data_type, what)
    array = numpy_helper.to_array(tensor)
    if array.dtype in (ml_dtypes.int4, ml_dtypes.uint4, ml_dtypes.int2, ml_dtypes.uint2):
        array = array.astype(element.np_dtype)
    return np.array(array, dtype=element.np_dtype, order="C"), element  # (ascontiguousarray would make scalars 1-D)


class UnsupportedError(Exception):
    """Raised inside the importer; turned into an ImportError_ that names the node."""


class ExpandInstead(Exception):
    """A converter declines a node (an unusual attribute, an extra output) in favour of its ONNX function body."""


# -- values at import time --------------------------------------------------------------------


class Const:
    """A value known at import time. It becomes a `graph.constant` only where an op uses it.

    The array may be computed lazily (`compute`), so that folded weights nobody uses (a
    DequantizeLinear absorbed into an mpgemm, say) never cost memory.
    """

    def __init__(self, type: TensorType, array: np.ndarray | None = None, compute: Callable[[], np.ndarray] | None = None,
                 name: str = "cst", origin: str = ""):
        self.type = type
        self._array = array
        self._compute = compute
        self.name = name
        self.origin = origin

    @property
    def value(self) -> np.ndarray:
        if self._array is None:
            try:
                array = self._compute()
            except LutcError:
                raise
            except Exception as err:  # a reference implementation refused the data
                raise UnsupportedError(f"cannot evaluate {self.origin or self.name} at import time: {err}") from None
            self._array = np.asarray(array).astype(self.type.element.np_dtype, copy=False).reshape(self.type.shape)
            self._compute = None
        return self._array


Handle = Value | Const


# -- per-node context handed to converters ------------------------------------------------------


@dataclass
class NodeContext:
    """What a converter sees of one ONNX node: its inputs, attributes, and ways to emit ops."""

    importer: "OnnxImporter"
    node: onnx.NodeProto
    opset: int
    inputs: list[Handle | None]
    loc: Location
    output_types: list[TensorType | None] = field(default_factory=list)

    # -- describing the node ----------------------------------------------------------------
    @property
    def op_type(self) -> str:
        return self.node.op_type

    @property
    def name(self) -> str:
        return node_label(self.node)

    def error(self, message: str) -> UnsupportedError:
        return UnsupportedError(message)

    # -- inputs -----------------------------------------------------------------------------
    def has(self, i: int) -> bool:
        return i < len(self.inputs) and self.inputs[i] is not None

    def input(self, i: int) -> Handle:
        if not self.has(i):
            raise self.error(f"input #{i} is required")
        return self.inputs[i]

    def optional(self, i: int) -> Handle | None:
        return self.inputs[i] if self.has(i) else None

    def type(self, i: int) -> TensorType:
        return self.input(i).type

    def const(self, i: int) -> np.ndarray | None:
        """Input i's value if it is known at import time, else None."""
        h = self.optional(i)
        return h.value if isinstance(h, Const) else None

    def require_const(self, i: int, what: str) -> np.ndarray:
        """Input i's value; an unsupported-dynamic error if it is only known at run time."""
        if not self.has(i):
            raise self.error(f"{what} (input #{i}) is missing")
        value = self.const(i)
        if value is None:
            raise self.error(f"{what} (input #{i}) must be a constant; a value computed at run time is not supported {DYNAMIC_HINT}")
        return value

    def value(self, i: int) -> Value:
        return self.importer.materialize(self.input(i))

    @property
    def num_outputs(self) -> int:
        return len(self.node.output)

    def output_used(self, i: int) -> bool:
        return i < len(self.node.output) and self.node.output[i] != "" and self.node.output[i] in self.importer.used_names

    def output_type(self, i: int = 0) -> TensorType | None:
        """The type ONNX shape inference gives output i (None when it does not know)."""
        return self.output_types[i] if i < len(self.output_types) else None

    def input_dims(self, i: int) -> tuple[int | str | None, ...] | None:
        """Input i's dims as ONNX inference names them (symbols for dynamic dims), if known."""
        return self.importer.symbolic_dims.get(self.node.input[i]) if i < len(self.node.input) else None

    def output_dims(self, i: int = 0) -> tuple[int | str | None, ...] | None:
        return self.importer.symbolic_dims.get(self.node.output[i]) if i < len(self.node.output) else None

    # -- attributes -------------------------------------------------------------------------
    def attr(self, name: str, default: Any = None) -> Any:
        for a in self.node.attribute:
            if a.name == name:
                return attribute_value(a, f"attribute '{name}'")
        return default

    def has_attr(self, name: str) -> bool:
        return any(a.name == name for a in self.node.attribute)

    # -- emitting ops -----------------------------------------------------------------------
    def op(self, name: str, *operands: Handle, **attributes: Any) -> Handle:
        """Create a single-result op (folded to a Const when every operand is one)."""
        return self.importer.emit(name, list(operands), attributes, self.loc)[0]

    def ops(self, name: str, operands: Sequence[Handle], attributes: dict[str, Any], result_types=None) -> list[Handle]:
        return self.importer.emit(name, list(operands), attributes, self.loc, result_types)

    def constant(self, array: np.ndarray, element: ElementType | None = None, name: str | None = None) -> Const:
        array = np.asarray(array)
        element = element or _element_of(array)
        return Const(TensorType(array.shape, element), array.astype(element.np_dtype), name=name or self.node.output[0] or "cst")

    def scalar(self, value: float | int, like: Handle) -> Const:
        """A rank-0 constant of `like`'s element type."""
        element = like.type.element
        return Const(TensorType((), element), np.asarray(value).astype(element.np_dtype), name="scalar")

    def cast(self, h: Handle, element: ElementType) -> Handle:
        return h if h.type.element == element else self.op("graph.cast", h, to=element)

    def reshape(self, h: Handle, shape: Sequence[int]) -> Handle:
        shape = [int(d) for d in shape]
        if -1 in shape and h.type.is_static:  # spell the size out when it is known
            rest = math.prod(d for d in shape if d != -1)
            if rest and h.type.num_elements % rest == 0:
                shape[shape.index(-1)] = h.type.num_elements // rest
        if h.type.shape == tuple(shape):
            return h
        return self.op("graph.reshape", h, shape=shape)


def _element_of(array: np.ndarray) -> ElementType:
    from lutc.ir.types import element_type_for_dtype

    return element_type_for_dtype(array.dtype)


def attribute_value(attr: onnx.AttributeProto, what: str) -> Any:
    """An attribute as plain Python: ints, floats, strings, lists, NumPy arrays for tensors."""
    A = onnx.AttributeProto
    if attr.type == A.INT:
        return int(attr.i)
    if attr.type == A.FLOAT:
        return float(attr.f)
    if attr.type == A.STRING:
        return attr.s.decode("utf-8", errors="replace")
    if attr.type == A.INTS:
        return [int(v) for v in attr.ints]
    if attr.type == A.FLOATS:
        return [float(v) for v in attr.floats]
    if attr.type == A.STRINGS:
        return [s.decode("utf-8", errors="replace") for s in attr.strings]
    if attr.type == A.TENSOR:
        return tensor_to_array(attr.t, what)
    if attr.type in (A.GRAPH, A.GRAPHS):
        raise UnsupportedError(f"{what} is a subgraph (control flow is not supported)")
    raise UnsupportedError(f"{what} has an unsupported attribute type {A.AttributeType.Name(attr.type)}")


def symbolic_dims(info: onnx.ValueInfoProto) -> tuple[int | str | None, ...]:
    dims = info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in dims)


def node_label(node: onnx.NodeProto) -> str:
    """The name an error uses for a node: its name, else its first output's."""
    return node.name or (node.output[0] if node.output else "") or "<unnamed>"


def describe(node: onnx.NodeProto) -> str:
    op = node.op_type if node.domain in DEFAULT_DOMAINS else f"{node.domain}.{node.op_type}"
    return f"{op} node '{node_label(node)}'"


def op_key(node: onnx.NodeProto) -> str:
    """The converter-table key: `Add` for the default domain, `com.microsoft.MatMulNBits` otherwise."""
    return node.op_type if node.domain in DEFAULT_DOMAINS else f"{node.domain}.{node.op_type}"


# -- loading ----------------------------------------------------------------------------------


def load_model(path: Path) -> onnx.ModelProto:
    """Parse an ONNX file (without its external data)."""
    if not path.exists():
        raise ImportError_(f"no such file: '{path}'")
    if path.is_dir():
        raise ImportError_(f"'{path}' is a directory, not an ONNX file")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ImportError_(f"cannot read '{path}': {err.strerror}") from None
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as err:  # protobuf's DecodeError and friends
        reason = str(err) or type(err).__name__
        raise ImportError_(f"not a valid ONNX model (cannot parse the protobuf: {reason}); is the file truncated?",
                           Location(file=str(path))) from None
    if not model.HasField("graph") or (not model.graph.node and not model.graph.output) or not model.opset_import:
        raise ImportError_("not a valid ONNX model (no graph, outputs or opset imports); is the file truncated or not ONNX?",
                           Location(file=str(path)))
    return model


def external_data_path(tensor: onnx.TensorProto, base_dir: Path) -> tuple[Path, int, int | None]:
    """The checked file, offset and length of an initializer stored outside the model."""
    info = {entry.key: entry.value for entry in tensor.external_data}
    location = info.get("location", "")
    if not location:
        raise UnsupportedError(f"initializer '{tensor.name}' has external data without a location")
    relative = Path(location)
    drive_like = bool(relative.parts) and ":" in relative.parts[0]  # C:\\... on Windows
    if relative.is_absolute() or location.startswith(("/", "\\")) or ".." in relative.parts or drive_like:
        raise UnsupportedError(f"initializer '{tensor.name}': external data path '{location}' leaves the model's folder")
    base = base_dir.resolve()
    resolved = (base / relative).resolve()
    if base != resolved and base not in resolved.parents:
        raise UnsupportedError(f"initializer '{tensor.name}': external data path '{location}' leaves the model's folder "
                               "(through a symbolic link)")
    if not resolved.is_file():
        raise UnsupportedError(f"initializer '{tensor.name}': external data file '{location}' does not exist")
    try:
        offset = int(info.get("offset", 0) or 0)
        length = int(info["length"]) if info.get("length") else None
    except ValueError:
        raise UnsupportedError(f"initializer '{tensor.name}': bad external data offset or length") from None
    return resolved, offset, length


def load_external_data(tensor: onnx.TensorProto, base_dir: Path) -> None:
    """Read an initializer's bytes from its side file into `raw_data`."""
    path, offset, length = external_data_path(tensor, base_dir)
    size = path.stat().st_size
    if offset > size or (length is not None and offset + length > size):
        raise UnsupportedError(f"initializer '{tensor.name}': external data file '{path.name}' is too short "
                               f"({size} bytes; needs offset {offset} + length {length})")
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read() if length is None else f.read(length)
    tensor.raw_data = data
    tensor.data_location = onnx.TensorProto.DEFAULT
    del tensor.external_data[:]


def _uses_external_data(tensor: onnx.TensorProto) -> bool:
    return tensor.data_location == onnx.TensorProto.EXTERNAL


def model_opset(model: onnx.ModelProto, domain: str = "") -> int | None:
    domains = DEFAULT_DOMAINS if domain in DEFAULT_DOMAINS else (domain,)
    for entry in model.opset_import:
        if entry.domain in domains:
            return entry.version
    return None


# -- the importer -----------------------------------------------------------------------------


class OnnxImporter:
    def __init__(self, model: onnx.ModelProto, path: str | None, base_dir: Path, input_shapes: Mapping[str, Sequence[int]] | None,
                 constant_inputs: Mapping[str, np.ndarray] | None = None):
        self.model = model
        self.path = path
        self.base_dir = base_dir
        self.input_shapes = dict(input_shapes or {})
        self.constant_inputs = dict(constant_inputs or {})
        self.file_loc = Location(file=path) if path else Location()
        self.env: dict[str, Handle] = {}
        self.inferred: dict[str, TensorType] = {}
        # Dims as ONNX inference names them: sizes, symbols ("batch") or None (unknown).
        self.symbolic_dims: dict[str, tuple[int | str | None, ...]] = {}
        self.used_names: set[str] = set()
        self.materialized: dict[int, tuple[Const, Value]] = {}
        self.builder: Builder | None = None
        self.opset = 0
        self.producers: dict[str, onnx.NodeProto] = {}  # top-level value name -> the node computing it
        self.order: list[onnx.NodeProto] = []

    # -- errors -----------------------------------------------------------------------------
    def fail(self, message: str) -> ImportError_:
        return ImportError_(message, self.file_loc)

    # -- pipeline ---------------------------------------------------------------------------
    def run(self) -> Module:
        self.prepare()
        self.check_graph()
        return self.convert()

    def prepare(self) -> None:
        model = self.model
        opset = model_opset(model)
        if opset is None:
            opset = MAX_OPSET if not any(n.domain in DEFAULT_DOMAINS for n in model.graph.node) else None
            if opset is None:
                raise self.fail("the model imports no default-domain (ai.onnx) opset")
        if opset > MAX_OPSET:
            raise self.fail(f"opset {opset} is newer than the newest this onnx ({onnx.__version__}) knows ({MAX_OPSET})")
        for tensor in model.graph.initializer:  # refuse bad paths before doing any work
            if _uses_external_data(tensor):
                try:
                    external_data_path(tensor, self.base_dir)
                except UnsupportedError as err:
                    raise self.fail(str(err)) from None
        if model.functions:
            try:
                model = onnx.inliner.inline_local_functions(model)
            except Exception as err:
                raise self.fail(f"cannot inline the model's local functions: {err}") from None
        if opset < MIN_OPSET:
            try:
                model = onnx.version_converter.convert_version(model, MIN_OPSET)
            except Exception as err:
                first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise self.fail(f"opset {opset} is older than {MIN_OPSET} and onnx cannot upgrade this model: {first}") from None
            opset = MIN_OPSET
        self.opset = opset
        self.bind_input_shapes(model)
        self.bind_constant_inputs(model)
        self.model = model
        self.run_shape_inference()

    def bind_input_shapes(self, model: onnx.ModelProto) -> None:
        inputs = {i.name: i for i in model.graph.input}
        for name, shape in self.input_shapes.items():
            if name not in inputs:
                raise self.fail(f"--input-shape names '{name}', which is not an input (inputs: {', '.join(inputs) or 'none'})")
            dims = inputs[name].type.tensor_type.shape.dim
            if len(dims) and len(dims) != len(shape):
                raise self.fail(f"input '{name}' has rank {len(dims)}; cannot bind it to shape {list(shape)}")
            del dims[:]
            for d in shape:
                dims.add().dim_value = int(d)

    def bind_constant_inputs(self, model: onnx.ModelProto) -> None:
        """Graph inputs given values at import time become initializers (constants)."""
        inputs = {i.name: i for i in model.graph.input}
        initializers = {t.name for t in model.graph.initializer}
        for name, value in self.constant_inputs.items():
            if name not in inputs or name in initializers:
                raise self.fail(f"constant input '{name}' is not a graph input (inputs: {', '.join(inputs) or 'none'})")
            declared = self.value_info_type(inputs[name])
            value = np.asarray(value)
            if not declared.compatible(TensorType(value.shape, declared.element)):
                raise self.fail(f"constant input '{name}' has shape {list(value.shape)}, but the input is {declared}")
            storage = ONNX_STORAGE.get(declared.element.name, declared.element.np_dtype)
            model.graph.initializer.append(numpy_helper.from_array(value.astype(storage), name))

    def run_shape_inference(self) -> None:
        """Types ONNX infers for every value (best effort: inference failures leave gaps)."""
        try:
            inferred = onnx.shape_inference.infer_shapes(self.model, data_prop=True)
        except Exception:
            try:
                inferred = onnx.shape_inference.infer_shapes(self.model)
            except Exception:
                return
        for info in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
            t = self.value_info_type(info, strict=False)
            if t is not None:
                self.inferred[info.name] = t
                self.symbolic_dims[info.name] = symbolic_dims(info)

    def value_info_type(self, info: onnx.ValueInfoProto, strict: bool = True) -> TensorType | None:
        kind = info.type.WhichOneof("value")
        if kind != "tensor_type":
            if strict:
                raise self.fail(f"graph value '{info.name}' is a {kind or 'value without a type'}; only tensors are supported")
            return None
        tt = info.type.tensor_type
        if not tt.HasField("shape"):
            if strict:
                raise self.fail(f"graph input '{info.name}' has no shape (rank unknown)")
            return None
        try:
            element = onnx_element(tt.elem_type, f"value '{info.name}'")
        except UnsupportedError as err:
            if strict:
                raise self.fail(str(err)) from None
            return None
        shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim)
        return TensorType(shape, element)

    # -- graph checks (before any conversion) -----------------------------------------------
    def check_graph(self) -> None:
        graph = self.model.graph
        defined = {i.name for i in graph.input} | {t.name for t in graph.initializer}
        producers: dict[str, onnx.NodeProto] = {}
        for node in graph.node:
            for out in node.output:
                if not out:
                    continue
                if out in producers or out in defined:
                    other = describe(producers[out]) if out in producers else "a graph input or initializer"
                    raise self.fail(f"{describe(node)}: value '{out}' is already defined by {other}")
                producers[out] = node
        for node in graph.node:
            for i, name in enumerate(node.input):
                if name and name not in defined and name not in producers:
                    raise self.fail(f"{describe(node)}: input #{i} '{name}' is not defined "
                                    "(no graph input, initializer or node output has this name; missing initializer?)")
        for out in graph.output:
            if out.name not in defined and out.name not in producers:
                raise self.fail(f"graph output '{out.name}' is not produced by any node")
        self.producers = producers
        self.order = self.topological_order(graph.node, producers)
        self.check_supported(graph.node)

    def topological_order(self, nodes, producers: dict[str, onnx.NodeProto]) -> list[onnx.NodeProto]:
        """Kahn's algorithm; a cycle is an error that lists the nodes on it."""
        index = {id(n): i for i, n in enumerate(nodes)}
        deps = {i: {index[id(producers[x])] for x in n.input if x in producers} for i, n in enumerate(nodes)}
        users: dict[int, list[int]] = {i: [] for i in deps}
        for i, ds in deps.items():
            for d in ds:
                users[d].append(i)
        waiting = {i: len(ds) for i, ds in deps.items()}
        ready = [i for i, n in waiting.items() if n == 0]
        order = []
        while ready:
            i = ready.pop(0)
            order.append(i)
            for u in users[i]:
                waiting[u] -= 1
                if waiting[u] == 0:
                    ready.append(u)
        if len(order) < len(nodes):
            raise self.fail("the graph has a cycle: " + " -> ".join(describe(nodes[i]) for i in self.find_cycle(deps, set(order))))
        return [nodes[i] for i in order]

    @staticmethod
    def find_cycle(deps: dict[int, set[int]], done: set[int]) -> list[int]:
        start = next(i for i in deps if i not in done)
        path, seen = [start], {start: 0}
        while True:
            nxt = next(d for d in sorted(deps[path[-1]]) if d not in done)
            if nxt in seen:
                cycle = path[seen[nxt]:] + [nxt]
                return list(reversed(cycle))
            seen[nxt] = len(path)
            path.append(nxt)

    def check_supported(self, nodes) -> None:
        from lutc.frontends.onnx_ops import CONVERTERS

        missing: dict[str, list[str]] = {}
        for node in nodes:
            key = op_key(node)
            if key in CONVERTERS:
                continue
            if node.domain in DEFAULT_DOMAINS and self.function_schema(node) is not None:
                continue
            missing.setdefault(key, []).append(node_label(node))
        if missing:
            parts = []
            for key, names in missing.items():
                shown = ", ".join(f"'{n}'" for n in names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
                parts.append(f"{key} ({'nodes' if len(names) > 1 else 'node'} {shown})")
            noun = "operator" if len(missing) == 1 else "operators"
            raise self.fail(f"unsupported ONNX {noun}: {'; '.join(parts)}")

    def function_schema(self, node: onnx.NodeProto, opset: int | None = None):
        """The schema of a default-domain op that has a (context-dependent) function body, or None."""
        try:
            schema = onnx.defs.get_schema(node.op_type, opset or self.opset, "")
        except Exception:
            return None
        return schema if (schema.has_function or schema.has_context_dependent_function) else None

    # -- conversion -------------------------------------------------------------------------
    def convert(self) -> Module:
        graph = self.model.graph
        for tensor in graph.initializer:
            if _uses_external_data(tensor):
                try:
                    load_external_data(tensor, self.base_dir)
                except UnsupportedError as err:
                    raise self.fail(str(err)) from None
        initializers = {t.name for t in graph.initializer}
        args = [i for i in graph.input if i.name not in initializers]
        arg_types = [self.bind_type(i) for i in args]
        self.used_names = {x for n in graph.node for x in n.input} | {o.name for o in graph.output}
        fn = make_function("main", arg_types, loc=self.file_loc)
        body = function_body(fn)
        self.builder = Builder(body, loc=self.file_loc)
        for info, arg in zip(args, body.args):
            self.env[info.name] = arg
        for tensor in graph.initializer:
            try:
                array, element = tensor_to_array(tensor, f"initializer '{tensor.name}'")
            except UnsupportedError as err:
                raise self.fail(str(err)) from None
            except Exception as err:
                raise self.fail(f"initializer '{tensor.name}' cannot be read: {err}") from None
            self.env[tensor.name] = Const(TensorType(array.shape, element), array, name=tensor.name, origin=f"initializer '{tensor.name}'")
        for node in self.order:
            self.convert_node(node, self.opset)
        results = []
        for out in graph.output:
            handle = self.env[out.name]
            declared = self.value_info_type(out, strict=False)
            if declared is not None and declared.element != handle.type.element:
                raise self.fail(f"graph output '{out.name}' is declared {declared.element} but computes {handle.type.element}")
            results.append(self.materialize(handle))
        self.builder.create("func.return", results, {}, result_types=[], loc=self.file_loc)
        fn.set_attr("arg_names", [i.name for i in args])
        fn.set_attr("result_names", [o.name for o in graph.output])
        sync_function_type(fn)
        remove_dead_ops(body)
        module = Module(loc=self.file_loc)
        module.body.append(fn)
        return module

    def bind_type(self, info: onnx.ValueInfoProto) -> TensorType:
        return self.value_info_type(info)

    def convert_node(self, node: onnx.NodeProto, opset: int) -> None:
        from lutc.frontends.onnx_ops import CONVERTERS

        loc = Location(name=node_label(node), file=self.path)
        inputs = [self.env[name] if name else None for name in node.input]
        outputs = [self.inferred.get(o) for o in node.output]
        ctx = NodeContext(self, node, opset, inputs, loc, outputs)
        converter = CONVERTERS.get(op_key(node))
        try:
            if converter is None:
                raise ExpandInstead()
            results = converter(ctx)
        except ExpandInstead:
            self.expand_function(node, opset, inputs)
            return
        except UnsupportedError as err:
            raise self.fail(f"{describe(node)}: {err}") from None
        except VerifyError as err:
            raise self.fail(f"{describe(node)}: {err.message}") from None
        except LutcError:
            raise
        except Exception as err:  # malformed attributes and the like: still name the node
            raise self.fail(f"{describe(node)}: cannot convert ({type(err).__name__}: {err})") from None
        if not isinstance(results, (list, tuple)):
            results = [results]
        for i, name in enumerate(node.output):
            if not name:
                continue
            if i >= len(results) or results[i] is None:
                if name in self.used_names:
                    raise self.fail(f"{describe(node)}: output #{i} '{name}' is not supported")
                continue
            self.env[name] = results[i]

    def expand_function(self, node: onnx.NodeProto, opset: int, inputs: list[Handle | None]) -> None:
        """Convert `node` through the function body its ONNX schema defines."""
        schema = self.function_schema(node, opset) if node.domain in DEFAULT_DOMAINS else None
        if schema is None:
            raise self.fail(f"{describe(node)}: this form of the operator is not supported")
        full = onnx.NodeProto()
        full.CopyFrom(node)
        given = {a.name for a in node.attribute}
        for name, attr in schema.attributes.items():
            if name not in given and attr.default_value.name:
                full.attribute.append(attr.default_value)
        try:
            if schema.has_function and not schema.has_context_dependent_function:
                body = schema.function_body
            else:
                types = [onnx.helper.make_tensor_type_proto(ELEMENT_TO_ONNX[h.type.element.name], h.type.shape) if h is not None
                         else onnx.TypeProto() for h in inputs]
                raw = schema.get_context_dependent_function(full.SerializeToString(), [t.SerializeToString() for t in types])
                body = onnx.FunctionProto()
                body.ParseFromString(raw)
        except Exception as err:
            raise self.fail(f"{describe(node)}: cannot expand its ONNX function body: {err}") from None
        if not body.node:
            raise self.fail(f"{describe(node)}: this form of the operator is not supported (its function body is empty)")
        body_opset = next((o.version for o in body.opset_import if o.domain in DEFAULT_DOMAINS), opset)
        prefix = f"{node_label(node)}/"
        rename = {formal: actual for formal, actual in zip(body.input, node.input)}
        rename.update({formal: actual for formal, actual in zip(body.output, node.output) if actual})
        attributes = {a.name: a for a in full.attribute}
        inner_nodes = []
        for inner in body.node:
            copy = onnx.NodeProto()
            copy.CopyFrom(inner)
            copy.name = prefix + (inner.name or inner.op_type)
            del copy.input[:]
            del copy.output[:]
            copy.input.extend(rename.get(x, prefix + x) if x else "" for x in inner.input)
            copy.output.extend(rename.get(x, prefix + x) if x else "" for x in inner.output)
            del copy.attribute[:]
            for a in inner.attribute:
                if a.ref_attr_name:
                    if a.ref_attr_name in attributes:
                        ref = onnx.AttributeProto()
                        ref.CopyFrom(attributes[a.ref_attr_name])
                        ref.name = a.name
                        copy.attribute.append(ref)
                else:
                    copy.attribute.append(a)
            inner_nodes.append(copy)
        for name in body.input[len(node.input):]:  # missing optional inputs of the function
            self.env.setdefault(prefix + name, None)
        self.used_names |= {x for n in inner_nodes for x in n.input}
        from lutc.frontends.onnx_ops import CONVERTERS

        for inner in inner_nodes:
            if op_key(inner) not in CONVERTERS and self.function_schema(inner, body_opset) is None:
                raise self.fail(f"{describe(node)}: its ONNX function body uses {inner.op_type}, which is not supported")
            self.convert_node(inner, body_opset)

    # -- emitting ---------------------------------------------------------------------------
    def materialize(self, handle: Handle) -> Value:
        if isinstance(handle, Value):
            return handle
        cached = self.materialized.get(id(handle))
        if cached is not None:
            return cached[1]
        array = handle.value
        attr = elements_attr(array, handle.type, handle.name)
        value = self.builder.create("graph.constant", [], {"value": attr}, result_types=[handle.type],
                                    loc=Location(name=handle.name, file=self.path)).result
        self.materialized[id(handle)] = (handle, value)  # holding the Const keeps its id unique
        return value

    def emit(self, name: str, operands: list[Handle], attributes: dict[str, Any], loc: Location, result_types=None) -> list[Handle]:
        attributes = {k: v for k, v in attributes.items() if v is not None}
        opdef = lookup(name)
        if result_types is None:
            result_types = infer_result_types(name, operands, attributes, loc)
        foldable = (operands and all(isinstance(h, Const) for h in operands) and opdef is not None and opdef.reference is not None
                    and opdef.has(Trait.PURE) and not opdef.reference_needs_op)
        if foldable:
            out_elements = sum(t.num_elements for t in result_types) if all(t.is_static for t in result_types) else 0
            in_elements = sum(h.type.num_elements for h in operands)
            if out_elements <= max(FOLD_LIMIT, in_elements):
                return self.fold(name, opdef, operands, attributes, result_types, loc)
        values = [self.materialize(h) for h in operands]
        op = self.builder.create(name, values, attributes, result_types=result_types, loc=loc)
        return list(op.results)

    def fold(self, name, opdef, operands: list[Const], attributes, result_types, loc: Location) -> list[Const]:
        from lutc.ir.attributes import to_attr

        attrs = opdef.attr_values({k: to_attr(v) for k, v in attributes.items()})
        cache: dict[str, Any] = {}

        def compute_all():
            if "out" not in cache:
                out = opdef.reference(*[h.value for h in operands], **attrs)
                cache["out"] = list(out) if isinstance(out, (list, tuple)) else [out]
            return cache["out"]

        # Named after the largest constant it derives from (a transposed weight keeps the weight's name).
        largest = max(operands, key=lambda h: h.type.num_elements)
        base = largest.name if largest.name not in ("cst", "scalar") else (loc.name or "folded")
        results = []
        for i, t in enumerate(result_types):
            const = Const(t, compute=lambda i=i: compute_all()[i], name=base if len(result_types) == 1 else f"{base}_{i}",
                          origin=f"'{name}' at {loc.name}")
            if not t.is_static:  # data-dependent size: evaluate now to learn it
                try:
                    array = np.asarray(compute_all()[i])
                except Exception as err:
                    raise UnsupportedError(f"cannot evaluate '{name}' at import time: {err}") from None
                const = Const(TensorType(array.shape, t.element), array.astype(t.element.np_dtype), name=const.name)
            results.append(const)
        return results


def remove_dead_ops(block) -> None:
    """Erase pure ops whose results are unused (converters may emit values nobody reads)."""
    for op in reversed(list(block.ops)):
        opdef = lookup(op.name)
        if opdef is not None and opdef.has(Trait.PURE) and op.results and not any(r.uses for r in op.results):
            op.erase()


def import_onnx(model: str | os.PathLike | onnx.ModelProto, *, input_shapes: Mapping[str, Sequence[int]] | None = None,
                constant_inputs: Mapping[str, np.ndarray] | None = None, base_dir: str | os.PathLike | None = None) -> Module:
    """Import an ONNX model (a path or a ModelProto) as a Module with one function, `main`.

    `input_shapes` binds dynamic input dimensions (`{"input_ids": (1, 128)}`) before shape
    inference, so that shape arithmetic folds. `constant_inputs` turns graph inputs into
    constants (`{"axes": np.array([1])}`): for models that pass shapes or axes as inputs.
    `base_dir` is where external data lives for a ModelProto (a path's own folder otherwise).
    Errors are `lutc.LutcError`s naming the file, the node and the cause.
    """
    if isinstance(model, onnx.ModelProto):
        path = None
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        proto = onnx.ModelProto()
        proto.CopyFrom(model)
    else:
        file = Path(model)
        path = str(file)
        base = Path(base_dir) if base_dir is not None else (file.parent if str(file.parent) else Path("."))
        proto = load_model(file)
    module = OnnxImporter(proto, path, base, input_shapes, constant_inputs).run()
    verify(module)  # a converter bug shows here, at the op, rather than later in a pass
    return module


__all__ = ["import_onnx", "Const", "NodeContext", "ExpandInstead", "UnsupportedError", "MIN_OPSET", "MAX_OPSET"]
