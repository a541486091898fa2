"""The MPI backend's transport: polled point-to-point exchanges between processes under a watchdog.

Every wait polls its requests until ``timeout`` (setting ``collective_timeout``). A process that times out waits a
short grace period for a notice from an earlier victim, then tells every process "rank K did not respond at round s",
and raises :class:`~emulator.errors.RankFailure` naming K and the round. With ``abort=True`` (default) the message
goes to stderr and ``MPI_Abort`` ends the job with a non-zero exit code. The first call on a communicator sets up the
watchdog's own channel under its own timeout (setting ``collective_setup_timeout``, see
:meth:`Transport._setup_channel`). The collectives themselves are in :mod:`.mpi` (reductions) and
:mod:`._mpi_movement` (data movement).
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

__all__ = ["Transport", "gather", "rank_id", "size"]

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

