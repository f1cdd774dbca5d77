"""`lut-rewrite`: graph.mpgemm -> lut.table + lut.gemm (T-MAC's table-lookup mpGEMM).

    %y = "graph.mpgemm"(%x, %codes, %scales) {bits = 2, group_size = 32}
  ->
    %t:3 = "lut.table"(%x) {g = 4, symmetric = true, table_type = f32, sum_group = 32, ...}
    %planes = "graph.constant"() {value = dense_resource<codes_planes>}  // repacked at compile time
    %y = "lut.gemm"(%t#0, %t#1, %t#2, %planes, %scales) {bits = 2, group_size = 32, lut_decision = "lut", ...}

Three steps, kept apart:
1. plan: for every mpgemm, is the rewrite legal (group size a multiple of g...) and, under
   `policy=auto`, cheaper by the cost model (`lut_cost`)? The choice and both estimates
   are recorded on the op (`lut_decision`, `lut_cycles`, `dequant_cycles`), kept or not.
2. share: mpgemms that read the same activations with the same table format get one
   lut.table (Q/K/V projections; gate and up), placed right after the activations'
   producer; its sums are per gcd of their group sizes so that every reader can use them.
3. rewrite: each chosen mpgemm becomes a lut.gemm over its repacked weight planes.

Ternary weights use base-3 tables of pairs (bitnet.cpp TL1, 9 entries, 5 stored when
symmetric) with `base3=true`; otherwise they go bit-serial like any 2-bit code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from lutc.diagnostics import PipelineError
from lutc.ir.attributes import DenseResourceAttr
from lutc.ir.builder import Builder, infer_result_types
from lutc.ir.core import BlockArgument, Module, Operation, Value
from lutc.ir.dialects.lut import repack_weights
from lutc.ir.types import ElementType
from lutc.passes.lut_cost import TARGETS, Choice, GemmShape, LutConfig, choose
from lutc.passes.matchers import constant_value, defining_op
from lutc.passes.pass_manager import Pass, register_pass
from lutc.passes.rewriter import PatternRewriter, RewritePattern, apply_patterns_greedily

# bitnet.cpp TL1: base-3 tables index pairs of ternary weights.
BASE3_GROUP = 2


@dataclass(frozen=True)
class TableFormat:
    """What a lut.table op builds (apart from its sums' granularity, decided by its readers)."""

    g: int
    symmetric: bool
    base3: bool
    table_type: str
    act_group: int

    def cost_config(self) -> LutConfig:
        return LutConfig(self.g, self.symmetric, self.base3, self.table_type)


@dataclass
class Decision:
    """The plan for one mpgemm."""

    table_format: TableFormat
    choice: Choice | None  # None when the rewrite is not legal
    use_lut: bool
    reason: str = ""


def gemm_shape(op: Operation) -> GemmShape:
    """M counts every activation row (batch dims included; a dynamic one counts as 1, decode)."""
    x, codes = op.operands[0].type, op.operands[1].type
    m = math.prod(d or 1 for d in x.shape[:-1])
    n, k = codes.shape
    return GemmShape(m, n, k, op.attr("bits"), op.attr("group_size"))


@dataclass
class Planner:
    """Step 1: legality, cost and the decision per mpgemm."""

    options: "LutRewrite"

    def table_format(self, op: Operation) -> TableFormat:
        base3 = self.options.base3 and bool(op.attr("ternary"))
        table_type = self.options.table_dtype
        return TableFormat(
            g=BASE3_GROUP if base3 else self.options.g,
            symmetric=self.options.symmetric,
            base3=base3,
            table_type=table_type,
            act_group=self.options.act_group if table_type == "i8" else 0,
        )

    def illegal_reason(self, op: Operation, fmt: TableFormat) -> str | None:
        codes = op.operands[1].type
        if not codes.is_static:
            return "codes have a dynamic shape"
        if op.attr("group_size") % fmt.g:
            return f"group size {op.attr('group_size')} is not a multiple of g = {fmt.g}"
        if fmt.act_group % fmt.g:
            return f"act-group {fmt.act_group} is not a multiple of g = {fmt.g}"
        return None

    def decide(self, op: Operation) -> Decision:
        fmt = self.table_format(op)
        reason = self.illegal_reason(op, fmt)
        if reason is not None:
            return Decision(fmt, None, False, reason)
        choice = choose(gemm_shape(op), fmt.cost_config(), TARGETS[self.options.target])
        use_lut = {"always": True, "never": False, "auto": choice.use_lut}[self.options.policy]
        return Decision(fmt, choice, use_lut)


def record(op: Operation, decision: Decision) -> None:
    """Make the choice visible in the IR."""
    op.set_attr("lut_decision", "lut" if decision.use_lut else "dequantize")
    if decision.choice is not None:
        op.set_attr("lut_cycles", decision.choice.lut_cycles)
        op.set_attr("dequant_cycles", decision.choice.dequantize_cycles)
    if decision.reason:
        op.set_attr("lut_reason", decision.reason)
    else:
        op.attributes.pop("lut_reason", None)  # from an earlier run with other options


@dataclass
class TableSharing:
    """Step 2: one lut.table per (activations, format), created on first use."""

    sum_group: dict[tuple[int, TableFormat], int] = field(default_factory=dict)
    tables: dict[tuple[int, TableFormat], Operation] = field(default_factory=dict)

    def add_reader(self, x: Value, fmt: TableFormat, group_size: int) -> None:
        key = (id(x), fmt)
        self.sum_group[key] = math.gcd(self.sum_group.get(key, 0), group_size)

    def table_for(self, x: Value, fmt: TableFormat) -> Operation:
        key = (id(x), fmt)
        if key not in self.tables:
            # Right after the producer, where the activations are fresh (and every reader sees it).
            builder = Builder(x.block, 0) if isinstance(x, BlockArgument) else Builder.after(x.op)
            attributes = {
                "g": fmt.g,
                "symmetric": fmt.symmetric,
                "base3": fmt.base3,
                "table_type": ElementType(fmt.table_type),
                "act_group": fmt.act_group,
                "sum_group": self.sum_group[key],
            }
            self.tables[key] = builder.create("lut.table", [x], attributes)
        return self.tables[key]


def weights_name(codes: Value) -> str:
    op = defining_op(codes, "graph.constant")
    attr = op.attributes["value"] if op is not None else None
    return attr.resource.name if isinstance(attr, DenseResourceAttr) else "codes"


class MpGemmToLut(RewritePattern):
    """Step 3: `graph.mpgemm` chosen for LUT -> `lut.gemm` reading the shared table."""

    root = "graph.mpgemm"

    def __init__(self, decisions: dict[int, Decision], sharing: TableSharing):
        self.decisions = decisions
        self.sharing = sharing

    def planes(self, op: Operation, fmt: TableFormat, rewriter: PatternRewriter) -> Value:
        """Repacked weights: a constant when the codes are known, else a lut.repack at run time."""
        codes = op.operands[1]
        layout = {"bits": op.attr("bits"), "g": fmt.g, "symmetric": fmt.symmetric, "base3": fmt.base3}
        value = constant_value(codes)
        if value is None:
            return rewriter.op("lut.repack", codes, **layout)
        (planes_type,) = infer_result_types("lut.repack", [codes], layout, op.loc)
        return rewriter.constant(repack_weights(value, **layout), planes_type.element, name=f"{weights_name(codes)}_planes")

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        decision = self.decisions.get(id(op))
        if decision is None or not decision.use_lut:
            return False
        fmt = decision.table_format
        x, codes, scales, *zeros = op.operands
        table = self.sharing.table_for(x, fmt)
        planes = self.planes(op, fmt, rewriter)
        attributes = {
            "bits": op.attr("bits"),
            "group_size": op.attr("group_size"),
            "g": fmt.g,
            "symmetric": fmt.symmetric,
            "base3": fmt.base3,
            "ternary": bool(op.attr("ternary")),
            "act_group": table.attr("act_group"),
            "sum_group": table.attr("sum_group"),
        }
        attributes.update({k: v for k, v in op.attributes.items() if k.startswith(("lut_", "dequant_"))})
        gemm = rewriter.create("lut.gemm", [*table.results, planes, scales, *zeros], attributes)
        del self.decisions[id(op)]
        rewriter.replace_op(op, gemm.result)
        return True


@register_pass
@dataclass
class LutRewrite(Pass):
    name = "lut-rewrite"
    summary = "Rewrite graph.mpgemm into lut.table + lut.gemm (shared tables, repacked weights), by policy and cost model."
    g: int = 4
    symmetric: bool = True
    table_dtype: Literal["f32", "f16", "i8"] = "f32"
    # int8 tables: k per table scale (T-MAC: 64); 0 means one scale per row.
    act_group: int = 64
    policy: Literal["auto", "always", "never"] = "auto"
    base3: bool = False
    target: Literal["avx2", "neon"] = "avx2"

    def run(self, module: Module) -> None:
        if not 1 <= self.g <= 8:
            raise PipelineError(f"lut-rewrite: g must be between 1 and 8, got {self.g}")
        if self.act_group < 0:
            raise PipelineError(f"lut-rewrite: act-group must be 0 or positive, got {self.act_group}")
        planner = Planner(self)
        decisions: dict[int, Decision] = {}
        sharing = TableSharing()
        for op in module.walk():
            if op.name != "graph.mpgemm":
                continue
            decision = planner.decide(op)
            record(op, decision)
            if decision.use_lut:
                decisions[id(op)] = decision
                sharing.add_reader(op.operands[0], decision.table_format, op.attr("group_size"))
        if decisions:
            apply_patterns_greedily(module, [MpGemmToLut(decisions, sharing)])
