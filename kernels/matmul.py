"""Tiled matmul written against NKI: ``a [M, K] @ b [K, N]`` for every Tensor Engine input format, float32 out.

Non-MX formats (``matmul_kernel``), per 128-row block of ``a`` (the stationary side):

1. ``dma_copy`` each ``[m, 128]`` tile of ``a`` from HBM into SBUF, casting to the input format on the way (the DMA
   write path: ``rounding_for("dma")``), ``nc_transpose`` it on the Tensor Engine into PSUM (bit-exact) and
   ``tensor_copy`` the ``[k, m]`` transpose back to SBUF: the stationary tiles, loaded once per row block;
2. for each 512-column block of ``b`` (one fp32 PSUM bank): ``dma_copy`` (cast) each ``[k, n]`` tile into SBUF and
   issue one ``nc_matmul`` per K tile into the same PSUM tile, ``accumulate=(kt > 0)``, in k order;
3. ``tensor_copy`` the PSUM tile to SBUF (float32) and ``dma_copy`` it to the result in HBM.

MX formats quantise on the host, as offline-quantised weights arrive (``emu.mx.quantize_operand``, order
"contiguous": x4 word (p, f) sub-element q holds k = 4p + q, one E8M0 scale per 32 consecutive k; convention from
the settings): ``a``'s transpose and ``b`` go to HBM as x4 words and scales, and the MX tile loop of
:mod:`kernels.mxfp8_matmul` loads them (scales scattered over the partition quadrants by ``.ap`` DMA, as in
:mod:`kernels.mxfp4_matmul`) and issues ``nc_matmul_mx`` with 128 partitions x 4 = 512 logical k per instruction.

The result equals ``emu.matmul(a, b, fmt)`` bit for bit under RNE/RTZ (the tests check it). The one possible
difference: an MX K is padded with zero blocks to a multiple of 128 (``nc_matmul_mx`` takes Kp in multiples of 32
partitions), where ``emu.matmul`` pads to a multiple of 32; the extra +0 products can only turn an exactly ``-0``
sum into ``+0``. tfloat32 operands are rounded on the host (the emulated ``dma_copy`` into an ``nl.tfloat32`` tile
does not round; the DMA's rounding is used). Under stochastic rounding the DMA casts are keyed per tile, so the bits
differ from ``emu.matmul``'s (both are valid SR draws). Instruction counts, DMA bytes and peak SBUF/PSUM of the
latest call: ``emulator.nki.last_report()``.
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

from .mxfp4_matmul import load_scales, load_x4
from .mxfp8_matmul import k_tiles, mx_matmul_blocks

__all__ = ["matmul", "matmul_kernel", "mx_matmul_kernel", "tile_loop", "check_psum_dtype", "host_operand"]


def tile_loop(out, ktiles, load_stationary, load_moving, issue, psum_dtype):
    """``out [M, N]`` (float32, HBM) in blocks of up to 128 x 512: per row block the stationary tiles
    ``load_stationary(m0, m)`` (one per entry of ``ktiles``, reused across the column blocks); per column block one
    PSUM tile of ``psum_dtype`` that ``issue(acc, stationary, moving, kt)`` fills from each ``load_moving(kt, n0,
    n)``, copied to SBUF and DMA'd out."""
    M, N = out.shape
    TM, TN = nl.tile_size.gemm_stationary_fmax, nl.tile_size.gemm_moving_fmax
    for i in nl.affine_range((M + TM - 1) // TM):
        m0 = i * TM
        m = min(TM, M - m0)
        stationary = load_stationary(m0, m)
        for j in nl.affine_range((N + TN - 1) // TN):
            n0 = j * TN
            n = min(TN, N - n0)
            acc = nl.ndarray((TM, TN), dtype=psum_dtype, buffer=nl.psum)
            for kt in nl.affine_range(len(ktiles)):
                issue(acc[0:m, 0:n], stationary[kt], load_moving(kt, n0, n), kt)
            res = nl.ndarray((TM, TN), dtype=nl.float32, buffer=nl.sbuf)
            nisa.tensor_copy(dst=res[0:m, 0:n], src=acc[0:m, 0:n])
            nisa.dma_copy(dst=out[m0:m0 + m, n0:n0 + n], src=res[0:m, 0:n])


def _transposed(a, m0, m, k0, k, in_dtype):
    """``a[m0:m0+m, k0:k0+k]`` DMA-cast into SBUF and transposed on the Tensor Engine: an SBUF ``[k, m]`` tile."""
    P = nl.tile_size.pmax
    raw = nl.ndarray((P, P), dtype=in_dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=raw[0:m, 0:k], src=a[m0:m0 + m, k0:k0 + k])
    t_psum = nl.ndarray((P, P), dtype=in_dtype, buffer=nl.psum)
    nisa.nc_transpose(dst=t_psum[0:k, 0:m], data=raw[0:m, 0:k])
    st = nl.ndarray((P, P), dtype=in_dtype, buffer=nl.sbuf)
    nisa.tensor_copy(dst=st[0:k, 0:m], src=t_psum[0:k, 0:m])
    return st[0:k, 0:m]


@nki.jit
def matmul_kernel(a, b, in_dtype, psum_dtype=nl.float32):
    """``a @ b`` for float32 ``a [M, K]``, ``b [K, N]`` in HBM, cast on load to ``in_dtype`` (an ``nc_matmul``
    input dtype); returns float32 ``[M, N]``, accumulated in ``psum_dtype`` PSUM tiles."""
    M, K = a.shape
    K_, N = b.shape
    assert K == K_, f"contraction mismatch: a has K = {K}, b has K = {K_}"
    P = nl.tile_size.pmax
    ktiles = [(k0, min(P, K - k0)) for k0 in range(0, K, P)]
    out = nl.ndarray((M, N), dtype=nl.float32, buffer=nl.shared_hbm)

    def load_moving(kt, n0, n):
        k0, k = ktiles[kt]
        mv = nl.ndarray((P, nl.tile_size.gemm_moving_fmax), dtype=in_dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=mv[0:k, 0:n], src=b[k0:k0 + k, n0:n0 + n])
        return mv[0:k, 0:n]

    def issue(acc, st, mv, kt):
        nisa.nc_matmul(dst=acc, stationary=st, moving=mv, accumulate=(kt > 0))

    tile_loop(out, ktiles, lambda m0, m: [_transposed(a, m0, m, k0, k, in_dtype) for k0, k in ktiles],
              load_moving, issue, psum_dtype)
    return out


@nki.jit
def mx_matmul_kernel(st_x4, st_scale, mv_x4, mv_scale, x4_dtype):
    """``A @ B`` for MX operands quantised on the host: words ``st_x4 [K/4, M]`` (A's transpose), ``mv_x4 [K/4, N]``
    (uint32 for FP8, uint16 for FP4; ``x4_dtype`` names them), contiguous scales ``[K/32, M]`` / ``[K/32, N]``;
    K a multiple of 128, M even. Returns float32 ``[M, N]``."""
    Kw, M = st_x4.shape
    N = mv_x4.shape[1]
    out = nl.ndarray((M, N), dtype=nl.float32, buffer=nl.shared_hbm)
    mx_matmul_blocks(out, k_tiles(4 * Kw, nl.tile_size.pmax),
                     lambda k0, Kp, f0, F: (load_x4(st_x4, k0 // 4, Kp, f0, F, x4_dtype),
                                            load_scales(st_scale, k0 // 32, Kp, f0, F)),
                     lambda k0, Kp, f0, F: (load_x4(mv_x4, k0 // 4, Kp, f0, F, x4_dtype),
                                            load_scales(mv_scale, k0 // 32, Kp, f0, F)))
    return out


def check_psum_dtype(psum_dtype: str, who: str) -> None:
    """Raise ``ArgumentError`` (naming ``who``) unless ``psum_dtype`` is float32 or bfloat16."""
    if psum_dtype not in ("float32", "bfloat16"):
        raise emu.ArgumentError(f"{who}: psum_dtype must be 'float32' or 'bfloat16', got {psum_dtype!r}")


def host_operand(x: np.ndarray, fmt: str) -> tuple[np.ndarray, object]:
    """(the float32 HBM array, the SBUF dtype) of an operand the kernel DMA-casts to ``fmt``; tfloat32 is rounded
    here, with the DMA's rounding (the emulated DMA does not round into an ``nl.tfloat32`` tile)."""
    x = np.ascontiguousarray(x, np.float32)
    if fmt == "tfloat32":
        return np.asarray(emu.round_to(x, "tfloat32", rounding=rounding_for("dma")), np.float32), nl.tfloat32
    return x, getattr(nl, fmt)


def _mx_matmul(a: np.ndarray, b: np.ndarray, desc) -> np.ndarray:
    """The MX path: zero-pad K to a multiple of 128 and M to even, quantise on the host, run the kernel."""
    (M, K), N = a.shape, b.shape[1]
    Kp, Mp = -(-K // 128) * 128, M + M % 2
    st = np.zeros((Kp, Mp), np.float32)
    st[:K, :M] = a.T
    mv = np.zeros((Kp, N), np.float32)
    mv[:K] = b
    el = desc.element
    st_x4, st_scale = emu.mx.quantize_operand(st, el, order="contiguous")
    mv_x4, mv_scale = emu.mx.quantize_operand(mv, el, order="contiguous")
    x4_dtype = getattr(nl, f"{getattr(el, 'name', el)}_x4")
    return np.asarray(mx_matmul_kernel(st_x4, st_scale, mv_x4, mv_scale, x4_dtype))[:M]


def matmul(a, b, fmt: str = "bfloat16", *, psum_dtype: str = "float32") -> np.ndarray:
    """``a [M, K] @ b [K, N]`` run as the NKI kernels described in the module docstring.

    Parameters
    ----------
    a, b : float arrays (float32, float64, float16 or ml_dtypes); they go to HBM as float32 and are cast on load.
    fmt : as :func:`emu.matmul`: float32, tfloat32, bfloat16, float16, float8_e4m3fn, float8_e5m2, float8_e4m3,
        mxfp8_e4m3, mxfp8_e5m2, mxfp4 (and their aliases).
    psum_dtype : float32 (default) or bfloat16 PSUM tiles (not with MX formats, whose v4 output is fp32 here).

    Returns float32 ``[M, N]``; ``emulator.nki.last_report()`` then holds the launch's instruction counts, DMA bytes
    and peak SBUF/PSUM.

    >>> import numpy as np, kernels
    >>> a = np.full((2, 300), 1.0 + 2.0**-10, np.float32); b = np.ones((300, 3), np.float32)
    >>> kernels.matmul(a, b, "bfloat16")
    array([[300., 300., 300.],
           [300., 300., 300.]], dtype=float32)
    """
    desc = matmul_format(fmt)
    fmt = desc.name
    a, b = matmul_operands(a, b)
    check_psum_dtype(psum_dtype, "kernels.matmul")
    if isinstance(desc, BlockFormat):
        if psum_dtype == "bfloat16":
            raise emu.ArgumentError(f"kernels.matmul: {fmt} accumulates in an fp32 PSUM here; psum_dtype='bfloat16' "
                                    "is for the non-MX formats")
        return _mx_matmul(np.asarray(a, np.float32), np.asarray(b, np.float32), desc)
    a, in_dtype = host_operand(a, fmt)
    b, _ = host_operand(b, fmt)
    return np.asarray(matmul_kernel(a, b, in_dtype, getattr(nl, psum_dtype)))
