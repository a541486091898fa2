"""MPI backend: the same schedules over mpi4py point-to-point messages, with a watchdog.

Run under ``mpiexec -n P python -m mpi4py your_script.py`` (``python -m mpi4py`` turns an uncaught exception into
``MPI_Abort``, so one failing rank ends the job). Each call takes this process's buffer (or a list of buffers: this
process then hosts that many consecutive virtual ranks, the same count on every process) and returns its result,
bit-identical to the in-process backend: the adds are the emulator's own (never an MPI reduction), done in the
order the schedule fixes; MPI only moves bytes.

Watchdog: every wait polls its requests until ``timeout`` (setting ``collective_timeout``). A process that times
out waits a short grace period for a notice from an earlier victim, then tells every process "rank K did not
respond at round s", and raises :class:`~emulator.errors.RankFailure` naming K and the round. With ``abort=True``
(default) the message goes to stderr and ``MPI_Abort`` ends the job with a non-zero exit code. The first call on a
communicator sets up the watchdog's channel under its own timeout (setting ``collective_setup_timeout``, see
:meth:`Transport._setup_channel`).
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from . import executor
from ._kernels import fold_rows
from ._mpi_movement import (all_gather, all_gather_v, all_to_all, all_to_all_v, broadcast, collective_permute,
                            collective_permute_implicit)
from ._mpi_transport import Transport, _aborting, _setup, gather, rank_id, size
from .local import resolve_options, to_dtype

__all__ = ["all_reduce", "reduce_scatter", "reduce", "all_gather", "all_gather_v", "all_to_all", "all_to_all_v",
           "collective_permute", "collective_permute_implicit", "broadcast", "gather", "rank_id", "size", "Transport"]


def _run_reduction(collective, local, op, algorithm, root, comm, timeout, abort, fault, rc_kw, opt_kw, site):
    tr, arrays, many = _setup(local, comm, timeout, abort, fault, collective)
    with _aborting(tr.comm, abort):
        dtype, shape = arrays[0].dtype, arrays[0].shape
        nranks = tr.P * tr.k
        fmt, is_int = executor.buffer_format(dtype)
        rc = executor.round_ctx(fmt, op, **rc_kw)
        opts = resolve_options(algorithm, **opt_kw)
        if collective == "reduce_scatter" and (not shape or shape[0] % nranks):
            raise ShapeError(f"reduce_scatter: dim 0 of {shape} does not split into {nranks} equal blocks")
        tr.fingerprint(f"{collective} op={op} {dtype}{shape} {sorted(opts.items())} root={root} "
                       f"{rc.rounding} {rc.acc_mode} site={site}")
        plan = executor.get_plan(collective, opts["algorithm"], nranks, opts["channels"], opts["dma_inputs"],
                                 opts["server_ranks"], root, prune=False)
        state = _execute(tr, plan, rc, [a.astype(np.float32).reshape(-1) for a in arrays], site)
    results = []
    for i, vr in enumerate(tr.vranks(tr.p)):
        flat = to_dtype(state[i], dtype, fmt, is_int)
        if collective == "all_reduce":
            results.append(flat.reshape(shape))
        elif collective == "reduce_scatter":
            blk = shape[0] // nranks
            results.append(flat.reshape(shape)[vr * blk:(vr + 1) * blk].copy())
        else:
            results.append(flat.reshape(shape) if vr == root else None)
    return results if many else results[0]


def _execute(tr: Transport, plan, rc, mine: list, site: int) -> list:
    """Run every round of ``plan``; ``mine[i]`` is virtual rank ``p*k + i``'s float32 buffer (updated)."""
    sch = plan.schedule
    bounds = sch.layout.bounds(mine[0].size)
    sites = executor.step_sites(plan, site)
    lo = tr.p * tr.k
    local = lambda vr: lo <= vr < lo + tr.k  # noqa: E731
    for rnd, steps in enumerate(plan.by_round):
        tr.maybe_fault(rnd)
        label = sch.labels[rnd] if rnd < len(sch.labels) else ""
        out, need = {}, {}
        for q in steps:  # a global order every process agrees on: messages pack in plan order
            dst = int(plan.st_dst[q])
            s, e = bounds[plan.st_chunk[q]]
            for src in plan.st_in[plan.st_ptr[q]:plan.st_ptr[q + 1]]:
                src = int(src)
                if src == dst or local(src) == local(dst):
                    continue
                if local(src):
                    out.setdefault(dst // tr.k, []).append(mine[src - lo][s:e])
                else:
                    need.setdefault(src // tr.k, []).append((q, src, s, e))
        payload = {pq: np.concatenate(parts).view(np.uint8) for pq, parts in out.items()}
        sizes = {pq: 4 * sum(e - s for _, _, s, e in items) for pq, items in need.items()}
        got = tr.exchange(payload, sizes, rnd, label)
        remote = {}
        for pq, items in need.items():
            vals = got[pq].view(np.float32)
            off = 0
            for q, src, s, e in items:
                remote[(q, src)] = vals[off:off + e - s]
                off += e - s
        updates = []
        for q in steps:
            dst = int(plan.st_dst[q])
            if not local(dst):
                continue
            s, e = bounds[plan.st_chunk[q]]
            rows = [mine[int(i) - lo][s:e] if local(int(i)) else remote[(q, int(i))]
                    for i in plan.st_in[plan.st_ptr[q]:plan.st_ptr[q + 1]]]
            updates.append((dst - lo, s, e, fold_rows(rows, int(plan.st_kind[q]), int(s), rc, int(sites[q]))))
        for i, s, e, val in updates:
            mine[i][s:e] = val
    return mine


def all_reduce(local, op: str = "add", algorithm: str | None = None, *, comm=None, timeout: float | None = None,
               abort: bool = True, channels: int | None = None, rounding: str | None = None,
               saturate: bool | None = None, seed: int | None = None, accumulation: str | None = None,
               dma_inputs: int | None = None, server_ranks: int | None = None, site: int = 0, fault=None):
    """All-reduce this process's buffer(s) with every other process; same bits as the in-process backend.

    Arguments as :func:`emulator.collectives.all_reduce`, plus ``comm`` (default COMM_WORLD), ``timeout``
    (seconds, default setting ``collective_timeout``), ``abort`` (call MPI_Abort after a RankFailure) and
    ``fault=(rank, round, "hang"|"exit")`` to inject a failure (for testing the watchdog).

    Example (under ``mpiexec -n 4 python -m mpi4py script.py``)::

        out = emu.collectives.mpi.all_reduce(np.full(8, emu.collectives.rank_id(), np.float32))
    """
    return _run_reduction("all_reduce", local, op, algorithm, 0, comm, timeout, abort, fault,
                          dict(rounding=rounding, saturate=saturate, seed=seed, accumulation=accumulation),
                          dict(channels=channels, dma_inputs=dma_inputs, server_ranks=server_ranks), site)


def reduce_scatter(local, op: str = "add", algorithm: str | None = None, *, comm=None, timeout=None, abort=True,
                   channels=None, rounding=None, saturate=None, seed=None, accumulation=None, dma_inputs=None,
                   server_ranks=None, site: int = 0, fault=None):
    """Reduce-scatter over the processes' ranks: rank r gets block r of dim 0 (see :func:`all_reduce`)."""
    return _run_reduction("reduce_scatter", local, op, algorithm, 0, comm, timeout, abort, fault,
                          dict(rounding=rounding, saturate=saturate, seed=seed, accumulation=accumulation),
                          dict(channels=channels, dma_inputs=dma_inputs, server_ranks=server_ranks), site)


def reduce(local, op: str = "add", root: int = 0, algorithm: str | None = None, *, comm=None, timeout=None,
           abort=True, channels=None, rounding=None, saturate=None, seed=None, accumulation=None, dma_inputs=None,
           server_ranks=None, site: int = 0, fault=None):
    """Reduce to virtual rank ``root``: the result there, ``None`` on the other ranks (see :func:`all_reduce`)."""
    return _run_reduction("reduce", local, op, algorithm, int(root), comm, timeout, abort, fault,
                          dict(rounding=rounding, saturate=saturate, seed=seed, accumulation=accumulation),
                          dict(channels=channels, dma_inputs=dma_inputs, server_ranks=server_ranks), site)

