"""Lower a lutc function (graph and lut dialects) to a TVM Relax module.

Ordinary graph ops become Relax ops (TVM's legalization gives their TIR); `graph.matmul`
with a 2-D right operand, `graph.mpgemm`, `lut.table` and `lut.gemm` become `R.call_tir`
to the kernels in kernels.py; `graph.fused` bodies are lowered inline. Constants are known
at compile time: small ones become Relax constants, large ones (and repacked weights)
become parameters of `main`, passed at run time and saved beside the library.

Ops whose operands are all constants are evaluated here with the reference implementation
(constant folding), so shape arithmetic on constants never reaches TVM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import tvm
import tvm_ffi
from tvm import relax
from tvm.relax import op as R

from lutc.diagnostics import LutcError
from lutc.ir.core import Block, Module, Operation, Value, function_body
from lutc.ir.dialects import lut as lutd
from lutc.ir.dialects.graph import default_zero_point
from lutc.ir.dialects.graph_tensor import slice_bounds
from lutc.ir.interpreter import Interpreter, input_names, output_names
from lutc.ir.opdef import lookup
from lutc.ir.types import TensorType

from lutc.backends.cpu import kernels

# Constants with more elements than this become parameters (kept out of the code).
PARAM_MIN_ELEMENTS = 64


def tvm_dtype(t: TensorType) -> str:
    """The TVM storage dtype of a lutc tensor type (sub-byte types take a byte, as in NumPy)."""
    if t.element.is_bool:
        return "bool"
    return str(t.element.np_dtype) if t.element.name != "bf16" else "bfloat16"


def struct_info(t: TensorType) -> relax.TensorType:
    return relax.TensorType([int(d) for d in t.shape], tvm_dtype(t))


@dataclass
class Lowered:
    """The Relax module and what the runtime needs to call it."""

    mod: tvm.IRModule
    params: list[np.ndarray]
    input_names: list[str]
    input_types: list[TensorType]
    output_names: list[str]
    output_types: list[TensorType]
    lut_gemm_kernels: list[str] = field(default_factory=list)  # per lut.gemm: "pshufb" or "generic: why"


Handler = Callable[["Lowerer", Operation], list[relax.Expr]]
HANDLERS: dict[str, Handler] = {}


def handles(*names: str):
    def register(fn: Handler) -> Handler:
        for name in names:
            HANDLERS[name] = fn
        return fn

    return register


@dataclass
class Lowerer:
    bb: relax.BlockBuilder = field(default_factory=relax.BlockBuilder)
    env: dict[int, relax.Expr] = field(default_factory=dict)       # id(Value) -> Relax expression
    consts: dict[int, np.ndarray] = field(default_factory=dict)    # id(Value) -> compile-time value
    param_vars: list[relax.Var] = field(default_factory=list)
    params: list[np.ndarray] = field(default_factory=list)
    kernels: dict[str, relax.GlobalVar] = field(default_factory=dict)
    # The target can run AVX2 code (checked at compile time: emitting an AVX2 intrinsic for
    # a CPU without it aborts LLVM, and the code would not run there).
    avx2: bool = False
    # Which lut.gemm kernel each op got ("pshufb" or "generic: <reason>"), in op order.
    lut_gemm_kernels: list[str] = field(default_factory=list)

    # -- values -------------------------------------------------------------------------
    def const_value(self, value: Value) -> np.ndarray | None:
        return self.consts.get(id(value))

    def param(self, array: np.ndarray, hint: str = "p") -> relax.Expr:
        """A compile-time array: a Relax constant if small, else a new parameter of main."""
        array = np.ascontiguousarray(array)
        if array.size <= PARAM_MIN_ELEMENTS:
            return relax.const(array, str(array.dtype) if array.dtype != np.bool_ else "bool")
        var = relax.Var(f"{hint}{len(self.params)}", relax.TensorType(list(array.shape), str(array.dtype)))
        self.param_vars.append(var)
        self.params.append(array)
        return var

    def expr(self, value: Value) -> relax.Expr:
        """The Relax expression of `value`, materializing a constant on first use."""
        if id(value) not in self.env:
            array = self.consts[id(value)]
            self.env[id(value)] = self.param(array.astype(value.type.element.np_dtype))
        return self.env[id(value)]

    def emit(self, expr: relax.Expr) -> relax.Expr:
        return self.bb.emit(expr)

    def call_tir(self, name: str, func, args: list[relax.Expr], out: list[relax.TensorType]) -> relax.Expr:
        """call_tir to a kernel, adding each distinct kernel to the module once."""
        key = f"{name}_{tvm_ffi.structural_hash(func) & 0xFFFFFFFF:08x}"
        if key not in self.kernels:
            self.kernels[key] = self.bb.add_func(func.with_attr("global_symbol", key), key)
        return self.emit(relax.call_tir(self.kernels[key], args, out if len(out) > 1 else out[0]))

    # -- ops ----------------------------------------------------------------------------
    def lower_block(self, block: Block) -> list[Value]:
        """Lower every op but the terminator; returns the terminator's operands."""
        for op in block.ops[:-1]:
            self.lower_op(op)
        return list(block.ops[-1].operands)

    def lower_op(self, op: Operation) -> None:
        if op.name == "graph.constant":
            value = np.asarray(op.attr("value"), op.result.type.element.np_dtype)
            self.consts[id(op.result)] = value.reshape(op.result.type.shape)
            return
        operand_consts = [self.const_value(v) for v in op.operands]
        opdef = lookup(op.name)
        if (not op.regions and op.operands and all(c is not None for c in operand_consts) and opdef is not None
                and opdef.reference is not None and not opdef.reference_needs_op):
            # Constant folding with the reference implementation.
            for result, value in zip(op.results, Interpreter(Module()).evaluate(op, operand_consts)):
                self.consts[id(result)] = value
            return
        outs = HANDLERS[op.name](self, op)
        for result, out in zip(op.results, outs):
            self.env[id(result)] = out


def _bind_tuple(lw: Lowerer, tup: relax.Expr, count: int) -> list[relax.Expr]:
    return [lw.emit(relax.TupleGetItem(tup, i)) for i in range(count)]


def _type(value: Value) -> TensorType:
    return value.type


def _rows(lw: Lowerer, value: Value) -> tuple[relax.Expr, int, int]:
    """`value` (..., K) viewed as (M, K) for a kernel."""
    t = _type(value)
    k = t.shape[-1]
    m = math.prod(t.shape[:-1])
    x = lw.expr(value)
    if t.rank != 2:
        x = lw.emit(R.reshape(x, (m, k)))
    return x, m, k


def _unrows(lw: Lowerer, y: relax.Expr, result: Value) -> relax.Expr:
    t = _type(result)
    return y if t.rank == 2 else lw.emit(R.reshape(y, [int(d) for d in t.shape]))


def _as_dtype(lw: Lowerer, expr: relax.Expr, value: Value, dtype: str) -> relax.Expr:
    return expr if tvm_dtype(_type(value)) == dtype else lw.emit(R.astype(expr, dtype))


# -- elementwise --------------------------------------------------------------------------

UNARY = {
    "graph.exp": R.exp, "graph.log": R.log, "graph.sqrt": R.sqrt, "graph.rsqrt": R.rsqrt, "graph.tanh": R.tanh,
    "graph.erf": R.erf, "graph.sigmoid": R.sigmoid, "graph.silu": R.nn.silu, "graph.neg": R.negative,
    "graph.abs": R.abs, "graph.relu": R.nn.relu,
}
BINARY = {
    "graph.add": R.add, "graph.sub": R.subtract, "graph.mul": R.multiply, "graph.div": R.divide,
    "graph.max": R.maximum, "graph.min": R.minimum, "graph.pow": R.power, "graph.equal": R.equal,
    "graph.less": R.less, "graph.greater": R.greater, "graph.less_equal": R.less_equal,
    "graph.greater_equal": R.greater_equal, "graph.and": R.logical_and, "graph.or": R.logical_or,
    "graph.xor": R.logical_xor,
}


@handles(*UNARY)
def _unary(lw: Lowerer, op: Operation):
    return [lw.emit(UNARY[op.name](lw.expr(op.operands[0])))]


@handles(*BINARY)
def _binary(lw: Lowerer, op: Operation):
    return [lw.emit(BINARY[op.name](lw.expr(op.operands[0]), lw.expr(op.operands[1])))]


@handles("graph.reciprocal")
def _reciprocal(lw: Lowerer, op: Operation):
    one = relax.const(1.0, tvm_dtype(_type(op.result)))
    return [lw.emit(R.divide(one, lw.expr(op.operands[0])))]


@handles("graph.gelu")
def _gelu(lw: Lowerer, op: Operation):
    fn = R.nn.gelu_tanh if op.attr("approximate") == "tanh" else R.nn.gelu
    return [lw.emit(fn(lw.expr(op.operands[0])))]


@handles("graph.clip")
def _clip(lw: Lowerer, op: Operation):
    x, dtype = lw.expr(op.operands[0]), tvm_dtype(_type(op.result))
    if op.attr("min") is not None:
        x = lw.emit(R.maximum(x, relax.const(op.attr("min"), dtype)))
    if op.attr("max") is not None:
        x = lw.emit(R.minimum(x, relax.const(op.attr("max"), dtype)))
    return [x]


@handles("graph.where")
def _where(lw: Lowerer, op: Operation):
    return [lw.emit(R.where(*(lw.expr(v) for v in op.operands)))]


@handles("graph.cast")
def _cast(lw: Lowerer, op: Operation):
    x, to = lw.expr(op.operands[0]), _type(op.result)
    if to.element.is_bool:
        return [lw.emit(R.not_equal(x, relax.const(0, tvm_dtype(_type(op.operands[0])))))]
    return [lw.emit(R.astype(x, tvm_dtype(to)))]


# -- layout -------------------------------------------------------------------------------


@handles("graph.reshape", "graph.squeeze", "graph.unsqueeze")
def _reshape(lw: Lowerer, op: Operation):
    return [lw.emit(R.reshape(lw.expr(op.operands[0]), [int(d) for d in _type(op.result).shape]))]


@handles("graph.transpose")
def _transpose(lw: Lowerer, op: Operation):
    return [lw.emit(R.permute_dims(lw.expr(op.operands[0]), [int(p) for p in op.attr("perm")]))]


@handles("graph.broadcast_to")
def _broadcast_to(lw: Lowerer, op: Operation):
    return [lw.emit(R.broadcast_to(lw.expr(op.operands[0]), [int(d) for d in _type(op.result).shape]))]


@handles("graph.concat")
def _concat(lw: Lowerer, op: Operation):
    return [lw.emit(R.concat([lw.expr(v) for v in op.operands], axis=op.attr("axis")))]


@handles("graph.split")
def _split(lw: Lowerer, op: Operation):
    indices = [int(i) for i in np.cumsum(op.attr("sizes"))[:-1]]
    tup = lw.emit(R.split(lw.expr(op.operands[0]), indices, axis=op.attr("axis")))
    return _bind_tuple(lw, tup, len(op.results))


@handles("graph.slice")
def _slice(lw: Lowerer, op: Operation):
    x, shape = lw.expr(op.operands[0]), _type(op.operands[0]).shape
    for start, end, axis, step in zip(op.attr("starts"), op.attr("ends"), op.attr("axes"), op.attr("steps")):
        axis %= len(shape)
        # The ONNX clamping is resolved here, on static shapes: explicit indices per axis.
        index = list(range(shape[axis])[slice(*slice_bounds(shape[axis], start, end, step))])
        if step > 0 and index:
            x = lw.emit(R.strided_slice(x, [axis], [index[0]], [index[-1] + 1], [step]))
        else:
            x = lw.emit(R.take(x, relax.const(np.asarray(index, np.int64)), axis=axis))
    return [x]


@handles("graph.gather")
def _gather(lw: Lowerer, op: Operation):
    x_type = _type(op.operands[0])
    axis = op.attr("axis") % x_type.rank
    dim = x_type.shape[axis]
    known = lw.const_value(op.operands[1])
    if known is not None:
        indices = lw.param(np.where(known < 0, known + dim, known).astype(np.int64))
    else:
        raw = lw.expr(op.operands[1])
        dtype = tvm_dtype(_type(op.operands[1]))
        indices = lw.emit(R.where(R.less(raw, relax.const(0, dtype)), R.add(raw, relax.const(dim, dtype)), raw))
    taken = lw.emit(R.take(lw.expr(op.operands[0]), indices, axis=axis))
    # Relax's take keeps the axis for 0-d indices; the IR type (NumPy semantics) drops it.
    return [_unrows_any(lw, taken, op.result)]


# -- reductions and normalization ---------------------------------------------------------

REDUCE = {"graph.reduce_sum": R.sum, "graph.reduce_mean": R.mean, "graph.reduce_max": R.max, "graph.reduce_min": R.min}


@handles(*REDUCE)
def _reduce(lw: Lowerer, op: Operation):
    rank = _type(op.operands[0]).rank
    axes = sorted(a % rank for a in op.attr("axes")) or list(range(rank))
    return [lw.emit(REDUCE[op.name](lw.expr(op.operands[0]), axis=axes, keepdims=bool(op.attr("keepdims"))))]


@handles("graph.softmax", "graph.log_softmax")
def _softmax(lw: Lowerer, op: Operation):
    fn = R.nn.softmax if op.name == "graph.softmax" else R.nn.log_softmax
    return [lw.emit(fn(lw.expr(op.operands[0]), axis=op.attr("axis")))]


def _norm_weight(lw: Lowerer, value: Value, norm_shape: list[int]) -> relax.Expr:
    """Relax's norms want the weight shaped exactly as the normalized dims; lutc's broadcast."""
    expr = lw.expr(value)
    return expr if list(_type(value).shape) == norm_shape else lw.emit(R.broadcast_to(expr, norm_shape))


@handles("graph.layer_norm", "graph.rms_norm")
def _norm(lw: Lowerer, op: Operation):
    t = _type(op.operands[0])
    axes = list(range(op.attr("axis") % t.rank, t.rank))
    norm_shape = [int(t.shape[a]) for a in axes]
    x, eps = lw.expr(op.operands[0]), float(op.attr("epsilon"))
    gamma = _norm_weight(lw, op.operands[1], norm_shape)
    if op.name == "graph.rms_norm":
        return [lw.emit(R.nn.rms_norm(x, gamma, axes, eps))]
    if len(op.operands) > 2:
        beta = _norm_weight(lw, op.operands[2], norm_shape)
    else:
        beta = relax.const(np.zeros(norm_shape, t.element.np_dtype))
    return [lw.emit(R.nn.layer_norm(x, gamma, beta, axes, eps))]


@handles("graph.batch_norm")
def _batch_norm(lw: Lowerer, op: Operation):
    x, scale, bias, mean, var = (lw.expr(v) for v in op.operands)
    t = _type(op.operands[0])
    shape = [1, int(t.shape[1])] + [1] * (t.rank - 2)
    r = lambda e: lw.emit(R.reshape(e, shape))  # noqa: E731
    eps = relax.const(float(op.attr("epsilon")), tvm_dtype(t))
    norm = lw.emit(R.divide(R.subtract(x, r(mean)), R.sqrt(R.add(r(var), eps))))
    return [lw.emit(R.add(R.multiply(norm, r(scale)), r(bias)))]


# -- convolution and pooling --------------------------------------------------------------


def _spatial(op: Operation, name: str, default: int, d: int = 2) -> list[int]:
    values = list(op.attr(name) or [])
    return [int(v) for v in values] if values else [default] * d


@handles("graph.conv2d")
def _conv2d(lw: Lowerer, op: Operation):
    x, w = lw.expr(op.operands[0]), lw.expr(op.operands[1])
    y = lw.emit(R.nn.conv2d(x, w, strides=_spatial(op, "strides", 1), padding=_spatial(op, "pads", 0, 4),
                            dilation=_spatial(op, "dilations", 1), groups=int(op.attr("groups"))))
    if len(op.operands) > 2:
        bias = lw.emit(R.reshape(lw.expr(op.operands[2]), [1, -1, 1, 1]))
        y = lw.emit(R.add(y, bias))
    return [y]


@handles("graph.max_pool2d", "graph.avg_pool2d")
def _pool2d(lw: Lowerer, op: Operation):
    fn = R.nn.max_pool2d if op.name == "graph.max_pool2d" else R.nn.avg_pool2d
    extra = {} if op.name == "graph.max_pool2d" else {"count_include_pad": bool(op.attr("count_include_pad"))}
    return [lw.emit(fn(lw.expr(op.operands[0]), pool_size=[int(k) for k in op.attr("kernel")],
                       strides=_spatial(op, "strides", 1), padding=_spatial(op, "pads", 0, 4),
                       dilation=_spatial(op, "dilations", 1), ceil_mode=bool(op.attr("ceil_mode")), **extra))]


# -- matmuls and the LUT ops --------------------------------------------------------------


@handles("graph.matmul")
def _matmul(lw: Lowerer, op: Operation):
    a, b, out = _type(op.operands[0]), _type(op.operands[1]), _type(op.result)
    if b.rank == 2 and a.rank >= 2 and a.element.name == "f32" and b.element.name == "f32":
        x, m, k = _rows(lw, op.operands[0])
        n = int(b.shape[1])
        y = lw.call_tir("lutc_dense_matmul", kernels.dense_matmul(m, k, n), [x, lw.expr(op.operands[1])],
                        [relax.TensorType([m, n], "float32")])
        return [_unrows(lw, y, op.result)]
    # Batched and vector products (attention): TVM's legalized matmul.
    return [lw.emit(R.matmul(lw.expr(op.operands[0]), lw.expr(op.operands[1]), out_dtype=tvm_dtype(out)))]


def _zeros_arg(lw: Lowerer, op: Operation, index: int, bits: int, ternary: bool) -> tuple[relax.Expr, bool, str]:
    """Per-row zero points, or a 1x1 constant with the default one (the kernels index it with stride 0)."""
    if len(op.operands) > index:
        zeros = op.operands[index]
        return lw.expr(zeros), True, tvm_dtype(_type(zeros))
    return relax.const(np.full((1, 1), default_zero_point(bits, ternary), np.float32)), False, "float32"


@handles("graph.mpgemm")
def _mpgemm(lw: Lowerer, op: Operation):
    bits, group, ternary = op.attr("bits"), op.attr("group_size"), bool(op.attr("ternary"))
    n, k = (int(d) for d in _type(op.operands[1]).shape)
    dtype = tvm_dtype(_type(op.result))
    x, m, _ = _rows(lw, op.operands[0])
    groups = -(-k // group)
    kp = groups * group
    if kp != k:  # the kernel works on whole groups: zero activations add nothing
        x = lw.emit(R.concat([x, relax.const(np.zeros((m, kp - k), _type(op.operands[0]).element.np_dtype))], axis=1))
    codes = lw.const_value(op.operands[1])
    words = kernels.word_packing_for(bits, group, n) if codes is not None else None
    if words is not None:  # weights known: the register-blocked kernel (kernels.mpgemm_words)
        codes = np.pad(codes.astype(np.uint8), ((0, 0), (0, kp - k)))
        packed = lw.param(kernels.pack_codes_words(codes, words), "w")
        scales = _as_dtype(lw, lw.expr(op.operands[2]), op.operands[2], dtype)
        zeros, per_row, zeros_dtype = _zeros_arg(lw, op, 3, bits, ternary)
        func = kernels.mpgemm_words(m, kp, n, group, words, per_row_zeros=per_row, zeros_dtype=zeros_dtype, dtype=dtype)
        y = lw.call_tir("lutc_mpgemm", func, [x, packed, scales, zeros], [relax.TensorType([m, n], dtype)])
        return [_unrows(lw, y, op.result)]
    if codes is not None:  # weights known, odd group size: byte packing (kernels.pack_codes)
        layout = kernels.packing_for(bits, group)
        codes = np.pad(codes.astype(np.uint8), ((0, 0), (0, kp - k)))
        packed = lw.param(kernels.pack_codes(codes, layout), "w")
    else:  # codes computed at run time: one code per byte, the IR's own layout
        layout = kernels.PackedCodes(8, 1, kernels._largest_lanes(group, 32))
        packed = lw.expr(op.operands[1])
        if kp != k:
            packed = lw.emit(R.concat([packed, relax.const(np.zeros((n, kp - k), np.uint8))], axis=1))
    scales = _as_dtype(lw, lw.expr(op.operands[2]), op.operands[2], dtype)
    zeros, per_row, zeros_dtype = _zeros_arg(lw, op, 3, bits, ternary)
    func = kernels.mpgemm_dequant(m, kp, n, group, layout, per_row_zeros=per_row, zeros_dtype=zeros_dtype, dtype=dtype)
    y = lw.call_tir("lutc_mpgemm", func, [x, packed, scales, zeros], [relax.TensorType([m, n], dtype)])
    return [_unrows(lw, y, op.result)]


@handles("lut.table")
def _lut_table(lw: Lowerer, op: Operation):
    g, symmetric, base3 = op.attr("g"), bool(op.attr("symmetric")), bool(op.attr("base3"))
    x, m, k = _rows(lw, op.operands[0])
    tables_t, scales_t, sums_t = (_type(r) for r in op.results)
    entries = lutd.stored_entries(g, symmetric, base3)
    func = kernels.lut_table(m, k, g=g, entries=entries, table_dtype=tvm_dtype(tables_t), act_group=op.attr("act_group"),
                             sum_group=op.attr("sum_group"), dtype=tvm_dtype(_type(op.operands[0])))
    coef = relax.const(lutd.table_coefficients(g, symmetric, base3))
    out = [relax.TensorType([m] + [int(d) for d in t.shape[-2 if t is tables_t else -1:]], tvm_dtype(t))
           for t in (tables_t, scales_t, sums_t)]
    tup = lw.call_tir("lutc_lut_table", func, [x, coef], out)
    return [_unrows_any(lw, e, r) for e, r in zip(_bind_tuple(lw, tup, 3), op.results)]


def _unrows_any(lw: Lowerer, expr: relax.Expr, result: Value) -> relax.Expr:
    shape = [int(d) for d in _type(result).shape]
    return lw.emit(R.reshape(expr, shape)) if _type(result).rank != expr.ty.ndim else expr


def _flat(lw: Lowerer, value: Value, tail: int) -> relax.Expr:
    """(batch..., tail dims) -> (M, tail dims)."""
    t = _type(value)
    shape = [math.prod(t.shape[: t.rank - tail])] + [int(d) for d in t.shape[t.rank - tail:]]
    expr = lw.expr(value)
    return expr if t.rank == tail + 1 else lw.emit(R.reshape(expr, shape))


@handles("lut.gemm")
def _lut_gemm(lw: Lowerer, op: Operation):
    a = {name: op.attr(name) for name in ("bits", "group_size", "g", "act_group", "sum_group")}
    symmetric, base3, ternary = bool(op.attr("symmetric")), bool(op.attr("base3")), bool(op.attr("ternary"))
    tables_t, planes_t = _type(op.operands[0]), _type(op.operands[3])
    dtype = tvm_dtype(_type(op.result))
    tables, table_scales, sums = _flat(lw, op.operands[0], 2), _flat(lw, op.operands[1], 1), _flat(lw, op.operands[2], 1)
    m = math.prod(tables_t.shape[:-2])
    j, entries = int(tables_t.shape[-2]), int(tables_t.shape[-1])
    p, n = int(planes_t.shape[0]), int(planes_t.shape[1])
    reason = _pshufb_reason(lw, op, dtype)
    if reason is None:
        lw.lut_gemm_kernels.append("pshufb")
        return [_lut_gemm_pshufb(lw, op, tables, table_scales, sums, m, j, n, entries)]
    lw.lut_gemm_kernels.append(f"generic: {reason}")
    planes = lw.const_value(op.operands[3])
    planes = lw.param(planes.astype(np.uint8), "planes") if planes is not None else lw.expr(op.operands[3])
    scales = _as_dtype(lw, lw.expr(op.operands[4]), op.operands[4], dtype)
    zeros, per_row, zeros_dtype = _zeros_arg(lw, op, 5, a["bits"], ternary)
    func = kernels.lut_gemm(
        m, n, j, planes=p, bits=a["bits"], group_size=a["group_size"], g=a["g"], entries=entries, symmetric=symmetric,
        base3=base3, magnitude_bits=lutd.magnitude_bits(a["g"], symmetric, base3), table_dtype=tvm_dtype(tables_t),
        act_group=a["act_group"], sum_group=a["sum_group"], sums_count=int(_type(op.operands[2]).shape[-1]),
        scale_count=int(_type(op.operands[1]).shape[-1]), per_row_zeros=per_row, zeros_dtype=zeros_dtype, dtype=dtype)
    y = lw.call_tir("lutc_lut_gemm", func, [tables, table_scales, sums, planes, scales, zeros],
                    [relax.TensorType([m, n], dtype)])
    return [_unrows(lw, y, op.result)]


def _pshufb_reason(lw: Lowerer, op: Operation, dtype: str) -> str | None:
    """Why this lut.gemm cannot use the pshufb kernel (None: it can)."""
    if not lw.avx2:
        return "the target has no AVX2"
    reason = kernels.pshufb_unsupported(
        g=op.attr("g"), bits=op.attr("bits"), symmetric=bool(op.attr("symmetric")), base3=bool(op.attr("base3")),
        table_dtype=tvm_dtype(_type(op.operands[0])), group_size=op.attr("group_size"), act_group=op.attr("act_group"),
        dtype=dtype)
    if reason is not None:
        return reason
    if tvm_dtype(_type(op.operands[2])) != "float32":
        return "sums are not f32"
    if any(lw.const_value(v) is None for v in op.operands[3:]):
        return "planes, scales or zero points known only at run time (the kernel repacks them at compile time)"
    return None


def _lut_gemm_pshufb(lw: Lowerer, op: Operation, tables, table_scales, sums, m: int, j: int, n: int,
                     entries: int) -> relax.Expr:
    """The AVX2 pshufb kernel: planes, scales and zero points repacked now (kernels.py)."""
    bits, ternary, symmetric = op.attr("bits"), bool(op.attr("ternary")), bool(op.attr("symmetric"))
    layout = kernels.PshufbLayout(n, j, bits, op.attr("group_size"), op.attr("g"), op.attr("act_group"))
    planes = lw.const_value(op.operands[3])
    scales = lw.const_value(op.operands[4])
    zeros = lw.const_value(op.operands[5]) if len(op.operands) > 5 else None
    packed = lw.param(kernels.pack_planes_pshufb(planes.astype(np.uint8), layout), "planes")
    coef = lw.param(kernels.pshufb_coefficients(np.asarray(scales), None if zeros is None else np.asarray(zeros),
                                                default_zero_point(bits, ternary), bits=bits, symmetric=symmetric,
                                                layout=layout), "coef")
    func = kernels.lut_gemm_pshufb(m, layout, symmetric=symmetric, entries=entries, sum_group=op.attr("sum_group"),
                                   sums_count=int(_type(op.operands[2]).shape[-1]),
                                   scale_count=int(_type(op.operands[1]).shape[-1]))
    y = lw.call_tir("lutc_lut_gemm_pshufb", func, [tables, table_scales, sums, packed, coef],
                    [relax.TensorType([m, layout.n_padded], "float32")])
    if layout.n_padded != n:
        y = lw.emit(R.strided_slice(y, axes=[1], begin=[0], end=[n]))
    return _unrows(lw, y, op.result)


@handles("graph.fused")
def _fused(lw: Lowerer, op: Operation):
    body = op.regions[0].blocks[0]
    for arg, operand in zip(body.args, op.operands):  # block arguments alias the operands
        if id(operand) in lw.consts:
            lw.consts[id(arg)] = lw.consts[id(operand)]
        if id(operand) in lw.env:
            lw.env[id(arg)] = lw.env[id(operand)]
    results = lw.lower_block(body)
    return [lw.expr(v) for v in results]


# -- the function -------------------------------------------------------------------------


def unsupported_ops(block: Block) -> list[str]:
    """Every op the backend cannot lower, as 'name at loc' (nested regions included)."""
    found: list[str] = []
    for op in block.ops[:-1]:
        if op.name != "graph.constant" and op.name not in HANDLERS:
            found.append(f"'{op.name}' at {op.loc}" if str(op.loc) else f"'{op.name}'")
        for result in op.results:
            if not isinstance(result.type, TensorType) or not result.type.is_static:
                found.append(f"'{op.name}' with dynamic result type {result.type}")
        for region in op.regions:
            for inner in region.blocks:
                found.extend(unsupported_ops(inner))
    return found


def target_has_avx2(target: tvm.target.Target | None) -> bool:
    """Whether code for `target` may use AVX2 intrinsics (asked of LLVM; False when unsure)."""
    if target is None or str(target.kind.name) != "llvm":
        return False
    try:
        return bool(tvm.target.codegen.target_has_features(["avx2", "ssse3"], target))
    except Exception:  # an unknown cpu or triple: do not risk the intrinsic
        return False


def lower_to_relax(module: Module, function: str | None = None, target: tvm.target.Target | None = None) -> Lowered:
    """Lower one function of `module` to a Relax IRModule with `main(inputs..., params...)`.

    `target` decides the kernels that need CPU features (the pshufb lut.gemm needs AVX2);
    without one, only portable kernels are used."""
    fn = module.function(function)
    body = function_body(fn)
    problems = unsupported_ops(body)
    problems += [f"input '{n}' has dynamic type {a.type}" for n, a in zip(input_names(fn), body.args)
                 if not isinstance(a.type, TensorType) or not a.type.is_static]
    if problems:
        unique = list(dict.fromkeys(problems))
        raise LutcError(f"the cpu target cannot compile {len(unique)} op(s): {'; '.join(unique)}", fn.loc)
    lw = Lowerer(avx2=target_has_avx2(target))
    names = input_names(fn)
    inputs = [relax.Var(name, struct_info(arg.type)) for name, arg in zip(names, body.args)]
    with lw.bb.function("main"):
        with lw.bb.dataflow():
            for var, arg in zip(inputs, body.args):
                lw.env[id(arg)] = var
            results = lw.lower_block(body)
            out = lw.bb.emit_output(relax.Tuple([lw.expr(v) for v in results]))
        lw.bb.emit_func_output(out, params=inputs + lw.param_vars)
    return Lowered(lw.bb.get(), lw.params, names, [a.type for a in body.args], output_names(fn),
                   [v.type for v in results], lw.lut_gemm_kernels)
