"""Bulk preparation of instruction functions: VEC.DEQ epilogues built from columns, closures
shared between instructions with equal fields, MMA signatures, fast column extraction."""

from __future__ import annotations

import numpy as np
import pytest

from lutc.backends.accel.analysis import extract_columns
from lutc.backends.accel.columns import distinct_rows
from lutc.backends.accel.isa import DType, Load, Mma, Operand, Space, Store, Vec, VecFunc, acc, sp
from lutc.backends.accel.program import ProgramBuilder
from lutc.backends.accel.simulator import Simulator


def _deq_reference(a, scale, zero, row_scale, row_sum, imm):
    """VEC.DEQ's formula in f32, in its documented order."""
    f = np.float32
    tile = (f(imm) * row_scale[:, None]).astype(f) * a.astype(f)
    return ((tile - (zero[None, :] * row_sum[:, None]).astype(f)) * scale[None, :]).astype(f)


def test_deq_epilogues_direct_and_accumulating(edge):
    rows, cols, tiles = 2, 8, 3
    rng = np.random.default_rng(0)
    b = ProgramBuilder("deq", config=edge)
    acc_in = b.tensor("acc_in", "input", "i16", (tiles, rows, cols))
    params = b.tensor("params", "input", "f32", (tiles, 2 * cols + 2 * rows))
    y = b.tensor("y", "output", "f32", (2, rows, cols))
    tile_bytes, param_bytes = rows * cols * 2, (2 * cols + 2 * rows) * 4
    b.emit(Load(sp=acc(0), dram=acc_in.addr, rows=1, row_bytes=tiles * tile_bytes))
    b.emit(Load(sp=sp(0x1000), dram=params.addr, rows=1, row_bytes=tiles * param_bytes, push_next=True))
    for t in range(tiles):  # tile 0 -> out 0 (direct), tiles 1, 2 -> out 1 (tile 1 direct, tile 2 accumulates)
        p = 0x1000 + t * param_bytes
        out = 0x2000 + (0 if t == 0 else rows * cols * 4)
        b.emit(Vec(func=VecFunc.DEQ, dst=sp(out, "f32"), a=acc(t * tile_bytes, "i16"), b=sp(p, "f32"),
                   c=sp(p + 2 * cols * 4, "f32"), rows=rows, cols=cols, imm=0.25, accum=t == 2,
                   pop_prev=t == 0, push_next=t == tiles - 1))
    b.emit(Store(dram=y.addr, sp=sp(0x2000), rows=1, row_bytes=2 * rows * cols * 4, pop_prev=True))
    b.finish()
    program = b.build()
    a = rng.integers(-300, 300, size=(tiles, rows, cols)).astype(np.int16)
    par = rng.standard_normal((tiles, 2 * cols + 2 * rows)).astype(np.float32)
    out = Simulator(edge).run(program, {"acc_in": a, "params": par}).outputs["y"]
    ref = [_deq_reference(a[t], par[t, :cols], par[t, cols:2 * cols], par[t, 2 * cols:2 * cols + rows],
                          par[t, 2 * cols + rows:], 0.25) for t in range(tiles)]
    np.testing.assert_array_equal(out[0], ref[0])
    np.testing.assert_array_equal(out[1], (ref[1] + ref[2]).astype(np.float32))


def test_mmas_sharing_a_signature_keep_their_own_operands(edge):
    m, k, n = 4, 32, 8
    rng = np.random.default_rng(1)
    b = ProgramBuilder("mmas", config=edge)
    at = b.tensor("a", "input", "i8", (2, m, k))
    bt = b.tensor("bt", "weight", "i8", (n, k), data=rng.integers(-128, 128, size=(n, k), dtype=np.int8))
    c = b.tensor("c", "output", "i32", (2, m, n))
    b.emit(Load(sp=sp(0), dram=at.addr, rows=1, row_bytes=2 * m * k))
    b.emit(Load(sp=sp(0x400), dram=bt.addr, rows=1, row_bytes=n * k, push_next=True))
    for t in range(2):
        b.emit(Mma(dst=acc(t * m * n * 4, "i32"), a=sp(t * m * k, "i8"), b=sp(0x400, "i8"), m=m, n=n, k=k,
                   transpose_b=True, pop_prev=t == 0, push_next=t == 1))
    b.emit(Store(dram=c.addr, sp=acc(0), rows=1, row_bytes=2 * m * n * 4, pop_prev=True))
    b.finish()
    program = b.build()
    a = rng.integers(-128, 128, size=(2, m, k), dtype=np.int8)
    out = Simulator(edge).run(program, {"a": a}).outputs["c"]
    np.testing.assert_array_equal(out, a.astype(np.int64) @ program.tensor_array("bt").astype(np.int64).T)


def test_distinct_rows_groups_equal_rows():
    cols = {"x": np.array([1, 2, 1, 3, 2]), "imm": np.array([0.5, 0.5, 0.5, 0.5, -0.0])}
    first, which = distinct_rows(cols)
    groups = first[which]  # the first row equal to each row
    assert groups.tolist() == [0, 1, 0, 3, 4]  # -0.0 is kept apart from 0.5, and (2, 0.5) from (2, -0.0)


@pytest.mark.parametrize("n", [1, 7, 39, 40, 41, 300])  # both sides of the dict / sort threshold
@pytest.mark.parametrize("constant", [False, True])
def test_distinct_rows_against_brute_force(n, constant):
    rng = np.random.default_rng(n)
    floats = np.array([0.0, -0.0, 1.5, np.nan, -np.nan])
    cols = {"a": rng.integers(0, 3, n), "b": np.full(n, 7) if constant else rng.integers(-2, 2, n),
            "imm": floats[rng.integers(0, len(floats), n)]}
    first, which = distinct_rows(cols)
    rows = list(zip(cols["a"].tolist(), cols["b"].tolist(), cols["imm"].view(np.int64).tolist()))  # floats bit for bit
    assert [int(first[w]) for w in which] == [rows.index(r) for r in rows]
    assert sorted(first.tolist()) == sorted({rows.index(r) for r in rows})


def test_extract_columns_accepts_plain_ints_for_enum_fields():
    typed = Vec(func=VecFunc.ADD, dst=sp(0, "f32"), a=sp(64, "f32"), b=sp(128, "f32"), rows=1, cols=16)
    plain = Vec(func=int(VecFunc.ADD), dst=Operand(int(Space.SP), 0, int(DType.F32)), a=sp(64, "f32"),
                b=sp(128, "f32"), rows=1, cols=16)
    for group in ([typed], [plain], [typed, plain]):
        cols = extract_columns(group, Vec)
        assert cols["func"].tolist() == [int(VecFunc.ADD)] * len(group)
        assert cols["dst.dtype"].tolist() == [int(DType.F32)] * len(group)
        assert cols["dst.space"].tolist() == [int(Space.SP)] * len(group)
