"""Simulated instructions per second of the accelerator simulator (`lutc.backends.accel`).

    .venv/bin/python bench/sim_throughput.py [--runs 7] [--quick]

Four programs: three built with the ProgramBuilder API the compiler's codegen uses, and one
the compiler itself emits:

* mlp-decode: an 8-layer 2-bit MLP at decode (1 x 1024 by 1024 x 1024 per layer) on the
  edge design, tiled to its LUT array (32 columns, k-tiles of 128), double-buffered weight
  and scale tiles, a VEC.DEQ epilogue per tile, SiLU between layers;
* requant-stream: f32 tiles streamed through the vector unit to int8 (LOAD, VEC.MULI,
  STORE), double-buffered;
* gemm-int8: a 256 x 256 by 256 x 512 int8 GEMM on the dense MMA array, 16 x 32 output
  tiles (one MMA and one 2-D STORE each), double-buffered;
* ffn-1024: what lutc's compiler emits: the SwiGLU FFN of examples/make_ffn.py at LLaMA-like
  size (hidden 1024, inner 2048), 2-bit weights in groups of 64, int8 tables, compiled for
  the edge design (`api.compile(..., "accel")`): per 1 x 256 output tile and 64-row k-tile
  one LUT.MMA and one VEC.DEQ, weights streamed by large LOADs.

For each, the median of `--runs` simulations gives instructions per second, wall clock and
process CPU time, in four modes:

* full, first run: a new `Simulator` per run, so every run does everything (validation,
  schedule, race check, uninitialized-read analysis, preparing the instruction functions,
  functional execution, report): what `lutc sim` pays for a program;
* full, repeat: one `Simulator` running the same program again with new inputs each run
  (a different input set per run): validation, schedule, race and uninitialized-read
  analysis and the prepared functions are reused, the functional execution and the report
  are done again; what a caller that simulates a program on many inputs pays per run;
* timing-only, first run: `Simulator(functional=False)`, new per run;
* first run, NumPy only: a full first run with `Simulator(compiled=False)`: integer LUT.MMA
  lookups, their byte-sum tables and VEC.DEQ epilogues in NumPy instead of the TVM-compiled
  kernels (`backends/accel/kernels.py`; the same results bit for bit): the peer the kernels
  are measured against. The kernels are loaded once, before any timing.

Loading is reported separately: a program is validated, and its instructions turned into
NumPy columns, when it is built or loaded (what `lutc sim` does with a program file:
`load_program(path, config)`); a first run reuses that work. So two more rows per program:

* load: `Program.from_bytes` of the program's binary image (vectorized decode of the
  32-byte instruction words into columns) plus `validate_program` against the config;
* load + first run: both, on a freshly loaded program each time (the honest `lutc sim` figure).

A last line per program fits time = fixed + instructions / marginal rate to load + first runs
of the program and its half-size twin: the per-program setup and what each further
instruction costs. BLAS runs on one thread (set before NumPy loads), like the simulator.

`--phased SAMPLES` only samples load + first runs of gemm-int8 and ffn-1024, each sample
right after a probe of the VM's phase (below), 3 s apart.

A last line times a fixed piece of work of the simulator's kind before and after all of it
(`phase_probe`): this VM runs the same code up to 2x slower in phases of seconds to minutes,
and the probe says which phase an invocation saw.

The baseline is a plain Python interpreter of the same instruction stream (one instruction
at a time, element loops, no NumPy in the inner loops), run on a smaller mlp-decode; it also
checks that both compute the same outputs.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

# The simulator is single-threaded; so is BLAS here (set before NumPy loads it), so that
# process CPU time equals the work of one core rather than counting BLAS threads spinning.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from lutc.backends.accel.config import AccelConfig, load_config  # noqa: E402
from lutc.backends.accel.isa import (  # noqa: E402
    DType, Load, LutBuild, LutMma, Mma, Queue, Store, Sync, Vec, VecFunc, acc, sp,
)
from lutc.backends.accel.lut import pack_weight_planes, table_block_layout  # noqa: E402
from lutc.backends.accel.program import Program, ProgramBuilder, validate_program  # noqa: E402
from lutc.backends.accel import kernels  # noqa: E402
from lutc.backends.accel.simulator import COMPILED_MIN, Simulator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------
# Programs
# ---------------------------------------------------------------------------------------

def mlp_decode(config: AccelConfig, layers: int = 8, dim: int = 1024, bits: int = 2, seed: int = 0) -> Program:
    """An MLP at decode time: per layer, y = silu(W x) with LUT GEMV tiles sized to the LUT array."""
    g, sym = config.lut.group, config.lut.symmetric
    tdt, adt = DType.parse(config.lut.table_dtype), DType.parse(config.lut.accum_dtype)
    nt, kt = config.lut.cols, 128  # output columns per tile, k per tile (= one scale group)
    nn, nk = dim // nt, dim // kt
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 1 << bits, size=(layers, dim, dim))
    tiles = np.stack([
        np.stack([np.stack([pack_weight_planes(codes[l, i * nt:(i + 1) * nt, j * kt:(j + 1) * kt], bits, g) for j in range(nk)])
                  for i in range(nn)]) for l in range(layers)])
    colp = np.stack([np.full((layers, nn, nk, nt), 1.0 / math.sqrt(dim)), np.zeros((layers, nn, nk, nt))], axis=3)
    b = ProgramBuilder("mlp_decode", config=config)
    x = b.tensor("x", "input", "f32", (1, dim))
    w = b.tensor("w", "weight", "u8", tiles.shape, data=tiles)
    cp = b.tensor("colp", "weight", "f32", colp.shape, data=colp.astype(np.float32))
    y = b.tensor("y", "output", "f32", (1, dim))
    w_tile, c_tile = bits * nt * kt // 8, 2 * nt * 4
    act = [0, dim * 4]  # ping-pong activation buffers
    tb = 2 * dim * 4
    _, params_at, block = table_block_layout(1, dim, g, sym, tdt.size, kt)
    w_buf = tb + (block + 255) // 256 * 256
    c_buf = w_buf + 2 * w_tile
    entry_stride = (kt // g) * config.lut.table_entries * tdt.size
    b.emit(Load(sp=sp(act[0]), dram=x.addr, rows=1, row_bytes=dim * 4, push_next=True))
    total, t = layers * nn * nk, 0
    for layer in range(layers):
        b.set_layer(f"layer{layer}")
        src, dst = act[layer % 2], act[(layer + 1) % 2]
        b.emit(LutBuild(dst=sp(tb, tdt), src=sp(src, "f32"), rows=1, k=dim, qgroup=kt, sym=sym, pop_prev=layer == 0))
        for i in range(nn):
            for j in range(nk):
                buf = t % 2
                tile = (layer * nn + i) * nk + j
                b.emit(Load(sp=sp(w_buf + buf * w_tile), dram=w.addr + tile * w_tile, rows=1, row_bytes=w_tile, pop_next=t >= 2))
                b.emit(Load(sp=sp(c_buf + buf * c_tile), dram=cp.addr + tile * c_tile, rows=1, row_bytes=c_tile, push_next=True))
                b.emit(LutMma(dst=acc(0, adt), tables=sp(tb + j * entry_stride, tdt), weights=sp(w_buf + buf * w_tile),
                              m=1, n=nt, k=kt, bits=bits, sym=sym, pop_prev=True))
                b.emit(Vec(func=VecFunc.DEQ, dst=sp(dst + i * nt * 4, "f32"), a=acc(0, adt), b=sp(c_buf + buf * c_tile, "f32"),
                           c=sp(tb + params_at + j * 8, "f32"), rows=1, cols=nt, imm=0.5, accum=j > 0, push_prev=t + 2 < total))
                t += 1
        if layer < layers - 1:
            b.emit(Vec(func=VecFunc.SILU, dst=sp(dst, "f32"), a=sp(dst, "f32"), rows=1, cols=dim))
    b.emit(Sync(sync_queue=Queue.COMPUTE, push_next=True))
    b.emit(Store(dram=y.addr, sp=sp(act[layers % 2]), rows=1, row_bytes=dim * 4, pop_prev=True))
    b.finish()
    return b.build()


def requant_stream(config: AccelConfig, tiles: int = 2048, cols: int = 256) -> Program:
    """f32 tiles -> int8, streamed: LOAD (double-buffered), VEC.MULI, STORE (double-buffered)."""
    b = ProgramBuilder("requant_stream", config=config)
    x = b.tensor("x", "input", "f32", (tiles, cols))
    y = b.tensor("y", "output", "i8", (tiles, cols))
    in_buf, out_buf = [0, cols * 4], [2 * cols * 4, 2 * cols * 4 + cols]
    for t in range(tiles):
        k = t % 2
        b.emit(Load(sp=sp(in_buf[k]), dram=x.addr + t * cols * 4, rows=1, row_bytes=cols * 4, pop_next=t >= 2, push_next=True))
        b.emit(Vec(func=VecFunc.MULI, dst=sp(out_buf[k], "i8"), a=sp(in_buf[k], "f32"), rows=1, cols=cols, imm=64.0,
                   pop_prev=True, pop_next=t >= 2, push_prev=t + 2 < tiles, push_next=True))
        b.emit(Store(dram=y.addr + t * cols, sp=sp(out_buf[k]), rows=1, row_bytes=cols, pop_prev=True, push_prev=t + 2 < tiles))
    b.finish()
    return b.build()


def gemm_int8(config: AccelConfig, m: int = 256, k: int = 256, n: int = 512, mt: int = 16, nt: int = 32, seed: int = 0) -> Program:
    """C = A . B, int8 x int8 -> int32, one MMA per 16 x 32 output tile; B tiles double-buffered."""
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, size=(m, k), dtype=np.int8)
    bt = rng.integers(-128, 128, size=(n, k), dtype=np.int8)  # B^T: an n-tile is contiguous rows
    b = ProgramBuilder("gemm_int8", config=config)
    at = b.tensor("a", "input", "i8", a.shape)
    btt = b.tensor("bt", "weight", "i8", bt.shape, data=bt)
    c = b.tensor("c", "output", "i32", (m, n))
    a_sp, b_sp = 0, m * k
    b_tile, c_tile = nt * k, mt * nt * 4
    b.emit(Load(sp=sp(a_sp), dram=at.addr, rows=1, row_bytes=m * k))
    t, total = 0, (n // nt) * (m // mt)
    for j in range(n // nt):
        buf = j % 2
        b.emit(Load(sp=sp(b_sp + buf * b_tile), dram=btt.addr + j * b_tile, rows=1, row_bytes=b_tile, pop_next=j >= 2, push_next=True))
        for i in range(m // mt):
            last = i == m // mt - 1
            slot = t % 2
            b.emit(Mma(dst=acc(slot * c_tile, "i32"), a=sp(a_sp + i * mt * k, "i8"), b=sp(b_sp + buf * b_tile, "i8"),
                       m=mt, n=nt, k=k, transpose_b=True, pop_prev=i == 0, pop_next=t >= 2, push_next=True,
                       push_prev=last and j + 2 < n // nt))
            b.emit(Store(dram=c.addr + (i * mt * n + j * nt) * 4, sp=acc(slot * c_tile), rows=mt, row_bytes=nt * 4,
                         dram_stride=n * 4, pop_prev=True, push_prev=t + 2 < total))
            t += 1
    b.finish()
    return b.build()


FFN_PIPELINE = ("canonicalize,quantize-weights{bits=2,group-size=64,report=none},"
                "lut-rewrite{policy=always,table-dtype=i8},fuse-ops")


def compiled_ffn(config: AccelConfig, hidden: int = 256, inner: int = 512) -> Program:
    """The SwiGLU FFN of examples/make_ffn.py, compiled by lutc for `config` (the demo's pipeline)."""
    from lutc import api

    if str(ROOT / "examples") not in sys.path:
        sys.path.insert(0, str(ROOT / "examples"))
    from make_ffn import ffn_module

    return api.compile(ffn_module(hidden, inner), "accel", config=config, pipeline=FFN_PIPELINE).program


def program_inputs(program: Program, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for t in program.inputs:
        if t.dtype.is_float:
            out[t.name] = rng.standard_normal(t.shape).astype(t.dtype.np)
        else:
            out[t.name] = rng.integers(-128, 128, size=t.shape).astype(t.dtype.np)
    return out


# ---------------------------------------------------------------------------------------
# The baseline: a plain Python interpreter (functional only, one element at a time)
# ---------------------------------------------------------------------------------------

class PlainInterpreter:
    """Interprets LOAD, STORE, LUT.BUILD, LUT.MMA, VEC.DEQ / SILU and SYNC in program order with
    Python loops over elements and bytearrays for memory: what a simulator costs without vectorization."""

    def __init__(self, config: AccelConfig):
        self.config = config

    def run(self, program: Program, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import struct

        cfg = self.config
        dram = bytearray(program.dram_size)
        for t in program.tensors:
            raw = inputs[t.name] if t.name in inputs else program.tensor_array(t.name)
            if raw is not None:
                dram[t.addr:t.end] = np.ascontiguousarray(raw, dtype=t.dtype.np).tobytes()
        mem = {1: bytearray(cfg.scratchpad.size_bytes), 2: bytearray(cfg.accumulator.size_bytes)}
        g = cfg.lut.group

        def f32s(buf, addr, count):
            return list(struct.unpack_from(f"<{count}f", buf, addr))

        def put_f32s(buf, addr, values):
            struct.pack_into(f"<{len(values)}f", buf, addr, *values)

        for ins in program.instructions:
            if isinstance(ins, Load):
                for r in range(ins.rows):
                    s = ins.dram + r * (ins.dram_stride or ins.row_bytes)
                    d = ins.sp.addr + r * (ins.sp_stride or ins.row_bytes)
                    mem[ins.sp.space][d:d + ins.row_bytes] = dram[s:s + ins.row_bytes]
            elif isinstance(ins, Store):
                for r in range(ins.rows):
                    s = ins.sp.addr + r * (ins.sp_stride or ins.row_bytes)
                    d = ins.dram + r * (ins.dram_stride or ins.row_bytes)
                    dram[d:d + ins.row_bytes] = mem[ins.sp.space][s:s + ins.row_bytes]
            elif isinstance(ins, LutBuild):
                self._build(mem[1], ins, g, f32s)
            elif isinstance(ins, LutMma):
                self._lut_mma(mem, ins, g)
            elif isinstance(ins, Vec) and ins.func is VecFunc.DEQ:
                rows, cols = ins.rows, ins.cols
                a = list(struct.unpack_from(f"<{rows * cols}h", mem[ins.a.space], ins.a.addr))
                scale, zero = f32s(mem[1], ins.b.addr, cols), f32s(mem[1], ins.b.addr + 4 * cols, cols)
                rs, rsum = f32s(mem[1], ins.c.addr, rows), f32s(mem[1], ins.c.addr + 4 * rows, rows)
                prev = f32s(mem[1], ins.dst.addr, rows * cols) if ins.accum else [0.0] * (rows * cols)
                out = []
                for r in range(rows):
                    for c in range(cols):
                        v = scale[c] * (ins.imm * rs[r] * a[r * cols + c] - zero[c] * rsum[r])
                        out.append(prev[r * cols + c] + v)
                put_f32s(mem[1], ins.dst.addr, out)
            elif isinstance(ins, Vec) and ins.func is VecFunc.SILU:
                vals = f32s(mem[1], ins.a.addr, ins.rows * ins.cols)
                put_f32s(mem[1], ins.dst.addr, [v / (1.0 + math.exp(-v)) if v > -80 else 0.0 for v in vals])
            elif isinstance(ins, Sync) or type(ins).__name__ == "Finish":
                pass
            else:
                raise NotImplementedError(ins.mnemonic)
        return {t.name: np.frombuffer(bytes(dram[t.addr:t.end]), dtype=t.dtype.np).reshape(t.shape) for t in program.outputs}

    @staticmethod
    def _build(sp_mem, ins, g, f32s):
        import struct

        rows, k, q = ins.rows, ins.k, ins.qgroup
        entries = 1 << (g - 1) if ins.sym else 1 << g
        x = f32s(sp_mem, ins.src.addr, rows * k)
        table = [[[0.0] * entries for _ in range(rows)] for _ in range(k // g)]
        params = []
        for r in range(rows):
            scales, sums = [], []
            for grp in range(k // q):
                xs = x[r * k + grp * q: r * k + (grp + 1) * q]
                sums.append(sum(xs))
                worst = max(sum(abs(v) for v in xs[j * g:(j + 1) * g]) for j in range(q // g))
                scales.append(worst / 127 if worst > 0 else 1.0)
            for j in range(k // g):
                for c in range(entries):
                    v = sum(((2 * ((c >> t) & 1) - 1) if ins.sym else ((c >> t) & 1)) * x[r * k + g * j + t] for t in range(g))
                    table[j][r][c] = max(-127, min(127, round(v / scales[j * g // q])))
            params.append((scales, sums))
        flat = [table[j][r][c] for j in range(k // g) for r in range(rows) for c in range(entries)]
        struct.pack_into(f"<{len(flat)}b", sp_mem, ins.dst.addr, *flat)
        at = ins.dst.addr + (len(flat) + 3) // 4 * 4
        for grp in range(k // q):
            struct.pack_into(f"<{2 * rows}f", sp_mem, at + grp * 8 * rows,
                             *[params[r][0][grp] for r in range(rows)], *[params[r][1][grp] for r in range(rows)])

    @staticmethod
    def _lut_mma(mem, ins, g):
        import struct

        m, n, k, bits = ins.m, ins.n, ins.k, ins.bits
        entries = 1 << (g - 1) if ins.sym else 1 << g
        tbl = struct.unpack_from(f"<{(k // g) * m * entries}b", mem[1], ins.tables.addr)
        w = mem[1][ins.weights.addr: ins.weights.addr + bits * n * k // 8]
        acc_vals = list(struct.unpack_from(f"<{m * n}h", mem[2], ins.dst.addr)) if ins.accum else [0] * (m * n)
        half = entries
        for r in range(m):
            for col in range(n):
                total = 0
                for i in range(bits):
                    row = w[(i * n + col) * (k // 8):(i * n + col + 1) * (k // 8)]
                    for j in range(k // g):
                        bit0 = g * j
                        idx = (row[bit0 // 8] >> (bit0 % 8)) & ((1 << g) - 1)
                        if ins.sym and idx >= half:
                            v = -tbl[(j * m + r) * entries + (2 * half - 1 - idx)]
                        else:
                            v = tbl[(j * m + r) * entries + idx]
                        total += v << i
                acc_vals[r * n + col] += total
        struct.pack_into(f"<{m * n}h", mem[2], ins.dst.addr, *acc_vals)


# ---------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------

def min_cpu_times(fns, runs: int) -> list[float]:
    """The least process-CPU seconds of `runs` calls of each of `fns`, called in turn (after one
    warm-up call each), so that all of them see the same load on a shared machine."""
    for fn in fns:
        fn()
    best = [math.inf] * len(fns)
    for _ in range(runs):
        for k, fn in enumerate(fns):
            c0 = time.process_time()
            fn()
            best[k] = min(best[k], time.process_time() - c0)
    return best


def median_time(fn, runs: int) -> tuple[float, float, float]:
    """Median wall and process-CPU seconds of `runs` calls (after one warm-up call), and the least
    CPU seconds (on a shared VM, interference only ever adds time: the least is the steadiest)."""
    fn()
    walls, cpus = [], []
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus), min(cpus)


def phase_probe(runs: int = 15) -> float:
    """Median CPU milliseconds of a fixed piece of work of the simulator's kind (small NumPy calls
    over 500-element columns, a Python loop, one BLAS matmul), run before and after the
    measurements: the shared VM's speed varies up to 2x in phases, and this says which phase
    the figures were taken in (larger = slower) where two invocations are compared."""
    rng = np.random.default_rng(0)
    column = rng.integers(0, 1 << 20, 500)
    a, b = rng.standard_normal((256, 256), dtype=np.float32), rng.standard_normal((256, 128), dtype=np.float32)

    def work() -> None:
        for _ in range(50):
            order = np.argsort(column, kind="stable")
            np.cumsum(column[order])
            np.unique(column)
            np.flatnonzero(column > 1000)
        total = 0
        for i in range(20000):
            total += i & 7
        a @ b

    _, cpu, _ = median_time(work, runs)
    return cpu * 1e3


def phased(config: AccelConfig, samples: int) -> int:
    """Load + first runs of gemm-int8 and ffn-1024, sampled right after a phase probe each."""
    kernels.sim_kernels()
    print(f"machine: {machine()}")
    programs = {"gemm-int8": gemm_int8(config), "ffn-1024": compiled_ffn(config, 1024, 2048)}
    images = {name: (p.to_bytes(), program_inputs(p), len(p.instructions)) for name, p in programs.items()}

    def load_and_run(blob: bytes, inputs: dict) -> None:
        loaded = Program.from_bytes(blob)
        validate_program(loaded, config)
        Simulator(config).run(loaded, inputs)

    for _ in range(samples):
        line = [f"{time.strftime('%H:%M:%S')}  probe {phase_probe(5):.2f} ms"]
        for name, (blob, inputs, n) in images.items():
            _, cpu, best = median_time(lambda: load_and_run(blob, inputs), 9)
            line.append(f"{name} load + first run: median {n / cpu:,.0f} best {n / best:,.0f} instr/s (cpu)")
        print("   ".join(line), flush=True)
        time.sleep(3)  # samples spread over the VM's phases (10-30 s each)
    return 0


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ}
    return (f"{cpu}, {os.cpu_count()} CPUs; Python {platform.python_version()}, NumPy {np.__version__}; "
            f"simulator threads: 1 (Python + NumPy + its TVM-compiled kernels); BLAS threads: {threads}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="smaller programs, fewer runs (a smoke test)")
    parser.add_argument("--phased", type=int, metavar="SAMPLES",
                        help="only load + first runs of gemm-int8 and ffn-1024: SAMPLES samples of 9 runs, 3 s apart, "
                             "each right after a phase probe, so that figures can be read by phase")
    args = parser.parse_args(argv)
    runs = 2 if args.quick else args.runs
    edge = load_config(ROOT / "examples" / "accel" / "edge.toml")
    if args.phased:
        return phased(edge, args.phased)
    print(f"machine: {machine()}")
    print(f"config: {edge.name}; median of {runs} runs (best: the least CPU time of them); "
          f"instr/s = instructions / time of Simulator.run")
    probe_before = phase_probe()
    found = kernels.sim_kernels()  # loaded (or built and cached) once per process, outside the timings
    print(f"compiled kernels: {found.origin if found else 'unavailable: ' + str(kernels.unavailable_reason)}; "
          f"used by default for programs with >= {COMPILED_MIN} LUT.MMA + VEC.DEQ (here: all, once loaded)")
    programs = [  # (name, program, the same program at half its size: for the scaling line)
        ("mlp-decode", mlp_decode(edge, layers=2 if args.quick else 8), mlp_decode(edge, layers=1 if args.quick else 4)),
        ("requant-stream", requant_stream(edge, tiles=256 if args.quick else 2048),
         requant_stream(edge, tiles=128 if args.quick else 1024)),
        ("gemm-int8", gemm_int8(edge, m=64 if args.quick else 256), gemm_int8(edge, m=32 if args.quick else 128)),
        ("ffn-1024", compiled_ffn(edge, 512 if args.quick else 1024, 1024 if args.quick else 2048),
         compiled_ffn(edge, 512 if args.quick else 1024, 512 if args.quick else 1024)),
    ]
    print(f"{'program':<16}{'mode':<24}{'instrs':>8}{'wall s':>10}{'instr/s':>12}{'cpu s':>10}{'instr/s (cpu)':>15}"
          f"{'best (cpu)':>12}")
    scaling = []
    for name, program, half in programs:
        input_sets = [program_inputs(program, seed) for seed in range(1, 4)]
        inputs = input_sets[0]
        n = len(program.instructions)
        repeat = Simulator(edge)
        turn = iter(range(1 << 30))
        blob = program.to_bytes()

        def load() -> Program:
            loaded = Program.from_bytes(blob)
            validate_program(loaded, edge)
            return loaded

        modes = (
            ("load (decode+validate)", load),
            ("load + first run", lambda: Simulator(edge).run(load(), inputs)),
            ("full, first run", lambda: Simulator(edge).run(program, inputs)),
            ("first run, NumPy only", lambda: Simulator(edge, compiled=False).run(program, inputs)),
            ("full, repeat", lambda: repeat.run(program, input_sets[next(turn) % len(input_sets)])),
            ("timing-only, first run", lambda: Simulator(edge, functional=False).run(program, inputs)),
        )
        for mode, fn in modes:
            wall, cpu, best = median_time(fn, runs)
            print(f"{name:<16}{mode:<24}{n:>8}{wall:>10.4f}{n / wall:>12,.0f}{cpu:>10.4f}{n / cpu:>15,.0f}{n / best:>12,.0f}")
        scaling.append((name, program, half))

    # Time = fixed + instructions / marginal rate, fitted to the program and its half-size twin
    # (load + first run; the least CPU time of 2 * runs each, the two run in turn, as medians of
    # a few runs on a shared machine are too noisy for a difference): the per-program setup,
    # and what each further instruction costs.
    def load_and_run(program: Program):
        blob, inputs = program.to_bytes(), program_inputs(program)

        def run() -> None:
            loaded = Program.from_bytes(blob)
            validate_program(loaded, edge)
            Simulator(edge).run(loaded, inputs)

        return run

    for name, program, half in scaling:
        n_half, n = len(half.instructions), len(program.instructions)
        cpu_half, cpu = min_cpu_times([load_and_run(half), load_and_run(program)], 2 * runs)
        per_instr = (cpu - cpu_half) / (n - n_half)
        print(f"scaling {name:<16} load + first run: {n_half} instrs {cpu_half * 1e3:.2f} ms, {n} instrs {cpu * 1e3:.2f} ms: "
              f"marginal {1 / per_instr:,.0f} instr/s, fixed {(cpu - n * per_instr) * 1e3:.2f} ms per program")

    # Baseline: a plain Python interpreter on a one-layer mlp-decode (it is slow), same outputs.
    small = mlp_decode(edge, layers=1, dim=256 if args.quick else 1024)
    inputs = program_inputs(small)
    plain = PlainInterpreter(edge)
    fast_out = Simulator(edge).run(small, inputs).outputs["y"]
    slow_out = plain.run(small, inputs)["y"]
    agree = np.allclose(fast_out, slow_out, rtol=1e-4, atol=1e-4 * float(np.abs(fast_out).max()))
    base_wall, _, _ = median_time(lambda: plain.run(small, inputs), 1 if args.quick else 3)
    sim_wall, _, _ = median_time(lambda: Simulator(edge).run(small, inputs), runs)  # first runs, like the baseline
    n = len(small.instructions)
    print(f"baseline (mlp-decode, 1 layer of {small.tensor('x').shape[1]}, {n} instrs): plain Python {n / base_wall:,.0f} instr/s, "
          f"simulator (first run) {n / sim_wall:,.0f} instr/s: {base_wall / sim_wall:.1f}x; outputs agree: {agree}")
    print(f"VM phase probe (bench.sim_throughput.phase_probe, CPU ms; larger = slower phase): {probe_before:.2f} before, "
          f"{phase_probe():.2f} after")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
