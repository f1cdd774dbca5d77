"""Accelerator configuration: one TOML file describes one LUT accelerator design.

`load_config(path)` reads and validates a file; `AccelConfig.from_dict` does the same for a
dict (tests and design-space sweeps build variants that way). Every problem is a `LutcError`
that names the file, the field (`[section] key`) and the cause.

The *architecture hash* (`AccelConfig.arch_hash`) covers only the fields a compiled program
depends on (memory sizes, unit shapes, dtypes, supported bits and functions). Clock,
bandwidth, latency and energy only change the report, so they can be swept without
recompiling.
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from lutc.diagnostics import Location, LutcError

# Dtype names as they appear in config files.
TABLE_DTYPES = ("int8", "fp16")
LUT_ACCUM_DTYPES = {"int8": ("int16", "int32"), "fp16": ("fp16", "fp32")}
MMA_DTYPES = ("int8", "fp16", "bf16")
MMA_ACCUM_DTYPES = {"int8": ("int32",), "fp16": ("fp16", "fp32"), "bf16": ("fp32",)}
# Special functions of the vector unit: hardware primitives, and the ones built from them.
SPECIAL_PRIMITIVES = ("exp", "rsqrt", "recip")
SPECIAL_COMPOSITES = {
    "sigmoid": ("exp", "recip"),
    "silu": ("exp", "recip"),
    "tanh": ("exp", "recip"),
    "gelu": ("exp", "recip"),
}
SPECIAL_FUNCTIONS = SPECIAL_PRIMITIVES + tuple(SPECIAL_COMPOSITES)
LUT_GROUPS = (1, 2, 4, 8)  # g must divide 8: weight indices are packed into bytes
MAX_ONCHIP_BYTES = 1 << 30  # 30-bit on-chip byte offsets in the instruction encoding
MAX_DRAM_BYTES = 1 << 48  # 48-bit DRAM addresses


@dataclass(frozen=True)
class DramConfig:
    size_bytes: int
    bandwidth_bytes_per_cycle: float
    latency_cycles: int


@dataclass(frozen=True)
class ScratchpadConfig:
    size_bytes: int
    banks: int


@dataclass(frozen=True)
class AccumulatorConfig:
    size_bytes: int


@dataclass(frozen=True)
class LutUnitConfig:
    rows: int  # M: activation rows served per pass
    cols: int  # N: output columns (weight rows) served per pass
    group: int  # g: activations per table
    table_entries: int  # 2^g (full) or 2^(g-1) (symmetric)
    weight_bits: tuple[int, ...]
    table_dtype: str
    accum_dtype: str
    cycles_per_plane: int
    build_entries_per_cycle: int

    @property
    def symmetric(self) -> bool:
        return self.table_entries != 1 << self.group


@dataclass(frozen=True)
class MmaUnitConfig:
    rows: int
    cols: int
    depth: int
    dtype: str
    accum_dtype: str


@dataclass(frozen=True)
class VectorUnitConfig:
    lanes: int
    special_functions: tuple[str, ...]
    special_cycles: int


@dataclass(frozen=True)
class EnergyConfig:
    """Energy per action, in picojoules."""

    dram_byte: float
    scratchpad_byte: float
    accumulator_byte: float
    lookup: float
    add: float
    mac: float
    vector_op: float


@dataclass(frozen=True)
class AccelConfig:
    name: str
    clock_mhz: float
    dram: DramConfig
    scratchpad: ScratchpadConfig
    accumulator: AccumulatorConfig
    lut: LutUnitConfig
    mma: MmaUnitConfig
    vector: VectorUnitConfig
    energy: EnergyConfig
    source: str = "<config>"

    # -- construction -------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> AccelConfig:
        return load_config(path)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<config>") -> AccelConfig:
        return _Validator(data, source).build()

    def to_dict(self) -> dict[str, Any]:
        """The config as the nested dict a TOML file holds (round-trips through from_dict)."""
        out = asdict(self)
        out.pop("source")
        for section in ("lut", "vector"):
            for key, value in out[section].items():
                if isinstance(value, tuple):
                    out[section][key] = list(value)
        return out

    def replace(self, **sections: dict[str, Any]) -> AccelConfig:
        """A variant with some fields changed, validated: `cfg.replace(dram={"latency_cycles": 10})`."""
        data = self.to_dict()
        for section, fields in sections.items():
            if isinstance(fields, dict):
                data.setdefault(section, {}).update(fields)
            else:
                data[section] = fields
        return AccelConfig.from_dict(data, self.source)

    # -- derived figures ----------------------------------------------------------------
    @cached_property
    def arch_hash(self) -> bytes:
        """SHA-256 over the fields a program's validity depends on (see module docstring)."""
        arch = {
            "dram_size": self.dram.size_bytes,
            "scratchpad": asdict(self.scratchpad),
            "accumulator": asdict(self.accumulator),
            "lut": {k: v for k, v in asdict(self.lut).items() if k not in ("cycles_per_plane", "build_entries_per_cycle")},
            "mma": {k: v for k, v in asdict(self.mma).items() if k in ("dtype", "accum_dtype")},
            "vector": sorted(self.vector.special_functions),
        }
        return hashlib.sha256(json.dumps(arch, sort_keys=True, default=list).encode()).digest()

    @property
    def lut_peak_lookups_per_cycle(self) -> float:
        return self.lut.rows * self.lut.cols / self.lut.cycles_per_plane

    def supports_function(self, name: str) -> bool:
        return name in self.vector.special_functions


def load_config(path: str | Path) -> AccelConfig:
    """Read and validate an accelerator config file (TOML)."""
    path = Path(path)
    loc = Location(file=str(path))
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise LutcError(f"no such accelerator config file: '{path}'", loc) from None
    except OSError as err:
        raise LutcError(f"cannot read accelerator config: {err.strerror}", loc) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise LutcError("accelerator config is not UTF-8 text", loc) from None
    except tomllib.TOMLDecodeError as err:
        raise LutcError(f"invalid TOML: {err}", loc) from None
    return AccelConfig.from_dict(data, str(path))


# ---------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------

_SECTIONS: dict[str, tuple[str, ...]] = {
    "dram": ("size_bytes", "bandwidth_bytes_per_cycle", "latency_cycles"),
    "scratchpad": ("size_bytes", "banks"),
    "accumulator": ("size_bytes",),
    "lut": (
        "rows", "cols", "group", "table_entries", "weight_bits", "table_dtype", "accum_dtype",
        "cycles_per_plane", "build_entries_per_cycle",
    ),
    "mma": ("rows", "cols", "depth", "dtype", "accum_dtype"),
    "vector": ("lanes", "special_functions", "special_cycles"),
    "energy": ("dram_byte", "scratchpad_byte", "accumulator_byte", "lookup", "add", "mac", "vector_op"),
}
_TOP_LEVEL = ("name", "clock_mhz")


class _Validator:
    def __init__(self, data: dict[str, Any], source: str):
        self.data = data
        self.source = source
        self.loc = Location(file=source)

    def error(self, field: str, cause: str) -> LutcError:
        return LutcError(f"accelerator config: {field}: {cause}", self.loc)

    @staticmethod
    def field(section: str | None, key: str) -> str:
        return f"[{section}] {key}" if section else key

    # -- field readers ------------------------------------------------------------------
    def section(self, name: str) -> dict[str, Any]:
        if name not in self.data:
            raise self.error(f"[{name}]", "missing section")
        sec = self.data[name]
        if not isinstance(sec, dict):
            raise self.error(f"[{name}]", "must be a table")
        for key in sec:
            if key not in _SECTIONS[name]:
                raise self.error(f"[{name}] {key}", f"unknown field (fields: {', '.join(_SECTIONS[name])})")
        return sec

    def get(self, sec: dict[str, Any], section: str | None, key: str) -> Any:
        if key not in sec:
            raise self.error(self.field(section, key), "missing field")
        return sec[key]

    def integer(self, sec, section: str | None, key: str, lo: int = 1, hi: int | None = None) -> int:
        value = self.get(sec, section, key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(self.field(section, key), f"must be an integer, got {value!r}")
        self.check_range(self.field(section, key), value, lo, hi)
        return value

    def number(self, sec, section: str | None, key: str, lo: float = 0.0, positive: bool = False) -> float:
        value = self.get(sec, section, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.error(self.field(section, key), f"must be a finite number, got {value!r}")
        if positive and value <= 0:
            raise self.error(self.field(section, key), f"must be > 0, got {value}")
        if value < lo:
            raise self.error(self.field(section, key), f"must be >= {lo}, got {value}")
        return float(value)

    def choice(self, sec, section: str, key: str, choices: tuple[str, ...]) -> str:
        value = self.get(sec, section, key)
        if value not in choices:
            raise self.error(self.field(section, key), f"must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")
        return value

    def check_range(self, field: str, value: int, lo: int, hi: int | None) -> None:
        if value < lo:
            raise self.error(field, f"must be >= {lo}, got {value}")
        if hi is not None and value > hi:
            raise self.error(field, f"must be <= {hi}, got {value}")

    # -- the whole file -----------------------------------------------------------------
    def build(self) -> AccelConfig:
        if not isinstance(self.data, dict):
            raise self.error("<top level>", "must be a table")
        for key in self.data:
            if key not in _TOP_LEVEL and key not in _SECTIONS:
                raise self.error(key, f"unknown field or section (expected {', '.join(_TOP_LEVEL + tuple(_SECTIONS))})")
        name = self.data.get("name", Path(self.source).stem)
        if not isinstance(name, str) or not name:
            raise self.error("name", f"must be a non-empty string, got {name!r}")
        clock = self.number(self.data, None, "clock_mhz", positive=True)
        return AccelConfig(
            name=name,
            clock_mhz=clock,
            dram=self.dram(),
            scratchpad=self.scratchpad(),
            accumulator=self.accumulator(),
            lut=self.lut(),
            mma=self.mma(),
            vector=self.vector(),
            energy=self.energy(),
            source=self.source,
        )

    def dram(self) -> DramConfig:
        s = self.section("dram")
        return DramConfig(
            size_bytes=self.integer(s, "dram", "size_bytes", 1, MAX_DRAM_BYTES),
            bandwidth_bytes_per_cycle=self.number(s, "dram", "bandwidth_bytes_per_cycle", positive=True),
            latency_cycles=self.integer(s, "dram", "latency_cycles", 0),
        )

    def scratchpad(self) -> ScratchpadConfig:
        s = self.section("scratchpad")
        size = self.integer(s, "scratchpad", "size_bytes", 1, MAX_ONCHIP_BYTES)
        banks = self.integer(s, "scratchpad", "banks", 1)
        if banks & (banks - 1):
            raise self.error("[scratchpad] banks", f"must be a power of two, got {banks}")
        if size % banks:
            raise self.error("[scratchpad] banks", f"{banks} banks do not divide size_bytes = {size}")
        return ScratchpadConfig(size_bytes=size, banks=banks)

    def accumulator(self) -> AccumulatorConfig:
        s = self.section("accumulator")
        return AccumulatorConfig(size_bytes=self.integer(s, "accumulator", "size_bytes", 1, MAX_ONCHIP_BYTES))

    def lut(self) -> LutUnitConfig:
        s = self.section("lut")
        group = self.integer(s, "lut", "group", 1, 8)
        if group not in LUT_GROUPS:
            raise self.error("[lut] group", f"must be one of {', '.join(map(str, LUT_GROUPS))} (indices are packed into bytes), got {group}")
        entries = self.integer(s, "lut", "table_entries", 1)
        full, half = 1 << group, 1 << (group - 1)
        if entries not in (full, half):
            raise self.error(
                "[lut] table_entries",
                f"{entries} is inconsistent with group = {group}: expected {full} (full tables, 2^g) "
                f"or {half} (symmetric tables, 2^(g-1))",
            )
        bits = self.get(s, "lut", "weight_bits")
        if not isinstance(bits, list) or not bits or not all(isinstance(b, int) and not isinstance(b, bool) for b in bits):
            raise self.error("[lut] weight_bits", f"must be a non-empty list of integers, got {bits!r}")
        for b in bits:
            self.check_range("[lut] weight_bits", b, 1, 8)
        if len(set(bits)) != len(bits):
            raise self.error("[lut] weight_bits", f"lists a width twice: {bits}")
        table_dtype = self.choice(s, "lut", "table_dtype", TABLE_DTYPES)
        accum = self.get(s, "lut", "accum_dtype")
        allowed = LUT_ACCUM_DTYPES[table_dtype]
        if accum not in allowed:
            raise self.error(
                "[lut] accum_dtype",
                f"{accum!r} is inconsistent with table_dtype = {table_dtype!r} (allowed: {', '.join(allowed)})",
            )
        return LutUnitConfig(
            rows=self.integer(s, "lut", "rows", 1, 65535),
            cols=self.integer(s, "lut", "cols", 1, 65535),
            group=group,
            table_entries=entries,
            weight_bits=tuple(sorted(bits)),
            table_dtype=table_dtype,
            accum_dtype=accum,
            cycles_per_plane=self.integer(s, "lut", "cycles_per_plane", 1),
            build_entries_per_cycle=self.integer(s, "lut", "build_entries_per_cycle", 1),
        )

    def mma(self) -> MmaUnitConfig:
        s = self.section("mma")
        dtype = self.choice(s, "mma", "dtype", MMA_DTYPES)
        accum = self.get(s, "mma", "accum_dtype")
        allowed = MMA_ACCUM_DTYPES[dtype]
        if accum not in allowed:
            raise self.error("[mma] accum_dtype", f"{accum!r} is inconsistent with dtype = {dtype!r} (allowed: {', '.join(allowed)})")
        return MmaUnitConfig(
            rows=self.integer(s, "mma", "rows", 1, 65535),
            cols=self.integer(s, "mma", "cols", 1, 65535),
            depth=self.integer(s, "mma", "depth", 1, 65535),
            dtype=dtype,
            accum_dtype=accum,
        )

    def vector(self) -> VectorUnitConfig:
        s = self.section("vector")
        funcs = self.get(s, "vector", "special_functions")
        if not isinstance(funcs, list) or not all(isinstance(f, str) for f in funcs):
            raise self.error("[vector] special_functions", f"must be a list of strings, got {funcs!r}")
        for f in funcs:
            if f not in SPECIAL_FUNCTIONS:
                raise self.error("[vector] special_functions", f"unknown function {f!r} (known: {', '.join(SPECIAL_FUNCTIONS)})")
        for f in funcs:
            for needed in SPECIAL_COMPOSITES.get(f, ()):
                if needed not in funcs:
                    raise self.error(
                        "[vector] special_functions",
                        f"{f!r} is computed with {needed!r}, which is not listed",
                    )
        return VectorUnitConfig(
            lanes=self.integer(s, "vector", "lanes", 1, 65535),
            special_functions=tuple(sorted(set(funcs))),
            special_cycles=self.integer(s, "vector", "special_cycles", 1),
        )

    def energy(self) -> EnergyConfig:
        s = self.section("energy")
        return EnergyConfig(**{key: self.number(s, "energy", key) for key in _SECTIONS["energy"]})
