"""`quantize-weights`: round-to-nearest weight quantization of constant-weight matmuls.

    x @ W  (W: constant K x N)   ->   graph.mpgemm(x, codes, scales[, zeros])

with codes N x K (the mpgemm "NT" normal form) and one scale (and zero point) per group of
`group-size` consecutive k. Schemes:

- `sym`: zero point 2^(bits-1) (implicit). As llama.cpp's Q4_0, the scale maps the group's
  largest-magnitude weight m exactly to code 0: s = m / -2^(bits-1), so all 2^bits codes
  are used (a positive m gets a negative scale, which the normal form allows).
- `asym`: s = (max - min) / (2^bits - 1) and an integer zero point per group, over a range
  stretched to include 0 (so that zero is exact).
- `ternary`: BitNet b1.58 absmean: s = mean |w| over the group, codes round(w/s) clipped to
  {-1, 0, +1}, stored as {0, 1, 2} with z = 1, bits = 2, ternary = true.

The quantization error of each layer is reported: the relative L2 error of the weights and
of the output for a seeded random input (to stderr, to a file, or not at all).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from lutc.diagnostics import LutcError, PipelineError
from lutc.ir.attributes import DenseResourceAttr
from lutc.ir.core import Module, Operation
from lutc.ir.dialects.graph import dequantize_weights
from lutc.ir.types import ElementType, TensorType
from lutc.passes.matchers import constant_value, defining_op
from lutc.passes.pass_manager import Pass, register_pass
from lutc.passes.rewriter import PatternRewriter, RewritePattern, apply_patterns_greedily

Scheme = Literal["sym", "asym", "ternary"]

# Rows of the seeded random input used to measure each layer's output error.
SAMPLE_ROWS = 8
SAMPLE_SEED = 0


@dataclass(frozen=True)
class QuantizedWeights:
    """The mpgemm operands for one weight matrix (codes N x K, scales/zeros N x groups)."""

    codes: np.ndarray
    scales: np.ndarray
    zeros: np.ndarray | None
    bits: int
    group_size: int
    ternary: bool

    def dequantize(self) -> np.ndarray:
        """W^T (N x K) as the mpgemm normal form reads it back."""
        return dequantize_weights(
            self.codes, self.scales, self.zeros, bits=self.bits, group_size=self.group_size, ternary=self.ternary
        )


def split_groups(w_nk: np.ndarray, group_size: int) -> np.ndarray:
    """(N, K) -> (N, groups, group_size), padding the last group with NaN (ignored by nan-reductions)."""
    n, k = w_nk.shape
    groups = -(-k // group_size)
    padded = np.full((n, groups * group_size), np.nan, np.float64)
    padded[:, :k] = w_nk
    return padded.reshape(n, groups, group_size)


def quantize(w_kn: np.ndarray, *, bits: int, group_size: int, scheme: Scheme) -> QuantizedWeights:
    """Quantize a K x N weight matrix per group of `group_size` consecutive k (round to nearest)."""
    w = np.asarray(w_kn, np.float64).T  # the normal form is N x K
    n, k = w.shape
    grouped = split_groups(w, group_size)
    levels = 2**bits - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        if scheme == "ternary":
            scale = np.nanmean(np.abs(grouped), axis=-1)
            safe = np.where(scale > 0, scale, 1.0)
            codes = np.clip(np.rint(grouped / safe[..., None]), -1, 1) + 1
            zeros = None
        elif scheme == "sym":
            # The signed weight of largest magnitude in each group lands exactly on code 0.
            index = np.nanargmax(np.abs(np.where(np.isnan(grouped), 0, grouped)), axis=-1)
            extreme = np.take_along_axis(grouped, index[..., None], -1)[..., 0]
            scale = extreme / -(2 ** (bits - 1))
            safe = np.where(scale != 0, scale, 1.0)
            codes = np.clip(np.rint(grouped / safe[..., None]) + 2 ** (bits - 1), 0, levels)
            zeros = None
        else:
            low = np.minimum(np.nanmin(grouped, axis=-1), 0.0)
            high = np.maximum(np.nanmax(grouped, axis=-1), 0.0)
            scale = (high - low) / levels
            safe = np.where(scale > 0, scale, 1.0)
            zeros = np.clip(np.rint(-low / safe), 0, levels)
            codes = np.clip(np.rint(grouped / safe[..., None]) + zeros[..., None], 0, levels)
    codes = np.nan_to_num(codes).reshape(n, -1)[:, :k].astype(np.uint8)
    return QuantizedWeights(
        codes=codes,
        scales=scale.astype(np.float32),
        zeros=None if zeros is None else zeros.astype(np.uint8),
        bits=2 if scheme == "ternary" else bits,
        group_size=group_size,
        ternary=scheme == "ternary",
    )


@dataclass(frozen=True)
class LayerError:
    """What quantizing one matmul's weights costs in accuracy."""

    layer: str
    shape: tuple[int, int]
    weight_rel_l2: float
    output_rel_l2: float

    def __str__(self) -> str:
        k, n = self.shape
        return (
            f"quantize-weights: {self.layer} ({k}x{n}): weight rel-L2 {self.weight_rel_l2:.4g}, "
            f"output rel-L2 {self.output_rel_l2:.4g}"
        )


def relative_l2(approx: np.ndarray, exact: np.ndarray) -> float:
    norm = float(np.linalg.norm(exact))
    return float(np.linalg.norm(approx - exact)) / norm if norm else float(np.linalg.norm(approx))


def measure_error(layer: str, w_kn: np.ndarray, quantized: QuantizedWeights) -> LayerError:
    """Relative L2 error of the weights and of x @ W for a seeded standard-normal x."""
    exact = np.asarray(w_kn, np.float64)
    approx = quantized.dequantize().T.astype(np.float64)
    x = np.random.default_rng(SAMPLE_SEED).standard_normal((SAMPLE_ROWS, exact.shape[0]))
    return LayerError(layer, exact.shape, relative_l2(approx, exact), relative_l2(x @ approx, x @ exact))


def layer_name(matmul: Operation, weight: Operation) -> str:
    """The weight constant's resource name, else the matmul's name (ONNX node), else "weight"."""
    attr = weight.attributes["value"]
    if isinstance(attr, DenseResourceAttr):
        return attr.resource.name
    return matmul.loc.name or "weight"


def layer_label(matmul: Operation, weight: Operation) -> str:
    """How the report names a layer: its weight's name and, if known, where the matmul is."""
    where = str(matmul.loc)
    name = layer_name(matmul, weight)
    return f"{name} at {where}" if where and where != name else name


class MatMulToMpGemm(RewritePattern):
    """`graph.matmul(x, constant K x N)` -> `graph.mpgemm(x, codes, scales[, zeros])`."""

    root = "graph.matmul"

    def __init__(self, options: "QuantizeWeights", errors: list[LayerError]):
        self.options = options
        self.errors = errors

    # Structural match: a matmul whose rhs is a 2-D constant.
    def match(self, op: Operation) -> tuple[Operation, np.ndarray] | None:
        weight_op = defining_op(op.operands[1], "graph.constant")
        if weight_op is None:
            return None
        weight = constant_value(op.operands[1])
        if weight is None or weight.ndim != 2:
            return None
        return weight_op, weight

    # Semantic check: float activations and weights, big enough to be worth it.
    def legal(self, op: Operation, weight: np.ndarray) -> bool:
        x_type, w_type = op.operands[0].type, op.operands[1].type
        return (
            isinstance(x_type, TensorType)
            and x_type.element.is_float
            and w_type.element.is_float
            and weight.size >= self.options.min_size
        )

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        matched = self.match(op)
        if matched is None or not self.legal(op, matched[1]):
            return False
        weight_op, weight = matched
        opts = self.options
        quantized = quantize(weight, bits=opts.bits, group_size=opts.group_size, scheme=opts.scheme)
        name = layer_name(op, weight_op)
        self.errors.append(measure_error(layer_label(op, weight_op), weight, quantized))
        bits = quantized.bits
        operands = [
            op.operands[0],
            rewriter.constant(quantized.codes, ElementType(f"ui{bits}"), name=f"{name}_codes"),
            rewriter.constant(quantized.scales.astype(w_dtype(op)), name=f"{name}_scales"),
        ]
        if quantized.zeros is not None:
            operands.append(rewriter.constant(quantized.zeros, ElementType(f"ui{bits}"), name=f"{name}_zeros"))
        attributes = {"bits": bits, "group_size": quantized.group_size}
        if quantized.ternary:
            attributes["ternary"] = True
        rewriter.replace_op(op, rewriter.create("graph.mpgemm", operands, attributes).result)
        return True


def w_dtype(op: Operation) -> np.dtype:
    """Scales keep the weight's float type (f32, f16, ...)."""
    return op.operands[1].type.element.np_dtype


@register_pass
@dataclass
class QuantizeWeights(Pass):
    name = "quantize-weights"
    summary = "Quantize constant matmul weights (round to nearest per group; sym, asym or ternary) into graph.mpgemm."
    bits: Literal[2, 3, 4, 8] = 4
    group_size: int = 32
    scheme: Scheme = "sym"
    min_size: int = 0
    # stderr, none, or a file path: where the per-layer error report goes.
    report: str = "stderr"
    errors: list[LayerError] = field(default_factory=list, init=False, repr=False)

    def run(self, module: Module) -> None:
        if self.group_size <= 0:
            raise PipelineError(f"quantize-weights: group-size must be positive, got {self.group_size}")
        self.errors = []
        apply_patterns_greedily(module, [MatMulToMpGemm(self, self.errors)])
        self.write_report()

    def write_report(self) -> None:
        if self.report == "none" or not self.errors:
            return
        text = "".join(f"{e}\n" for e in self.errors)
        if self.report == "stderr":
            sys.stderr.write(text)
            return
        try:
            with open(self.report, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as err:
            raise LutcError(f"quantize-weights: cannot write the report to '{self.report}': {err.strerror}") from None
