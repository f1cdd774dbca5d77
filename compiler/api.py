"""lutc's Python API; the CLI is a thin layer over it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lutc.diagnostics import LutcError
from lutc.ir.core import Module
from lutc.ir.parser import parse as parse_text
from lutc.ir.verifier import verify
from lutc.passes.pass_manager import PassManager

TARGETS = ("reference", "cpu", "accel")


def parse(text: str, filename: str = "<string>") -> Module:
    """Parse IR text (MLIR generic syntax) and verify it."""
    module = parse_text(text, filename)
    verify(module)
    return module


def parse_file(path: str | Path) -> Module:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise LutcError(f"cannot read '{path}': {err.strerror}") from None
    return parse(text, str(path))


def load(path: str | Path) -> Module:
    """Load a model: an ONNX file (imported) or IR text (parsed and verified)."""
    if str(path).endswith(".onnx"):
        from lutc.frontends.onnx import import_onnx

        return import_onnx(str(path))
    return parse_file(path)


def compile(module: Module, target: str = "reference", *, config: Any = None, pipeline: str | None = None) -> Any:
    """Compile `module` for `target`: a ReferenceModel, CpuModel or AccelModel, each with
    `.run(inputs) -> list[np.ndarray]`, `.input_names`, `.input_types`, `.output_names`.

    `pipeline` runs first, on a copy (the caller's module is left as it was).
    """
    if target not in TARGETS:
        raise LutcError(f"unknown target '{target}' (targets: {', '.join(TARGETS)})")
    module = module.clone()
    if pipeline:
        PassManager.parse(pipeline).run(module)
    if target == "cpu":
        from lutc.backends.cpu import compile_cpu

        return compile_cpu(module, config)
    if target == "accel":
        from lutc.backends.accel.compile import compile_accel

        return compile_accel(module, config)
    from lutc.backends.reference import ReferenceModel

    return ReferenceModel(module)


def example_inputs(compiled, seed: int = 0) -> dict:
    """Seeded random inputs of a compiled model's input types (floats ~ N(0, 1), small integers)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    inputs = {}
    for name, type in zip(compiled.input_names, compiled.input_types):
        if not type.is_static:
            raise LutcError(f"input '{name}' has dynamic shape {type}; pass concrete arrays instead")
        element = type.element
        if element.is_float:
            inputs[name] = rng.standard_normal(type.shape).astype(element.np_dtype)
        elif element.is_bool:
            inputs[name] = rng.random(type.shape) < 0.5
        else:
            lo, hi = element.int_range()
            inputs[name] = rng.integers(max(lo, 0), min(hi, 16) + 1, type.shape).astype(element.np_dtype)
    return inputs


def onnxruntime_outputs(model: str, feeds: dict) -> list:
    """The outputs onnxruntime computes for `model`, with graph optimizations off: its fusions
    (DequantizeLinear+MatMul into int8-activation MatMulNBits) would change the model's math."""
    if not model.endswith(".onnx"):
        raise LutcError("--compare-onnxruntime needs an .onnx model")
    try:
        import onnxruntime as ort
    except ImportError:
        raise LutcError("--compare-onnxruntime needs the onnxruntime package") from None
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)
