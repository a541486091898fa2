"""``nc_matmul_sparse``: the Tensor Engine's M:N sparse datapath (NeuronCore-v3/v4; not in the public NKI API).

The stationary operand arrives compressed (:func:`emulator.numerics.sparsity.compress` along its partition axis):
``values [Kc, M]`` hold ``m`` kept entries per group of ``n`` logical contraction rows and ``tags [Kc, ceil(M/4)]``
(uint16, four 4-bit tags per word) say which row of its group each kept entry stands for. Up to 128 compressed
partitions stand for up to ``128 * n / m`` logical rows of the moving operand.

Each kept value meets the moving row its tag selects; pruned positions never enter the product, so a NaN or inf in a
moving row that only pruned positions select does not reach the output. The kept products are accumulated in
logical k order by the Tensor Engine's own accumulation model (the ``accumulation`` setting), each at its logical
position, so that for finite data the result is bit-identical to ``nc_matmul`` on the decompressed stationary
(apart from the sign of an exactly-zero sum) under every model. PSUM semantics are ``nc_matmul``'s.

The products are formed by :func:`emulator.engines.accumulate.matmul_accumulate` (its ``keep`` mask makes a pruned
position an exact +0 product whatever the moving row holds) and stored by :func:`~emulator.engines.accumulate.
psum_write`, the same functions ``nc_matmul`` uses, so every accumulation, fp32-product, denormal and NaN setting
applies unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import get_settings
from ..errors import DtypeError, ShapeError
from ..numerics import formats as _formats
from ..numerics import sparsity as _sp
from . import accumulate as _accumulate

__all__ = ["nc_matmul_sparse", "MAX_COMPRESSED_PARTITIONS"]

#: Compressed stationary partitions (PE rows) the array takes in one instruction.
MAX_COMPRESSED_PARTITIONS = 128
#: Stationary free size (PE columns).
MAX_STATIONARY_FREE = 128
#: Moving free size per PSUM dtype on v4 (all 8 PSUM banks).
MAX_MOVING_FREE = {"float32": 4096, "bfloat16": 8192}
_TE_DTYPES = ("float32", "bfloat16", "float16", "float8_e5m2", "float8_e4m3", "float8_e4m3fn")


def _as_operand(x: Any, name: str) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise DtypeError(f"nc_matmul_sparse: {name} must be a NumPy array (float32 or ml_dtypes), got {type(x).__name__}")
    if x.ndim != 2:
        raise ShapeError(f"nc_matmul_sparse: {name} must be 2-D [partitions, free], got shape {x.shape}")
    return x


def _check_dtypes(values: np.ndarray, moving: np.ndarray) -> tuple[str, str]:
    """The Tensor Engine's input dtypes and mixing rules (reference 2.2), as nc_matmul applies them."""
    names = []
    for name, arr in (("values", values), ("moving", moving)):
        try:
            fmt = _formats.get(arr.dtype).name
        except (TypeError, ValueError):
            fmt = None
        if fmt not in _TE_DTYPES:
            raise DtypeError(f"nc_matmul_sparse: {name} has dtype {arr.dtype}; the Tensor Engine takes "
                             f"{', '.join(_TE_DTYPES)}")
        names.append(fmt)
    st_fmt, mv_fmt = names
    if ("float32" in names) and st_fmt != mv_fmt:
        raise DtypeError(f"nc_matmul_sparse: values is {st_fmt} and moving is {mv_fmt}; an fp32 operand needs an "
                         "fp32 (or tf32) partner")
    if {"float8_e4m3", "float8_e4m3fn"} <= set(names):
        raise DtypeError("nc_matmul_sparse: legacy float8_e4m3 and OCP float8_e4m3fn operands cannot be mixed")
    return st_fmt, mv_fmt


def _check_psum(psum: Any, psum_dtype: Any, mcols: int, ncols: int) -> str:
    if psum is not None:
        if not isinstance(psum, np.ndarray):
            raise DtypeError(f"nc_matmul_sparse: psum must be a NumPy array, got {type(psum).__name__}")
        try:
            psum_dtype = _formats.get(psum.dtype).name
        except (TypeError, ValueError):
            psum_dtype = str(psum.dtype)
        if psum.shape != (mcols, ncols):
            raise ShapeError(f"nc_matmul_sparse: psum has shape {psum.shape}; the result is [{mcols}, {ncols}]")
    else:
        try:
            psum_dtype = _formats.get(psum_dtype).name
        except (TypeError, ValueError):
            psum_dtype = str(psum_dtype)
    if psum_dtype not in MAX_MOVING_FREE:
        raise DtypeError(f"nc_matmul_sparse: PSUM holds float32 or bfloat16 on trn3, got {psum_dtype}")
    if ncols > MAX_MOVING_FREE[psum_dtype]:
        raise ShapeError(f"nc_matmul_sparse: moving has free size {ncols}; a {psum_dtype} PSUM tile takes at most "
                         f"{MAX_MOVING_FREE[psum_dtype]} (all 8 banks)")
    return psum_dtype


def _kept_mask(tags: np.ndarray, kc: int, mcols: int, m: int, n: int) -> np.ndarray:
    """[K, M] bool: True at the logical positions the tags keep (decompress of ones validates the tags too)."""
    ones = np.ones((kc, mcols), dtype=np.uint8)
    return _sp.decompress(ones, tags, m, n, axis=0).astype(bool)


def nc_matmul_sparse(values: np.ndarray, tags: np.ndarray, moving: np.ndarray, m: int, n: int,
                     psum: np.ndarray | None = None, psum_dtype: Any = "float32") -> np.ndarray:
    """``psum[M, N] (+)= decompress(values, tags).T @ moving`` through the sparse datapath.

    Parameters
    ----------
    values : ``[Kc, M]`` compressed stationary (``Kc <= 128``, a multiple of ``m``; ``M <= 128``), any dtype
        ``nc_matmul`` takes (float32, bfloat16, float16, float8_e5m2, float8_e4m3, float8_e4m3fn).
    tags : ``[Kc, ceil(M / 4)]`` uint16 tag words from :func:`emulator.numerics.sparsity.compress` (axis 0).
    moving : ``[Kc * n / m, N]`` moving operand in logical k order; dtype rules as ``nc_matmul``.
    m, n : the pattern (4:16, 4:12, 4:8, 2:8, 2:4, 1:4 or 1:2).
    psum, psum_dtype : as ``nc_matmul``: ``psum=None`` writes a new PSUM tile of ``psum_dtype`` (float32 or
        bfloat16); a ``psum`` array is the accumulation target.

    Returns
    -------
    The PSUM tile ``[M, N]`` (float32 or bfloat16).

    Example
    -------
    >>> import numpy as np, emulator as emu
    >>> w = np.array([[0.0], [2.0], [0.0], [-1.0]], dtype=np.float32)     # 2:4 along k
    >>> values, tags = emu.sparsity.compress(w, 2, 4)
    >>> x = np.array([[np.nan], [1.0], [np.inf], [3.0]], dtype=np.float32)   # NaN/inf only in pruned rows
    >>> emu.nc_matmul_sparse(values, tags, x, 2, 4)
    array([[-1.]], dtype=float32)
    """
    m, n = _sp.check_pattern(m, n)
    values = _as_operand(values, "values")
    moving = _as_operand(moving, "moving")
    kc, mcols = values.shape
    if kc > MAX_COMPRESSED_PARTITIONS:
        raise ShapeError(f"nc_matmul_sparse: values has {kc} partitions; the Tensor Engine takes at most "
                         f"{MAX_COMPRESSED_PARTITIONS} compressed stationary partitions")
    if kc % m:
        raise ShapeError(f"nc_matmul_sparse: values has {kc} partitions, not a multiple of m={m} ({m}:{n} keeps "
                         f"{m} entries per group)")
    if mcols > MAX_STATIONARY_FREE:
        raise ShapeError(f"nc_matmul_sparse: values has free size {mcols}; the Tensor Engine takes at most "
                         f"{MAX_STATIONARY_FREE} stationary columns")
    k_logical = kc // m * n
    if moving.shape[0] != k_logical:
        raise ShapeError(f"nc_matmul_sparse: moving has {moving.shape[0]} partitions; {kc} compressed partitions "
                         f"of a {m}:{n} stationary stand for {k_logical} logical rows")
    st_fmt, mv_fmt = _check_dtypes(values, moving)
    psum_dtype = _check_psum(psum, psum_dtype, mcols, moving.shape[1])
    keep = _kept_mask(np.asarray(tags), kc, mcols, m, n)  # validates tags (dtype, shape, range, repeats)
    stationary = _sp.decompress(values, tags, m, n, axis=0)
    fp32 = "float32" in (st_fmt, mv_fmt)
    mv32 = moving.astype(np.float32)
    # A pruned position contributes an exact +0 either way; the masked kernel is only needed where it would meet
    # a NaN or inf (0 x NaN). Elsewhere the dense kernel is faster and differs at most in the sign of a zero sum.
    if np.isfinite(mv32[(~keep).any(axis=1)]).all():
        keep = None
    result = _accumulate.matmul_accumulate(
        stationary.astype(np.float32), mv32, get_settings().accumulation,
        fp32_mode=get_settings().fp32_matmul if fp32 else "fp32", keep=keep,
    )
    return _accumulate.psum_write(result, psum, psum_dtype)
