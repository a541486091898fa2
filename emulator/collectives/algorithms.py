"""Collective algorithms as explicit schedules: rounds of steps ``(dst, chunk, inputs, kind)``.

A :class:`Schedule` is data. One executor runs it on virtual ranks (:mod:`.local`), over MPI (:mod:`.mpi`), and
the cost model replays it (:mod:`.cost`); the bits therefore come from the schedule, never from the transport.

Semantics of one :class:`Step`: rank ``dst`` replaces its copy of ``chunk`` with the fold of the copies of that chunk
held by the ranks in ``inputs`` (in that order; ``dst`` may be one of them), reading every copy as it was *before*
the round. ``kind="reduce"`` folds with the collective's op in one DMA op (fp32 accumulation, one rounding to the
buffer dtype, or a rounding after every binary op; see ``collective_accumulation``); ``kind="copy"`` takes the one
input's bits unchanged. Every input other than ``dst`` is a message ``input -> dst``.

Chunks partition the buffer into contiguous element ranges (:class:`Layout`). Rank numbers are group-local
(0..R-1). The reduction order each algorithm gives element ``e`` of chunk ``c`` (positions mod R):

* ``ring``: the NCCL/Neuron convention. Chunk ``c`` (ring position c) is reduced as
  ``x[c+1] + x[c+2] + ... + x[c]``, each add rounded to the buffer dtype, then circulated unchanged.
  With channels, channel ``k`` handles the k-th contiguous part of the buffer; odd channels run the ring reversed.
* ``tree``: NCCL's binary tree over ranks (tree 1, the mirror, on odd channels). A node folds
  ``own, child0, child1`` in one DMA op; the root's result is broadcast down unchanged.
* ``recursive_doubling``: partners ``r ^ 2^k`` swap whole buffers and both fold ``(lower, upper)``: the balanced
  pairwise tree in rank order. Non-power-of-two R uses MPICH's pre/post step (rank 2i folds into 2i+1 first).
* ``recursive_halving``: Rabenseifner (MPICH order): the distance doubles while the exchanged half shrinks, the same
  pairwise tree per element; then a recursive-doubling all-gather.
* ``hierarchical``: ring reduce-scatter inside each server of ``server_ranks`` ranks, ring all-reduce across
  servers on each slice, ring all-gather inside the server.
* ``mesh``: rank c owns chunk c and folds every rank's copy in the order ``c, c+1, ..., c-1`` in DMA ops of up to
  ``dma_inputs`` buffers (fp32 accumulate, one rounding per op), then sends the result to everyone.
* ``rank_order``: a chain ``x0 + x1 + ... + x[R-1]``, each add rounded, ending at rank R-1, then broadcast.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from ..errors import ArgumentError, ShapeError
from ._phases import REDUCERS, Step, _channel_ring, _Rounds, gather, nccl_btree

__all__ = ["Step", "Layout", "Schedule", "ALGORITHMS", "build", "nccl_btree"]

ALGORITHMS = ("ring", "tree", "recursive_doubling", "recursive_halving", "hierarchical", "mesh", "rank_order")
_REDUCING = ("all_reduce", "reduce_scatter", "reduce")


@dataclass(frozen=True)
class Layout:
    """How ``channels * per_channel`` chunks cover a buffer of ``n`` elements.

    ``channel_major``: the buffer splits into ``channels`` contiguous parts of ``ceil(n / channels)`` elements (the
    last ones shorter, possibly empty), each part into ``per_channel`` chunks of ``ceil(part / per_channel)``.
    ``block_major`` (reduce-scatter): ``n`` splits into ``per_channel`` equal blocks (one per rank, ``n`` must be
    divisible), each block into ``channels`` sub-parts; chunk ``k * per_channel + b`` is sub-part k of block b.
    Chunk ``k * per_channel + j`` always belongs to channel ``k``.
    """

    channels: int
    per_channel: int
    mode: str = "channel_major"

    @property
    def chunks(self) -> int:
        return self.channels * self.per_channel

    def bounds(self, n: int) -> np.ndarray:
        """int64 array ``[chunks, 2]`` of ``[start, stop)`` element ranges for a buffer of ``n`` elements."""
        c, k = self.channels, self.per_channel
        out = np.zeros((c * k, 2), np.int64)
        if self.mode == "channel_major":
            part = -(-n // c)
            for ch in range(c):
                p0, p1 = min(ch * part, n), min((ch + 1) * part, n)
                m = -(-(p1 - p0) // k) if p1 > p0 else 0
                for j in range(k):
                    out[ch * k + j] = (min(p0 + j * m, p1), min(p0 + (j + 1) * m, p1))
        else:
            if n % k:
                raise ShapeError(f"reduce_scatter: {n} elements do not split into {k} equal per-rank blocks")
            blk = n // k
            sub = -(-blk // c)
            for ch in range(c):
                for b in range(k):
                    s0 = b * blk
                    out[ch * k + b] = (s0 + min(ch * sub, blk), s0 + min((ch + 1) * sub, blk))
        return out


@dataclass(frozen=True)
class Schedule:
    """An algorithm for one collective on ``ranks`` group-local ranks: rounds of :class:`Step`.

    ``holders[c]`` lists the ranks whose copy of chunk ``c`` is final after the schedule; ``labels[i]`` names the
    phase of round ``i`` (``reduce-scatter``, ``all-gather``, ``intra:...``, ``inter:...``, ...).
    """

    collective: str
    algorithm: str
    ranks: int
    layout: Layout
    rounds: tuple
    labels: tuple
    holders: dict = field(default_factory=dict)
    staged: tuple = ()  # per round: True when a step reads a copy another step of the round writes

    @property
    def steps(self) -> int:
        return sum(len(r) for r in self.rounds)

    def messages(self):
        """Yield ``(round, src, dst, chunk)`` for every message (an input that is not the destination)."""
        for i, rnd in enumerate(self.rounds):
            for st in rnd:
                for src in st.inputs:
                    if src != st.dst:
                        yield i, src, st.dst, st.chunk

    def describe(self, limit: int = 12) -> str:
        """The first ``limit`` rounds as text (``explain`` prints this)."""
        lines = [f"{self.collective} / {self.algorithm}: {self.ranks} ranks, {self.layout.chunks} chunks "
                 f"({self.layout.channels} channel(s)), {len(self.rounds)} rounds, {self.steps} steps"]
        for i, (rnd, lab) in enumerate(zip(self.rounds, self.labels)):
            if i == limit:
                lines.append(f"  ... {len(self.rounds) - limit} more rounds")
                break
            shown = ", ".join(
                f"{st.dst}[c{st.chunk}]{'=' if st.kind == 'copy' else '<-'}"
                f"{'+'.join(map(str, st.inputs)) if st.kind == 'reduce' else st.inputs[0]}" for st in rnd[:6])
            more = f" (+{len(rnd) - 6} more)" if len(rnd) > 6 else ""
            lines.append(f"  round {i:3d} {lab:<16s} {shown}{more}")
        return "\n".join(lines)


def _layout(collective: str, algorithm: str, r: int, channels: int) -> Layout:
    if collective == "reduce_scatter":
        return Layout(channels, r, "block_major")
    if algorithm in ("tree", "recursive_doubling", "rank_order"):
        return Layout(channels, 1)
    if algorithm == "recursive_halving":
        return Layout(channels, 1 << (r.bit_length() - 1))
    return Layout(channels, r)


def _owner(layout: Layout, algorithm: str, r: int, server_ranks: int):
    if layout.mode == "block_major":
        return lambda c: c % layout.per_channel
    if algorithm == "hierarchical":  # slice j (contiguous) splits into one sub-chunk per server g
        x = r // server_ranks
        return lambda c: (c % layout.per_channel) % x * server_ranks + (c % layout.per_channel) // x
    if algorithm == "ring":
        return lambda c: _channel_ring(r, c // layout.per_channel)[c % layout.per_channel]
    return lambda c: c % layout.per_channel % r


@functools.lru_cache(maxsize=64)
def build(collective: str, algorithm: str, ranks: int, channels: int = 1, dma_inputs: int = 16,
          server_ranks: int = 16, root: int = 0) -> Schedule:
    """The schedule of ``collective`` (all_reduce | reduce_scatter | reduce) with ``algorithm`` on ``ranks`` ranks.

    >>> s = build("all_reduce", "ring", 4)
    >>> len(s.rounds), s.rounds[0][0]
    (6, Step(dst=1, chunk=3, inputs=(0, 1), kind='reduce'))
    """
    if collective not in _REDUCING:
        raise ArgumentError(f"build: collective {collective!r} is not one of {', '.join(_REDUCING)}")
    if algorithm not in ALGORITHMS:
        raise ArgumentError(f"algorithm: {algorithm!r} is not one of {', '.join(map(repr, ALGORITHMS))}")
    if ranks < 1:
        raise ShapeError(f"ranks: a collective needs at least 1 rank, got {ranks}")
    if dma_inputs < 2:
        raise ArgumentError(f"dma_inputs: a DMA reduce op folds at least 2 buffers, got {dma_inputs}")
    if algorithm == "recursive_halving" and collective == "reduce_scatter" and ranks & (ranks - 1):
        raise ShapeError(f"recursive_halving: reduce_scatter needs a power-of-two group, got {ranks} ranks")
    layout = _layout(collective, algorithm, ranks, channels)
    rb = _Rounds()
    ctx = {"dma_inputs": dma_inputs, "server_ranks": server_ranks if algorithm == "hierarchical" else 1}
    holders = {c: {0} for c in range(layout.chunks)}
    if ranks > 1:
        holders = REDUCERS[algorithm](rb, ranks, layout, _owner(layout, algorithm, ranks, server_ranks), ctx)
        rb.close()
        if collective == "all_reduce":
            gather(rb, algorithm, ranks, layout, holders, ctx)
            holders = {c: set(range(ranks)) for c in range(layout.chunks)}
        else:
            want = (lambda c: c % layout.per_channel) if collective == "reduce_scatter" else (lambda c: root)
            rnd = []
            for c in range(layout.chunks):
                if want(c) not in holders[c]:
                    rnd.append(Step(want(c), c, (min(holders[c]),), "copy"))
                holders[c] = {want(c)}
            if rnd:
                rb.at(0, "deliver").extend(rnd)
    rounds = tuple(tuple(r) for r in rb.rounds if r)
    labels = tuple(lab for r, lab in zip(rb.rounds, rb.labels) if r)
    staged = tuple(_needs_staging(r) for r in rounds)
    return Schedule(collective, algorithm, ranks, layout, rounds, labels,
                    {c: frozenset(h) for c, h in holders.items()}, staged)


def _needs_staging(rnd) -> bool:
    written = {(st.dst, st.chunk) for st in rnd}
    if len(written) != len(rnd):
        raise AssertionError("schedule: two steps of one round write the same copy")
    return any((i, st.chunk) in written for st in rnd for i in st.inputs if i != st.dst)
