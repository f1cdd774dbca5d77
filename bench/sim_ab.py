"""The simulator of this tree against the one at a git revision, in one process, interleaved.

    .venv/bin/python bench/sim_ab.py [--base HEAD~1] [--programs gemm-int8,mlp-decode] [--runs 60]

On a shared VM, separate processes minutes apart see speeds that differ by up to 2x, so a
change worth 10% cannot be told from noise that way. Here both simulators live in one
process: the revision's `compiler/ ir/ passes/ backends/` are exported (`git archive`) into
a temporary package named `lutcbase` (its `lutc.` imports renamed), and each iteration runs
the base and the current simulator back to back, alternating which goes first, on the same
program image and inputs. Both therefore see the same load at the same moment; the paired
ratio new/base per iteration, and its median, is the figure to read.

`--processes ROUNDS` runs each side in its own processes instead, alternating base and new,
ROUNDS each, `--runs` timed runs per process, and compares the least and the median CPU times.
One process shares more than the VM's load: the allocator's state too (memory one side frees
is what the other side gets, without page faults), so changes to how memory is allocated, or
that make the other side's heap shrink, only show up measured this way.

Modes, as in bench/sim_throughput.py: `load` = `Program.from_bytes` + `validate_program` +
a first run of a new `Simulator` (what `lutc sim` pays); `first` = a first run of a new
`Simulator` on a loaded, validated program. Programs: the four of sim_throughput.py, plus
`ffn`, the demo's SwiGLU FFN compiled for the edge accelerator (what lutc's compiler emits).
The outputs and report text of both simulators are compared before timing.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core's work, as in sim_throughput.py

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import sim_throughput  # noqa: E402

PACKAGE_DIRS = {"compiler": "", "ir": "ir", "passes": "passes", "backends": "backends"}  # as in pyproject.toml


def export_base(rev: str, into: Path) -> None:
    """The package at `rev` as `lutcbase` under `into`."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, *PACKAGE_DIRS], capture_output=True, check=True)
    src = into / "src"
    src.mkdir()
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
    for folder, sub in PACKAGE_DIRS.items():  # compiler/ first: the others go inside it
        (src / folder).rename(into / "lutcbase" / sub)
    for path in (into / "lutcbase").rglob("*.py"):  # only import statements: messages keep saying "lutc"
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(r"^(\s*(?:from|import)\s+)lutc\b", r"\1lutcbase", text, flags=re.M), encoding="utf-8")


class Side:
    """One simulator (package `lutc` or `lutcbase`) with the program image and inputs."""

    def __init__(self, package: str, blob: bytes, inputs: dict):
        # The compiled kernels loaded first, as bench/sim_throughput.py does: otherwise whether a
        # small program uses them would depend on whether an earlier program loaded them.
        importlib.import_module(f"{package}.backends.accel.kernels").sim_kernels()
        self.program_mod = importlib.import_module(f"{package}.backends.accel.program")
        self.sim_mod = importlib.import_module(f"{package}.backends.accel.simulator")
        self.config = importlib.import_module(f"{package}.backends.accel.config").load_config(
            ROOT / "examples" / "accel" / "edge.toml")
        self.blob, self.inputs = blob, inputs
        self.loaded = self.load()

    def load(self):
        program = self.program_mod.Program.from_bytes(self.blob)
        self.program_mod.validate_program(program, self.config)
        return program

    def run(self, mode: str):
        program = self.load() if mode == "load" else self.loaded
        return self.sim_mod.Simulator(self.config).run(program, self.inputs)


def demo_ffn() -> tuple[bytes, dict]:
    """The SwiGLU FFN of `make demo`, compiled for the edge accelerator: (program image, inputs)."""
    edge = sim_throughput.load_config(ROOT / "examples" / "accel" / "edge.toml")
    program = sim_throughput.compiled_ffn(edge)
    return program.to_bytes(), sim_throughput.program_inputs(program)


def program_image(name: str) -> tuple[bytes, dict]:
    if name == "ffn":
        return demo_ffn()
    edge = sim_throughput.load_config(ROOT / "examples" / "accel" / "edge.toml")
    build = {"mlp-decode": sim_throughput.mlp_decode, "requant-stream": sim_throughput.requant_stream,
             "gemm-int8": sim_throughput.gemm_int8,
             "ffn-1024": lambda config: sim_throughput.compiled_ffn(config, 1024, 2048)}[name]
    program = build(edge)
    return program.to_bytes(), sim_throughput.program_inputs(program)


def same_results(a, b) -> bool:
    return (a.report.to_text() == b.report.to_text()
            and a.outputs.keys() == b.outputs.keys()
            and all(np.array_equal(a.outputs[k], b.outputs[k]) for k in a.outputs))


def timed_runs(side: Side, mode: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.process_time()
        side.run(mode)
        times.append(time.process_time() - start)
    return times


def fingerprint(result) -> str:
    """The report text and outputs of a run, as one digest (compared between processes)."""
    digest = hashlib.sha256(result.report.to_text().encode())
    for name in sorted(result.outputs):
        digest.update(name.encode() + result.outputs[name].tobytes())
    return digest.hexdigest()


def worker(package: str, images: Path, programs: list[str], modes: list[str], runs: int) -> None:
    """One process of --processes: every program and mode of one side; JSON on stdout."""
    out = {}
    for name in programs:
        inputs = dict(np.load(images / f"{name}.npz"))
        side = Side(package, (images / f"{name}.bin").read_bytes(), inputs)
        gc.collect()
        gc.freeze()
        for mode in modes:
            out[f"{name} {mode}"] = {"result": fingerprint(side.run(mode)), "times": timed_runs(side, mode, runs),
                                     "instructions": side.loaded.instruction_count}
    print(json.dumps(out))


def compare_processes(args, base_path: Path) -> int:
    """--processes: alternate one process per side, `args.processes` rounds each."""
    images = base_path / "images"
    images.mkdir()
    for name in args.programs.split(","):
        blob, inputs = program_image(name)
        (images / f"{name}.bin").write_bytes(blob)
        np.savez(images / f"{name}.npz", **inputs)
    rounds: dict[str, list[dict]] = {"base": [], "new": []}
    for r in range(args.processes):
        for label in ("base", "new") if r % 2 == 0 else ("new", "base"):
            package = "lutcbase" if label == "base" else "lutc"
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(base_path), os.environ.get("PYTHONPATH")])))
            done = subprocess.run([sys.executable, __file__, "--worker", package, "--images", str(images), "--programs",
                                   args.programs, "--modes", args.modes, "--runs", str(args.runs)],
                                  capture_output=True, text=True, env=env)
            if done.returncode:
                print(done.stderr[-3000:])
                return 1
            rounds[label].append(json.loads(done.stdout.strip().splitlines()[-1]))
    for key in rounds["base"][0]:
        if rounds["base"][0][key]["result"] != rounds["new"][0][key]["result"]:
            print(f"{key}: outputs or report differ between base and new")
            return 1
        n = rounds["base"][0][key]["instructions"]
        least = {label: min(min(x[key]["times"]) for x in rounds[label]) for label in rounds}
        median = {label: statistics.median(statistics.median(x[key]["times"]) for x in rounds[label]) for label in rounds}
        print(f"{key:<22}{n:>6} instrs  least base {least['base'] * 1e3:.2f} ms, new {least['new'] * 1e3:.2f} ms "
              f"(new/base {least['new'] / least['base']:.3f})  median of process medians base {median['base'] * 1e3:.2f} ms, "
              f"new {median['new'] * 1e3:.2f} ms ({median['new'] / median['base']:.3f}; {n / median['new']:,.0f} instr/s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="HEAD", help="git revision to compare with (default: HEAD)")
    parser.add_argument("--programs", default="gemm-int8,ffn", help="gemm-int8, mlp-decode, requant-stream, ffn, ffn-1024")
    parser.add_argument("--modes", default="load,first")
    parser.add_argument("--runs", type=int, default=40, help="iterations (each runs both simulators)")
    parser.add_argument("--processes", type=int, default=0, metavar="ROUNDS",
                        help="compare in separate processes, alternating, ROUNDS per side (--runs runs each)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one process of --processes
    parser.add_argument("--images", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.images, args.programs.split(","), args.modes.split(","), args.runs)
        return 0
    print(f"machine: {sim_throughput.machine()}")
    how = (f"{args.processes} processes per side, alternating, {args.runs} runs each" if args.processes
           else f"{args.runs} interleaved iterations")
    print(f"base: {args.base} ({subprocess.run(['git', '-C', str(ROOT), 'rev-parse', '--short', args.base], capture_output=True, text=True).stdout.strip()}); "
          f"new: this tree; {how}; process CPU time")
    with tempfile.TemporaryDirectory() as tmp:
        export_base(args.base, Path(tmp))
        if args.processes:
            return compare_processes(args, Path(tmp))
        sys.path.insert(0, tmp)
        for name in args.programs.split(","):
            blob, inputs = program_image(name)
            base, new = Side("lutcbase", blob, inputs), Side("lutc", blob, inputs)
            gc.collect()
            gc.freeze()  # what the setup imported (TVM, ONNX for ffn) is not rescanned by every collection
            n = base.loaded.instruction_count
            for mode in args.modes.split(","):
                if not same_results(base.run(mode), new.run(mode)):
                    print(f"{name} {mode}: outputs or report differ between base and new")
                    return 1
                times = {"base": [], "new": []}
                for i in range(args.runs):
                    for label, side in (("base", base), ("new", new)) if i % 2 == 0 else (("new", new), ("base", base)):
                        times[label] += timed_runs(side, mode, 1)
                ratio = statistics.median(t_new / t_base for t_new, t_base in zip(times["new"], times["base"]))
                summary = "  ".join(f"{label} min {min(t) * 1e3:.2f} ms, median {statistics.median(t) * 1e3:.2f} ms "
                                    f"({n / statistics.median(t):,.0f} instr/s)" for label, t in times.items())
                print(f"{name:<15}{mode:<6}{n:>6} instrs  {summary}  new/base {ratio:.3f} (median of paired ratios)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
