"""Structured-sparse matmul written against NKI: ``a [M, K] @ b [K, N]`` with ``a`` M:N-sparse along K, on the
sparse datapath (``nisa.nc_matmul_sparse``, an emulator instruction beside NKI's).

The weights are compressed offline, on the host: ``a`` is cast to the input format (the DMA's rounding), and its
transpose ``[K, M]`` compressed along k (``emu.sparsity.compress``: ``m`` values of every ``n`` plus 4-bit tags),
so HBM holds values ``[Kc, M]`` (in the input format) and tag words ``[Kc, M/4]`` (uint16). The kernel runs the
dense kernel's tile loop (:func:`kernels.matmul.tile_loop`) with two changes:

* the stationary operand of each K tile is a ``[128, m]`` values tile and its ``[128, m/4]`` tags, DMA'd in once
  per row block (no Tensor Engine transpose: the host stored the transpose);
* each ``nc_matmul_sparse`` takes 128 compressed partitions, which stand for ``128 * n / m`` logical rows of k, so
  a K tile is ``n / m`` times longer than the dense kernel's and a 2:4 operand needs half the instructions. The
  moving rows of one instruction arrive by one strided DMA as an SBUF tile ``[128, n/m, N]``, logical row
  ``(n/m) p + t`` at partition p, slot t (the device layout of a sparse moving operand is undocumented).

Pruned positions never meet the moving data, so NaN or inf in rows of ``b`` that only pruned positions select do
not reach the result (a dense matmul of the pruned operand gives NaN there). A group with fewer than ``m`` non-zeros
is compressed with some of its own zeros as kept values, and those positions do meet their rows of ``b``. For finite
data the result equals the dense kernel's on the pruned operand with the same K tiling, apart from the sign of an
exactly-zero sum.
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

import emulator as emu
from emulator.engines.matmul import matmul_format, matmul_operands
from emulator.numerics.block_formats import BlockFormat
from emulator.numerics.cast import rounding_for

from .matmul import check_psum_dtype, host_operand, tile_loop

__all__ = ["sparse_matmul", "sparse_matmul_kernel"]


@nki.jit
def sparse_matmul_kernel(values, tags, b, m, n, in_dtype, psum_dtype=nl.float32):
    """``decompress(values, tags).T @ b`` for compressed weights ``values [Kc, M]`` (``in_dtype``), ``tags [Kc,
    ceil(M/4)]`` (uint16) and float32 ``b [Kc n/m, N]`` (cast on load); returns float32 ``[M, N]``."""
    Kc, M = values.shape
    K, N = b.shape
    r = n // m
    assert K == Kc * r, f"b has {K} rows; {Kc} compressed rows of an {m}:{n} operand stand for {Kc * r}"
    P, TM, TN = nl.tile_size.pmax, nl.tile_size.gemm_stationary_fmax, nl.tile_size.gemm_moving_fmax
    ktiles = [(c0, min(P, Kc - c0)) for c0 in range(0, Kc, P)]
    out = nl.ndarray((M, N), dtype=nl.float32, buffer=nl.shared_hbm)

    def load_stationary(m0, mm):
        tiles = []
        for c0, kc in ktiles:
            v = nl.ndarray((P, TM), dtype=in_dtype, buffer=nl.sbuf)
            nisa.dma_copy(dst=v[0:kc, 0:mm], src=values[c0:c0 + kc, m0:m0 + mm])
            t = nl.ndarray((P, TM // 4), dtype=nl.uint16, buffer=nl.sbuf)
            w = (mm + 3) // 4
            nisa.dma_copy(dst=t[0:kc, 0:w], src=tags[c0:c0 + kc, m0 // 4:m0 // 4 + w])
            tiles.append((v[0:kc, 0:mm], t[0:kc, 0:w]))
        return tiles

    def load_moving(kt, n0, nn):
        c0, kc = ktiles[kt]
        mv = nl.ndarray((P, r, TN), dtype=in_dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=mv[0:kc, :, 0:nn], src=b.ap(pattern=[[r * N, kc], [N, r], [1, nn]], offset=c0 * r * N + n0))
        return mv[0:kc, :, 0:nn]

    def issue(acc, st, mv, kt):
        nisa.nc_matmul_sparse(dst=acc, values=st[0], tags=st[1], moving=mv, m=m, n=n, accumulate=(kt > 0))

    tile_loop(out, ktiles, load_stationary, load_moving, issue, psum_dtype)
    return out


def sparse_matmul(a, b, m: int, n: int, fmt: str = "bfloat16", *, prune: bool = False,
                  psum_dtype: str = "float32") -> np.ndarray:
    """``a [M, K] @ b [K, N]`` with ``a`` m:n-sparse along K, run as ``nc_matmul_sparse`` instructions.

    Parameters
    ----------
    a, b : float arrays; ``a`` must hold at most ``m`` non-zeros in every ``n`` consecutive k of each row (an error
        names the first group that does not), unless ``prune=True`` prunes it first (``emu.sparsity.prune``: the
        ``m`` largest magnitudes of each group, in fp32, before the cast). A K that is not a multiple of ``n`` is
        padded with zero columns (rows of ``b``).
    m, n : the pattern: 4:16, 4:12, 4:8, 2:8, 2:4, 1:4 or 1:2.
    fmt : an ``nc_matmul`` input format (float32, tfloat32, bfloat16, float16, float8_e4m3fn, float8_e5m2,
        float8_e4m3); the sparse datapath has no MX form.
    psum_dtype : as :func:`kernels.matmul`.

    Returns float32 ``[M, N]``; ``emulator.nki.last_report()`` then describes the launch.

    >>> import numpy as np, kernels
    >>> a = np.array([[0.0, 2.0, 0.0, -1.0]], np.float32); b = np.array([[np.nan], [1.0], [np.inf], [3.0]], np.float32)
    >>> kernels.sparse_matmul(a, b, 2, 4, "bfloat16")     # NaN and inf sit only in rows that pruned positions select
    array([[-1.]], dtype=float32)
    """
    desc = matmul_format(fmt)
    fmt = desc.name
    if isinstance(desc, BlockFormat):
        raise emu.ArgumentError(f"kernels.sparse_matmul: fmt {fmt!r} is an MX format; the sparse datapath takes the "
                                "nc_matmul formats (float32, tfloat32, bfloat16, float16, float8_*)")
    check_psum_dtype(psum_dtype, "kernels.sparse_matmul")
    m, n = emu.sparsity.check_pattern(m, n)
    a, b = matmul_operands(a, b)
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    pad = -a.shape[1] % n
    if pad:
        a = np.concatenate([a, np.zeros((a.shape[0], pad), np.float32)], axis=1)
        b = np.concatenate([b, np.zeros((pad, b.shape[1]), np.float32)], axis=0)
    if prune:
        a = emu.sparsity.prune(a, m, n, axis=1)
    emu.sparsity.validate_m_n(a, m, n, axis=1, name="kernels.sparse_matmul: a")
    # the cast before the compression, as a DMA-cast tile would be compressed (an underflow to 0 frees a slot)
    cast = a if fmt in ("float32", "tfloat32") else emu.round_to(a, fmt, rounding=rounding_for("dma"))
    cast, in_dtype = host_operand(cast, fmt)
    values, tags = emu.sparsity.compress(np.ascontiguousarray(cast.T), m, n, axis=0)
    values = np.ascontiguousarray(values).astype(in_dtype)
    b, _ = host_operand(b, fmt)
    return np.asarray(sparse_matmul_kernel(values, tags, b, m, n, in_dtype, getattr(nl, psum_dtype)))
