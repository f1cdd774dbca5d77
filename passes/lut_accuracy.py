"""How far int8 (and f16) lookup tables move an mpGEMM from its exact result.

    python -m lutc.passes.lut_accuracy            # the table in docs/lut.md

For random activations (standard normal, seeded) and random weight codes, it builds the
mpgemm, rewrites it with `lut-rewrite{policy=always,table-dtype=...}`, runs both through the
reference interpreter and reports the relative RMS error, ||y_lut - y|| / ||y||.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from lutc.ir import Builder, Module, make_function, run, sync_function_type, tensor
from lutc.ir.core import function_body
from lutc.ir.types import ElementType
from lutc.passes.pass_manager import PassManager


@dataclass(frozen=True)
class ErrorCase:
    m: int
    n: int
    k: int
    bits: int
    group_size: int = 128
    ternary: bool = False


def mpgemm_module(case: ErrorCase, rng: np.random.Generator) -> Module:
    fn = make_function("main", [tensor((case.m, case.k), "f32")])
    b = Builder(function_body(fn))
    levels = 3 if case.ternary else 2**case.bits
    codes = b.constant(rng.integers(0, levels, (case.n, case.k)).astype(np.uint8), ElementType(f"ui{case.bits}"), "codes")
    blocks = -(-case.k // case.group_size)
    scales = b.constant((rng.uniform(0.5, 1.5, (case.n, blocks)) / np.sqrt(case.k)).astype(np.float32), name="scales")
    attributes = {"bits": case.bits, "group_size": case.group_size, "ternary": case.ternary}
    y = b.create("graph.mpgemm", [function_body(fn).args[0], codes, scales], attributes).result
    b.create("func.return", [y], result_types=[])
    sync_function_type(fn)
    module = Module()
    module.body.append(fn)
    return module


def table_error(case: ErrorCase, pipeline: str, seed: int = 0) -> float:
    """Relative RMS error of the rewritten GEMM against the mpgemm normal form."""
    rng = np.random.default_rng(seed)
    module = mpgemm_module(case, rng)
    x = rng.standard_normal((case.m, case.k)).astype(np.float32)
    exact = run(module, [x])[0].astype(np.float64)
    PassManager.parse(pipeline).run(module)
    approx = run(module, [x])[0].astype(np.float64)
    return float(np.linalg.norm(approx - exact) / np.linalg.norm(exact))


CASES = [
    ErrorCase(8, 512, 4096, 1),
    ErrorCase(8, 512, 4096, 2),
    ErrorCase(8, 512, 4096, 3),
    ErrorCase(8, 512, 4096, 4),
    ErrorCase(8, 512, 4096, 2, ternary=True),
]
PIPELINES = {
    "i8, act-group 64": "lut-rewrite{policy=always,table-dtype=i8,act-group=64}",
    "i8, per row": "lut-rewrite{policy=always,table-dtype=i8,act-group=0}",
    "i8, plain tables": "lut-rewrite{policy=always,table-dtype=i8,symmetric=false}",
    "i8, base-3": "lut-rewrite{policy=always,table-dtype=i8,base3=true}",
    "f16": "lut-rewrite{policy=always,table-dtype=f16}",
    "f32": "lut-rewrite{policy=always}",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"{'weights':<22} {'tables':<18} {'rel. RMS error':>14}")
    for case in CASES:
        weights = f"{'ternary' if case.ternary else f'{case.bits}-bit'} {case.m}x{case.k}x{case.n}"
        for label, pipeline in PIPELINES.items():
            if "base-3" in label and not case.ternary:
                continue
            print(f"{weights:<22} {label:<18} {table_error(case, pipeline, args.seed):>14.3e}")


if __name__ == "__main__":
    main()
