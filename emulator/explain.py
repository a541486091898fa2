"""``emu.explain``: show what the emulated hardware would do, before trusting a result.

``emu.explain.matmul(M, K, N, fmt)`` prints the tile schedule ``emu.matmul`` runs, the bytes moved and an estimated
time from the cost model (:mod:`emulator.engines.cost`); ``trn3emu explain matmul M K N --fmt bf16`` does the same.

>>> import emulator as emu
>>> print(emu.explain.matmul(256, 256, 512, "bfloat16").splitlines()[0])
matmul [256 x 256] @ [256 x 512], fmt bfloat16, PSUM float32
"""

from __future__ import annotations

import argparse
from .errors import ArgumentError

from .engines.explain import explain_matmul

__all__ = ["matmul", "register"]


matmul = explain_matmul


def _cmd(args: argparse.Namespace) -> int:
    if args.show < 0:
        raise ArgumentError(f"--show must be >= 0, got {args.show}")
    print(matmul(args.M, args.K, args.N, fmt=args.fmt, psum_dtype=args.psum_dtype, show=args.show))
    return 0


def _cmd_collective(args: argparse.Namespace) -> int:
    from .collectives import explain

    if args.ranks < 1 or args.count < 0:
        raise ArgumentError(f"--ranks must be >= 1 and --count >= 0, got {args.ranks} and {args.count}")
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
