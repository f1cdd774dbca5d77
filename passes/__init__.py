"""lutc's passes: one module per pass, registered by name for pipelines."""

from lutc.passes import canonicalize, cse, dce, fold_constants, fuse_ops, infer_shapes, lut_rewrite, plan_memory, quantize_weights, unfuse  # noqa: F401
from lutc.passes.pass_manager import PASSES, Pass, PassManager, parse_pipeline, register_pass
from lutc.passes.rewriter import PatternRewriter, RewritePattern, apply_patterns_greedily

__all__ = ["PASSES", "Pass", "PassManager", "parse_pipeline", "register_pass", "PatternRewriter", "RewritePattern", "apply_patterns_greedily"]
