# lit configuration for lutc's golden IR tests: `// RUN: lutc opt %s -p ... | filecheck %s`.
import os
import shutil

import lit.formats

config.name = "lutc"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".s"]
config.test_source_root = os.path.dirname(__file__)
config.excludes = ["lit.cfg.py", "Inputs"]

# The Makefile puts the project's virtualenv first on PATH; lit passes PATH on.
config.environment["PATH"] = os.environ["PATH"]
for tool in ("lutc", "filecheck"):
    if shutil.which(tool) is None:
        lit_config.fatal(f"'{tool}' is not on PATH: run the tests through 'make test'")
# Tests check text, not colours.
config.environment["NO_COLOR"] = "1"
config.environment["TERM"] = "dumb"
config.substitutions.append(("%inputs", os.path.join(os.path.dirname(__file__), "Inputs")))
