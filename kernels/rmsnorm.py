"""RMSNorm written against NKI: ``y = x * gamma / sqrt(mean(x^2) + eps)`` over the last axis of ``x [N, H]``.

Rows go on the partitions (128 per tile), the hidden axis on the free dimension. Per row tile:

1. ``dma_copy`` the ``[rows, H]`` tile HBM -> SBUF (``gamma`` is broadcast to every partition once, by a DMA whose
   access pattern has partition stride 0);
2. ``activation(op=square, reduce_op=add, reduce_cmd=reset_reduce)`` squares the tile and sums each row into a
   ``[rows, 1]`` fp32 column in the same Scalar Engine instruction;
3. ``activation(op=rsqrt, scale=1/H, bias=eps)`` turns the sums into ``1/sqrt(mean + eps)`` per row;
4. ``scalar_tensor_tensor``: ``(x * rstd) * gamma`` on the Vector Engine, rounded once into the output dtype;
5. ``dma_copy`` back to HBM.

Launched as ``rmsnorm_kernel[2]`` (LNC=2), each of the two cores takes every other row tile (``nl.program_id``,
``nl.num_programs``, as the AWS kernel library shards its norms); both write the one shared-HBM output.

The NKI import below is the public one (``import nki`` ...); where no NKI is installed the emulator's front end is
bound to the same names, so this file runs unchanged on a Trainium host and on the emulator.

>>> import numpy as np
>>> from kernels.rmsnorm import rmsnorm
>>> x = np.array([[3.0, 4.0]], np.float32)
>>> rmsnorm(x, np.ones(2, np.float32), eps=0.0).astype(np.float64).round(4).tolist()
[[0.8485, 1.1314]]
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

__all__ = ["rmsnorm_kernel", "rmsnorm", "broadcast_rows", "const_column", "load_rows", "row_tiles"]


def row_tiles(N, P):
    """The P-row tiles of an N-row matrix this program takes: all of them, or under an LNC launch (``kernel[2]``)
    every n-th from its program id (the two cores write disjoint rows of one shared-HBM output)."""
    shards = nl.num_programs(axes=0) if nl.program_ndim() > 0 else 1
    shard = nl.program_id(axis=0) if shards > 1 else 0
    return nl.affine_range(shard, (N + P - 1) // P, shards)


def broadcast_rows(vec, P, H):
    """A ``[1, H]`` HBM vector copied onto all P partitions of an SBUF tile (source partition step 0)."""
    sb = nl.ndarray((P, H), dtype=vec.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=sb, src=vec.ap(pattern=[[0, P], [1, H]], offset=0))
    return sb


def load_rows(x, r0, rows, P):
    """Rows ``r0 .. r0 + rows`` of the HBM matrix ``x`` into the first partitions of a new ``[P, F]`` SBUF tile."""
    sb = nl.ndarray((P, x.shape[1]), dtype=x.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=sb[0:rows, :], src=x[r0:r0 + rows, :])
    return sb


def const_column(value, P):
    """An fp32 ``[P, 1]`` SBUF column filled with ``value`` (a per-partition bias operand)."""
    col = nl.ndarray((P, 1), dtype=nl.float32, buffer=nl.sbuf)
    nisa.memset(dst=col, value=value)
    return col


@nki.jit
def rmsnorm_kernel(x, gamma, eps):
    """RMSNorm of ``x [N, H]`` (HBM) with weights ``gamma [1, H]``; returns ``[N, H]`` in ``x.dtype``."""
    N, H = x.shape
    assert tuple(gamma.shape) == (1, H), f"gamma must be [1, {H}], got {tuple(gamma.shape)}"
    P = nl.tile_size.pmax
    out = nl.ndarray((N, H), dtype=x.dtype, buffer=nl.shared_hbm)

    g_sb = broadcast_rows(gamma, P, H)
    eps_sb = const_column(eps, P)

    for t in row_tiles(N, P):
        r0 = t * P
        rows = min(P, N - r0)
        x_sb = load_rows(x, r0, rows, P)

        sq = nl.ndarray((P, H), dtype=nl.float32, buffer=nl.sbuf)
        ssq = nl.ndarray((P, 1), dtype=nl.float32, buffer=nl.sbuf)
        nisa.activation(dst=sq[0:rows, :], op=nl.square, data=x_sb[0:rows, :], reduce_op=nl.add,
                        reduce_res=ssq[0:rows, :], reduce_cmd=nisa.reduce_cmd.reset_reduce)
        rstd = nl.ndarray((P, 1), dtype=nl.float32, buffer=nl.sbuf)
        nisa.activation(dst=rstd[0:rows, :], op=nl.rsqrt, data=ssq[0:rows, :], scale=1.0 / H,
                        bias=eps_sb[0:rows, :])

        y_sb = nl.ndarray((P, H), dtype=x.dtype, buffer=nl.sbuf)
        nisa.scalar_tensor_tensor(dst=y_sb[0:rows, :], data=x_sb[0:rows, :], op0=nl.multiply,
                                  operand0=rstd[0:rows, :], op1=nl.multiply, operand1=g_sb[0:rows, :])
        nisa.dma_copy(dst=out[r0:r0 + rows, :], src=y_sb[0:rows, :])
    return out


def rmsnorm(x: np.ndarray, gamma: np.ndarray, eps: float = 1e-6, lnc: int = 1) -> np.ndarray:
    """Host wrapper: ``x [N, H]`` (float32 / bfloat16 / float16), ``gamma [H]`` -> ``[N, H]`` in ``x.dtype``;
    ``lnc=2`` launches ``rmsnorm_kernel[2]``, the row tiles split between the two cores of a logical NeuronCore."""
    x = np.ascontiguousarray(x)
    g = np.ascontiguousarray(np.asarray(gamma).reshape(1, -1))
    kernel = rmsnorm_kernel[lnc] if lnc > 1 else rmsnorm_kernel
    return np.asarray(kernel(x, g, float(eps)))
