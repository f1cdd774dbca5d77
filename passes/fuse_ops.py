"""`fuse-ops`: operator fusion as TVM's FuseOps does it, into `graph.fused` ops.

Every op gets a fusion kind (TVM's OpPatternKind, plus one for LUT table precompute):

    elementwise            relu, exp, add of equal shapes, cast ...
    broadcast              add/mul whose operands broadcast (bias, scale, residual)
    injective              reshape, transpose, concat, slice, gather ...
    reduction              reduce_*, softmax, layer_norm, rms_norm ...
    out-elementwise-fusable  matmul, conv, mpgemm, lut.gemm: the group's anchor
    lut-precompute         lut.table (LUT Tensor Core's precompute fusion)
    opaque                 everything else, and every op lutc does not know

Rules, applied producer -> consumer in block order:

- elementwise/broadcast consumers join a producer group of elementwise, broadcast,
  injective or anchor ops (chains, and epilogues of matmul/conv/mpgemm/lut.gemm);
- injective and reduction consumers join producer groups of elementwise, broadcast and
  injective ops (injective ops fuse into their consumers); a reduction ends its group;
- an anchor never absorbs its producers (its operands come from outside its group), and a
  group holds at most one anchor or one reduction, an anchor only with elementwise or
  broadcast epilogues;
- a lut.table joins the group of the op that produces its activations, of any kind but
  opaque (rms_norm -> lut.table), so the tables are built while the activations are in registers;
  nothing joins after it (its readers, lut.gemm, start their own groups);
- no merge may create a cycle between groups: checked on the group graph with networkx.

A group of two or more ops becomes one `graph.fused` op whose region holds the members;
its block arguments are the group's external inputs (constants included) and its
`graph.yield` returns the values used outside.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lutc.diagnostics import PipelineError
from lutc.ir.core import Block, Module, Operation, Region, Value, function_body
from lutc.ir.opdef import Trait, lookup
from lutc.passes.pass_manager import Pass, register_pass

if TYPE_CHECKING:
    import networkx as nx


class FusionKind(enum.IntEnum):
    """Ordered as TVM's OpPatternKind: a group's pattern is the largest kind in it."""

    ELEMENTWISE = 0
    BROADCAST = 1
    INJECTIVE = 2
    REDUCTION = 3
    OUT_ELEMENTWISE_FUSABLE = 4
    LUT_PRECOMPUTE = 5
    OPAQUE = 8

    @property
    def spelling(self) -> str:
        return self.name.lower().replace("_", "-")


KIND_BY_SPELLING = {kind.spelling: kind for kind in FusionKind}

# Ops whose kind the traits do not tell (elementwise ops carry the Elementwise trait).
_POOLS = tuple(f"graph.{kind}_pool{d}d" for kind in ("max", "avg", "lp") for d in (1, 2, 3))
_CONVS = tuple(f"graph.conv{d}d{t}" for d in (1, 2, 3) for t in ("", "_transpose"))
KIND_BY_OP: dict[str, FusionKind] = {
    **dict.fromkeys(("graph.matmul", "graph.mpgemm", "lut.gemm") + _CONVS + _POOLS, FusionKind.OUT_ELEMENTWISE_FUSABLE),
    **dict.fromkeys(
        ("graph.softmax", "graph.log_softmax", "graph.hardmax", "graph.layer_norm", "graph.rms_norm",
         "graph.instance_norm", "graph.lrn", "graph.argmax", "graph.argmin"),
        FusionKind.REDUCTION,
    ),
    **dict.fromkeys(
        ("graph.reshape", "graph.transpose", "graph.concat", "graph.split", "graph.slice", "graph.gather",
         "graph.gather_elements", "graph.gather_nd", "graph.squeeze", "graph.unsqueeze", "graph.broadcast_to",
         "graph.pad", "graph.tile", "graph.trilu"),
        FusionKind.INJECTIVE,
    ),
    # Per-channel affine maps: elementwise with broadcast parameters.
    **dict.fromkeys(("graph.batch_norm", "graph.quantize", "graph.dequantize"), FusionKind.BROADCAST),
    "lut.table": FusionKind.LUT_PRECOMPUTE,
    "graph.constant": FusionKind.OPAQUE,
    "graph.fused": FusionKind.OPAQUE,
    "lut.repack": FusionKind.OPAQUE,
}
KIND_BY_PREFIX = (("graph.reduce_", FusionKind.REDUCTION),)

EPILOGUE_KINDS = {FusionKind.ELEMENTWISE, FusionKind.BROADCAST, FusionKind.LUT_PRECOMPUTE}


def classify(op: Operation) -> FusionKind:
    """The fusion kind of `op`: from the table, else from its traits; unknown ops are opaque."""
    kind = KIND_BY_OP.get(op.name)
    if kind is None:
        kind = next((k for prefix, k in KIND_BY_PREFIX if op.name.startswith(prefix)), None)
    if kind is None:
        opdef = lookup(op.name)
        elementwise = opdef is not None and opdef.has(Trait.ELEMENTWISE) and not op.regions
        kind = FusionKind.ELEMENTWISE if elementwise else FusionKind.OPAQUE
    if kind == FusionKind.ELEMENTWISE and any(v.type != op.results[0].type.with_element(v.type.element) for v in op.operands):
        kind = FusionKind.BROADCAST  # an operand is broadcast to the result's shape
    return kind


def parse_kinds(text: str, option: str) -> set[FusionKind]:
    """`"reduction+injective"` or `"reduction,injective"` -> kinds; an error names the unknown one."""
    kinds = set()
    for word in filter(None, (w.strip() for w in re.split(r"[,+]", text))):
        kind = KIND_BY_SPELLING.get(word)
        if kind is None:
            raise PipelineError(f"fuse-ops: unknown kind '{word}' in {option} (kinds: {', '.join(KIND_BY_SPELLING)})")
        kinds.add(kind)
    return kinds


# -- planning -----------------------------------------------------------------------------


@dataclass
class Group:
    """Ops planned to fuse, with the counts the merge rules need."""

    members: list[Operation]
    kinds: list[FusionKind]

    @property
    def pattern(self) -> FusionKind:
        """The largest kind, lut.table aside (it only ever joins as an epilogue)."""
        return max((k for k in self.kinds if k != FusionKind.LUT_PRECOMPUTE), default=FusionKind.ELEMENTWISE)

    def count(self, kind: FusionKind) -> int:
        return self.kinds.count(kind)


def can_join(producer: Group, consumer: Group, consumer_kind: FusionKind, max_ops: int) -> bool:
    """May `consumer` (containing an op of `consumer_kind` that reads `producer`) merge with it?"""
    if len(producer.members) + len(consumer.members) > max_ops:
        return False
    if consumer_kind == FusionKind.LUT_PRECOMPUTE:
        return True  # precompute fusion: the table goes with whatever produced its activations
    if producer.count(FusionKind.LUT_PRECOMPUTE):
        return False  # tables are read by lut.gemm, which starts its own group
    if producer.count(FusionKind.REDUCTION):
        return False  # a reduction ends its group
    if consumer_kind in (FusionKind.ELEMENTWISE, FusionKind.BROADCAST):
        allowed = producer.pattern <= FusionKind.INJECTIVE or producer.pattern == FusionKind.OUT_ELEMENTWISE_FUSABLE
    elif consumer_kind in (FusionKind.INJECTIVE, FusionKind.REDUCTION):
        allowed = producer.pattern <= FusionKind.INJECTIVE
    else:
        allowed = False  # anchors do not absorb their producers; opaque ops never fuse
    if not allowed:
        return False
    kinds = producer.kinds + consumer.kinds
    anchors = kinds.count(FusionKind.OUT_ELEMENTWISE_FUSABLE)
    reductions = kinds.count(FusionKind.REDUCTION)
    if anchors + reductions > 1:
        return False
    if anchors and any(k not in EPILOGUE_KINDS for k in kinds if k != FusionKind.OUT_ELEMENTWISE_FUSABLE):
        return False  # an anchor takes elementwise and broadcast epilogues only
    if anchors and feeds_anchor(producer.members + consumer.members, producer.kinds + consumer.kinds):
        return False  # ... and no prologue: its operands come from outside the group
    return True


def feeds_anchor(members: list[Operation], kinds: list[FusionKind]) -> bool:
    """Does a member compute an operand of the group's anchor (matmul, conv, mpgemm, lut.gemm)?"""
    inside = {id(op) for op in members}
    anchors = [op for op, kind in zip(members, kinds) if kind == FusionKind.OUT_ELEMENTWISE_FUSABLE]
    return any(id(getattr(v, "op", None)) in inside for op in anchors for v in op.operands)


def creates_cycle(groups: "nx.DiGraph", producer: int, consumer: int) -> bool:
    """Merging would close a cycle iff another path leaves `producer` and re-enters `consumer`."""
    import networkx as nx  # imported on use: it is a fifth of the CLI's start-up time

    return any(nx.has_path(groups, s, consumer) for s in groups.successors(producer) if s != consumer)


def producer_in(block: Block, value: Value) -> Operation | None:
    op = getattr(value, "op", None)
    return op if op is not None and op.parent is block else None


def plan_groups(block: Block, kinds: dict[int, FusionKind], fusable: set[FusionKind], max_ops: int) -> list[Group]:
    """Greedy producer-to-consumer merging in block order; returns the groups of two or more ops."""
    import networkx as nx

    ops = [op for op in block.ops if op is not block.terminator]
    group_of: dict[int, int] = {id(op): i for i, op in enumerate(ops)}
    groups: dict[int, Group] = {i: Group([op], [kinds[id(op)]]) for i, op in enumerate(ops)}
    graph = nx.DiGraph()
    graph.add_nodes_from(groups)
    for i, op in enumerate(ops):
        for value in op.operands:
            producer = producer_in(block, value)
            if producer is not None:
                graph.add_edge(group_of[id(producer)], i)
    for op in ops:
        kind = kinds[id(op)]
        if kind not in fusable:
            continue
        for value in op.operands:
            producer = producer_in(block, value)
            if producer is None or kinds[id(producer)] not in fusable:
                continue
            p, c = group_of[id(producer)], group_of[id(op)]
            if p == c or not can_join(groups[p], groups[c], kind, max_ops) or creates_cycle(graph, p, c):
                continue
            nx.contracted_nodes(graph, p, c, self_loops=False, copy=False)
            merged = groups.pop(c)
            groups[p].members += merged.members
            groups[p].kinds += merged.kinds
            for member in merged.members:
                group_of[id(member)] = p
    position = {id(op): i for i, op in enumerate(ops)}
    planned = []
    for group in groups.values():
        if len(group.members) > 1:
            order = sorted(range(len(group.members)), key=lambda i: position[id(group.members[i])])
            planned.append(Group([group.members[i] for i in order], [group.kinds[i] for i in order]))
    return sorted(planned, key=lambda g: position[id(g.members[0])])


# -- materializing ------------------------------------------------------------------------


def short_name(op: Operation) -> str:
    dialect, _, name = op.name.partition(".")
    return name if dialect == "graph" else f"{dialect}_{name}"


NAMED_MEMBERS = 6


def group_name(group: Group, taken: set[str]) -> str:
    """`fused_mpgemm_add_silu` (long groups: the first ops and a count); repeats get `_1`, `_2`, ..."""
    names = [short_name(op) for op in group.members]
    if len(names) > NAMED_MEMBERS:
        names = names[:NAMED_MEMBERS] + [f"{len(names) - NAMED_MEMBERS}more"]
    base = "fused_" + "_".join(names)
    name, n = base, 0
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


def fuse_group(block: Block, group: Group, name: str) -> Operation:
    """Replace the group's ops with one graph.fused op, placed where its last member was."""
    members = {id(op) for op in group.members}
    inputs: list[Value] = []
    for op in group.members:
        for value in op.operands:
            if getattr(value, "op", None) is None or id(value.op) not in members:
                if all(value is not seen for seen in inputs):
                    inputs.append(value)
    outputs = [r for op in group.members for r in op.results if any(id(u) not in members for u in r.users)]
    body = Block([v.type for v in inputs])
    mapping: dict[Value, Value] = dict(zip(inputs, body.args))
    for op in group.members:
        body.append(op.clone(mapping))
    body.append(Operation("graph.yield", [mapping[v] for v in outputs], loc=group.members[-1].loc))
    fused = Operation(
        "graph.fused", inputs, [v.type for v in outputs], {"name": name}, [Region([body])], loc=group.members[0].loc
    )
    block.insert_before(group.members[-1], fused)
    for old, new in zip(outputs, fused.results):
        old.replace_uses_if(new, lambda use: id(use.user) not in members)
    for op in reversed(group.members):
        op.erase()
    return fused


def sort_topologically(block: Block) -> None:
    """Restore def-before-use after fusion moved values; keeps the current order where it is valid."""
    import networkx as nx

    ops = [op for op in block.ops if op is not block.terminator]
    index = {id(op): i for i, op in enumerate(ops)}
    graph = nx.DiGraph()
    graph.add_nodes_from(range(len(ops)))
    for i, op in enumerate(ops):
        for value in op.operands:
            producer = producer_in(block, value)
            if producer is not None:
                graph.add_edge(index[id(producer)], i)
    order = list(nx.lexicographical_topological_sort(graph, key=lambda i: i))
    if order != list(range(len(ops))):
        terminator = block.terminator
        block.ops[:] = [ops[i] for i in order] + ([terminator] if terminator is not None else [])


@register_pass
@dataclass
class FuseOps(Pass):
    name = "fuse-ops"
    summary = "Fuse elementwise chains, epilogues and LUT table precompute into graph.fused ops (TVM's FuseOps)."
    max_ops: int = 32
    # Kinds that may fuse (empty: all but opaque), and kinds that may not; "a,b" or "a+b".
    allow: str = ""
    deny: str = ""
    groups_created: int = field(default=0, init=False, repr=False)

    def fusable_kinds(self) -> set[FusionKind]:
        allowed = parse_kinds(self.allow, "allow") or set(FusionKind)
        return allowed - parse_kinds(self.deny, "deny") - {FusionKind.OPAQUE}

    def run(self, module: Module) -> None:
        if self.max_ops < 1:
            raise PipelineError(f"fuse-ops: max-ops must be at least 1, got {self.max_ops}")
        fusable = self.fusable_kinds()
        self.groups_created = 0
        for fn in module.functions:
            block = function_body(fn)
            kinds = {id(op): classify(op) for op in block.ops}
            taken = {op.attr("name") for op in block.ops if op.name == "graph.fused"}
            for group in plan_groups(block, kinds, fusable, self.max_ops):
                fuse_group(block, group, group_name(group, taken))
                self.groups_created += 1
            sort_topologically(block)
