"""Single-head attention block written against NKI: ``softmax(scale * q k^T) v`` for ``q [S, d]``, ``k, v [S_kv, d]``.

Layout: the head dimension d (<= 128) is the contraction of QK^T, so q and k go to SBUF transposed, ``[d, rows]``;
the key axis is the contraction of PV, so the probabilities go transposed too, ``[keys, rows]``. All three transposes
run on the Tensor Engine (``nc_transpose`` into PSUM, bit-exact), the way the AWS attention kernels do.

1. Once: ``k`` in 128-row blocks -> ``nc_transpose`` -> ``kT [d, S_kv]``; ``v`` -> ``[128, blocks, d]`` (keys on
   the partitions).
2. Per query tile of up to 128 rows: ``qT [d, rows]``; per chunk of up to 512 keys (one fp32 PSUM bank),
   ``nc_matmul(stationary=qT, moving=kT chunk)`` and ``activation(op=copy, scale=scale)`` out of PSUM into an fp32
   score tile ``[rows, S_kv]``;
   (``causal``: ``affine_select`` on the GpSimd Engine replaces the scores of keys j > i by -3e38);
3. the softmax numerator and row sums as in :func:`kernels.softmax.row_exp`, the exponentials held in the input dtype
   (the matmul operand format);
4. per 128-key block, ``nc_transpose`` of the exponentials and ``nc_matmul(stationary=pT, moving=v block)``
   accumulating in one PSUM tile ``[rows, d]`` (``accumulate=(j > 0)``);
5. ``tensor_scalar`` multiply by the reciprocal row sums, rounded once into the output dtype; ``dma_copy`` out.

>>> import numpy as np
>>> from kernels.attention import attention
>>> q = np.zeros((2, 4), np.float32); k = np.zeros((3, 4), np.float32)
>>> v = np.arange(12, dtype=np.float32).reshape(3, 4)
>>> attention(q, k, v).tolist()  # equal scores: the mean of v's rows
[[4.0, 5.0, 6.0, 7.0], [4.0, 5.0, 6.0, 7.0]]
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

from .rmsnorm import load_rows, row_tiles
from .softmax import row_exp

__all__ = ["attention_kernel", "attention"]


def _transpose_to_sbuf(dst, src, rows, cols):
    """``dst[0:cols, 0:rows] = src[0:rows, 0:cols].T`` through the Tensor Engine and PSUM."""
    tp = nl.ndarray((src.shape[1], src.shape[0]), dtype=src.dtype, buffer=nl.psum)
    nisa.nc_transpose(dst=tp[0:cols, 0:rows], data=src[0:rows, 0:cols])
    nisa.tensor_copy(dst=dst[0:cols, 0:rows], src=tp[0:cols, 0:rows])


def _load_keys(k, v, P):
    """``kT [d, S_kv]`` and ``v_sb [P, blocks, d]`` (key j at partition j % P of block j // P)."""
    S_kv, d = k.shape
    blocks = (S_kv + P - 1) // P
    kT = nl.ndarray((d, S_kv), dtype=k.dtype, buffer=nl.sbuf)
    v_sb = nl.ndarray((P, blocks, d), dtype=v.dtype, buffer=nl.sbuf)
    for j in nl.affine_range(blocks):
        j0 = j * P
        kb = min(P, S_kv - j0)
        k_sb = nl.ndarray((P, d), dtype=k.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=k_sb[0:kb, :], src=k[j0:j0 + kb, :])
        _transpose_to_sbuf(kT[:, j0:j0 + kb], k_sb, kb, d)
        nisa.dma_copy(dst=v_sb[0:kb, j, :], src=v[j0:j0 + kb, :])
    return kT, v_sb


@nki.jit
def attention_kernel(q, k, v, scale, causal=False):
    """``softmax(scale q k^T) v``: ``q [S, d]``, ``k, v [S_kv, d]`` in HBM, d <= 128; returns ``[S, d]``.
    ``causal``: query i sees keys 0..i only."""
    S, d = q.shape
    S_kv, d_k = k.shape
    assert d == d_k and tuple(v.shape) == (S_kv, d), "q [S, d], k [S_kv, d], v [S_kv, d]"
    P = nl.tile_size.pmax
    assert d <= P, f"head dimension {d} exceeds {P} partitions"
    FMAX = nl.tile_size.psum_fmax  # fp32 scores per PSUM bank
    out = nl.ndarray((S, d), dtype=q.dtype, buffer=nl.shared_hbm)
    kT, v_sb = _load_keys(k, v, P)

    for t in row_tiles(S, P):  # under kernel[2] the two cores take alternate query tiles
        r0 = t * P
        rows = min(P, S - r0)
        q_sb = load_rows(q, r0, rows, P)
        qT = nl.ndarray((d, P), dtype=q.dtype, buffer=nl.sbuf)
        _transpose_to_sbuf(qT, q_sb, rows, d)

        scores = nl.ndarray((P, S_kv), dtype=nl.float32, buffer=nl.sbuf)
        for c in nl.affine_range((S_kv + FMAX - 1) // FMAX):
            c0 = c * FMAX
            n = min(FMAX, S_kv - c0)
            s_ps = nl.ndarray((P, FMAX), dtype=nl.float32, buffer=nl.psum)
            nisa.nc_matmul(dst=s_ps[0:rows, 0:n], stationary=qT[:, 0:rows], moving=kT[:, c0:c0 + n])
            nisa.activation(dst=scores[0:rows, c0:c0 + n], op=nl.copy, data=s_ps[0:rows, 0:n], scale=scale)
        if causal:  # keep score (i, j) where (r0 + partition) - j >= 0, else a huge negative (exp -> 0)
            nisa.affine_select(dst=scores[0:rows, :], pattern=[[-1, S_kv]], channel_multiplier=1,
                               on_true_tile=scores[0:rows, :], on_false_value=-3.0e38, cmp_op=nl.greater_equal,
                               offset=r0)

        exps, inv = row_exp(scores, rows, v.dtype)

        o_ps = nl.ndarray((P, d), dtype=nl.float32, buffer=nl.psum)
        blocks = (S_kv + P - 1) // P
        for j in nl.affine_range(blocks):
            j0 = j * P
            kb = min(P, S_kv - j0)
            pT = nl.ndarray((P, P), dtype=v.dtype, buffer=nl.sbuf)
            _transpose_to_sbuf(pT, exps[:, j0:j0 + kb], rows, kb)
            nisa.nc_matmul(dst=o_ps[0:rows, :], stationary=pT[0:kb, 0:rows], moving=v_sb[0:kb, j, :],
                           accumulate=(j > 0))
        o_sb = nl.ndarray((P, d), dtype=q.dtype, buffer=nl.sbuf)
        nisa.tensor_scalar(dst=o_sb[0:rows, :], data=o_ps[0:rows, :], op0=nl.multiply, operand0=inv[0:rows, :])
        nisa.dma_copy(dst=out[r0:r0 + rows, :], src=o_sb[0:rows, :])
    return out


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float | None = None,
              causal: bool = False, lnc: int = 1) -> np.ndarray:
    """Host wrapper: ``softmax(scale q k^T) v`` with ``scale`` defaulting to ``1/sqrt(d)``; result in ``q.dtype``.
    ``causal=True`` masks keys after each query's own position (decoder self-attention); ``lnc=2``: two cores."""
    scale = 1.0 / np.sqrt(q.shape[1]) if scale is None else scale
    args = (np.ascontiguousarray(a) for a in (q, k, v))
    kernel = attention_kernel[lnc] if lnc > 1 else attention_kernel
    return np.asarray(kernel(*args, float(scale), bool(causal)))
