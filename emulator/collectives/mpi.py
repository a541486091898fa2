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

import contextlib
import hashlib
import os
import sys
import time

import numpy as np

from ..config import get_settings
from ..errors import RankFailure, ShapeError
from . import executor
from ._kernels import fold_rows
from .groups import ReplicaGroup, as_groups
from .local import resolve_options, to_dtype

__all__ = ["all_reduce", "reduce_scatter", "reduce", "all_gather", "all_gather_v", "all_to_all", "all_to_all_v",
           "collective_permute", "collective_permute_implicit", "broadcast", "gather", "rank_id", "size", "Transport"]

_NOTICE_TAG = 0x7E57
_PROBE_TAG = 0x7E58
_REPLY_TAG = 0x7E59
_DATA_TAG = 11
_HELLO_TAG = 0x7E5A
_ABORT_GRACE = 1.0  # seconds between the stderr report of a RankFailure and MPI_Abort


def _mpi():
    try:
        # The mpich wheel's UCX layer prints pool-accounting warnings at finalize; keep UCX to errors unless asked.
        os.environ.setdefault("UCX_LOG_LEVEL", "error")
        from mpi4py import MPI
    except ImportError as exc:  # pragma: no cover - the mpi extra is installed in CI
        raise ImportError("emulator.collectives.mpi needs mpi4py and an MPI library: pip install "
                          "'trn3-emulator[mpi]' (mpi4py + the mpich wheel)") from exc
    return MPI


def rank_id(comm=None) -> int:
    """This process's rank in ``comm`` (default COMM_WORLD)."""
    return (comm or _mpi().COMM_WORLD).Get_rank()


def size(comm=None) -> int:
    """Number of processes in ``comm`` (default COMM_WORLD)."""
    return (comm or _mpi().COMM_WORLD).Get_size()


class Transport:
    """Polled point-to-point exchanges between processes, each bounded by the watchdog's timeout."""

    _ctl_cache: dict = {}

    def __init__(self, comm, per_process: int, timeout: float, fault=None) -> None:
        mpi = _mpi()
        self.comm = comm
        self.P, self.p = comm.Get_size(), comm.Get_rank()
        self.k = per_process
        self.timeout = timeout
        self.fault = fault
        key = id(comm)
        if key not in Transport._ctl_cache:  # a private communicator for watchdog traffic
            ctl = self._setup_channel()
            Transport._ctl_cache[key] = [ctl, ctl.irecv(source=mpi.ANY_SOURCE, tag=_NOTICE_TAG),
                                         ctl.irecv(source=mpi.ANY_SOURCE, tag=_PROBE_TAG)]
        self._ctl = Transport._ctl_cache[key]
        self.ctl, self.notice = self._ctl[0], self._ctl[1]
        self.waiting_on = -1

    def _setup_channel(self):
        """The first call on a communicator duplicates it for watchdog traffic. Duplication is collective, so a
        process that never arrives would hang the others inside it: every process first sends a hello to every
        other on ``comm`` and waits for theirs, up to the ``collective_setup_timeout`` setting (processes start at
        different times; the per-step ``timeout`` is usually much shorter), naming the processes that did not
        arrive; then the duplication (now known to have every process) is polled under the same deadline."""
        limit = get_settings().collective_setup_timeout
        deadline = time.monotonic() + limit
        hello = np.zeros(1, np.uint8)
        sends = [self.comm.Isend(hello, dest=q, tag=_HELLO_TAG) for q in range(self.P) if q != self.p]
        got = {q: np.empty(1, np.uint8) for q in range(self.P) if q != self.p}
        recvs = {q: self.comm.Irecv(buf, source=q, tag=_HELLO_TAG) for q, buf in got.items()}
        pause = 1e-5
        while recvs:
            recvs = {q: r for q, r in recvs.items() if not r.Test()}
            if recvs and time.monotonic() > deadline:
                missing = sorted(recvs)
                ranks = [q * self.k for q in missing]
                who = f"rank {ranks[0]}" if len(ranks) == 1 else f"ranks {ranks}"
                raise RankFailure(f"{who} did not respond at setup (the first collective on this communicator) "
                                  f"within {limit:g} s (setting collective_setup_timeout; seen by process {self.p})",
                                  rank=ranks[0], step=-3)
            time.sleep(pause)
            pause = min(pause * 2, 2e-3)
        ctl, req = self.comm.Idup()
        while not req.Test():
            if time.monotonic() > deadline:
                raise RankFailure(f"the watchdog channel of process {self.p} was not set up within {limit:g} s "
                                  "(a process left after the setup hello)", rank=None, step=-3)
            time.sleep(1e-4)
        for r in sends:
            r.Wait()  # every hello was received (each process got all of them), so these are complete
        return ctl

    def vranks(self, proc: int) -> range:
        return range(proc * self.k, (proc + 1) * self.k)

    def _fail(self, message: str, rank: int | None, step: int | None) -> RankFailure:
        reqs = [self.ctl.isend(message, dest=q, tag=_NOTICE_TAG) for q in range(self.P) if q != self.p]
        until = time.monotonic() + 0.5  # let the notices leave before an MPI_Abort tears the job down
        while reqs and time.monotonic() < until:
            reqs = [r for r in reqs if not r.Test()]
            time.sleep(0.005)
        return RankFailure(message, rank=rank, step=step)

    def _serve_probes(self) -> None:
        """Answer "whom are you waiting for?" (a hung process never answers: that is how it is found)."""
        mpi = _mpi()
        flag, asker = self._ctl[2].test()
        while flag:
            self.ctl.isend(self.waiting_on, dest=int(asker), tag=_REPLY_TAG)
            self._ctl[2] = self.ctl.irecv(source=mpi.ANY_SOURCE, tag=_PROBE_TAG)
            flag, asker = self._ctl[2].test()

    def _culprit(self, suspect: int) -> int:
        """Follow the chain of waiting processes from ``suspect`` to the first one that does not answer."""
        seen = {self.p}
        while suspect not in seen:
            seen.add(suspect)
            self.ctl.isend(self.p, dest=suspect, tag=_PROBE_TAG)
            reply = self.ctl.irecv(source=suspect, tag=_REPLY_TAG)
            until = time.monotonic() + min(1.0, 0.1 + 0.1 * self.timeout)
            answered = False
            while time.monotonic() < until:
                self._serve_probes()
                self._check_notice()
                flag, nxt = reply.test()
                if flag:
                    answered = True
                    break
                time.sleep(0.002)
            if not answered:
                reply.Cancel()
                return suspect
            if nxt < 0:  # it is not waiting: it left the collective (or never entered it)
                return suspect
            suspect = int(nxt)
        return suspect

    def _check_notice(self) -> None:
        flag, msg = self.notice.test()
        if flag:
            text = msg if isinstance(msg, str) else str(msg)
            rank = int(text.split("rank ", 1)[1].split()[0]) if "rank " in text else None
            raise RankFailure(text, rank=rank)

    def maybe_fault(self, step: int) -> None:
        """Fault injection for tests: the chosen rank hangs (stops responding) or exits at ``step``."""
        if self.fault is None:
            return
        rank, at, mode = self.fault
        if step == at and self.p * self.k <= rank < (self.p + 1) * self.k:
            if mode == "exit":
                sys.stderr.write(f"trn3emu: fault injection: rank {rank} exits at round {step}\n")
                sys.stderr.flush()
                os._exit(17)
            sys.stderr.write(f"trn3emu: fault injection: rank {rank} stops responding at round {step}\n")
            sys.stderr.flush()
            while True:
                time.sleep(3600)

    def exchange(self, outgoing: dict, incoming: dict, step: int, what: str) -> dict:
        """Send ``outgoing[proc]`` (uint8 arrays) and receive ``incoming[proc]`` bytes; returns {proc: uint8}."""
        reqs, recv = [], {}
        for q, nbytes in sorted(incoming.items()):
            recv[q] = np.empty(nbytes, np.uint8)
            reqs.append((q, "recv", self.comm.Irecv(recv[q], source=q, tag=_DATA_TAG)))
        for q, data in sorted(outgoing.items()):
            reqs.append((q, "send", self.comm.Isend(np.ascontiguousarray(data), dest=q, tag=_DATA_TAG)))
        self.wait(reqs, step, what)
        return recv

    def wait(self, reqs: list, step: int, what: str) -> None:
        deadline = time.monotonic() + self.timeout
        pending = list(reqs)
        pause = 1e-5
        while pending:
            pending = [r for r in pending if not r[2].Test()]
            if not pending:
                self.waiting_on = -1
                return
            self.waiting_on = pending[0][0]
            self._serve_probes()
            self._check_notice()
            if time.monotonic() > deadline:
                q = self._culprit(pending[0][0])
                ranks = list(self.vranks(q))
                who = f"rank {ranks[0]}" if len(ranks) == 1 else f"rank {ranks[0]} (process {q}, ranks {ranks})"
                raise self._fail(f"{who} did not respond at round {step} ({what}) within {self.timeout:g} s "
                                 f"(seen by process {self.p})", ranks[0], step)
            time.sleep(pause)
            pause = min(pause * 2, 2e-3)

    def fingerprint(self, text: str) -> None:
        """Every process checks its left neighbour ran the same call (op, dtype, shape, algorithm, options)."""
        if self.P == 1:
            return
        mine = hashlib.sha256(text.encode()).digest()
        got = self.exchange({(self.p + 1) % self.P: np.frombuffer(mine, np.uint8)}, {(self.p - 1) % self.P: 32},
                            -1, "fingerprint")
        left = (self.p - 1) % self.P
        if got[left].tobytes() != mine:
            raise self._fail(f"rank {left * self.k} called a different collective than rank {self.p * self.k} "
                             f"(this one: {text})", left * self.k, -1)


@contextlib.contextmanager
def _aborting(comm, abort: bool):
    """On RankFailure inside the block: report it on stderr and, when ``abort``, ``MPI_Abort`` the whole job (so the
    launcher exits non-zero instead of the other processes waiting forever); the error is re-raised either way."""
    try:
        yield
    except RankFailure as exc:
        if abort:
            sys.stderr.write(f"trn3emu: RankFailure: {exc}\n")
            sys.stderr.flush()
            # MPI_Abort makes the launcher kill every process at once, and it may drop output its proxies have not
            # forwarded yet: give the report time to reach the launcher's stderr first.
            time.sleep(_ABORT_GRACE)
            comm.Abort(3)
        raise


def gather(obj, root: int = 0, *, comm=None, timeout: float | None = None, abort: bool = True):
    """``comm.gather`` (pickled objects) under the watchdog: a list at ``root``, None elsewhere."""
    import pickle

    mpi = _mpi()
    comm = comm or mpi.COMM_WORLD
    blob = np.frombuffer(pickle.dumps(obj), np.uint8)
    with _aborting(comm, abort):
        tr = Transport(comm, 1, get_settings().collective_timeout if timeout is None else float(timeout))
        if tr.p == root:
            sizes = {}
            for q in range(tr.P):
                if q != root:
                    got = tr.exchange({}, {q: 8}, -2, "gather sizes")
                    sizes[q] = int(got[q].view(np.int64)[0])
            got = tr.exchange({}, sizes, -2, "gather") if sizes else {}
            return [obj if q == root else pickle.loads(got[q].tobytes()) for q in range(tr.P)]
        tr.exchange({root: np.array([blob.size], np.int64).view(np.uint8)}, {}, -2, "gather sizes")
        tr.exchange({root: blob}, {}, -2, "gather")
        return None


def _local_list(local) -> tuple[list, bool]:
    if isinstance(local, (list, tuple)):
        return [np.asarray(a) for a in local], True
    return [np.asarray(local)], False


def _setup(local, comm, timeout, abort, fault, who, same_shape=True):
    mpi = _mpi()
    comm = comm or mpi.COMM_WORLD
    arrays, many = _local_list(local)
    for a in arrays[1:]:
        if (same_shape and a.shape != arrays[0].shape) or a.dtype != arrays[0].dtype:
            raise ShapeError(f"{who}: this process's virtual ranks pass {arrays[0].dtype}{arrays[0].shape} and "
                             f"{a.dtype}{a.shape}; every rank must pass the same "
                             f"{'shape and dtype' if same_shape else 'dtype'}")
    s = get_settings()
    with _aborting(comm, abort):  # the first call on a communicator sets up the watchdog channel: it can fail too
        tr = Transport(comm, len(arrays), s.collective_timeout if timeout is None else float(timeout), fault)
    return tr, arrays, many


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


def _movement(local, comm, timeout, abort, who, build_out, finish, extra="", same_shape=True):
    tr, arrays, many = _setup(local, comm, timeout, abort, None, who, same_shape)
    with _aborting(tr.comm, abort):
        shape = arrays[0].shape if same_shape else "(any shape)"
        tr.fingerprint(f"{who} {arrays[0].dtype}{shape} {extra}".rstrip())
        out, sizes = build_out(tr, arrays)
        got = tr.exchange({q: np.concatenate(v) for q, v in out.items()}, sizes, 0, who)
    res = finish(tr, arrays, got)
    return res if many else res[0]


def _bytes(a) -> np.ndarray:
    return np.ascontiguousarray(a).reshape(-1).view(np.uint8)


def all_gather(local, *, comm=None, timeout=None, abort=True):
    """Concatenate every rank's buffer along dim 0 (rank order); every rank gets the result."""
    def build_out(tr, arrays):
        blob = np.concatenate([_bytes(a) for a in arrays])
        return ({q: [blob] for q in range(tr.P) if q != tr.p}, {q: blob.size for q in range(tr.P) if q != tr.p})

    def finish(tr, arrays, got):
        blobs = [np.concatenate([_bytes(a) for a in arrays]) if q == tr.p else got[q] for q in range(tr.P)]
        a0 = arrays[0]
        res = np.concatenate(blobs).view(a0.dtype).reshape((-1,) + a0.shape[1:])
        return [res.copy() for _ in arrays]

    return _movement(local, comm, timeout, abort, "all_gather", build_out, finish)


def all_to_all(local, *, comm=None, timeout=None, abort=True):
    """Block j (dim 0) of rank i goes to rank j, slot i."""
    def blocks(tr, arrays):
        n = tr.P * tr.k
        if arrays[0].shape[0] % n:
            raise ShapeError(f"all_to_all: dim 0 of {arrays[0].shape} does not split into {n} equal blocks")
        return [np.split(a, n) for a in arrays]

    def build_out(tr, arrays):
        bl = blocks(tr, arrays)
        out, sizes = {}, {}
        for q in range(tr.P):
            if q != tr.p:
                out[q] = [_bytes(bl[i][j]) for i in range(tr.k) for j in tr.vranks(q)]
                sizes[q] = sum(x.size for x in out[q])
        return out, sizes

    def finish(tr, arrays, got):
        bl = blocks(tr, arrays)
        nb = bl[0][0].nbytes
        res = []
        for i, vr in enumerate(tr.vranks(tr.p)):
            parts = []
            for q in range(tr.P):
                for si in range(tr.k):
                    if q == tr.p:
                        parts.append(_bytes(bl[si][vr]))
                    else:  # process q packed, for its ranks si, our ranks in order
                        off = (si * tr.k + i) * nb
                        parts.append(got[q][off:off + nb])
            res.append(np.concatenate(parts).view(arrays[0].dtype).reshape(arrays[0].shape))
        return res

    return _movement(local, comm, timeout, abort, "all_to_all", build_out, finish)


def broadcast(local, root: int = 0, *, comm=None, timeout=None, abort=True):
    """Every rank receives virtual rank ``root``'s buffer (all ranks pass a buffer of the same shape and dtype)."""
    def build_out(tr, arrays):
        src = root // tr.k
        if tr.p == src:
            return {q: [_bytes(arrays[root - tr.p * tr.k])] for q in range(tr.P) if q != tr.p}, {}
        return {}, {src: arrays[0].nbytes}

    def finish(tr, arrays, got):
        src = root // tr.k
        data = arrays[root - tr.p * tr.k] if tr.p == src else got[src].view(arrays[0].dtype).reshape(arrays[0].shape)
        return [np.array(data) for _ in arrays]

    return _movement(local, comm, timeout, abort, "broadcast", build_out, finish)


# --- variable-size movement and permutes: every process derives the same routing table, so sender packing and
# receiver unpacking agree without extra messages.

def _route_out(tr, blobs, segs):
    """Outgoing parts and incoming byte counts for ``segs[dst] = [(src, start, end), ...]`` (byte ranges)."""
    lo, out, sizes = tr.p * tr.k, {}, {}
    for dst in sorted(segs):
        pd = dst // tr.k
        for src, s, e in segs[dst]:
            ps = src // tr.k
            if e <= s or ps == pd:
                continue
            if ps == tr.p:
                out.setdefault(pd, []).append(blobs[src - lo][s:e])
            elif pd == tr.p:
                sizes[ps] = sizes.get(ps, 0) + e - s
    return out, sizes


def _route_in(tr, blobs, segs, got) -> list:
    """This process's results: each local rank's segments in order (None for a rank with no entry in ``segs``)."""
    lo, offs, res = tr.p * tr.k, dict.fromkeys(got, 0), []
    for dst in tr.vranks(tr.p):
        if dst not in segs:
            res.append(None)
            continue
        parts = []
        for src, s, e in segs[dst]:
            ps = src // tr.k
            if e <= s:
                continue
            if ps == tr.p:
                parts.append(blobs[src - lo][s:e])
            else:  # the sender packed our ranks' segments in this same (dst, segment) order
                parts.append(got[ps][offs[ps]:offs[ps] + e - s])
                offs[ps] += e - s
        res.append(np.concatenate(parts) if parts else np.empty(0, np.uint8))
    return res


def _groups_text(replica_group) -> str:
    """Replica groups, normalised, for the fingerprint (checked against the rank count later)."""
    if replica_group is None:
        return "all"
    rg = replica_group if isinstance(replica_group, ReplicaGroup) else ReplicaGroup(replica_group)
    return str(rg.groups)


def _all_sizes(tr, arrays) -> list:
    """Element count of every virtual rank's buffer (one small exchange under the watchdog)."""
    mine = np.array([a.size for a in arrays], np.int64)
    others = [q for q in range(tr.P) if q != tr.p]
    got = tr.exchange({q: mine.view(np.uint8) for q in others}, {q: 8 * tr.k for q in others}, 0, "sizes")
    return [int(v) for q in range(tr.P) for v in (mine if q == tr.p else got[q].view(np.int64))]


def _routed(local, comm, timeout, abort, who, make_segs, shape_of, extra, same_shape=True):
    """Run one routed movement: ``make_segs(tr, arrays) -> segs``; ``shape_of(arrays)`` shapes each result."""
    state = {}

    def build_out(tr, arrays):
        state["blobs"] = [_bytes(a) for a in arrays]
        state["segs"] = make_segs(tr, arrays)
        out, sizes = _route_out(tr, state["blobs"], state["segs"])
        return out, sizes

    def finish(tr, arrays, got):
        res = _route_in(tr, state["blobs"], state["segs"], got)
        return [None if r is None else r.view(arrays[0].dtype).reshape(shape_of(arrays)) for r in res]

    return _movement(local, comm, timeout, abort, who, build_out, finish, extra, same_shape)


def collective_permute(local, source_target_pairs, *, comm=None, timeout=None, abort=True):
    """Point-to-point shuffle: for each ``(src, dst)`` pair, virtual rank ``dst`` receives rank ``src``'s buffer.

    Same semantics as :func:`emulator.collectives.collective_permute`: every process passes the same pairs, every
    rank the same shape and dtype; a rank that is no pair's target gets ``None``. Other arguments as
    :func:`all_gather` (``comm``, ``timeout``, ``abort``).

    Example (under ``mpiexec -n 4 python -m mpi4py script.py``)::

        out = emu.collectives.mpi.collective_permute(x, [(0, 1), (1, 2), (2, 3), (3, 0)])
    """
    pairs = []
    for pair in source_target_pairs:
        try:
            pairs.append(tuple(int(v) for v in pair))
            if len(pairs[-1]) != 2:
                raise ValueError
        except (TypeError, ValueError):
            raise ShapeError(f"collective_permute: each pair must be (source, target), got {pair!r}") from None

    def make_segs(tr, arrays):
        n, segs = tr.P * tr.k, {}
        for src, dst in pairs:
            for name, v in (("source", src), ("target", dst)):
                if not 0 <= v < n:
                    raise ShapeError(f"collective_permute: {name} rank {v} is not one of the {n} ranks")
            if dst in segs:
                raise ShapeError(f"collective_permute: rank {dst} is the target of two pairs")
            segs[dst] = [(src, 0, arrays[0].nbytes)]
        return segs

    return _routed(local, comm, timeout, abort, "collective_permute", make_segs, lambda a: a[0].shape,
                   f"pairs={pairs}")


def collective_permute_implicit(local, *, shift: int = 1, replica_group=None, comm=None, timeout=None, abort=True):
    """Ring shift within each group: group rank ``i`` receives group rank ``i - shift``'s buffer.

    Same semantics as :func:`emulator.collectives.collective_permute_implicit` (ranks outside every replica
    group get ``None``); ``comm``, ``timeout``, ``abort`` as :func:`all_gather`.

    Example (under ``mpiexec -n 4 python -m mpi4py script.py``)::

        left = emu.collectives.mpi.collective_permute_implicit(x, shift=1)
    """
    shift = int(shift)

    def make_segs(tr, arrays):
        segs = {}
        for g in as_groups(replica_group, tr.P * tr.k).groups:
            for i, r in enumerate(g):
                segs[r] = [(g[(i - shift) % len(g)], 0, arrays[0].nbytes)]
        return segs

    return _routed(local, comm, timeout, abort, "collective_permute_implicit", make_segs, lambda a: a[0].shape,
                   f"shift={shift} groups={_groups_text(replica_group)}")


def all_gather_v(local, *, replica_group=None, copy: bool = True, comm=None, timeout=None, abort=True):
    """Every rank contributes a buffer of its own length; every rank of its group gets the flat concatenation.

    Same semantics as :func:`emulator.collectives.all_gather_v` (buffers are flattened, group-rank order; ranks
    may pass different shapes, all the same dtype). Each result is an independent writable array, so ``copy`` is
    accepted for signature parity and has no effect. One extra small exchange shares the buffer lengths.

    Example (under ``mpiexec -n 4 python -m mpi4py script.py``)::

        out = emu.collectives.mpi.all_gather_v(np.arange(emu.collectives.rank_id() + 1, dtype=np.float32))
    """
    def make_segs(tr, arrays):
        counts = _all_sizes(tr, arrays)
        isz = arrays[0].dtype.itemsize
        segs = {}
        for g in as_groups(replica_group, tr.P * tr.k).groups:
            for r in g:
                segs[r] = [(s, 0, counts[s] * isz) for s in g]
        return segs

    return _routed(local, comm, timeout, abort, "all_gather_v", make_segs, lambda a: (-1,),
                   f"groups={_groups_text(replica_group)}", same_shape=False)


def all_to_all_v(local, send_counts, send_displs=None, *, replica_group=None, comm=None, timeout=None, abort=True):
    """Variable all-to-all on flat buffers: group rank ``i`` sends ``send_counts[i][j]`` elements to group rank ``j``.

    Same semantics as :func:`emulator.collectives.all_to_all_v`: ``send_displs`` (default: running sums of the
    counts) says where each segment starts in the sender's flattened buffer; a rank receives its segments packed
    in sender order. Every process passes the same counts and displacements; buffers may differ in length. The
    buffer lengths are exchanged first so every process checks every rank's segments and raises the same error.

    Example (under ``mpiexec -n 2 python -m mpi4py script.py``)::

        out = emu.collectives.mpi.all_to_all_v(np.arange(3, dtype=np.float32), [[1, 2], [2, 1]])
    """
    counts = np.asarray(send_counts, np.int64)
    displs = None if send_displs is None else np.asarray(send_displs, np.int64)

    def make_segs(tr, arrays):
        sizes = _all_sizes(tr, arrays)
        isz, segs = arrays[0].dtype.itemsize, {}
        for g in as_groups(replica_group, tr.P * tr.k).groups:
            n = len(g)
            if counts.shape != (n, n) or (counts < 0).any():
                raise ShapeError(f"all_to_all_v: send_counts must be a {n}x{n} array of non-negative counts, got "
                                 f"shape {counts.shape}")
            dsp = (np.concatenate([np.zeros((n, 1), np.int64), np.cumsum(counts, 1)[:, :-1]], 1)
                   if displs is None else displs)
            if dsp.shape != (n, n):
                raise ShapeError(f"all_to_all_v: send_displs must be {n}x{n}, got shape {dsp.shape}")
            for i, r in enumerate(g):
                end = dsp[i] + counts[i]
                bad = (dsp[i] < 0) | (end > sizes[r])
                if bad.any():
                    j = int(np.argmax(bad))
                    raise ShapeError(f"all_to_all_v: rank {r} sends [{dsp[i, j]}, {end[j]}) to rank {g[j]}, outside "
                                     f"its {sizes[r]}-element buffer")
            for j, r in enumerate(g):
                segs[r] = [(src, int(dsp[i, j]) * isz, int(dsp[i, j] + counts[i, j]) * isz) for i, src in enumerate(g)]
        return segs

    extra = (f"counts={counts.tolist()} displs={None if displs is None else displs.tolist()} "
             f"groups={_groups_text(replica_group)}")
    return _routed(local, comm, timeout, abort, "all_to_all_v", make_segs, lambda a: (-1,), extra,
                   same_shape=False)
