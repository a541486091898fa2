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

import numpy as np

from ..config import get_settings
from ..errors import ShapeError
from ..numerics import sparsity as _sp
from . import accumulate as _acc
from . import tensor as _tensor
from .limits import PMAX

__all__ = ["nc_matmul_sparse"]


def _kept_mask(tags: np.ndarray, kc: int, mcols: int, m: int, n: int) -> np.ndarray:
    """[K, M] bool: True at the logical positions the tags keep (decompress of ones validates the tags too)."""
    ones = np.ones((kc, mcols), dtype=np.uint8)
    return _sp.decompress(ones, tags, m, n, axis=0).astype(bool)


def nc_matmul_sparse(values, tags, moving, m: int, n: int, psum=None, psum_dtype="float32", *,
                     accumulate: bool | None = None, values_fmt: str | None = None, moving_fmt: str | None = None,
                     accumulation: str | None = None, site: int = 0):
    """``psum[M, N] (+)= decompress(values, tags).T @ moving`` through the sparse datapath.

    Parameters
    ----------
    values : ``[Kc, M]`` compressed stationary (``Kc <= 128``, a multiple of ``m``; ``M <= 128``): an array of any
        dtype ``nc_matmul`` takes (float32 for fp32/tf32, ml_dtypes bfloat16, float16, float8_e5m2, float8_e4m3,
        float8_e4m3fn) or an SBUF Tensor.
    tags : ``[Kc, ceil(M / 4)]`` uint16 tag words from :func:`emulator.numerics.sparsity.compress` (axis 0).
    moving : ``[Kc * n / m, N]`` moving operand in logical k order, or ``[Kc, n / m, N]`` (an SBUF tile: row
        ``(n / m) p + t`` at partition p, slot t) (array or SBUF Tensor); dtype rules as
        ``nc_matmul`` (fp32/tf32 only with fp32/tf32, float8_e4m3 never with float8_e4m3fn).
    m, n : the pattern (4:16, 4:12, 4:8, 2:8, 2:4, 1:4 or 1:2).
    psum, psum_dtype, accumulate, accumulation, site : exactly as ``nc_matmul``: ``psum=None`` returns a new PSUM
        tile of ``psum_dtype`` (float32 or bfloat16); a ``psum`` array or PSUM Tensor is updated in place (added to
        unless ``accumulate=False``) and returned.
    values_fmt, moving_fmt : ``"tfloat32"`` to read a float32 array as tf32 (as ``stationary_fmt`` of nc_matmul).

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
    instr = "nc_matmul_sparse"
    m, n = _sp.check_pattern(m, n)
    st, sf = _tensor._matmul_operand(values, "values", values_fmt, instr)
    mv, mf = _tensor._matmul_operand(moving, "moving", moving_fmt, instr)
    _tensor._check_mix(sf, mf, instr)
    if mv.ndim == 3:  # an SBUF tile [Kc, n/m, N]: logical row (n/m) p + t at partition p, slot t (as double_row)
        mv = mv.reshape(-1, mv.shape[2])
    if st.ndim != 2 or mv.ndim != 2:
        raise ShapeError(f"{instr}: values and moving are 2-D [partitions, free], got {st.shape} and {mv.shape}")
    kc, mcols = st.shape
    if kc > PMAX:
        raise ShapeError(f"{instr}: values has {kc} partitions; the Tensor Engine takes at most {PMAX} "
                         "compressed stationary partitions")
    if kc % m:
        raise ShapeError(f"{instr}: values has {kc} partitions, not a multiple of m={m} ({m}:{n} keeps {m} entries "
                         "per group)")
    if mcols > PMAX:
        raise ShapeError(f"{instr}: values has free size {mcols}; the Tensor Engine takes at most {PMAX} "
                         "stationary columns")
    k_logical = kc // m * n
    if mv.shape[0] != k_logical:
        raise ShapeError(f"{instr}: moving has {mv.shape[0]} partitions; {kc} compressed partitions of a {m}:{n} "
                         f"stationary stand for {k_logical} logical rows")
    pd = _tensor._psum_dtype(psum, psum_dtype)
    if mv.shape[1] > _tensor.MAX_MOVING_FREE[pd]:
        raise ShapeError(f"{instr}: moving has free size {mv.shape[1]}; a {pd} PSUM output holds at most "
                         f"{_tensor.MAX_MOVING_FREE[pd]} (8 banks)")
    keep = _kept_mask(np.asarray(tags), kc, mcols, m, n)  # validates tags (dtype, shape, range, repeats)
    # decompress the float32 values (exact for every input dtype): the decoded stationary at logical positions
    stationary = _sp.decompress(st, tags, m, n, axis=0)
    # A pruned position contributes an exact +0 either way; the masked kernel is only needed where it would meet
    # a NaN or inf (0 x NaN). Elsewhere the dense kernel is faster and differs at most in the sign of a zero sum.
    if np.isfinite(mv[(~keep).any(axis=1)]).all():
        keep = None
    wide = sf in ("float32", "tfloat32") or mf in ("float32", "tfloat32")
    result = _acc.matmul_accumulate(stationary, mv, accumulation,
                                    fp32_mode=get_settings().fp32_matmul if wide else "fp32", keep=keep)
    return _tensor._finish(result, psum, pd, accumulate, site, instr)
