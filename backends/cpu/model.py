"""The compiled CPU model: build (tvm.compile), run (Relax VM), export and load.

An exported model is a folder:

    model.so        the Relax executable and its kernels (ex.export_library)
    params.bin      the parameters (weights, repacked weights), tvm.runtime.save_param_dict
    manifest.json   inputs and outputs (names, lutc types, dtypes, shapes), parameter order, target

`load_cpu_model(folder)` needs only TVM's runtime and NumPy: no lutc IR, no compiler.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import tvm
from tvm import relax

from lutc.diagnostics import LutcError
from lutc.ir.core import Module
from lutc.ir.interpreter import check_value
from lutc.ir.types import ElementType, TensorType

from lutc.backends.cpu.lower_relax import lower_to_relax, tvm_dtype

MANIFEST_VERSION = 1


def default_target() -> dict[str, Any]:
    """This machine's CPU: LLVM with its exact cpu name ('native' is not resolved by TVM 0.27)."""
    return {"kind": "llvm", "mcpu": tvm.target.codegen.llvm_get_system_cpu(), "num-cores": os.cpu_count() or 1}


def make_target(config: Mapping[str, Any] | str | None) -> tvm.target.Target:
    """config: None (this machine), a target string, or a dict merged over default_target()
    (e.g. {"mcpu": "x86-64"}), optionally under a "target" key."""
    if config is None:
        spec: Any = default_target()
    elif isinstance(config, str):
        spec = config
    else:
        config = dict(config)
        inner = config.pop("target", None)
        if isinstance(inner, str):
            spec = inner
        else:
            spec = {**default_target(), **(inner or {}), **config}
    try:
        return tvm.target.Target(spec)
    except Exception as err:  # TVM raises its own error types for bad target specs
        raise LutcError(f"invalid cpu target {spec!r}: {err}") from None


class CpuModel:
    """A compiled model: `run(inputs) -> outputs` like the reference target."""

    def __init__(self, executable, params: list[np.ndarray], input_names: list[str], input_types: list[TensorType],
                 output_names: list[str], output_types: list[TensorType], target: str):
        self.executable = executable
        self.params_np = params
        self.input_names, self.output_names = input_names, output_names
        self._input_types, self._output_types = list(input_types), list(output_types)
        self.target = target
        # Which kernel each lut.gemm got at compile time ("pshufb" or "generic: why"); empty
        # for a loaded model (the choice is baked into model.so).
        self.lut_gemm_kernels: list[str] = []
        self._device = tvm.cpu()
        self._vm = relax.VirtualMachine(executable, self._device)
        self._params = [tvm.runtime.tensor(p, self._device) for p in params]

    @property
    def input_types(self) -> list[TensorType]:
        return list(self._input_types)

    @property
    def output_types(self) -> list[TensorType]:
        return list(self._output_types)

    def run(self, inputs: Mapping[str, np.ndarray] | Sequence[np.ndarray]) -> list[np.ndarray]:
        if isinstance(inputs, Mapping):
            unknown = sorted(set(inputs) - set(self.input_names))
            missing = [n for n in self.input_names if n not in inputs]
            if unknown or missing:
                raise LutcError(f"inputs must be {', '.join(self.input_names)}; unknown: {unknown}, missing: {missing}")
            args = [inputs[n] for n in self.input_names]
        else:
            args = list(inputs)
            if len(args) != len(self.input_names):
                raise LutcError(f"the model takes {len(self.input_names)} inputs, got {len(args)}")
        arrays = [np.ascontiguousarray(check_value(a, t, f"input '{n}'"))
                  for a, t, n in zip(args, self._input_types, self.input_names)]
        out = self._vm["main"](*[tvm.runtime.tensor(a, self._device) for a in arrays], *self._params)
        outs = [out[i] for i in range(len(out))] if not hasattr(out, "numpy") else [out]
        return [o.numpy().astype(t.element.np_dtype, copy=False) for o, t in zip(outs, self._output_types)]

    def bound_call(self, inputs: Sequence[np.ndarray]):
        """A zero-argument function running the model on `inputs` already on the device (for timing)."""
        tensors = [tvm.runtime.tensor(np.ascontiguousarray(a), self._device) for a in inputs]
        main = self._vm["main"]
        return lambda: main(*tensors, *self._params)

    def export(self, directory: str | Path) -> Path:
        """Write model.so, params.bin and manifest.json into `directory` (created if needed)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.executable.export_library(str(directory / "model.so"))
        names = [f"p{i}" for i in range(len(self.params_np))]
        blob = tvm.runtime.save_param_dict({n: tvm.runtime.tensor(p) for n, p in zip(names, self.params_np)})
        (directory / "params.bin").write_bytes(blob)
        manifest = {
            "format": "lutc-cpu", "version": MANIFEST_VERSION, "target": self.target,
            "inputs": [_describe(n, t) for n, t in zip(self.input_names, self._input_types)],
            "outputs": [_describe(n, t) for n, t in zip(self.output_names, self._output_types)],
            "params": names,
        }
        (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        return directory


def _describe(name: str, t: TensorType) -> dict[str, Any]:
    return {"name": name, "type": str(t), "element": t.element.name, "dtype": tvm_dtype(t),
            "shape": [int(d) for d in t.shape]}


def _tensor_type(entry: Mapping[str, Any]) -> TensorType:
    return TensorType(tuple(entry["shape"]), ElementType(entry["element"]))


def compile_cpu(module: Module, config: Mapping[str, Any] | str | None = None, function: str | None = None) -> CpuModel:
    """Lower `module` to Relax + TIR, compile it with LLVM for the CPU, and wrap it."""
    target = make_target(config)
    lowered = lower_to_relax(module, function, target)
    executable = tvm.compile(lowered.mod, target=target)
    model = CpuModel(executable, lowered.params, lowered.input_names, lowered.input_types,
                     lowered.output_names, lowered.output_types, str(target))
    model.lut_gemm_kernels = list(lowered.lut_gemm_kernels)
    return model


def load_cpu_model(directory: str | Path) -> CpuModel:
    """Load an exported model (model.so + params.bin + manifest.json) in any process."""
    directory = Path(directory)
    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        library = tvm.runtime.load_module(str(directory / "model.so"))
        loaded = tvm.runtime.load_param_dict((directory / "params.bin").read_bytes())
    except OSError as err:
        raise LutcError(f"cannot load the cpu model in '{directory}': {err}") from None
    if manifest.get("format") != "lutc-cpu":
        raise LutcError(f"'{directory}' does not hold a lutc cpu model")
    params = [loaded[name].numpy() for name in manifest["params"]]
    return CpuModel(library, params, [i["name"] for i in manifest["inputs"]], [_tensor_type(i) for i in manifest["inputs"]],
                    [o["name"] for o in manifest["outputs"]], [_tensor_type(o) for o in manifest["outputs"]],
                    manifest["target"])
