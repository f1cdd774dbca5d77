"""An analytical cost model: table lookups (LUT) or dequantize-and-multiply for one mpGEMM?

Both mappings read the same low-bit weights, so both pay the same DRAM traffic; they differ
in compute. Cycles are estimated per op as a roofline, max(compute, memory) + a fixed cost:

dequantize (llama.cpp-style int8 dot products):
    unpack    N*K weights to int8, `unpack_ops_per_vector` ops per vector of int8 lanes
    quantize  the activations to int8 once per row (M*K, a few ops per f32 vector)
    MACs      M*N*K int8 multiply-accumulates at `int8_macs_per_cycle`
    scales    M*N*K/G group-scale FMAs (f32 vectors)

LUT (T-MAC):
    tables    M*K/g tables of E stored entries, one add per entry (f32 vectors), plus
              quantizing them for int8 tables
    lookups   M*N*(K/g)*planes lookups, `lookups_per_shuffle[table type]` per shuffle
              (pshufb: 32 int8 lanes; vpermps: 8 f32 lanes), `shuffles_per_cycle`
    adds      one add per lookup lane (int16 lanes for int8 tables, f32 lanes otherwise)
    epilogue  M*N*K/G shift-adds of the planes, scale and zero-point FMAs
    setup     `lut_setup_cycles`: a second pass over the activations

The weights are read once either way (GEMV: bandwidth-bound at few bits); tables stay in L1.
The defaults describe one core of an AVX2 CPU at about 3 GHz with ~20 GB/s of DRAM bandwidth
per core; `TARGETS` also has an Arm NEON core. With them LUT wins at 1-3 bits for
decode-shaped GEMV with int8 tables and loses at 4 bits, with float tables, and at small
N (tables are not reused), as T-MAC measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from lutc.ir.dialects.lut import num_planes, plane_index_bits, stored_entries


@dataclass(frozen=True)
class CpuTarget:
    name: str
    vector_bytes: int = 32                    # AVX2: 256-bit vectors
    alu_ops_per_cycle: float = 2.0            # vector add/and/shift/convert ports
    fma_per_cycle: float = 2.0                # f32 FMA ports
    int8_macs_per_cycle: float = 21.3         # vpmaddubsw + vpmaddwd + vpaddd per 32 MACs, 2 ports
    shuffles_per_cycle: float = 1.0           # pshufb / vpermps: port 5 only
    lookups_per_shuffle: dict[str, int] = field(default_factory=lambda: {"i8": 32, "f16": 16, "f32": 8})
    unpack_ops_per_vector: float = 2.0        # shift + and, per vector of unpacked int8 codes
    dram_bytes_per_cycle: float = 6.0         # ~20 GB/s per core at 3.3 GHz
    lut_setup_cycles: float = 400.0           # the table pass: a second sweep over the activations
    op_overhead_cycles: float = 200.0         # loop setup, threading: paid by both mappings

    def lanes(self, element_bytes: int) -> int:
        return self.vector_bytes // element_bytes


TARGETS = {
    "avx2": CpuTarget("avx2"),
    # A NEON core: 128-bit vectors, tbl does 16 byte lookups, two shuffle pipes, sdot for int8.
    "neon": CpuTarget(
        "neon", vector_bytes=16, alu_ops_per_cycle=4.0, fma_per_cycle=4.0, int8_macs_per_cycle=32.0,
        shuffles_per_cycle=2.0, lookups_per_shuffle={"i8": 16, "f16": 8, "f32": 4}, dram_bytes_per_cycle=10.0,
    ),
}


@dataclass(frozen=True)
class GemmShape:
    """One mpGEMM: M activation rows (batch included), N outputs, K inputs, weight format."""

    m: int
    n: int
    k: int
    bits: int
    group_size: int


@dataclass(frozen=True)
class LutConfig:
    g: int = 4
    symmetric: bool = True
    base3: bool = False
    table_type: str = "f32"

    def stored_entries(self) -> int:
        return stored_entries(self.g, self.symmetric, self.base3)

    def planes(self, bits: int) -> int:
        return num_planes(bits, self.base3)

    def index_bits(self) -> int:
        return plane_index_bits(self.g, self.symmetric, self.base3)


@dataclass(frozen=True)
class Estimate:
    compute_cycles: float
    memory_cycles: float
    overhead_cycles: float

    @property
    def cycles(self) -> int:
        return math.ceil(max(self.compute_cycles, self.memory_cycles) + self.overhead_cycles)


def weight_bytes(shape: GemmShape, bits_per_weight: float) -> float:
    groups = math.ceil(shape.k / shape.group_size)
    return shape.n * shape.k * bits_per_weight / 8 + shape.n * groups * 4  # codes + f32 scales


def io_bytes(shape: GemmShape) -> float:
    return 4 * (shape.m * shape.k + shape.m * shape.n)  # f32 activations in, results out


def dequantize_cost(shape: GemmShape, target: CpuTarget) -> Estimate:
    m, n, k = shape.m, shape.n, shape.k
    f32_lanes, i8_lanes = target.lanes(4), target.lanes(1)
    unpack = n * k / i8_lanes * target.unpack_ops_per_vector / target.alu_ops_per_cycle
    quantize_x = m * k / f32_lanes * 3 / target.alu_ops_per_cycle  # scale, round, pack
    macs = m * n * k / target.int8_macs_per_cycle
    scales = m * n * math.ceil(k / shape.group_size) / f32_lanes / target.fma_per_cycle
    memory = (weight_bytes(shape, shape.bits) + io_bytes(shape)) / target.dram_bytes_per_cycle
    return Estimate(unpack + quantize_x + macs + scales, memory, target.op_overhead_cycles)


def lut_cost(shape: GemmShape, config: LutConfig, target: CpuTarget) -> Estimate:
    m, n, k = shape.m, shape.n, shape.k
    tables = math.ceil(k / config.g)
    planes = config.planes(shape.bits)
    f32_lanes = target.lanes(4)
    entries = m * tables * config.stored_entries()
    build = entries / f32_lanes / target.alu_ops_per_cycle
    if config.table_type == "i8":
        build *= 3  # plus the scale, round and pack of every entry
    lookups = m * n * tables * planes
    shuffles = lookups / target.lookups_per_shuffle[config.table_type] / target.shuffles_per_cycle
    accumulator_bytes = 2 if config.table_type == "i8" else 4  # int16 sums for int8 tables
    adds = lookups / target.lanes(accumulator_bytes) / target.alu_ops_per_cycle
    epilogue = m * n * math.ceil(k / shape.group_size) * (planes + 2) / f32_lanes / target.fma_per_cycle
    # Planes hold log2(stored entries) (+ sign) bits per g weights: one bit per weight and plane,
    # 2 bits per ternary weight in pairs (TL1), 5/3 in triples.
    bits_per_weight = planes * config.index_bits() / config.g
    memory = (weight_bytes(shape, bits_per_weight) + io_bytes(shape)) / target.dram_bytes_per_cycle
    overhead = target.op_overhead_cycles + target.lut_setup_cycles
    return Estimate(build + shuffles + adds + epilogue, memory, overhead)


@dataclass(frozen=True)
class Choice:
    use_lut: bool
    lut_cycles: int
    dequantize_cycles: int

    @property
    def decision(self) -> str:
        return "lut" if self.use_lut else "dequantize"


def choose(shape: GemmShape, config: LutConfig, target: CpuTarget) -> Choice:
    """LUT only when it is estimated strictly cheaper: on a tie, dequantize needs no tables."""
    lut = lut_cost(shape, config, target).cycles
    dequantize = dequantize_cost(shape, target).cycles
    return Choice(lut < dequantize, lut, dequantize)
