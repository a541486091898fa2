"""``nki.collectives``: collective calls for SPMD code, mapped onto the collective engine.

A kernel written the NKI way calls ``all_reduce(srcs, dsts, replica_group, op)`` on *its own* tensors, once per
rank. Inside a launch (``kernel[R](...)``) the rank is the program's flat index in the grid and the tensors are the
kernel's ``NkiTensor`` views (HBM or SBUF); :func:`run_spmd` runs a plain function on R virtual ranks (one thread
each) with NumPy arrays, and a kernel one of them launches takes part as that rank (on several cores, LNC=2, core p
meets core p of the other ranks: setting ``lnc_collectives``). Either way every collective call is a rendezvous:
when the last member of the group arrives, the in-process engine (:mod:`emulator.collectives`) computes the results
with the configured algorithm and writes them into each rank's ``dsts`` (in place). A rank that never arrives turns
into :class:`~emulator.errors.RankFailure` naming it after ``collective_timeout`` seconds without progress (a Numba
compilation in the process counts as progress).

>>> import numpy as np
>>> from emulator.nki import collectives as ncc
>>> def kernel(out):
...     r = ncc.rank_id()
...     src = np.full(4, float(r + 1), np.float32)
...     ncc.all_reduce([src], [out[r]], ncc.ReplicaGroup([[0, 1, 2]]), op=np.add)
>>> out = np.zeros((3, 4), np.float32)
>>> ncc.run_spmd(kernel, 3, out)
>>> out[2].tolist()
[6.0, 6.0, 6.0, 6.0]
"""

from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from .. import collectives as _cc
from .._jit import patient_wait
from ..config import get_settings, run_in_context
from ..errors import ArgumentError, RankFailure, ShapeError, UsageError
from ..collectives.groups import ReplicaGroup
from ._launch import _program, spmd_rank

__all__ = ["run_spmd", "rank_id", "ReplicaGroup", "all_reduce", "all_gather", "reduce_scatter", "all_to_all",
           "collective_permute", "collective_permute_implicit"]

_OPS = {"add": "add", "maximum": "max", "minimum": "min", "max": "max", "min": "min", "multiply": "mul"}


def _op_name(op) -> str:
    name = getattr(op, "op_name", None) or getattr(op, "__name__", op)
    if name not in _OPS:
        raise ArgumentError(f"op: {op!r} is not nl.add, nl.maximum or nl.minimum")
    return _OPS[name]


def _current():
    """(rank, world, lane, wait) of the caller: a run_spmd rank (or a kernel one launches), or a program of a
    multi-program launch; None outside both.

    Inside :func:`run_spmd` the rank is the run_spmd thread's and a multi-program (LNC) launch's programs are its
    *lanes*: program p of every rank meets the other ranks' program p (setting ``lnc_collectives``). Outside
    run_spmd the programs of a launch are the ranks (one lane)."""
    prog = _program.get()
    spmd = spmd_rank.get()
    if spmd is not None:
        rank, world = spmd
        if prog is None or prog.world is None or prog.world.size == 1:
            return rank, world, 0, world.wait_plain
        if get_settings().lnc_collectives == "refuse":
            raise UsageError(f"nki.collectives: a collective on a {prog.world.size}-core (LNC) launch inside a "
                             "multi-rank run; setting lnc_collectives='refuse' (set 'per_core' to let program p of "
                             "each rank meet the other ranks' program p)")
        launch = prog.world
        return rank, world, prog.rank, lambda ready, timeout: launch.wait(prog.rank, ready, timeout)
    if prog is None or prog.world is None or prog.world.size == 1:
        return None
    launch = prog.world
    with launch.cond:
        if getattr(launch, "collectives", None) is None:
            # the launch's condition and turns: a program waiting here gives up its turn (setting lnc_schedule)
            launch.collectives = _World(launch.size, get_settings(), cond=launch.cond)
    return prog.rank, launch.collectives, 0, lambda ready, timeout: launch.wait(prog.rank, ready, timeout)


def rank_id(name=None) -> int:
    """The calling rank: the virtual rank inside :func:`run_spmd` (also in a kernel a rank launches), else the
    program index inside a multi-program launch; 0 outside both."""
    cur = _current()
    return 0 if cur is None else cur[0]


class _World:
    """Rendezvous state shared by the ranks of one :func:`run_spmd` (or the programs of one launch)."""

    def __init__(self, ranks: int, settings, cond: threading.Condition | None = None) -> None:
        self.ranks = ranks
        self.settings = settings
        self.cond = cond or threading.Condition()
        self.pending: dict = {}  # (lane, seq, group, name) -> {rank: (srcs, dsts)}
        self.done: dict = {}
        self.seq: dict = {}  # (rank, lane) -> collectives called so far
        self.error: BaseException | None = None

    def wait_plain(self, ready: Callable[[], bool], timeout: float) -> bool:
        return self.cond.wait_for(ready, timeout)

    def call(self, rank: int, group: tuple, name: str, srcs, dsts, compute: Callable, lane: int = 0,
             wait: Callable | None = None) -> None:
        """Rank ``rank``'s part of a collective of ``group`` (on ``lane``: the program index of an LNC launch);
        the last member to arrive computes it. ``wait(ready, timeout)`` waits with ``cond`` held."""
        n = self.seq.get((rank, lane), 0)
        self.seq[(rank, lane)] = n + 1
        key = (lane, n, group, name)
        timeout = self.settings.collective_timeout
        wait = wait or self.wait_plain
        with self.cond:
            slot = self.pending.setdefault(key, {})
            slot[rank] = (srcs, dsts)
            if len(slot) == len(group):
                try:
                    compute([slot[r] for r in group])
                except BaseException as exc:  # every member sees the same error
                    self.error = exc
                self.done[key] = True
                del self.pending[key]
                self.cond.notify_all()
            elif not patient_wait(lambda t: wait(lambda: key in self.done or self.error is not None, t), timeout):
                missing = [r for r in group if r not in slot]
                where = f" (core {lane} of each rank)" if lane else ""
                self.error = RankFailure(f"{name} #{n}{where}: rank {missing[0]} did not arrive within {timeout:g} s "
                                         f"(missing ranks {missing})", rank=missing[0], step=n)
                self.cond.notify_all()
            if self.error is not None:
                raise self.error
            if key not in self.done:  # the wait ended because another program of the caller's launch failed
                raise RankFailure(f"{name} #{n}: rank {rank} stopped: another program of its launch failed",
                                  rank=rank, step=n)


def run_spmd(fn: Callable, ranks: int, *args, **kwargs) -> None:
    """Run ``fn(*args, **kwargs)`` on ``ranks`` virtual ranks (threads); re-raise the first rank's error."""
    if ranks < 1:
        raise ShapeError(f"run_spmd: ranks must be >= 1, got {ranks}")
    world = _World(ranks, get_settings())
    errors: list = [None] * ranks

    def body(r: int) -> None:
        from ..config import settings as _settings

        spmd_rank.set((r, world))
        with _settings(**{f: getattr(world.settings, f) for f in ("collective_algorithm", "collective_timeout")}):
            try:
                fn(*args, **kwargs)
            except BaseException as exc:
                errors[r] = exc
                with world.cond:
                    world.error = world.error or exc
                    world.cond.notify_all()

    # each rank thread runs in a copy of the caller's context, so it sees the caller's `with settings(...)` block
    threads = [threading.Thread(target=run_in_context(body, r), daemon=True) for r in range(ranks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first = next((e for e in errors if e is not None), None)
    if first is not None:
        raise first


def _group_of(replica_group) -> tuple:
    cur = _current()
    if cur is None:
        raise UsageError("nki.collectives: call collectives inside a kernel launched on several programs "
                         "(kernel[R](...)) or inside emu.nki.collectives.run_spmd(...)")
    r = cur[0]
    rg = replica_group if isinstance(replica_group, ReplicaGroup) else ReplicaGroup(replica_group)
    found = rg.group_of(r)
    if found is None:
        raise ShapeError(f"replica_group: rank {r} is in none of {rg.groups}")
    return rg.groups[found[0]]


def _values(src, name: str):
    """A source's values: a kernel tensor is read (with the uninitialised check), an array is used as is."""
    from .tensor import NkiTensor

    return src.read(f"ncc.{name} src") if isinstance(src, NkiTensor) else np.asarray(src)


def _write(dst, value) -> None:
    from .tensor import NkiTensor

    if dst.shape != np.shape(value):
        raise ShapeError(f"dst: shape {tuple(dst.shape)} does not match the result {np.shape(value)}")
    if isinstance(dst, NkiTensor):
        dst.write(np.asarray(value).astype(dst.dtype))
        return
    np.asarray(dst)[...] = value


def _collective(name, srcs, dsts, replica_group, per_tensor):
    if len(srcs) != len(dsts):
        raise ShapeError(f"{name}: {len(srcs)} srcs but {len(dsts)} dsts")
    group = _group_of(replica_group)

    def compute(members):
        for t in range(len(srcs)):
            outs = per_tensor([_values(m[0][t], name) for m in members])
            for (_, d), o in zip(members, outs):
                _write(d[t], o)

    rank, world, lane, wait = _current()
    world.call(rank, group, name, srcs, dsts, compute, lane, wait)


def all_reduce(srcs, dsts, replica_group, op=np.add, **_ignored) -> None:
    """Every member's ``dsts[i]`` receives the reduction of the members' ``srcs[i]`` (``nl.add/maximum/minimum``)."""
    name = _op_name(op)
    _collective("all_reduce", srcs, dsts, replica_group, lambda xs: _cc.all_reduce(xs, op=name, copy=True))


def reduce_scatter(srcs, dsts, replica_group, op=np.add, collective_dim: int = 0, **_ignored) -> None:
    """Member i receives block i (along dim 0) of the reduction."""
    if collective_dim != 0:
        raise ShapeError("reduce_scatter: only collective_dim=0 is supported (as on hardware)")
    name = _op_name(op)
    _collective("reduce_scatter", srcs, dsts, replica_group, lambda xs: _cc.reduce_scatter(xs, op=name))


def all_gather(srcs, dsts, replica_group, collective_dim: int = 0, **_ignored) -> None:
    """Concatenation of the members' tensors along ``collective_dim`` in group order."""
    _collective("all_gather", srcs, dsts, replica_group,
                lambda xs: _cc.all_gather(xs, collective_dim=collective_dim, copy=True))


def all_to_all(srcs, dsts, replica_group, collective_dim: int = 0, **_ignored) -> None:
    """Block j of member i goes to member j, slot i."""
    _collective("all_to_all", srcs, dsts, replica_group,
                lambda xs: _cc.all_to_all(xs, collective_dim=collective_dim))


def collective_permute_implicit(srcs_by_channel, dsts_by_channel, replica_group, channel_ids=(0,),
                                **_ignored) -> None:
    """Ring shift: each member receives its predecessor's tensor, per channel."""
    srcs = [t for ch in srcs_by_channel for t in ch]
    dsts = [t for ch in dsts_by_channel for t in ch]
    _collective("collective_permute_implicit", srcs, dsts, replica_group,
                lambda xs: _cc.collective_permute_implicit(xs))


def collective_permute(srcs, dsts, source_target_pairs, **_ignored) -> None:
    """Explicit pairs over all ranks of the SPMD run; ranks that receive nothing keep their ``dsts``."""
    cur = _current()
    if cur is None:
        raise UsageError("nki.collectives.collective_permute: call it inside a multi-program launch or run_spmd")
    rank, world, lane, wait = cur
    group = tuple(range(world.ranks))

    def compute(members):
        outs = _cc.collective_permute([_values(m[0][0], "collective_permute") for m in members],
                                      source_target_pairs)
        for (_, d), o in zip(members, outs):
            if o is not None:
                _write(d[0], o)

    world.call(rank, group, "collective_permute", srcs, dsts, compute, lane, wait)
