"""GEMV 1x4096 . 4096x4096 with 2- and 4-bit weights (group 128): lutc's CPU kernels side by
side with NumPy fp32 matmul and onnxruntime's MatMulNBits, measured in one run.

    .venv/bin/python bench/cpu_gemv.py [--threads 1] [--repeat 50] [--k 4096 --n 4096]

Prints medians (ms), ratios against numpy fp32 and ORT, the CPU and the thread count. No
assertions: the numbers go to docs/backend_cpu.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=50)
    p.add_argument("--k", type=int, default=4096)
    p.add_argument("--n", type=int, default=4096)
    p.add_argument("--group", type=int, default=128)
    return p.parse_args()


ARGS = parse_args()
# Thread counts must be set before numpy/TVM/ORT start their pools.
for var in ("TVM_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

import lutc  # noqa: E402
from lutc.ir import Builder, Module, make_function, sync_function_type, tensor  # noqa: E402
from lutc.ir.core import function_body  # noqa: E402
from lutc.ir.dialects.graph import dequantize_weights  # noqa: E402
from lutc.ir.types import ElementType  # noqa: E402


def median_ms(fn, repeat: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mpgemm_module(codes, scales, bits: int, group: int) -> Module:
    fn = make_function("main", [tensor((1, codes.shape[1]), "f32")])
    b = Builder(function_body(fn))
    q = b.constant(codes, ElementType(f"ui{bits}"), "codes")
    y = b.create("graph.mpgemm", [function_body(fn).args[0], q, b.constant(scales, name="scales")],
                 {"bits": bits, "group_size": group}).result
    b.create("func.return", [y], result_types=[])
    sync_function_type(fn)
    module = Module()
    module.body.append(fn)
    return module


def ort_matmulnbits(codes, scales, bits: int, group: int, threads: int) -> ort.InferenceSession:
    """com.microsoft.MatMulNBits: B (N, k_blocks, group*bits/8) uint8, low bits first."""
    n, k = codes.shape
    blocks = k // group
    per_byte = 8 // bits
    q = codes.reshape(n, blocks, group // per_byte, per_byte).astype(np.uint8)
    packed = np.zeros((n, blocks, group // per_byte), np.uint8)
    for t in range(per_byte):
        packed |= q[..., t] << (bits * t)
    node = helper.make_node("MatMulNBits", ["x", "B", "scales"], ["y"], domain="com.microsoft",
                            K=k, N=n, bits=bits, block_size=group, accuracy_level=4)
    graph = helper.make_graph(
        [node], "gemv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])],
        initializer=[onnx.numpy_helper.from_array(packed, "B"),
                     onnx.numpy_helper.from_array(scales.reshape(-1).astype(np.float32), "scales")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def main() -> int:
    k, n, group, threads, repeat = ARGS.k, ARGS.n, ARGS.group, ARGS.threads, ARGS.repeat
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, k)).astype(np.float32)
    w = rng.standard_normal((k, n)).astype(np.float32)
    import tvm  # noqa: E402

    print(f"GEMV 1x{k} . {k}x{n}, group {group}; cpu: {cpu_name()} ({tvm.target.codegen.llvm_get_system_cpu()}); "
          f"threads: {threads}; "
          f"repeat {repeat} (median)")
    numpy_ms = median_ms(lambda: x @ w, repeat)
    rows = [("numpy fp32 matmul", None, numpy_ms, None)]
    for bits in (2, 4):
        codes = rng.integers(0, 2**bits, (n, k)).astype(np.uint8)
        scales = rng.uniform(0.01, 0.02, (n, k // group)).astype(np.float32)
        exact = x @ dequantize_weights(codes, scales, None, bits=bits, group_size=group).T
        session = ort_matmulnbits(codes, scales, bits, group, threads)
        ort_y = session.run(None, {"x": x})[0]
        ort_ms = median_ms(lambda: session.run(None, {"x": x}), repeat)
        rows.append((f"ORT MatMulNBits {bits}-bit (acc. level 4)", bits, ort_ms, ort_y))
        module = mpgemm_module(codes, scales, bits, group)
        for label, pipeline in ((f"lutc cpu dequant mpgemm {bits}-bit", None),
                                (f"lutc cpu LUT i8 tables {bits}-bit", "lut-rewrite{policy=always,table-dtype=i8}")):
            model = lutc.compile(module, target="cpu", pipeline=pipeline)
            if model.lut_gemm_kernels:  # which lut.gemm kernel the backend chose (pshufb needs AVX2)
                label += f" [{model.lut_gemm_kernels[0].split(':')[0]}]"
            y = model.run([x])[0]
            ms = median_ms(model.bound_call([x]), repeat)
            rows.append((label, bits, ms, y))
        for row in rows[-3:]:
            err = np.linalg.norm(row[3] - exact) / np.linalg.norm(exact)
            rows[rows.index(row)] = row[:3] + (err,)
    ort_by_bits = {r[1]: r[2] for r in rows if r[0].startswith("ORT")}
    print(f"{'kernel':52s} {'ms':>8s} {'vs numpy':>9s} {'vs ORT':>8s} {'rel.err':>9s}")
    for label, bits, ms, err in rows:
        vs_ort = f"{ort_by_bits[bits] / ms:7.2f}x" if bits else ""
        err_s = f"{err:9.2e}" if err is not None else ""
        print(f"{label:52s} {ms:8.3f} {numpy_ms / ms:8.2f}x {vs_ort:>8s} {err_s}")
    print("(ratios > 1: faster than the peer; rel.err: ||y - x W_dequant|| / ||x W_dequant||)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
