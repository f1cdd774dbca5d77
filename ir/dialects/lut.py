"""The `lut` dialect: mixed-precision GEMM through table lookups (T-MAC, LUT Tensor Core).

    %t:3 = "lut.table"(%x)  -> (tables, table_scales, sums)
    %y   = "lut.gemm"(%t#0, %t#1, %t#2, %planes, %scales[, %zeros])
    %p   = "lut.repack"(%codes) -> planes        (usually folded to a constant at compile time)

The math, with g activations per table and weight codes q = sum_i 2^i q_i split into bit
planes (docs/lut.md has the derivation):

    plain tables      T_j[c]  = sum_t c_t x[g*j+t]                2^g entries
    symmetric tables  T'_j[c] = sum_t (2 c_t - 1) x[g*j+t]        2^(g-1) entries stored,
                                                                 T'_j[~c] = -T'_j[c]
    base-3 tables     T3_j[c] = sum_t (d_t(c) - 1) x[g*j+t]       ternary weights, 3^g entries
                                                                 (symmetric: (3^g+1)/2 stored)
    sum_k x_k q_k     = sum_i 2^i sum_j T_j[idx_ji]
                      = sum_i 2^i (sum_j T'_j[idx_ji] + sum_k x_k) / 2

Weight "planes" are the table indices, computed once at compile time: plane i of row n,
table j holds idx = sum_t 2^t q_i[n, g*j+t] (base 3: idx = sum_t 3^t q[n, g*j+t]). For
symmetric tables a plane stores sign and magnitude instead: the top (sign) bit says "mirror",
the low bits index the stored half of the table.
"""

from __future__ import annotations

import numpy as np

from lutc.ir.attributes import BoolAttr, IntAttr, TypeAttr
from lutc.ir.dialects.graph import MPGEMM_BITS, default_zero_point, tensor_operand
from lutc.ir.opdef import Attr, Dialect, InferError, OpDef, Optional, Trait, impl
from lutc.ir.types import ElementType, TensorType, f32

lut = Dialect("lut", "Table-lookup mixed-precision GEMM: table precompute, lookups, weight layouts.")

TABLE_TYPES = ("f32", "f16", "i8")
# int8 tables: entries are round(T / scale) with scale = max_j sum_t |x_t| / 127 (T-MAC).
INT8_TABLE_MAX = 127


# -- table and layout geometry ------------------------------------------------------------


def full_entries(g: int, base3: bool) -> int:
    return 3**g if base3 else 2**g


def stored_entries(g: int, symmetric: bool, base3: bool) -> int:
    """Entries kept per table: a symmetric table keeps the half that is not a mirror image."""
    full = full_entries(g, base3)
    if not symmetric:
        return full
    return (full + 1) // 2 if base3 else full // 2


def magnitude_bits(g: int, symmetric: bool, base3: bool) -> int:
    """Bits of the index into the stored table; a symmetric plane adds one sign bit above them."""
    return max(stored_entries(g, symmetric, base3) - 1, 0).bit_length()


def plane_index_bits(g: int, symmetric: bool, base3: bool) -> int:
    return magnitude_bits(g, symmetric, base3) + (1 if symmetric else 0)


def plane_element(g: int, symmetric: bool, base3: bool) -> ElementType:
    """The narrowest unsigned type that holds one plane entry (ui1, ui2, ui4 or ui8)."""
    bits = plane_index_bits(g, symmetric, base3)
    for width in (1, 2, 4, 8):
        if bits <= width:
            return ElementType(f"ui{width}")
    raise InferError(f"a table index of {bits} bits does not fit in ui8")


def num_planes(bits: int, base3: bool) -> int:
    """Bit-serial: one plane per weight bit; base 3: one plane of ternary digits."""
    return 1 if base3 else bits


def ceil_div(a: int | None, b: int) -> int | None:
    return None if a is None else -(-a // b)


def groups_of(length: int | None, group: int) -> int | None:
    """How many groups of `group` cover `length`; group 0 means one group (the whole row)."""
    return 1 if group == 0 else ceil_div(length, group)


def check_table_geometry(g: int, base3: bool) -> None:
    if base3 and not 1 <= g <= 4:
        raise InferError(f"base-3 tables group 1 to 4 activations, got g = {g}")
    if not base3 and not 1 <= g <= 8:
        raise InferError(f"tables group 1 to 8 activations, got g = {g}")


def check_group(name: str, value: int, g: int) -> None:
    if value < 0 or value % g:
        raise InferError(f"{name} must be 0 (the whole row) or a positive multiple of g = {g}, got {value}")


# -- reference math -----------------------------------------------------------------------


def table_coefficients(g: int, symmetric: bool, base3: bool) -> np.ndarray:
    """C[c, t]: entry c of a table is sum_t C[c, t] * x_t; only the stored entries (rows) are kept."""
    entries = np.arange(stored_entries(g, symmetric, base3))
    if base3:
        digits = (entries[:, None] // 3 ** np.arange(g)) % 3
        return (digits - 1).astype(np.float32)
    bits = (entries[:, None] >> np.arange(g)) & 1
    return (2 * bits - 1 if symmetric else bits).astype(np.float32)


def pad_last(a: np.ndarray, length: int, value=0) -> np.ndarray:
    extra = length - a.shape[-1]
    if extra == 0:
        return a
    return np.pad(a, [(0, 0)] * (a.ndim - 1) + [(0, extra)], constant_values=value)


def build_tables(x: np.ndarray, *, g: int, symmetric: bool, base3: bool) -> np.ndarray:
    """Float tables (..., J, E) with J = ceil(K/g); K is padded with zeros to J*g."""
    k = x.shape[-1]
    j = -(-k // g)
    groups = pad_last(x.astype(np.float32), j * g).reshape(x.shape[:-1] + (j, g))
    return groups @ table_coefficients(g, symmetric, base3).T


def quantize_tables(tables: np.ndarray, x: np.ndarray, *, g: int, act_group: int) -> tuple[np.ndarray, np.ndarray]:
    """int8 tables and one f32 scale per activation group: scale = max_j sum_t |x_t| / 127.

    sum_t |x_t| bounds every entry of table j (plain, symmetric or base 3), so no entry clips.
    """
    j = tables.shape[-2]
    abs_sums = pad_last(np.abs(x.astype(np.float32)), j * g).reshape(x.shape[:-1] + (j, g)).sum(-1)
    per_scale = j if act_group == 0 else act_group // g
    count = -(-j // per_scale)
    bound = pad_last(abs_sums, count * per_scale).reshape(x.shape[:-1] + (count, per_scale)).max(-1)
    scales = (bound / INT8_TABLE_MAX).astype(np.float32)
    safe = np.where(scales > 0, scales, np.float32(1))
    per_table = np.repeat(safe, per_scale, axis=-1)[..., :j]
    codes = np.clip(np.rint(tables / per_table[..., None]), -INT8_TABLE_MAX, INT8_TABLE_MAX).astype(np.int8)
    return codes, scales


def group_sums(x: np.ndarray, group: int) -> np.ndarray:
    """sum_k x_k over consecutive groups of `group` k (0: the whole row), in float32."""
    k = x.shape[-1]
    group = group or k
    count = -(-k // group)
    return pad_last(x.astype(np.float32), count * group).reshape(x.shape[:-1] + (count, group)).sum(-1)


def repack_weights(codes: np.ndarray, *, bits: int, g: int, symmetric: bool, base3: bool) -> np.ndarray:
    """Codes (N, K) -> planes (P, N, J) of table indices (sign|magnitude for symmetric tables)."""
    n, k = codes.shape
    j = -(-k // g)
    codes = codes.astype(np.int64)
    if base3:
        # Padding with code 1 (weight 0) keeps the padded digits neutral.
        digits = pad_last(codes, j * g, value=1).reshape(n, j, g)
        index = (digits * 3 ** np.arange(g)).sum(-1)[None]
    else:
        padded = pad_last(codes, j * g).reshape(n, j, g)
        planes = [(padded >> i) & 1 for i in range(bits)]
        index = np.stack([(p << np.arange(g)).sum(-1) for p in planes])
    if symmetric:
        # Entries past the stored half are mirror images: store sign | index of the mirror.
        mirror = full_entries(g, base3) - 1
        sign = np.int64(1) << magnitude_bits(g, True, base3)
        index = np.where(index >= stored_entries(g, True, base3), sign | (mirror - index), index)
    return index.astype(np.uint8)


def unpack_weights(planes: np.ndarray, *, k: int, bits: int, g: int, symmetric: bool, base3: bool) -> np.ndarray:
    """The inverse of `repack_weights`: planes (P, N, J) -> codes (N, K); checks the layout."""
    index = planes.astype(np.int64)
    mirror = full_entries(g, base3) - 1
    if symmetric:
        sign_bit = magnitude_bits(g, True, base3)
        flipped = (index >> sign_bit) & 1
        magnitude = index & ((1 << sign_bit) - 1)
        index = np.where(flipped == 1, mirror - magnitude, magnitude)
    if base3:
        digits = (index[0][..., None] // 3 ** np.arange(g)) % 3
        return digits.reshape(index.shape[1], -1)[:, :k].astype(np.uint8)
    bit_values = (index[..., None] >> np.arange(g)) & 1  # (P, N, J, g)
    codes = sum(bit_values[i] << i for i in range(bits))
    return codes.reshape(index.shape[1], -1)[:, :k].astype(np.uint8)


def lookup_planes(tables: np.ndarray, planes: np.ndarray, *, g: int, symmetric: bool, base3: bool) -> np.ndarray:
    """L[p, ..., n, j] = the (signed) table entry plane p selects for row n, table j."""
    j = tables.shape[-2]
    columns = np.arange(j)[None, :]
    out = []
    for plane in planes.astype(np.int64):
        if symmetric:
            sign_bit = magnitude_bits(g, True, base3)
            sign = np.where((plane >> sign_bit) & 1, np.float32(-1), np.float32(1))
            values = tables[..., columns, plane & ((1 << sign_bit) - 1)] * sign
        else:
            values = tables[..., columns, plane]
        out.append(values)
    return np.stack(out)


def sum_groups(values: np.ndarray, per_group: int) -> np.ndarray:
    """Sum the last axis in consecutive groups of `per_group` (the last group may be short)."""
    count = -(-values.shape[-1] // per_group)
    return pad_last(values, count * per_group).reshape(values.shape[:-1] + (count, per_group)).sum(-1)


# -- ops ----------------------------------------------------------------------------------


def _table_kwargs(attrs) -> tuple[int, bool, bool]:
    return attrs["g"], attrs["symmetric"], attrs["base3"]


@lut.op
class Table(OpDef):
    """Activations (..., K) -> tables (..., J, E), table scales (..., A), sums (..., S).

    J = ceil(K/g) tables of E entries (see the module docstring). `table_type` f32/f16 keeps
    entries as floats, with unit scales; i8 stores round(T/scale), one scale per `act_group`
    consecutive k (0: per row). `sums` holds sum_k x_k per `sum_group` consecutive k (0: per
    row): the symmetric-table and zero-point corrections need them.
    """

    name = "lut.table"
    summary = "Build lookup tables (and the activation sums) from activations."
    operands = ("x",)
    num_results = 3
    attributes = (
        Attr("g", IntAttr, 4),
        Attr("symmetric", BoolAttr, True),
        Attr("base3", BoolAttr, False),
        Attr("table_type", TypeAttr, f32),
        Attr("act_group", IntAttr, 0),
        Attr("sum_group", IntAttr, 0),
    )
    traits = {Trait.PURE}

    @staticmethod
    def check(types, attrs):
        x = tensor_operand(types, 0)
        g, _, base3 = _table_kwargs(attrs)
        check_table_geometry(g, base3)
        if x.rank < 1 or not x.element.is_float:
            raise InferError(f"x must be a floating-point tensor of rank >= 1, got {x}")
        if str(attrs["table_type"]) not in TABLE_TYPES:
            raise InferError(f"table_type must be one of {', '.join(TABLE_TYPES)}, got {attrs['table_type']}")
        check_group("act_group", attrs["act_group"], g)
        check_group("sum_group", attrs["sum_group"], g)

    @staticmethod
    def infer(types, attrs):
        x = tensor_operand(types, 0)
        g, symmetric, base3 = _table_kwargs(attrs)
        batch, k = x.shape[:-1], x.shape[-1]
        return [
            TensorType(batch + (ceil_div(k, g), stored_entries(g, symmetric, base3)), attrs["table_type"]),
            TensorType(batch + (groups_of(k, attrs["act_group"]),), f32),
            TensorType(batch + (groups_of(k, attrs["sum_group"]),), x.element),
        ]


@impl(Table)
def _table(x, *, g, symmetric, base3, table_type, act_group, sum_group):
    tables = build_tables(x, g=g, symmetric=symmetric, base3=base3)
    if str(table_type) == "i8":
        tables, scales = quantize_tables(tables, x, g=g, act_group=act_group)
    else:
        count = 1 if act_group == 0 else -(-x.shape[-1] // act_group)
        tables, scales = tables.astype(table_type.np_dtype), np.ones(x.shape[:-1] + (count,), np.float32)
    return tables, scales, group_sums(x, sum_group).astype(x.dtype)


@lut.op
class Repack(OpDef):
    """Weight codes (N, K) -> planes (P, N, J): the table index of each (plane, row, table).

    P = bits (one plane per weight bit) or 1 for base 3. Symmetric planes hold sign|magnitude.
    Usually evaluated at compile time (lut-rewrite folds it when the codes are constant).
    """

    name = "lut.repack"
    summary = "Repack low-bit weight codes into table-index planes."
    operands = ("codes",)
    attributes = (
        Attr("bits", IntAttr, choices=MPGEMM_BITS),
        Attr("g", IntAttr, 4),
        Attr("symmetric", BoolAttr, True),
        Attr("base3", BoolAttr, False),
    )
    traits = {Trait.PURE}

    @staticmethod
    def check(types, attrs):
        codes = tensor_operand(types, 0)
        g, _, base3 = _table_kwargs(attrs)
        check_table_geometry(g, base3)
        if codes.rank != 2 or not codes.element.is_unsigned:
            raise InferError(f"codes must be an N x K tensor of unsigned codes, got {codes}")
        if base3 and attrs["bits"] != 2:
            raise InferError("base-3 planes hold ternary weights (bits = 2)")

    @staticmethod
    def infer(types, attrs):
        n, k = tensor_operand(types, 0).shape
        g, symmetric, base3 = _table_kwargs(attrs)
        return [TensorType((num_planes(attrs["bits"], base3), n, ceil_div(k, g)), plane_element(g, symmetric, base3))]


@impl(Repack)
def _repack(codes, *, bits, g, symmetric, base3):
    return repack_weights(codes, bits=bits, g=g, symmetric=symmetric, base3=base3)


@lut.op
class Gemm(OpDef):
    """y[..., n] = sum_G s[n, G] * (A[..., n, G] - z[n, G] * S[..., G]), A from table lookups.

    Per weight group G (`group_size` k, a multiple of g), with L_i the sum over the group's
    tables of the entries plane i selects (sign applied for symmetric tables, int8 tables
    times their scale):

        plain:      A = sum_i 2^i L_i                              (= sum_k x_k q_k)
        symmetric:  A = (sum_i 2^i L_i + (2^bits - 1) S) / 2
        base 3:     A - z S = L_0          (base-3 tables already hold sum_k x_k (q_k - 1))

    S = sum_k x_k over the group (from the table op's `sums`); z = `zeros`, or 2^(bits-1)
    (1 for ternary) without them. This equals graph.mpgemm on the same codes.
    """

    name = "lut.gemm"
    summary = "Mixed-precision GEMM by bit-serial table lookups over repacked weight planes."
    operands = ("tables", "table_scales", "sums", "planes", "scales", Optional("zeros"))
    attributes = (
        Attr("bits", IntAttr, choices=MPGEMM_BITS),
        Attr("group_size", IntAttr),
        Attr("g", IntAttr, 4),
        Attr("symmetric", BoolAttr, True),
        Attr("base3", BoolAttr, False),
        Attr("ternary", BoolAttr, False),
        Attr("act_group", IntAttr, 0),
        Attr("sum_group", IntAttr, 0),
    )
    traits = {Trait.PURE}

    @staticmethod
    def check(types, attrs):
        tables, table_scales, sums, planes, scales = (tensor_operand(types, i) for i in range(5))
        g, symmetric, base3 = _table_kwargs(attrs)
        bits, group = attrs["bits"], attrs["group_size"]
        check_table_geometry(g, base3)
        if group <= 0 or group % g:
            raise InferError(f"group_size must be a positive multiple of g = {g}, got {group}")
        check_group("act_group", attrs["act_group"], g)
        check_group("sum_group", attrs["sum_group"], g)
        if base3 and not (attrs["ternary"] and bits == 2 and len(types) == 5):
            raise InferError("base-3 tables need ternary weights (bits = 2, ternary, no zeros)")
        if attrs["ternary"] and bits != 2:
            raise InferError("ternary weights are stored as 2-bit codes (bits = 2)")
        if tables.rank < 2 or tables.shape[-1] != stored_entries(g, symmetric, base3):
            raise InferError(f"tables must be (..., J, {stored_entries(g, symmetric, base3)}) for these attributes, got {tables}")
        if str(tables.element) not in TABLE_TYPES:
            raise InferError(f"tables must be one of {', '.join(TABLE_TYPES)}, got {tables.element}")
        batch, j = tables.shape[:-2], tables.shape[-2]
        k = None if j is None else j * g  # K padded to whole tables; the groups below agree with K
        for name, t, group_len in (("table_scales", table_scales, attrs["act_group"]), ("sums", sums, attrs["sum_group"])):
            want = batch + (groups_of(k, group_len),)
            if not TensorType(want, t.element).compatible(t):
                raise InferError(f"{name} must be {list(want)}, got {t}")
        if attrs["sum_group"] and group % attrs["sum_group"]:
            raise InferError(f"group_size {group} must be a multiple of the sums' group {attrs['sum_group']}")
        if attrs["sum_group"] == 0 and k is not None and groups_of(k, group) != 1:
            raise InferError("per-row sums (sum_group = 0) only serve a single weight group")
        want_planes = (num_planes(bits, base3), scales.shape[0], j)
        if planes.rank != 3 or not TensorType(want_planes, planes.element).compatible(planes):
            raise InferError(f"planes must be {list(want_planes)}, got {planes}")
        if planes.element != plane_element(g, symmetric, base3):
            raise InferError(f"planes must be {plane_element(g, symmetric, base3)}, got {planes.element}")
        want_scales = (scales.shape[0], groups_of(k, group))
        if scales.rank != 2 or not TensorType(want_scales, scales.element).compatible(scales) or not scales.element.is_float:
            raise InferError(f"scales must be float {list(want_scales)} (N x groups), got {scales}")
        if len(types) == 6 and tensor_operand(types, 5).shape != scales.shape:
            raise InferError(f"zeros must have the shape of scales, got {types[5]}")
        if not sums.element.is_float:
            raise InferError(f"sums must be floating point, got {sums}")

    @staticmethod
    def infer(types, attrs):
        tables, sums, planes = (tensor_operand(types, i) for i in (0, 2, 3))
        return [TensorType(tables.shape[:-2] + (planes.shape[1],), sums.element)]

    @staticmethod
    def verify_op(op) -> str | None:
        """Reading a lut.table: all three of its results, built the way these attributes say."""
        table = getattr(op.operands[0], "op", None)
        if table is None or table.name != "lut.table":
            return None
        if list(op.operands[:3]) != list(table.results):
            return "tables, table_scales and sums must be the three results of one lut.table, in order"
        mine, theirs = Gemm.attr_values(op.attributes), Table.attr_values(table.attributes)
        for name in TABLE_FORMAT_ATTRIBUTES:
            if mine[name] != theirs[name]:
                return f"{name} = {mine[name]} does not match the lut.table's {name} = {theirs[name]}"
        return None


# A lut.gemm repeats these attributes of the lut.table it reads.
TABLE_FORMAT_ATTRIBUTES = ("g", "symmetric", "base3", "act_group", "sum_group")


@impl(Gemm)
def _gemm(tables, table_scales, sums, planes, scales, zeros=None, *, bits, group_size, g, symmetric, base3, ternary,
          act_group, sum_group):
    j = tables.shape[-2]
    values = tables.astype(np.float32)
    if tables.dtype == np.int8:
        per_scale = j if act_group == 0 else act_group // g
        values = values * np.repeat(table_scales, per_scale, axis=-1)[..., :j, None]
    looked_up = lookup_planes(values, planes, g=g, symmetric=symmetric, base3=base3)  # (P, ..., N, J)
    per_group = sum_groups(looked_up, group_size // g)                                  # (P, ..., N, B)
    if sum_group == 0:
        group_x = sums.astype(np.float32)
    else:
        group_x = sum_groups(sums.astype(np.float32), group_size // sum_group)          # (..., B)
    group_x = group_x[..., None, :]                                                     # (..., 1, B)
    plane_weights = np.float32(2) ** np.arange(per_group.shape[0], dtype=np.float32)
    acc = np.tensordot(plane_weights, per_group, axes=(0, 0))                           # (..., N, B)
    zero = np.float32(default_zero_point(bits, ternary)) if zeros is None else zeros.astype(np.float32)
    if base3:
        centered = acc  # the zero point (1) is built into the base-3 entries
    elif symmetric:
        centered = np.float32(0.5) * acc + (np.float32((2**bits - 1) / 2) - zero) * group_x
    else:
        centered = acc - zero * group_x
    return (scales.astype(np.float32) * centered).sum(-1).astype(sums.dtype)




__all__ = [
    "lut", "Table", "Repack", "Gemm", "TABLE_TYPES", "stored_entries", "plane_element", "num_planes",
    "build_tables", "quantize_tables", "group_sums", "repack_weights", "unpack_weights", "lookup_planes",
    "TABLE_FORMAT_ATTRIBUTES", "magnitude_bits",
]
