"""Compiling the same input twice gives identical bytes, whatever Python's hash seed."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

MODEL = Path(__file__).resolve().parents[1] / "examples" / "tiny_llama_q4.onnx"
PIPELINES = [
    "canonicalize,cse,fold-constants,dce",
    "canonicalize,quantize-weights{bits=2,group-size=32,report=none},lut-rewrite{policy=always},fuse-ops",
    "lut-rewrite{policy=always,table-dtype=i8},fuse-ops,unfuse",
]


def compile_in_fresh_process(pipeline: str, hash_seed: str) -> bytes:
    script = (
        "import sys, lutc; m = lutc.import_onnx(sys.argv[1]); "
        "lutc.PassManager.parse(sys.argv[2]).run(m); sys.stdout.write(lutc.print_module(m))"
    )
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    result = subprocess.run([sys.executable, "-c", script, str(MODEL), pipeline], capture_output=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_same_input_same_bytes(pipeline):
    first = compile_in_fresh_process(pipeline, "1")
    assert first == compile_in_fresh_process(pipeline, "2")
    assert b"dialect_resources" in first  # the constants' bytes are part of what is compared
