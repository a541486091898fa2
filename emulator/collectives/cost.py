"""Alpha-beta cost of a collective on the Trainium3 topology: exact replay of a schedule, or closed forms at scale.

Replay (:func:`replay`): every round of the schedule costs the slowest (chip, tier) pair,
``alpha[tier] + max(bytes out, bytes in of that chip on that tier) / bandwidth[tier]`` (link contention: messages
of one chip on one tier share its links), plus the DMA reduce work of the busiest chip,
``sum over its reduce steps of (inputs + 1) * bytes / dma_compute``. Rounds run one after another.

Closed forms (:func:`analytic`) apply the same rule to the regular round structure of each algorithm without
enumerating ranks, so a 1M-chip estimate takes microseconds; for ring and recursive doubling on power-of-two unit
sizes they equal the replay (tested). :func:`estimate` replays up to ``replay_limit`` ranks and uses the closed
forms above (:func:`emulator.collectives.describe.explain` prints it). Bus bandwidth follows nccom-test: all-reduce ``2 (R-1)/R``, all-gather/reduce-scatter/all-to-all
``(R-1)/R``, permute/broadcast 1.
"""

from __future__ import annotations

import math

import numpy as np

from .algorithms import build
from .topology import TIER_NAMES, Topology

__all__ = ["replay", "analytic", "estimate", "COLLECTIVES"]

COLLECTIVES = ("all_reduce", "reduce_scatter", "reduce", "all_gather", "all_to_all", "broadcast",
               "collective_permute")
_BUS = {"all_reduce": lambda r: 2 * (r - 1) / r, "reduce_scatter": lambda r: (r - 1) / r,
        "all_gather": lambda r: (r - 1) / r, "all_to_all": lambda r: (r - 1) / r}


_ROUND_CACHE: dict = {}


def _round_arrays(sch):
    key = (sch.collective, sch.algorithm, sch.ranks, sch.layout, len(sch.rounds), sch.steps, id(sch))
    if key in _ROUND_CACHE:
        return _ROUND_CACHE[key]
    if len(_ROUND_CACHE) > 32:
        _ROUND_CACHE.clear()
    out = _ROUND_CACHE[key] = []
    for rnd in sch.rounds:
        src, dst, chunk, red = [], [], [], []
        for st in rnd:
            for i in st.inputs:
                if i != st.dst:
                    src.append(i)
                    dst.append(st.dst)
                    chunk.append(st.chunk)
        rs = [(st.dst, st.chunk, len(st.inputs)) for st in rnd if st.kind == "reduce"]
        out.append((np.array(src, np.int64), np.array(dst, np.int64), np.array(chunk, np.int64),
                    np.array(rs, np.int64).reshape(-1, 3)))
    return out


def replay(sch, count: int, itemsize: int, topo: Topology) -> dict:
    """Cost of schedule ``sch`` on a buffer of ``count`` elements of ``itemsize`` bytes, round by round."""
    nbytes = (sch.layout.bounds(count) @ np.array([-1, 1])) * itemsize
    chips = -(-sch.ranks // topo.ranks_per_chip)
    total, per_round, by_tier = 0.0, [], np.zeros(5)
    for src, dst, chunk, red in _round_arrays(sch):
        t_round, tier_max = 0.0, -1
        if src.size:
            b = nbytes[chunk]
            tier = topo.tier(src, dst)
            load = np.zeros((2, chips, 5))
            np.add.at(load[0], (src // topo.ranks_per_chip, tier), b)
            np.add.at(load[1], (dst // topo.ranks_per_chip, tier), b)
            load = load.max(axis=0)
            used = load > 0
            times = np.where(used, np.asarray(topo.latency) + load / np.asarray(topo.bandwidth), 0.0)
            t_round = float(times.max())
            tier_max = int(np.nonzero(used.any(axis=0))[0].max())
            by_tier[tier_max] += 1
        if red.size:
            work = np.zeros(chips)
            np.add.at(work, red[:, 0] // topo.ranks_per_chip, (red[:, 2] + 1) * nbytes[red[:, 1]])
            t_round += float(work.max()) / topo.dma_compute
        total += t_round
        per_round.append((t_round, tier_max))
    return {"seconds": total, "rounds": len(per_round), "per_round": per_round, "by_tier": by_tier,
            "method": "replay"}


def _dist_tier(d: int, r: int, topo: Topology) -> int:
    """Highest tier used by the pairs (x, x ^ d) when units are aligned blocks of ranks."""
    for t, g in enumerate(topo.unit_ranks):
        if g % (2 * d) == 0 or g >= r and (r % (2 * d) == 0 or g >= 2 * r):
            return t
    return 4


def _neighbour_round(r: int, msg: float, topo: Topology, fan: int = 1) -> float:
    """One round in which every rank sends ``msg`` bytes to the next rank (``fan`` such messages per rank)."""
    rpc = min(topo.ranks_per_chip, r)
    best = 0.0
    if rpc > 1:  # on-chip hops; when the whole ring fits on one chip its wrap-around hop is on-chip too
        hops = r if r <= topo.ranks_per_chip else rpc - 1
        best = topo.latency[0] + hops * fan * msg / topo.bandwidth[0]
    for t in range(1, 5):
        if r > topo.unit_ranks[t - 1]:
            best = max(best, topo.latency[t] + fan * msg / topo.bandwidth[t])
    return best


def _ring(r: int, nbytes: float, topo: Topology, channels: int, reduce_rounds: int, gather_rounds: int) -> float:
    m = math.ceil(nbytes / max(channels * r, 1))
    rpc = min(topo.ranks_per_chip, r)
    rnd = _neighbour_round(r, m, topo, channels)
    compute = rpc * channels * 3 * m / topo.dma_compute
    return reduce_rounds * (rnd + compute) + gather_rounds * rnd


def _exchange(d: int, r: int, msg: float, topo: Topology, reduce: bool) -> float:
    t = _dist_tier(d, r, topo)
    rpc = min(topo.ranks_per_chip, r)
    time = topo.latency[t] + rpc * msg / topo.bandwidth[t]
    return time + (rpc * 3 * msg / topo.dma_compute if reduce else 0.0)


def _spread(r: int, msg_per_peer: float, topo: Topology) -> float:
    """One round in which every rank sends ``msg_per_peer`` bytes to every other rank (mesh / all-to-all)."""
    rpc = min(topo.ranks_per_chip, r)
    prev, best = 1, 0.0
    for t in range(5):
        u = min(topo.unit_ranks[t], r) if t < 4 else r
        if u > prev:
            best = max(best, topo.latency[t] + rpc * (u - prev) * msg_per_peer / topo.bandwidth[t])
        prev = max(prev, u)
    return best


def analytic(collective: str, algorithm: str, ranks: int, nbytes: float, topo: Topology, channels: int = 1,
             server_ranks: int = 16) -> float:
    """Closed-form seconds for ``collective`` of ``nbytes`` per rank (see the module docstring)."""
    r = int(ranks)
    if r <= 1:
        return 0.0
    logr = max(1, math.ceil(math.log2(r)))
    pof2 = 1 << (r.bit_length() - 1)
    if collective in ("all_gather", "reduce_scatter"):
        per = nbytes if collective == "all_gather" else nbytes / r
        return _ring(r, per * r, topo, channels, (r - 1) if collective == "reduce_scatter" else 0,
                     (r - 1) if collective == "all_gather" else 0)
    if collective == "all_to_all":
        return _spread(r, nbytes / r, topo)
    if collective == "broadcast":
        return sum(_exchange(1 << k, r, nbytes, topo, False) for k in range(logr))
    if collective == "collective_permute":
        return _neighbour_round(r, nbytes, topo)
    if algorithm == "ring":
        return _ring(r, nbytes, topo, channels, r - 1, r - 1)
    if algorithm == "recursive_doubling":
        pre = 2 * _exchange(1, r, nbytes, topo, True) if pof2 != r else 0.0
        return pre + sum(_exchange(1 << k, r, nbytes, topo, True) for k in range(pof2.bit_length() - 1))
    if algorithm == "recursive_halving":
        pre = 2 * _exchange(1, r, nbytes, topo, True) if pof2 != r else 0.0
        ks = range(pof2.bit_length() - 1)
        return pre + sum(_exchange(1 << k, r, nbytes / 2 ** (k + 1), topo, True) +
                         _exchange(1 << k, r, nbytes / 2 ** (k + 1), topo, False) for k in ks)
    if algorithm == "tree":
        return 2 * sum(_exchange(1 << k, r, 2 * nbytes, topo, k < logr) for k in range(logr))
    if algorithm == "mesh":
        return 2 * _spread(r, nbytes / r, topo) + (r + 1) * nbytes / r * min(topo.ranks_per_chip, r) / topo.dma_compute
    if algorithm == "rank_order":
        chain, below = 0.0, 0
        for t in range(5):  # hops (i-1 -> i) whose smallest common unit is tier t
            u = topo.unit_ranks[t] if t < 4 else r
            within = (r - 1) - (r - 1) // u
            chain += (within - below) * (topo.latency[t] + nbytes / topo.bandwidth[t] + 3 * nbytes / topo.dma_compute)
            below = within
        return chain + _spread(r, nbytes, topo) / r
    if algorithm == "hierarchical":
        s = min(server_ranks, r)
        x = max(r // s, 1)
        intra = _ring(s, nbytes, topo, channels, s - 1, s - 1)
        inter_msg = nbytes / (s * x * channels)
        t = 0 if x == 1 else _dist_tier(s, r, topo) if s & (s - 1) == 0 else 4
        rpc = min(topo.ranks_per_chip, r)
        inter_round = topo.latency[t] + rpc * channels * inter_msg / topo.bandwidth[t]
        inter = 2 * (x - 1) * inter_round + (x - 1) * rpc * 3 * channels * inter_msg / topo.dma_compute
        return intra + inter
    raise ValueError(f"algorithm: {algorithm!r} has no cost model")


def estimate(collective: str = "all_reduce", ranks: int = 8, count: int = 1 << 20, itemsize: int = 2,
             algorithm: str | None = None, topology: Topology | None = None, channels: int = 1,
             server_ranks: int | None = None, replay_limit: int = 256) -> dict:
    """Seconds, algorithm bandwidth and bus bandwidth of one collective.

    >>> e = estimate("all_reduce", ranks=16, count=1 << 20, itemsize=2)
    >>> e["method"], e["seconds"] > 0
    ('replay', True)
    """
    from .local import resolve_options

    opts = resolve_options(algorithm, channels, None, server_ranks)
    topo = Topology.preset() if topology is None else topology
    if collective not in COLLECTIVES:
        raise ValueError(f"collective: {collective!r} is not one of {', '.join(COLLECTIVES)}")
    if ranks < 1 or count < 0:
        raise ValueError(f"estimate: ranks must be >= 1 and count >= 0, got {ranks}, {count}")
    nbytes = count * itemsize
    if collective in ("all_reduce", "reduce_scatter", "reduce") and ranks <= replay_limit and not (
            collective == "reduce_scatter" and count % ranks):
        sch = build(collective, opts["algorithm"], ranks, opts["channels"], 16, opts["server_ranks"])
        res = replay(sch, count, itemsize, topo)
    else:
        res = {"seconds": analytic(collective, opts["algorithm"], ranks, nbytes, topo, opts["channels"],
                                   opts["server_ranks"]), "method": "analytic"}
    sec = res["seconds"]
    res.update(collective=collective, algorithm=opts["algorithm"], ranks=ranks, bytes=nbytes,
               algbw=nbytes / sec if sec else float("inf"))
    res["busbw"] = res["algbw"] * _BUS.get(collective, lambda r: 1.0)(ranks)
    return res
