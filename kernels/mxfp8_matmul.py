"""MXFP8 quantise-then-matmul written against NKI: ``lhsT.T @ rhs`` with both operands quantised on chip.

``lhsT [K, M]`` and ``rhs [K, N]`` arrive in HBM as bfloat16 (lhsT: the left operand delivered transposed, as in the
NKI matmul tutorials). The MX contraction runs over partitions *and* the 4 sub-elements of each x4 word, so a K tile
of ``4 Kp`` rows (Kp a multiple of 32, at most 128) sits in SBUF as ``[Kp, F, 4]`` with logical row ``q Kp + p`` at
partition p, sub-element q: one strided DMA per tile builds that layout (source pattern ``[[F, Kp], [1, F],
[Kp F, 4]]``, as in the MXFP deep dive). Then, per tile:

1. ``quantize_mx`` -> x4 data ``[Kp, F]`` and E8M0 scales (one per 8 partitions x 4 sub-elements), the scales spread
   by the instruction over the partition quadrants (4 rows at the start of each 32-partition quadrant);
2. ``nc_matmul_mx(stationary=lhsT tile, moving=rhs tile, accumulate=(kt > 0))`` into one fp32 PSUM tile
   ``[<=128, <=512]`` per output block;
3. ``tensor_copy`` PSUM -> SBUF in the output dtype (the only rounding after the fp32 accumulation), ``dma_copy`` out.

K must be a multiple of 128 (each tile then has Kp = 32, 64, 96 or 128 partitions) and M even (``nc_matmul_mx``
takes an even stationary free size).

>>> import numpy as np, ml_dtypes
>>> from kernels.mxfp8_matmul import mxfp8_matmul
>>> a_t = np.ones((128, 2), ml_dtypes.bfloat16); b = np.full((128, 3), 0.5, ml_dtypes.bfloat16)
>>> mxfp8_matmul(a_t, b).astype(np.float32).tolist()
[[64.0, 64.0, 64.0], [64.0, 64.0, 64.0]]
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

__all__ = ["mxfp8_matmul_kernel", "mxfp8_matmul", "k_tiles", "mx_scale_tile", "mx_matmul_blocks"]

_ELEMENT = {"float8_e4m3fn": "float8_e4m3fn_x4", "float8_e5m2": "float8_e5m2_x4"}


def k_tiles(K, pmax):
    """``[(k0, Kp), ...]``: K split into tiles of ``4 Kp`` logical rows, Kp = pmax except a shorter last tile."""
    assert K % 128 == 0, f"MX matmul: K = {K} must be a multiple of 128 (4 sub-elements x 32-partition quadrants)"
    return [(k0, min(pmax, (K - k0) // 4)) for k0 in range(0, K, 4 * pmax)]


def mx_scale_tile(Kp, F):
    """An SBUF scale tile for an MX operand of ``Kp`` partitions: one quadrant's 4 rows per 32 partitions, so a
    tile over more than one quadrant needs all Kp partitions (the unused rows are zeroed: nothing reads them)."""
    rows = Kp if Kp > 32 else Kp // 8
    s = nl.ndarray((rows, F), dtype=nl.uint8, buffer=nl.sbuf)
    nisa.memset(dst=s, value=0)
    return s


def _quantized_tile(src, k0, Kp, f0, F, mx_dtype):
    """Rows ``k0 .. k0 + 4 Kp`` x columns ``f0 .. f0 + F`` of the bf16 HBM matrix ``src``, quantised in SBUF."""
    row = src.shape[1]
    strided = nl.ndarray((Kp, F, 4), dtype=src.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=strided, src=src.ap(pattern=[[row, Kp], [1, F], [Kp * row, 4]], offset=k0 * row + f0))
    data = nl.ndarray((Kp, F), dtype=mx_dtype, buffer=nl.sbuf)
    scale = mx_scale_tile(Kp, F)
    nisa.quantize_mx(dst=data, src=strided.reshape((Kp, F * 4)), dst_scale=scale)
    return data, scale


def mx_matmul_blocks(out, tiles, load_stationary, load_moving, psum_dtype=nl.float32):
    """The tile loop of the MX kernels: ``out [M, N]`` (HBM) in blocks of up to 128 x 512, each one PSUM tile
    (``psum_dtype``: fp32, or bf16 on NeuronCore-v4, rounded at every accumulate) accumulating ``nc_matmul_mx`` over
    the K ``tiles``; ``load_*(k0, Kp, f0, F)`` give an SBUF (x4 data, scales) pair. The stationary tiles of a block
    row are loaded once and reused across its column blocks."""
    M, N = out.shape
    TM = nl.tile_size.gemm_stationary_fmax
    TN = nl.tile_size.gemm_moving_fmax
    for m0 in range(0, M, TM):
        m = min(TM, M - m0)
        stationary = [load_stationary(k0, Kp, m0, m) for k0, Kp in tiles]
        for n0 in range(0, N, TN):
            n = min(TN, N - n0)
            res_psum = nl.ndarray((TM, TN), dtype=psum_dtype, buffer=nl.psum)
            for kt, (k0, Kp) in enumerate(tiles):
                mv_data, mv_scale = load_moving(k0, Kp, n0, n)
                st_data, st_scale = stationary[kt]
                nisa.nc_matmul_mx(dst=res_psum[0:m, 0:n], stationary=st_data, moving=mv_data,
                                  stationary_scale=st_scale, moving_scale=mv_scale, accumulate=(kt > 0))
            res_sb = nl.ndarray((TM, TN), dtype=out.dtype, buffer=nl.sbuf)
            nisa.tensor_copy(dst=res_sb[0:m, 0:n], src=res_psum[0:m, 0:n])
            nisa.dma_copy(dst=out[m0:m0 + m, n0:n0 + n], src=res_sb[0:m, 0:n])


@nki.jit
def mxfp8_matmul_kernel(lhsT, rhs, mx_dtype, out_dtype, psum_dtype=nl.float32):
    """``lhsT.T @ rhs`` for bf16 ``lhsT [K, M]``, ``rhs [K, N]`` quantised on chip to ``mx_dtype``
    (``nl.float8_e4m3fn_x4`` or ``nl.float8_e5m2_x4``); returns ``[M, N]`` in ``out_dtype``; ``psum_dtype``
    ``nl.bfloat16`` accumulates in a bf16 PSUM tile (as the MXFP deep dive's kernels do)."""
    K, M = lhsT.shape
    K_, N = rhs.shape
    assert K == K_, f"contraction mismatch: lhsT has K = {K}, rhs has K = {K_}"
    assert M % 2 == 0, f"M = {M} must be even (nc_matmul_mx stationary free size)"
    out = nl.ndarray((M, N), dtype=out_dtype, buffer=nl.shared_hbm)
    mx_matmul_blocks(out, k_tiles(K, nl.tile_size.pmax),
                     lambda k0, Kp, f0, F: _quantized_tile(lhsT, k0, Kp, f0, F, mx_dtype),
                     lambda k0, Kp, f0, F: _quantized_tile(rhs, k0, Kp, f0, F, mx_dtype), psum_dtype)
    return out


def mxfp8_matmul(lhsT: np.ndarray, rhs: np.ndarray, element: str = "float8_e4m3fn",
                 out_dtype: str = "bfloat16", psum_dtype: str = "float32") -> np.ndarray:
    """Host wrapper: bf16 ``lhsT [K, M]``, ``rhs [K, N]`` -> ``[M, N]``; ``element`` float8_e4m3fn or float8_e5m2,
    ``out_dtype`` and ``psum_dtype`` bfloat16 or float32."""
    if element not in _ELEMENT:
        raise ValueError(f"element: {element!r} is not one of {sorted(_ELEMENT)} (quantize_mx makes MXFP8 only)")
    mx_dtype = getattr(nl, _ELEMENT[element])
    out = mxfp8_matmul_kernel(np.ascontiguousarray(lhsT), np.ascontiguousarray(rhs), mx_dtype,
                              getattr(nl, out_dtype), getattr(nl, psum_dtype))
    return np.asarray(out)
