"""Hot loops of the Vector/Scalar instructions: a Numba kernel and its pure NumPy twin, bit-identical.

``row_sum(x)``: the sum of each row of a 2-D float32 array in element order, rounded to fp32 after every add (the
engine's streaming accumulation). The twin uses ``np.add.accumulate``, which NumPy evaluates strictly left to right
(unlike ``np.sum``'s pairwise summation).
"""

from __future__ import annotations

import numpy as np

from .._jit import dispatch, njit

__all__ = ["row_sum"]


@njit
def _row_sum_numba(x):
    rows, cols = x.shape
    out = np.empty(rows, np.float32)
    for p in range(rows):
        acc = x[p, 0]
        for j in range(1, cols):
            acc = np.float32(acc + x[p, j])
        out[p] = acc
    return out


def _row_sum_numpy(x):
    return np.add.accumulate(x, axis=1)[:, -1].copy()


row_sum = dispatch(_row_sum_numba, _row_sum_numpy)
row_sum.__doc__ = """Sequential fp32 sum of each row of a 2-D float32 array with at least one column."""
