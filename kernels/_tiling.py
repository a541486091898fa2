"""The loop every bundled matmul kernel shares: row blocks of ``a``, column blocks of ``b``, K tiles into one PSUM
tile, the copy back; plus the DMA and Tensor Engine transpose steps the kernels load their operands with."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import emulator as emu
from emulator.engines.limits import GEMM_MOVING_FMAX, GEMM_STATIONARY_FMAX, PMAX
from emulator.engines.core import NeuronCore
from emulator.engines.memory import Memory, Tensor, as_dtype
from emulator.numerics.cast import rounding_for

__all__ = ["KernelStats", "Run", "TILE_K", "TILE_M", "TILE_N", "tiled", "transposed_tile"]

TILE_K = PMAX  # contraction rows (partitions) per nc_matmul
TILE_M = GEMM_STATIONARY_FMAX  # stationary columns: the PE array width
TILE_N = GEMM_MOVING_FMAX  # moving columns: one 2 KiB fp32 PSUM bank per partition


@dataclass
class KernelStats:
    """What a kernel run issued: instruction counts and DMA traffic (from its NeuronCore's statistics) and the peak
    on-chip footprint."""

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


class Run:
    """What one kernel call threads through its steps: the NeuronCore (memory, SR sites, statistics), the input
    format and the kernel-level statistics.

    ``dtype`` is the SBUF dtype operands are cast to on load (float32 for fp32/tf32 and for MX, which quantises
    fp32 tiles itself)."""

    def __init__(self, core: NeuronCore, fmt: str, stats: KernelStats, mx: bool = False) -> None:
        self.core, self.mem, self.fmt, self.stats, self.mx = core, core.memory, fmt, stats, mx
        self.dtype = np.dtype(np.float32) if mx or fmt in ("float32", "tfloat32") else as_dtype(fmt)
        self._start = dict(core.stats.instructions), core.stats["dma"].bytes

    def finish(self) -> None:
        """Fold what the core counted during this run into the kernel statistics."""
        before, dma_bytes = self._start
        for name, count in self.core.stats.instructions.items():
            if count > before.get(name, 0):
                self.stats.instructions[name] += count - before.get(name, 0)
        self.stats.dma_bytes += self.core.stats["dma"].bytes - dma_bytes

    def dma_in(self, src: Tensor, index, name: str, cast: bool = True, pad_rows: int = 0,
               arrange: Callable | None = None) -> Tensor:
        """HBM tile -> new SBUF tensor by ``dma_copy`` (cast to the input format: the DMA converts through fp32
        with DMA-side rounding); ``pad_rows`` zero rows are appended (a memset of the tile's tail); ``arrange``
        reshapes the values into the SBUF layout a strided DMA would write."""
        view = src[index]
        if pad_rows or arrange is not None or (cast and self.fmt == "tfloat32"):
            return self._dma_in_host(view, name, cast, pad_rows, arrange)
        t = self.mem.sbuf(view.shape, self.dtype if cast else view.dtype, name=name)
        self.core.dma_copy(t, view)
        self.stats.note(self.mem)
        return t

    def _dma_in_host(self, view: Tensor, name: str, cast: bool, pad_rows: int, arrange: Callable | None) -> Tensor:
        """The layouts a plain dma_copy cannot express here (zero padding, the MX row interleave) and tf32 (an
        fp32 container the DMA does not round): prepared host-side from the values the DMA reads."""
        vals = view.read("dma_copy")
        if cast and self.fmt != "float32":
            vals = emu.round_to(vals, self.fmt, rounding=rounding_for("dma"), site=self.core.next_site())
        if pad_rows:
            vals = np.concatenate([vals, np.zeros((pad_rows,) + vals.shape[1:], vals.dtype)])
        if arrange is not None:
            vals = arrange(vals)
        t = self.mem.sbuf(vals.shape, self.dtype if cast else vals.dtype, name=name, value=vals)
        self.stats.instructions["dma_copy"] += 1
        self.stats.dma_bytes += t.nbytes
        self.stats.note(self.mem)
        return t

    def sbuf(self, value: np.ndarray, name: str) -> Tensor:
        """An SBUF tensor holding ``value`` (its dtype), written by an engine instruction."""
        t = self.mem.sbuf(value.shape, value.dtype, name=name, value=value)
        self.stats.note(self.mem)
        return t

    def free(self, *tensors) -> None:
        """Free SBUF tensors (and tuples of them)."""
        for t in tensors:
            for part in (t if isinstance(t, tuple) else (t,)):
                self.mem.free(part)


def transposed_tile(run: Run, a_h: Tensor, m0: int, m1: int, k0: int, k1: int, ident: Tensor,
                    cast: bool = True) -> np.ndarray:
    """``a[m0:m1, k0:k1]`` DMA'd into SBUF (cast to the input format unless ``cast=False``) and transposed on the
    Tensor Engine (``nc_matmul`` transpose mode into PSUM: bit-exact) in 128-column pieces: the ``[k, m]`` values,
    in the load's dtype."""
    raw = run.dma_in(a_h, (slice(m0, m1), slice(k0, k1)), f"a[{m0}:{m1},{k0}:{k1}]", cast=cast)
    rows = m1 - m0
    eye = ident[:rows, :rows] if raw.dtype == ident.dtype else None
    parts = []
    for j in range(0, k1 - k0, TILE_K):
        j1 = min(k1 - k0, j + TILE_K)
        if eye is None:  # an fp32 load (MX) transposes against an fp32 identity
            eye = run.mem.sbuf((rows, rows), raw.dtype, name="identity32", value=np.eye(rows, dtype=np.float32))
        out = run.mem.psum((j1 - j, rows), raw.dtype, name=f"aT[{k0 + j}]")
        run.core.nc_matmul(out, raw[:, j:j1], eye, is_transpose=True)
        parts.append(out.read("tensor_copy"))
        run.mem.free(out)
    run.mem.free(raw)
    if eye is not None and eye.base is not ident.base:
        run.mem.free(eye)
    return np.concatenate(parts, axis=0)


def tiled(run: Run, a: np.ndarray, b: np.ndarray, ktile: int, psum_dtype: str,
          load_stationary: Callable, load_moving: Callable, issue: Callable, even_m: bool = False) -> np.ndarray:
    """``a [M, K] @ b [K, N]``: per 128-row block of ``a``, ``load_stationary(run, a_h, m0, m1, k0, k1, ident)``
    makes the stationary operand of every K tile of ``ktile`` logical rows; per 512-column block of ``b``,
    ``load_moving(run, b_h, k0, k1, n0, n1)`` loads each moving tile and ``issue(st, mv, acc, i)`` runs K tile ``i``
    into the PSUM tile ``acc`` (the first overwriting, the rest accumulating); the PSUM tile is copied to SBUF
    (``tensor_copy``) and DMA'd into the float32 result. ``even_m`` pads the PSUM tile to an even row count
    (nc_matmul_mx). Every tensor the kernel allocates is freed again, also on error."""
    mem, stats, core = run.mem, run.stats, run.core
    (M, K), N = a.shape, b.shape[1]
    before = list(mem.tensors)
    try:
        a_h = mem.hbm((M, K), np.float32, name="a", value=a)
        b_h = mem.hbm((K, N), np.float32, name="b", value=b)
        c_h = mem.hbm((M, N), np.float32, name="c")
        ident = mem.sbuf((TILE_M, TILE_M), run.dtype, name="identity", value=np.eye(TILE_M, dtype=np.float32))
        for m0 in range(0, M, TILE_M):
            m1 = min(M, m0 + TILE_M)
            st_tiles = [load_stationary(run, a_h, m0, m1, k0, min(K, k0 + ktile), ident)
                        for k0 in range(0, K, ktile)]
            rows = m1 - m0 + (m1 - m0) % 2 if even_m else m1 - m0
            for n0 in range(0, N, TILE_N):
                n1 = min(N, n0 + TILE_N)
                acc = mem.psum((rows, n1 - n0), psum_dtype, name=f"acc[{m0},{n0}]")
                for i, k0 in enumerate(range(0, K, ktile)):
                    mv = load_moving(run, b_h, k0, min(K, k0 + ktile), n0, n1)
                    issue(st_tiles[i], mv, acc, i)
                    stats.note(mem)
                    run.free(mv)
                res = mem.sbuf((rows, n1 - n0), np.float32, name=f"res[{m0},{n0}]")
                core.tensor_copy(res, acc)
                core.dma_copy(c_h[m0:m1, n0:n1], res[:m1 - m0])
                run.free(res, acc)
            run.free(*st_tiles)
        return c_h.read("result")
    finally:
        run.finish()
        for t in [t for t in mem.tensors if t not in before]:
            mem.free(t)
