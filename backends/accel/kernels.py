"""Compiled kernels for the simulator's hottest work, built with TVM.

The programs lutc's compiler emits spend most of their functional time in the integer
LUT.MMA lookup (an index computation, a gather and a sum over every weight byte:
element-bound in NumPy, ~1.7 ns a byte), in building its byte-sum tables, and in the VEC.DEQ
epilogue (six NumPy calls on a small tile: call-bound). Each is one loop here, written in
TIR and compiled by TVM's LLVM backend:

* `lut_mma_<table>_<out>(weights, w_off, out, out_off, rows, cols, planes, k8, tables)`:
  out[r, c] = sum over planes i and byte positions b of tables[r, (i * k8 + b) * 256 +
  weights[i, c, b]], summed in the table's integer type. Integer sums are exact in any order,
  so this equals the NumPy gather and reduction bit for bit wherever those are exact (the
  caller's static bound).
* `byte_sums_<table>_<g>_<sym>(stored, off, out)`: `lut.bytewise_table` from the stored int8
  entries, specialized per group size and symmetry (as run-time values they made it slower
  than NumPy).
* `deq_<a>_<accum>(a, a_off, b, b_off, c, c_off, dst, dst_off, rows, cols, imm)`: the
  VEC.DEQ of docs/isa.md into an f32 `dst`, in the ISA's operation order:
  `t = f32(f64(a) * f64(imm * c[0, r])) - b[1, c] * c[1, r]; dst (+)= t * b[0, c]`.
  The first product is formed in f64 and rounded once to f32: for every `a` type here
  (at most 24 significant bits times f32's 24) the f64 product is exact, so the one rounding
  gives the f32 product NumPy forms for narrow types, and NumPy's own f64 product for int32.
  No fast-math flag is set and the target has no FMA, so nothing is contracted or reordered.
* `executor_<table>_<acc>(dram, sp, acc_bytes, acc, sp_f32, tables, products, ops, imms, first,
  end)`: rows [first, end) of a table of operations in one call, each row its kind, then byte
  or element offsets and shapes (the DEQ immediates beside): integer LUT.MMA lookups (into the
  accumulator, no overflow check) and VEC.DEQs (accumulator -> f32 in the scratchpad), each
  computed exactly as `lut_mma` and `deq` do, the byte-sum tables back to back in one arena;
  DMAs (2-D byte copies between DRAM and the scratchpad or the accumulator); and the stores of
  MMAs whose products (exact integers in f32, from one BLAS call per batch) cannot overflow
  (casts into the accumulator). It saves a call per instruction and the prepared function of
  each: a run is everything between two NumPy-side steps (a BLAS call, a table fill, a VEC).
* `first_uninitialized(order, mem, lo, hi, write, used, pattern, base, pre_lo, pre_hi, flags,
  done, result)`: the written-flags walk of `dataflow.check_written` over the analysis's byte-range
  tables, instruction by instruction in execution `order` (each one's reads before its writes;
  DRAM ranges inside the preloaded runs `pre_lo`/`pre_hi` skipped): a write sets its flags (one
  bit a byte: byte x of memory m is bit `base[m] + x` of `flags`, little-endian within a flag
  byte), a read finds whether one of its flags is 0; `result`
  = the (execution position, slot) of the first such read (-1: none), and nothing after it is
  walked. A range whose flags are all set (found so by a read, or written) is not walked again
  (`done`: a hash table of such ranges; a collision only costs a second walk): a GEMM reads
  each operand tile many times.

* `first_race(queue, start, end, mem, lo, hi, write, used, pattern, members, result)`: all of
  `timing.find_race`: the busy instructions in time order (by start, then index; a merge of the
  queues, each in program order), and for each the instruction of every other queue running
  when it starts, their byte ranges tested (bounding ranges first, then a merge over the rows
  of 2-D ones); `result` = the first pair that shares a byte, one of them written, and its
  range slots.

* `operand_versions(order, mem, lo, hi, write, used, ins, slot, table, query_of, ranges,
  versions, state)`: `dataflow.read_versions` for the reads (ins, slot): the distinct ranges
  read (a hash table), then one pass in execution order: each read takes its range's last
  overlapping write so far, each write updates the ranges it overlaps. `state[1]` = 1 (and
  nothing computed) when distinct ranges x writes exceed `state[0]`: NumPy's grouping then.

* `report_sums(kind, queue, layer, cycles, start, end, actions, unit_of, codes, mem, lo, hi, used,
  pattern, tensor_start, queue_sums, unit_sums, layer_sums, traffic, extremes)`: the integer
  figures of `report.build_report` in one pass over the instructions: busy cycles per queue;
  per unit its instructions, busy cycles and action counts; per layer its instructions, busy
  cycles per queue, first start, last end and first instruction; DRAM bytes loaded and stored
  per tensor; LUT.MMA cycles and the scratchpad and accumulator high-water marks.

* `decode_fields(words, order, kind, word, shift, mask, hi_word, hi_shift, most, operands,
  used, fields, bad)`: the bit-field extraction of `columns.InstructionColumns.from_words`, for
  every instruction at once: instruction `order[j]` (of class `kind[order[j]]`) gets its
  class's fields in `fields[:, j]`, each `(words[word] >> shift) & mask`, with the high part of
  a field that crosses a 64-bit word from `words[hi_word] << hi_shift`; `bad[j]` = 1 where
  the word sets a bit its encoding does not use, a field exceeds its largest legal value
  (`most`: function codes, memory spaces, dtypes, queues), or an absent operand (space 0)
  carries an address, dtype or broadcast. Classes are rows of the tables (see
  `columns._field_tables`), so one call decodes a whole program.

* `schedule_queues(queue, deps, channel, cycles, order, pushed, src, start, end, ready, waited,
  counts, stall, state)`: all of `timing.schedule` in one call: the push each pop consumes
  (the k-th pop on a channel takes its k-th push), the longest path (each queue in turn
  advances until an instruction waits for a push not scheduled yet), and the stalls (ready
  when the queue's previous instruction ends; the token that came last after that, summed per
  pair of queues). `state[0]` = 1 on a token underflow, 2 on a circular wait: the NumPy path
  then finds and names it.

Operands are (memory, element offset) pairs: the simulator passes each memory once as a flat
array of the operand's type, so preparing an instruction makes no arrays.

Building needs TVM's compiler (`import tvm`, ~1.5 s) and a C toolchain for the shared
library; it happens once per machine and kernel revision, the library cached under
$LUTC_CACHE_DIR (default $XDG_CACHE_HOME/lutc or ~/.cache/lutc). Later processes load it
with TVM's runtime library only (~0.2 s). If no library can be written the kernels built in
the process are used; if TVM cannot build them at all, `sim_kernels()` is None and the
simulator stays on its NumPy path (the reference, and bit-identical: tests compare them).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import platform
import tempfile
import threading
from pathlib import Path
from typing import Callable

import numpy as np

# Operand types the kernels are built for; anything else takes the NumPy path.
LUT_TABLE_TYPES = ("int32", "int64")
LUT_OUT_TYPES = ("int16", "int32", "int64")
DEQ_A_TYPES = ("uint8", "int8", "int16", "int32", "float32")
LUT_GROUPS = (1, 2, 4, 8)  # activation group sizes g that divide a byte
RUN_ACC_TYPES = ("int16", "int32")  # accumulator types of the executor (the configs' LUT and MMA accumulators)
RUN_OP_FIELDS = 8  # the executor's op rows: kind, then seven operands
RUN_LUT_MMA, RUN_DEQ, RUN_COPY, RUN_CAST = 0, 1, 2, 3  # op kinds
COPY_DRAM_SP, COPY_DRAM_ACC, COPY_SP_DRAM, COPY_ACC_DRAM = 0, 1, 2, 3  # RUN_COPY directions


def _tir_functions() -> dict:
    """name -> tirx.PrimFunc, every kernel of the library (imports TVM's compiler)."""
    from tvm.script import tirx as T

    # Operands are addressed as (memory, element offset): a memory is passed once, as one flat
    # array of the operand's type (typed operands are aligned to their size), so the simulator
    # makes no array per instruction. Each operand is a buffer declared over its memory at its
    # offset (indexing the flat memory with the offset arithmetic written out ran 2x slower).

    # The arithmetic of LUT.MMA and VEC.DEQ, written once: the per-instruction kernels and the
    # executor both expand these (Python helpers, evaluated when the TIR is parsed).
    def byte_lookup(tables, weights, r, c, i, b, k8):
        """Row r's byte-sum table entry for weight byte (plane i, byte b) of column c."""
        return tables[r, (i * k8 + b) * 256 + T.Cast("int64", weights[i, c, b])]

    def deq_term(a, b, c, r, col, imm):
        """VEC.DEQ of a[r, col] in the ISA's order: f32(f64(a) * f64(imm * row scale)) - zero *
        row sum, times scale (b: scale, zero by column; c: row scale, row sum by row)."""
        product = T.Cast("float32", T.Cast("float64", a[r, col]) * T.Cast("float64", imm * c[0, r]))
        return (product - b[1, col] * c[1, r]) * b[0, col]

    @T.macro
    def count_at_most(ordered, size, x, bounds):
        """bounds[0] = how many of ordered[:size] (ascending) are <= x: a binary search, in the
        local (2,) int64 buffer `bounds`."""
        bounds[0] = T.int64(0)
        bounds[1] = size
        while bounds[0] < bounds[1]:
            if ordered[(bounds[0] + bounds[1]) // 2] <= x:
                bounds[0] = (bounds[0] + bounds[1]) // 2 + 1
            else:
                bounds[1] = (bounds[0] + bounds[1]) // 2

    def range_hash(mem, lo, hi, size):
        """A table slot for the byte range (mem, lo, hi): Fibonacci hashing (the product's high bits)
        of a linear mix reduced below 2^31, so nothing overflows; `size` a power of two."""
        mixed = T.floormod(lo * 31 + hi * 7 + mem, T.int64(2147483647)) * T.int64(2654435761)
        return T.bitwise_and(T.shift_right(mixed, T.int64(16)), size - 1)

    def lut_mma(table: str, out_type: str):
        @T.prim_func
        def func(w_handle: T.handle, w_off: T.int64, out_handle: T.handle, out_off: T.int64, rows: T.int64,
                 cols: T.int64, planes: T.int64, k8: T.int64, t_handle: T.handle):
            w_size, out_size, entries = T.int64(), T.int64(), T.int64()
            w_memory = T.match_buffer(w_handle, (w_size,), "uint8")
            out_memory = T.match_buffer(out_handle, (out_size,), out_type)
            tables = T.match_buffer(t_handle, (rows, entries), table)  # byte-sum tables [row][plane][byte][256]
            weights = T.decl_buffer((planes, cols, k8), "uint8", data=w_memory.data, elem_offset=w_off)
            out = T.decl_buffer((rows, cols), out_type, data=out_memory.data, elem_offset=out_off)
            for r, c in T.grid(rows, cols):
                acc = T.alloc_buffer((1,), table, scope="local")
                acc[0] = T.Cast(table, 0)
                for i, b in T.grid(planes, k8):
                    acc[0] = acc[0] + byte_lookup(tables, weights, r, c, i, b, k8)
                out[r, c] = T.Cast(out_type, acc[0])

        return func

    def deq(a_type: str, accum: bool):
        @T.prim_func
        def func(a_handle: T.handle, a_off: T.int64, b_handle: T.handle, b_off: T.int64, c_handle: T.handle,
                 c_off: T.int64, dst_handle: T.handle, dst_off: T.int64, rows: T.int64, cols: T.int64, imm: T.float32):
            a_size, b_size, c_size, dst_size = T.int64(), T.int64(), T.int64(), T.int64()
            a_memory = T.match_buffer(a_handle, (a_size,), a_type)
            b_memory = T.match_buffer(b_handle, (b_size,), "float32")
            c_memory = T.match_buffer(c_handle, (c_size,), "float32")
            dst_memory = T.match_buffer(dst_handle, (dst_size,), "float32")
            a = T.decl_buffer((rows, cols), a_type, data=a_memory.data, elem_offset=a_off)
            b = T.decl_buffer((2, cols), "float32", data=b_memory.data, elem_offset=b_off)  # scale, zero
            c = T.decl_buffer((2, rows), "float32", data=c_memory.data, elem_offset=c_off)  # row scale, row sum
            dst = T.decl_buffer((rows, cols), "float32", data=dst_memory.data, elem_offset=dst_off)
            for r, col in T.grid(rows, cols):
                if accum:
                    dst[r, col] = dst[r, col] + deq_term(a, b, c, r, col, imm)
                else:
                    dst[r, col] = deq_term(a, b, c, r, col, imm)

        return func

    def byte_sums(table: str, group: int, sym: bool):
        per_byte, full = 8 // group, 1 << group
        entries = full // 2 if sym else full
        per_nibble = max(4 // group, 1)  # digits in 4 bits (g = 8: one digit fills the byte)

        def entry(stored, j, r, digit):
            """Entry `digit` of group j's full table, in `table`'s type. A stored half table gives
            -S[2^g - 1 - digit] for the upper half, negated in int8 as expand_symmetric does
            (-(-128) stays -128); the index is in range on both sides of the choice."""
            if not sym:
                return T.Cast(table, stored[j, r, digit])
            upper = digit >= full // 2
            value = stored[j, r, T.if_then_else(upper, full - 1 - digit, digit)]
            return T.Cast(table, T.if_then_else(upper, T.int8(0) - value, value))

        @T.prim_func
        def func(e_handle: T.handle, e_off: T.int64, out_handle: T.handle):
            e_size, rows, bits, k8 = T.int64(), T.int64(), T.int64(), T.int64()
            memory = T.match_buffer(e_handle, (e_size,), "int8")
            out = T.match_buffer(out_handle, (rows, bits, k8, 256), table)
            stored = T.decl_buffer((k8 * per_byte, rows, entries), "int8", data=memory.data, elem_offset=e_off)
            # A byte's sum is the sum of its low and its high nibble's lookups (for g = 8, its one
            # lookup): 16-entry nibble sums first, then all 256 byte values as an outer sum (vector code).
            nibble = T.alloc_buffer((2, 16), table, scope="local")
            sums = T.alloc_buffer((256,), table, scope="local")
            for r, b in T.grid(rows, k8):
                if group == 8:
                    for v in range(256):
                        sums[v] = entry(stored, b, r, v)
                else:
                    for half, n in T.grid(2, 16):
                        nibble[half, n] = T.Cast(table, 0)
                        for s in T.unroll(per_nibble):
                            digit = (n >> (group * s)) & (full - 1)
                            nibble[half, n] = nibble[half, n] + entry(stored, b * per_byte + half * per_nibble + s, r, digit)
                    for high in range(16):
                        for low in T.vectorized(16):
                            sums[high * 16 + low] = nibble[1, high] + nibble[0, low]
                for i in range(bits):
                    for v in T.vectorized(256):
                        out[r, i, b, v] = sums[v] << T.Cast(table, i)

        return func

    @T.prim_func
    def first_uninitialized(order_handle: T.handle, mem_handle: T.handle, lo_handle: T.handle, hi_handle: T.handle,
                            write_handle: T.handle, used_handle: T.handle, pattern_handle: T.handle,
                            base_handle: T.handle, pre_lo_handle: T.handle, pre_hi_handle: T.handle,
                            f_handle: T.handle, done_handle: T.handle, result_handle: T.handle):
        T.func_attr({"tir.noalias": True})  # distinct arrays: range fields load once per range, flag loops vectorize
        n, slots, n_pre, n_flags, n_done = T.int64(), T.int64(), T.int64(), T.int64(), T.int64()
        order = T.match_buffer(order_handle, (n,), "int64")  # instructions in execution order
        mem = T.match_buffer(mem_handle, (n, slots), "int64")  # analysis.Analysis's range tables
        lo = T.match_buffer(lo_handle, (n, slots), "int64")
        hi = T.match_buffer(hi_handle, (n, slots), "int64")
        write = T.match_buffer(write_handle, (n, slots), "uint8")
        used = T.match_buffer(used_handle, (n, slots), "uint8")
        pattern = T.match_buffer(pattern_handle, (n, slots, 3), "int64")  # rows, row bytes, stride
        base = T.match_buffer(base_handle, (3,), "int64")  # each memory's first flag
        pre_lo = T.match_buffer(pre_lo_handle, (n_pre,), "int64")  # preloaded DRAM: sorted, disjoint
        pre_hi = T.match_buffer(pre_hi_handle, (n_pre,), "int64")
        flags = T.match_buffer(f_handle, (n_flags,), "uint8")  # one bit a byte, 1: written (bit x % 8 of byte x // 8)
        # Ranges whose flags are all set (read and found so, or written), by hash (n_done: a power
        # of two; zeros on entry): they need no walk again, since flags are never cleared.
        done = T.match_buffer(done_handle, (n_done, 5), "int64")
        result = T.match_buffer(result_handle, (2,), "int64")  # execution position, slot
        search = T.alloc_buffer((2,), "int64", scope="local")  # binary search bounds
        check = T.alloc_buffer((1,), "int64", scope="local")
        lanes = T.alloc_buffer((16,), "uint8", scope="local")
        seen = T.alloc_buffer((1,), "uint8", scope="local")
        edge = T.alloc_buffer((4,), "int64", scope="local")  # a row's first and last flag byte, their masks
        result[0] = T.int64(-1)
        result[1] = T.int64(-1)
        for j in range(n):
            for phase, s in T.grid(T.int64(2), slots):  # an instruction's reads (phase 0) before its writes
                i = order[j]
                if result[0] < 0 and used[i, s] != T.uint8(0) and T.Cast("int64", write[i, s]) == phase:
                    check[0] = T.int64(1)
                    if mem[i, s] == 0:  # DRAM inside preloaded data: nothing reads it unset, nothing marks it
                        count_at_most(pre_lo, n_pre, lo[i, s], search)  # the preloaded runs starting at or before lo
                        if search[0] > 0:
                            if hi[i, s] <= pre_hi[search[0] - 1]:
                                check[0] = T.int64(0)
                    key = 1 + mem[i, s]
                    mixed = T.floormod(lo[i, s] * 31 + hi[i, s] * 7 + key * 5 + pattern[i, s, 0] * 3 + pattern[i, s, 2],
                                       T.int64(2147483647)) * T.int64(2654435761)  # < 2^63: Fibonacci hashing
                    h = T.bitwise_and(T.shift_right(mixed, T.int64(16)), n_done - 1)
                    if (done[h, 0] == key and done[h, 1] == lo[i, s] and done[h, 2] == hi[i, s]
                            and done[h, 3] == pattern[i, s, 0] and done[h, 4] == pattern[i, s, 2]):
                        check[0] = T.int64(0)
                    if check[0] == 1:
                        # Rows of `width` bytes `step` apart (contiguous: one row); per row its bits:
                        # the first and last flag bytes under masks, the whole bytes between in vector
                        # blocks (LLVM does not vectorize the plain loop).
                        contiguous = pattern[i, s, 0] == 1 or pattern[i, s, 1] == pattern[i, s, 2]
                        rows = T.if_then_else(contiguous, T.int64(1), pattern[i, s, 0])
                        width = T.if_then_else(contiguous, hi[i, s] - lo[i, s], pattern[i, s, 1])
                        step = T.if_then_else(contiguous, T.int64(0), pattern[i, s, 2])
                        first = base[mem[i, s]] + lo[i, s]
                        seen[0] = T.uint8(255)
                        for v in T.vectorized(16):
                            lanes[v] = T.uint8(255)
                        for r in range(rows):
                            if width > 0:
                                row_first, row_last = first + r * step, first + r * step + width - 1  # flag bits
                                edge[0] = T.shift_right(row_first, T.int64(3))  # first and last flag byte
                                edge[1] = T.shift_right(row_last, T.int64(3))
                                edge[2] = T.bitwise_and(T.shift_left(T.int64(255), T.bitwise_and(row_first, T.int64(7))),
                                                        T.int64(255))
                                edge[3] = T.shift_right(T.int64(255), 7 - T.bitwise_and(row_last, T.int64(7)))
                                if edge[0] == edge[1]:  # one flag byte: both masks on it
                                    edge[2] = T.bitwise_and(edge[2], edge[3])
                                    edge[3] = T.int64(0)
                                # The flag bytes wholly inside the row: blocks of 16, then of 4, then single.
                                whole = T.max(edge[1] - edge[0] - 1, T.int64(0))
                                at16, at4 = edge[0] + 1, edge[0] + 1 + whole // 16 * 16
                                at1 = at4 + whole % 16 // 4 * 4
                                if phase == 1:
                                    flags[edge[0]] = T.bitwise_or(flags[edge[0]], T.Cast("uint8", edge[2]))
                                    flags[edge[1]] = T.bitwise_or(flags[edge[1]], T.Cast("uint8", edge[3]))
                                    for block in range(whole // 16):
                                        for v in T.vectorized(16):
                                            flags[at16 + block * 16 + v] = T.uint8(255)
                                    for block in range(whole % 16 // 4):
                                        for v in T.vectorized(4):
                                            flags[at4 + block * 4 + v] = T.uint8(255)
                                    for c in range(whole % 4):
                                        flags[at1 + c] = T.uint8(255)
                                else:
                                    head, tail = T.Cast("uint8", edge[2]), T.Cast("uint8", edge[3])
                                    if (T.bitwise_and(flags[edge[0]], head) != head
                                            or T.bitwise_and(flags[edge[1]], tail) != tail):
                                        seen[0] = T.uint8(0)
                                    for block in range(whole // 16):
                                        for v in T.vectorized(16):
                                            lanes[v] = T.min(lanes[v], flags[at16 + block * 16 + v])
                                    for block in range(whole % 16 // 4):
                                        for v in T.vectorized(4):
                                            lanes[v] = T.min(lanes[v], flags[at4 + block * 4 + v])
                                    for c in range(whole % 4):
                                        lanes[0] = T.min(lanes[0], flags[at1 + c])
                        if phase == 0:
                            for v in range(16):
                                seen[0] = T.min(seen[0], lanes[v])
                            if seen[0] != T.uint8(255):
                                result[0] = j
                                result[1] = s
                        done[h, 0] = key
                        done[h, 1] = lo[i, s]
                        done[h, 2] = hi[i, s]
                        done[h, 3] = pattern[i, s, 0]
                        done[h, 4] = pattern[i, s, 2]

    @T.prim_func
    def first_race(queue_handle: T.handle, start_handle: T.handle, end_handle: T.handle, mem_handle: T.handle,
                   lo_handle: T.handle, hi_handle: T.handle, write_handle: T.handle, used_handle: T.handle,
                   pattern_handle: T.handle, members_handle: T.handle, result_handle: T.handle):
        T.func_attr({"tir.noalias": True})
        n, slots = T.int64(), T.int64()
        queue = T.match_buffer(queue_handle, (n,), "int64")
        start = T.match_buffer(start_handle, (n,), "int64")
        end = T.match_buffer(end_handle, (n,), "int64")
        mem = T.match_buffer(mem_handle, (n, slots), "int64")  # analysis.Analysis's range tables
        lo = T.match_buffer(lo_handle, (n, slots), "int64")
        hi = T.match_buffer(hi_handle, (n, slots), "int64")
        write = T.match_buffer(write_handle, (n, slots), "uint8")
        used = T.match_buffer(used_handle, (n, slots), "uint8")
        pattern = T.match_buffer(pattern_handle, (n, slots, 3), "int64")  # rows, row bytes, stride
        members = T.match_buffer(members_handle, (3, n), "int64")  # scratch: each queue's busy instructions
        result = T.match_buffer(result_handle, (4,), "int64")  # later, earlier, their slots (-1: no race)
        count = T.alloc_buffer((3,), "int64", scope="local")
        head = T.alloc_buffer((3,), "int64", scope="local")  # the next instruction of each queue, in time
        running = T.alloc_buffer((3,), "int64", scope="local")  # each queue's first instruction not ended yet
        pick = T.alloc_buffer((3,), "int64", scope="local")  # queue, instruction (later), the earlier one
        advance = T.alloc_buffer((1,), "int64", scope="local")
        rows = T.alloc_buffer((2,), "int64", scope="local")  # x: later's range, y: earlier's
        width = T.alloc_buffer((2,), "int64", scope="local")
        step = T.alloc_buffer((2,), "int64", scope="local")
        row = T.alloc_buffer((2,), "int64", scope="local")  # the rows the merge below is at
        for q in range(3):
            count[q] = T.int64(0)
            head[q] = T.int64(0)
            running[q] = T.int64(0)
        for i in range(n):  # a queue's instructions run one after another: program order is time order
            if end[i] > start[i]:
                members[queue[i], count[queue[i]]] = i
                count[queue[i]] = count[queue[i]] + 1
        result[0] = T.int64(-1)
        while result[0] < 0 and head[0] + head[1] + head[2] < count[0] + count[1] + count[2]:
            # The later instruction: the earliest (start, index) among the queues' next ones.
            pick[0] = T.int64(-1)
            for q in range(3):
                if head[q] < count[q]:
                    if pick[0] < 0:
                        pick[0] = T.Cast("int64", q)
                        pick[1] = members[q, head[q]]
                    elif (start[members[q, head[q]]] < start[pick[1]]
                          or (start[members[q, head[q]]] == start[pick[1]] and members[q, head[q]] < pick[1])):
                        pick[0] = T.Cast("int64", q)
                        pick[1] = members[q, head[q]]
            head[pick[0]] = head[pick[0]] + 1
            for qa in range(3):  # each other queue's instruction running when it starts, if any
                if result[0] < 0 and T.Cast("int64", qa) != pick[0]:
                    advance[0] = T.int64(1)
                    while advance[0] == 1:  # (TIR's `and` evaluates both sides: no load past the end)
                        advance[0] = T.int64(0)
                        if running[qa] < count[qa]:
                            if end[members[qa, running[qa]]] <= start[pick[1]]:
                                running[qa] = running[qa] + 1
                                advance[0] = T.int64(1)
                    if running[qa] < count[qa]:
                        pick[2] = members[qa, running[qa]]
                        if start[pick[2]] <= start[pick[1]]:
                            for sb, sa in T.grid(slots, slots):
                                b, a = pick[1], pick[2]
                                if (result[0] < 0 and used[b, sb] != T.uint8(0) and used[a, sa] != T.uint8(0)
                                        and mem[b, sb] == mem[a, sa] and write[b, sb] + write[a, sa] != T.uint8(0)
                                        and lo[b, sb] < hi[a, sa] and lo[a, sa] < hi[b, sb]):
                                    # The bounding ranges overlap; do their bytes? A contiguous range is
                                    # one row of hi - lo bytes; rows of both ascend, so one merge decides.
                                    for side in range(2):
                                        i = T.if_then_else(side == 0, b, a)
                                        slot = T.if_then_else(side == 0, sb, sa)
                                        if pattern[i, slot, 0] == 1 or pattern[i, slot, 1] == pattern[i, slot, 2]:
                                            rows[side] = T.int64(1)
                                            width[side] = hi[i, slot] - lo[i, slot]
                                            step[side] = width[side]
                                        else:
                                            rows[side] = pattern[i, slot, 0]
                                            width[side] = pattern[i, slot, 1]
                                            step[side] = pattern[i, slot, 2]
                                        row[side] = T.int64(0)
                                    while result[0] < 0 and row[0] < rows[0] and row[1] < rows[1]:
                                        x0 = lo[b, sb] + row[0] * step[0]
                                        y0 = lo[a, sa] + row[1] * step[1]
                                        if x0 < y0 + width[1] and y0 < x0 + width[0]:
                                            result[0] = b
                                            result[1] = a
                                            result[2] = T.Cast("int64", sb)
                                            result[3] = T.Cast("int64", sa)
                                        elif x0 + width[0] <= y0:
                                            row[0] = row[0] + 1
                                        else:
                                            row[1] = row[1] + 1

    @T.prim_func
    def schedule_queues(queue_handle: T.handle, deps_handle: T.handle, channel_handle: T.handle,
                        cycles_handle: T.handle, order_handle: T.handle, pushed_handle: T.handle,
                        src_handle: T.handle, start_handle: T.handle, end_handle: T.handle, ready_handle: T.handle,
                        waited_handle: T.handle, counts_handle: T.handle, stall_handle: T.handle,
                        state_handle: T.handle):
        T.func_attr({"tir.noalias": True})
        n = T.int64()
        queue = T.match_buffer(queue_handle, (n,), "int64")  # the queued instructions (FINISH excluded)
        deps = T.match_buffer(deps_handle, (n, 4), "uint8")  # pop_prev, pop_next, push_prev, push_next
        channel = T.match_buffer(channel_handle, (3, 4), "int64")  # each queue's flag -> channel (-1: none)
        cycles = T.match_buffer(cycles_handle, (n,), "int64")
        order = T.match_buffer(order_handle, (3, n), "int64")  # scratch: each queue's instructions, in order
        pushed = T.match_buffer(pushed_handle, (4, n), "int64")  # scratch: each channel's pushers, in order
        src = T.match_buffer(src_handle, (2, n), "int64")  # the push each pop consumes (-1: no pop)
        start = T.match_buffer(start_handle, (n,), "int64")
        end = T.match_buffer(end_handle, (n,), "int64")
        ready = T.match_buffer(ready_handle, (n,), "int64")
        waited = T.match_buffer(waited_handle, (n,), "int64")  # the queue whose token came last (-1: none)
        counts = T.match_buffer(counts_handle, (11,), "int64")  # pushes and pops per channel, members per queue
        stall = T.match_buffer(stall_handle, (9,), "int64")  # stall cycles per (waiting queue, queue waited for)
        state = T.match_buffer(state_handle, (4,), "int64")  # 0 / 1 underflow / 2 deadlock, each queue's free
        ptr = T.alloc_buffer((3,), "int64", scope="local")
        left = T.alloc_buffer((3,), "int64", scope="local")  # remaining, progress, blocked
        t = T.alloc_buffer((1,), "int64", scope="local")
        for k in range(11):
            counts[k] = T.int64(0)
        for k in range(9):
            stall[k] = T.int64(0)
        state[0] = T.int64(0)
        # Tokens: each channel is FIFO with one pushing queue, so the k-th pop takes the k-th push.
        for i in range(n):
            order[queue[i], counts[8 + queue[i]]] = i
            counts[8 + queue[i]] = counts[8 + queue[i]] + 1
            for f in range(2):
                if deps[i, 2 + f] != T.uint8(0) and channel[queue[i], 2 + f] >= 0:
                    pushed[channel[queue[i], 2 + f], counts[channel[queue[i], 2 + f]]] = i
                    counts[channel[queue[i], 2 + f]] = counts[channel[queue[i], 2 + f]] + 1
        for i in range(n):
            for f in range(2):
                src[f, i] = T.int64(-1)
                c = channel[queue[i], f]
                if state[0] == 0 and deps[i, f] != T.uint8(0) and c >= 0:
                    if counts[4 + c] >= counts[c]:
                        state[0] = T.int64(1)  # underflow: the Python path names it
                    else:
                        src[f, i] = pushed[c, counts[4 + c]]
                        counts[4 + c] = counts[4 + c] + 1
        # The longest path: each queue advances until an instruction waits for a push not scheduled yet.
        for i in range(n):
            end[i] = T.int64(-1)
        for q in range(3):
            ptr[q] = T.int64(0)
            state[1 + q] = T.int64(0)
        left[0] = T.if_then_else(state[0] == 0, n, T.int64(0))
        while left[0] > 0 and state[0] == 0:
            left[1] = T.int64(0)
            for q in range(3):
                left[2] = T.int64(0)
                while left[2] == 0 and ptr[q] < counts[8 + q]:
                    i = order[q, ptr[q]]
                    t[0] = state[1 + q]
                    for f in range(2):
                        if src[f, i] >= 0:
                            if end[src[f, i]] < 0:
                                left[2] = T.int64(1)
                            else:
                                t[0] = T.max(t[0], end[src[f, i]])
                    if left[2] == 0:
                        start[i] = t[0]
                        end[i] = t[0] + cycles[i]
                        state[1 + q] = end[i]
                        ptr[q] = ptr[q] + 1
                        left[0] = left[0] - 1
                        left[1] = T.int64(1)
            if left[1] == 0:
                state[0] = T.int64(2)  # a deadlock: the Python loop explains it
        # Stalls: ready when the queue's previous instruction ends; the token that came last after that.
        if state[0] == 0:
            for q in range(3):
                for k in range(counts[8 + q]):
                    ready[order[q, k]] = T.if_then_else(k == 0, T.int64(0), end[order[q, T.max(k - 1, 0)]])
            for i in range(n):
                end_a = T.if_then_else(src[0, i] >= 0, end[T.max(src[0, i], 0)], T.int64(-1))
                end_b = T.if_then_else(src[1, i] >= 0, end[T.max(src[1, i], 0)], T.int64(-1))
                why = T.if_then_else(end_b > T.max(ready[i], end_a), src[1, i],
                                     T.if_then_else(end_a > ready[i], src[0, i], T.int64(-1)))
                waited[i] = T.if_then_else(why >= 0, queue[T.max(why, 0)], T.int64(-1))
                if why >= 0:
                    stall[queue[i] * 3 + queue[why]] = stall[queue[i] * 3 + queue[why]] + start[i] - ready[i]

    @T.prim_func
    def report_sums(kind_handle: T.handle, queue_handle: T.handle, layer_handle: T.handle, cycles_handle: T.handle,
                    start_handle: T.handle, end_handle: T.handle, actions_handle: T.handle, unit_handle: T.handle,
                    codes_handle: T.handle, mem_handle: T.handle, lo_handle: T.handle, hi_handle: T.handle,
                    used_handle: T.handle, pattern_handle: T.handle, tensor_handle: T.handle,
                    queue_sums_handle: T.handle, unit_sums_handle: T.handle, layer_sums_handle: T.handle,
                    traffic_handle: T.handle, extremes_handle: T.handle):
        T.func_attr({"tir.noalias": True})
        n, n_actions, classes, slots, tensors, units, layers = (T.int64(), T.int64(), T.int64(), T.int64(), T.int64(),
                                                                T.int64(), T.int64())
        kind = T.match_buffer(kind_handle, (n,), "int64")
        queue = T.match_buffer(queue_handle, (n,), "int64")
        layer = T.match_buffer(layer_handle, (n,), "int64")
        cycles = T.match_buffer(cycles_handle, (n,), "int64")
        start = T.match_buffer(start_handle, (n,), "int64")
        end = T.match_buffer(end_handle, (n,), "int64")
        actions = T.match_buffer(actions_handle, (n, n_actions), "int64")
        unit_of = T.match_buffer(unit_handle, (classes,), "int64")  # class -> unit + 1 (0: none)
        codes = T.match_buffer(codes_handle, (4,), "int64")  # the classes FINISH, LUT.MMA, LOAD, STORE
        mem = T.match_buffer(mem_handle, (n, slots), "int64")  # analysis.Analysis's range tables
        lo = T.match_buffer(lo_handle, (n, slots), "int64")
        hi = T.match_buffer(hi_handle, (n, slots), "int64")
        used = T.match_buffer(used_handle, (n, slots), "uint8")
        pattern = T.match_buffer(pattern_handle, (n, slots, 3), "int64")
        tensor_start = T.match_buffer(tensor_handle, (tensors,), "int64")  # DRAM tensors by address
        queue_sums = T.match_buffer(queue_sums_handle, (3,), "int64")  # busy cycles
        unit_sums = T.match_buffer(unit_sums_handle, (units, 2 + n_actions), "int64")  # count, busy, actions
        layer_sums = T.match_buffer(layer_sums_handle, (layers, 7), "int64")  # count, busy x 3, start, end, first
        traffic = T.match_buffer(traffic_handle, (tensors, 2), "int64")  # bytes loaded, stored
        extremes = T.match_buffer(extremes_handle, (3,), "int64")  # LUT.MMA cycles, scratchpad, accumulator high water
        search = T.alloc_buffer((2,), "int64", scope="local")
        for q in range(3):
            queue_sums[q] = T.int64(0)
            extremes[q] = T.int64(0)
        for u, a in T.grid(units, 2 + n_actions):
            unit_sums[u, a] = T.int64(0)
        for lyr in range(layers):
            for k in range(4):
                layer_sums[lyr, k] = T.int64(0)
            layer_sums[lyr, 4] = T.max_value("int64")
            layer_sums[lyr, 5] = T.min_value("int64")
            layer_sums[lyr, 6] = T.int64(-1)
        for t, d in T.grid(tensors, 2):
            traffic[t, d] = T.int64(0)
        for i in range(n):
            u = unit_of[kind[i]]
            unit_sums[u, 0] = unit_sums[u, 0] + 1
            unit_sums[u, 1] = unit_sums[u, 1] + cycles[i]
            for a in range(n_actions):
                unit_sums[u, 2 + a] = unit_sums[u, 2 + a] + actions[i, a]
            queue_sums[queue[i]] = queue_sums[queue[i]] + cycles[i]
            if kind[i] != codes[0]:  # FINISH belongs to no layer
                lyr = layer[i]
                layer_sums[lyr, 0] = layer_sums[lyr, 0] + 1
                layer_sums[lyr, 1 + queue[i]] = layer_sums[lyr, 1 + queue[i]] + cycles[i]
                layer_sums[lyr, 4] = T.min(layer_sums[lyr, 4], start[i])
                layer_sums[lyr, 5] = T.max(layer_sums[lyr, 5], end[i])
                if layer_sums[lyr, 6] < 0:
                    layer_sums[lyr, 6] = i
            if kind[i] == codes[1]:
                extremes[0] = extremes[0] + cycles[i]
            for s in range(slots):
                if used[i, s] != T.uint8(0):
                    if mem[i, s] == 1:
                        extremes[1] = T.max(extremes[1], hi[i, s])
                    elif mem[i, s] == 2:
                        extremes[2] = T.max(extremes[2], hi[i, s])
            if kind[i] == codes[2] or kind[i] == codes[3]:  # a DMA: its DRAM side (a LOAD's slot 0, a STORE's 1)
                d = T.if_then_else(kind[i] == codes[2], T.int64(0), T.int64(1))
                count_at_most(tensor_start, tensors, lo[i, d], search)  # the tensors starting at or before it
                if search[0] > 0:
                    traffic[search[0] - 1, d] = traffic[search[0] - 1, d] + pattern[i, d, 0] * pattern[i, d, 1]

    @T.prim_func
    def operand_versions(order_handle: T.handle, mem_handle: T.handle, lo_handle: T.handle, hi_handle: T.handle,
                         write_handle: T.handle, used_handle: T.handle, ins_handle: T.handle, slot_handle: T.handle,
                         table_handle: T.handle, query_of_handle: T.handle, ranges_handle: T.handle,
                         versions_handle: T.handle, state_handle: T.handle):
        T.func_attr({"tir.noalias": True})
        n, slots, queries, n_table = T.int64(), T.int64(), T.int64(), T.int64()
        order = T.match_buffer(order_handle, (n,), "int64")  # instructions in execution order
        mem = T.match_buffer(mem_handle, (n, slots), "int64")  # analysis.Analysis's range tables
        lo = T.match_buffer(lo_handle, (n, slots), "int64")
        hi = T.match_buffer(hi_handle, (n, slots), "int64")
        write = T.match_buffer(write_handle, (n, slots), "uint8")
        used = T.match_buffer(used_handle, (n, slots), "uint8")
        ins = T.match_buffer(ins_handle, (queries,), "int64")  # the reads asked about: instruction, range slot
        slot = T.match_buffer(slot_handle, (queries,), "int64")
        table = T.match_buffer(table_handle, (n_table, 4), "int64")  # scratch, zeros: memory + 1, lo, hi, range
        query_of = T.match_buffer(query_of_handle, (n, slots), "int64")  # scratch: the query of each range slot
        # scratch: row d, the distinct range d (memory, lo, hi, its last write); column 4, query d's range
        ranges = T.match_buffer(ranges_handle, (queries, 5), "int64")
        versions = T.match_buffer(versions_handle, (queries,), "int64")
        state = T.match_buffer(state_handle, (2,), "int64")  # in: the most write x range tests; out: 1 = too many
        count = T.alloc_buffer((2,), "int64", scope="local")  # distinct ranges, writes
        probe = T.alloc_buffer((2,), "int64", scope="local")  # table slot, found
        # The distinct (memory, lo, hi) ranges read, by open addressing (n_table: a power of two > queries).
        count[0] = T.int64(0)
        for r, s in T.grid(n, slots):
            query_of[r, s] = T.int64(-1)
        for q in range(queries):
            i, s = ins[q], slot[q]
            query_of[i, s] = q
            probe[0] = range_hash(mem[i, s], lo[i, s], hi[i, s], n_table)
            probe[1] = T.int64(0)
            while probe[1] == 0:
                if table[probe[0], 0] == 0:  # a new range
                    table[probe[0], 0] = mem[i, s] + 1
                    table[probe[0], 1] = lo[i, s]
                    table[probe[0], 2] = hi[i, s]
                    table[probe[0], 3] = count[0]
                    ranges[count[0], 0] = mem[i, s]
                    ranges[count[0], 1] = lo[i, s]
                    ranges[count[0], 2] = hi[i, s]
                    ranges[count[0], 3] = T.int64(-1)
                    count[0] = count[0] + 1
                    probe[1] = T.int64(1)
                elif (table[probe[0], 0] == mem[i, s] + 1 and table[probe[0], 1] == lo[i, s]
                      and table[probe[0], 2] == hi[i, s]):
                    probe[1] = T.int64(1)
                else:
                    probe[0] = T.bitwise_and(probe[0] + 1, n_table - 1)
            ranges[q, 4] = table[probe[0], 3]
        count[1] = T.int64(0)
        for r, s in T.grid(n, slots):
            if used[r, s] != T.uint8(0) and write[r, s] != T.uint8(0):
                count[1] = count[1] + 1
        state[1] = T.if_then_else(count[0] * count[1] > state[0], T.int64(1), T.int64(0))
        if state[1] == 0:
            # In execution order: an instruction's reads take the last overlapping write so far,
            # then its writes become the last write of every range they overlap.
            for j in range(n):
                for s in range(slots):
                    if query_of[order[j], s] >= 0:
                        versions[query_of[order[j], s]] = ranges[ranges[query_of[order[j], s], 4], 3]
                for s in range(slots):
                    i = order[j]
                    if used[i, s] != T.uint8(0) and write[i, s] != T.uint8(0):
                        for d in range(count[0]):
                            if ranges[d, 0] == mem[i, s] and ranges[d, 1] < hi[i, s] and lo[i, s] < ranges[d, 2]:
                                ranges[d, 3] = j
            for q in range(queries):  # a read asked about twice: its slot's answer
                versions[q] = versions[query_of[ins[q], slot[q]]]

    @T.prim_func
    def decode_fields(words_handle: T.handle, order_handle: T.handle, kind_handle: T.handle, word_handle: T.handle,
                      shift_handle: T.handle, mask_handle: T.handle, hi_word_handle: T.handle, hi_shift_handle: T.handle,
                      most_handle: T.handle, operands_handle: T.handle, used_handle: T.handle, fields_handle: T.handle,
                      bad_handle: T.handle):
        T.func_attr({"tir.noalias": True})
        n, classes, width, slots = T.int64(), T.int64(), T.int64(), T.int64()
        words = T.match_buffer(words_handle, (n, 4), "uint64")  # the 32-byte instructions as four 64-bit words
        order = T.match_buffer(order_handle, (n,), "int64")
        kind = T.match_buffer(kind_handle, (n,), "int64")  # class codes (-1: unknown opcode, not decoded)
        word = T.match_buffer(word_handle, (classes, width), "int64")  # per class and field: where it sits
        shift = T.match_buffer(shift_handle, (classes, width), "uint64")
        mask = T.match_buffer(mask_handle, (classes, width), "uint64")
        hi_word = T.match_buffer(hi_word_handle, (classes, width), "int64")  # -1: within one word
        hi_shift = T.match_buffer(hi_shift_handle, (classes, width), "uint64")
        most = T.match_buffer(most_handle, (classes, width), "uint64")  # the largest legal value
        operands = T.match_buffer(operands_handle, (classes, slots, 4), "int64")  # space, addr, dtype, bcast fields
        used = T.match_buffer(used_handle, (classes, 4), "uint64")  # the bits an encoding may set
        fields = T.match_buffer(fields_handle, (width, n), "uint64")
        bad = T.match_buffer(bad_handle, (n,), "uint8")
        flag = T.alloc_buffer((1,), "uint8", scope="local")
        value = T.alloc_buffer((1,), "uint64", scope="local")
        for j in range(n):
            i = order[j]
            c = kind[i]
            flag[0] = T.uint8(0)
            if c >= 0:
                for w in range(4):
                    if (words[i, w] & ~used[c, w]) != T.uint64(0):
                        flag[0] = T.uint8(1)
                for f in range(width):
                    value[0] = (words[i, word[c, f]] >> shift[c, f]) & mask[c, f]
                    if hi_word[c, f] >= 0:
                        value[0] = value[0] | ((words[i, hi_word[c, f]] << hi_shift[c, f]) & mask[c, f])
                    fields[f, j] = value[0]
                    if value[0] > most[c, f]:
                        flag[0] = T.uint8(1)
                for o in range(slots):
                    if operands[c, o, 0] >= 0:
                        if fields[operands[c, o, 0], j] == T.uint64(0):
                            if (fields[operands[c, o, 1], j] | fields[operands[c, o, 2], j]
                                    | fields[operands[c, o, 3], j]) != T.uint64(0):
                                flag[0] = T.uint8(1)
            bad[j] = flag[0]

    def executor(table: str, acc_type: str):
        # Offsets read from the op table are bound with T.let: an annotated `x: T.int64 = ...`
        # is a mutable variable, and buffers declared over one fail TVM's StorageRewrite. The
        # accumulator is allocated once, outside the loops (inside, it is not a register).
        @T.macro
        def copy_rows(src_data, dst_data, src_off, dst_off, rows, row_bytes, src_stride, dst_stride):
            src = T.decl_buffer((rows, row_bytes), "uint8", data=src_data, elem_offset=src_off, strides=(src_stride, 1))
            dst = T.decl_buffer((rows, row_bytes), "uint8", data=dst_data, elem_offset=dst_off, strides=(dst_stride, 1))
            for r, b in T.grid(rows, row_bytes):
                dst[r, b] = src[r, b]

        @T.prim_func
        def func(dram_handle: T.handle, sp_handle: T.handle, acc8_handle: T.handle, acc_handle: T.handle,
                 f32_handle: T.handle, t_handle: T.handle, products_handle: T.handle, ops_handle: T.handle,
                 imm_handle: T.handle, first: T.int64, end: T.int64):
            dram_size, sp_size, acc8_size, products_size = T.int64(), T.int64(), T.int64(), T.int64()
            acc_size, f32_size, t_size, n_ops = T.int64(), T.int64(), T.int64(), T.int64()
            dram = T.match_buffer(dram_handle, (dram_size,), "uint8")
            sp = T.match_buffer(sp_handle, (sp_size,), "uint8")
            acc8 = T.match_buffer(acc8_handle, (acc8_size,), "uint8")  # the accumulator's bytes, for DMAs
            acc = T.match_buffer(acc_handle, (acc_size,), acc_type)
            f32 = T.match_buffer(f32_handle, (f32_size,), "float32")  # the scratchpad, as f32
            arena = T.match_buffer(t_handle, (t_size,), table)  # byte-sum tables, back to back
            products = T.match_buffer(products_handle, (products_size,), "float32")  # MMA products (exact integers)
            ops = T.match_buffer(ops_handle, (n_ops, RUN_OP_FIELDS), "int64")
            imms = T.match_buffer(imm_handle, (n_ops,), "float32")
            total = T.alloc_buffer((1,), table, scope="local")
            for o in T.serial(first, end):
                if ops[o, 0] == RUN_LUT_MMA:  # weights, dst, rows, cols, planes, k8, table (element offsets)
                    w_off: T.let[T.int64] = ops[o, 1]
                    out_off: T.let[T.int64] = ops[o, 2]
                    rows: T.let[T.int64] = ops[o, 3]
                    cols: T.let[T.int64] = ops[o, 4]
                    planes: T.let[T.int64] = ops[o, 5]
                    k8: T.let[T.int64] = ops[o, 6]
                    t_off: T.let[T.int64] = ops[o, 7]
                    weights = T.decl_buffer((planes, cols, k8), "uint8", data=sp.data, elem_offset=w_off)
                    out = T.decl_buffer((rows, cols), acc_type, data=acc.data, elem_offset=out_off)
                    tables = T.decl_buffer((rows, planes * k8 * 256), table, data=arena.data, elem_offset=t_off)
                    for r, c in T.grid(rows, cols):
                        total[0] = T.Cast(table, 0)
                        for i, b in T.grid(planes, k8):
                            total[0] = total[0] + byte_lookup(tables, weights, r, c, i, b, k8)
                        out[r, c] = T.Cast(acc_type, total[0])
                elif ops[o, 0] == RUN_COPY:  # a DMA: direction, src, dst (byte offsets), rows, row bytes, strides
                    direction: T.let[T.int64] = ops[o, 1]
                    src_off: T.let[T.int64] = ops[o, 2]
                    dst_off: T.let[T.int64] = ops[o, 3]
                    n_rows: T.let[T.int64] = ops[o, 4]
                    row_bytes: T.let[T.int64] = ops[o, 5]
                    src_stride: T.let[T.int64] = ops[o, 6]
                    dst_stride: T.let[T.int64] = ops[o, 7]
                    if direction == COPY_DRAM_SP:
                        copy_rows(dram.data, sp.data, src_off, dst_off, n_rows, row_bytes, src_stride, dst_stride)
                    elif direction == COPY_DRAM_ACC:
                        copy_rows(dram.data, acc8.data, src_off, dst_off, n_rows, row_bytes, src_stride, dst_stride)
                    elif direction == COPY_SP_DRAM:
                        copy_rows(sp.data, dram.data, src_off, dst_off, n_rows, row_bytes, src_stride, dst_stride)
                    else:
                        copy_rows(acc8.data, dram.data, src_off, dst_off, n_rows, row_bytes, src_stride, dst_stride)
                elif ops[o, 0] == RUN_CAST:  # an MMA's store: products (f32 elements), dst (accumulator elements), count
                    p_off: T.let[T.int64] = ops[o, 1]
                    a_off: T.let[T.int64] = ops[o, 2]
                    count: T.let[T.int64] = ops[o, 3]
                    source = T.decl_buffer((count,), "float32", data=products.data, elem_offset=p_off)
                    target = T.decl_buffer((count,), acc_type, data=acc.data, elem_offset=a_off)
                    for e in T.serial(count):
                        target[e] = T.Cast(acc_type, source[e])
                else:  # VEC.DEQ, as deq(): a (accumulator), b, c, dst (scratchpad f32), rows, cols, accumulate
                    a_off: T.let[T.int64] = ops[o, 1]
                    b_off: T.let[T.int64] = ops[o, 2]
                    c_off: T.let[T.int64] = ops[o, 3]
                    d_off: T.let[T.int64] = ops[o, 4]
                    drows: T.let[T.int64] = ops[o, 5]
                    dcols: T.let[T.int64] = ops[o, 6]
                    accum: T.let[T.int64] = ops[o, 7]
                    imm: T.let[T.float32] = imms[o]
                    a = T.decl_buffer((drows, dcols), acc_type, data=acc.data, elem_offset=a_off)
                    b = T.decl_buffer((2, dcols), "float32", data=f32.data, elem_offset=b_off)
                    c = T.decl_buffer((2, drows), "float32", data=f32.data, elem_offset=c_off)
                    dst = T.decl_buffer((drows, dcols), "float32", data=f32.data, elem_offset=d_off)
                    if accum != 0:  # the choice outside the loops, which then vectorize
                        for r, col in T.grid(drows, dcols):
                            dst[r, col] = dst[r, col] + deq_term(a, b, c, r, col, imm)
                    else:
                        for r, col in T.grid(drows, dcols):
                            dst[r, col] = deq_term(a, b, c, r, col, imm)

        return func

    funcs = {f"lut_mma_{t}_{o}": lut_mma(t, o) for t in LUT_TABLE_TYPES for o in LUT_OUT_TYPES}
    funcs.update({f"executor_{t}_{a}": executor(t, a) for t in LUT_TABLE_TYPES for a in RUN_ACC_TYPES})
    funcs["first_uninitialized"] = first_uninitialized
    funcs["first_race"] = first_race
    funcs["schedule_queues"] = schedule_queues
    funcs["decode_fields"] = decode_fields
    funcs["report_sums"] = report_sums
    funcs["operand_versions"] = operand_versions
    funcs.update({f"byte_sums_{t}_{g}_{int(sym)}": byte_sums(t, g, sym)
                  for t in LUT_TABLE_TYPES for g in LUT_GROUPS for sym in (False, True)})
    funcs.update({f"deq_{a}_{int(accum)}": deq(a, accum) for a in DEQ_A_TYPES for accum in (False, True)})
    return {name: f.with_attr("global_symbol", name) for name, f in funcs.items()}


def _plain_kernel(name: str) -> Callable:
    """The SimKernels accessor of kernel `name`, which has no type variants."""
    def get(self) -> Callable:
        return self._func((name,), lambda: name)

    get.__name__ = name
    return get


class SimKernels:
    """The loaded kernel library: `lut_mma`, `byte_sums`, `deq` and the others give the
    compiled functions (TVM FFI functions), by NumPy dtype where they have variants. They take
    NumPy arrays, or `tensor(array)`: the same memory as an FFI tensor, made once instead of
    converted on every call (~0.5 us an operand)."""

    def __init__(self, module, origin: str):
        from tvm_ffi import from_dlpack

        self.tensor = from_dlpack
        self._module = module
        self.origin = origin  # where the library came from: its path, or "built in this process"
        self._funcs: dict[tuple, Callable | None] = {}  # by dtype numbers: dtype.name is slow

    def _func(self, key: tuple, name: Callable[[], str | None]) -> Callable | None:
        if key not in self._funcs:
            found = name()
            self._funcs[key] = None if found is None else self._module[found]
        return self._funcs[key]

    def lut_mma(self, table: np.dtype, out: np.dtype) -> Callable | None:
        return self._func(("lut_mma", table.num, out.num), lambda: f"lut_mma_{table.name}_{out.name}"
                          if table.name in LUT_TABLE_TYPES and out.name in LUT_OUT_TYPES else None)

    def byte_sums(self, table: np.dtype, group: int, sym: bool) -> Callable | None:
        return self._func(("byte_sums", table.num, group, sym), lambda: f"byte_sums_{table.name}_{group}_{int(sym)}"
                          if table.name in LUT_TABLE_TYPES and group in LUT_GROUPS else None)

    # The kernels with no type variants: `compiled.first_race()` etc.
    first_uninitialized = _plain_kernel("first_uninitialized")
    first_race = _plain_kernel("first_race")
    schedule_queues = _plain_kernel("schedule_queues")
    decode_fields = _plain_kernel("decode_fields")
    report_sums = _plain_kernel("report_sums")
    operand_versions = _plain_kernel("operand_versions")

    def executor(self, table: np.dtype, acc: np.dtype) -> Callable | None:
        return self._func(("executor", table.num, acc.num), lambda: f"executor_{table.name}_{acc.name}"
                          if table.name in LUT_TABLE_TYPES and acc.name in RUN_ACC_TYPES else None)

    def deq(self, a: np.dtype, accum: bool) -> Callable | None:
        return self._func(("deq", a.num, accum), lambda: f"deq_{a.name}_{int(accum)}" if a.name in DEQ_A_TYPES else None)


def cache_dir() -> Path:
    explicit = os.environ.get("LUTC_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lutc"


def library_path() -> Path:
    """The cached library for this kernel source, TVM version and machine."""
    key = hashlib.sha256()
    key.update(Path(__file__).read_bytes())  # any change to the kernels makes a new library
    key.update(importlib.metadata.version("apache-tvm").encode())
    key.update(f"{platform.system()}-{platform.machine()}".encode())
    return cache_dir() / f"sim-kernels-{key.hexdigest()[:16]}.so"


def _load_runtime() -> None:
    """Load TVM's runtime library the way `import tvm` does (exported kernels call into it),
    without importing TVM's Python package and compiler."""
    from tvm_ffi.libinfo import load_lib_ctypes

    spec = importlib.util.find_spec("tvm")  # locates the package without running it
    lib_dirs = [Path(p) / "lib" for p in (spec.submodule_search_locations or [])] if spec else []
    load_lib_ctypes("tvm", "tvm_runtime", "RTLD_GLOBAL", extra_lib_paths=lib_dirs)


def _load(path: Path) -> SimKernels:
    import tvm_ffi

    _load_runtime()
    return SimKernels(tvm_ffi.load_module(str(path)), str(path))


def _build(path: Path) -> SimKernels:
    import tvm

    module = tvm.tirx.build(tvm.IRModule(_tir_functions()), target=tvm.target.Target({"kind": "llvm"}))
    try:
        _export(module, path)
    except Exception:  # no C toolchain, or a read-only cache: use the module built here
        return SimKernels(module, "built in this process")
    return SimKernels(module, str(path))


def _export(module, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, partial_path = tempfile.mkstemp(dir=path.parent, suffix=".so")
    os.close(fd)
    try:
        module.export_library(partial_path)
        os.replace(partial_path, path)  # atomic: a concurrent process sees no file or the whole file
    finally:
        Path(partial_path).unlink(missing_ok=True)


_lock = threading.Lock()
_loaded: list = []  # [SimKernels | None] once tried
unavailable_reason: str | None = None


def is_loaded() -> bool:
    """Whether this process has the kernels already (so using them costs nothing more)."""
    return bool(_loaded) and _loaded[0] is not None


def sim_kernels() -> SimKernels | None:
    """The compiled kernels (loaded, or built and cached, on the first call in a process), or
    None if TVM cannot provide them (`unavailable_reason` says why)."""
    global unavailable_reason
    with _lock:
        if not _loaded:
            try:
                path = library_path()
                try:
                    kernels = _load(path) if path.exists() else None
                except Exception:  # a library this TVM cannot load: build it again
                    kernels = None
                kernels = kernels or _build(path)
            except Exception as err:  # TVM missing or broken: the NumPy path is complete without it
                kernels, unavailable_reason = None, f"{type(err).__name__}: {err}"
            _loaded.append(kernels)
        return _loaded[0]
