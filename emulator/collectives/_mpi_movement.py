"""The MPI backend's data movement: all_gather(_v), all_to_all(_v), broadcast and the permutes, as byte exchanges
under the watchdog of :mod:`._mpi_transport` (re-exported by :mod:`.mpi`)."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ._mpi_transport import _aborting, _setup
from .groups import ReplicaGroup, as_groups

__all__ = ["all_gather", "all_gather_v", "all_to_all", "all_to_all_v", "broadcast", "collective_permute",
           "collective_permute_implicit"]


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
