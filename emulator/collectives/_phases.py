"""Phase builders of the collective schedules: ring, tree, recursive doubling/halving, hierarchical, mesh, chain.

Each ``_reduce_*`` appends the rounds of one algorithm's reduce phase to a :class:`_Rounds` and returns which ranks
hold each finished chunk; :func:`gather` appends the phase that brings finished chunks to every rank. The orders they
produce are documented in :mod:`emulator.collectives.algorithms`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ..errors import ShapeError


@dataclass(frozen=True)
class Step:
    """One DMA op on rank ``dst``: fold (``reduce``) or take (``copy``) the ``inputs`` ranks' copies of ``chunk``."""

    dst: int
    chunk: int
    inputs: tuple
    kind: str = "reduce"


# ----------------------------------------------------------------------------------------------------------------
# building blocks
# ----------------------------------------------------------------------------------------------------------------

class _Rounds:
    """Accumulates rounds; ``at(i, label)`` returns round i (created on demand) so parallel sub-schedules merge."""

    def __init__(self) -> None:
        self.rounds: list[list[Step]] = []
        self.labels: list[str] = []
        self.base = 0

    def at(self, i: int, label: str) -> list:
        i += self.base
        while len(self.rounds) <= i:
            self.rounds.append([])
            self.labels.append(label)
        return self.rounds[i]

    def close(self) -> None:
        """Later phases start after every round so far."""
        self.base = len(self.rounds)


def nccl_btree(nranks: int, rank: int) -> tuple[int, int, int]:
    """``(parent, child0, child1)`` of ``rank`` in NCCL's binary tree (``ncclGetBtree``); -1 where absent."""
    bit = 1
    while bit < nranks:
        if bit & rank:
            break
        bit <<= 1
    if rank == 0:
        return -1, -1, (bit >> 1) if nranks > 1 else -1
    up = (rank ^ bit) | (bit << 1)
    if up >= nranks:
        up = rank ^ bit
    low = bit >> 1
    d0 = -1 if low == 0 else rank - low
    d1 = -1 if low == 0 else rank + low
    while d1 >= nranks:
        d1 = -1 if low == 0 else rank + low
        low >>= 1
    return up, d0, d1


def _ring_rs(rb: _Rounds, ring: list, chunk_at: list, label: str) -> None:
    n = len(ring)
    for s in range(n - 1):
        rnd = rb.at(s, label)
        for p in range(n):
            q = (p + 1) % n
            rnd.append(Step(ring[q], chunk_at[(p - 1 - s) % n], (ring[p], ring[q])))


def _ring_ag(rb: _Rounds, ring: list, chunk_at: list, label: str) -> None:
    n = len(ring)
    for s in range(n - 1):
        rnd = rb.at(s, label)
        for p in range(n):
            rnd.append(Step(ring[(p + 1) % n], chunk_at[(p - s) % n], (ring[p],), "copy"))


def _channel_ring(r: int, k: int) -> list:
    return list(range(r)) if k % 2 == 0 else list(range(r - 1, -1, -1))


def _tree_perm(r: int, k: int) -> list:
    """Rank of tree vertex v on channel k: identity (tree 0) or NCCL's tree 1 (mirror if R even, else shift)."""
    if k % 2 == 0:
        return list(range(r))
    return [r - 1 - v for v in range(r)] if r % 2 == 0 else [(v + 1) % r for v in range(r)]


def _fold_groups(order: list, dma_inputs: int) -> list:
    """Split a left fold over ``order`` into DMA ops of at most ``dma_inputs`` buffers (the first holds the acc)."""
    ops = [tuple(order[:dma_inputs])]
    rest = order[dma_inputs:]
    while rest:
        ops.append((order[0],) + tuple(rest[:dma_inputs - 1]))
        rest = rest[dma_inputs - 1:]
    return ops


# ----------------------------------------------------------------------------------------------------------------
# reduce phases: each returns holders {chunk: set of ranks holding the final value}
# ----------------------------------------------------------------------------------------------------------------

def _reduce_ring(rb, r, layout, owner_of, ctx):
    holders = {}
    for k in range(layout.channels):
        ring = _channel_ring(r, k)
        chunk_at = [None] * r
        for j in range(layout.per_channel):
            c = k * layout.per_channel + j
            chunk_at[ring.index(owner_of(c))] = c
        _ring_rs(rb, ring, chunk_at, "reduce-scatter")
        for p in range(r):
            holders[chunk_at[p]] = {ring[p]}
    return holders


def _reduce_mesh(rb, r, layout, owner_of, ctx):
    holders = {}
    for c in range(layout.chunks):
        o = owner_of(c)
        for g, ins in enumerate(_fold_groups([(o + i) % r for i in range(r)], ctx["dma_inputs"])):
            rb.at(g, "mesh-reduce").append(Step(o, c, ins))
        holders[c] = {o}
    return holders


def _reduce_tree(rb, r, layout, owner_of, ctx):
    holders = {}
    for k in range(layout.channels):
        perm = _tree_perm(r, k)
        height = [0] * r
        tree = [nccl_btree(r, v) for v in range(r)]

        @functools.lru_cache(None)
        def h(v):
            kids = [d for d in tree[v][1:] if d >= 0]
            return 0 if not kids else 1 + max(h(d) for d in kids)

        for v in range(r):
            height[v] = h(v)
        for v in sorted(range(r), key=lambda v: height[v]):
            kids = [d for d in tree[v][1:] if d >= 0]
            if not kids:
                continue
            order = [perm[v]] + [perm[d] for d in kids]
            for c in range(k * layout.per_channel, (k + 1) * layout.per_channel):
                for g, ins in enumerate(_fold_groups(order, ctx["dma_inputs"])):  # <= 2 ops (3 inputs)
                    rb.at(2 * (height[v] - 1) + g, "tree-reduce").append(Step(perm[v], c, ins))
        for c in range(k * layout.per_channel, (k + 1) * layout.per_channel):
            holders[c] = {perm[0]}
        ctx.setdefault("trees", {})[k] = (perm, tree)
    return holders


def _rd_core(r: int) -> tuple[int, int, list]:
    pof2 = 1 << (r.bit_length() - 1)
    rem = r - pof2
    core = [2 * i + 1 for i in range(rem)] + list(range(2 * rem, r))
    return pof2, rem, core


def _reduce_rd(rb, r, layout, owner_of, ctx):
    pof2, rem, core = _rd_core(r)
    holders = {}
    for k in range(layout.channels):
        perm = _channel_ring(r, k)
        chunks = range(k * layout.per_channel, (k + 1) * layout.per_channel)
        for i in range(rem):
            a, b = perm[2 * i], perm[2 * i + 1]
            rb.at(0, "rd-pre").extend(Step(b, c, (a, b)) for c in chunks)
        off = 1 if rem else 0
        mask, lvl = 1, 0
        while mask < pof2:
            rnd = rb.at(off + lvl, f"rd-{mask}")
            for a in range(pof2):
                b = a ^ mask
                if a < b:
                    ra, rbk = perm[core[a]], perm[core[b]]
                    for c in chunks:
                        rnd.append(Step(ra, c, (ra, rbk)))
                        rnd.append(Step(rbk, c, (ra, rbk)))
            mask <<= 1
            lvl += 1
        for c in chunks:
            holders[c] = {perm[x] for x in core}
    ctx["rd_post"] = (rem, pof2)
    return holders


def _reduce_rh(rb, r, layout, owner_of, ctx):
    pof2, rem, core = _rd_core(r)
    k_ch = layout.per_channel
    if k_ch % pof2:
        raise ShapeError(f"recursive_halving: {k_ch} chunks per channel do not halve {pof2.bit_length() - 1} times")
    holders = {}
    windows = {}
    for k in range(layout.channels):
        base = k * k_ch
        if rem:
            rb.at(0, "rh-pre").extend(
                Step(2 * i + 1, base + c, (2 * i, 2 * i + 1)) for i in range(rem) for c in range(k_ch))
        off = 1 if rem else 0
        win = {a: (0, k_ch) for a in range(pof2)}
        mask, lvl = 1, 0
        while mask < pof2:
            rnd = rb.at(off + lvl, f"rh-halve-{mask}")
            new = {}
            for a in range(pof2):
                b = a ^ mask
                lo, hi = win[a]
                mid = (lo + hi) // 2
                keep = (lo, mid) if a < b else (mid, hi)
                new[a] = keep
                pair = (core[min(a, b)], core[max(a, b)])
                rnd.extend(Step(core[a], base + c, pair) for c in range(*keep))
            win = new
            mask <<= 1
            lvl += 1
        for a in range(pof2):
            for c in range(*win[a]):
                holders[base + c] = {core[a]}
        windows[k] = win
    ctx["rh"] = (pof2, rem, core, windows)
    return holders


def _reduce_chain(rb, r, layout, owner_of, ctx):
    for i in range(1, r):
        rb.at(i - 1, "chain-reduce").extend(Step(i, c, (i - 1, i)) for c in range(layout.chunks))
    return {c: {r - 1} for c in range(layout.chunks)}


def _reduce_hier(rb, r, layout, owner_of, ctx):
    s = ctx["server_ranks"]
    if s < 1 or r % s:
        raise ShapeError(f"hierarchical: {r} ranks do not split into servers of {s} ranks (setting "
                         "collective_server_ranks or server_ranks=)")
    x = r // s
    holders = {}
    for k in range(layout.channels):
        # fine chunk of (slice j, server g): the layout's chunk owned by rank g*s + j
        by_owner = {owner_of(c): c for c in range(k * layout.per_channel, (k + 1) * layout.per_channel)}
        fine = {(j, g): by_owner[g * s + j] for j in range(s) for g in range(x)}
        if s > 1:
            for g in range(x):
                ring = [g * s + i for i in range(s)]
                for gg in range(x):  # one ring step per fine chunk of the super chunk
                    _ring_rs(rb, ring, [fine[(j, gg)] for j in range(s)], "intra:reduce-scatter")
        holders.update({fine[(j, g)]: {g * s + j} for j in range(s) for g in range(x)})
    ctx["hier"] = (s, x)
    rb.close()
    if x > 1:
        for k in range(layout.channels):
            by_owner = {owner_of(c): c for c in range(k * layout.per_channel, (k + 1) * layout.per_channel)}
            for j in range(s):
                ring = [g * s + j for g in range(x)]
                _ring_rs(rb, ring, [by_owner[g * s + j] for g in range(x)], "inter:reduce-scatter")
    return holders


# ----------------------------------------------------------------------------------------------------------------
# gather phases (final chunks from their holders to every rank)
# ----------------------------------------------------------------------------------------------------------------

def gather(rb, algorithm, r, layout, holders, ctx):
    if algorithm in ("ring", "hierarchical") and not _single_holders(holders):
        return _gather_broadcast(rb, r, layout, holders)
    if algorithm == "ring":
        for k in range(layout.channels):
            ring = _channel_ring(r, k)
            chunk_at = [None] * r
            for c in range(k * layout.per_channel, (k + 1) * layout.per_channel):
                chunk_at[ring.index(next(iter(holders[c])))] = c
            _ring_ag(rb, ring, chunk_at, "all-gather")
    elif algorithm == "hierarchical":
        s, x = ctx["hier"]
        if x > 1:
            for j in range(s):
                ring = [g * s + j for g in range(x)]
                for k in range(layout.channels):
                    by_holder = {next(iter(holders[c])): c
                                 for c in range(k * layout.per_channel, (k + 1) * layout.per_channel)}
                    _ring_ag(rb, ring, [by_holder[g * s + j] for g in range(x)], "inter:all-gather")
            rb.close()
        if s > 1:
            for g in range(x):
                ring = [g * s + i for i in range(s)]
                for k in range(layout.channels):
                    by_holder = {next(iter(holders[c])): c
                                 for c in range(k * layout.per_channel, (k + 1) * layout.per_channel)}
                    # after the inter stage every server holds all fine chunks of its slices
                    for gg in range(x):
                        _ring_ag(rb, ring, [by_holder[gg * s + j] for j in range(s)], "intra:all-gather")
    elif algorithm == "tree":
        for k, (perm, tree) in ctx["trees"].items():
            depth = {0: 0}
            order = [0]
            for v in order:
                for d in tree[v][1:]:
                    if d >= 0:
                        depth[d] = depth[v] + 1
                        order.append(d)
            for v in order[1:]:
                rb.at(depth[v] - 1, "tree-broadcast").extend(
                    Step(perm[v], c, (perm[tree[v][0]],), "copy")
                    for c in range(k * layout.per_channel, (k + 1) * layout.per_channel))
    elif algorithm == "recursive_doubling":
        rem, _ = ctx["rd_post"]
        for k in range(layout.channels):
            perm = _channel_ring(r, k)
            rb.at(0, "rd-post").extend(
                Step(perm[2 * i], c, (perm[2 * i + 1],), "copy")
                for i in range(rem) for c in range(k * layout.per_channel, (k + 1) * layout.per_channel))
    elif algorithm == "recursive_halving":
        pof2, rem, core, windows = ctx["rh"]
        k_ch = layout.per_channel
        for k in range(layout.channels):
            base, win = k * k_ch, dict(windows[k])
            mask, lvl = pof2 >> 1, 0
            while mask:
                rnd = rb.at(lvl, f"rh-double-{mask}")
                new = {}
                for a in range(pof2):
                    b = a ^ mask
                    rnd.extend(Step(core[b], base + c, (core[a],), "copy") for c in range(*win[a]))
                    new[a] = (min(win[a][0], win[b][0]), max(win[a][1], win[b][1]))
                win = new
                mask >>= 1
                lvl += 1
            if rem:
                rb.at(lvl, "rh-post").extend(
                    Step(2 * i, base + c, (2 * i + 1,), "copy") for i in range(rem) for c in range(k_ch))
    else:  # mesh and rank_order: the holder sends the finished chunk to everyone in one round
        _gather_broadcast(rb, r, layout, holders)


def _single_holders(holders) -> bool:
    return all(len(h) == 1 for h in holders.values()) and len({next(iter(h)) for h in holders.values()}) == len(
        holders)


def _gather_broadcast(rb, r, layout, holders):
    rnd = rb.at(0, "broadcast")
    for c in range(layout.chunks):
        src = min(holders[c])
        rnd.extend(Step(d, c, (src,), "copy") for d in range(r) if d not in holders[c])


REDUCERS = {"ring": _reduce_ring, "mesh": _reduce_mesh, "tree": _reduce_tree, "recursive_doubling": _reduce_rd,
             "recursive_halving": _reduce_rh, "rank_order": _reduce_chain, "hierarchical": _reduce_hier}
