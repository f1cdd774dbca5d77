"""The simulator's compiled executor for LUT.MMA + VEC.DEQ runs, against per-instruction kernel calls.

    .venv/bin/python bench/sim_executor.py [--pairs 512] [--runs 20]

The simulator's compiled executor (`kernels.executor`, used through `functional.Runs`)
on its own: before it, each integer LUT.MMA lookup and each VEC.DEQ was one call of its
TVM-compiled kernel from a prepared Python partial; the executor walks a table of operations
instead (kind, operand offsets, shape; an f32 immediate beside it), so a run of such
instructions is one call. This bench times the two on one sequence. The sequence has
ffn-1024's shapes (what lutc's compiler emits for the SwiGLU FFN at hidden 1024): 1 x 256
output tiles, k = 64 (2 weight planes, 8 bytes per plane and column), int32 byte-sum
tables, DEQ of the int32 accumulator into an f32 tile, accumulating. Both sides write the
same f32 bits (checked), so the executor is a drop-in for a run of these instructions.

How the executor is written (kernels.py, `executor`): operand buffers declared inside the
op loop over offsets bound with `T.let[T.int64]` (an annotated `x: T.int64 = ...` is a
mutable variable, over which TVM 0.27's StorageRewrite fails with "Load/Store of buffer ...
occurred before its declaration"), the accumulator allocated once outside the loops, and the
DEQ's accumulate choice outside its loops (inside, they do not vectorize). Indexing the flat
memories with the offsets written out instead was 3x slower than the per-instruction kernels.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sim_throughput import machine  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=512, help="LUT.MMA + VEC.DEQ pairs (ffn-1024 has 512)")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    from lutc.backends.accel import kernels

    compiled = kernels.sim_kernels()
    if compiled is None:
        print(f"compiled kernels unavailable: {kernels.unavailable_reason}")
        return 1
    tensor = compiled.tensor
    lut = compiled.lut_mma(np.dtype(np.int32), np.dtype(np.int32))
    rng = np.random.default_rng(0)
    sp = rng.integers(0, 256, 1 << 18, dtype=np.uint8)  # 16 weight tiles of 4 KiB
    acc = np.zeros(256, dtype=np.int32)
    f32 = rng.standard_normal(1 << 16).astype(np.float32)  # scales, zeros, row sums; outputs at 50000
    tables = rng.integers(-1000, 1000, 48 * 4096, dtype=np.int32)  # 48 byte-sum tables, as ffn-1024 fills
    ops = np.zeros((2 * args.pairs, kernels.RUN_OP_FIELDS), dtype=np.int64)
    imms = np.zeros(2 * args.pairs, dtype=np.float32)
    per_call = []
    for j in range(args.pairs):
        w_off, t_off, dst = 4096 * (j % 16), 4096 * (j % 48), 50000 + 256 * (j % 8)
        ops[2 * j] = (kernels.RUN_LUT_MMA, w_off, 0, 1, 256, 2, 8, t_off)
        ops[2 * j + 1] = (kernels.RUN_DEQ, 0, 40000, 41000, dst, 1, 256, 1)
        imms[2 * j + 1] = 0.01
        per_call.append(partial(lut, tensor(sp), w_off, tensor(acc), 0, 1, 256, 2, 8,
                                tensor(tables[t_off:t_off + 4096].reshape(1, -1))))
        per_call.append(partial(compiled.deq(np.dtype(np.int32), True), tensor(acc), 0, tensor(f32), 40000, tensor(f32),
                                41000, tensor(f32), dst, 1, 256, 0.01))
    unused = tensor(np.zeros(1, dtype=np.uint8))  # DRAM and the accumulator's bytes: no DMA rows here
    run = partial(compiled.executor(np.dtype(np.int32), np.dtype(np.int32)), unused, tensor(sp), unused, tensor(acc),
                  tensor(f32), tensor(tables), tensor(np.zeros(1, dtype=np.float32)), tensor(ops), tensor(imms), 0, len(ops))

    def calls() -> None:
        for call in per_call:
            call()

    outputs = []
    for fn in (calls, run):
        f32[50000:50000 + 8 * 256] = 0
        fn()
        outputs.append(f32[50000:50000 + 8 * 256].copy())
    same = np.array_equal(outputs[0].view(np.int32), outputs[1].view(np.int32))
    times: dict[str, list[float]] = {"per-instruction kernels": [], "executor": []}
    for i in range(args.runs):  # interleaved: both see the same phase of a shared machine
        for name, fn in (("per-instruction kernels", calls), ("executor", run))[:: 1 if i % 2 else -1]:
            start = time.process_time()
            fn()
            times[name].append(time.process_time() - start)
    print(f"machine: {machine()}")
    print(f"{args.pairs} LUT.MMA + VEC.DEQ pairs (1 x 256 tiles, k = 64, 2 planes), median of {args.runs}; "
          f"same f32 bits: {same}")
    for name, t in times.items():
        print(f"  {name:<24} {statistics.median(t) * 1e3:7.3f} ms  ({2 * args.pairs / statistics.median(t):,.0f} instr/s)")
    ratio = statistics.median(e / c for e, c in zip(times["executor"], times["per-instruction kernels"]))
    print(f"  executor / per-instruction: {ratio:.2f} (median of paired ratios)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
