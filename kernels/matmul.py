"""Tiled matmul kernels: ``a [M, K] @ b [K, N]`` as a sequence of Tensor Engine instructions.

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

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

import emulator as emu
from emulator.engines.matmul import MX_ELEMENTS, format_name, matmul_operands
from emulator.engines.memory import Memory, Tensor, as_dtype
from emulator.numerics.cast import rounding_for

__all__ = ["matmul", "KernelStats", "TILE_K", "TILE_M", "TILE_N", "MX_TILE_K"]

TILE_K = 128  # contraction rows (partitions) per nc_matmul
TILE_M = 128  # stationary columns: the PE array's width
TILE_N = 512  # moving columns: one 2 KiB fp32 PSUM bank per partition
MX_TILE_K = 512  # logical k per nc_matmul_mx: 128 partitions x 4 sub-elements


@dataclass
class KernelStats:
    """What a kernel run issued: instruction counts, DMA traffic and the peak on-chip footprint."""

    instructions: Counter = field(default_factory=Counter)
    dma_bytes: int = 0
    peak_sbuf_bytes: int = 0  # per partition
    peak_psum_bytes: int = 0  # per partition

    def note(self, mem: Memory) -> None:
        self.peak_sbuf_bytes = max(self.peak_sbuf_bytes, mem.used("sbuf"))
        self.peak_psum_bytes = max(self.peak_psum_bytes, mem.used("psum"))

    def summary(self) -> str:
        ops = ", ".join(f"{name} x{count}" for name, count in sorted(self.instructions.items()))
        return (f"{ops}; DMA {self.dma_bytes / 2 ** 20:.2f} MiB; peak SBUF {self.peak_sbuf_bytes} B and PSUM "
                f"{self.peak_psum_bytes} B per partition")


class _Run:
    """The state one kernel call threads through its helpers: memory, format, statistics."""

    def __init__(self, mem: Memory, fmt: str, stats: KernelStats) -> None:
        self.mem, self.fmt, self.stats = mem, fmt, stats
        self.mx = fmt in MX_ELEMENTS
        self.el = MX_ELEMENTS.get(fmt, fmt)
        self.dtype = np.dtype(np.float32) if self.mx or fmt in ("float32", "tfloat32") else as_dtype(fmt)
        self.rounding = rounding_for("dma")
        self.site = 0

    def dma_in(self, src: Tensor, index, name: str, cast: bool = True) -> Tensor:
        """HBM tile -> new SBUF tensor, cast to the input format (a DMA with dtype conversion)."""
        vals = src.read("dma_copy", index)
        if cast and self.dtype != np.float32:
            self.site += 1
            vals = emu.round_to(vals, self.fmt, rounding=self.rounding, site=self.site)
        elif cast and self.fmt == "tfloat32":
            vals = emu.round_to(vals, "tfloat32", rounding=self.rounding, site=self.site)
        t = self.mem.sbuf(vals.shape, self.dtype, name=name, value=vals)
        self.stats.dma_bytes += t.nbytes
        self.stats.instructions["dma_copy"] += 1
        self.stats.note(self.mem)
        return t


def _stationary_tiles(run: _Run, a_h: Tensor, m0: int, m1: int, K: int, ident: Tensor) -> list:
    """The stationary operands of one row block: per K tile, an SBUF tensor [k, m] (x4 words and scales for MX)."""
    mem, tiles = run.mem, []
    eye = ident.read("nc_matmul moving", (slice(0, m1 - m0), slice(0, m1 - m0)))
    ktile = MX_TILE_K if run.mx else TILE_K
    for k0 in range(0, K, ktile):
        k1 = min(K, k0 + ktile)
        if run.mx:
            # the fp32 tile is transposed in 128-wide pieces (the Tensor Engine's limit), then quantised as [k, m]
            raw = run.dma_in(a_h, (slice(m0, m1), slice(k0, k1)), f"a[{m0}:{m1},{k0}:{k1}]", cast=False)
            kt = np.zeros((-(-(k1 - k0) // TILE_K) * TILE_K, m1 - m0 + (m1 - m0) % 2), np.float32)
            for j in range(0, k1 - k0, TILE_K):
                piece = raw.read("nc_matmul", (slice(None), slice(j, min(k1 - k0, j + TILE_K))))
                kt[j:j + piece.shape[1], :m1 - m0] = emu.nc_matmul(piece, eye, is_transpose=True)
                run.stats.instructions["nc_matmul (transpose)"] += 1
            mem.free(raw)
            x4, scale = emu.mx.quantize_operand(kt, run.el, order="contiguous")
            tiles.append((mem.sbuf(x4.shape, x4.dtype, name=f"st_x4[{k0}]", value=x4),
                          mem.sbuf(scale.shape, np.uint8, name=f"st_scale[{k0}]", value=scale)))
        else:
            raw = run.dma_in(a_h, (slice(m0, m1), slice(k0, k1)), f"a[{m0}:{m1},{k0}:{k1}]")
            st = emu.nc_matmul(raw, eye, is_transpose=True)
            run.stats.instructions["nc_matmul (transpose)"] += 1
            mem.free(raw)
            tiles.append(mem.sbuf(st.shape, st.dtype, name=f"st[{k0}]", value=st))
        run.stats.note(mem)
    return tiles


def _moving_tile(run: _Run, b_h: Tensor, k0: int, k1: int, n0: int, n1: int):
    """One moving operand in SBUF: [k, n] in the input format; for MX, (x4 words, scales) of the tile zero-padded
    to a whole number of 128-row blocks, loaded by a strided DMA that puts rows 4p..4p+3 on partition p."""
    if not run.mx:
        return run.dma_in(b_h, (slice(k0, k1), slice(n0, n1)), f"b[{k0}:{k1},{n0}:{n1}]")
    kp = -(-(k1 - k0) // TILE_K) * TILE_K // 4
    rows = np.zeros((4 * kp, n1 - n0), np.float32)
    rows[:k1 - k0] = b_h.read("dma_copy", (slice(k0, k1), slice(n0, n1)))
    tile = run.mem.sbuf((kp, 4, n1 - n0), np.float32, name=f"b[{k0}:{k1},{n0}:{n1}]", value=rows.reshape(kp, 4, -1))
    run.stats.dma_bytes += (k1 - k0) * (n1 - n0) * 4
    run.stats.instructions["dma_copy"] += 1
    run.stats.note(run.mem)
    x4, scale = emu.mx.quantize_operand(tile.read("quantize").reshape(4 * kp, -1), run.el, order="contiguous")
    run.mem.free(tile)
    return (run.mem.sbuf(x4.shape, x4.dtype, name=f"mv_x4[{k0}]", value=x4),
            run.mem.sbuf(scale.shape, np.uint8, name=f"mv_scale[{k0}]", value=scale))


def matmul(a, b, fmt: str = "bfloat16", *, psum_dtype: str = "float32", memory: Memory | None = None,
           stats: KernelStats | None = None) -> np.ndarray:
    """``a [M, K] @ b [K, N]`` run as the tiled instruction sequence described in the module docstring.

    Parameters
    ----------
    a, b : float arrays (float32, float64, float16 or ml_dtypes); they are cast on load.
    fmt : as :func:`emu.matmul`: float32, tfloat32, bfloat16, float16, float8_e4m3fn, float8_e5m2, float8_e4m3,
        mxfp8_e4m3, mxfp8_e5m2, mxfp4 (and their aliases).
    psum_dtype : float32 (default) or bfloat16 PSUM tiles (not with MX formats, whose v4 output is fp32 here).
    memory : the :class:`~emulator.engines.memory.Memory` to run in (default: a fresh NC-v4 one); every on-chip
        tensor is freed again before returning.
    stats : a :class:`KernelStats` to fill with instruction counts, DMA bytes and peak footprint.

    Returns float32 ``[M, N]``.

    >>> import numpy as np, kernels
    >>> a = np.full((2, 300), 1.0 + 2.0**-10, np.float32); b = np.ones((300, 3), np.float32)
    >>> kernels.matmul(a, b, "bfloat16")
    array([[300., 300., 300.],
           [300., 300., 300.]], dtype=float32)
    """
    fmt = format_name(fmt)
    a, b = matmul_operands(a, b)
    if psum_dtype not in ("float32", "bfloat16"):
        raise ValueError(f"kernels.matmul: psum_dtype must be 'float32' or 'bfloat16', got {psum_dtype!r}")
    if psum_dtype == "bfloat16" and fmt in MX_ELEMENTS:
        raise ValueError(f"kernels.matmul: {fmt} accumulates in an fp32 PSUM here; psum_dtype='bfloat16' is for "
                         "the non-MX formats")
    mem = memory if memory is not None else Memory()
    stats = stats if stats is not None else KernelStats()
    run = _Run(mem, fmt, stats)
    (M, K), N = a.shape, b.shape[1]
    before = list(mem.tensors)
    try:
        a_h = mem.hbm((M, K), np.float32, name="a", value=a)
        b_h = mem.hbm((K, N), np.float32, name="b", value=b)
        c_h = mem.hbm((M, N), np.float32, name="c")
        eye_dt = np.float32 if run.mx else run.dtype
        ident = mem.sbuf((TILE_M, TILE_M), eye_dt, name="identity", value=np.eye(TILE_M, dtype=np.float32))
        ktile = MX_TILE_K if run.mx else TILE_K
        for m0 in range(0, M, TILE_M):
            m1 = min(M, m0 + TILE_M)
            st_tiles = _stationary_tiles(run, a_h, m0, m1, K, ident)
            for n0 in range(0, N, TILE_N):
                n1 = min(N, n0 + TILE_N)
                rows = (m1 - m0) + (m1 - m0) % 2 if run.mx else m1 - m0  # nc_matmul_mx takes an even M
                acc = mem.psum((rows, n1 - n0), psum_dtype, name=f"acc[{m0},{n0}]")
                for i, k0 in enumerate(range(0, K, ktile)):
                    mv = _moving_tile(run, b_h, k0, min(K, k0 + ktile), n0, n1)
                    if run.mx:
                        (sx, ss), (mx4, ms) = st_tiles[i], mv
                        emu.nc_matmul_mx(sx, mx4, ss, ms, run.el, run.el, acc, accumulate=i > 0)
                        stats.instructions["nc_matmul_mx"] += 1
                        mem.free(mx4)
                        mem.free(ms)
                    else:
                        fp = "tfloat32" if fmt == "tfloat32" else None
                        emu.nc_matmul(st_tiles[i], mv, acc, accumulate=i > 0, stationary_fmt=fp, moving_fmt=fp,
                                      site=i)
                        stats.instructions["nc_matmul"] += 1
                        mem.free(mv)
                    stats.note(mem)
                res = mem.sbuf((rows, n1 - n0), np.float32, name=f"res[{m0},{n0}]",
                               value=acc.read("tensor_copy").astype(np.float32))
                stats.instructions["tensor_copy"] += 1
                c_h.write(res.read("dma_copy")[:m1 - m0], (slice(m0, m1), slice(n0, n1)))
                stats.instructions["dma_copy"] += 1
                stats.dma_bytes += (m1 - m0) * (n1 - n0) * 4
                mem.free(res)
                mem.free(acc)
            for t in st_tiles:
                for part in (t if isinstance(t, tuple) else (t,)):
                    mem.free(part)
        return c_h.read("result")
    finally:
        for t in [t for t in mem.tensors if t not in before]:
            mem.free(t)
