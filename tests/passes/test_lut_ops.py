"""The lut dialect: table math, weight repacking against the normal form, verifier rules,
and the cost model's choices."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lutc.diagnostics import VerifyError
from lutc.ir import parse, verify
from lutc.ir.dialects.lut import (
    build_tables,
    lookup_planes,
    repack_weights,
    stored_entries,
    table_coefficients,
    unpack_weights,
)
from lutc.passes.lut_cost import TARGETS, GemmShape, LutConfig, choose, dequantize_cost, lut_cost


@given(n=st.integers(1, 6), k=st.integers(1, 40), bits=st.integers(1, 8), g=st.integers(1, 8),
       symmetric=st.booleans(), seed=st.integers(0, 2**16))
def test_repacking_round_trips_to_the_codes(n, k, bits, g, symmetric, seed):
    codes = np.random.default_rng(seed).integers(0, 2**bits, (n, k)).astype(np.uint8)
    planes = repack_weights(codes, bits=bits, g=g, symmetric=symmetric, base3=False)
    assert planes.shape == (bits, n, -(-k // g))
    index_bits = g  # g index bits; symmetric: g - 1 magnitude bits and a sign bit
    assert planes.max(initial=0) < 2**index_bits
    np.testing.assert_array_equal(unpack_weights(planes, k=k, bits=bits, g=g, symmetric=symmetric, base3=False), codes)


@given(n=st.integers(1, 6), k=st.integers(1, 40), g=st.integers(1, 4), symmetric=st.booleans(),
       seed=st.integers(0, 2**16))
def test_base3_repacking_round_trips(n, k, g, symmetric, seed):
    codes = np.random.default_rng(seed).integers(0, 3, (n, k)).astype(np.uint8)
    planes = repack_weights(codes, bits=2, g=g, symmetric=symmetric, base3=True)
    assert planes.shape == (1, n, -(-k // g))
    np.testing.assert_array_equal(unpack_weights(planes, k=k, bits=2, g=g, symmetric=symmetric, base3=True), codes)


@pytest.mark.parametrize("g,base3", [(1, False), (2, False), (4, False), (6, False), (2, True), (3, True)])
def test_symmetric_tables_are_mirror_images(g, base3):
    """T'[~c] = -T'[c]: the stored half, with signs, reproduces the full table."""
    x = np.random.default_rng(0).standard_normal((3, 4 * g)).astype(np.float32)
    full = build_tables(x, g=g, symmetric=False, base3=base3) if base3 else None
    if not base3:  # the full symmetric table: entries sum_t (2 c_t - 1) x_t for all 2^g codes c
        bits = (np.arange(2**g)[:, None] >> np.arange(g)) & 1
        full = x.reshape(3, 4, g) @ (2 * bits - 1).T.astype(np.float32)
    half = build_tables(x, g=g, symmetric=True, base3=base3)
    assert half.shape[-1] == stored_entries(g, True, base3)
    index = np.arange(full.shape[-1])
    mirror = full.shape[-1] - 1
    np.testing.assert_allclose(full[..., mirror - index], -full, atol=1e-6)
    np.testing.assert_allclose(full[..., : half.shape[-1]], half, atol=1e-6)


def test_lookups_select_the_entries_of_each_plane():
    x = np.arange(1, 9, dtype=np.float32)[None]  # one row, two tables of g = 4
    codes = np.array([[1, 0, 3, 2, 0, 0, 0, 1]], np.uint8)
    for symmetric in (False, True):
        tables = build_tables(x, g=4, symmetric=symmetric, base3=False)
        planes = repack_weights(codes, bits=2, g=4, symmetric=symmetric, base3=False)
        got = lookup_planes(tables, planes, g=4, symmetric=symmetric, base3=False)  # (P, 1, N, J)
        for i in range(2):
            bit = ((codes.astype(np.int64) >> i) & 1).reshape(2, 4)
            want = (bit * x.reshape(2, 4)).sum(-1) if not symmetric else ((2 * bit - 1) * x.reshape(2, 4)).sum(-1)
            np.testing.assert_allclose(got[i, 0, 0], want)


def test_table_coefficients_of_base3_pairs_follow_tl1():
    """Entry c of a base-3 pair table is (d0 - 1) x0 + (d1 - 1) x1 with c = d0 + 3 d1."""
    coefficients = table_coefficients(2, symmetric=False, base3=True)
    assert coefficients.shape == (9, 2)
    assert coefficients[0].tolist() == [-1, -1] and coefficients[4].tolist() == [0, 0] and coefficients[5].tolist() == [1, 0]


GEMM = """
"func.func"() ({{
^bb0(%t: tensor<1x2x{entries}xf32>, %ts: tensor<1x1xf32>, %s: tensor<1x{sums}xf32>, %p: tensor<{planes}>, %sc: tensor<4x{blocks}xf32>):
  %0 = "lut.gemm"(%t, %ts, %s, %p, %sc) {{bits = 2 : i64, group_size = {group} : i64, sum_group = {sum_group} : i64{extra}}} : (tensor<1x2x{entries}xf32>, tensor<1x1xf32>, tensor<1x{sums}xf32>, tensor<{planes}>, tensor<4x{blocks}xf32>) -> tensor<1x4xf32>
  "func.return"(%0) : (tensor<1x4xf32>) -> ()
}}) {{sym_name = "main", function_type = (tensor<1x2x{entries}xf32>, tensor<1x1xf32>, tensor<1x{sums}xf32>, tensor<{planes}>, tensor<4x{blocks}xf32>) -> tensor<1x4xf32>}} : () -> ()
"""
GOOD = dict(entries=8, sums=1, planes="2x4x2xui4", blocks=1, group=8, sum_group=8, extra="")


@pytest.mark.parametrize("change,message", [
    ({"entries": 16}, "tables must be (..., J, 8) for these attributes"),
    ({"planes": "3x4x2xui4"}, "planes must be [2, 4, 2]"),
    ({"planes": "2x4x2xui8"}, "planes must be ui4"),
    ({"group": 6, "sum_group": 2, "sums": 4}, "group_size must be a positive multiple of g = 4"),
    ({"group": 4, "blocks": 2, "sum_group": 8}, "group_size 4 must be a multiple of the sums' group 8"),
    ({"sums": 2}, "sums must be [1, 1]"),
    ({"extra": ", base3 = true"}, "base-3 tables need ternary weights"),
])
def test_gemm_verifier(change, message):
    module = parse(GEMM.format(**{**GOOD, **change}))
    with pytest.raises(VerifyError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        verify(module)


def test_gemm_verifier_accepts_the_good_form():
    verify(parse(GEMM.format(**GOOD)))


def test_table_verifier():
    text = """
"func.func"() ({
^bb0(%x: tensor<1x8xf32>):
  %t:3 = "lut.table"(%x) {g = 4 : i64, act_group = 6 : i64} : (tensor<1x8xf32>) -> (tensor<1x2x8xf32>, tensor<1x2xf32>, tensor<1x1xf32>)
  "func.return"(%t#0) : (tensor<1x2x8xf32>) -> ()
}) {sym_name = "main", function_type = (tensor<1x8xf32>) -> tensor<1x2x8xf32>} : () -> ()
"""
    with pytest.raises(VerifyError, match="act_group must be 0 .the whole row. or a positive multiple of g = 4, got 6"):
        verify(parse(text))


def test_cost_model_follows_t_mac():
    """Decode GEMV: int8-table LUT wins at 1-3 bits, gains fade with bits, and it loses at
    small N (no table reuse) and with f32 tables (8 lookups per shuffle)."""
    avx2 = TARGETS["avx2"]
    i8 = LutConfig(table_type="i8")
    speedups = []
    for bits in (1, 2, 3, 4):
        shape = GemmShape(1, 4096, 4096, bits, 128)
        speedups.append(dequantize_cost(shape, avx2).cycles / lut_cost(shape, i8, avx2).cycles)
    assert speedups == sorted(speedups, reverse=True) and speedups[1] > 1.5 and speedups[3] <= 1.0
    assert choose(GemmShape(1, 4096, 4096, 2, 128), i8, avx2).use_lut
    assert not choose(GemmShape(1, 4096, 4096, 4, 128), i8, avx2).use_lut
    assert not choose(GemmShape(1, 8, 4096, 2, 128), i8, avx2).use_lut
    assert not choose(GemmShape(1, 4096, 4096, 2, 128), LutConfig(table_type="f32"), avx2).use_lut


def test_gemm_must_match_its_table():
    """Shapes agree (one table scale either way), but the gemm would read the scales per 8 k."""
    text = """
"func.func"() ({
^bb0(%x: tensor<1x8xf32>, %p: tensor<2x4x2xui4>, %s: tensor<4x1xf32>):
  %t:3 = "lut.table"(%x) {g = 4 : i64, sum_group = 8 : i64} : (tensor<1x8xf32>) -> (tensor<1x2x8xf32>, tensor<1x1xf32>, tensor<1x1xf32>)
  %0 = "lut.gemm"(%t#0, %t#1, %t#2, %p, %s) {act_group = 8 : i64, bits = 2 : i64, group_size = 8 : i64, sum_group = 8 : i64} : (tensor<1x2x8xf32>, tensor<1x1xf32>, tensor<1x1xf32>, tensor<2x4x2xui4>, tensor<4x1xf32>) -> tensor<1x4xf32>
  "func.return"(%0) : (tensor<1x4xf32>) -> ()
}) {sym_name = "main", function_type = (tensor<1x8xf32>, tensor<2x4x2xui4>, tensor<4x1xf32>) -> tensor<1x4xf32>} : () -> ()
"""
    with pytest.raises(VerifyError, match="act_group = 8 does not match the lut.table's act_group = 0"):
        verify(parse(text))
    verify(parse(text.replace("act_group = 8 : i64, ", "")))
