"""Trainium MX layouts: the interleaved K order of x4 data and the quadrant placement of scales.

* **Interleaved K order** (reference 3.2): the 4 sub-elements of an x4 word at partition p are the logical K indices
  ``k = q*Kp + p`` (Kp = K/4 partitions), so an MX group (8 partitions x 4 sub-elements) holds 4 runs of 8
  consecutive k, Kp apart. :func:`to_interleaved` builds the ``[Kp, 4M]`` source that ``quantize_mx`` expects from a
  natural ``[K, M]`` matrix; :func:`from_interleaved` undoes it.
* **Scale quadrants** (reference 3.2/4.4): the scales of data partitions ``[32j, 32j+32)`` live in quadrant j, at
  partitions ``32j + p_offset + {0, 1, 2, 3}`` (p_offset in {0, 4, 8, 12}). Logical scale row i goes to partition
  ``(i//4)*32 + i%4 + p_offset``. :func:`to_hw_scale_layout` / :func:`from_hw_scale_layout` convert between that
  and the dense ``[Kp/8, F]`` layout the CPU references use.
"""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentError, DtypeError, ShapeError
from ._layout_kernels import deinterleave_rows, interleave_rows

__all__ = ["to_interleaved", "from_interleaved", "to_hw_scale_layout", "from_hw_scale_layout", "P_OFFSETS"]

#: The partition offsets at which a scale tensor may start inside each quadrant.
P_OFFSETS = (0, 4, 8, 12)


def to_interleaved(a) -> np.ndarray:
    """Natural ``[K, M]`` matrix -> the interleaved ``[K/4, 4M]`` layout (``out[p, 4m+q] = a[q*K/4 + p, m]``).

    Quantising the result with :func:`emulator.numerics.mx.quantize_mx` gives x4 words ``[K/4, M]`` whose
    sub-element q at partition p is logical k = q*Kp + p, the order ``nc_matmul_mx`` contracts in.

    >>> import numpy as np
    >>> a = np.arange(8.0).reshape(8, 1)        # K = 8, so Kp = 2
    >>> to_interleaved(a)
    array([[0., 2., 4., 6.],
           [1., 3., 5., 7.]])
    """
    arr = np.asarray(a)
    if arr.ndim != 2:
        raise ShapeError(f"to_interleaved: a must be 2-D [K, M], got shape {arr.shape}")
    k, m = arr.shape
    if k % 4:
        raise ShapeError(f"to_interleaved: K (rows of a) must be a multiple of 4, got {k}")
    return interleave_rows(arr)


def from_interleaved(t) -> np.ndarray:
    """The inverse of :func:`to_interleaved`: ``[Kp, 4M]`` -> natural ``[4Kp, M]``.

    >>> import numpy as np
    >>> a = np.arange(24.0).reshape(8, 3)
    >>> bool((from_interleaved(to_interleaved(a)) == a).all())
    True
    """
    arr = np.asarray(t)
    if arr.ndim != 2:
        raise ShapeError(f"from_interleaved: t must be 2-D [Kp, 4M], got shape {arr.shape}")
    kp, f = arr.shape
    if f % 4:
        raise ShapeError(f"from_interleaved: the free size of t must be a multiple of 4, got {f}")
    return deinterleave_rows(arr)


def _scale_array(scale, name: str) -> np.ndarray:
    arr = np.asarray(scale)
    if arr.ndim != 2:
        raise ShapeError(f"{name}: scales must be 2-D [rows, F], got shape {arr.shape}")
    if arr.dtype != np.uint8 and arr.dtype.itemsize != 1:
        raise DtypeError(f"{name}: scales must be uint8 or float8_e8m0fnu codes, got {arr.dtype}")
    return arr


def _check_offset(p_offset: int, name: str) -> int:
    if p_offset not in P_OFFSETS:
        raise ArgumentError(f"{name}: p_offset must be one of {P_OFFSETS} (start partition inside a quadrant), "
                         f"got {p_offset!r}")
    return int(p_offset)


def _partitions(groups: int, p_offset: int) -> np.ndarray:
    i = np.arange(groups)
    return (i // 4) * 32 + i % 4 + p_offset


def to_hw_scale_layout(scale, p_offset: int = 0, out: np.ndarray | None = None) -> np.ndarray:
    """Dense scales ``[G, F]`` (row g covers data partitions 8g..8g+7) -> the hardware quadrant layout.

    Row i goes to partition ``(i//4)*32 + i%4 + p_offset``. Without ``out`` the result has ``32*ceil(G/4)``
    partitions (= Kp, the oversized tile of the ISA, when G is a multiple of 4) and zeros elsewhere; with ``out``
    (an existing tile, e.g. shared by up to four scale tensors at offsets 0/4/8/12) only the rows that belong to
    this tensor are written, and ``out`` is returned.

    >>> import numpy as np
    >>> hw = to_hw_scale_layout(np.arange(8, dtype=np.uint8).reshape(8, 1), p_offset=4)
    >>> hw.shape, [int(p) for p in np.flatnonzero(hw[:, 0])]
    ((64, 1), [5, 6, 7, 36, 37, 38, 39])
    """
    arr = _scale_array(scale, "to_hw_scale_layout")
    off = _check_offset(p_offset, "to_hw_scale_layout")
    g, f = arr.shape
    parts = _partitions(g, off)
    if out is None:
        out = np.zeros((32 * -(-g // 4), f), arr.dtype)
    else:
        if not isinstance(out, np.ndarray) or out.ndim != 2 or out.shape[1] != f or out.dtype != arr.dtype:
            raise ShapeError(f"to_hw_scale_layout: out must be a 2-D {arr.dtype} array with {f} columns, got "
                             f"{getattr(out, 'shape', None)} {getattr(out, 'dtype', type(out).__name__)}")
        if g and out.shape[0] <= parts[-1]:
            raise ShapeError(f"to_hw_scale_layout: out has {out.shape[0]} partitions; scale row {g - 1} goes to "
                             f"partition {int(parts[-1])}")
    out[parts] = arr
    return out


def from_hw_scale_layout(hw_scale, kp: int, p_offset: int = 0) -> np.ndarray:
    """The inverse of :func:`to_hw_scale_layout`: gather the ``kp//8`` logical rows back into a dense ``[kp//8, F]``.

    ``hw_scale`` may be the oversized tile (``[Kp, F]`` or any tile reaching the last used partition) or, for
    Kp <= 32, the compact ``[Kp/8, F]`` tile the ISA also allows (use p_offset=0 for it, as it is already sliced).
    Unlike AWS's ``get_p_contiguous_scale``, a ``[32, F]`` tile with Kp = 32 works (it gathers Kp/8 rows, not Kp).

    >>> import numpy as np
    >>> dense = np.arange(16, dtype=np.uint8).reshape(8, 2)
    >>> bool((from_hw_scale_layout(to_hw_scale_layout(dense, 8), kp=64, p_offset=8) == dense).all())
    True
    """
    arr = _scale_array(hw_scale, "from_hw_scale_layout")
    off = _check_offset(p_offset, "from_hw_scale_layout")
    if isinstance(kp, bool) or not isinstance(kp, (int, np.integer)) or kp <= 0 or kp % 8:
        raise ShapeError(f"from_hw_scale_layout: kp (data partitions) must be a positive multiple of 8, got {kp!r}")
    g = int(kp) // 8
    parts = _partitions(g, off)
    if arr.shape[0] <= parts[-1]:
        raise ShapeError(f"from_hw_scale_layout: hw_scale has {arr.shape[0]} partitions; with kp={kp} and "
                         f"p_offset={off}, scale row {g - 1} lives in partition {int(parts[-1])}")
    return np.ascontiguousarray(arr[parts])
