"""Scalar pure-Python reference of M:N pruning and compression, written from the spec (issue 8), for the tests.

It works on float64 values (``math``), not on bit patterns, except where the spec itself is about bits (keeping a
-0 entry's sign). It shares no code with emulator.numerics.sparsity.
"""

from __future__ import annotations

import math
import struct

import numpy as np


def groups(shape, axis, n):
    """Yield (group number along axis, list of the n full index tuples of that group), in C order of groups."""
    axis %= len(shape)
    gshape = list(shape)
    gshape[axis] //= n
    for gidx in np.ndindex(*gshape):
        g = gidx[axis]
        yield g, [gidx[:axis] + (g * n + j,) + gidx[axis + 1:] for j in range(n)]


def _is_zero(v: float) -> bool:
    return not math.isnan(v) and v == 0.0


def _is_neg_zero(v: float) -> bool:
    return v == 0.0 and math.copysign(1.0, v) < 0


def kept_positions(values, m, scores=None):
    """Positions the spec keeps: largest |v| (NaN largest) or largest score; ties to the lowest position."""
    n = len(values)
    if scores is None:
        keys = [(1 if math.isnan(v) else 0, 0.0 if math.isnan(v) else abs(v)) for v in values]
    else:
        keys = [(0, float(s)) for s in scores]
    order = sorted(range(n), key=lambda j: (-keys[j][0], -keys[j][1], j))
    return sorted(order[:m])


def prune_ref(x64, m, n, axis, scores=None):
    """Boolean keep-mask of the spec for a float64 array."""
    keep = np.zeros(x64.shape, dtype=bool)
    for _, idx in groups(x64.shape, axis, n):
        vals = [float(x64[i]) for i in idx]
        sc = None if scores is None else [float(scores[i]) for i in idx]
        for j in kept_positions(vals, m, sc):
            keep[idx[j]] = True
    return keep


def compress_positions(values, m):
    """Positions compress keeps: all non-zeros, then -0 entries, then +0 entries, each lowest-first; ascending."""
    nonzero = [j for j, v in enumerate(values) if not _is_zero(v)]
    if len(nonzero) > m:
        return None
    neg0 = [j for j, v in enumerate(values) if _is_neg_zero(v)]
    pos0 = [j for j, v in enumerate(values) if _is_zero(v) and not _is_neg_zero(v)]
    return sorted((nonzero + neg0 + pos0)[:m])


def count_nonzeros(values) -> int:
    return sum(1 for v in values if not _is_zero(v))


def first_bad_group(x64, m, n, axis):
    """(flat C-order group number, count) of the first group with more than m non-zeros, else None."""
    for flat, (_, idx) in enumerate(groups(x64.shape, axis, n)):
        c = count_nonzeros([float(x64[i]) for i in idx])
        if c > m:
            return flat, c
    return None


def pack_ref(tags_last_axis):
    """Pack a 1-D list of 4-bit tags: tag i goes to word i // 4, bits 4*(i%4)."""
    words = [0] * ((len(tags_last_axis) + 3) // 4)
    for i, t in enumerate(tags_last_axis):
        words[i // 4] |= int(t) << (4 * (i % 4))
    return words


def f32_bits(v: float) -> int:
    return struct.unpack("<I", struct.pack("<f", v))[0]


# ---- the reference itself, against examples worked by hand from the spec ---------------------------------------
def test_reference_keeps_largest_with_lowest_index_ties():
    assert kept_positions([1.0, -3.0, 3.0, 2.0], 2) == [1, 2]          # |-3| == |3|: both kept
    assert kept_positions([2.0, -2.0, 2.0, 1.0], 2) == [0, 1]          # three-way tie: lowest two
    assert kept_positions([0.0, -0.0, 0.0, 0.0], 1) == [0]
    assert kept_positions([1.0, math.nan, math.inf, 5.0], 2) == [1, 2]  # NaN above inf
    assert kept_positions([1.0, 2.0, 3.0, 4.0], 1, scores=[9, 1, 9, 0]) == [0]


def test_reference_compress_positions():
    assert compress_positions([0.0, 5.0, 0.0, -1.0], 2) == [1, 3]
    assert compress_positions([0.0, 0.0, -0.0, 7.0], 2) == [2, 3]      # -0 padded before +0
    assert compress_positions([0.0, 0.0, 0.0, 0.0], 2) == [0, 1]
    assert compress_positions([1.0, 2.0, 3.0, 0.0], 2) is None


def test_reference_pack():
    assert pack_ref([1, 2, 3, 15]) == [0xF321]
    assert pack_ref([1, 2, 3, 15, 7]) == [0xF321, 0x7]
