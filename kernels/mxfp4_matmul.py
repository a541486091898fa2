"""MXFP4 matmul written against NKI: offline-quantised FP4 operands, scales scattered over the quadrants by ``.ap`` DMA.

``quantize_mx`` cannot produce FP4, so MXFP4 weights are quantised offline and arrive in HBM as x4 words (``uint16``:
four float4_e2m1fn codes, sub-element q in bits ``4q .. 4q+3``) plus E8M0 scales stored contiguously (``uint8``, one
row per 8 partitions of a K tile). For a K tile of ``4 Kp`` logical rows the words are ``[Kp, F]`` (logical row
``q Kp + p`` at partition p, sub-element q) and the scales ``[Kp / 8, F]``. ``nc_matmul_mx`` wants each group's scale
in the quadrant its 8 partitions live in: scale row j goes to partition ``32 (j // 4) + j % 4``. Per tile:

1. ``dma_copy`` the words, viewed as ``nl.float4_e2m1fn_x4`` through ``.ap(dtype=...)``, into SBUF;
2. for each 32-partition quadrant, one ``dma_copy`` whose source pattern reads 4 contiguous scale rows and whose
   destination pattern writes them at the quadrant's first 4 partitions (a memset zeroes the other 28 rows);
3. ``nc_matmul_mx`` accumulating over K tiles in one fp32 PSUM tile; ``tensor_copy`` to the output dtype, DMA out.

:func:`pack_fp4` gives the host side of that layout.

>>> import numpy as np
>>> from kernels.mxfp4_matmul import mxfp4_matmul, pack_fp4
>>> a = pack_fp4(np.full((128, 2), 0x2, np.uint8))  # code 2 = 1.0
>>> b = pack_fp4(np.full((128, 4), 0x4, np.uint8))  # code 4 = 2.0
>>> ones = np.full((4, 2), 127, np.uint8), np.full((4, 4), 127, np.uint8)  # scale 2^0
>>> mxfp4_matmul(a, ones[0], b, ones[1], out_dtype="float32").tolist()
[[256.0, 256.0, 256.0, 256.0], [256.0, 256.0, 256.0, 256.0]]
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

from .mxfp8_matmul import k_tiles, mx_matmul_blocks, mx_scale_tile

__all__ = ["mxfp4_matmul_kernel", "mxfp4_matmul", "pack_fp4", "load_x4", "load_scales"]


def load_x4(x4, w0, Kp, f0, F, x4_dtype=nl.float4_e2m1fn_x4):
    """Word rows ``w0 .. w0 + Kp``, columns ``f0 .. f0 + F`` of the HBM words (uint16 for FP4, uint32 for FP8), as
    ``x4_dtype`` words in SBUF."""
    row = x4.shape[1]
    data = nl.ndarray((Kp, F), dtype=x4_dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=data, src=x4.ap(dtype=x4_dtype, pattern=[[row, Kp], [1, F]], offset=w0 * row + f0))
    return data


def load_scales(scale, s0, Kp, f0, F):
    """Scale rows ``s0 .. s0 + Kp / 8`` (contiguous in HBM), 4 rows to the start of each 32-partition quadrant."""
    row = scale.shape[1]
    sb = mx_scale_tile(Kp, F)
    for g in range((Kp + 31) // 32):
        nisa.dma_copy(dst=sb.ap(pattern=[[F, 4], [1, F]], offset=32 * g * F),
                      src=scale.ap(pattern=[[row, 4], [1, F]], offset=(s0 + 4 * g) * row + f0))
    return sb


@nki.jit
def mxfp4_matmul_kernel(lhsT_x4, lhsT_scale, rhs_x4, rhs_scale, out_dtype):
    """``lhsT.T @ rhs`` for MXFP4 operands: words ``lhsT_x4 [K/4, M]``, ``rhs_x4 [K/4, N]`` (uint16), scales
    ``[K/32, M]`` / ``[K/32, N]`` (uint8, contiguous per tile); returns ``[M, N]`` in ``out_dtype``."""
    Kw, M = lhsT_x4.shape
    Kw_, N = rhs_x4.shape
    assert Kw == Kw_, f"contraction mismatch: {Kw} vs {Kw_} word rows"
    assert tuple(lhsT_scale.shape) == (Kw // 8, M) and tuple(rhs_scale.shape) == (Kw // 8, N), \
        "scales must be [K/32, M] and [K/32, N]"
    assert M % 2 == 0, f"M = {M} must be even (nc_matmul_mx stationary free size)"
    out = nl.ndarray((M, N), dtype=out_dtype, buffer=nl.shared_hbm)
    mx_matmul_blocks(out, k_tiles(4 * Kw, nl.tile_size.pmax),
                     lambda k0, Kp, f0, F: (load_x4(lhsT_x4, k0 // 4, Kp, f0, F),
                                            load_scales(lhsT_scale, k0 // 32, Kp, f0, F)),
                     lambda k0, Kp, f0, F: (load_x4(rhs_x4, k0 // 4, Kp, f0, F),
                                            load_scales(rhs_scale, k0 // 32, Kp, f0, F)))
    return out


def pack_fp4(codes: np.ndarray) -> np.ndarray:
    """FP4 codes ``[K, F]`` (uint8, low nibble; K a multiple of 128) -> x4 words ``[K/4, F]`` (uint16) in the layout
    above: within each K tile of ``4 Kp`` rows, word ``[p, f]`` holds rows ``q Kp + p``, q = 0..3, low nibble first."""
    codes = np.asarray(codes, np.uint16) & 0xF
    K, F = codes.shape
    words = np.zeros((K // 4, F), np.uint16)
    for k0, kp in k_tiles(K, 128):
        tile = codes[k0:k0 + 4 * kp].reshape(4, kp, F)
        words[k0 // 4:k0 // 4 + kp] = tile[0] | tile[1] << 4 | tile[2] << 8 | tile[3] << 12
    return words


def mxfp4_matmul(lhsT_x4: np.ndarray, lhsT_scale: np.ndarray, rhs_x4: np.ndarray, rhs_scale: np.ndarray,
                 out_dtype: str = "bfloat16") -> np.ndarray:
    """Host wrapper: packed words and contiguous scales (see :func:`pack_fp4`) -> ``[M, N]`` in ``out_dtype``."""
    args = [np.ascontiguousarray(a) for a in (lhsT_x4, lhsT_scale, rhs_x4, rhs_scale)]
    return np.asarray(mxfp4_matmul_kernel(*args, getattr(nl, out_dtype)))
