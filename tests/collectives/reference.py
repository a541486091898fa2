"""Independent per-chunk references of each algorithm's declared reduction order.

Written from the order each algorithm documents (not from the schedules): plain Python loops over ranks, fp32 adds
done by NumPy float32 scalars, and every rounding to the buffer dtype done by ml_dtypes ``astype`` (RNE), which is
independent of the emulator's cast.
"""

from __future__ import annotations

import numpy as np

F32 = np.float32


def rounder(dtype):
    """fp32 array -> fp32 array rounded (RNE) to ``dtype`` by ml_dtypes/NumPy."""
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return lambda v: np.asarray(v, F32)
    return lambda v: np.asarray(v, F32).astype(dtype).astype(F32)


def fold(vals, rnd, per_add=False):
    """One DMA op: left fold in fp32, one rounding (or a rounding after every add)."""
    acc = np.asarray(vals[0], F32)
    for j, v in enumerate(vals[1:], 1):
        acc = (acc + np.asarray(v, F32)).astype(F32)
        if per_add and j < len(vals) - 1:
            acc = rnd(acc)
    return rnd(acc)


def chain(vals, rnd):
    """x0 + x1 + ... each add rounded."""
    acc = np.asarray(vals[0], F32)
    for v in vals[1:]:
        acc = rnd(acc + v)
    return acc


def ceil_bounds(n, parts):
    m = -(-n // parts) if n else 0
    return [(min(i * m, n), min((i + 1) * m, n)) for i in range(parts)]


def channel_chunks(n, channels, per_channel):
    """{(k, j): (start, stop)}: channel parts of ceil(n/C), each split into per_channel ceil-sized chunks."""
    out = {}
    for k, (p0, p1) in enumerate(ceil_bounds(n, channels)):
        for j, (a, b) in enumerate(ceil_bounds(p1 - p0, per_channel)):
            out[(k, j)] = (p0 + a, p0 + b)
    return out


def ring_all_reduce(xs, dtype, channels=1):
    """Channel k: ring = ranks in order (k even) or reversed (k odd); chunk at ring position p is reduced as
    x[ring[p+1]] + x[ring[p+2]] + ... + x[ring[p]], each add rounded."""
    rnd = rounder(dtype)
    r, n = len(xs), xs[0].size
    out = np.empty(n, F32)
    for (k, p), (a, b) in channel_chunks(n, channels, r).items():
        ring = list(range(r)) if k % 2 == 0 else list(range(r - 1, -1, -1))
        out[a:b] = chain([xs[ring[(p + 1 + i) % r]][a:b] for i in range(r)], rnd)
    return out


def ring_reduce_scatter(xs, dtype):
    """Block b (of n/R) ends at rank b: order x[b+1] + ... + x[b] (one channel, forward ring)."""
    rnd = rounder(dtype)
    r, n = len(xs), xs[0].size
    blk = n // r
    return [chain([xs[(b + 1 + i) % r][b * blk:(b + 1) * blk] for i in range(r)], rnd) for b in range(r)]


def pairwise(vals, rnd):
    """Balanced pairwise tree in list order, one rounding per add."""
    vals = list(vals)
    while len(vals) > 1:
        vals = [rnd(vals[i] + vals[i + 1]) for i in range(0, len(vals), 2)]
    return vals[0]


def recursive_doubling(xs, dtype):
    """MPICH: with rem = R - 2^floor(log2 R), ranks 2i and 2i+1 (i < rem) add first; then the pairwise tree."""
    rnd = rounder(dtype)
    r = len(xs)
    pof2 = 1 << (r.bit_length() - 1)
    rem = r - pof2
    core = [rnd(xs[2 * i] + xs[2 * i + 1]) for i in range(rem)] + [np.asarray(x, F32) for x in xs[2 * rem:]]
    return pairwise(core, rnd)


def binary_tree_pow2(xs, dtype):
    """NCCL tree 0 for R = 2^p: root 0 has one child R/2; node v with lowest set bit b has children v -+ b/2.
    A node folds own, child(v - b/2), child(v + b/2) in one fp32 DMA op, rounded once."""
    rnd = rounder(dtype)
    r = len(xs)

    def value(v, b):
        if b == 1:
            return np.asarray(xs[v], F32)
        return fold([xs[v], value(v - b // 2, b // 2), value(v + b // 2, b // 2)], rnd)

    if r == 1:
        return np.asarray(xs[0], F32)
    return fold([xs[0], value(r // 2, r // 2)], rnd)


def hierarchical(xs, dtype, server):
    """Servers of `server` ranks; each part splits into S*X chunks, chunk j*X + m: within every server g a ring over
    local ranks j+1, ..., j (rounded per add), then across servers a ring m+1, ..., m over those partials."""
    rnd = rounder(dtype)
    r, n = len(xs), xs[0].size
    x = r // server
    out = np.empty(n, F32)
    for (_, c), (a, b) in channel_chunks(n, 1, r).items():
        j, m = divmod(c, x)
        part = [chain([xs[g * server + (j + 1 + i) % server][a:b] for i in range(server)], rnd) for g in range(x)]
        out[a:b] = chain([part[(m + 1 + i) % x] for i in range(x)], rnd)
    return out


def mesh(xs, dtype, dma_inputs=16):
    """Chunk c at rank c: fold c, c+1, ..., c-1 in DMA ops of <= dma_inputs buffers (fp32, one rounding each)."""
    rnd = rounder(dtype)
    r, n = len(xs), xs[0].size
    out = np.empty(n, F32)
    for (_, c), (a, b) in channel_chunks(n, 1, r).items():
        order = [xs[(c + i) % r][a:b] for i in range(r)]
        acc = fold(order[:dma_inputs], rnd)
        rest = order[dma_inputs:]
        while rest:
            acc = fold([acc] + rest[:dma_inputs - 1], rnd)
            rest = rest[dma_inputs - 1:]
        out[a:b] = acc
    return out
