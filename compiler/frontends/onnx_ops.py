"""The ONNX -> `graph` dialect mapping: one converter function per ONNX operator.

`CONVERTERS` maps an op type (`"Add"`; `"com.microsoft.MatMulNBits"` outside the default
domain) to a function of a `NodeContext` that returns the node's output value(s). Simple
ops come from tables; the rest have a few lines each. ONNX inputs that are constants in
practice (axes, shapes, pads...) become static attributes; when such an input is only known
at run time, the converter reports an unsupported-dynamic error naming the node.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from lutc.frontends.onnx import DYNAMIC_HINT, Const, ExpandInstead, Handle, NodeContext, onnx_element
from lutc.ir.attributes import DenseArrayAttr
from lutc.ir.types import ElementType, TensorType, f32, f64, i1, i64

Converter = Callable[[NodeContext], "Handle | list[Handle | None]"]
CONVERTERS: dict[str, Converter] = {}


def converter(*op_types: str):
    def register(fn: Converter) -> Converter:
        for op_type in op_types:
            assert op_type not in CONVERTERS, f"two converters for {op_type}"
            CONVERTERS[op_type] = fn
        return fn

    return register


def _axes_list(ctx: NodeContext, rank: int, axes) -> list[int]:
    out = []
    for a in axes:
        a = int(a)
        if not -rank <= a < max(rank, 1):
            raise ctx.error(f"axis {a} is out of range for rank {rank}")
        out.append(a % max(rank, 1))
    return out


# -- elementwise, from tables ----------------------------------------------------------------

UNARY = {
    "Abs": "graph.abs", "Neg": "graph.neg", "Relu": "graph.relu", "Sigmoid": "graph.sigmoid", "Tanh": "graph.tanh",
    "Exp": "graph.exp", "Log": "graph.log", "Sqrt": "graph.sqrt", "Reciprocal": "graph.reciprocal", "Erf": "graph.erf",
    "Floor": "graph.floor", "Ceil": "graph.ceil", "Round": "graph.round", "Sign": "graph.sign",
    "Sin": "graph.sin", "Cos": "graph.cos", "Tan": "graph.tan", "Asin": "graph.asin", "Acos": "graph.acos",
    "Atan": "graph.atan", "Sinh": "graph.sinh", "Cosh": "graph.cosh", "Asinh": "graph.asinh", "Acosh": "graph.acosh",
    "Atanh": "graph.atanh", "Softplus": "graph.softplus", "Softsign": "graph.softsign", "Mish": "graph.mish",
    "HardSwish": "graph.hard_swish", "Not": "graph.not", "IsNaN": "graph.is_nan", "BitwiseNot": "graph.bitwise_not",
}

# ONNX op: (graph op, {ONNX attribute: graph attribute}); absent attributes take the op's default (ONNX's).
UNARY_WITH_ATTRS = {
    "Elu": ("graph.elu", {"alpha": "alpha"}),
    "Selu": ("graph.selu", {"alpha": "alpha", "gamma": "gamma"}),
    "Celu": ("graph.celu", {"alpha": "alpha"}),
    "LeakyRelu": ("graph.leaky_relu", {"alpha": "alpha"}),
    "HardSigmoid": ("graph.hard_sigmoid", {"alpha": "alpha", "beta": "beta"}),
    "ThresholdedRelu": ("graph.thresholded_relu", {"alpha": "alpha"}),
    "Shrink": ("graph.shrink", {"bias": "bias", "lambd": "lambd"}),
    "Gelu": ("graph.gelu", {"approximate": "approximate"}),
    "Swish": ("graph.swish", {"alpha": "alpha"}),
    "IsInf": ("graph.is_inf", {"detect_positive": "detect_positive", "detect_negative": "detect_negative"}),
}

BINARY = {
    "Add": "graph.add", "Sub": "graph.sub", "Mul": "graph.mul", "Div": "graph.div",
    "Equal": "graph.equal", "Less": "graph.less", "Greater": "graph.greater",
    "LessOrEqual": "graph.less_equal", "GreaterOrEqual": "graph.greater_equal",
    "And": "graph.and", "Or": "graph.or", "Xor": "graph.xor",
    "BitwiseAnd": "graph.bitwise_and", "BitwiseOr": "graph.bitwise_or", "BitwiseXor": "graph.bitwise_xor",
    "PRelu": "graph.prelu",
}

# Variadic ONNX ops that fold into a chain of binary graph ops.
VARIADIC = {"Max": "graph.max", "Min": "graph.min", "Sum": "graph.add", "Mean": "graph.add"}


def _unary(graph_op: str) -> Converter:
    return lambda ctx: ctx.op(graph_op, ctx.input(0))


def _unary_with_attrs(graph_op: str, names: dict[str, str]) -> Converter:
    def convert(ctx: NodeContext):
        attrs = {}
        for onnx_name, graph_name in names.items():
            if ctx.has_attr(onnx_name):
                value = ctx.attr(onnx_name)
                attrs[graph_name] = bool(value) if graph_name.startswith("detect_") else value
        return ctx.op(graph_op, ctx.input(0), **attrs)

    return convert


def _binary(graph_op: str) -> Converter:
    return lambda ctx: ctx.op(graph_op, ctx.input(0), ctx.input(1))


def _variadic(op_type: str, graph_op: str) -> Converter:
    def convert(ctx: NodeContext):
        operands = [ctx.input(i) for i in range(len(ctx.node.input)) if ctx.has(i)]
        result = operands[0]
        for h in operands[1:]:
            result = ctx.op(graph_op, result, h)
        if op_type == "Mean" and len(operands) > 1:
            result = ctx.op("graph.div", result, ctx.scalar(len(operands), result))
        return result

    return convert


for _op, _g in UNARY.items():
    converter(_op)(_unary(_g))
for _op, (_g, _names) in UNARY_WITH_ATTRS.items():
    converter(_op)(_unary_with_attrs(_g, _names))
for _op, _g in BINARY.items():
    converter(_op)(_binary(_g))
for _op, _g in VARIADIC.items():
    converter(_op)(_variadic(_op, _g))


@converter("Pow")
def convert_pow(ctx: NodeContext):
    base, exponent = ctx.input(0), ctx.input(1)
    return ctx.op("graph.pow", base, ctx.cast(exponent, base.type.element))


@converter("Mod")
def convert_mod(ctx: NodeContext):
    return ctx.op("graph.mod", ctx.input(0), ctx.input(1), fmod=bool(ctx.attr("fmod", 0)))


@converter("BitShift")
def convert_bit_shift(ctx: NodeContext):
    return ctx.op("graph.bit_shift", ctx.input(0), ctx.input(1), direction=ctx.attr("direction", "left").lower())


@converter("Where")
def convert_where(ctx: NodeContext):
    return ctx.op("graph.where", ctx.input(0), ctx.input(1), ctx.input(2))


@converter("Clip")
def convert_clip(ctx: NodeContext):
    x = ctx.input(0)
    if ctx.opset < 11:
        bounds = [ctx.attr("min"), ctx.attr("max")]
        handles = [None if b is None else ctx.scalar(b, x) for b in bounds]
    else:
        handles = [ctx.optional(1), ctx.optional(2)]
    if x.type.element.is_float and all(h is None or isinstance(h, Const) for h in handles):
        bounds = [None if h is None else float(np.asarray(h.value).reshape(())) for h in handles]
        return ctx.op("graph.clip", x, min=bounds[0], max=bounds[1])
    # Integer (or run-time) bounds: max/min ops keep every value exact.
    if handles[0] is not None:
        x = ctx.op("graph.max", x, handles[0])
    if handles[1] is not None:
        x = ctx.op("graph.min", x, handles[1])
    return x


@converter("Identity")
def convert_identity(ctx: NodeContext):
    return ctx.input(0)


@converter("Dropout")
def convert_dropout(ctx: NodeContext):
    training = ctx.const(2) if ctx.opset >= 12 else None
    if ctx.opset >= 12 and ctx.has(2) and training is None:
        ctx.require_const(2, "training_mode")
    ratio = ctx.const(1) if ctx.opset >= 12 else ctx.attr("ratio", 0.5)
    if training is not None and bool(np.asarray(training).reshape(())) and (ratio is None or float(np.asarray(ratio).reshape(())) != 0):
        raise ctx.error("training-mode dropout (random masks) is not supported")
    x = ctx.input(0)
    outputs: list = [x]
    if ctx.output_used(1):
        if not x.type.is_static:
            raise ctx.error(f"the mask output needs a static input shape {DYNAMIC_HINT}")
        outputs.append(ctx.constant(np.ones(x.type.shape, bool), i1))
    return outputs


@converter("Cast")
def convert_cast(ctx: NodeContext):
    to = onnx_element(ctx.attr("to"), "the target type 'to'")
    return ctx.cast(ctx.input(0), to)


@converter("CastLike")
def convert_cast_like(ctx: NodeContext):
    return ctx.cast(ctx.input(0), ctx.type(1).element)


@converter("Constant")
def convert_constant(ctx: NodeContext):
    for name in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if ctx.has_attr(name):
            value = ctx.attr(name)
            if name == "value":
                array, element = value
                return ctx.constant(array, element)
            if name.startswith("value_float"):
                return ctx.constant(np.asarray(value, np.float32), f32)
            return ctx.constant(np.asarray(value, np.int64), i64)
    raise ctx.error("only tensor, float and int constants are supported (not strings or sparse tensors)")


# -- linear algebra ----------------------------------------------------------------------------


@converter("MatMul")
def convert_matmul(ctx: NodeContext):
    from lutc.frontends.onnx_quant import matmul_or_mpgemm

    return matmul_or_mpgemm(ctx, ctx.input(0), ctx.input(1), weight_name=ctx.node.input[1])


@converter("Gemm")
def convert_gemm(ctx: NodeContext):
    from lutc.frontends.onnx_quant import matmul_or_mpgemm

    a, b = ctx.input(0), ctx.input(1)
    if ctx.attr("transA", 0):
        a = ctx.op("graph.transpose", a, perm=[1, 0])
    if ctx.attr("transB", 0):
        b = ctx.op("graph.transpose", b, perm=[1, 0])
    y = matmul_or_mpgemm(ctx, a, b, weight_name=ctx.node.input[1], weight_transposed=bool(ctx.attr("transB", 0)))
    alpha, beta = ctx.attr("alpha", 1.0), ctx.attr("beta", 1.0)
    if alpha != 1.0:
        y = ctx.op("graph.mul", y, ctx.scalar(alpha, y))
    if ctx.has(2):
        c = ctx.input(2)
        if beta != 1.0:
            c = ctx.op("graph.mul", c, ctx.scalar(beta, c))
        y = ctx.op("graph.add", y, c)
    return y


@converter("Einsum")
def convert_einsum(ctx: NodeContext):
    return ctx.op("graph.einsum", *[ctx.input(i) for i in range(len(ctx.node.input))], equation=ctx.attr("equation"))


# -- convolution and pooling ---------------------------------------------------------------------


def _explicit_pads(ctx: NodeContext, x: TensorType, kernel: list[int], strides: list[int], dilations: list[int]) -> list[int]:
    """`pads` with ONNX's `auto_pad` resolved (SAME_* needs static spatial sizes)."""
    d = len(kernel)
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    if auto_pad in ("NOTSET", ""):
        pads = ctx.attr("pads") or [0] * (2 * d)
        if len(pads) != 2 * d:
            raise ctx.error(f"pads must have {2 * d} entries, got {pads}")
        return list(pads)
    if auto_pad == "VALID":
        return [0] * (2 * d)
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        raise ctx.error(f"unknown auto_pad '{auto_pad}'")
    begin, end = [], []
    for i in range(d):
        size = x.shape[2 + i]
        if size is None:
            raise ctx.error(f"auto_pad={auto_pad} needs a static spatial size (dimension {2 + i} is dynamic) {DYNAMIC_HINT}")
        out = -(-size // strides[i])
        total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size)
        small, large = total // 2, total - total // 2
        begin.append(small if auto_pad == "SAME_UPPER" else large)
        end.append(large if auto_pad == "SAME_UPPER" else small)
    return begin + end


def _spatial_rank(ctx: NodeContext, x: TensorType) -> int:
    d = x.rank - 2
    if d not in (1, 2, 3):
        raise ctx.error(f"only 1-D, 2-D and 3-D spatial inputs are supported, got {x}")
    return d


def _conv(ctx: NodeContext, x: Handle, w: Handle, bias: Handle | None) -> Handle:
    d = _spatial_rank(ctx, x.type)
    kernel = ctx.attr("kernel_shape") or list(w.type.shape[2:])
    strides = ctx.attr("strides") or [1] * d
    dilations = ctx.attr("dilations") or [1] * d
    pads = _explicit_pads(ctx, x.type, kernel, strides, dilations)
    operands = [x, w] + ([bias] if bias is not None else [])
    return ctx.op(f"graph.conv{d}d", *operands, strides=strides, pads=pads, dilations=dilations, groups=ctx.attr("group", 1))


@converter("Conv")
def convert_conv(ctx: NodeContext):
    return _conv(ctx, ctx.input(0), ctx.input(1), ctx.optional(2))


@converter("ConvTranspose")
def convert_conv_transpose(ctx: NodeContext):
    x, w = ctx.input(0), ctx.input(1)
    d = _spatial_rank(ctx, x.type)
    kernel = ctx.attr("kernel_shape") or list(w.type.shape[2:])
    strides = ctx.attr("strides") or [1] * d
    dilations = ctx.attr("dilations") or [1] * d
    output_padding = list(ctx.attr("output_padding") or [0] * d)
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    output_shape = ctx.attr("output_shape")
    if output_shape is None and auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        output_shape = [None if s is None else s * st for s, st in zip(x.type.shape[2:], strides)]
    if output_shape is not None:
        output_shape = list(output_shape)[-d:]
        pads_begin, pads_end = [], []
        for i in range(d):
            size = x.type.shape[2 + i]
            if size is None or output_shape[i] is None:
                raise ctx.error(f"output_shape/auto_pad need static spatial sizes {DYNAMIC_HINT}")
            total = strides[i] * (size - 1) + output_padding[i] + (kernel[i] - 1) * dilations[i] + 1 - output_shape[i]
            if total < 0:  # the requested output is larger: grow the end padding of the output
                output_padding[i] -= total
                total = 0
            if auto_pad == "SAME_UPPER":
                pads_begin.append(total // 2)
                pads_end.append(total - total // 2)
            else:
                pads_begin.append(total - total // 2)
                pads_end.append(total // 2)
        pads = pads_begin + pads_end
    elif auto_pad == "VALID":
        pads = [0] * (2 * d)
    else:
        pads = list(ctx.attr("pads") or [0] * (2 * d))
    operands = [x, w] + ([ctx.input(2)] if ctx.has(2) else [])
    return ctx.op(f"graph.conv{d}d_transpose", *operands, strides=strides, pads=pads, dilations=dilations,
                  groups=ctx.attr("group", 1), output_padding=output_padding)


def _pool(kind: str) -> Converter:
    def convert(ctx: NodeContext):
        x = ctx.input(0)
        d = _spatial_rank(ctx, x.type)
        if kind == "max_pool" and ctx.output_used(1):
            raise ctx.error("the Indices output of MaxPool is not supported")
        if ctx.attr("storage_order", 0):
            raise ctx.error("storage_order=1 is not supported")
        kernel = ctx.attr("kernel_shape")
        strides = ctx.attr("strides") or [1] * d
        dilations = ctx.attr("dilations") or [1] * d
        pads = _explicit_pads(ctx, x.type, kernel, strides, dilations)
        attrs = dict(kernel=kernel, strides=strides, pads=pads, dilations=dilations, ceil_mode=bool(ctx.attr("ceil_mode", 0)))
        if kind == "avg_pool":
            attrs["count_include_pad"] = bool(ctx.attr("count_include_pad", 0))
        if kind == "lp_pool":
            attrs["p"] = ctx.attr("p", 2)
        return ctx.op(f"graph.{kind}{d}d", x, **attrs)

    return convert


converter("MaxPool")(_pool("max_pool"))
converter("AveragePool")(_pool("avg_pool"))
converter("LpPool")(_pool("lp_pool"))


def _global_pool(graph_op: str) -> Converter:
    def convert(ctx: NodeContext):
        x = ctx.input(0)
        return ctx.op(graph_op, x, axes=list(range(2, x.type.rank)), keepdims=True)

    return convert


converter("GlobalAveragePool")(_global_pool("graph.reduce_mean"))
converter("GlobalMaxPool")(_global_pool("graph.reduce_max"))


# -- normalization -----------------------------------------------------------------------------


@converter("BatchNormalization")
def convert_batch_norm(ctx: NodeContext):
    if ctx.attr("training_mode", 0) or any(ctx.output_used(i) for i in range(1, ctx.num_outputs)):
        raise ctx.error("training-mode batch normalization (running statistics outputs) is not supported")
    return ctx.op("graph.batch_norm", *[ctx.input(i) for i in range(5)], epsilon=ctx.attr("epsilon", 1e-5))


@converter("LayerNormalization")
def convert_layer_norm(ctx: NodeContext):
    if ctx.output_used(1) or ctx.output_used(2):
        raise ExpandInstead()  # Mean / InvStdDev outputs: use the ONNX function body
    operands = [ctx.input(0), ctx.input(1)] + ([ctx.input(2)] if ctx.has(2) else [])
    return ctx.op("graph.layer_norm", *operands, axis=ctx.attr("axis", -1), epsilon=ctx.attr("epsilon", 1e-5))


@converter("RMSNormalization")
def convert_rms_norm(ctx: NodeContext):
    return ctx.op("graph.rms_norm", ctx.input(0), ctx.input(1), axis=ctx.attr("axis", -1), epsilon=ctx.attr("epsilon", 1e-5))


@converter("InstanceNormalization")
def convert_instance_norm(ctx: NodeContext):
    return ctx.op("graph.instance_norm", ctx.input(0), ctx.input(1), ctx.input(2), epsilon=ctx.attr("epsilon", 1e-5))


@converter("LRN")
def convert_lrn(ctx: NodeContext):
    return ctx.op("graph.lrn", ctx.input(0), size=ctx.attr("size"), alpha=ctx.attr("alpha", 1e-4),
                  beta=ctx.attr("beta", 0.75), bias=ctx.attr("bias", 1.0))


@converter("LpNormalization")
def convert_lp_normalization(ctx: NodeContext):
    x = ctx.input(0)
    p = ctx.attr("p", 2)
    if p not in (1, 2):
        raise ctx.error(f"p must be 1 or 2, got {p}")
    axis = _axes_list(ctx, x.type.rank, [ctx.attr("axis", -1)])
    norm = ctx.op("graph.reduce_l2" if p == 2 else "graph.reduce_l1", x, axes=axis, keepdims=True)
    # A zero vector stays zero (instead of 0/0).
    safe = ctx.op("graph.where", ctx.op("graph.equal", norm, ctx.scalar(0, norm)), ctx.scalar(1, norm), norm)
    return ctx.op("graph.div", x, safe)


def _softmax(graph_op: str) -> Converter:
    return lambda ctx: ctx.op(graph_op, ctx.input(0), axis=ctx.attr("axis", -1))


converter("Softmax")(_softmax("graph.softmax"))
converter("LogSoftmax")(_softmax("graph.log_softmax"))
converter("Hardmax")(_softmax("graph.hardmax"))


# -- reductions ---------------------------------------------------------------------------------

REDUCE = {
    "ReduceSum": "graph.reduce_sum", "ReduceMean": "graph.reduce_mean", "ReduceMax": "graph.reduce_max",
    "ReduceMin": "graph.reduce_min", "ReduceProd": "graph.reduce_prod", "ReduceL1": "graph.reduce_l1",
    "ReduceL2": "graph.reduce_l2", "ReduceLogSum": "graph.reduce_log_sum", "ReduceLogSumExp": "graph.reduce_log_sum_exp",
    "ReduceSumSquare": "graph.reduce_sum_square",
}
# Opset from which an op takes `axes` as its second input instead of an attribute.
AXES_AS_INPUT_SINCE = {"ReduceSum": 13}


def _reduce(op_type: str, graph_op: str) -> Converter:
    def convert(ctx: NodeContext):
        x = ctx.input(0)
        if ctx.opset >= AXES_AS_INPUT_SINCE.get(op_type, 18):
            axes = ctx.require_const(1, "axes").reshape(-1).tolist() if ctx.has(1) else []
        else:
            axes = ctx.attr("axes") or []
        if not axes:
            if ctx.attr("noop_with_empty_axes", 0):
                return x
            axes = list(range(x.type.rank))
        return ctx.op(graph_op, x, axes=_axes_list(ctx, x.type.rank, axes), keepdims=bool(ctx.attr("keepdims", 1)))

    return convert


for _op, _g in REDUCE.items():
    converter(_op)(_reduce(_op, _g))


def _arg_reduce(graph_op: str) -> Converter:
    return lambda ctx: ctx.op(graph_op, ctx.input(0), axis=ctx.attr("axis", 0), keepdims=bool(ctx.attr("keepdims", 1)),
                              select_last_index=bool(ctx.attr("select_last_index", 0)))


converter("ArgMax")(_arg_reduce("graph.argmax"))
converter("ArgMin")(_arg_reduce("graph.argmin"))


def _scan(graph_op: str) -> Converter:
    def convert(ctx: NodeContext):
        axis = int(ctx.require_const(1, "axis").reshape(()))
        return ctx.op(graph_op, ctx.input(0), axis=axis, exclusive=bool(ctx.attr("exclusive", 0)), reverse=bool(ctx.attr("reverse", 0)))

    return convert


converter("CumSum")(_scan("graph.cumsum"))
converter("CumProd")(_scan("graph.cumprod"))


@converter("TopK")
def convert_topk(ctx: NodeContext):
    k = int(ctx.require_const(1, "K").reshape(-1)[0])
    return ctx.ops("graph.topk", [ctx.input(0)], dict(k=k, axis=ctx.attr("axis", -1), largest=bool(ctx.attr("largest", 1)),
                                                     sorted=bool(ctx.attr("sorted", 1))))


# -- shapes and layout ---------------------------------------------------------------------------


def _static_target(ctx: NodeContext, dims: list[int | None], what: str) -> list[int]:
    """A reshape target with at most one unknown dim, spelled -1."""
    unknown = [i for i, d in enumerate(dims) if d is None]
    if len(unknown) > 1:
        raise ctx.error(f"{what} has {len(unknown)} dims known only at run time; at most one is supported {DYNAMIC_HINT}")
    return [-1 if d is None else int(d) for d in dims]


def _cancel_shared_symbols(in_dims, out_dims) -> list[int | None] | None:
    """The result dims of a reshape with dynamic dims, or None.

    Dims that carry the same ONNX symbol ("batch") in the input and the result are copies;
    they cancel in the element count, which can then fix one other unknown result dim.
    """
    if in_dims is None or out_dims is None:
        return None
    out = [d if isinstance(d, int) else None for d in out_dims]
    remaining = [d for d in in_dims]
    copied = []
    for i, d in enumerate(out_dims):
        if isinstance(d, str) and d in remaining:
            remaining.remove(d)
            copied.append(i)
    free = [i for i, d in enumerate(out) if d is None and i not in copied]
    if len(free) == 1 and all(isinstance(d, int) for d in remaining):
        known = math.prod(d for d in out if d is not None)
        total = math.prod(remaining)
        if known and total % known == 0:
            out[free[0]] = total // known
    return out


@converter("Reshape")
def convert_reshape(ctx: NodeContext):
    x = ctx.input(0)
    shape = ctx.const(1)
    if shape is None:
        inferred = ctx.output_type(0)
        if inferred is None:
            ctx.require_const(1, "shape")
        dims = _cancel_shared_symbols(ctx.input_dims(0), ctx.output_dims(0)) or list(inferred.shape)
        return ctx.reshape(x, _static_target(ctx, dims, "the result shape"))
    target: list[int | None] = []
    symbolic: list[int | str | None] = []  # the same, with ONNX's symbols for copied dynamic dims
    in_dims = ctx.input_dims(0) or (None,) * x.type.rank
    allowzero = ctx.attr("allowzero", 0)
    for i, d in enumerate(shape.reshape(-1).tolist()):
        if d == 0 and not allowzero:
            if i >= x.type.rank:
                raise ctx.error(f"shape entry {i} is 0 (copy a dim) but the input has rank {x.type.rank}")
            target.append(x.type.shape[i])
            symbolic.append(x.type.shape[i] if x.type.shape[i] is not None else in_dims[i])
        else:
            target.append(None if d == -1 else d)
            symbolic.append(None if d == -1 else d)
    if target.count(None) > 1:
        target = _cancel_shared_symbols(ctx.input_dims(0), symbolic) or target
    return ctx.reshape(x, _static_target(ctx, target, "the reshape target"))


@converter("Flatten")
def convert_flatten(ctx: NodeContext):
    x = ctx.input(0)
    rank = x.type.rank
    axis = ctx.attr("axis", 1)
    axis = axis + rank if axis < 0 else axis
    outer, inner = x.type.shape[:axis], x.type.shape[axis:]
    dims = [None if None in outer else math.prod(outer), None if None in inner else math.prod(inner)]
    return ctx.reshape(x, _static_target(ctx, dims, "the flattened shape"))


def _axes_input_or_attr(ctx: NodeContext, since: int = 13) -> list[int] | None:
    if ctx.opset >= since:
        return ctx.require_const(1, "axes").reshape(-1).tolist() if ctx.has(1) else None
    return ctx.attr("axes")


@converter("Squeeze")
def convert_squeeze(ctx: NodeContext):
    x = ctx.input(0)
    axes = _axes_input_or_attr(ctx)
    if axes is None:
        if not x.type.is_static:
            raise ctx.error(f"squeezing all size-1 dims needs a static input shape {DYNAMIC_HINT}")
        axes = [i for i, d in enumerate(x.type.shape) if d == 1]
    axes = _axes_list(ctx, x.type.rank, axes)
    result = [d for i, d in enumerate(x.type.shape) if i not in axes]
    if None not in result:
        return ctx.reshape(x, result)
    return ctx.op("graph.squeeze", x, axes=axes)


@converter("Unsqueeze")
def convert_unsqueeze(ctx: NodeContext):
    x = ctx.input(0)
    axes = _axes_input_or_attr(ctx)
    if axes is None:
        raise ctx.error("axes are required")
    rank = x.type.rank + len(axes)
    axes = _axes_list(ctx, rank, axes)
    dims = iter(x.type.shape)
    result = [1 if i in axes else next(dims) for i in range(rank)]
    if None not in result:
        return ctx.reshape(x, result)
    return ctx.op("graph.unsqueeze", x, axes=axes)


@converter("Transpose")
def convert_transpose(ctx: NodeContext):
    x = ctx.input(0)
    perm = ctx.attr("perm") or list(reversed(range(x.type.rank)))
    if list(perm) == list(range(x.type.rank)):
        return x
    return ctx.op("graph.transpose", x, perm=perm)


@converter("Concat")
def convert_concat(ctx: NodeContext):
    operands = [ctx.input(i) for i in range(len(ctx.node.input)) if ctx.has(i)]
    if len(operands) == 1:
        return operands[0]
    return ctx.op("graph.concat", *operands, axis=ctx.attr("axis"))


@converter("Split")
def convert_split(ctx: NodeContext):
    x = ctx.input(0)
    axis = _axes_list(ctx, x.type.rank, [ctx.attr("axis", 0)])[0]
    dim = x.type.shape[axis]
    if ctx.opset >= 13 and ctx.has(1):
        sizes = ctx.require_const(1, "split").reshape(-1).tolist()
    elif ctx.opset < 13 and ctx.attr("split"):
        sizes = ctx.attr("split")
    else:
        if dim is None:
            raise ctx.error(f"splitting a dynamic dimension ({x.type}) into equal parts is not supported {DYNAMIC_HINT}")
        n = ctx.attr("num_outputs") or ctx.num_outputs
        chunk = -(-dim // n)
        sizes = [min(chunk, dim - i * chunk) for i in range(n)]
    return ctx.ops("graph.split", [x], dict(axis=axis, sizes=[int(s) for s in sizes]))


@converter("Slice")
def convert_slice(ctx: NodeContext):
    x = ctx.input(0)
    if ctx.opset < 10:
        starts, ends, axes = ctx.attr("starts"), ctx.attr("ends"), ctx.attr("axes")
        steps = None
    else:
        starts = ctx.require_const(1, "starts").reshape(-1).tolist()
        ends = ctx.require_const(2, "ends").reshape(-1).tolist()
        axes = ctx.require_const(3, "axes").reshape(-1).tolist() if ctx.has(3) else None
        steps = ctx.require_const(4, "steps").reshape(-1).tolist() if ctx.has(4) else None
    axes = _axes_list(ctx, x.type.rank, axes if axes is not None else range(len(starts)))
    steps = steps or [1] * len(starts)
    limit = np.iinfo(np.int64).max
    clamp = lambda v: int(max(min(v, limit), -limit))  # noqa: E731
    return ctx.op("graph.slice", x, starts=[clamp(v) for v in starts], ends=[clamp(v) for v in ends], axes=axes,
                  steps=[int(s) for s in steps])


@converter("Gather")
def convert_gather(ctx: NodeContext):
    return ctx.op("graph.gather", ctx.input(0), ctx.input(1), axis=ctx.attr("axis", 0))


@converter("GatherElements")
def convert_gather_elements(ctx: NodeContext):
    return ctx.op("graph.gather_elements", ctx.input(0), ctx.input(1), axis=ctx.attr("axis", 0))


@converter("GatherND")
def convert_gather_nd(ctx: NodeContext):
    return ctx.op("graph.gather_nd", ctx.input(0), ctx.input(1), batch_dims=ctx.attr("batch_dims", 0))


@converter("ScatterElements", "Scatter")
def convert_scatter_elements(ctx: NodeContext):
    return ctx.op("graph.scatter_elements", ctx.input(0), ctx.input(1), ctx.input(2), axis=ctx.attr("axis", 0),
                  reduction=ctx.attr("reduction", "none"))


@converter("ScatterND")
def convert_scatter_nd(ctx: NodeContext):
    return ctx.op("graph.scatter_nd", ctx.input(0), ctx.input(1), ctx.input(2), reduction=ctx.attr("reduction", "none"))


@converter("Expand")
def convert_expand(ctx: NodeContext):
    from lutc.ir.dialects.graph import broadcast_shapes

    x = ctx.input(0)
    shape = ctx.const(1)
    if shape is not None:
        target = broadcast_shapes(x.type.shape, tuple(int(d) for d in shape.reshape(-1)))
    else:
        target = ctx.output_type(0).shape if ctx.output_type(0) is not None else None
        if target is None:
            ctx.require_const(1, "shape")
    if None in target:
        raise ctx.error(f"the expanded shape {['?' if d is None else d for d in target]} is only known at run time {DYNAMIC_HINT}")
    if tuple(target) == x.type.shape:
        return x
    return ctx.op("graph.broadcast_to", x, shape=list(target))


@converter("Tile")
def convert_tile(ctx: NodeContext):
    repeats = ctx.require_const(1, "repeats").reshape(-1).tolist()
    return ctx.op("graph.tile", ctx.input(0), repeats=repeats)


@converter("Pad")
def convert_pad(ctx: NodeContext):
    x = ctx.input(0)
    rank = x.type.rank
    mode = ctx.attr("mode", "constant")
    if ctx.opset < 11:
        pads, value = ctx.attr("pads"), ctx.attr("value", 0.0)
    else:
        pads = ctx.require_const(1, "pads").reshape(-1).tolist()
        value = ctx.require_const(2, "constant_value").reshape(-1)[0].item() if ctx.has(2) else 0
    if ctx.opset >= 18 and ctx.has(3):
        axes = _axes_list(ctx, rank, ctx.require_const(3, "axes").reshape(-1).tolist())
        full = [0] * (2 * rank)
        for j, a in enumerate(axes):
            full[a], full[a + rank] = pads[j], pads[j + len(axes)]
        pads = full
    if mode not in ("constant", "reflect", "edge", "wrap"):
        raise ctx.error(f"unknown mode '{mode}'")
    return ctx.op("graph.pad", x, pads=[int(p) for p in pads], mode=mode, value=float(value))


@converter("Shape")
def convert_shape(ctx: NodeContext):
    x = ctx.input(0)
    start, end = ctx.attr("start", 0), ctx.attr("end")
    dims = x.type.shape[start:end]
    if None not in dims:
        return ctx.constant(np.array(dims, np.int64), i64)
    return ctx.op("graph.shape", x, start=start, end=end)


@converter("Size")
def convert_size(ctx: NodeContext):
    x = ctx.input(0)
    if x.type.is_static:
        return ctx.constant(np.array(x.type.num_elements, np.int64), i64)
    return ctx.op("graph.reduce_prod", ctx.op("graph.shape", x), axes=[0], keepdims=False)


@converter("ConstantOfShape")
def convert_constant_of_shape(ctx: NodeContext):
    shape = ctx.const(0)
    if shape is None:
        inferred = ctx.output_type(0)
        if inferred is None or not inferred.is_static:
            ctx.require_const(0, "shape")
        shape = np.array(inferred.shape, np.int64)
    value, element = ctx.attr("value", (np.zeros(1, np.float32), f32))
    return ctx.constant(np.full(tuple(int(d) for d in shape.reshape(-1)), value.reshape(-1)[0], element.np_dtype), element)


@converter("EyeLike")
def convert_eye_like(ctx: NodeContext):
    x = ctx.input(0)
    if not x.type.is_static or x.type.rank != 2:
        raise ctx.error(f"needs a static 2-D input, got {x.type} {DYNAMIC_HINT}")
    element = onnx_element(ctx.attr("dtype"), "dtype") if ctx.has_attr("dtype") else x.type.element
    return ctx.constant(np.eye(*x.type.shape, k=ctx.attr("k", 0), dtype=element.np_dtype), element)


@converter("Range")
def convert_range(ctx: NodeContext):
    return ctx.op("graph.range", ctx.input(0), ctx.input(1), ctx.input(2))


@converter("Trilu")
def convert_trilu(ctx: NodeContext):
    k = int(ctx.require_const(1, "k").reshape(())) if ctx.has(1) else 0
    return ctx.op("graph.trilu", ctx.input(0), upper=bool(ctx.attr("upper", 1)), k=k)


@converter("OneHot")
def convert_one_hot(ctx: NodeContext):
    depth = ctx.require_const(1, "depth").reshape(-1)[0]
    return ctx.op("graph.one_hot", ctx.input(0), ctx.input(2), depth=int(depth), axis=ctx.attr("axis", -1))


@converter("NonZero")
def convert_nonzero(ctx: NodeContext):
    return ctx.op("graph.nonzero", ctx.input(0))


def _space_depth(to_depth: bool) -> Converter:
    def convert(ctx: NodeContext):
        x = ctx.input(0)
        if not x.type.is_static or x.type.rank != 4:
            raise ctx.error(f"needs a static NCHW input, got {x.type} {DYNAMIC_HINT}")
        b = ctx.attr("blocksize")
        n, c, h, w = x.type.shape
        if to_depth:
            t = ctx.reshape(x, [n, c, h // b, b, w // b, b])
            t = ctx.op("graph.transpose", t, perm=[0, 3, 5, 1, 2, 4])
            return ctx.reshape(t, [n, c * b * b, h // b, w // b])
        if ctx.attr("mode", "DCR") == "DCR":
            t = ctx.reshape(x, [n, b, b, c // (b * b), h, w])
            t = ctx.op("graph.transpose", t, perm=[0, 3, 4, 1, 5, 2])
        else:
            t = ctx.reshape(x, [n, c // (b * b), b, b, h, w])
            t = ctx.op("graph.transpose", t, perm=[0, 1, 4, 2, 5, 3])
        return ctx.reshape(t, [n, c // (b * b), h * b, w * b])

    return convert


converter("DepthToSpace")(_space_depth(False))
converter("SpaceToDepth")(_space_depth(True))


@converter("Resize")
def convert_resize(ctx: NodeContext):
    x = ctx.input(0)
    if not x.type.is_static:
        raise ctx.error(f"resizing a tensor with dynamic dims ({x.type}) is not supported {DYNAMIC_HINT}")
    rank, shape = x.type.rank, list(x.type.shape)
    axes = _axes_list(ctx, rank, ctx.attr("axes") or range(rank))
    roi = ctx.const(1) if ctx.has(1) else None
    scales = ctx.const(2) if ctx.has(2) else None
    sizes = ctx.const(3) if ctx.has(3) else None
    if any(ctx.has(i) and ctx.const(i) is None for i in (1, 2, 3)):
        raise ctx.error(f"roi, scales and sizes must be constants {DYNAMIC_HINT}")
    if sizes is not None and sizes.size:
        full_sizes = list(shape)
        for i, a in enumerate(axes):
            full_sizes[a] = int(sizes.reshape(-1)[i])
        full_scales = [full_sizes[i] / shape[i] for i in range(rank)]
        policy = ctx.attr("keep_aspect_ratio_policy", "stretch")
        if policy != "stretch":
            pick = {"not_larger": min, "not_smaller": max}.get(policy)
            if pick is None:
                raise ctx.error(f"unknown keep_aspect_ratio_policy '{policy}'")
            scale = pick(full_scales[a] for a in axes)
            full_scales = [scale if i in axes else 1.0 for i in range(rank)]
            full_sizes = [int(scale * shape[i] + 0.5) if i in axes else shape[i] for i in range(rank)]
    elif scales is not None and scales.size:
        full_scales = [1.0] * rank
        for i, a in enumerate(axes):
            full_scales[a] = float(scales.reshape(-1)[i])
        full_sizes = [int(full_scales[i] * shape[i]) for i in range(rank)]
    else:
        raise ctx.error("one of scales and sizes is required")
    full_roi = []
    if roi is not None and roi.size and ctx.attr("coordinate_transformation_mode", "half_pixel") == "tf_crop_and_resize":
        full_roi = [0.0] * rank + [1.0] * rank
        values = roi.reshape(-1).tolist()
        for i, a in enumerate(axes):
            full_roi[a], full_roi[a + rank] = values[i], values[i + len(axes)]
    attrs = {name: ctx.attr(name) for name in ("mode", "coordinate_transformation_mode", "nearest_mode", "cubic_coeff_a",
                                                 "extrapolation_value") if ctx.has_attr(name)}
    attrs.update(exclude_outside=bool(ctx.attr("exclude_outside", 0)), antialias=bool(ctx.attr("antialias", 0)))
    return ctx.op("graph.resize", x, sizes=full_sizes, scales=DenseArrayAttr(f64, tuple(full_scales)),
                  roi=DenseArrayAttr(f64, tuple(full_roi)), **attrs)


# -- quantization ---------------------------------------------------------------------------------


def _quant_axis(ctx: NodeContext, x: TensorType, scale: TensorType) -> int:
    if scale.shape in ((), (1,)) and not ctx.attr("block_size", 0):
        return 0  # per tensor: the axis does not matter
    return _axes_list(ctx, x.rank, [ctx.attr("axis", 1)])[0]


@converter("DequantizeLinear")
def convert_dequantize(ctx: NodeContext):
    x, scale = ctx.input(0), ctx.input(1)
    operands = [x, scale] + ([ctx.input(2)] if ctx.has(2) else [])
    y = ctx.op("graph.dequantize", *operands, axis=_quant_axis(ctx, x.type, scale.type), block_size=ctx.attr("block_size", 0))
    if ctx.has_attr("output_dtype") and ctx.attr("output_dtype"):
        y = ctx.cast(y, onnx_element(ctx.attr("output_dtype"), "output_dtype"))
    return y


@converter("QuantizeLinear")
def convert_quantize(ctx: NodeContext):
    x, scale = ctx.input(0), ctx.input(1)
    if ctx.has(2):
        to = ctx.type(2).element
    elif ctx.attr("output_dtype"):
        to = onnx_element(ctx.attr("output_dtype"), "output_dtype")
    else:
        to = ElementType("ui8")
    if not to.is_int:
        raise ctx.error(f"quantizing to {to} is not supported (integer types only)")
    if ctx.has_attr("precision") and ctx.attr("precision"):
        raise ctx.error("the precision attribute is not supported")
    operands = [x, scale] + ([ctx.input(2)] if ctx.has(2) else [])
    return ctx.op("graph.quantize", *operands, axis=_quant_axis(ctx, x.type, scale.type), block_size=ctx.attr("block_size", 0), to=to)


def _integer_operand(ctx: NodeContext, i: int, zero_point_index: int, channel_axis_rank: int | None = None) -> Handle:
    """Input i as i32 minus its zero point (a per-channel zero point reshaped to broadcast on axis 0)."""
    from lutc.ir.types import i32

    x = ctx.cast(ctx.input(i), i32)
    if ctx.has(zero_point_index):
        zp = ctx.cast(ctx.input(zero_point_index), i32)
        if channel_axis_rank is not None and zp.type.rank == 1 and zp.type.shape[0] != 1:
            zp = ctx.reshape(zp, [-1] + [1] * (channel_axis_rank - 1))
        x = ctx.op("graph.sub", x, zp)
    return x


def _requantize(ctx: NodeContext, acc: Handle, scale: Handle, zero_point: Handle | None, like: ElementType,
                round_first: bool) -> Handle:
    """round(acc * scale) + zero_point, saturated to the zero point's (else `like`'s) integer type."""
    to = zero_point.type.element if zero_point is not None else like
    y = ctx.op("graph.mul", ctx.cast(acc, f64), scale)
    if zero_point is not None:
        y = ctx.op("graph.add", y, ctx.cast(zero_point, f64))
    low, high = to.int_range()
    if round_first:
        y = ctx.op("graph.clip", ctx.op("graph.round", y), min=float(low), max=float(high))
    else:
        y = ctx.op("graph.round", ctx.op("graph.clip", y, min=float(low), max=float(high)))
    return ctx.cast(y, to)


@converter("MatMulInteger")
def convert_matmul_integer(ctx: NodeContext):
    """(a - a_zero_point) @ (b - b_zero_point) in i32 (a's zero point may be per row)."""
    a = _integer_operand(ctx, 0, 2, channel_axis_rank=2)
    return ctx.op("graph.matmul", a, _integer_operand(ctx, 1, 3))


@converter("QLinearMatMul")
def convert_qlinear_matmul(ctx: NodeContext):
    acc = ctx.op("graph.matmul", _integer_operand(ctx, 0, 2), _integer_operand(ctx, 3, 5))
    scale = ctx.op("graph.div", ctx.op("graph.mul", ctx.cast(ctx.input(1), f64), ctx.cast(ctx.input(4), f64)),
                   ctx.cast(ctx.input(6), f64))
    return _requantize(ctx, acc, scale, ctx.optional(7), ctx.type(0).element, round_first=True)


@converter("ConvInteger")
def convert_conv_integer(ctx: NodeContext):
    x, w = _integer_operand(ctx, 0, 2), _integer_operand(ctx, 1, 3, channel_axis_rank=ctx.type(1).rank)
    return _conv(ctx, x, w, None)


@converter("QLinearConv")
def convert_qlinear_conv(ctx: NodeContext):
    x = _integer_operand(ctx, 0, 2)
    w = _integer_operand(ctx, 3, 5, channel_axis_rank=ctx.type(3).rank)
    acc = _conv(ctx, x, w, ctx.optional(8))
    w_scale = ctx.cast(ctx.input(4), f64)
    if w_scale.type.rank == 1 and w_scale.type.shape[0] != 1:
        w_scale = ctx.reshape(w_scale, [-1] + [1] * (acc.type.rank - 2))
    scale = ctx.op("graph.div", ctx.op("graph.mul", ctx.cast(ctx.input(1), f64), w_scale), ctx.cast(ctx.input(6), f64))
    return _requantize(ctx, acc, scale, ctx.optional(7), ctx.type(0).element, round_first=False)


# -- reinterpretation, selection, small linear algebra ----------------------------------------------


@converter("BitCast")
def convert_bitcast(ctx: NodeContext):
    return ctx.op("graph.bitcast", ctx.input(0), to=onnx_element(ctx.attr("to"), "the target type 'to'"))


@converter("Compress")
def convert_compress(ctx: NodeContext):
    return ctx.op("graph.compress", ctx.input(0), ctx.input(1), axis=ctx.attr("axis"))


@converter("ReverseSequence")
def convert_reverse_sequence(ctx: NodeContext):
    return ctx.op("graph.reverse_sequence", ctx.input(0), ctx.input(1), batch_axis=ctx.attr("batch_axis", 1),
                  time_axis=ctx.attr("time_axis", 0))


@converter("Unique")
def convert_unique(ctx: NodeContext):
    return ctx.ops("graph.unique", [ctx.input(0)], dict(axis=ctx.attr("axis"), sorted=bool(ctx.attr("sorted", 1))))


@converter("Det")
def convert_det(ctx: NodeContext):
    return ctx.op("graph.det", ctx.input(0))


# MatMulNBits lives with the rest of the low-bit import.
from lutc.frontends import onnx_quant  # noqa: E402,F401  (registers com.microsoft.MatMulNBits)
