"""GpSimd index instructions on NumPy arrays: ``nonzero_with_count``, ``local_gather``, ``sequence_bounds``, ``topk``.

GpSimd is eight cores, each wired to 16 contiguous SBUF partitions (``limits.GPSIMD_PARTITIONS_PER_CORE``). A core's
partitions are counted from the operand's partition 0, which must be a core's first partition (a multiple of 16;
:func:`check_core_start`, from the view's physical start partition), so rows 0, 16, 32, ... of an operand are the
cores' first partitions. All four move or produce values exactly (no rounding).

>>> import numpy as np
>>> from emulator.engines import gpsimd_index
>>> src = np.zeros((1, 8), np.float32); src[0, [1, 2, 5]] = 1.0
>>> gpsimd_index.nonzero_with_count(np.zeros((1, 9), np.int32), src, index_offset=16)
array([[17, 18, 21, -1, -1, -1, -1, -1,  3]], dtype=int32)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ArgumentError, DtypeError, ShapeError
from ..numerics import formats as _formats
from . import operands as _o
from .limits import GPSIMD_PARTITIONS_PER_CORE
from .operands import F32, Instruction, check_dst

__all__ = ["nonzero_with_count", "local_gather", "sequence_bounds", "topk", "core_rows", "gather_read", "snake_mask",
           "gathered_flags", "CORE_WISE", "check_core_start",
           "INSTRUCTIONS", "LOCAL_GATHER_ELEMS", "LOCAL_GATHER_MAX_INDICES", "TOPK_N", "TOPK_K"]

_CORE = GPSIMD_PARTITIONS_PER_CORE
_I32 = np.dtype(np.int32)
#: ``num_elem_per_idx`` values local_gather accepts, and its indices per GpSimd core (NKI API docs)
LOCAL_GATHER_ELEMS = (1, 2, 4, 8, 16, 32)
LOCAL_GATHER_MAX_INDICES = 4096


#: the instructions that work per GpSimd core (16 partitions each): their operands start on a core's first partition
CORE_WISE = ("nonzero_with_count", "local_gather", "topk")


def check_core_start(instr: str, operands: dict) -> None:
    """Refuse an on-chip operand of a core-wise instruction that does not start on a GpSimd core's first partition
    (a multiple of 16): its rows would belong to two cores, which the per-core rules here do not describe."""
    for role, t in operands.items():
        start = getattr(t, "start_partition", 0)
        if getattr(t, "kind", "hbm") != "hbm" and start % _CORE:
            raise ShapeError(f"{instr}: {role} starts at partition {start}; each GpSimd core owns {_CORE} partitions, "
                             f"so this instruction's operands must start at a multiple of {_CORE}")


def core_rows(rows: int) -> slice:
    """The rows of a ``rows``-partition operand that are a GpSimd core's first partition (0, 16, 32, ...)."""
    return slice(0, rows, _CORE)


def _int32(value: Any, role: str, instr: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ArgumentError(f"{instr}: {role} must be an int32 integer, got {value!r}")
    if not -2**31 <= int(value) < 2**31:
        raise ArgumentError(f"{instr}: {role}={value} does not fit int32 ({-2**31}..{2**31 - 1})")
    return int(value)


def nonzero_with_count(dst: np.ndarray, src: Any, index_offset: int = 0, padding_val: int = -1) -> np.ndarray:
    """Per GpSimd core's first partition p (rows 0, 16, ..., 112): ``dst[p]`` (flattened, ``T + 1`` int32) holds
    the positions ``i + index_offset`` of the nonzero elements of ``src[p]`` (flattened, ``T``) in increasing
    order, then ``padding_val`` up to position ``T - 1``, then the count at position ``T``. Other rows of ``dst``
    are not touched.

    ``src`` is float32 or int32; a float element is nonzero when it compares unequal to 0.0 (so -0.0 is zero and
    NaN is nonzero). ``index_offset`` and ``padding_val`` are int32; ``i + index_offset`` wraps to int32 as the
    32-bit integer ALU does.

    >>> import numpy as np
    >>> out = np.full((17, 4), 7, np.int32)
    >>> src = np.zeros((17, 3), np.int32); src[0] = [0, 5, -1]; src[16] = [0, 0, 0]
    >>> nonzero_with_count(out, src, padding_val=-9)[[0, 1, 16]]
    array([[ 1,  2, -9,  2],
           [ 7,  7,  7,  7],
           [-9, -9, -9,  0]], dtype=int32)
    """
    instr = "nonzero_with_count"
    check_dst(dst, instr)
    x = _o.tile(src, "src", instr)
    if x.dtype not in (np.dtype(F32), _I32):
        raise DtypeError(f"{instr}: src is {x.dtype}; it must be float32 or int32")
    if dst.dtype != _I32:
        raise DtypeError(f"{instr}: dst is {dst.dtype}; it must be int32")
    if x.shape[0] != dst.shape[0]:
        raise ShapeError(f"{instr}: src has {x.shape[0]} partitions and dst {dst.shape[0]}; they must match")
    t = x[0].size
    if dst[0].size != t + 1:
        raise ShapeError(f"{instr}: src has {t} elements per partition, so dst needs {t + 1} (the indices, then "
                         f"the count); dst {dst.shape} has {dst[0].size}")
    offset = _int32(index_offset, "index_offset", instr)
    pad = _int32(padding_val, "padding_val", instr)
    rows = core_rows(x.shape[0])
    vals = x[rows].reshape(-1, t)
    out = np.full((vals.shape[0], t + 1), pad, np.int64)
    for r, row in enumerate(vals):
        (hits,) = np.nonzero(row != 0)
        out[r, :hits.size] = hits + offset
        out[r, t] = hits.size
    out = ((out + 2**31) % 2**32) - 2**31  # int32 wraparound of i + index_offset
    dst[rows] = out.astype(np.int32).reshape(dst[rows].shape)
    return dst


def _gather_indices(index: np.ndarray, rows: int, valid: int) -> np.ndarray:
    """Per core, its 16-partition slice of ``index`` flattened partition-first ([cores, valid] int64)."""
    per_core = index.reshape(rows // _CORE, _CORE, -1)           # [core, partition, element]
    return per_core.transpose(0, 2, 1).reshape(rows // _CORE, -1)[:, :valid].astype(np.int64)


def local_gather(dst: np.ndarray, src_buffer: Any, index: Any, num_elem_per_idx: int = 1,
                 num_valid_indices: int | None = None) -> np.ndarray:
    """Each GpSimd core (16 partitions) gathers from its own partitions of ``src_buffer`` with its own indices:
    ``idx`` = the core's 16-partition slice of ``index`` (uint16) flattened partition first (element ``j`` is
    ``index[16 c + j % 16].flat[j // 16]``), its first ``num_valid_indices`` used; then for every partition p of
    the core ``dst[p].flat[j * E + e] = src_buffer[p].flat[idx[j] + e]``, ``E = num_elem_per_idx`` (NKI's NumPy
    reference of the instruction, with indices counting elements of the flattened free dims).

    Values move bit-exactly (``dst`` has ``src_buffer``'s dtype). The partition count of ``src_buffer``,
    ``index`` and ``dst`` is the same multiple of 16; ``E`` is one of 1, 2, 4, 8, 16, 32; at most 4096 indices per
    core; ``dst`` holds ``num_valid_indices * E`` elements per partition. NKI leaves an index past the end of
    ``src_buffer`` undefined; the emulator raises ``ShapeError`` naming it.

    >>> import numpy as np
    >>> src = np.arange(16 * 4, dtype=np.float32).reshape(16, 4)
    >>> index = np.zeros((16, 1), np.uint16); index[0, 0], index[1, 0] = 3, 1
    >>> local_gather(np.empty((16, 2), np.float32), src, index, num_valid_indices=2)[:2]
    array([[3., 1.],
           [7., 5.]], dtype=float32)
    """
    instr = "local_gather"
    check_dst(dst, instr)
    data, idx = _o.tile(src_buffer, "src_buffer", instr), _o.tile(index, "index", instr)
    rows = data.shape[0]
    if not rows == idx.shape[0] == dst.shape[0] or rows % _CORE:
        raise ShapeError(f"{instr}: src_buffer {data.shape}, index {idx.shape} and dst {dst.shape} must have the "
                         f"same partition count, a multiple of {_CORE} (one GpSimd core per {_CORE} partitions)")
    if idx.dtype != np.uint16:
        raise DtypeError(f"{instr}: index is {idx.dtype}; the gather indices must be uint16")
    if data.dtype != dst.dtype:
        raise DtypeError(f"{instr}: src_buffer is {data.dtype} and dst is {dst.dtype}; dst must have src_buffer's "
                         "dtype (the gather does not convert)")
    elems = num_elem_per_idx
    if isinstance(elems, bool) or not isinstance(elems, (int, np.integer)) or elems not in LOCAL_GATHER_ELEMS:
        raise ArgumentError(f"{instr}: num_elem_per_idx={elems!r} must be one of {LOCAL_GATHER_ELEMS}")
    per_core = idx[0].size * _CORE
    valid = per_core if num_valid_indices is None else num_valid_indices
    if isinstance(valid, bool) or not isinstance(valid, (int, np.integer)) or not 1 <= valid <= per_core:
        raise ArgumentError(f"{instr}: num_valid_indices={valid!r} must be an int in 1..{per_core} (the indices "
                            f"in one core's {_CORE}-partition slice of index {idx.shape})")
    if valid > LOCAL_GATHER_MAX_INDICES:
        raise ShapeError(f"{instr}: {valid} indices per GpSimd core; the limit is {LOCAL_GATHER_MAX_INDICES}")
    if dst[0].size != valid * elems:
        raise ShapeError(f"{instr}: dst has {dst[0].size} elements per partition; {valid} indices x "
                         f"num_elem_per_idx {elems} gather {valid * elems}")
    free = data[0].size
    starts = _gather_indices(idx, rows, int(valid))
    bad = starts + elems > free
    if bad.any():
        c, j = map(int, np.argwhere(bad)[0])
        raise ShapeError(f"{instr}: index of core {c} (partitions {c * _CORE}..{c * _CORE + _CORE - 1}) element {j} "
                         f"is {starts[c, j]}; with num_elem_per_idx {elems} it reads past the {free} elements per "
                         "partition of src_buffer")
    dst[...] = _take(data, starts, elems).reshape(dst.shape)
    return dst


def _take(data: np.ndarray, starts: np.ndarray, elems: int) -> np.ndarray:
    """Every partition of a core takes ``elems`` elements of its own row of ``data`` from each of the core's
    ``starts`` ([cores, valid]): [P, valid * elems]."""
    rows = data.shape[0]
    cols = (starts[:, :, None] + np.arange(elems)).reshape(rows // _CORE, 1, -1)   # [core, 1, valid * E]
    return np.take_along_axis(data.reshape(rows // _CORE, _CORE, -1), cols, axis=2).reshape(rows, -1)


def gathered_flags(written: np.ndarray, index: np.ndarray, num_elem_per_idx: int,
                   num_valid_indices: int | None) -> np.ndarray:
    """local_gather applied to ``src_buffer``'s written-flags (``written``, one bool per element): which of dst's
    elements ([P, valid * E]) come from written ones. The indices are in range (the instruction has run)."""
    valid = index[0].size * _CORE if num_valid_indices is None else int(num_valid_indices)
    return _take(written, _gather_indices(index, written.shape[0], valid), num_elem_per_idx)


def gather_read(index: np.ndarray, src_shape: tuple, num_elem_per_idx: int,
                num_valid_indices: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The elements local_gather reads: (index mask, src_buffer mask), for the uninitialised-read check. Indices
    out of range are left out (the instruction itself raises on them)."""
    rows = index.shape[0]
    idx_mask = np.zeros(index.shape, bool)
    src_mask = np.zeros(src_shape, bool)
    if rows == 0 or rows % _CORE or src_shape[0] != rows:
        return idx_mask, src_mask
    per_core = index[0].size * _CORE
    try:
        valid = per_core if num_valid_indices is None else max(0, min(int(num_valid_indices), per_core))
    except (TypeError, ValueError):
        return idx_mask, src_mask  # the instruction raises on the argument
    pos = _gather_indices(np.arange(index.size).reshape(index.shape), rows, valid)
    idx_mask.reshape(-1)[pos.reshape(-1)] = True
    starts = _gather_indices(index, rows, valid)
    free = int(np.prod(src_shape[1:], dtype=np.int64))
    elems = int(num_elem_per_idx) if num_elem_per_idx in LOCAL_GATHER_ELEMS else 1
    cols = (starts[:, :, None] + np.arange(elems)).reshape(rows // _CORE, -1)
    flat = src_mask.reshape(rows // _CORE, _CORE, free)
    for c, k in enumerate(cols):
        flat[c][:, k[k < free]] = True
    return idx_mask, src_mask


def sequence_bounds(dst: np.ndarray, segment_ids: Any) -> np.ndarray:
    """For each element i of ``segment_ids`` ([1, n], flattened): the start and end (one past the last) of the
    run of equal ids it belongs to; ``dst`` is [1, 2, n] (starts, then ends). An id of 0 is padding: start ``n``,
    end ``-1``. Ids are non-negative integers (the emulator raises ``ArgumentError`` on others); ``dst`` and
    ``segment_ids`` are float32 or int32 (values are exact).

    >>> import numpy as np
    >>> ids = np.array([[0, 1, 1, 2, 2, 2, 0, 3, 3]], np.int32)
    >>> sequence_bounds(np.empty((1, 2, 9), np.int32), ids)
    array([[[ 9,  1,  1,  3,  3,  3,  9,  7,  7],
            [-1,  3,  3,  6,  6,  6, -1,  9,  9]]], dtype=int32)
    """
    instr = "sequence_bounds"
    check_dst(dst, instr)
    ids = _o.tile(segment_ids, "segment_ids", instr)
    for role, dt in (("segment_ids", ids.dtype), ("dst", dst.dtype)):
        if dt not in (np.dtype(F32), _I32):
            raise DtypeError(f"{instr}: {role} is {dt}; it must be float32 or int32")
    if ids.shape[0] != 1 or dst.shape[0] != 1:
        raise ShapeError(f"{instr}: segment_ids {ids.shape} and dst {dst.shape} must have 1 partition")
    n = ids.size
    if dst.size != 2 * n:
        raise ShapeError(f"{instr}: segment_ids has {n} elements, so dst needs [1, 2, {n}] ({2 * n} elements); "
                         f"dst {dst.shape} has {dst.size}")
    v = ids.reshape(-1).astype(np.float64)
    bad = ~np.isfinite(v) | (v < 0) | (v != np.floor(v))
    if bad.any():
        i = int(np.argmax(bad))
        raise ArgumentError(f"{instr}: segment_ids element {i} is {ids.reshape(-1)[i]}; segment ids must be "
                            "non-negative integers (0 = padding)")
    pos = np.arange(n)
    new_run = np.ones(n, bool)
    new_run[1:] = v[1:] != v[:-1]
    starts = np.maximum.accumulate(np.where(new_run, pos, 0))
    run_end = np.ones(n, bool)
    run_end[:-1] = v[:-1] != v[1:]
    ends = np.minimum.accumulate(np.where(run_end, pos + 1, n)[::-1])[::-1]
    pad = v == 0
    out = np.stack([np.where(pad, n, starts), np.where(pad, -1, ends)])
    dst[...] = out.astype(dst.dtype).reshape(dst.shape)
    return dst


#: topk's limits (NKI API docs): 8 <= n < 65536 snake elements, 1 <= K < 32768 and K <= n
TOPK_N = (8, 65536)
TOPK_K = (1, 32768)
_BF16 = np.dtype(_formats.get("bfloat16").ml_dtype)


def snake_mask(shape: tuple, count: int) -> np.ndarray:
    """The elements of a [P, X] tile holding snake positions 0..count-1 of every 16-partition group: position i of
    group g is partition ``16 g + i % 16``, column ``i // 16``."""
    mask = np.zeros((shape[0], int(np.prod(shape[1:], dtype=np.int64))), bool)
    i = np.arange(min(count, mask.shape[1] * _CORE))
    for g in range(0, shape[0] - shape[0] % _CORE, _CORE):
        mask[g + i % _CORE, i // _CORE] = True
    return mask.reshape(shape)


def _topk_order(vals: np.ndarray) -> np.ndarray:
    """Positions of ``vals`` (fp32) by rank, lowest first: by value (-0 == +0, NaN above +inf), equal values with
    the lower position ranked higher."""
    key = np.where(np.isnan(vals), np.inf, vals)
    nan = np.isnan(vals)
    return np.lexsort((-np.arange(vals.size), key, nan))


def topk(val_dst: np.ndarray, idx_dst: np.ndarray, src: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per 16-partition group (a GpSimd core), over the ``n`` bf16 elements of its snake (element ``i`` at
    partition ``16 g + i % 16``, column ``i // 16`` of ``src``): the K largest, ``K = val_dst``'s free size, in
    ascending order, written in the same snake layout (rank ``j`` at partition ``16 g + j % 16``, column
    ``j // 16``): their values (bf16, exact) into ``val_dst`` and their snake positions (uint32) into ``idx_dst``.
    The other elements of the outputs are not touched. Ranking: by value, ``-0 == +0``, NaN above +inf; among equal
    values the lower position ranks higher (the rules of ``max8``).

    >>> import numpy as np, ml_dtypes
    >>> src = np.zeros((16, 1), ml_dtypes.bfloat16); src[:, 0] = np.arange(16)[::-1]
    >>> val, idx = np.zeros((16, 2), ml_dtypes.bfloat16), np.zeros((16, 2), np.uint32)
    >>> _ = topk(val, idx, src, n=8)
    >>> val[:2, 0].astype(np.float32), idx[:2, 0]
    (array([14., 15.], dtype=float32), array([1, 0], dtype=uint32))
    """
    instr = "topk"
    check_dst(val_dst, instr)
    check_dst(idx_dst, instr)
    x = _o.tile(src, "src", instr)
    for role, dt, want in (("src", x.dtype, _BF16), ("val_dst", val_dst.dtype, _BF16),
                           ("idx_dst", idx_dst.dtype, np.dtype(np.uint32))):
        if dt != want:
            raise DtypeError(f"{instr}: {role} is {dt}; it must be {want}")
    rows = x.shape[0]
    if rows % _CORE or val_dst.shape[0] != rows or idx_dst.shape[0] != rows:
        raise ShapeError(f"{instr}: src {x.shape}, val_dst {val_dst.shape} and idx_dst {idx_dst.shape} need the same "
                         f"partition count, a multiple of {_CORE}")
    k = val_dst[0].size
    if idx_dst[0].size != k:
        raise ShapeError(f"{instr}: val_dst has {k} elements per partition and idx_dst {idx_dst[0].size}; both are K")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not TOPK_N[0] <= n < TOPK_N[1]:
        raise ArgumentError(f"{instr}: n={n!r} must be an int with {TOPK_N[0]} <= n < {TOPK_N[1]}")
    if not TOPK_K[0] <= k < TOPK_K[1] or k > n:
        raise ShapeError(f"{instr}: K = {k} (val_dst's free size) must satisfy {TOPK_K[0]} <= K < {TOPK_K[1]} and "
                         f"K <= n = {n}")
    cols = x[0].size
    if cols * _CORE < n:
        raise ShapeError(f"{instr}: src has {cols} elements per partition; n = {n} needs at least {-(-n // _CORE)}")
    i, j = np.arange(n), np.arange(k)
    flat = _o.f32(x, "src", instr).reshape(rows, cols)
    flat_bits = x.reshape(rows, cols)
    vals, idxs = val_dst.reshape(rows, -1), idx_dst.reshape(rows, -1)
    for g in range(0, rows, _CORE):
        order = _topk_order(flat[g + i % _CORE, i // _CORE])[n - k:]
        vals[g + j % _CORE, j // _CORE] = flat_bits[g + order % _CORE, order // _CORE]
        idxs[g + j % _CORE, j // _CORE] = order
    return val_dst, idx_dst


INSTRUCTIONS: dict[str, Instruction] = {
    "topk": Instruction(topk, ("gpsimd",), ("src",), ("val_dst", "idx_dst")),
    "nonzero_with_count": Instruction(nonzero_with_count, ("gpsimd",), ("src",), ("dst",)),
    "local_gather": Instruction(local_gather, ("gpsimd",), ("index", "src_buffer"), ("dst",)),
    "sequence_bounds": Instruction(sequence_bounds, ("gpsimd",), ("segment_ids",), ("dst",)),
}
