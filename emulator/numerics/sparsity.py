"""M:N structured sparsity: prune, check, compress and decompress operands for the sparse Tensor Engine path.

The NeuronCore-v3/v4 PE array accepts a *stationary* operand in which every ``n`` consecutive contraction (K)
elements hold at most ``m`` non-zeros, for the patterns 4:16, 4:12, 4:8, 2:8, 2:4, 1:4 and 1:2 (reference 3.3).
NKI has no public API for it yet, so this module defines the emulator's:

* :func:`prune` keeps the ``m`` largest-magnitude elements of each group (ties: lowest index) and zeroes the rest;
  :func:`mask` is the same selection as a boolean array; ``score=`` prunes by any other criterion.
* :func:`is_m_n` / :func:`validate_m_n` check an operand; the error names the first offending group and its count.
* :func:`compress` -> ``(values, tags)``: exactly ``m`` values per group, in position order, and the 4-bit position
  of each inside its group, packed four per ``uint16`` along the last axis (:func:`pack_tags`: nibble ``q`` of word
  ``w`` is the tag of element ``4w + q``, bits ``[4q, 4q+4)``, the same order as the x4 types);
  :func:`decompress` is its exact inverse.
* :func:`report` measures what pruning costs a model: the weight energy kept and the matmul error.

Every function works on float arrays of any Tensor Engine dtype (float32, bfloat16, float16, float8_*; also float64
and float4_e2m1fn) and on raw code arrays (unsigned integers) with ``fmt=`` naming their format. Elements are
handled as bit patterns: a value is zero when its exponent and mantissa bits are zero (so -0 is zero), and
magnitude order is the order of those bits (NaN above inf above every finite value).

>>> import numpy as np
>>> from emulator.numerics import sparsity
>>> w = np.array([[1.0, -3.0], [-4.0, 0.5], [2.0, 0.0], [0.5, 7.0]], dtype=np.float32)
>>> sparsity.prune(w, 2, 4)
array([[ 0., -3.],
       [-4.,  0.],
       [ 2.,  0.],
       [ 0.,  7.]], dtype=float32)
>>> values, tags = sparsity.compress(sparsity.prune(w, 2, 4), 2, 4)
>>> values.tolist(), tags.dtype, sparsity.unpack_tags(tags, 2).tolist()   # tags per column: 1,2 and 0,3
([[-4.0, -3.0], [2.0, 7.0]], dtype('uint16'), [[1, 0], [2, 3]])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError, DtypeError, EmulatorError, ShapeError
from . import _sparsity_kernels as _k
from . import formats as _formats

__all__ = [
    "PATTERNS", "NotMNError", "check_pattern", "prune", "mask", "is_m_n", "validate_m_n", "compress", "decompress",
    "pack_tags", "unpack_tags", "report", "SparsityReport",
]

#: The (m, n) patterns the NeuronCore-v4 Tensor Engine supports: at most m non-zeros in every n contraction elements.
PATTERNS: tuple[tuple[int, int], ...] = ((4, 16), (4, 12), (4, 8), (2, 8), (2, 4), (1, 4), (1, 2))

_TAG_BITS = 4
_TAGS_PER_WORD = 4


class NotMNError(EmulatorError, ValueError):
    """An operand breaks its M:N pattern (a group holds more than m non-zeros), or its tags are inconsistent."""


def check_pattern(m: Any, n: Any) -> tuple[int, int]:
    """Validate an M:N pattern; returns ``(m, n)`` as ints.

    Raises ``ValueError`` naming the supported patterns for anything else (3:7, 5:4, 0:4, 2:2...).

    >>> check_pattern(2, 4)
    (2, 4)
    """
    for name, v in (("m", m), ("n", n)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ArgumentTypeError(f"sparsity pattern: {name} must be an integer, got {v!r}")
    if (int(m), int(n)) not in PATTERNS:
        supported = ", ".join(f"{a}:{b}" for a, b in PATTERNS)
        raise ArgumentError(f"sparsity pattern {m}:{n} is not supported by the Tensor Engine; supported: {supported}")
    return int(m), int(n)


# ---------------------------------------------------------------------------------------------------------------
# operand plumbing
# ---------------------------------------------------------------------------------------------------------------
def _uint(itemsize: int) -> np.dtype:
    return np.dtype({1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[itemsize])


def _as_codes(x: Any, fmt: Any, name: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(original array, its bit patterns as a C-contiguous unsigned view, magnitude mask)."""
    arr = np.asarray(x, order="C") if isinstance(x, (np.ndarray, np.generic)) else np.asarray(x, np.float64, order="C")
    kind = arr.dtype.kind
    if kind == "u":
        if fmt is None:
            raise DtypeError(
                f"{name}: an unsigned integer array holds codes; pass fmt= (e.g. fmt='bfloat16') so zero and "
                f"magnitude are known, got dtype {arr.dtype} without fmt"
            )
        f = _formats.get(fmt)
        if arr.dtype != f.code_dtype:
            raise DtypeError(f"{name}: {f.name} codes are {f.code_dtype}, got dtype {arr.dtype}")
        return arr, arr, f.magnitude_mask
    if fmt is not None:
        raise DtypeError(f"{name}: fmt= is only for raw code arrays (unsigned integers), got dtype {arr.dtype}")
    if arr.dtype == np.float64:
        return arr, arr.view(np.uint64), (1 << 63) - 1
    try:
        f = _formats.get(arr.dtype)
    except (TypeError, ValueError):
        raise DtypeError(
            f"{name}: dtype {arr.dtype} is not supported; use float32, float64, float16, bfloat16, float8_* "
            f"or an unsigned code array with fmt="
        ) from None
    return arr, arr.view(_uint(arr.dtype.itemsize)), f.magnitude_mask


def _axis(arr: np.ndarray, axis: Any, name: str) -> int:
    if arr.ndim == 0:
        raise ShapeError(f"{name}: a 0-d array has no axis to make sparse")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ArgumentTypeError(f"{name}: axis must be an integer, got {axis!r}")
    if not -arr.ndim <= axis < arr.ndim:
        raise ShapeError(f"{name}: axis {axis} is out of range for a {arr.ndim}-d array")
    return int(axis) % arr.ndim


def _view3(arr: np.ndarray, axis: int) -> np.ndarray:
    shape = arr.shape
    return arr.reshape(int(np.prod(shape[:axis], dtype=np.int64)), shape[axis],
                       int(np.prod(shape[axis + 1:], dtype=np.int64)))


def _check_groups(arr: np.ndarray, axis: int, n: int, name: str) -> None:
    if arr.shape[axis] % n:
        raise ShapeError(
            f"{name}: axis {axis} has {arr.shape[axis]} elements, not a multiple of the group size n={n}; "
            f"zero-pad it to {-(-arr.shape[axis] // n) * n}"
        )


def _group_where(shape: tuple, axis: int, n: int, flat: int) -> str:
    """Human description of the group with flat index ``flat`` (C order of groups)."""
    gshape = shape[:axis] + (shape[axis] // n,) + shape[axis + 1:]
    idx = np.unravel_index(flat, gshape)
    g = int(idx[axis])
    others = tuple(int(i) for k, i in enumerate(idx) if k != axis)
    where = f" at index {list(others)} of the other axes" if others else ""
    return f"group {g} along axis {axis} (elements {g * n}..{g * n + n - 1}){where}"


# ---------------------------------------------------------------------------------------------------------------
# pruning and checks
# ---------------------------------------------------------------------------------------------------------------
def mask(x: Any, m: int, n: int, axis: int = 0, score: Any = None, fmt: Any = None) -> np.ndarray:
    """Boolean array, True at the ``m`` elements of each group of ``n`` (along ``axis``) that :func:`prune` keeps.

    Parameters
    ----------
    x : float array of any emulated dtype, or unsigned code array with ``fmt``.
    m, n : a supported pattern (:data:`PATTERNS`).
    axis : the contraction axis; its length must be a multiple of ``n``.
    score : optional array of ``x``'s shape; larger keeps first (default: ``|x|``, NaN counting as the largest).
        Must not hold NaN.
    fmt : the format of a code array.

    Exactly ``m`` elements of every group are True, also in groups with fewer than ``m`` non-zeros. Ties (equal
    magnitude or score, +0 and -0 included) go to the lowest index.

    >>> mask(np.array([1.0, -2.0, 2.0, 0.5]), 2, 4).tolist()
    [False, True, True, False]
    """
    m, n = check_pattern(m, n)
    arr, codes, magmask = _as_codes(x, fmt, "mask: x")
    ax = _axis(arr, axis, "mask: x")
    _check_groups(arr, ax, n, "mask: x")
    out = np.empty(arr.shape, dtype=bool)
    if score is None:
        _k.keep_mask_codes(_view3(codes, ax), codes.dtype.type(magmask), m, n, _view3(out, ax))
        return out
    sc = np.asarray(score)
    if sc.shape != arr.shape:
        raise ShapeError(f"mask: score has shape {sc.shape}; it must match x's shape {arr.shape}")
    if sc.dtype.kind not in "fiub":
        raise DtypeError(f"mask: score must be a real numeric array, got dtype {sc.dtype}")
    sc = np.ascontiguousarray(sc, dtype=np.float64)
    if np.isnan(sc).any():
        raise ArgumentError(f"mask: score holds {int(np.isnan(sc).sum())} NaN value(s); scores must be ordered")
    _k.keep_mask_scores(_view3(sc, ax), m, n, _view3(out, ax))
    return out


def prune(x: Any, m: int, n: int, axis: int = 0, score: Any = None, fmt: Any = None) -> np.ndarray:
    """Keep the ``m`` largest-magnitude elements of each group of ``n`` along ``axis``; set the rest to +0.

    Returns a new array of ``x``'s dtype (codes stay codes: pruned elements become code 0). Kept elements keep their
    bit pattern. Ties go to the lowest index; NaN ranks above inf, so pruning never silently hides a NaN unless a
    group holds more than ``m`` of them. See :func:`mask` for the parameters.

    >>> prune(np.array([[1.0], [-2.0], [2.0], [0.5]], dtype=np.float32), 1, 2).ravel().tolist()
    [0.0, -2.0, 2.0, 0.0]
    """
    keep = mask(x, m, n, axis=axis, score=score, fmt=fmt)
    arr, codes, _ = _as_codes(x, fmt, "prune: x")
    return np.where(keep, codes, codes.dtype.type(0)).view(arr.dtype)


def _violation(x: Any, m: int, n: int, axis: int, fmt: Any, name: str):
    m, n = check_pattern(m, n)
    arr, codes, magmask = _as_codes(x, fmt, name)
    ax = _axis(arr, axis, name)
    _check_groups(arr, ax, n, name)
    flat, count = _k.first_violation(_view3(codes, ax), codes.dtype.type(magmask), m, n)
    return arr, codes, magmask, ax, int(flat), int(count)


def is_m_n(x: Any, m: int, n: int, axis: int = 0, fmt: Any = None) -> bool:
    """True when every group of ``n`` consecutive elements along ``axis`` holds at most ``m`` non-zeros.

    -0 counts as zero; NaN and inf count as non-zeros.

    >>> is_m_n(np.array([0.0, 3.0, -0.0, 1.0]), 2, 4), is_m_n(np.array([1.0, 3.0, 0.0, 1.0]), 2, 4)
    (True, False)
    """
    return _violation(x, m, n, axis, fmt, "is_m_n: x")[4] < 0


def validate_m_n(x: Any, m: int, n: int, axis: int = 0, fmt: Any = None, name: str = "operand") -> None:
    """Raise :class:`NotMNError` naming the first group (C order) that holds more than ``m`` non-zeros.

    >>> validate_m_n(np.array([1.0, 3.0, 0.0, 1.0]), 2, 4, name="w")
    Traceback (most recent call last):
    ...
    emulator.numerics.sparsity.NotMNError: w is not 2:4 along axis 0: group 0 along axis 0 (elements 0..3) has 3 non-zeros; at most 2 are allowed (prune it first)
    """
    arr, _, _, ax, flat, count = _violation(x, m, n, axis, fmt, name)
    if flat >= 0:
        raise NotMNError(
            f"{name} is not {m}:{n} along axis {ax}: {_group_where(arr.shape, ax, n, flat)} has {count} non-zeros; "
            f"at most {m} are allowed (prune it first)"
        )


# ---------------------------------------------------------------------------------------------------------------
# compression
# ---------------------------------------------------------------------------------------------------------------
def pack_tags(tags: Any) -> np.ndarray:
    """Pack 4-bit tags four per ``uint16`` along the last axis: element ``4w + q`` goes to bits ``[4q, 4q+4)``.

    A last axis that is not a multiple of 4 is padded with zero nibbles.

    >>> hex(int(pack_tags(np.array([1, 2, 3, 0xF]))[0]))
    '0xf321'
    """
    t = np.asarray(tags)
    if t.dtype.kind not in "iu":
        raise DtypeError(f"pack_tags: tags must be integers, got dtype {t.dtype}")
    if t.ndim == 0:
        raise ShapeError("pack_tags: tags must have at least one axis")
    if t.size and (t.min() < 0 or t.max() > 15):
        raise ArgumentError(f"pack_tags: tags must lie in 0..15, got {int(t.min())}..{int(t.max())}")
    pad = (-t.shape[-1]) % _TAGS_PER_WORD
    t16 = t.astype(np.uint16)
    if pad:
        t16 = np.concatenate([t16, np.zeros(t.shape[:-1] + (pad,), np.uint16)], axis=-1)
    t16 = t16.reshape(t.shape[:-1] + (-1, _TAGS_PER_WORD))
    words = t16[..., 0].copy()
    for q in range(1, _TAGS_PER_WORD):
        words |= t16[..., q] << np.uint16(_TAG_BITS * q)
    return words


def unpack_tags(words: Any, count: int) -> np.ndarray:
    """Inverse of :func:`pack_tags`: ``[..., W]`` uint16 words -> ``[..., count]`` uint8 tags (``count <= 4W``).

    >>> unpack_tags(np.array([0xF321], dtype=np.uint16), 3).tolist()
    [1, 2, 3]
    """
    w = np.asarray(words)
    if w.dtype != np.uint16:
        raise DtypeError(f"unpack_tags: tag words must be uint16, got dtype {w.dtype}")
    if w.ndim == 0 or not 0 <= count <= _TAGS_PER_WORD * w.shape[-1]:
        raise ShapeError(f"unpack_tags: {count} tags do not fit in tag words of shape {w.shape} (4 per word)")
    out = np.empty(w.shape[:-1] + (count,), dtype=np.uint8)
    W = w.shape[-1]
    if out.size == 0:
        return out
    _k.unpack_nibbles(np.ascontiguousarray(w).reshape(-1, W), out.reshape(-1, count))
    return out


def compress(x: Any, m: int, n: int, axis: int = 0, fmt: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Compress an M:N operand to ``(values, tags)``.

    Parameters
    ----------
    x : an operand with at most ``m`` non-zeros per group of ``n`` along ``axis`` (float array of any emulated
        dtype, or unsigned codes with ``fmt``). Anything else raises :class:`NotMNError` naming the first group.
    m, n, axis : the pattern and the contraction axis (its length a multiple of ``n``).

    Returns
    -------
    values : ``x``'s dtype, ``x``'s shape with ``axis`` shrunk by ``m/n``: the ``m`` kept entries of each group, in
        position order. A group with fewer than ``m`` non-zeros is padded with its own zero entries (signed zeros
        before +0, lowest index first), so the kept positions are always distinct.
    tags : ``uint16``, ``values.shape[:-1] + (ceil(values.shape[-1] / 4),)``: the position (0..n-1) of each value
        inside its group, packed four per word along the last axis as in :func:`pack_tags`.

    ``decompress(*compress(x, m, n, axis), m, n, axis)`` reproduces ``x`` bit for bit whenever every group has at
    most ``m`` elements whose bit pattern is not +0 (so always for :func:`prune` output); extra -0 entries come back
    as +0.

    >>> v, t = compress(np.array([0.0, 5.0, 0.0, -1.0], dtype=np.float32), 2, 4)
    >>> v.tolist(), hex(int(t[0]))
    ([5.0, -1.0], '0x31')
    """
    arr, codes, magmask, ax, flat, count = _violation(x, m, n, axis, fmt, "compress: x")
    m, n = int(m), int(n)
    if flat >= 0:
        raise NotMNError(
            f"compress: x is not {m}:{n} along axis {ax}: {_group_where(arr.shape, ax, n, flat)} has {count} "
            f"non-zeros; at most {m} are allowed (prune it first)"
        )
    vshape = arr.shape[:ax] + (arr.shape[ax] // n * m,) + arr.shape[ax + 1:]
    values = np.empty(vshape, dtype=codes.dtype)
    tags = np.empty(vshape, dtype=np.uint8)
    _k.compress_codes(_view3(codes, ax), codes.dtype.type(magmask), m, n, _view3(values, ax), _view3(tags, ax))
    return values.view(arr.dtype), pack_tags(tags)


def decompress(values: Any, tags: Any, m: int, n: int, axis: int = 0) -> np.ndarray:
    """Exact inverse of :func:`compress`: scatter each value to the position its tag names; +0 (code 0) elsewhere.

    Bit patterns are preserved for every dtype (signed zeros, NaN payloads; code arrays stay codes). Tags must be
    ``uint16`` words of the shape :func:`compress` returns, name positions below ``n`` and be distinct within a
    group (in any order); :class:`NotMNError` names the first group that breaks this. Padding nibbles past the last
    value are ignored.

    >>> decompress(np.array([5.0, -1.0]), np.array([0x31], dtype=np.uint16), 2, 4).tolist()
    [0.0, 5.0, 0.0, -1.0]
    """
    m, n = check_pattern(m, n)
    v = (np.asarray(values, order="C") if isinstance(values, (np.ndarray, np.generic))
         else np.asarray(values, np.float64, order="C"))
    ax = _axis(v, axis, "decompress: values")
    if v.shape[ax] % m:
        raise ShapeError(f"decompress: values has {v.shape[ax]} elements on axis {ax}, not a multiple of m={m}")
    if v.dtype.itemsize not in (1, 2, 4, 8) or v.dtype.kind not in "fuiV":
        raise DtypeError(f"decompress: values dtype {v.dtype} is not a float or code dtype")
    t = np.asarray(tags)
    want = v.shape[:-1] + (-(-v.shape[-1] // _TAGS_PER_WORD),)
    if t.dtype != np.uint16:
        raise DtypeError(f"decompress: tags must be uint16 words (4 tags each), got dtype {t.dtype}")
    if t.shape != want:
        raise ShapeError(f"decompress: tags has shape {t.shape}; values of shape {v.shape} need tags of shape {want}")
    nib = np.ascontiguousarray(unpack_tags(t, v.shape[-1]))
    codes = v.view(_uint(v.dtype.itemsize))
    oshape = v.shape[:ax] + (v.shape[ax] // m * n,) + v.shape[ax + 1:]
    out = np.zeros(oshape, dtype=codes.dtype)
    flat, why = _k.decompress_codes(_view3(codes, ax), _view3(nib, ax), m, n, _view3(out, ax))
    if flat >= 0:
        rule = f"names a position >= n={n}" if why == 1 else "names the same position twice"
        where = _group_where(oshape, ax, n, int(flat))
        raise NotMNError(f"decompress: the tags of {where} are invalid: a tag {rule}")
    return out.view(v.dtype)



# ---------------------------------------------------------------------------------------------------------------
# what pruning costs
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SparsityReport:
    """What pruning a weight to M:N costs (see :func:`report`). Energies and errors are computed in float64."""

    pattern: str
    axis: int
    elements: int
    nonzeros_before: int
    nonzeros_after: int
    energy_kept: float
    matmul_rel_error: float | None = None
    matmul_max_abs_error: float | None = None

    def __str__(self) -> str:
        lines = [
            f"{self.pattern} along axis {self.axis}: {self.elements} elements, non-zeros {self.nonzeros_before} -> "
            f"{self.nonzeros_after} (density {self.nonzeros_after / max(self.elements, 1):.3f})",
            f"  weight energy kept (sum w^2 after / before): {self.energy_kept:.6f}",
        ]
        if self.matmul_rel_error is not None:
            lines.append(f"  matmul vs dense: relative Frobenius error {self.matmul_rel_error:.3e}, "
                         f"max abs error {self.matmul_max_abs_error:.3e}")
        return "\n".join(lines)


def _float64(arr: np.ndarray, fmt: Any) -> np.ndarray:
    if fmt is None:
        return arr.astype(np.float64)
    f = _formats.get(fmt)
    view = np.dtype(np.float32) if f.ml_dtype is None else f.ml_dtype  # tfloat32 codes are fp32 bit patterns
    return arr.view(view).astype(np.float64)


def report(w: Any, m: int, n: int, axis: int = 0, moving: Any = None, score: Any = None,
           fmt: Any = None) -> SparsityReport:
    """Measure what M:N pruning of ``w`` costs: the fraction of weight energy kept and the matmul error.

    Parameters
    ----------
    w : the dense weight (any dtype :func:`prune` takes); ``axis`` is its contraction axis.
    moving : optional activations ``[K, ...]`` contracted with ``w`` along ``axis`` (``K = w.shape[axis]``); then
        the report adds the error of ``prune(w) . moving`` against ``w . moving`` (relative Frobenius and max abs).
    score, fmt : as for :func:`prune`.

    >>> r = report(np.array([[3.0], [-4.0], [0.0], [0.0]]), 1, 2, moving=np.ones((4, 2)))
    >>> round(r.energy_kept, 4), round(r.matmul_rel_error, 4)
    (0.64, 3.0)
    """
    m, n = check_pattern(m, n)
    pruned = prune(w, m, n, axis=axis, score=score, fmt=fmt)
    arr, codes, magmask = _as_codes(w, fmt, "report: w")
    ax = _axis(arr, axis, "report: w")
    dense = _float64(arr, fmt)
    sparse = _float64(pruned, fmt)
    total = float(np.sum(dense * dense))
    kept = float(np.sum(sparse * sparse))
    rel = max_abs = None
    if moving is not None:
        mv = np.asarray(moving).astype(np.float64)
        if mv.ndim == 0 or mv.shape[0] != arr.shape[ax]:
            raise ShapeError(f"report: moving has shape {mv.shape}; its first axis must be K={arr.shape[ax]}")
        ref = np.tensordot(dense, mv, axes=([ax], [0]))
        got = np.tensordot(sparse, mv, axes=([ax], [0]))
        norm = float(np.linalg.norm(ref))
        diff = got - ref
        rel = float(np.linalg.norm(diff)) / norm if norm else float(np.linalg.norm(diff) != 0) * np.inf
        max_abs = float(np.max(np.abs(diff))) if diff.size else 0.0
    mag = codes.dtype.type(magmask)
    return SparsityReport(
        pattern=f"{m}:{n}", axis=ax, elements=int(arr.size),
        nonzeros_before=int(np.count_nonzero(codes & mag)),
        nonzeros_after=int(np.count_nonzero(pruned.view(codes.dtype) & mag)),
        energy_kept=kept / total if total else 1.0, matmul_rel_error=rel, matmul_max_abs_error=max_abs,
    )
