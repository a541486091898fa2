"""Hot loops of the collective executor: a Numba kernel and its NumPy twin, bit-identical.

Both run a compiled schedule (:class:`emulator.collectives.executor.Plan`) over the stacked per-rank buffers. The
Numba kernel works tile by tile (a tile is a slice of one chunk; every step of a chunk only touches that chunk, so a
tile's whole history runs while it sits in cache, and tiles run in parallel). The NumPy twin runs the rounds in
order over whole chunks. Steps of one round read the copies as they were before the round; the plan marks the
rounds where a step reads a copy another step writes (recursive doubling's swaps), which are staged.

Values travel as float32 (the exact value of the buffer dtype's code). One step folds its inputs with the op in fp32
and rounds once to the buffer dtype (``accumulate=0``), or rounds after every binary op (``accumulate=1``).
Rounding modes: 0 none (float32 buffers), 1 bfloat16 RNE (bit trick), 2 any format RNE/RTZ through the cast
encoder :func:`encode_f32` and the format's value table, 3 stochastic rounding with the keyed stream: element ``e``
of the buffer, step key ``key`` (from ``(seed, site)``), the SR step of ``_sr_kernels`` with all dropped bits.
Ops: 0 add, 1 max, 2 min, 3 mul (max/min: NaN wins, and +0 > -0 as in IEEE 754-2019 maximum/minimum).
"""

from __future__ import annotations

import numpy as np

from .._jit import njit, prange
from ..numerics._cast_kernels import encode_f32
from ..numerics._sr_kernels import _sr_f32, keyed_word

__all__ = ["run_tiles", "run_rounds", "fold_rows"]


# ----------------------------------------------------------------------------------------------------------------
# Numba
# ----------------------------------------------------------------------------------------------------------------

@njit(inline="always")
def _combine(a, b, op):
    if op == 0:
        return np.float32(a + b)
    if op == 3:
        return np.float32(a * b)
    if a != a:
        return a
    if b != b:
        return b
    if a == b:  # signed zeros: max prefers +0, min prefers -0
        ba = np.float32(a).view(np.uint32) >> np.uint32(31)
        if op == 1:
            return a if ba == 0 else b
        return a if ba == 1 else b
    if op == 1:
        return a if a > b else b
    return a if a < b else b


@njit
def _bf16_rne(bits):
    """fp32 bit pattern -> the pattern of its bfloat16 RNE rounding (NaN -> canonical quiet NaN of its sign)."""
    if (bits & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000):
        return np.uint32((bits & np.uint32(0x80000000)) | np.uint32(0x7FC00000))
    return np.uint32((bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000))


@njit
def _round_one(v, e, mode, p, table, thr, nbits, key):
    if mode == 0:
        return v
    bits = np.float32(v).view(np.uint32)
    if mode == 1:
        return np.uint32(_bf16_rne(bits)).view(np.float32)
    if mode == 2:
        return table[encode_f32(np.int64(bits), p)]
    w = keyed_word(key, np.uint64(e))
    n = 64 if nbits == 0 else nbits
    return table[_sr_f32(np.int64(bits), w >> np.uint64(64 - n), n, p, thr)]


@njit
def _step_nb(st, dst_row, ins, kind, s, op, mode, acc_mode, p, table, thr, nbits, key):
    m = dst_row.size
    if kind == 1:
        src = st[ins[0]]
        for x in range(m):
            dst_row[x] = src[x]
        return
    k = ins.size
    if op == 0 and mode == 0 and k == 2:  # the hot case: fp32 ring add, vectorises
        a = st[ins[0]]
        c = st[ins[1]]
        for x in range(m):
            dst_row[x] = a[x] + c[x]
        return
    for x in range(m):
        acc = st[ins[0], x]
        for j in range(1, k):
            acc = _combine(acc, st[ins[j], x], op)
            if acc_mode == 1 and j < k - 1:
                acc = _round_one(acc, s + x, mode, p, table, thr, nbits, key)
        dst_row[x] = _round_one(acc, s + x, mode, p, table, thr, nbits, key)


@njit(parallel=True)
def _run_plan_nb(inputs, table_in, decode_in, out, tiles, chunk_ptr, st_round, st_dst, st_kind, st_ptr, st_in,
                 staged, holder, keys, nranks, op, mode, acc_mode, p, table, thr, nbits):
    fast = op == 0 and mode == 0
    for t in prange(tiles.shape[0]):
        c = tiles[t, 0]
        s = tiles[t, 1]
        e = tiles[t, 2]
        m = e - s
        st = np.empty((nranks, m), np.float32)
        for r in range(nranks):
            src = inputs[r]
            if decode_in:
                for x in range(m):
                    st[r, x] = table_in[src[s + x]]
            else:  # float32 buffers arrive as their uint32 bit patterns
                for x in range(m):
                    st[r, x] = np.uint32(src[s + x]).view(np.float32)
        i = chunk_ptr[c]
        end = chunk_ptr[c + 1]
        while i < end:
            j = i
            rnd = st_round[i]
            while j < end and st_round[j] == rnd:
                j += 1
            if staged[rnd]:
                tmp = np.empty((j - i, m), np.float32)
                for q in range(i, j):
                    _step_nb(st, tmp[q - i], st_in[st_ptr[q]:st_ptr[q + 1]], st_kind[q], s, op, mode, acc_mode,
                             p, table, thr, nbits, keys[q])
                for q in range(i, j):
                    st[st_dst[q]] = tmp[q - i]
            else:
                for q in range(i, j):
                    k0 = st_ptr[q]
                    if fast and st_kind[q] == 0 and st_ptr[q + 1] - k0 == 2:  # fp32 add of two copies: vectorises
                        a = st[st_in[k0]]
                        d = st[st_dst[q]]
                        if st_in[k0 + 1] == st_dst[q]:  # the ring's "add what arrived to my copy"
                            for x in range(m):
                                d[x] = a[x] + d[x]
                        else:
                            b = st[st_in[k0 + 1]]
                            for x in range(m):
                                d[x] = a[x] + b[x]
                    else:
                        _step_nb(st, st[st_dst[q]], st_in[k0:st_ptr[q + 1]], st_kind[q], s, op, mode, acc_mode,
                                 p, table, thr, nbits, keys[q])
            i = j
        h = st[holder[c]]
        for x in range(m):
            out[s + x] = h[x]


# ----------------------------------------------------------------------------------------------------------------
# NumPy twin
# ----------------------------------------------------------------------------------------------------------------

def _combine_np(a: np.ndarray, b: np.ndarray, op: int) -> np.ndarray:
    if op == 0:
        return a + b
    if op == 3:
        return a * b
    sa = np.signbit(a)
    if op == 1:
        pick_a = (a > b) | ((a == b) & ~sa)
    else:
        pick_a = (a < b) | ((a == b) & sa)
    pick_a = np.isnan(a) | (pick_a & ~np.isnan(b))
    return np.where(pick_a, a, b)


def _round_np(v: np.ndarray, e0: int, rc, key_site: int) -> np.ndarray:
    """Round float32 ``v`` (elements ``e0..``) to the buffer format with the lead's cast (the independent twin)."""
    if rc.mode == 0:
        return v
    from ..numerics import stochastic
    from ..numerics.cast import cast, decode

    if rc.mode == 3:
        codes = stochastic.cast_sr(v, rc.fmt, saturate=rc.saturate, seed=rc.seed, sr_bits=rc.sr_bits,
                                   site=key_site, offset=e0)
    else:
        codes = cast(v, rc.fmt, rounding=rc.rounding, saturate=rc.saturate)
    return decode(codes, rc.fmt)


def fold_rows(rows: list, kind: int, e0: int, rc, site: int) -> np.ndarray:
    """One step on NumPy rows (float32 values of the inputs' copies, in fold order) -> the new float32 copy."""
    if kind == 1:
        return rows[0].copy()
    acc = rows[0]
    for j in range(1, len(rows)):
        acc = _combine_np(acc, rows[j], rc.op)
        if rc.acc_mode == 1 and j < len(rows) - 1:
            acc = _round_np(acc, e0, rc, site)
    return _round_np(np.asarray(acc, np.float32), e0, rc, site)


def _run_plan_np(state: np.ndarray, plan, bounds: np.ndarray, rc, sites) -> None:
    """Run every round of ``plan`` in order on ``state`` [R, n] (float32, modified in place)."""
    for rnd_steps in plan.by_round:
        results = []
        for q in rnd_steps:
            c = plan.st_chunk[q]
            s, e = bounds[c]
            ins = plan.st_in[plan.st_ptr[q]:plan.st_ptr[q + 1]]
            results.append((plan.st_dst[q], s, e, fold_rows([state[i, s:e] for i in ins], plan.st_kind[q], int(s),
                                                            rc, sites[q])))
        for dst, s, e, val in results:
            state[dst, s:e] = val


run_tiles = _run_plan_nb
run_rounds = _run_plan_np
