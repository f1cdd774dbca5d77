"""A compiled executor for LUT.MMA + VEC.DEQ sequences against today's per-instruction kernels.

    .venv/bin/python bench/sim_executor.py [--pairs 512] [--runs 20]

A prototype for the "compiled executor" of docs/performance.md ("Next steps"), not used by
the simulator yet. Today each integer LUT.MMA lookup and each VEC.DEQ is one call of its
TVM-compiled kernel (`backends/accel/kernels.py`) from a prepared Python partial. Here one
TIR function walks a table of operations instead (kind, operand offsets, shape; an f32
immediate beside it), so a run of such instructions is one call. The sequence has
ffn-1024's shapes (what lutc's compiler emits for the SwiGLU FFN at hidden 1024): 1 x 256
output tiles, k = 64 (2 weight planes, 8 bytes per plane and column), int32 byte-sum
tables, DEQ of the int32 accumulator into an f32 tile, accumulating. Both sides write the
same f32 bits (checked), so the executor is a drop-in for a run of these instructions.

What made it work: operand buffers declared inside the op loop (`T.decl_buffer(...,
elem_offset=<loaded from the op table>)`) need the offsets bound with `T.let[T.int64]`
(an annotated `x: T.int64 = ...` is a mutable variable, and TVM 0.27's StorageRewrite then
fails with "Load/Store of buffer ... occurred before its declaration"), and the accumulator
allocated once, outside the loops. Indexing the flat memories with the offsets written out
instead is 3x slower than the per-instruction kernels.
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

LUT, DEQ = 0, 1  # op kinds; op row: kind and seven operands (below)


def executor():
    """The TIR executor (int32 tables and accumulator, f32 DEQ operands in one memory)."""
    import tvm
    from tvm.script import tirx as T

    @T.prim_func
    def run(sp_h: T.handle, acc_h: T.handle, f32_h: T.handle, tab_h: T.handle, ops_h: T.handle, imm_h: T.handle):
        sp_size, acc_size, f32_size, tab_size, n_ops = T.int64(), T.int64(), T.int64(), T.int64(), T.int64()
        sp = T.match_buffer(sp_h, (sp_size,), "uint8")  # weights
        acc = T.match_buffer(acc_h, (acc_size,), "int32")  # LUT.MMA results, DEQ inputs
        f32 = T.match_buffer(f32_h, (f32_size,), "float32")  # DEQ scales, row sums, outputs
        tab = T.match_buffer(tab_h, (tab_size,), "int32")  # byte-sum tables, back to back
        ops = T.match_buffer(ops_h, (n_ops, 8), "int64")
        imms = T.match_buffer(imm_h, (n_ops,), "float32")
        total = T.alloc_buffer((1,), "int32", scope="local")
        for o in range(n_ops):
            if ops[o, 0] == LUT:  # w_off, out_off, rows, cols, planes, k8, table_off
                w_off: T.let[T.int64] = ops[o, 1]
                out_off: T.let[T.int64] = ops[o, 2]
                rows: T.let[T.int64] = ops[o, 3]
                cols: T.let[T.int64] = ops[o, 4]
                planes: T.let[T.int64] = ops[o, 5]
                k8: T.let[T.int64] = ops[o, 6]
                t_off: T.let[T.int64] = ops[o, 7]
                weights = T.decl_buffer((planes, cols, k8), "uint8", data=sp.data, elem_offset=w_off)
                out = T.decl_buffer((rows, cols), "int32", data=acc.data, elem_offset=out_off)
                tables = T.decl_buffer((rows, planes * k8 * 256), "int32", data=tab.data, elem_offset=t_off)
                for r, c in T.grid(rows, cols):
                    total[0] = 0
                    for i, b in T.grid(planes, k8):
                        total[0] = total[0] + tables[r, (i * k8 + b) * 256 + T.Cast("int64", weights[i, c, b])]
                    out[r, c] = total[0]
            else:  # DEQ, as kernels.deq: a_off, b_off, c_off, dst_off, rows, cols, accumulate
                a_off: T.let[T.int64] = ops[o, 1]
                b_off: T.let[T.int64] = ops[o, 2]
                c_off: T.let[T.int64] = ops[o, 3]
                d_off: T.let[T.int64] = ops[o, 4]
                drows: T.let[T.int64] = ops[o, 5]
                dcols: T.let[T.int64] = ops[o, 6]
                accum: T.let[T.int64] = ops[o, 7]
                imm: T.let[T.float32] = imms[o]
                a = T.decl_buffer((drows, dcols), "int32", data=acc.data, elem_offset=a_off)
                scale_zero = T.decl_buffer((2, dcols), "float32", data=f32.data, elem_offset=b_off)
                row_scale_sum = T.decl_buffer((2, drows), "float32", data=f32.data, elem_offset=c_off)
                dst = T.decl_buffer((drows, dcols), "float32", data=f32.data, elem_offset=d_off)
                for r, col in T.grid(drows, dcols):
                    product = T.Cast("float32", T.Cast("float64", a[r, col]) * T.Cast("float64", imm * row_scale_sum[0, r]))
                    term = (product - scale_zero[1, col] * row_scale_sum[1, r]) * scale_zero[0, col]
                    if accum != 0:
                        dst[r, col] = dst[r, col] + term
                    else:
                        dst[r, col] = term

    module = tvm.IRModule({"run": run.with_attr("global_symbol", "lut_deq_run")})
    return tvm.tirx.build(module, target=tvm.target.Target({"kind": "llvm"}))["lut_deq_run"]


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
    ops = np.zeros((2 * args.pairs, 8), dtype=np.int64)
    imms = np.zeros(2 * args.pairs, dtype=np.float32)
    per_call = []
    for j in range(args.pairs):
        w_off, t_off, dst = 4096 * (j % 16), 4096 * (j % 48), 50000 + 256 * (j % 8)
        ops[2 * j] = (LUT, w_off, 0, 1, 256, 2, 8, t_off)
        ops[2 * j + 1] = (DEQ, 0, 40000, 41000, dst, 1, 256, 1)
        imms[2 * j + 1] = 0.01
        per_call.append(partial(lut, tensor(sp), w_off, tensor(acc), 0, 1, 256, 2, 8,
                                tensor(tables[t_off:t_off + 4096].reshape(1, -1))))
        per_call.append(partial(compiled.deq(np.dtype(np.int32), True), tensor(acc), 0, tensor(f32), 40000, tensor(f32),
                                41000, tensor(f32), dst, 1, 256, 0.01))
    run = partial(executor(), tensor(sp), tensor(acc), tensor(f32), tensor(tables), tensor(ops), tensor(imms))

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
