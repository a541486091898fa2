"""Cumulative sum written against NKI: ``y[:, i] = x[:, 0] + ... + x[:, i]`` over the last axis of ``x [N, F]``.

Rows on the partitions (128 per tile); the scan axis in free-dim tiles of ``F_TILE`` elements, carried from one tile
to the next. Per tile, ``tensor_tensor_scan(data0=ones, data1=x, initial=carry, op0=multiply, op1=add)`` computes
``r[i] = 1 * r[i-1] + x[i]`` on the Vector Engine in fp32 (the same recurrence as the AWS kernel library's cumsum).
Unlike the library kernel, the scan writes an fp32 tile and the carry is taken from it, so a bf16 output is rounded
once per element and never fed back: the running sum stays fp32 across tiles. A ``tensor_copy`` rounds the tile to
the output dtype before the DMA out.
Launched as ``kernel[2]`` (LNC=2) the two cores take alternate row tiles (:func:`kernels.rmsnorm.row_tiles`).

>>> import numpy as np
>>> from kernels.cumsum import cumsum
>>> cumsum(np.arange(1, 6, dtype=np.float32).reshape(1, 5)).tolist()
[[1.0, 3.0, 6.0, 10.0, 15.0]]
"""

from __future__ import annotations

import numpy as np

try:  # the real NKI on a Trainium host (or the emulator after emulator.nki.install())
    import nki
    import nki.isa as nisa
    import nki.language as nl
except ImportError:  # anywhere else: the emulator's NKI front end under the same names
    from emulator import nki
    from emulator.nki import isa as nisa, language as nl

from .rmsnorm import row_tiles

__all__ = ["cumsum_kernel", "cumsum", "F_TILE"]

F_TILE = 512  # scan elements per instruction: small enough that moderate shapes cross tiles and carry


@nki.jit
def cumsum_kernel(x):
    """Cumulative sum over the last axis of ``x [N, F]`` (HBM); returns ``[N, F]`` in ``x.dtype``."""
    N, F = x.shape
    P = nl.tile_size.pmax
    y = nl.ndarray((N, F), dtype=x.dtype, buffer=nl.shared_hbm)
    ones = nl.ndarray((P, F_TILE), dtype=nl.float32, buffer=nl.sbuf)
    nisa.memset(dst=ones, value=1.0)

    for t in row_tiles(N, P):
        r0 = t * P
        rows = min(P, N - r0)
        carry = nl.ndarray((P, 1), dtype=nl.float32, buffer=nl.sbuf)
        nisa.memset(dst=carry, value=0.0)
        for c in nl.sequential_range((F + F_TILE - 1) // F_TILE):
            f0 = c * F_TILE
            f = min(F_TILE, F - f0)
            x_sb = nl.ndarray((P, F_TILE), dtype=x.dtype, buffer=nl.sbuf)
            nisa.dma_copy(dst=x_sb[0:rows, 0:f], src=x[r0:r0 + rows, f0:f0 + f])
            acc = nl.ndarray((P, F_TILE), dtype=nl.float32, buffer=nl.sbuf)
            nisa.tensor_tensor_scan(dst=acc[0:rows, 0:f], data0=ones[0:rows, 0:f], data1=x_sb[0:rows, 0:f],
                                    initial=carry[0:rows, :], op0=nl.multiply, op1=nl.add)
            nisa.tensor_copy(dst=carry[0:rows, :], src=acc[0:rows, f - 1:f])
            y_sb = nl.ndarray((P, F_TILE), dtype=x.dtype, buffer=nl.sbuf)
            nisa.tensor_copy(dst=y_sb[0:rows, 0:f], src=acc[0:rows, 0:f])
            nisa.dma_copy(dst=y[r0:r0 + rows, f0:f0 + f], src=y_sb[0:rows, 0:f])
    return y


def cumsum(x: np.ndarray, lnc: int = 1) -> np.ndarray:
    """Host wrapper: cumulative sum over the last axis of a 2-D (or N-D, flattened to rows) array; ``lnc=2``: two
    cores, each taking every other row tile."""
    x = np.ascontiguousarray(x)
    flat = x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x
    kernel = cumsum_kernel[lnc] if lnc > 1 else cumsum_kernel
    return np.asarray(kernel(flat)).reshape(x.shape)
