"""target="accel": compile a LUT-form graph module to an accelerator program.

Input: a module after quantize-weights / import and `lut-rewrite{policy=always,table-dtype=i8}`
(optionally `fuse-ops`: `graph.fused` groups are lowered op by op, the group's name tags
their instructions). docs/backend_accel.md describes the lowering; in short:

* stages, in program order: a *table* stage per `lut.table` (LOAD activations, LUT.BUILD per
  row block; the table blocks stay resident in the scratchpad until the last `lut.gemm`
  reading them is done: one build shared by all of them), a *gemm* stage per `lut.gemm`
  with the chain of elementwise epilogues that follow it (bias, scale, activation,
  residual), and a *vector* stage for elementwise chains not rooted at a gemm. Values
  between stages live in DRAM; values inside a stage in the scratchpad.
* a gemm stage tiles N (all row blocks x N tiles); K is split into chunks of one table
  scale group (which also bounds the integer accumulator); weights, epilogue records and
  operand tiles are double-buffered against compute with dependency tokens.
* stages are separated by a barrier (last STORE -> SYNC compute -> first LOAD), so
  scratchpad buffers are reused safely from stage to stage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from lutc.diagnostics import LutcError
from lutc.ir.core import Module, Operation, Value, function_body
from lutc.ir.interpreter import input_names, output_names
from lutc.ir.dialects.lut import repack_weights, unpack_weights
from lutc.backends.accel.config import AccelConfig, load_config
from lutc.backends.accel.isa import (
    DType, Bcast, Load, LutBuild, LutMma, Queue, Store, Sync, Vec, VecFunc, acc, sp,
)
from lutc.backends.accel.lut import (
    codes_from_planes, lut_mma_bound, pack_weight_planes, table_block_layout, table_entries,
)
from lutc.backends.accel.program import Program, ProgramBuilder
from lutc.backends.accel.simulator import SimResult, Simulator

UNARY = {"graph.relu": VecFunc.RELU, "graph.silu": VecFunc.SILU, "graph.sigmoid": VecFunc.SIGMOID,
         "graph.tanh": VecFunc.TANH, "graph.exp": VecFunc.EXP, "graph.gelu": VecFunc.GELU}
BINARY = {"graph.add": VecFunc.ADD, "graph.sub": VecFunc.SUB, "graph.mul": VecFunc.MUL}
SPECIAL = {VecFunc.SILU: "silu", VecFunc.SIGMOID: "sigmoid", VecFunc.TANH: "tanh", VecFunc.EXP: "exp",
           VecFunc.GELU: "gelu"}
ACC_RANGE = {"int16": 2**15 - 1, "int32": 2**31 - 1}
ALIGN = 64


def _where(op: Operation) -> str:
    loc = str(op.loc) if op.loc is not None else ""
    return f"'{op.name}' at {loc}" if loc else f"'{op.name}'"


def _shape(v: Value) -> tuple[int, ...]:
    return tuple(int(d) for d in v.type.shape)


def _elem(v: Value) -> str:
    return str(v.type.element)


def _rows_cols(shape: tuple[int, ...]) -> tuple[int, int]:
    if not shape:
        return 1, 1
    return int(np.prod(shape[:-1], dtype=np.int64)) if len(shape) > 1 else 1, shape[-1]


# ---------------------------------------------------------------------------------------
# Scratchpad allocation: first fit over a free list, every block 64-byte aligned
# ---------------------------------------------------------------------------------------

class Scratchpad:
    def __init__(self, capacity: int):
        self.capacity = capacity
        self.live: dict[int, tuple[int, str]] = {}  # addr -> (size, what)
        self.peak = 0

    def free_bytes(self) -> int:
        return self.capacity - sum(-(-s // ALIGN) * ALIGN for s, _ in self.live.values())

    def alloc(self, size: int, what: str, op: Operation) -> int:
        size = max(1, int(size))
        padded = -(-size // ALIGN) * ALIGN
        addr = 0
        for lo in sorted(self.live):
            if lo - addr >= padded:
                break
            addr = max(addr, lo + -(-self.live[lo][0] // ALIGN) * ALIGN)
        if addr + padded > self.capacity:
            used = self.capacity - self.free_bytes()
            raise LutcError(f"{_where(op)}: {what} needs {size} bytes of scratchpad; capacity {self.capacity} "
                            f"bytes, {used} in use")
        self.live[addr] = (size, what)
        self.peak = max(self.peak, addr + size)
        self.check()
        return addr

    def free(self, addr: int) -> None:
        del self.live[addr]

    def check(self) -> None:
        """Validator: live blocks never overlap and stay within the capacity."""
        end = 0
        for lo in sorted(self.live):
            assert lo >= end and lo % ALIGN == 0, "scratchpad blocks overlap"
            end = lo + self.live[lo][0]
        assert end <= self.capacity


# ---------------------------------------------------------------------------------------
# The graph, flattened
# ---------------------------------------------------------------------------------------

@dataclass
class Flat:
    op: Operation
    layer: str
    index: int


@dataclass
class Operand:
    """An elementwise op's other operand, as a stage reads it per tile."""
    mode: str  # "imm", "tile", "col", "row", "scalar"
    value: Value | None = None
    imm: float = 0.0


@dataclass
class ChainOp:
    op: Operation
    func: VecFunc
    operand: Operand | None = None
    cur_is_rhs: bool = False


@dataclass
class TableInfo:
    op: Operation
    layer: str
    rows: int
    k: int
    kc: int  # k per LUT.MMA chunk = LUT.BUILD qgroup
    mb: int  # rows per block
    blocks: list[tuple[int, int, int, int]] = field(default_factory=list)  # (row0, rows, addr, params_at)
    consumers: int = 0


class Lowering:
    def __init__(self, module: Module, config: AccelConfig, name: str = "model"):
        self.module = module
        self.config = config
        self.fn = module.function()
        self.b = ProgramBuilder(name, config=config)
        self.spm = Scratchpad(config.scratchpad.size_bytes)
        self.dram: dict[Value, Any] = {}
        self.alias: dict[Value, Value] = {}
        self.tables: dict[Operation, TableInfo] = {}
        self.pending: str | None = None  # how the previous stage ended: "store" / "compute"
        self.last_store: int | None = None
        self.counter = 0
        self.cfg_sym = config.lut.symmetric
        self.g = config.lut.group
        self.table_dt = DType.parse(config.lut.table_dtype)
        self.acc_dt = DType.parse(config.lut.accum_dtype)

    # -- values -------------------------------------------------------------------------
    def c(self, v: Value) -> Value:
        while v in self.alias:
            v = self.alias[v]
        return v

    def flatten(self) -> list[Flat]:
        out: list[Flat] = []

        def visit(block, layer_of_group: str | None):
            for op in block.ops:
                if op.name == "graph.fused":
                    body = op.regions[0].block
                    for arg, outer in zip(body.args, op.operands):
                        self.alias[arg] = outer
                    term = body.terminator
                    for res, inner in zip(op.results, term.operands):
                        self.alias[res] = inner
                    visit(body, layer_of_group or str(op.attr("name", "fused")))
                elif op.name in ("graph.yield", "func.return"):
                    continue
                else:
                    layer = layer_of_group or (op.loc.name if op.loc is not None and op.loc.name else None) \
                        or f"{op.name.split('.')[-1]}_{len(out)}"
                    out.append(Flat(op, layer, len(out)))

        visit(function_body(self.fn), None)
        return out

    def constant(self, v: Value) -> np.ndarray | None:
        v = self.c(v)
        owner = getattr(v, "op", None)
        if owner is not None and owner.name == "graph.constant":
            return np.asarray(owner.attr("value"))
        return None

    def producer(self, v: Value) -> Operation | None:
        return getattr(self.c(v), "op", None)

    def dram_of(self, v: Value, op: Operation):
        v = self.c(v)
        if v in self.dram:
            return self.dram[v]
        arr = self.constant(v)
        if arr is None:
            raise LutcError(f"{_where(op)}: operand is not in DRAM (internal ordering error)")
        self.counter += 1
        t = self.b.tensor(f"const{self.counter}", "weight", "f32", arr.shape or (1,), data=arr.astype(np.float32))
        self.dram[v] = t
        return t

    # -- checks ---------------------------------------------------------------------------
    def check_supported(self, flat: list[Flat]) -> None:
        bad: dict[tuple[str, str], list[str]] = {}  # (op name, reason) -> where
        lut = self.config.lut
        for f in flat:
            op, why = f.op, None
            if op.name == "graph.constant":
                continue
            if op.name == "lut.table":
                if op.attr("base3", False):
                    why = "base-3 tables"
                elif _elem(op.operands[0]) != "f32":
                    why = "activations must be f32"
            elif op.name == "lut.gemm":
                if op.attr("base3", False):
                    why = "base-3 tables"
                elif int(op.attr("bits")) not in lut.weight_bits:
                    why = f"{op.attr('bits')}-bit weights (config: {list(lut.weight_bits)})"
                elif self.producer(op.operands[0]) is None or self.producer(op.operands[0]).name != "lut.table":
                    why = "tables not produced by a lut.table"
                elif any(self.constant(v) is None for v in op.operands[3:]):
                    why = "weights, scales and zero points must be constants"
            elif op.name in UNARY or op.name in BINARY:
                func = UNARY.get(op.name) or BINARY[op.name]
                if any(_elem(v) != "f32" for v in list(op.operands) + list(op.results)):
                    why = "only f32 elementwise ops"
                elif op.name == "graph.gelu" and op.attr("approximate", "none") != "tanh":
                    why = "exact (erf) gelu; the vector unit has the tanh approximation"
                elif func in SPECIAL and not self.config.supports_function(SPECIAL[func]):
                    why = f"special function '{SPECIAL[func]}' not in the config's [vector] special_functions"
                elif op.name in BINARY and self.classify(op.operands[1], op.results[0]) is None \
                        and self.classify(op.operands[0], op.results[0]) is None:
                    why = "unsupported broadcast"
            else:
                why = "no accelerator lowering"
            if why:
                bad.setdefault((op.name, why), []).append(op.loc.name or str(op.loc) if op.loc is not None else "")
        if bad:
            # One line for the whole model: each kind of problem once, with a few of its places.
            parts = []
            for (name, why), places in bad.items():
                shown = ", ".join(p for p in places[:3] if p) + (f", +{len(places) - 3} more" if len(places) > 3 else "")
                parts.append(f"{name} x{len(places)} ({why}){': ' + shown if shown else ''}")
            total = sum(len(p) for p in bad.values())
            raise LutcError(f"target accel: {total} unsupported op(s): " + "; ".join(parts))

    def classify(self, v: Value, out: Value) -> Operand | None:
        """How an elementwise operand `v` broadcasts against the result `out` (None: unsupported)."""
        vs, os_ = _shape(v), _shape(out)
        arr = self.constant(v)
        n = int(np.prod(vs, dtype=np.int64)) if vs else 1
        rows, cols = _rows_cols(os_)
        if n == 1:
            return Operand("imm", imm=float(np.asarray(arr).reshape(-1)[0])) if arr is not None else Operand("scalar", v)
        if vs == os_ or (n == rows * cols and vs[-1:] == os_[-1:] and len(vs) <= len(os_) and rows == 1):
            return Operand("tile", v)
        if n == cols and vs[-1] == cols:
            return Operand("col", v)
        if n == rows and vs[-1] == 1 and vs[:-1] == os_[-len(vs):-1]:
            return Operand("row", v)
        return None

    # -- barriers ----------------------------------------------------------------------------
    def begin_stage(self) -> bool:
        """Close the previous stage; returns whether the first LOAD must pop the barrier token."""
        if self.pending is None:
            return False
        if self.pending == "store":
            i = self.last_store
            self.b.instructions[i] = replace(self.b.instructions[i], push_prev=True)
            self.b.emit(Sync(sync_queue=Queue.COMPUTE, pop_next=True, push_prev=True))
        else:
            self.b.emit(Sync(sync_queue=Queue.COMPUTE, push_prev=True))
        self.pending = None
        return True

    # -- lowering ------------------------------------------------------------------------------
    def run(self) -> Program:
        flat = self.flatten()
        self.check_supported(flat)
        fn = self.fn
        body = function_body(fn)
        in_names, out_names = input_names(fn), output_names(fn)
        for arg, name in zip(body.args, in_names):
            self.dram[arg] = self.b.tensor(name, "input", "f32", _shape(arg))
        self.returned = {}
        for v, name in zip(body.terminator.operands, out_names):
            cv = self.c(v)
            if self.producer(cv) is None or self.producer(cv).name == "graph.constant":
                raise LutcError(f"target accel: output '{name}' is an input or a constant; nothing to compute")
            self.returned.setdefault(cv, name)
        uses: dict[Value, int] = {}
        for f in flat:
            for v in f.op.operands:
                uses[self.c(v)] = uses.get(self.c(v), 0) + 1
        for v in body.terminator.operands:
            uses[self.c(v)] = uses.get(self.c(v), 0) + 1
        self.uses = uses
        for f in flat:
            if f.op.name == "lut.gemm":
                self.tables.setdefault(self.producer(f.op.operands[0]), None)
        consumers: dict[Operation, list[Operation]] = {}
        for f in flat:
            if f.op.name == "lut.gemm":
                consumers.setdefault(self.producer(f.op.operands[0]), []).append(f.op)
        self.consumers = consumers
        done: set[Operation] = set()
        position = {f.op: f.index for f in flat}
        for f in flat:
            op = f.op
            if op in done or op.name == "graph.constant":
                continue
            if op.name == "lut.table":
                if op in consumers:
                    self.table_stage(op, f.layer)
                continue
            chain, end = self.chain_from(op, position, done)
            self.b.set_layer(f.layer)
            if op.name == "lut.gemm":
                self.tile_stage(op, f.layer, gemm=op, chain=chain, out=end)
                info = self.tables[self.producer(op.operands[0])]
                info.consumers -= 1
                if info.consumers == 0:
                    for _, _, addr, _ in info.blocks:
                        self.spm.free(addr)
            else:
                self.tile_stage(op, f.layer, gemm=None, chain=chain, out=end)
        self.b.set_layer("")
        self.b.finish()
        program = self.b.build()
        return program

    def chain_from(self, op: Operation, position, done) -> tuple[list[ChainOp], Value]:
        chain: list[ChainOp] = []
        if op.name != "lut.gemm":
            chain.append(self.chain_op(op, None))
        done.add(op)
        cur = self.c(op.results[0])
        root = position[op]
        while self.uses.get(cur, 0) == 1 and cur not in self.returned:
            users = [f for f in position if f not in done and any(self.c(v) is cur for v in f.operands)]
            if len(users) != 1 or (users[0].name not in UNARY and users[0].name not in BINARY):
                break
            user = users[0]
            if user.name in BINARY:
                other = [v for v in user.operands if self.c(v) is not cur]
                if len(other) != 1:
                    break
                o = self.c(other[0])
                p = self.producer(o)
                if p is not None and p.name != "graph.constant" and position.get(p, -1) > root:
                    break  # produced later: lower as its own stage
            try:
                chain.append(self.chain_op(user, cur))
            except _NoChain:
                break
            done.add(user)
            cur = self.c(user.results[0])
        return chain, cur

    def chain_op(self, op: Operation, cur: Value | None) -> ChainOp:
        if op.name in UNARY:
            return ChainOp(op, UNARY[op.name])
        lhs, rhs = self.c(op.operands[0]), self.c(op.operands[1])
        out = op.results[0]
        if cur is None:  # root of a vector stage: the full-shaped operand is loaded as the tile
            if _shape(lhs) == _shape(out):
                cur = lhs
            elif _shape(rhs) == _shape(out):
                cur = rhs
            else:
                raise LutcError(f"{_where(op)}: neither operand has the result's shape")
        if lhs is cur and rhs is cur:
            return ChainOp(op, BINARY[op.name], Operand("self"))
        other = rhs if lhs is cur else lhs
        opnd = self.classify(other, out)
        if opnd is None:
            raise _NoChain()
        return ChainOp(op, BINARY[op.name], opnd, cur_is_rhs=rhs is cur)

    # -- table stage --------------------------------------------------------------------------
    def table_stage(self, op: Operation, layer: str) -> None:
        lut = self.config.lut
        x = op.operands[0]
        rows, k = _rows_cols(_shape(x))
        gemms = self.consumers[op]
        act_group = int(op.attr("act_group", 0)) or k
        kc = math.gcd(act_group, k, *[int(g.attr("group_size")) for g in gemms])
        bits = max(int(g.attr("bits")) for g in gemms)
        limit = ACC_RANGE.get(lut.accum_dtype)
        step = math.lcm(8, self.g)
        while limit is not None and lut_mma_bound(127, kc, bits, self.g) > limit and kc % (2 * step) == 0:
            kc //= 2
        if k % step or kc % step:
            raise LutcError(f"{_where(op)}: K = {k} (chunk {kc}) must be a multiple of {step} (8 and g = {self.g})")
        if limit is not None and lut_mma_bound(127, kc, bits, self.g) > limit:
            raise LutcError(f"{_where(op)}: no K chunk keeps {bits}-bit lookups within the {lut.accum_dtype} accumulator")
        ebytes = self.table_dt.size
        mb = rows
        acc_cap = self.config.accumulator.size_bytes
        while mb > 1 and mb * min(lut.cols, 8) * self.acc_dt.size > acc_cap:
            mb = -(-mb // 2)
        info = TableInfo(op, layer, rows, k, kc, mb)
        info.consumers = len(gemms)
        self.b.set_layer(layer)
        for r0 in range(0, rows, mb):
            r = min(mb, rows - r0)
            _, params_at, total = table_block_layout(r, k, self.g, self.cfg_sym, ebytes, kc)
            addr = self.spm.alloc(total, f"the table block of {r} rows x K={k} ({self.config.lut.table_dtype})", op)
            info.blocks.append((r0, r, addr, params_at))
        self.tables[op] = info
        xt = self.dram_of(x, op)
        pop_barrier = self.begin_stage()
        xbufs = [self.spm.alloc(mb * k * 4, f"an activation block of {mb} x {k} f32", op)
                 for _ in range(min(2, len(info.blocks)))]
        n = len(info.blocks)
        for u, (r0, r, addr, _) in enumerate(info.blocks):
            buf = xbufs[u % len(xbufs)]
            self.b.emit(Load(sp=sp(buf), dram=xt.addr + r0 * k * 4, rows=1, row_bytes=r * k * 4,
                             pop_next=(u >= 2) or (u == 0 and pop_barrier), push_next=True))
            self.b.emit(LutBuild(dst=sp(addr, self.table_dt), src=sp(buf, DType.F32), rows=r, k=k, qgroup=kc,
                                 sym=self.cfg_sym, pop_prev=True, push_prev=u + 2 < n))
        for buf in xbufs:
            self.spm.free(buf)
        self.pending = "compute"

    # -- gemm / vector stage ------------------------------------------------------------------------
    def tile_stage(self, op: Operation, layer: str, *, gemm: Operation | None, chain: list[ChainOp], out: Value) -> None:
        lut = self.config.lut
        shape = _shape(out)
        rows, n = _rows_cols(shape)
        if gemm is not None:
            info = self.tables[self.producer(gemm.operands[0])]
            k, kc, bits = info.k, info.kc, int(gemm.attr("bits"))
            blocks = [(r0, r, addr, pa) for r0, r, addr, pa in info.blocks]
            w_t, colp_t, groups = self.gemm_weights(gemm, info)
            G = int(gemm.attr("group_size"))
        else:
            blocks = [(0, rows, None, None)]
            k = kc = bits = G = 0
            root = self.c(op.operands[0]) if op.name in UNARY or _shape(self.c(op.operands[0])) == shape \
                else self.c(op.operands[1])
            root_t = self.dram_of(root, op)
        mb = max(r for _, r, _, _ in blocks)
        loaded = [ch for ch in chain if ch.operand is not None and ch.operand.mode in ("tile", "col", "row", "scalar")]

        def tile_bytes(nt: int) -> int:
            total = mb * nt * 4  # output tile
            if gemm is not None:
                total += bits * nt * k // 8 + groups * 2 * nt * 4
            for ch in loaded:
                total += {"tile": mb * nt * 4, "col": nt * 4, "row": mb * 4, "scalar": 4}[ch.operand.mode]
            return total + ALIGN * (3 + len(loaded))

        cap = n if n <= lut.cols else max(lut.cols, -(-(n // 4) // lut.cols) * lut.cols)
        nt = min(n, cap)
        free = self.spm.free_bytes()
        acc_cap = self.config.accumulator.size_bytes
        while nt > 1 and (2 * tile_bytes(nt) > free or (gemm is not None and mb * nt * self.acc_dt.size > acc_cap)):
            nt = -(-nt // 2)
        if 2 * tile_bytes(nt) > free or (gemm is not None and mb * nt * self.acc_dt.size > acc_cap):
            raise LutcError(f"{_where(op)}: the smallest tile ({mb} x {nt}) needs {2 * tile_bytes(nt)} bytes of "
                            f"scratchpad (double-buffered); capacity {self.config.scratchpad.size_bytes} bytes, "
                            f"{free} free")
        out_name = self.returned.get(self.c(out))
        self.counter += 1
        y_t = self.b.tensor(out_name or f"act{self.counter}", "output" if out_name else "activation", "f32", shape)
        self.dram[self.c(out)] = y_t
        nbuf = 2
        outb = [self.spm.alloc(mb * nt * 4, "an output tile", op) for _ in range(nbuf)]
        if gemm is not None:
            wb = [self.spm.alloc(bits * nt * k // 8, "a weight tile", op) for _ in range(nbuf)]
            cb = [self.spm.alloc(groups * 2 * nt * 4, "an epilogue record tile", op) for _ in range(nbuf)]
            acc_addr = 0
        opb = {id(ch): [self.spm.alloc({"tile": mb * nt * 4, "col": nt * 4, "row": mb * 4, "scalar": 4}[ch.operand.mode],
                                       f"an operand tile of {ch.op.name}", ch.op) for _ in range(nbuf)]
               for ch in loaded}
        tiles = [(blk, n0, min(nt, n - n0)) for blk in blocks for n0 in range(0, n, nt)]
        T = len(tiles)
        pop_barrier = self.begin_stage()
        E = table_entries(self.g, self.cfg_sym)
        for u, ((r0, r, taddr, params_at), n0, w) in enumerate(tiles):
            p = u % nbuf
            loads = []
            if gemm is not None:
                loads.append(Load(sp=sp(wb[p]), dram=w_t.addr + n0 * kc // 8, rows=(k // kc) * bits,
                                  row_bytes=w * kc // 8, dram_stride=n * kc // 8))
                loads.append(Load(sp=sp(cb[p]), dram=colp_t.addr + n0 * 4, rows=groups * 2, row_bytes=w * 4,
                                  dram_stride=n * 4))
            else:
                loads.append(Load(sp=sp(outb[p]), dram=root_t.addr + (r0 * n + n0) * 4, rows=r, row_bytes=w * 4,
                                  dram_stride=n * 4))
            for ch in loaded:
                t = self.dram_of(ch.operand.value, ch.op)
                buf = opb[id(ch)][p]
                mode = ch.operand.mode
                if mode == "tile":
                    loads.append(Load(sp=sp(buf), dram=t.addr + (r0 * n + n0) * 4, rows=r, row_bytes=w * 4, dram_stride=n * 4))
                elif mode == "col":
                    loads.append(Load(sp=sp(buf), dram=t.addr + n0 * 4, rows=1, row_bytes=w * 4))
                elif mode == "row":
                    loads.append(Load(sp=sp(buf), dram=t.addr + r0 * 4, rows=1, row_bytes=r * 4))
                else:
                    loads.append(Load(sp=sp(buf), dram=t.addr, rows=1, row_bytes=4))
            loads[0] = replace(loads[0], pop_next=(u >= 2) or (u == 0 and pop_barrier))
            loads[-1] = replace(loads[-1], push_next=True)
            for ins in loads:
                self.b.emit(ins)
            comp = []
            o = sp(outb[p], DType.F32)
            if gemm is not None:
                imm = 0.5 if self.cfg_sym else 1.0
                for c in range(k // kc):
                    comp.append(LutMma(dst=acc(acc_addr, self.acc_dt), tables=sp(taddr + (c * kc // self.g) * r * E * self.table_dt.size, self.table_dt),
                                       weights=sp(wb[p] + c * bits * w * kc // 8), m=r, n=w, k=kc, bits=bits, sym=self.cfg_sym))
                    comp.append(Vec(func=VecFunc.DEQ, dst=o, a=acc(acc_addr, self.acc_dt),
                                    b=sp(cb[p] + ((c * kc) // G) * 2 * w * 4, DType.F32),
                                    c=sp(taddr + params_at + c * 2 * r * 4, DType.F32), rows=r, cols=w, imm=imm, accum=c > 0))
            for ch in chain:
                if ch.operand is None:
                    comp.append(Vec(func=ch.func, dst=o, a=o, rows=r, cols=w))
                    continue
                mode = ch.operand.mode
                if mode == "self":
                    comp.append(Vec(func=ch.func, dst=o, a=o, b=o, rows=r, cols=w))
                elif mode == "imm":
                    v = ch.operand.imm
                    if ch.func == VecFunc.ADD:
                        comp.append(Vec(func=VecFunc.ADDI, dst=o, a=o, rows=r, cols=w, imm=v))
                    elif ch.func == VecFunc.MUL:
                        comp.append(Vec(func=VecFunc.MULI, dst=o, a=o, rows=r, cols=w, imm=v))
                    elif not ch.cur_is_rhs:  # x - v
                        comp.append(Vec(func=VecFunc.ADDI, dst=o, a=o, rows=r, cols=w, imm=-v))
                    else:  # v - x = -x + v
                        comp.append(Vec(func=VecFunc.MULI, dst=o, a=o, rows=r, cols=w, imm=-1.0))
                        comp.append(Vec(func=VecFunc.ADDI, dst=o, a=o, rows=r, cols=w, imm=v))
                else:
                    bc = {"tile": Bcast.TILE, "col": Bcast.COL, "row": Bcast.ROW, "scalar": Bcast.SCALAR}[mode]
                    other = sp(opb[id(ch)][p], DType.F32, bc)
                    a, bb = (other, o) if ch.cur_is_rhs else (o, other)
                    comp.append(Vec(func=ch.func, dst=o, a=a, b=bb, rows=r, cols=w))
            if not comp:  # a vector stage that only copies (cannot happen: a chain has >= 1 op)
                comp.append(Vec(func=VecFunc.MOV, dst=o, a=o, rows=r, cols=w))
            comp[0] = replace(comp[0], pop_prev=True, pop_next=u >= 2)
            comp[-1] = replace(comp[-1], push_prev=u + 2 < T, push_next=True)
            for ins in comp:
                self.b.emit(ins)
            self.b.emit(Store(dram=y_t.addr + (r0 * n + n0) * 4, sp=sp(outb[p]), rows=r, row_bytes=w * 4,
                              dram_stride=n * 4, pop_prev=True, push_prev=u + 2 < T))
            self.last_store = len(self.b.instructions) - 1
        for bufs in [outb] + ([wb, cb] if gemm is not None else []) + list(opb.values()):
            for a in bufs:
                self.spm.free(a)
        self.pending = "store"

    def gemm_weights(self, gemm: Operation, info: TableInfo):
        """DRAM tensors of a lut.gemm: planes in the ISA layout [K/kc][bits][N][kc/8] and the
        epilogue records [B][2][N] f32 (scale, zero point in the table format's frame)."""
        bits, g_ir = int(gemm.attr("bits")), int(gemm.attr("g"))
        sym_ir, ternary = bool(gemm.attr("symmetric")), bool(gemm.attr("ternary", False))
        G, k, kc = int(gemm.attr("group_size")), info.k, info.kc
        planes = self.constant(gemm.operands[3]).astype(np.int64)
        scales = self.constant(gemm.operands[4]).astype(np.float32)
        zeros = self.constant(gemm.operands[5]).astype(np.float32) if len(gemm.operands) > 5 else None
        n = planes.shape[1]
        codes = unpack_weights(planes, k=k, bits=bits, g=g_ir, symmetric=sym_ir, base3=False)
        # Check the conversion against lutc's repacked form (the normal form's codes).
        if not np.array_equal(repack_weights(codes, bits=bits, g=g_ir, symmetric=sym_ir, base3=False), planes):
            raise LutcError(f"{_where(gemm)}: weight planes do not round-trip through their codes")
        chunks = []
        for c in range(k // kc):
            packed = pack_weight_planes(codes[:, c * kc:(c + 1) * kc], bits, self.g)  # [bits][n][kc/8]
            if not np.array_equal(codes_from_planes(packed, bits, n, kc), codes[:, c * kc:(c + 1) * kc]):
                raise LutcError(f"{_where(gemm)}: ISA weight planes do not match the codes")
            chunks.append(packed)
        w = np.stack(chunks)  # [K/kc][bits][n][kc/8]
        groups = -(-k // G)
        z = zeros if zeros is not None else np.full((n, groups), 1.0 if ternary else float(1 << (bits - 1)), np.float32)
        if self.cfg_sym:
            z = z - ((1 << bits) - 1) / 2.0
        colp = np.stack([scales.T, z.T.astype(np.float32)], axis=1)  # [B][2][N]
        self.counter += 1
        w_t = self.b.tensor(f"w{self.counter}", "weight", "u8", w.shape, data=w.astype(np.uint8))
        c_t = self.b.tensor(f"colp{self.counter}", "weight", "f32", colp.shape, data=colp.astype(np.float32))
        return w_t, c_t, groups


class _NoChain(Exception):
    pass


# ---------------------------------------------------------------------------------------
# The result object
# ---------------------------------------------------------------------------------------

@dataclass
class AccelModel:
    program: Program
    config: AccelConfig
    input_names: list[str]
    input_types: list
    output_names: list[str]
    _sim: Simulator | None = field(default=None, repr=False)

    def _inputs(self, inputs) -> dict[str, np.ndarray]:
        if isinstance(inputs, Mapping):
            named = dict(inputs)
        else:
            inputs = list(inputs)
            if len(inputs) != len(self.input_names):
                raise LutcError(f"expected {len(self.input_names)} inputs ({', '.join(self.input_names)}), got {len(inputs)}")
            named = dict(zip(self.input_names, inputs))
        return {k: np.asarray(v, dtype=np.float32) for k, v in named.items()}

    def simulate(self, inputs, *, functional: bool = True) -> SimResult:
        if not functional:
            return Simulator(self.config, functional=False).run(self.program, self._inputs(inputs))
        if self._sim is None:
            self._sim = Simulator(self.config)
        return self._sim.run(self.program, self._inputs(inputs))

    def run(self, inputs) -> list[np.ndarray]:
        outputs = self.simulate(inputs).outputs
        return [outputs[name] for name in self.output_names]

    def export(self, directory: str | Path) -> Path:
        """Write NAME.bin (program file), NAME.s (assembly) and NAME.report.txt (timing-only report)."""
        from lutc.backends.accel.assembler import disassemble

        d = Path(directory)
        try:
            d.mkdir(parents=True, exist_ok=True)
            path = d / f"{self.program.name}.bin"
            self.program.save(path)
            (d / f"{self.program.name}.s").write_text(disassemble(self.program), encoding="utf-8")
            zeros = {name: np.zeros([int(s) for s in t.shape], np.float32)
                     for name, t in zip(self.input_names, self.input_types)}
            report = self.simulate(zeros, functional=False).report
            (d / f"{self.program.name}.report.txt").write_text(report.to_text(), encoding="utf-8")
        except OSError as err:
            raise LutcError(f"cannot write to '{d}': {err.strerror}") from None
        return path


def compile_accel(module: Module, config: AccelConfig | str | Path | None, name: str = "model") -> AccelModel:
    if config is None:
        raise LutcError("target 'accel' needs an accelerator config (--config FILE.toml)")
    if not isinstance(config, AccelConfig):
        config = load_config(config)
    lowering = Lowering(module, config, name)
    program = lowering.run()
    fn = module.function()
    body = function_body(fn)
    return AccelModel(program, config, input_names(fn), [a.type for a in body.args], output_names(fn))
