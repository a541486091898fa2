"""The text of ``emu.explain``: what the emulated hardware would do for an operation, from the cost model.

:func:`explain_matmul` lists the tile schedule ``emu.matmul`` runs, the bytes moved and the estimated time of
:mod:`emulator.engines.cost`. The public entry points are ``emu.explain.matmul`` and ``trn3emu explain``
(:mod:`emulator.explain`); ``emu.matmul(..., explain=True)`` prints the same report.

>>> print(explain_matmul(256, 256, 512, "bfloat16").splitlines()[0])
matmul [256 x 256] @ [256 x 512], fmt bfloat16, PSUM float32
"""

from __future__ import annotations

from ..numerics.block_formats import BlockFormat
from ..errors import ArgumentError
from . import cost

__all__ = ["explain_matmul"]


def explain_matmul(M: int, K: int, N: int, fmt: str = "bfloat16", psum_dtype: str = "float32", show: int = 6) -> str:
    """A readable report of the tile schedule and estimated cost of ``emu.matmul`` on ``[M, K] @ [K, N]``.

    ``show`` limits how many instructions of the schedule are listed.
    """
    desc = cost.matmul_format(fmt)
    fmt, mx = desc.name, isinstance(desc, BlockFormat)
    for name, v in (("M", M), ("K", K), ("N", N)):
        if int(v) <= 0:
            raise ArgumentError(f"explain.matmul: {name} must be positive, got {v}")
    M, K, N = int(M), int(K), int(N)
    p = cost.plan_matmul(M, K, N, fmt, psum_dtype)
    mt, kt, nt = p.tiles
    instr = "nc_matmul_mx" if mx else "nc_matmul"
    lines = [
        f"matmul [{M} x {K}] @ [{K} x {N}], fmt {fmt}, PSUM {psum_dtype}",
        f"tiles: {mt} stationary (<= {p.m_tile} columns) x {nt} moving (<= {p.n_tile} columns) x {kt} K tiles "
        f"(<= {p.k_tile} k{', 4 per partition' if mx else ''}) = {p.instructions} {instr}",
        "schedule (per output tile, K tiles accumulate in one PSUM tile; the first overwrites):",
    ]
    listed = 0
    for i in range(mt):
        for j in range(nt):
            for k in range(kt):
                if listed < show:
                    m0, n0, k0 = i * p.m_tile, j * p.n_tile, k * p.k_tile
                    lines.append(f"  {instr}(stationary=A[{m0}:{min(M, m0 + p.m_tile)}, {k0}:{min(K, k0 + p.k_tile)}].T, "
                                 f"moving=B[{k0}:{min(K, k0 + p.k_tile)}, {n0}:{min(N, n0 + p.n_tile)}], "
                                 f"{'overwrite' if k == 0 else 'accumulate'})")
                listed += 1
    if listed > show:
        lines.append(f"  ... {listed - show} more")
    lines += [
        f"bytes: HBM -> SBUF {p.hbm_read_bytes:,} (A once, B once per stationary row panel), "
        f"SBUF -> HBM {p.hbm_write_bytes:,}; {p.dma_transfers:,} DMA transfers",
        f"estimate: Tensor Engine {p.pe_cycles:,} cycles = {p.pe_us:.1f} us at {cost.PE_GHZ} GHz; DMA {p.dma_us:.1f} us "
        f"at {cost.DMA_BYTES_PER_NS:.0f} GB/s; PSUM evacuation {p.evacuation_us:.1f} us",
        f"          -> about {p.estimated_us:.1f} us ({p.flops / p.estimated_us / 1e6:.1f} TFLOP/s; engines overlap, "
        "the slowest stream bounds it)",
    ]
    return "\n".join(lines)
