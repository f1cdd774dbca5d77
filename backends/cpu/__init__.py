"""The CPU backend (DESIGN.md §5): lutc IR -> TVM Relax + hand-written TIR kernels -> LLVM.

    model = lutc.compile(module, target="cpu")      # CpuModel
    outputs = model.run({"x": x})
    model.export("out/")                            # model.so, params.bin, manifest.json
    load_cpu_model("out/").run({"x": x})            # in any process

docs/backend_cpu.md describes the lowering, the kernels and their schedules.
"""

from lutc.backends.cpu.model import CpuModel, compile_cpu, default_target, load_cpu_model

__all__ = ["CpuModel", "compile_cpu", "default_target", "load_cpu_model"]
