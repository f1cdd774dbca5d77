"""lutc: a compiler that maps neural-network graphs onto lookup-table (LUT) hardware.

    import lutc
    module = lutc.parse(text)                      # or lutc.import_onnx("model.onnx")
    lutc.PassManager.parse("canonicalize,cse").run(module)
    outputs = lutc.compile(module, target="reference").run({"x": x})
"""

from lutc.api import compile, parse, parse_file
from lutc.diagnostics import LutcError
from lutc.frontends.onnx import import_onnx
from lutc.frontends.relax import import_relax
from lutc.ir import Builder, Module, print_module, verify
from lutc.passes import Pass, PassManager, RewritePattern

__all__ = ["compile", "parse", "parse_file", "import_onnx", "import_relax", "LutcError", "Builder", "Module", "print_module", "verify", "Pass", "PassManager", "RewritePattern"]
