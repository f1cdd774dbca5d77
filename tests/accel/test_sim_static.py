"""Helpers of the simulator's static analysis: packed keys and their fallback agree."""

import numpy as np

from lutc.backends.accel.simulator import _first_of_each, _pack


def _first_of_each_reference(keys: np.ndarray) -> list[int]:
    seen, out = set(), []
    for j, col in enumerate(map(tuple, keys.T.tolist())):
        if col not in seen:
            seen.add(col)
            out.append(j)
    return out


def test_first_of_each_packed_and_fallback_agree():
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 4, size=(5, 3000))
    assert _pack(keys) is not None
    assert _first_of_each(keys).tolist() == _first_of_each_reference(keys)
    wide = keys.copy()
    wide[1:3] += 1 << 40  # too wide to pack into one int64: the lexsort path
    assert _pack(wide) is None
    assert _first_of_each(wide).tolist() == _first_of_each_reference(keys)
    assert _first_of_each(np.zeros((5, 0), dtype=np.int64)).tolist() == []


def test_pack_keeps_order_and_equality():
    rng = np.random.default_rng(1)
    keys = rng.integers(0, 1000, size=(3, 500))
    packed = _pack(keys)
    order = np.lexsort(tuple(keys[::-1]))
    assert (np.diff(packed[order]) >= 0).all()
    assert len(np.unique(packed)) == len(np.unique(keys.T, axis=0))
    assert _pack(-keys - 1) is None  # negative fields: no packing
