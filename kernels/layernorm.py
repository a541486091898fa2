"""LayerNorm written against NKI: ``y = (x - mean) / sqrt(var + eps) * gamma + beta`` over the last axis of ``x``.

Rows on the partitions (128 per tile), the hidden axis on the free dimension. Per row tile:

1. ``dma_copy`` the ``[rows, H]`` tile into SBUF (``gamma`` and ``beta`` were broadcast to every partition once, by
   DMAs with partition stride 0);
2. ``bn_stats`` on each chunk of at most ``nl.tile_size.bn_stats_fmax`` (512) elements, each writing its 6 statistics
   into its own columns of one ``[rows, 6 * chunks]`` tile, then one ``bn_aggr`` -> ``[rows, 2]`` (mean, variance);
3. ``activation(op=rsqrt, bias=eps)`` on the variance column;
4. ``tensor_scalar``: ``(x - mean) * rstd`` with both operands per partition, then ``tensor_tensor`` multiply by
   gamma and add beta (fp32 intermediates, the last one rounded into the output dtype);
5. ``dma_copy`` back to HBM.
Launched as ``kernel[2]`` (LNC=2) the two cores take alternate row tiles (:func:`kernels.rmsnorm.row_tiles`).

>>> import numpy as np
>>> from kernels.layernorm import layernorm
>>> x = np.array([[1.0, 3.0]], np.float32)
>>> layernorm(x, np.ones(2, np.float32), np.zeros(2, np.float32), eps=0.0).tolist()
[[-1.0, 1.0]]
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

from .rmsnorm import broadcast_rows, const_column, load_rows, row_tiles

__all__ = ["layernorm_kernel", "layernorm"]


@nki.jit
def layernorm_kernel(x, gamma, beta, eps):
    """LayerNorm of ``x [N, H]`` (HBM) with ``gamma, beta [1, H]``; returns ``[N, H]`` in ``x.dtype``."""
    N, H = x.shape
    assert tuple(gamma.shape) == (1, H) and tuple(beta.shape) == (1, H), "gamma and beta must be [1, H]"
    P = nl.tile_size.pmax
    FMAX = nl.tile_size.bn_stats_fmax
    chunks = (H + FMAX - 1) // FMAX
    out = nl.ndarray((N, H), dtype=x.dtype, buffer=nl.shared_hbm)

    g_sb = broadcast_rows(gamma, P, H)
    b_sb = broadcast_rows(beta, P, H)
    eps_sb = const_column(eps, P)

    for t in row_tiles(N, P):
        r0 = t * P
        rows = min(P, N - r0)
        x_sb = load_rows(x, r0, rows, P)

        stats = nl.ndarray((P, 6 * chunks), dtype=nl.float32, buffer=nl.sbuf)
        for c in nl.affine_range(chunks):
            f0 = c * FMAX
            f1 = min(H, f0 + FMAX)
            nisa.bn_stats(dst=stats[0:rows, 6 * c:6 * c + 6], data=x_sb[0:rows, f0:f1])
        mv = nl.ndarray((P, 2), dtype=nl.float32, buffer=nl.sbuf)
        nisa.bn_aggr(dst=mv[0:rows, :], data=stats[0:rows, :])
        rstd = nl.ndarray((P, 1), dtype=nl.float32, buffer=nl.sbuf)
        nisa.activation(dst=rstd[0:rows, :], op=nl.rsqrt, data=mv[0:rows, 1:2], bias=eps_sb[0:rows, :])

        xn = nl.ndarray((P, H), dtype=nl.float32, buffer=nl.sbuf)
        nisa.tensor_scalar(dst=xn[0:rows, :], data=x_sb[0:rows, :], op0=nl.subtract, operand0=mv[0:rows, 0:1],
                           op1=nl.multiply, operand1=rstd[0:rows, :])
        nisa.tensor_tensor(dst=xn[0:rows, :], data1=xn[0:rows, :], data2=g_sb[0:rows, :], op=nl.multiply)
        y_sb = nl.ndarray((P, H), dtype=x.dtype, buffer=nl.sbuf)
        nisa.tensor_tensor(dst=y_sb[0:rows, :], data1=xn[0:rows, :], data2=b_sb[0:rows, :], op=nl.add)
        nisa.dma_copy(dst=out[r0:r0 + rows, :], src=y_sb[0:rows, :])
    return out


def layernorm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5, lnc: int = 1) -> np.ndarray:
    """Host wrapper: ``x [N, H]``, ``gamma, beta [H]`` -> ``[N, H]`` in ``x.dtype``; ``lnc=2``: two cores."""
    x = np.ascontiguousarray(x)
    g = np.ascontiguousarray(np.asarray(gamma).reshape(1, -1))
    b = np.ascontiguousarray(np.asarray(beta).reshape(1, -1))
    kernel = layernorm_kernel[lnc] if lnc > 1 else layernorm_kernel
    return np.asarray(kernel(x, g, b, float(eps)))
