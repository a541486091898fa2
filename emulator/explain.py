"""``emu.explain``: show what the emulated hardware would do, before trusting a result.

``emu.explain.matmul(M, K, N, fmt)`` prints the tile schedule ``emu.matmul`` runs, the bytes moved and an estimated
time from the cost model (:mod:`emulator.engines.cost`); ``trn3emu explain matmul M K N --fmt bf16`` does the same.

>>> import emulator as emu
>>> print(emu.explain.matmul(256, 256, 512, "bfloat16").splitlines()[0])
matmul [256 x 256] @ [256 x 512], fmt bfloat16, PSUM float32
"""

from __future__ import annotations

import argparse

__all__ = ["matmul", "register"]


def matmul(M: int, K: int, N: int, fmt: str = "bfloat16", psum_dtype: str = "float32", show: int = 6) -> str:
    """A readable report of the tile schedule and estimated cost of ``emu.matmul`` on ``[M, K] @ [K, N]``.

    ``show`` limits how many instructions of the schedule are listed.
    """
    from .engines import cost
    from .engines.matmul import format_name

    fmt = format_name(fmt)
    for name, v in (("M", M), ("K", K), ("N", N)):
        if int(v) <= 0:
            raise ValueError(f"explain.matmul: {name} must be positive, got {v}")
    M, K, N = int(M), int(K), int(N)
    p = cost.plan_matmul(M, K, N, fmt, psum_dtype)
    mt, kt, nt = p.tiles
    instr = "nc_matmul_mx" if fmt.startswith("mx") else "nc_matmul"
    lines = [
        f"matmul [{M} x {K}] @ [{K} x {N}], fmt {fmt}, PSUM {psum_dtype}",
        f"tiles: {mt} stationary (<= {p.m_tile} columns) x {nt} moving (<= {p.n_tile} columns) x {kt} K tiles "
        f"(<= {p.k_tile} k{', 4 per partition' if fmt.startswith('mx') else ''}) = {p.instructions} {instr}",
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


def _cmd(args: argparse.Namespace) -> int:
    if args.show < 0:
        raise ValueError(f"--show must be >= 0, got {args.show}")
    print(matmul(args.M, args.K, args.N, fmt=args.fmt, psum_dtype=args.psum_dtype, show=args.show))
    return 0


def _cmd_collective(args: argparse.Namespace) -> int:
    from .collectives import explain

    if args.ranks < 1 or args.count < 0:
        raise ValueError(f"--ranks must be >= 1 and --count >= 0, got {args.ranks} and {args.count}")
    print(explain(args.op, ranks=args.ranks, count=args.count, dtype=args.dtype, algorithm=args.algorithm,
                  server_ranks=args.server_ranks, full=args.full))
    return 0


def register(subparsers) -> None:
    """Add ``trn3emu explain matmul M K N [--fmt F] [--psum-dtype D] [--show S]`` and
    ``trn3emu explain collective OP [--ranks R] [--full] ...``."""
    parser = subparsers.add_parser("explain", help="show the tile schedule and estimated cost of an operation")
    sub = parser.add_subparsers(dest="what", required=True)
    mm = sub.add_parser("matmul", help="tile schedule, bytes moved and estimated cycles of emu.matmul")
    for name in ("M", "K", "N"):
        mm.add_argument(name, type=int)
    mm.add_argument("--fmt", default="bfloat16", help="input format (bf16, fp32, e4m3fn, mxfp8_e4m3, mxfp4, ...)")
    mm.add_argument("--psum-dtype", default="float32", choices=("float32", "bfloat16"))
    mm.add_argument("--show", type=int, default=6, help="instructions of the schedule to list")
    mm.set_defaults(func=_cmd)
    co = sub.add_parser("collective", help="schedule, reduction order and estimated cost of a collective")
    co.add_argument("op", choices=("all_reduce", "reduce_scatter", "reduce", "all_gather", "all_to_all", "broadcast"))
    co.add_argument("--ranks", type=int, default=8)
    co.add_argument("--count", type=int, default=1 << 20, help="elements per rank")
    co.add_argument("--dtype", default="bfloat16")
    co.add_argument("--algorithm", default=None)
    co.add_argument("--server-ranks", dest="server_ranks", type=int, default=None)
    co.add_argument("--full", action="store_true", help="list every round and the whole reduction order")
    co.set_defaults(func=_cmd_collective)
