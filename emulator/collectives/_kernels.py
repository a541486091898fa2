"""Hot loops of the collective executor: a Numba kernel and its NumPy twin, bit-identical.

Both run a compiled schedule (:class:`emulator.collectives.executor.Plan`) over the per-rank buffers. The NumPy
twin runs the rounds in order over whole chunks. The Numba kernel works tile by tile (a tile is a slice of one chunk;
every step of a chunk only touches that chunk, so a tile's whole history runs while it sits in cache, and tiles run
in parallel), and does the same arithmetic with less memory traffic: a rank's input is read on first use, a copy
the plan marks dead is reused as the next partial's row, and a chain of ``d <- a + d`` steps runs as one running sum
over the inputs. Steps of one round read the copies as they were before the round; the plan marks the rounds where
a step reads a copy another step writes (recursive doubling's swaps), which are staged.

Values travel as float32 (the exact value of the buffer dtype's code). One step folds its inputs with the op in fp32
and rounds once to the buffer dtype (``accumulate=0``), or rounds after every binary op (``accumulate=1``).
Rounding modes: 0 none (float32 buffers), 1 bfloat16 RNE (bit trick), 2 any format RNE/RTZ through the cast
encoder :func:`encode_f32` and the format's value table, 3 stochastic rounding with the keyed stream: element ``e``
of the buffer, step key ``key`` (from ``(seed, site)``), the SR step of ``_sr_kernels`` (``sr_bits``).
Ops: 0 add, 1 max, 2 min, 3 mul (max/min: NaN wins, and +0 > -0 as in IEEE 754-2019 maximum/minimum).
"""

from __future__ import annotations

import numpy as np

from .._jit import HAVE_NUMBA, njit, prange
from ..errors import ArgumentError
from ..numerics.scalar_kernels import encode_f32, keyed_word, sr_f32

__all__ = ["run_tiles", "run_rounds", "fold_rows", "input_addresses"]


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
    return table[sr_f32(np.int64(bits), w >> np.uint64(64 - n), n, p, thr)]


@njit
def _step_nb(st, where, dst_row, ins, kind, s, op, mode, acc_mode, p, table, thr, nbits, key):
    m = dst_row.size
    if kind == 1:
        src = st[where[ins[0]]]
        for x in range(m):
            dst_row[x] = src[x]
        return
    k = ins.size
    if op == 0 and mode == 0 and k == 2:  # the hot case: fp32 ring add, vectorises
        a = st[where[ins[0]]]
        c = st[where[ins[1]]]
        for x in range(m):
            dst_row[x] = a[x] + c[x]
        return
    for x in range(m):
        acc = st[where[ins[0]], x]
        for j in range(1, k):
            acc = _combine(acc, st[where[ins[j]], x], op)
            if acc_mode == 1 and j < k - 1:
                acc = _round_one(acc, s + x, mode, p, table, thr, nbits, key)
        dst_row[x] = _round_one(acc, s + x, mode, p, table, thr, nbits, key)


if HAVE_NUMBA:
    from numba import carray, types
    from numba.extending import intrinsic

    @intrinsic
    def _pointer(typingctx, addr, like):
        """A raw pointer of ``like``'s dtype at the integer address ``addr``."""
        ptr = types.CPointer(like.dtype)

        def codegen(context, builder, sig, args):
            return builder.inttoptr(args[0], context.get_value_type(ptr))

        return ptr(addr, like), codegen

    @njit(inline="always")
    def _row(addrs, like, r, s, m):
        """Elements s..s+m of rank r's input, as an array over its memory (``addrs[r]``: the address of its first
        element; ``like``: any array of the inputs' dtype). A raw view has no reference count, so the threads never
        contend on one, which a list of arrays (one atomic increment per access) made 3x slower than a 2-D stack."""
        return carray(_pointer(addrs[r] + s * like.itemsize, like), (m,))


def input_addresses(values) -> tuple[np.ndarray, np.ndarray]:
    """(int64 address of each rank's first element, an empty array of their dtype) for :func:`run_tiles`. ``values``
    is a C-contiguous 2-D array or a list of C-contiguous 1-D arrays of one dtype, kept alive by the caller."""
    if isinstance(values, np.ndarray):
        if values.ndim != 2 or not values.flags.c_contiguous:
            raise ArgumentError(f"input_addresses: a stacked input must be a C-contiguous 2-D array, got "
                                f"{values.shape}")
        base, step = values.ctypes.data, values.strides[0]
        return base + step * np.arange(values.shape[0], dtype=np.int64), np.empty(0, values.dtype)
    first = values[0]
    for v in values:  # the kernel reads raw memory: a wrong dtype or a strided view would be read as garbage
        if v.dtype != first.dtype or not v.flags.c_contiguous or v.size < first.size:
            raise ArgumentError(f"input_addresses: every rank's buffer must be C-contiguous {first.dtype} with "
                             f"{first.size} elements, got {v.dtype} {v.shape}")
    return np.array([v.ctypes.data for v in values], np.int64), np.empty(0, first.dtype)


@njit(inline="always")
def _value(src, x, table_in, decode_in):
    """The float32 value of input element ``src[x]``: ``decode_in`` 0 = float32 buffers, 1 = codes of a narrow
    format (a table lookup), 2 = bfloat16 codes (the top half of the fp32 pattern: a shift, which vectorises)."""
    if decode_in == 2:
        return np.uint32(np.uint32(src[x]) << np.uint32(16)).view(np.float32)
    if decode_in == 1:
        return table_in[np.intp(src[x])]
    return np.float32(src[x])


@njit
def _load(st, where, loaded, r, addrs, like, table_in, decode_in, s):
    """Bring rank ``r``'s input copy of the tile into the state on first use (lazy: rows never read stay cold)."""
    if loaded[r]:
        return
    row = st[where[r]]
    src = _row(addrs, like, r, s, row.size)
    for x in range(row.size):
        row[x] = _value(src, x, table_in, decode_in)
    loaded[r] = True


@njit
def _bf16_rne_row(row):
    """Round a float32 row to bfloat16 (RNE, canonical NaN) in place, on the bit patterns (branch-free)."""
    du = row.view(np.uint32)
    for x in range(du.size):
        b = du[x]
        r = (b + np.uint32(0x7FFF) + ((b >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
        nan = (b & np.uint32(0x80000000)) | np.uint32(0x7FC00000)
        du[x] = nan if (b & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000) else r


@njit
def _run_chain(st, where, loaded, q, k, st_dst, st_in, st_ptr, st_reuse, addrs, like, table_in, decode_in, s,
               bf16):
    """Steps q..q+k-1 of a chain (see ``executor._chains``) as one running sum in the last rank's row."""
    a = st_in[st_ptr[q]]
    last = st_dst[q + k - 1]
    _load(st, where, loaded, a, addrs, like, table_in, decode_in, s)
    if st_reuse[q]:  # a's copy is dead: its row becomes the running sum
        tmp = where[last]
        where[last] = where[a]
        where[a] = tmp
    else:
        st[where[last]] = st[where[a]]
    row = st[where[last]]
    m = row.size
    for j in range(k):
        d = st_dst[q + j]
        src = _row(addrs, like, d, s, m)
        for x in range(m):
            row[x] += _value(src, x, table_in, decode_in)
        if bf16:
            _bf16_rne_row(row)
        loaded[d] = True


@njit(parallel=True)
def _run_plan_nb(addrs, like, table_in, decode_in, out, tiles, chunk_ptr, st_round, st_dst, st_kind, st_ptr, st_in,
                 st_reuse, st_chain, staged, holder, keys, nranks, op, mode, acc_mode, p, table, thr, nbits):
    fast = op == 0 and (mode == 0 or mode == 1)
    bf16 = mode == 1
    ntiles = tiles.shape[0]
    width = 1
    for t in range(ntiles):
        width = max(width, tiles[t, 2] - tiles[t, 1])
    workers = min(ntiles, 64)
    for w in prange(workers):  # one scratch per worker: no allocation (and no page faults) per tile
        scratch = np.empty(nranks * width, np.float32)
        loaded = np.zeros(nranks, np.bool_)
        where = np.arange(nranks)  # rank -> its row in the scratch (rows move when a dead copy is reused)
        for t in range(w, ntiles, workers):
            c = tiles[t, 0]
            s = tiles[t, 1]
            m = tiles[t, 2] - s
            st = scratch[:nranks * m].reshape((nranks, m))
            loaded[:] = False
            for r in range(nranks):
                where[r] = r
            i = chunk_ptr[c]
            end = chunk_ptr[c + 1]
            while i < end:
                if fast and st_chain[i] > 0:
                    _run_chain(st, where, loaded, i, st_chain[i], st_dst, st_in, st_ptr, st_reuse, addrs, like,
                               table_in, decode_in, s, bf16)
                    i += st_chain[i]
                    continue
                j = i
                rnd = st_round[i]
                while j < end and st_round[j] == rnd and not (fast and st_chain[j] > 0):
                    j += 1
                if staged[rnd]:
                    for k in range(st_ptr[i], st_ptr[j]):
                        _load(st, where, loaded, st_in[k], addrs, like, table_in, decode_in, s)
                    tmp = np.empty((j - i, m), np.float32)
                    for q in range(i, j):
                        _step_nb(st, where, tmp[q - i], st_in[st_ptr[q]:st_ptr[q + 1]], st_kind[q], s, op, mode,
                                 acc_mode, p, table, thr, nbits, keys[q])
                    for q in range(i, j):
                        st[where[st_dst[q]]] = tmp[q - i]
                        loaded[st_dst[q]] = True
                else:
                    for q in range(i, j):
                        k0 = st_ptr[q]
                        d = st_dst[q]
                        if fast and st_kind[q] == 0 and st_ptr[q + 1] - k0 == 2 and st_in[k0 + 1] == d:
                            a = st_in[k0]
                            if not loaded[a]:
                                _load(st, where, loaded, a, addrs, like, table_in, decode_in, s)
                            own = st[where[d]]
                            if st_reuse[q]:  # a's copy is dead after this step: add into it, d takes its row
                                tmp_row = where[d]
                                where[d] = where[a]
                                where[a] = tmp_row
                            arow = st[where[a]] if not st_reuse[q] else st[where[d]]
                            drow = st[where[d]]
                            if loaded[d]:
                                for x in range(m):
                                    drow[x] = arow[x] + own[x]
                            else:
                                src = _row(addrs, like, d, s, m)
                                for x in range(m):
                                    drow[x] = arow[x] + _value(src, x, table_in, decode_in)
                            loaded[d] = True
                            if bf16:
                                _bf16_rne_row(drow)
                        else:
                            for k in range(k0, st_ptr[q + 1]):
                                _load(st, where, loaded, st_in[k], addrs, like, table_in, decode_in, s)
                            _step_nb(st, where, st[where[d]], st_in[k0:st_ptr[q + 1]], st_kind[q], s, op, mode,
                                     acc_mode, p, table, thr, nbits, keys[q])
                            loaded[d] = True
                i = j
            h = holder[c]
            _load(st, where, loaded, h, addrs, like, table_in, decode_in, s)
            hrow = st[where[h]]
            dst_out = out[s:s + m]
            for x in range(m):
                dst_out[x] = hrow[x]


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
