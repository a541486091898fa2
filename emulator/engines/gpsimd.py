"""GpSimd-only instructions on NumPy arrays: ``iota`` and ``affine_select``.

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

from ..errors import EmulatorError, ShapeError
from . import operands as _o
from .operands import F32, Instruction, check_dst, like, write
from .ops import resolve

__all__ = ["iota", "affine_select", "affine_values", "INSTRUCTIONS"]


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


INSTRUCTIONS: dict[str, Instruction] = {
    "iota": Instruction(iota, ("gpsimd",), (), ("dst",)),
    "affine_select": Instruction(affine_select, ("gpsimd",), ("on_true_tile",), ("dst",)),
}
