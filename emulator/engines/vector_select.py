"""Vector Engine selection, search, statistics and data-movement instructions on NumPy arrays.

``tensor_copy_predicated``, ``select_reduce``, ``range_select``, ``max8``, ``nc_find_index8``,
``nc_match_replace8``, ``bn_stats``, ``bn_aggr``, ``nc_stream_shuffle`` and the Vector form of ``nc_transpose``.
Destination first, NKI keyword names; ``dst`` is written in place and returned. Rules chosen where the docs are
silent (each stated in the function's docstring and in docs/numerics.md):

* value comparisons (max8, find/match) are on fp32 values: ``-0 == +0``; NaN ranks above +inf in ``max8`` and never
  matches in ``nc_find_index8``/``nc_match_replace8``; among equal values ``max8`` takes the lowest index first;
* ``bn_stats``/``bn_aggr``: each mean and ``variance * count`` is evaluated in float64 (two passes, sums by
  ``math.fsum``) and rounded once to fp32, so it is within one fp32 ulp of the exact statistic (the hardware's
  algorithm is undocumented); ``bn_aggr`` merges with Chan's formula and returns the population variance.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import DtypeError, EmulatorError, ShapeError
from . import operands as _o
from .limits import BN_STATS_FMAX, QUADRANT, VECTOR_TRANSPOSE_MAX
from .operands import F32, Instruction, ReduceRegisters, check_dst, f32, like, per_partition, write
from .ops import resolve

__all__ = ["tensor_copy_predicated", "select_reduce", "range_select", "max8", "nc_find_index8", "nc_match_replace8",
           "bn_stats", "bn_aggr", "nc_stream_shuffle", "shuffle_rows", "nc_transpose", "FP32_MIN", "INSTRUCTIONS"]

#: the only ``on_false_value`` range_select accepts (NKI docs)
FP32_MIN = float(np.finfo(np.float32).min)
_PRED_DTYPES = {np.dtype(t) for t in (np.uint8, np.uint16, np.uint32, np.int8, np.int16, np.int32, np.bool_)}
_COMPARE = ("equal", "less", "less_equal", "greater", "greater_equal")


def _pred(predicate: Any, dst: np.ndarray, reverse: bool, instr: str) -> np.ndarray:
    p = like(predicate, dst, "predicate", instr)
    if p.dtype not in _PRED_DTYPES:
        raise DtypeError(f"{instr}: predicate has dtype {p.dtype}; it must be an integer type (uint8/16/32, int8/16)")
    mask = p != 0
    return ~mask if reverse else mask


@_o.quiet
def tensor_copy_predicated(dst: np.ndarray, src: Any, predicate: Any, reverse_pred: bool = False) -> np.ndarray:
    """``dst = src`` where ``predicate != 0`` (``== 0`` with ``reverse_pred``); other elements keep their value.

    ``src`` is a tile of dst's dtype (copied bit-exactly) or a scalar (rounded once to dst's dtype).

    >>> import numpy as np
    >>> tensor_copy_predicated(np.zeros((1, 3), np.float32), 7.0, np.array([[1, 0, 2]], np.uint8))
    array([[7., 0., 7.]], dtype=float32)
    """
    instr = "tensor_copy_predicated"
    check_dst(dst, instr)
    mask = _pred(predicate, dst, reverse_pred, instr)
    if np.ndim(src) == 0:
        value = write(np.empty((1,), dst.dtype), np.float32(src), instr)
    else:
        value = like(src, dst, "src", instr)
        if value.dtype != dst.dtype:
            raise DtypeError(f"{instr}: src has dtype {value.dtype} but dst {dst.dtype}; they must match")
    np.copyto(dst, np.broadcast_to(value.reshape(value.shape if value.ndim == dst.ndim else (1,) * dst.ndim),
                                   dst.shape), where=mask)
    return dst


def _reduce_out(dst, regs: ReduceRegisters | None, cmd, partial, reduce_res, instr: str):
    """Max-accumulate ``partial`` per ``cmd`` into the Vector accumulators and read them out into ``reduce_res``."""
    regs = regs if regs is not None else ReduceRegisters()
    regs.readout(_o.reduce_cmd(cmd, instr), partial, -np.inf, np.maximum, reduce_res, dst.shape[0], instr)


@_o.quiet
def select_reduce(dst: np.ndarray, predicate: Any, on_true: Any, on_false: Any, reduce_res: Any = None,
                  reduce_cmd: Any = "idle", reduce_op: Any = "maximum", reverse_pred: bool = False, *,
                  regs: ReduceRegisters | None = None) -> np.ndarray:
    """``dst = where(predicate, on_true, on_false)`` (fp32, one rounding), optional max-reduce per partition into
    the Vector accumulators ``regs`` (``reduce_cmd``) and ``reduce_res``.

    >>> import numpy as np
    >>> res = np.empty((1, 1), np.float32)
    >>> select_reduce(np.empty((1, 3), np.float32), np.array([[1, 0, 1]], np.uint8),
    ...               np.array([[1., 9., 3.]], np.float32), -1.0, reduce_res=res, reduce_cmd="reset_reduce")
    array([[ 1., -1.,  3.]], dtype=float32)
    >>> res
    array([[3.]], dtype=float32)
    """
    instr = "select_reduce"
    check_dst(dst, instr)
    if resolve(reduce_op, instr).name != "maximum":
        raise EmulatorError(f"{instr}: reduce_op must be maximum, got {reduce_op!r}")
    mask = _pred(predicate, dst, reverse_pred, instr)
    t = like(on_true, dst, "on_true", instr)
    if t.dtype in (np.dtype(np.int32), np.dtype(np.uint32)):
        raise DtypeError(f"{instr}: on_true has dtype {t.dtype}; int32/uint32/tfloat32 are not accepted")
    fill = per_partition(on_false, dst.shape[0], dst.ndim, "on_false", instr)
    out = np.where(mask, f32(t, "on_true", instr), fill).astype(F32, copy=False)
    partial = out.reshape(dst.shape[0], -1).max(axis=1)
    _reduce_out(dst, regs, reduce_cmd, partial, reduce_res, instr)
    return write(dst, out, instr)


@_o.quiet
def range_select(dst: np.ndarray, on_true_tile: Any, comp_op0: Any, comp_op1: Any, bound0: Any, bound1: Any,
                 reduce_cmd: Any = "reset_reduce", reduce_res: Any = None, reduce_op: Any = "maximum",
                 range_start: int = 0, on_false_value: float = FP32_MIN, *,
                 regs: ReduceRegisters | None = None) -> np.ndarray:
    """Keep element i of each partition where ``comp_op0(i + range_start, bound0) & comp_op1(i + range_start,
    bound1)`` (compared in fp32), else FP32_MIN; max-reduce into ``regs``/``reduce_res`` per ``reduce_cmd``.

    >>> import numpy as np
    >>> b0, b1 = np.array([[1.0]], np.float32), np.array([[3.0]], np.float32)
    >>> range_select(np.empty((1, 4), np.float32), np.arange(4, dtype=np.float32)[None] + 10, "greater_equal",
    ...              "less", b0, b1)[0, 1:3]
    array([11., 12.], dtype=float32)
    """
    instr = "range_select"
    check_dst(dst, instr)
    ops = [resolve(c, instr) for c in (comp_op0, comp_op1)]
    for c in ops:
        if c.name not in _COMPARE:
            raise EmulatorError(f"{instr}: comparison {c.name!r} is not one of {', '.join(_COMPARE)}")
    if resolve(reduce_op, instr).name != "maximum":
        raise EmulatorError(f"{instr}: reduce_op must be maximum, got {reduce_op!r}")
    if np.float32(on_false_value) != np.float32(FP32_MIN):  # an fp32 immediate: -3.4028235e38 in Python is it too
        raise EmulatorError(f"{instr}: on_false_value must be FP32_MIN (-3.4028235e38), got {on_false_value!r}")
    rows = dst.shape[0]
    t = f32(like(on_true_tile, dst, "on_true_tile", instr), "on_true_tile", instr).reshape(rows, -1)
    idx = (np.float64(range_start) + np.arange(t.shape[1])).astype(F32)[None, :]
    lo = per_partition(bound0, rows, 2, "bound0", instr)
    hi = per_partition(bound1, rows, 2, "bound1", instr)
    mask = (ops[0].f32(idx, lo) != 0) & (ops[1].f32(idx, hi) != 0)
    out = np.where(mask, t, F32(FP32_MIN)).astype(F32, copy=False)
    _reduce_out(dst, regs, reduce_cmd, out.max(axis=1), reduce_res, instr)
    return write(dst, out.reshape(dst.shape), instr)


def _rank_keys(x: np.ndarray) -> np.ndarray:
    """int64 keys ordering fp32 values ascending (-0 == +0; every NaN above +inf)."""
    b = x.view(np.int32).astype(np.int64)
    key = np.where(b < 0, -(b & 0x7FFFFFFF), b)
    return np.where(np.isnan(x), np.int64(0x7F800001), key)


def _search_tile(src: Any, dst: np.ndarray, instr: str) -> np.ndarray:
    x = _o.tile(src, "src", instr)
    if x.shape[0] != dst.shape[0]:
        raise ShapeError(f"{instr}: src has {x.shape[0]} partitions but dst has {dst.shape[0]}")
    n = x[0].size
    if not 8 <= n <= 16384:
        raise ShapeError(f"{instr}: src has {n} elements per partition; it must have 8..16384")
    return f32(x, "src", instr).reshape(x.shape[0], n)


@_o.quiet
def max8(dst: np.ndarray, src: Any) -> np.ndarray:
    """The 8 largest values of each partition, descending (fp32 comparison; NaN ranks above +inf; among equal values
    the lowest index comes first, which decides the sign of a zero).

    >>> import numpy as np
    >>> max8(np.empty((1, 8), np.float32), np.arange(10, dtype=np.float32)[None])
    array([[9., 8., 7., 6., 5., 4., 3., 2.]], dtype=float32)
    """
    instr = "max8"
    check_dst(dst, instr)
    if dst.shape[0] * 8 != dst.size:
        raise ShapeError(f"{instr}: dst has shape {dst.shape}; it must be [P, 8]")
    x = _search_tile(src, dst, instr)
    n = x.shape[1]
    combined = (_rank_keys(x) << 15) | (16383 - np.arange(n, dtype=np.int64))  # unique: ties -> lowest index
    top = np.partition(combined, n - 8, axis=1)[:, n - 8:]
    top = -np.sort(-top, axis=1)
    idx = 16383 - (top & 0x7FFF)
    return write(dst, np.take_along_axis(x, idx, axis=1).reshape(dst.shape), instr)


def _occurrence_index(x: np.ndarray, vals: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Index of the (rank+1)-th occurrence of each val in each partition, -1 when there is none."""
    eq = x[:, None, :] == vals[:, :, None]  # [P, 8, F]; NaN never equal
    hit = eq & (np.cumsum(eq, axis=2) == (rank[:, :, None] + 1))
    pos = hit.argmax(axis=2)
    return np.where(hit.any(axis=2), pos, -1)


def _vals(vals: Any, rows: int, instr: str) -> np.ndarray:
    v = _o.tile(vals, "vals", instr)
    if v.shape[0] != rows or v.size != rows * 8:
        raise ShapeError(f"{instr}: vals has shape {v.shape}; it must hold 8 values per partition ([{rows}, 8])")
    return f32(v, "vals", instr).reshape(rows, 8)


def _dup_rank(v: np.ndarray, reverse: bool) -> np.ndarray:
    """For each slot, how many other slots with the same value come before it (after it, when ``reverse``)."""
    same = v[:, :, None] == v[:, None, :]
    order = np.triu(np.ones((8, 8), bool), 1) if reverse else np.tril(np.ones((8, 8), bool), -1)
    return (same & order[None]).sum(axis=2)


def _write_index(dst: np.ndarray, idx: np.ndarray, instr: str, role: str = "dst") -> None:
    if dst.dtype not in (np.dtype(np.uint16), np.dtype(np.uint32)):
        raise DtypeError(f"{instr}: {role} has dtype {dst.dtype}; indices are uint16 or uint32")
    if dst.shape[0] * 8 != dst.size:
        raise ShapeError(f"{instr}: {role} has shape {dst.shape}; it must be [P, 8]")
    ones = np.iinfo(dst.dtype).max
    dst[...] = np.where(idx < 0, ones, idx).astype(dst.dtype).reshape(dst.shape)


@_o.quiet
def nc_find_index8(dst: np.ndarray, data: Any, vals: Any) -> np.ndarray:
    """Index of the first occurrence of each of the 8 ``vals`` in each partition of ``data`` (fp32 equality);
    a value given k times in ``vals`` takes its 1st..k-th occurrences in ascending slot order; a missing one gives
    all ones (0xFFFF / 0xFFFFFFFF).

    >>> import numpy as np
    >>> d = np.array([[5., 1., 5., 2., 0., 0., 0., 0.]], np.float32)
    >>> nc_find_index8(np.empty((1, 8), np.uint32), d, np.array([[5., 5., 2., 9., 1., 1., 0., 0.]], np.float32))[0, :6].tolist()
    [0, 2, 3, 4294967295, 1, 4294967295]
    """
    instr = "nc_find_index8"
    check_dst(dst, instr)
    x = _search_tile(data, dst, instr)
    v = _vals(vals, x.shape[0], instr)
    _write_index(dst, _occurrence_index(x, v, _dup_rank(v, reverse=False)), instr)
    return dst


@_o.quiet
def nc_match_replace8(dst: np.ndarray, data: Any, vals: Any, imm: float, dst_idx: Any = None) -> np.ndarray:
    """``dst = data`` with the first occurrence of each of the 8 ``vals`` replaced by ``imm``; duplicate vals are
    processed from slot 7 down to slot 0 (so the highest slot takes the first occurrence, NKI docs). ``dst_idx``
    ([P, 8] uint16/uint32) receives the matched positions (all ones when not found).

    >>> import numpy as np
    >>> d = np.array([[1, 2, 3, 4, 8, 8, 8, 8, 8, 8, 8]], np.float32); idx = np.empty((1, 8), np.uint32)
    >>> _ = nc_match_replace8(np.empty_like(d), d, np.array([[3, 8, 8, 8, 8, 8, 8, 8]], np.float32), 0.0, idx)
    >>> idx.tolist()
    [[2, 10, 9, 8, 7, 6, 5, 4]]
    """
    instr = "nc_match_replace8"
    check_dst(dst, instr)
    x = _search_tile(data, dst, instr)
    if dst.shape[0] != x.shape[0] or dst.size != x.size:
        raise ShapeError(f"{instr}: dst has shape {dst.shape}; it must match data's {x.shape}")
    v = _vals(vals, x.shape[0], instr)
    idx = _occurrence_index(x, v, _dup_rank(v, reverse=True))
    out = x.copy()
    rows, slots = np.nonzero(idx >= 0)
    out[rows, idx[rows, slots]] = np.float32(imm)
    if dst_idx is not None:
        _write_index(check_dst(dst_idx, instr), idx, instr, "dst_idx")
    return write(dst, out.reshape(dst.shape), instr)


@_o.quiet
def bn_stats(dst: np.ndarray, data: Any) -> np.ndarray:
    """Per partition: (count, mean, variance * count) of the even-indexed elements, then of the odd-indexed ones
    (6 values; the free size is at most 512). Each statistic is within one fp32 ulp of the exact value.

    >>> import numpy as np
    >>> bn_stats(np.empty((1, 6), np.float32), np.array([[1., 10., 3., 20.]], np.float32)).tolist()
    [[2.0, 2.0, 2.0, 2.0, 15.0, 50.0]]
    """
    instr = "bn_stats"
    check_dst(dst, instr)
    x = _o.tile(data, "data", instr)
    rows, n = x.shape[0], x[0].size
    if n > BN_STATS_FMAX or n == 0:
        raise ShapeError(f"{instr}: data has {n} elements per partition; bn_stats takes 1..{BN_STATS_FMAX} "
                         "(bn_stats_fmax)")
    if dst.shape[0] != rows or dst.size != rows * 6:
        raise ShapeError(f"{instr}: dst has shape {dst.shape}; it must hold 6 values per partition ([{rows}, 6])")
    v = f32(x, "data", instr).reshape(rows, n).astype(np.float64)
    out = np.zeros((rows, 6), np.float64)
    for k, half in enumerate((v[:, 0::2], v[:, 1::2])):
        cnt = half.shape[1]
        out[:, 3 * k] = cnt
        if cnt:
            mean = np.array([math.fsum(r) for r in half.tolist()]) / cnt  # fsum: the sum exact before one rounding
            out[:, 3 * k + 1] = mean
            dev = half - mean[:, None]
            out[:, 3 * k + 2] = [math.fsum(r) for r in (dev * dev).tolist()]
    return write(dst, out.astype(F32).reshape(dst.shape), instr)


@_o.quiet
def bn_aggr(dst: np.ndarray, data: Any) -> np.ndarray:
    """Merge ``(count, mean, variance * count)`` triples (from ``bn_stats``) into (mean, population variance) per
    partition (Chan's parallel formula in float64, rounded once: within one fp32 ulp of the exact merge).

    >>> import numpy as np
    >>> bn_aggr(np.empty((1, 2), np.float32), np.array([[2., 2., 2., 2., 15., 50.]], np.float32)).tolist()
    [[8.5, 55.25]]
    """
    instr = "bn_aggr"
    check_dst(dst, instr)
    x = _o.tile(data, "data", instr)
    rows, n = x.shape[0], x[0].size
    if n % 3 or n == 0:
        raise ShapeError(f"{instr}: data has {n} elements per partition; it must be a multiple of 3")
    if dst.shape[0] != rows or dst.size != rows * 2:
        raise ShapeError(f"{instr}: dst has shape {dst.shape}; it must be [{rows}, 2]")
    t = f32(x, "data", instr).reshape(rows, n // 3, 3).astype(np.float64)
    cnt, mean, m2 = t[..., 0], t[..., 1], t[..., 2]
    total = cnt.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = np.array([math.fsum(r) for r in (cnt * mean).tolist()]) / total  # cnt * mean is exact in float64
        spread = np.concatenate([m2, cnt * (mean - mu[:, None]) ** 2], axis=1)
        var = np.array([math.fsum(r) for r in spread.tolist()]) / total
    return write(dst, np.stack([mu, var], axis=1).astype(F32).reshape(dst.shape), instr)


def shuffle_rows(shuffle_mask: Any, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """nc_stream_shuffle's row map for a ``rows``-partition dst: (dst rows written, src rows they read); entries
    of 255 leave their dst row alone."""
    mask = np.array([int(m) for m in shuffle_mask], np.int64)
    p = np.arange(rows)
    m = mask[p % QUADRANT] if mask.size == QUADRANT else np.full(rows, 255)
    keep = m != 255
    return p[keep], (p - p % QUADRANT + m)[keep]


@_o.quiet
def nc_stream_shuffle(dst: np.ndarray, src: Any, shuffle_mask: Any) -> np.ndarray:
    """Within each 32-partition quadrant: ``dst[q*32 + i] = src[q*32 + shuffle_mask[i]]``; mask 255 leaves
    ``dst[q*32 + i]`` unchanged. Bit-exact; dtypes and elements per partition must match; in place allowed.

    >>> import numpy as np
    >>> s = np.arange(4, dtype=np.float32)[:, None]
    >>> nc_stream_shuffle(np.full((4, 1), -1, np.float32), s, [1, 0, 255, 3] + [255] * 28).ravel()
    array([ 1.,  0., -1.,  3.], dtype=float32)
    """
    instr = "nc_stream_shuffle"
    check_dst(dst, instr)
    s = _o.tile(src, "src", instr)
    if s.dtype != dst.dtype or s[0].size != dst[0].size:
        raise ShapeError(f"{instr}: src {s.shape} {s.dtype} and dst {dst.shape} {dst.dtype} need the same dtype and "
                         "elements per partition")
    mask = [int(m) for m in shuffle_mask]
    if len(mask) != QUADRANT or any(not (0 <= m < QUADRANT or m == 255) for m in mask):
        raise EmulatorError(f"{instr}: shuffle_mask must be {QUADRANT} entries in 0..{QUADRANT - 1} or 255, got "
                            f"{shuffle_mask!r}")
    out_rows, in_rows = shuffle_rows(mask, dst.shape[0])
    bad = in_rows >= s.shape[0]
    if bad.any():
        p, q = int(out_rows[bad][0]), int(in_rows[bad][0])
        raise ShapeError(f"{instr}: dst partition {p} reads src partition {q} but src has {s.shape[0]}")
    flat_src = s.reshape(s.shape[0], -1)[in_rows]  # fancy indexing copies: the in-place case is safe
    flat_dst = dst.reshape(dst.shape[0], -1)
    flat_dst[out_rows] = flat_src
    if not np.shares_memory(flat_dst, dst):
        dst[...] = flat_dst.reshape(dst.shape)
    return dst


@_o.quiet
def nc_transpose(dst: np.ndarray, data: Any, engine: Any = "vector") -> np.ndarray:
    """Vector Engine transpose of a tile of at most [32, 32] (free dims flattened): bit-exact, dtype preserved.

    >>> import numpy as np
    >>> nc_transpose(np.empty((3, 2), np.int32), np.arange(6, dtype=np.int32).reshape(2, 3))
    array([[0, 3],
           [1, 4],
           [2, 5]], dtype=int32)
    """
    instr = "nc_transpose"
    check_dst(dst, instr)
    if _o.engine_name(engine) not in (None, "vector"):
        raise EmulatorError(f"{instr}: this is the Vector Engine form; engine {engine!r} is not handled here")
    x = _o.tile(data, "data", instr)
    flat = x.reshape(x.shape[0], -1)
    lim = VECTOR_TRANSPOSE_MAX
    if flat.shape[0] > lim or flat.shape[1] > lim:
        raise ShapeError(f"{instr}: data is {flat.shape[0]} x {flat.shape[1]} (free dims flattened); the Vector "
                         f"Engine transposes at most {lim} x {lim}")
    if x.dtype != dst.dtype:
        raise DtypeError(f"{instr}: dst dtype {dst.dtype} must equal data dtype {x.dtype}")
    if dst.shape[0] != flat.shape[1] or dst[0].size != flat.shape[0]:
        raise ShapeError(f"{instr}: dst has shape {dst.shape}; transposing {flat.shape} needs "
                         f"[{flat.shape[1]}, {flat.shape[0]}]")
    dst[...] = flat.T.reshape(dst.shape)
    return dst


_V = ("vector",)
INSTRUCTIONS: dict[str, Instruction] = {
    "tensor_copy_predicated": Instruction(tensor_copy_predicated, _V, ("src", "predicate"), ("dst",)),
    "select_reduce": Instruction(select_reduce, _V, ("predicate", "on_true", "on_false"), ("dst", "reduce_res"),
                                 "regs"),
    "range_select": Instruction(range_select, _V, ("on_true_tile", "bound0", "bound1"), ("dst", "reduce_res"),
                                "regs"),
    "max8": Instruction(max8, _V, ("src",), ("dst",)),
    "nc_find_index8": Instruction(nc_find_index8, _V, ("data", "vals"), ("dst",)),
    "nc_match_replace8": Instruction(nc_match_replace8, _V, ("data", "vals"), ("dst", "dst_idx")),
    "bn_stats": Instruction(bn_stats, _V, ("data",), ("dst",)),
    "bn_aggr": Instruction(bn_aggr, _V, ("data",), ("dst",)),
    "nc_stream_shuffle": Instruction(nc_stream_shuffle, _V, ("src",), ("dst",)),
    "nc_transpose": Instruction(nc_transpose, _V, ("data",), ("dst",)),
}
