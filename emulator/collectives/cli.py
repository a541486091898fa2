"""``trn3emu collective OP ...``: run one collective on seeded data and print its digest, error and cost.

    trn3emu collective all_reduce --ranks 8 --dtype bfloat16 --count 4096 --algorithm ring --seed 1
    mpiexec -n 8 trn3emu collective all_reduce --ranks 8 --dtype bfloat16 --count 4096 --backend mpi

Rank r's data is ``default_rng([seed, r])`` normals (integers for integer dtypes), so both backends see the same
inputs. ``digest`` is the SHA-256 of every rank's result bytes concatenated in rank order; the same arguments give
the same digest on ``--backend local`` and ``--backend mpi``. ``--kill-rank K`` makes rank K stop responding (or exit,
``--kill-mode exit``) half-way through the schedule: the survivors' watchdog aborts the job within ``--timeout``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time

import numpy as np

from ..errors import RankFailure, SettingsError

OPS = ("all_reduce", "reduce_scatter", "reduce", "all_gather", "all_to_all", "broadcast")


def register(subparsers) -> None:
    from .algorithms import ALGORITHMS

    p = subparsers.add_parser("collective", help="run a collective on seeded data (local or under mpiexec)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("op", choices=OPS)
    p.add_argument("--ranks", type=int, default=8)
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--count", type=int, default=4096, help="elements per rank")
    p.add_argument("--algorithm", choices=ALGORITHMS, default=None)
    p.add_argument("--reduce-op", dest="reduce_op", default="add", choices=("add", "max", "min", "mul"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rounding", choices=("rne", "rtz", "sr"), default=None)
    p.add_argument("--channels", type=int, default=None)
    p.add_argument("--server-ranks", dest="server_ranks", type=int, default=None,
                   help="ranks per server for --algorithm hierarchical (default: collective_server_ranks)")
    p.add_argument("--backend", choices=("local", "mpi"), default="local")
    p.add_argument("--timeout", type=float, default=None, help="watchdog seconds (default: collective_timeout)")
    p.add_argument("--kill-rank", dest="kill_rank", type=int, default=None)
    p.add_argument("--kill-mode", dest="kill_mode", choices=("hang", "exit"), default="hang")
    p.set_defaults(func=main)


def _dtype(name: str):
    if name in ("int8", "int16", "int32", "uint8", "uint16", "uint32"):
        return np.dtype(name)
    from ..numerics import formats

    fmt = formats.get(name)
    return np.dtype(fmt.ml_dtype)


def make_data(rank: int, count: int, dtype, seed: int) -> np.ndarray:
    """Rank ``rank``'s seeded buffer."""
    rng = np.random.default_rng([seed, rank])
    if np.dtype(dtype).kind in "iu":
        return rng.integers(0, 100, count).astype(dtype)
    return rng.standard_normal(count).astype(np.float32).astype(dtype)


def _exact(op: str, name: str, data: list):
    """float64 reference of every rank's result (None where a rank gets nothing)."""
    f = np.stack([d.astype(np.float64) for d in data])
    r = len(data)
    red = {"add": np.sum, "max": np.max, "min": np.min, "mul": np.prod}[op]
    if name == "all_reduce":
        return [red(f, 0)] * r
    if name == "reduce":
        return [red(f, 0)] + [None] * (r - 1)
    if name == "reduce_scatter":
        return list(red(f, 0).reshape(r, -1))
    if name == "all_gather":
        return [f.reshape(-1)] * r
    if name == "all_to_all":
        return [f.reshape(r, r, -1)[:, j].reshape(-1) for j in range(r)]
    return [f[0]] * r


def _call(backend: str, args, data):
    kw = {}
    if args.op in ("all_reduce", "reduce_scatter", "reduce"):
        kw = dict(op=args.reduce_op, algorithm=args.algorithm, rounding=args.rounding, channels=args.channels,
                  seed=args.seed, server_ranks=args.server_ranks)
    if backend == "local":
        from . import local, movement

        fn = getattr(local, args.op, None) or getattr(movement, args.op)
        return fn(data, **kw)
    from . import mpi

    fn = getattr(mpi, args.op)
    kw.update(timeout=args.timeout, abort=False)  # _mpi_failure reports it once and aborts the job
    if args.op in ("all_reduce", "reduce_scatter", "reduce") and args.kill_rank is not None:
        from .executor import get_plan
        from .local import resolve_options

        o = resolve_options(args.algorithm, args.channels, server_ranks=args.server_ranks)
        plan = get_plan(args.op, o["algorithm"], args.ranks, o["channels"], o["dma_inputs"], o["server_ranks"],
                        prune=False)
        kw["fault"] = (args.kill_rank, max(len(plan.by_round) // 2, 0), args.kill_mode)
    return fn(data, **kw)


def _check_args(args) -> None:
    """Refuse, in one line each, the arguments that would fail later or hang (SettingsError; the CLI prints it)."""
    if args.ranks < 1:
        raise SettingsError(f"--ranks must be >= 1, got {args.ranks}")
    if args.count < 0:
        raise SettingsError(f"--count must be >= 0, got {args.count}")
    if args.timeout is not None and not args.timeout > 0:
        raise SettingsError(f"--timeout must be > 0 seconds, got {args.timeout:g}")
    if args.kill_rank is None:
        return
    if args.backend != "mpi":
        raise SettingsError("--kill-rank needs --backend mpi, run under mpiexec -n N (in-process ranks cannot hang)")
    if args.op not in ("all_reduce", "reduce_scatter", "reduce"):
        raise SettingsError(f"--kill-rank applies to all_reduce, reduce_scatter and reduce, not {args.op}")
    if not 0 <= args.kill_rank < args.ranks:
        raise SettingsError(f"--kill-rank {args.kill_rank} is not one of the {args.ranks} ranks (0..{args.ranks - 1})")


def _mpi_failure(exc: RankFailure, nproc: int, me: int, k: int) -> int:
    """Report a RankFailure once for the whole job, then MPI_Abort it (the hung process never exits on its own).

    Every surviving process sees the failure; the lowest-numbered process that does not hold the failed rank prints
    it. The others wait for its abort, and abort the job themselves should it not come."""
    from mpi4py import MPI

    failed = {exc.rank // k} if exc.rank is not None else set()
    reporter = min(set(range(nproc)) - failed, default=0)
    if me == reporter:
        print(f"trn3emu collective: RankFailure: {exc}", file=sys.stderr, flush=True)
        time.sleep(1.0)  # MPI_Abort tears the job down at once: let the launcher forward the line first
    else:
        time.sleep(5.0)
    MPI.COMM_WORLD.Abort(3)
    return 3


def main(args) -> int:
    from .cost import estimate

    _check_args(args)
    dtype = _dtype(args.dtype)
    if args.backend == "mpi":
        from . import mpi

        nproc, me = mpi.size(), mpi.rank_id()
        if args.kill_rank is not None and nproc == 1:
            raise SettingsError("--kill-rank needs other processes to notice the hung rank: run it under "
                                f"mpiexec -n N, e.g. mpiexec -n {args.ranks} trn3emu collective {args.op} "
                                f"--ranks {args.ranks} --backend mpi --kill-rank {args.kill_rank}")
        if args.ranks % nproc:
            raise SettingsError(f"--ranks {args.ranks} is not a multiple of the {nproc} MPI processes")
        k = args.ranks // nproc
        mine = [make_data(r, args.count, dtype, args.seed) for r in range(me * k, (me + 1) * k)]
        try:
            res = _call("mpi", args, mine)
            gathered = mpi.gather(res if isinstance(res, list) else [res], timeout=args.timeout, abort=False)
        except RankFailure as exc:
            return _mpi_failure(exc, nproc, me, k)
        if me != 0:
            return 0
        results = [r for part in gathered for r in part]
    else:
        data_all = [make_data(r, args.count, dtype, args.seed) for r in range(args.ranks)]
        results = _call("local", args, data_all)
    data_all = [make_data(r, args.count, dtype, args.seed) for r in range(args.ranks)]
    h = hashlib.sha256()
    for r in results:
        if r is not None:
            h.update(np.ascontiguousarray(r).tobytes())
    exact = _exact(args.reduce_op, args.op, data_all)
    err = max((float(np.max(np.abs(np.asarray(r, np.float64) - e))) if np.size(e) else 0.0)
              for r, e in zip(results, exact) if r is not None)
    itemsize = np.dtype(dtype).itemsize
    e = estimate(args.op, args.ranks, args.count, itemsize, args.algorithm, channels=args.channels or 1,
                 server_ranks=args.server_ranks)
    print(f"{args.op} ranks={args.ranks} dtype={args.dtype} count={args.count} algorithm={e['algorithm']} "
          f"backend={args.backend}")
    print(f"digest={h.hexdigest()}")
    print(f"max_abs_err_vs_float64={err:.6g}")
    print(f"estimate={e['seconds'] * 1e6:.2f}us ({e['method']}) busbw={e['busbw'] / 1e9:.2f}GB/s")
    return 0
