"""Which bytes are written when, worked out before a run: uninitialized reads, unwritten outputs,
operand versions.

Every instruction's byte ranges are static (`analysis.analyze`) and so is the execution order
(the schedule), so the simulator's hot loop keeps no written flags: these functions answer,
from the ranges alone, which read first sees a byte nothing wrote, which output bytes no
write covers, and which write a read sees (its *version*: two reads of a range with the same
version see the same bytes, which the instruction functions use to share work).
"""

from __future__ import annotations

import bisect
import threading

import numpy as np

from lutc.backends.accel.analysis import RANGES, SLOT_ROLES, Analysis, is_strided, write_runs
from lutc.backends.accel.isa import Load, Store
from lutc.backends.accel.kernels import SimKernels
from lutc.backends.accel.program import MEM_DRAM, MEM_NAMES

_MEM_TITLES = ("DRAM", "scratchpad", "accumulator buffer")


def _inside(lo: np.ndarray, hi: np.ndarray, ranges: list[tuple[int, int]]) -> np.ndarray:
    """Whether each [lo, hi) lies inside one of the disjoint `ranges`."""
    if not ranges:
        return np.zeros(len(lo), dtype=bool)
    starts, ends = (np.array(v, dtype=np.int64) for v in zip(*sorted(ranges)))
    k = np.searchsorted(starts, lo, side="right") - 1
    return (k >= 0) & (hi <= ends[np.maximum(k, 0)])


def _flag_view(flags: np.ndarray, lo: int, hi: int, rows: int, row_bytes: int, stride: int) -> np.ndarray:
    if rows == 1 or row_bytes == stride:
        return flags[lo:hi]
    return np.ndarray((rows, row_bytes), dtype=flags.dtype, buffer=flags, offset=lo, strides=(stride, 1))


def _execution_order(pos: np.ndarray) -> np.ndarray:
    """The instructions in execution order, from each one's execution position."""
    order = np.empty(len(pos), dtype=np.int64)
    order[pos] = np.arange(len(pos))
    return order


def check_written(an: Analysis, pos: np.ndarray, preloaded: list[tuple[int, int]],
                  compiled: SimKernels | None = None) -> tuple[tuple | None, list[tuple[str, int]]]:
    """(first_uninitialized_read, unwritten_outputs): the first read of a byte nothing wrote
    before, and the output bytes nothing writes, for execution order `pos` and the DRAM ranges
    `preloaded` (inputs and weights).

    With the compiled kernels, one walk (kernels.first_uninitialized) answers both: every used
    range of every instruction in execution order over one written flag per byte (no NumPy
    sorting or deduplication of the ranges first: the kernel skips a range it found all written
    before), then the outputs read off the flags. Without them, the NumPy functions below (the
    reference; tests compare the two)."""
    walk = compiled and compiled.first_uninitialized()
    if not walk:
        return first_uninitialized_read(an, pos, preloaded), unwritten_outputs(an, preloaded)
    order = _execution_order(pos)
    pre_lo, pre_hi = _disjoint(preloaded)
    # Flags for the scratchpad, the accumulator buffer, and the DRAM tensors not wholly preloaded
    # (the walk skips DRAM ranges inside preloaded data: each lies inside one tensor, validated).
    starts, ends = pre_lo.tolist(), pre_hi.tolist()
    open_tensors = [t for t in an.program.tensors if not _inside_runs(starts, ends, t.addr, t.end)]
    dram_lo = min((t.addr for t in open_tensors), default=0)
    dram_size = max((t.end for t in open_tensors), default=0) - dram_lo
    sp_size = an.config.scratchpad.size_bytes
    total = dram_size + sp_size + an.config.accumulator.size_bytes
    flags = _zeroed("flags", (total + 7) // 8)  # a bit a byte: an eighth of the memory traffic
    base = np.array([-dram_lo, dram_size, dram_size + sp_size], dtype=np.int64)  # flag of byte x: bit base[mem] + x
    whole = {(t.addr, t.end) for t in an.program.tensors}
    for a, b in preloaded:
        if (a, b) not in whole:  # part of a tensor: a read may straddle it, so its flags are set
            _set_bits(flags, a - dram_lo, b - dram_lo)
    result = np.empty(2, dtype=np.int64)
    done = _zeroed("done", _DONE_SLOTS * 5, np.int64).reshape(_DONE_SLOTS, 5)
    walk(order, an.mem, an.lo, an.hi, an.write.view(np.uint8), an.used.view(np.uint8), an.pattern, base, pre_lo,
         pre_hi, flags, done, result)
    if result[0] >= 0:
        p, slot = result.tolist()
        i = int(order[p])
        m, a, b = int(an.mem[i, slot]), int(an.lo[i, slot]), int(an.hi[i, slot])
        rows, row_bytes, stride = an.pattern[i, slot].tolist()
        start = int(base[m]) + a
        found = np.unpackbits(flags[start // 8:(start + b - a + 7) // 8 + 1], bitorder="little")[start % 8:]
        found = _flag_view(found, 0, b - a, rows, row_bytes, stride)  # as the read found them
        uninit = (p, i, _uninitialized_message(an, i, slot, m, a, b, a + _first_zero(found, row_bytes, stride)))
        return uninit, unwritten_outputs(an, preloaded)  # the walk stopped: the flags do not have every write
    missing = []
    for t in an.program.outputs:
        if not _inside_runs(starts, ends, t.addr, t.end):
            first = _first_unset(flags, t.addr - dram_lo, t.end - dram_lo)
            if first is not None:
                missing.append((t.name, t.addr + first))
    return None, missing


def _set_bits(bits: np.ndarray, lo: int, hi: int) -> None:
    """Set bits [lo, hi) of a little-endian bit array."""
    if lo >= hi:
        return
    a, b = lo // 8, (hi + 7) // 8
    chunk = np.unpackbits(bits[a:b], bitorder="little")
    chunk[lo - 8 * a:hi - 8 * a] = 1
    bits[a:b] = np.packbits(chunk, bitorder="little")


def _first_unset(bits: np.ndarray, lo: int, hi: int) -> int | None:
    """The offset from lo of the first 0 among bits [lo, hi) of a little-endian bit array, or None."""
    a, b = lo // 8, (hi + 7) // 8
    if b - a > 2 and bits[a + 1:b - 1].min() == 255:  # the whole bytes are set: look at the two edge bytes
        edges = np.unpackbits(bits[[a, b - 1]], bitorder="little")
        if edges[lo - 8 * a:8].all() and edges[8:8 + hi - 8 * (b - 1)].all():
            return None
    unpacked = np.unpackbits(bits[a:b], bitorder="little")[lo - 8 * a:hi - 8 * a]
    return None if unpacked.all() else int(np.argmin(unpacked))


def _disjoint(ranges: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """The union of byte ranges as sorted disjoint [lo, hi) runs, two arrays (an empty union as
    the run [-1, -1), which contains nothing: the kernels take no empty arrays)."""
    runs: list[list[int]] = [[-1, -1]]
    for a, b in sorted(ranges):
        if a <= runs[-1][1]:
            runs[-1][1] = max(runs[-1][1], b)
        elif a < b:
            runs.append([a, b])
    return (np.array([r[0] for r in runs], dtype=np.int64), np.array([r[1] for r in runs], dtype=np.int64))


def _inside_runs(starts: list[int], ends: list[int], lo: int, hi: int) -> bool:
    """Whether [lo, hi) lies inside one of the sorted disjoint runs."""
    k = bisect.bisect_right(starts, lo) - 1
    return k >= 0 and hi <= ends[k]


_SCRATCH = threading.local()  # each thread's flag buffer and walk table, reused
_SCRATCH_KEPT = 64 << 20  # larger buffers are not kept
_DONE_SLOTS = 4096  # the walk's table of ranges walked already (a power of two)


def _zeroed(name: str, size: int, dtype=np.uint8) -> np.ndarray:
    """`size` zeroed elements, from a buffer kept between calls: fresh pages fault when first
    touched, ~1 us a 4 KiB page on the development VM, where zeroing one costs ~0.1 us."""
    buffer = getattr(_SCRATCH, name, None)
    if buffer is None or len(buffer) < size:
        buffer = np.zeros(size, dtype=dtype)
        if buffer.nbytes <= _SCRATCH_KEPT:
            setattr(_SCRATCH, name, buffer)
        return buffer
    zeroed = buffer[:size]
    zeroed.fill(0)
    return zeroed


def _first_zero(flags: np.ndarray, row_bytes: int, stride: int) -> int:
    """The byte offset of the first 0 in a _flag_view (2-D: rows `stride` apart)."""
    bad = int(np.argmin(flags.reshape(-1)))
    if flags.ndim == 2:
        row, col = divmod(bad, row_bytes)
        bad = row * stride + col
    return bad


def first_uninitialized_read(an: Analysis, pos: np.ndarray, preloaded: list[tuple[int, int]]):
    """(execution position, instruction, message) of the first read of a byte nothing wrote before, or None.

    Needs no data: byte ranges and the execution order (`pos`) are static. It walks, in
    execution order (an instruction's reads before its writes), only the first occurrence of
    each distinct read or write range, over one written flag per byte: a later occurrence
    of a range cannot fail where the first passed, since written flags never revert.
    """
    # The used ranges in execution order, with no sort: the instructions' rows taken in
    # execution order, so a flat nonzero lists them by (position, slot).
    order = _execution_order(pos)
    p, slot = np.divmod(np.flatnonzero(an.used[order]), RANGES)
    ins = order[p]
    flat = ins * RANGES + slot  # into the (n, RANGES) tables, raveled
    mem, lo, hi, write = an.mem.ravel()[flat], an.lo.ravel()[flat], an.hi.ravel()[flat], an.write.ravel()[flat]
    pat = an.pattern.reshape(-1, 3)[flat]
    reads = ~write & ~((mem == MEM_DRAM) & _inside(lo, hi, preloaded))  # inputs and weights are written
    if not reads.any():
        return None
    # Flags are kept per segment: the scratchpad, the accumulator buffer, and each DRAM tensor
    # (every DRAM range lies inside one: validated), so a few read activations between megabytes
    # of weights need flags for those activations only.
    tensors = an.program.tensors
    segment = mem.copy()
    dram = mem == MEM_DRAM
    if (reads & dram).any():  # else no DRAM byte needs a flag: DRAM ranges keep segment MEM_DRAM, unwatched
        starts = np.array(sorted(t.addr for t in tensors), dtype=np.int64)
        segment[dram] = len(_MEM_TITLES) + np.searchsorted(starts, lo[dram], side="right") - 1
    watched = np.zeros(len(_MEM_TITLES) + len(tensors), dtype=bool)
    watched[segment[reads]] = True  # writes to segments nobody reads need no flags
    sel = np.flatnonzero(reads | (write & watched[segment]))
    first = _first_of_each(np.stack([mem[sel] * 2 + write[sel], lo[sel], hi[sel] - lo[sel], pat[sel, 0], pat[sel, 2]]))
    events = sel[first]  # each distinct range's earliest occurrence, in (position, slot) order
    events = events[np.argsort(p[events] * (2 * RANGES) + write[events] * RANGES + slot[events], kind="stable")]
    ev_seg, ev_lo, ev_hi = segment[events], lo[events], hi[events]
    # Flags only for the bytes some event touches: [base, end) of each watched segment.
    base, size = [0] * len(watched), [0] * len(watched)
    for m in np.flatnonzero(watched).tolist():
        on = ev_seg == m
        base[m] = int(ev_lo[on].min())
        size[m] = int(ev_hi[on].max()) - base[m]
    written = [np.zeros(s, dtype=bool) for s in size]
    for m in np.flatnonzero(watched[len(_MEM_TITLES):]).tolist():
        m += len(_MEM_TITLES)  # a DRAM tensor that is read: the preloaded part of it (if any) is written
        for a, b in preloaded:
            a, b = max(a - base[m], 0), min(b - base[m], size[m])
            if a < b:
                written[m][a:b] = True
    ev_pat, ev_write = pat[events], write[events]
    k = _walk(written, base, ev_seg, ev_lo, ev_hi, ev_pat, ev_write)
    if k is None:
        return None
    e, m, a, b = int(events[k]), int(ev_seg[k]), int(ev_lo[k]), int(ev_hi[k])
    rows, row_bytes, stride = ev_pat[k].tolist()
    flags = _flag_view(written[m], a - base[m], b - base[m], rows, row_bytes, stride)  # as the failing read found them
    i = int(ins[e])
    byte = a + _first_zero(flags, row_bytes, stride)
    return int(p[e]), i, _uninitialized_message(an, i, int(slot[e]), int(mem[e]), a, b, byte)


def _walk(written: list, base: list, ev_seg, ev_lo, ev_hi, ev_pat, ev_write) -> int | None:
    """The first event that reads a flag nothing set (writes set theirs, in order), or None."""
    all_set = np.logical_and.reduce  # ndarray.all() without its Python-level wrapper
    for k, (m, a, b, (rows, row_bytes, stride), writes) in enumerate(zip(
            ev_seg.tolist(), ev_lo.tolist(), ev_hi.tolist(), ev_pat.tolist(), ev_write.tolist())):
        flags = _flag_view(written[m], a - base[m], b - base[m], rows, row_bytes, stride)
        if writes:
            flags[...] = True
        elif not all_set(flags, axis=None):
            return k
    return None


def _pack(keys: np.ndarray) -> np.ndarray | None:
    """Each column of the integer (k, m) `keys` as one int64 with the same order and equality, when
    the fields are non-negative and fit in 63 bits together (they do for real memory sizes); else None."""
    if not keys.shape[1] or keys.min() < 0:
        return None
    widths = [int(row.max()).bit_length() for row in keys]
    if sum(widths) > 63:
        return None
    packed = np.zeros(keys.shape[1], dtype=np.int64)
    for row, w in zip(keys, widths):
        packed = (packed << w) | row
    return packed


def _first_of_each(keys: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each distinct column of the integer (k, m) `keys`, ascending."""
    if not keys.shape[1]:
        return np.zeros(0, dtype=np.int64)
    packed = _pack(keys)
    if packed is not None:  # one stable sort instead of a k-key lexsort
        perm = np.argsort(packed, kind="stable")
        ordered = packed[perm]
        new = np.ones(len(perm), dtype=bool)
        new[1:] = ordered[1:] != ordered[:-1]
    else:
        perm = np.lexsort(tuple(keys[::-1]))  # stable: ties keep their order
        ordered = keys[:, perm]
        new = np.ones(len(perm), dtype=bool)
        new[1:] = (ordered[:, 1:] != ordered[:, :-1]).any(axis=0)
    return np.sort(perm[new])


def _uninitialized_message(an: Analysis, i: int, slot: int, m: int, lo: int, hi: int, byte: int) -> str:
    instr = an.program.instruction(i)
    if isinstance(instr, (Load, Store)):
        if is_strided(an.pattern[i, :2]).any():
            return f"read of uninitialized {_MEM_TITLES[m]}: src byte {byte:#x} was never written"
        return f"read of uninitialized {_MEM_TITLES[m]}: src [{lo:#x}..{hi:#x}) byte {byte:#x} was never written"
    role = SLOT_ROLES[type(instr)][slot]
    return f"read of uninitialized {_MEM_TITLES[m]}: {role} {MEM_NAMES[m]}[{lo:#x}..{hi:#x}) byte {byte:#x} was never written"


def unwritten_outputs(an: Analysis, preloaded: list[tuple[int, int]]) -> list[tuple[str, int]]:
    """[(output tensor, its first byte that neither the initial image nor any write covers)]."""
    outs = an.program.outputs
    if not outs:
        return []
    run_lo, run_hi = write_runs(an, MEM_DRAM, preloaded)
    missing = []
    for t in outs:
        k = int(np.searchsorted(run_lo, t.addr, side="right")) - 1
        reach = int(run_hi[k]) if k >= 0 else t.addr
        if reach < t.end:
            missing.append((t.name, max(reach, t.addr)))
    return missing


def writes_in_order(an: Analysis, pos: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every write range in execution order: (memory, lo, hi, execution position)."""
    wi, ws = np.nonzero(an.used & an.write)
    by_time = np.argsort(pos[wi], kind="stable")
    wi, ws = wi[by_time], ws[by_time]
    return an.mem[wi, ws], an.lo[wi, ws], an.hi[wi, ws], pos[wi]


def read_versions(an: Analysis, pos: np.ndarray, idx: np.ndarray, slot,
                  compiled: SimKernels | None = None) -> np.ndarray:
    """For range `slot` (one, or one per instruction) of instructions `idx`: the execution position of
    the last write before it that overlaps the range (-1: none). Two reads of a range with the same
    version see the same bytes. With the compiled kernels, one pass (kernels.operand_versions)
    unless the distinct ranges read times the writes are too many for it; else NumPy."""
    kernel = compiled and compiled.operand_versions()
    if kernel and len(idx):
        found = _versions_compiled(kernel, an, pos, idx, slot)
        if found is not None:
            return found
    wm, wl, wh, wp = writes_in_order(an, pos)
    m, lo, hi, p = an.mem[idx, slot], an.lo[idx, slot], an.hi[idx, slot], pos[idx]
    read_mem = np.zeros(len(MEM_NAMES), dtype=bool)
    read_mem[m] = True
    if not read_mem[wm].all():  # only writes to the memories read can overlap (MMA operands: not DRAM stores)
        keep = read_mem[wm]
        wm, wl, wh, wp = wm[keep], wl[keep], wh[keep], wp[keep]
    if not len(wp):
        return np.full(len(idx), -1, dtype=np.int64)
    before = np.searchsorted(wp, p) - 1  # the writes executed before each read: wp[:before + 1]
    if len(idx) * len(wp) <= _DIRECT_PAIRS:  # every read against every write, no grouping of equal ranges
        hits = (wm == m[:, None]) & (wl < hi[:, None]) & (lo[:, None] < wh) & (np.arange(len(wp)) <= before[:, None])
        k = np.where(hits, np.arange(len(wp)), -1).max(axis=1)  # the last overlapping write before the read
        return np.where(k >= 0, wp[k], -1)
    keys = np.stack([m, lo, hi])
    packed = _pack(keys)
    if packed is None:
        ranges, which = np.unique(keys.T, axis=0, return_inverse=True)
    else:  # one int64 per range: a plain unique instead of a (slow) row-wise one
        _, first, which = np.unique(packed, return_index=True, return_inverse=True)
        ranges = keys[:, first].T
    which = which.reshape(-1)
    if len(ranges) * len(wp) <= _GROUPED_PAIRS:  # all at once: which writes overlap which range
        um, ul, uh = (c[:, None] for c in ranges.T)
        overlap = (wm == um) & (wl < uh) & (ul < wh)
        last = np.maximum.accumulate(np.where(overlap, np.arange(len(wp)), -1), axis=1)  # last overlapping write so far
        k = np.where(before >= 0, last[which, np.maximum(before, 0)], -1)
        return np.where(k >= 0, wp[np.maximum(k, 0)], -1)
    out = np.full(len(idx), -1, dtype=np.int64)
    for u, (um, ul, uh) in enumerate(ranges.tolist()):  # many ranges and writes: one range at a time
        hits = wp[(wm == um) & (wl < uh) & (ul < wh)]
        if len(hits):
            sel = np.flatnonzero(which == u)
            k = np.searchsorted(hits, p[sel]) - 1
            out[sel] = np.where(k >= 0, hits[np.maximum(k, 0)], -1)
    return out


def _versions_compiled(kernel, an: Analysis, pos: np.ndarray, idx: np.ndarray, slot) -> np.ndarray | None:
    """read_versions through the compiled pass; None when it would test too many (range, write) pairs."""
    order = _execution_order(pos)
    slots = np.full(len(idx), slot, dtype=np.int64) if np.ndim(slot) == 0 else np.asarray(slot, dtype=np.int64)
    table_size = 1 << (2 * len(idx)).bit_length()  # a power of two, at most half full
    versions = np.empty(len(idx), dtype=np.int64)
    state = np.array([_KERNEL_TESTS, 0], dtype=np.int64)
    scratch = (np.zeros((table_size, 4), dtype=np.int64), np.empty(an.mem.shape, dtype=np.int64),
               np.empty((len(idx), 5), dtype=np.int64))  # the range table, the query of each slot, the ranges
    kernel(order, an.mem, an.lo, an.hi, an.write.view(np.uint8), an.used.view(np.uint8),
           idx.astype(np.int64, copy=False), slots, *scratch, versions, state)
    return None if state[1] else versions


_KERNEL_TESTS = 1 << 26  # distinct ranges x writes the compiled pass tests at most (~0.1 s)

# Below this many (read, write) pairs, comparing every read with every write costs less than
# grouping the reads by range first (a sort and a unique, whose fixed costs dominate short programs);
# below _GROUPED_PAIRS (distinct range, write) pairs, the groups are compared with every write at once.
_DIRECT_PAIRS = 1 << 15
_GROUPED_PAIRS = 1 << 21
