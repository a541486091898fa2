"""GpSimd-only instructions on NumPy arrays: ``iota``, ``affine_select`` and ``nc_n_gather``.

Both evaluate the affine pattern ``offset + p * channel_multiplier + sum_k(i_k * step_k)`` in int32 arithmetic
(wrapping, as a 32-bit integer ALU does) over the access pattern ``[[step, num], ...]`` (up to 4 dims, outermost
first; the product of the ``num`` must equal dst's elements per partition). GpSimd reads and writes SBUF only; the
NeuronCore checks buffers.

>>> import numpy as np
>>> from emulator.engines import gpsimd
>>> gpsimd.iota(np.empty((2, 3), np.int32), [[1, 3]], offset=10, channel_multiplier=100)
array([[ 10,  11,  12],
       [110, 111, 112]], dtype=int32)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DtypeError, EmulatorError, ShapeError
from . import operands as _o
from .operands import F32, Instruction, check_dst, like, write
from .ops import resolve

__all__ = ["iota", "affine_select", "affine_values", "nc_n_gather", "INSTRUCTIONS"]


def affine_values(rows: int, pattern: Any, offset: int, channel_multiplier: int, free: int, instr: str) -> np.ndarray:
    """The int32 pattern values, shape [rows, free] (int64 array holding wrapped int32 values)."""
    try:
        pat = [(int(step), int(num)) for step, num in pattern]
    except (TypeError, ValueError):
        raise EmulatorError(f"{instr}: pattern must be a list of [step, num] pairs, got {pattern!r}") from None
    if not 1 <= len(pat) <= 4 or any(num < 1 for _, num in pat):
        raise ShapeError(f"{instr}: pattern {pattern!r} must have 1..4 [step, num] pairs with num >= 1")
    total = int(np.prod([num for _, num in pat]))
    if total != free:
        raise ShapeError(f"{instr}: pattern {pattern!r} describes {total} elements per partition but dst has {free}")
    v = np.zeros((), np.int64)
    for step, num in pat:  # outermost first: row-major order over the pattern dims
        v = (v[..., None] + np.int64(step) * np.arange(num, dtype=np.int64)).reshape(-1)
    v = (np.int64(offset) + np.int64(channel_multiplier) * np.arange(rows, dtype=np.int64)[:, None]
         + v.reshape(1, -1))
    return ((v + 2**31) % 2**32) - 2**31  # int32 wraparound


def _write_ints(dst: np.ndarray, v: np.ndarray, instr: str) -> np.ndarray:
    """Write exact integers ``v`` into dst: integers saturate, floats round once from the exact value."""
    if _o.is_int(dst.dtype):
        if dst.dtype == np.bool_:
            dst[...] = (v != 0).reshape(dst.shape)
            return dst
        info = np.iinfo(dst.dtype)
        dst[...] = np.clip(v, info.min, info.max).astype(dst.dtype).reshape(dst.shape)
        return dst
    if dst.dtype == F32:
        dst[...] = v.astype(F32).reshape(dst.shape)  # int64 -> float32 rounds once (RNE)
        return dst
    return write(dst, v.astype(np.float64).reshape(dst.shape), instr)  # float64 holds int32 exactly


@_o.quiet
def iota(dst: np.ndarray, pattern: Any, offset: int = 0, channel_multiplier: int = 0) -> np.ndarray:
    """``dst[p, ...] = offset + p * channel_multiplier + sum_k(i_k * step_k)`` in int32, then converted to dst's
    dtype (integers: saturated; floats: one rounding from the exact integer).

    >>> import numpy as np
    >>> iota(np.empty((1, 4), np.float32), [[2, 2], [1, 2]])
    array([[0., 1., 2., 3.]], dtype=float32)
    """
    instr = "iota"
    check_dst(dst, instr)
    free = dst[0].size
    return _write_ints(dst, affine_values(dst.shape[0], pattern, offset, channel_multiplier, free, instr), instr)


@_o.quiet
def affine_select(dst: np.ndarray, pattern: Any, channel_multiplier: int, on_true_tile: Any, on_false_value: float,
                  cmp_op: Any = "equal", offset: int = 0) -> np.ndarray:
    """``dst = on_true_tile where cmp_op(affine_value, 0) else on_false_value`` (affine value as in :func:`iota`).

    Selected elements are copied bit-exactly when on_true_tile has dst's dtype, else through fp32; the fp32
    ``on_false_value`` is rounded once to dst's dtype.

    >>> import numpy as np
    >>> x = np.ones((3, 3), np.float32)   # causal mask: keep j <= p, i.e. p - j >= 0
    >>> affine_select(np.empty((3, 3), np.float32), [[-1, 3]], 1, x, -np.inf, cmp_op="greater_equal")
    array([[  1., -inf, -inf],
           [  1.,   1., -inf],
           [  1.,   1.,   1.]], dtype=float32)
    """
    instr = "affine_select"
    check_dst(dst, instr)
    cmp = resolve(cmp_op, instr)
    if cmp.integer is None or cmp.name not in ("equal", "not_equal", "greater", "greater_equal", "less",
                                               "less_equal"):
        raise EmulatorError(f"{instr}: cmp_op {cmp.name!r} is not a comparison operator")
    rows, free = dst.shape[0], dst[0].size
    pred = cmp.integer(affine_values(rows, pattern, offset, channel_multiplier, free, instr), np.int64(0)) != 0
    pred = pred.reshape(dst.shape)
    src = like(on_true_tile, dst, "on_true_tile", instr)
    fill = np.empty((1,), dst.dtype)
    write(fill, np.float32(on_false_value), instr)
    if src.dtype == dst.dtype:
        np.copyto(dst, np.where(pred, src, fill[0]))
        return dst
    out = np.empty(dst.shape, dst.dtype)
    write(out, _o.f32(src, "on_true_tile", instr), instr)
    np.copyto(dst, np.where(pred, out, fill[0]))
    return dst


def nc_n_gather(dst: np.ndarray, data: Any, indices: Any) -> np.ndarray:
    """``dst[p].flat[j] = data[p].flat[indices[p].flat[j]]``: a gather within each partition over ``data``'s
    flattened free dims (NKI API docs). Values move bit-exactly (``dst`` has ``data``'s dtype); ``indices`` is
    uint32 and every index must lie in ``[0, elements per partition of data)``.

    >>> import numpy as np
    >>> data = np.arange(8, dtype=np.float32).reshape(2, 2, 2)
    >>> nc_n_gather(np.empty((2, 3), np.float32), data, np.array([[3, 0, 0], [1, 2, 3]], np.uint32))
    array([[3., 0., 0.],
           [5., 6., 7.]], dtype=float32)
    """
    instr = "nc_n_gather"
    check_dst(dst, instr)
    data, idx = _o.tile(data, "data", instr), _o.tile(indices, "indices", instr)
    if not data.shape[0] == idx.shape[0] == dst.shape[0]:
        raise ShapeError(f"{instr}: data {data.shape}, indices {idx.shape} and dst {dst.shape} must have the same "
                         "partition count")
    if idx.dtype != np.uint32:
        raise DtypeError(f"{instr}: indices is {idx.dtype}; the gather indices must be uint32")
    if data.dtype != dst.dtype:
        raise DtypeError(f"{instr}: data is {data.dtype} and dst is {dst.dtype}; dst must have data's dtype")
    rows, free = data.shape[0], data[0].size
    flat_idx = idx.reshape(rows, -1).astype(np.int64)
    if flat_idx.shape[1] != dst[0].size:
        raise ShapeError(f"{instr}: indices has {flat_idx.shape[1]} elements per partition and dst {dst[0].size}; "
                         "they must match")
    bad = flat_idx >= free
    if bad.any():
        p, j = map(int, np.argwhere(bad)[0])
        raise ShapeError(f"{instr}: indices[{p}] element {j} is {flat_idx[p, j]}; data has {free} elements per "
                         f"partition (indices must lie in 0..{free - 1})")
    dst[...] = np.take_along_axis(data.reshape(rows, free), flat_idx, axis=1).reshape(dst.shape)
    return dst


INSTRUCTIONS: dict[str, Instruction] = {
    "nc_n_gather": Instruction(nc_n_gather, ("gpsimd",), ("data", "indices"), ("dst",)),
    "iota": Instruction(iota, ("gpsimd",), (), ("dst",)),
    "affine_select": Instruction(affine_select, ("gpsimd",), ("on_true_tile",), ("dst",)),
}
