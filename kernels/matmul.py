"""Tiled matmul kernel: ``a [M, K] @ b [K, N]`` as a sequence of Tensor Engine instructions.

What the kernel does, per 128-row block of ``a`` (the stationary side):

1. DMA each ``[m, k]`` tile of ``a`` from HBM into SBUF, casting to the input format on the way (the DMA write path:
   ``rounding_for("dma")``), and transpose it on the Tensor Engine (``nc_matmul(..., is_transpose=True)`` against
   an identity: bit-exact) into ``[k, m]``, the stationary layout. MX formats quantise the transposed fp32 tile
   instead (``emu.mx.quantize_operand``: one E8M0 scale per 32 consecutive k, x4 words, scale convention from the
   settings).
2. For each 512-column block of ``b`` (one fp32 PSUM bank): DMA-cast each ``[k, n]`` tile into SBUF and issue one
   ``nc_matmul`` (``nc_matmul_mx``: 128 partitions x 4 = 512 logical k) per K tile into the same PSUM tile, the first
   overwriting and the rest accumulating, in k order.
3. Copy the PSUM tile to SBUF and DMA it to the result in HBM (float32).

The result equals ``emu.matmul(a, b, fmt)`` bit for bit under RNE/RTZ (the tests check it). The one possible
difference: an MX K that is not a multiple of 128 is padded with zero blocks up to the next instruction boundary
(``nc_matmul_mx`` takes Kp in multiples of 32 partitions), where ``emu.matmul`` pads to a multiple of 32; the extra
+0 products can only turn an exactly ``-0`` sum into ``+0``. Under stochastic rounding the casts are keyed per tile,
so the bits differ from ``emu.matmul``'s (both are valid SR draws).
"""

from __future__ import annotations

import numpy as np

import emulator as emu
from emulator.engines.matmul import matmul_format, matmul_operands
from emulator.numerics.block_formats import BlockFormat
from emulator.engines.limits import MX_GROUP_ELEMENTS, PMAX
from emulator.engines.core import NeuronCore
from emulator.engines.memory import Tensor

from ._tiling import TILE_K, TILE_M, TILE_N, KernelStats, Run, tiled, transposed_tile

__all__ = ["matmul", "KernelStats", "TILE_K", "TILE_M", "TILE_N", "MX_TILE_K"]

MX_TILE_K = PMAX * MX_GROUP_ELEMENTS  # logical k per nc_matmul_mx: 128 partitions x 4 sub-elements


def _mx_operand(run: Run, values: np.ndarray, name: str) -> tuple:
    """fp32 ``[k, f]`` values zero-padded to whole 128-row blocks, quantised to SBUF (x4 words, scales)."""
    kp = -(-values.shape[0] // TILE_K) * TILE_K
    padded = np.zeros((kp, values.shape[1]), np.float32)
    padded[:values.shape[0]] = values
    x4, scale = emu.mx.quantize_operand(padded, matmul_format(run.fmt).element, order="contiguous")
    return run.sbuf(x4, f"{name}_x4"), run.sbuf(scale, f"{name}_scale")


def _load_stationary(run: Run, a_h: Tensor, m0: int, m1: int, k0: int, k1: int, ident: Tensor):
    if not run.mx:
        return run.sbuf(transposed_tile(run, a_h, m0, m1, k0, k1, ident), f"st[{m0},{k0}]")
    kt = transposed_tile(run, a_h, m0, m1, k0, k1, ident, cast=False)
    if kt.shape[1] % 2:  # nc_matmul_mx takes an even M: a zero column, dropped from the result
        kt = np.concatenate([kt, np.zeros((kt.shape[0], 1), np.float32)], axis=1)
    return _mx_operand(run, kt, f"st[{m0},{k0}]")


def _load_moving(run: Run, b_h: Tensor, k0: int, k1: int, n0: int, n1: int):
    if not run.mx:
        return run.dma_in(b_h, (slice(k0, k1), slice(n0, n1)), f"b[{k0}:{k1},{n0}:{n1}]")
    # MX: a strided DMA puts rows 4p..4p+3 on partition p, [kp, 4, n], which is the x4 packing order
    kp = -(-(k1 - k0) // TILE_K) * TILE_K // 4
    tile = run.dma_in(b_h, (slice(k0, k1), slice(n0, n1)), f"b[{k0}:{k1},{n0}:{n1}]", cast=False,
                      pad_rows=4 * kp - (k1 - k0), arrange=lambda v: v.reshape(kp, 4, -1))
    values = tile.read("quantize").reshape(4 * kp, -1)
    run.free(tile)
    return _mx_operand(run, values, f"mv[{k0},{n0}]")


def matmul(a, b, fmt: str = "bfloat16", *, psum_dtype: str = "float32", core: NeuronCore | None = None,
           stats: KernelStats | None = None) -> np.ndarray:
    """``a [M, K] @ b [K, N]`` run as the tiled instruction sequence described in the module docstring.

    Parameters
    ----------
    a, b : float arrays (float32, float64, float16 or ml_dtypes); they are cast on load.
    fmt : as :func:`emu.matmul`: float32, tfloat32, bfloat16, float16, float8_e4m3fn, float8_e5m2, float8_e4m3,
        mxfp8_e4m3, mxfp8_e5m2, mxfp4 (and their aliases).
    psum_dtype : float32 (default) or bfloat16 PSUM tiles (not with MX formats, whose v4 output is fp32 here).
    core : the :class:`~emulator.engines.core.NeuronCore` to run on (default: a fresh NC-v4 one); every tensor the
        kernel allocates in its memory is freed again before it returns; its statistics count the instructions.
    stats : a :class:`KernelStats` to fill with this run's instruction counts, DMA bytes and peak footprint.

    Returns float32 ``[M, N]``.

    >>> import numpy as np, kernels
    >>> a = np.full((2, 300), 1.0 + 2.0**-10, np.float32); b = np.ones((300, 3), np.float32)
    >>> kernels.matmul(a, b, "bfloat16")
    array([[300., 300., 300.],
           [300., 300., 300.]], dtype=float32)
    """
    desc = matmul_format(fmt)
    fmt = desc.name
    a, b = matmul_operands(a, b)
    if psum_dtype not in ("float32", "bfloat16"):
        raise emu.ArgumentError(f"kernels.matmul: psum_dtype must be 'float32' or 'bfloat16', got {psum_dtype!r}")
    mx = isinstance(desc, BlockFormat)
    if psum_dtype == "bfloat16" and mx:
        raise emu.ArgumentError(f"kernels.matmul: {fmt} accumulates in an fp32 PSUM here; psum_dtype='bfloat16' is for "
                         "the non-MX formats")
    run = Run(core if core is not None else NeuronCore(), fmt, stats if stats is not None else KernelStats(), mx)
    el = desc.element if mx else None
    tf32 = "tfloat32" if fmt == "tfloat32" else None

    def issue(st, mv, acc, i):
        if mx:
            (sx, ss), (mx4, ms) = st, mv
            run.core.nc_matmul_mx(acc, sx, mx4, ss, ms, accumulate=i > 0, stationary_fmt=el, moving_fmt=el)
        else:
            run.core.nc_matmul(acc, st, mv, accumulate=i > 0, stationary_fmt=tf32, moving_fmt=tf32)

    return tiled(run, a, b, MX_TILE_K if mx else TILE_K, psum_dtype, _load_stationary, _load_moving, issue,
                 even_m=mx)
