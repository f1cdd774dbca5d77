"""`graph.fused` and `graph.yield`: a fused group of graph ops, held in one region.

    %r:2 = "graph.fused"(%x, %w) ({
    ^bb0(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>):
      %0 = "graph.matmul"(%a, %b) : ...
      %1 = "graph.gelu"(%0) : ...
      "graph.yield"(%0, %1) : ...
    }) {name = "fused_matmul_gelu"} : (...) -> (...)

The region is isolated from above: its block arguments are the group's external inputs
(in operand order) and `graph.yield` returns the values used outside the group (in result
order). `fuse-ops` creates these ops and `unfuse` inlines them again.
"""

from __future__ import annotations

from lutc.ir.attributes import StringAttr
from lutc.ir.dialects.graph import graph
from lutc.ir.opdef import Attr, OpDef, Trait, Variadic, check_region_signature, impl


@graph.op
class Fused(OpDef):
    name = "graph.fused"
    summary = "A fused group of ops: one region whose block arguments are the group's inputs."
    operands = (Variadic("inputs"),)
    num_results = None
    num_regions = 1
    attributes = (Attr("name", StringAttr, "fused"),)
    traits = {Trait.PURE, Trait.ISOLATED}

    @staticmethod
    def verify_op(op) -> str | None:
        signature = f"the op's operands and results, ({', '.join(map(str, op.operand_types))}) -> ({', '.join(map(str, op.result_types))})"
        return check_region_signature(op, op.operand_types, op.result_types, "graph.yield", signature)


@impl(Fused, with_op=True)
def _fused(interpreter, op, *inputs, name):
    return tuple(interpreter.run_block(op.regions[0].block, list(inputs)))


@graph.op
class Yield(OpDef):
    name = "graph.yield"
    summary = "Return values from a graph.fused region (its results, in order)."
    operands = (Variadic("values"),)
    num_results = 0
    traits = {Trait.TERMINATOR}
    parent = "graph.fused"
