"""Hot loops of M:N structured sparsity: a Numba kernel and a bit-identical NumPy twin for each.

Every kernel sees its operand as a C-contiguous 3-D array ``[A, L, B]``: ``L`` is the sparsity axis (``L = G * n``,
``G`` groups of ``n`` consecutive elements), ``A`` the product of the axes before it and ``B`` the product of the axes
after it. Reshaping to that view never copies, so compressing along axis 0 of a ``[K, M]`` stationary operand does
not transpose it. Elements are raw bit patterns (unsigned integers); what counts as "zero" and as "magnitude" comes
from ``magmask``, the format's exponent+mantissa bits.

Selection rule (shared by both paths and by the scalar reference in the tests): in each group the ``m`` positions
with the largest key are kept; equal keys go to the lowest position. Kept positions are reported in ascending order.

Keys:

* ``mode 0`` (prune by magnitude): ``code & magmask``. For sign-magnitude floats this orders by ``|value|``
  (NaN above inf above every finite value; -0 equals +0).
* ``mode 1`` (compress): 2 for a non-zero value, 1 for a zero whose bit pattern is not all zero (-0), 0 for +0.
  Compress keeps every non-zero, then pads with signed zeros before plain zeros, so a round trip preserves bit
  patterns whenever a group has at most ``m`` non-+0 codes.

A group that breaks a rule is reported as a flat index ``(a * G + g) * B + b``: the C order of groups.
"""

from __future__ import annotations

import numpy as np

from .._jit import dispatch, njit, prange

__all__ = ["keep_mask_codes", "keep_mask_scores", "compress_codes", "decompress_codes", "first_violation",
           "unpack_nibbles"]

_CHUNKS = 256  # parallel work items: enough to balance 2 to 64 threads, few enough that per-chunk setup is free


# ---------------------------------------------------------------------------------------------------------------
# Numba
# ---------------------------------------------------------------------------------------------------------------
@njit(inline="always")
def _code_key(c, magmask, mode):
    mag = c & magmask
    if mode == 0:
        return np.int64(mag)
    if mag != 0:
        return np.int64(2)
    if c != 0:
        return np.int64(1)
    return np.int64(0)


@njit(inline="always")
def _taken_codes(codes, a, g, b, n, m, magmask, mode):
    """Bit j set = position j of group (a, g, b) kept."""
    taken = 0
    for _ in range(m):
        best = -1
        best_key = np.int64(0)
        for j in range(n):
            if (taken >> j) & 1:
                continue
            key = _code_key(codes[a, g * n + j, b], magmask, mode)
            if best < 0 or key > best_key:
                best = j
                best_key = key
        taken |= 1 << best
    return taken


@njit(inline="always")
def _taken_scores(score, a, g, b, n, m):
    taken = 0
    for _ in range(m):
        best = -1
        best_key = 0.0
        for j in range(n):
            if (taken >> j) & 1:
                continue
            key = score[a, g * n + j, b]
            if best < 0 or key > best_key:
                best = j
                best_key = key
        taken |= 1 << best
    return taken


@njit(inline="always")
def _chunk(c, chunks, total):
    return (c * total) // chunks, ((c + 1) * total) // chunks


@njit(parallel=True)
def _keep_mask_codes_nb(codes, magmask, m, n, out):
    A, L, B = codes.shape
    G = L // n
    for c in prange(_CHUNKS):
        lo, hi = _chunk(c, _CHUNKS, A * G)
        for ag in range(lo, hi):
            a = ag // G
            g = ag - a * G
            for b in range(B):
                taken = _taken_codes(codes, a, g, b, n, m, magmask, 0)
                for j in range(n):
                    out[a, g * n + j, b] = ((taken >> j) & 1) == 1


@njit(parallel=True)
def _keep_mask_scores_nb(score, m, n, out):
    A, L, B = score.shape
    G = L // n
    for c in prange(_CHUNKS):
        lo, hi = _chunk(c, _CHUNKS, A * G)
        for ag in range(lo, hi):
            a = ag // G
            g = ag - a * G
            for b in range(B):
                taken = _taken_scores(score, a, g, b, n, m)
                for j in range(n):
                    out[a, g * n + j, b] = ((taken >> j) & 1) == 1


@njit(inline="always")
def _lowest_bits(mask, count):
    """The ``count`` lowest set bits of ``mask``."""
    out = 0
    while count > 0 and mask != 0:
        bit = mask & -mask
        out |= bit
        mask ^= bit
        count -= 1
    return out


@njit(parallel=True)
def _compress_codes_nb(codes, magmask, m, n, values, tags):
    # mode-1 keys take three values, so one pass sorting positions into classes replaces the m selection passes
    A, L, B = codes.shape
    G = L // n
    for c in prange(_CHUNKS):
        lo, hi = _chunk(c, _CHUNKS, A * G)
        for ag in range(lo, hi):
            a = ag // G
            g = ag - a * G
            for b in range(B):
                nonzero = 0
                signed_zero = 0
                plain_zero = 0
                for j in range(n):
                    code = codes[a, g * n + j, b]
                    if code & magmask:
                        nonzero |= 1 << j
                    elif code:
                        signed_zero |= 1 << j
                    else:
                        plain_zero |= 1 << j
                taken = _lowest_bits(nonzero, m)
                need = m
                for j in range(n):
                    need -= (taken >> j) & 1
                pad = _lowest_bits(signed_zero, need)
                taken |= pad
                for j in range(n):
                    need -= (pad >> j) & 1
                taken |= _lowest_bits(plain_zero, need)
                s = 0
                for j in range(n):
                    if (taken >> j) & 1:
                        values[a, g * m + s, b] = codes[a, g * n + j, b]
                        tags[a, g * m + s, b] = j
                        s += 1


@njit(parallel=True)
def _compress_codes_wide_nb(codes, magmask, m, n, values, tags):
    """The same selection as _compress_codes_nb, with b innermost (contiguous, vectorisable) for wide B: per-column
    counters replace the bitmasks. Twice as fast for a [K, M] stationary; slower when B is 1."""
    A, L, B = codes.shape
    G = L // n
    for c in prange(_CHUNKS):
        lo, hi = _chunk(c, _CHUNKS, A * G)
        nonzeros = np.empty(B, np.int64)
        signed_zeros = np.empty(B, np.int64)
        plain_zeros = np.empty(B, np.int64)
        slot = np.empty(B, np.int64)
        for ag in range(lo, hi):
            a = ag // G
            g = ag - a * G
            nonzeros[:] = 0
            signed_zeros[:] = 0
            for j in range(n):
                for b in range(B):
                    code = codes[a, g * n + j, b]
                    nonzero = (code & magmask) != 0
                    nonzeros[b] += nonzero
                    signed_zeros[b] += (not nonzero) and code != 0
            for b in range(B):  # how many -0 and +0 entries pad the group
                free = max(m - nonzeros[b], 0)
                take = min(free, signed_zeros[b])
                signed_zeros[b] = take
                plain_zeros[b] = free - take
                slot[b] = 0
            for j in range(n):
                for b in range(B):
                    code = codes[a, g * n + j, b]
                    take = False
                    if code & magmask:
                        take = True
                    elif code:
                        if signed_zeros[b] > 0:
                            take = True
                            signed_zeros[b] -= 1
                    elif plain_zeros[b] > 0:
                        take = True
                        plain_zeros[b] -= 1
                    s = slot[b]
                    if take and s < m:  # s < m always holds for a validated operand; never write out of bounds
                        values[a, g * m + s, b] = code
                        tags[a, g * m + s, b] = j
                        slot[b] = s + 1


_WIDE_B = 8


def _compress_codes_numba(codes, magmask, m, n, values, tags):
    kernel = _compress_codes_wide_nb if codes.shape[2] >= _WIDE_B else _compress_codes_nb
    kernel(codes, magmask, m, n, values, tags)


@njit(parallel=True)
def _decompress_codes_nb(values, tags, m, n, out):
    """Scatter; returns (flat group, reason) of the first bad group or (-1, 0). reason 1: tag >= n, 2: repeated."""
    A, Lc, B = values.shape
    G = Lc // m
    bad = np.full(_CHUNKS, -1, dtype=np.int64)
    why = np.zeros(_CHUNKS, dtype=np.int64)
    for c in prange(_CHUNKS):
        lo, hi = _chunk(c, _CHUNKS, A * G)
        for ag in range(lo, hi):
            if bad[c] >= 0:
                break
            a = ag // G
            g = ag - a * G
            for b in range(B):
                seen = 0
                for s in range(m):
                    t = np.int64(tags[a, g * m + s, b])
                    if t >= n:
                        bad[c] = ag * B + b
                        why[c] = 1
                        break
                    if (seen >> t) & 1:
                        bad[c] = ag * B + b
                        why[c] = 2
                        break
                    seen |= 1 << t
                    out[a, g * n + t, b] = values[a, g * m + s, b]
                if bad[c] >= 0:
                    break
    for c in range(_CHUNKS):
        if bad[c] >= 0:
            return bad[c], why[c]
    return np.int64(-1), np.int64(0)


@njit(parallel=True)
def _first_violation_nb(codes, magmask, m, n):
    """(flat group, non-zero count) of the first group with more than m non-zeros, or (-1, 0)."""
    A, L, B = codes.shape
    G = L // n
    bad = np.full(_CHUNKS, -1, dtype=np.int64)
    cnt = np.zeros(_CHUNKS, dtype=np.int64)
    for c in prange(_CHUNKS):
        lo, hi = _chunk(c, _CHUNKS, A * G)
        for ag in range(lo, hi):
            a = ag // G
            g = ag - a * G
            for b in range(B):
                count = 0
                for j in range(n):
                    if codes[a, g * n + j, b] & magmask:
                        count += 1
                if count > m:
                    bad[c] = ag * B + b
                    cnt[c] = count
                    break
            if bad[c] >= 0:
                break
    for c in range(_CHUNKS):
        if bad[c] >= 0:
            return bad[c], cnt[c]
    return np.int64(-1), np.int64(0)


# ---------------------------------------------------------------------------------------------------------------
# NumPy twins
# ---------------------------------------------------------------------------------------------------------------
def _groups(arr: np.ndarray, n: int) -> np.ndarray:
    A, L, B = arr.shape
    return arr.reshape(A, L // n, n, B)


def _code_keys(codes: np.ndarray, magmask, mode: int) -> np.ndarray:
    mag = codes & codes.dtype.type(magmask)
    if mode == 0:
        return mag.astype(np.int64)
    return np.where(mag != 0, 2, np.where(codes != 0, 1, 0)).astype(np.int64)


def _kept_positions(keys4: np.ndarray, m: int) -> np.ndarray:
    """[A, G, n, B] keys -> [A, G, m, B] kept positions, ascending; ties to the lowest position (stable sort)."""
    order = np.argsort(-keys4, axis=2, kind="stable")[:, :, :m, :]
    return np.sort(order, axis=2)


def _mask_from_positions(pos: np.ndarray, shape4: tuple) -> np.ndarray:
    mask = np.zeros(shape4, dtype=bool)
    np.put_along_axis(mask, pos, True, axis=2)
    return mask


def _keep_mask_codes_np(codes, magmask, m, n, out):
    keys = _groups(_code_keys(codes, magmask, 0), n)
    out[...] = _mask_from_positions(_kept_positions(keys, m), keys.shape).reshape(out.shape)


def _keep_mask_scores_np(score, m, n, out):
    keys = _groups(score, n)
    out[...] = _mask_from_positions(_kept_positions(keys, m), keys.shape).reshape(out.shape)


def _compress_codes_np(codes, magmask, m, n, values, tags):
    pos = _kept_positions(_groups(_code_keys(codes, magmask, 1), n), m)
    values[...] = np.take_along_axis(_groups(codes, n), pos, axis=2).reshape(values.shape)
    tags[...] = pos.reshape(tags.shape)


def _decompress_codes_np(values, tags, m, n, out):
    A, Lc, B = values.shape
    t4 = tags.reshape(A, Lc // m, m, B).astype(np.int64)
    # per group, the first failing slot decides the reason, exactly as the Numba loop meets it
    reason = np.zeros((A, Lc // m, B), dtype=np.int64)
    for s in range(m - 1, -1, -1):
        t = t4[:, :, s, :]
        repeated = np.zeros(t.shape, dtype=bool)
        for r in range(s):
            repeated |= t4[:, :, r, :] == t
        reason = np.where(t >= n, 1, np.where(repeated, 2, reason))
    flat = reason.reshape(-1)
    bad = np.flatnonzero(flat)
    if bad.size:
        return np.int64(bad[0]), np.int64(flat[bad[0]])
    np.put_along_axis(_groups(out, n), t4, values.reshape(t4.shape), axis=2)
    return np.int64(-1), np.int64(0)


def _first_violation_np(codes, magmask, m, n):
    nonzero = (codes & codes.dtype.type(magmask)) != 0
    counts = _groups(nonzero, n).sum(axis=2)  # [A, G, B]
    bad = np.flatnonzero(counts.reshape(-1) > m)
    if bad.size == 0:
        return np.int64(-1), np.int64(0)
    return np.int64(bad[0]), np.int64(counts.reshape(-1)[bad[0]])


@njit(parallel=True)
def _unpack_nibbles_nb(words, out):
    R, W = words.shape
    F = out.shape[1]
    for r in prange(R):
        for w in range(W):
            word = words[r, w]
            for q in range(4):
                i = 4 * w + q
                if i < F:
                    out[r, i] = (word >> (4 * q)) & 0xF


def _unpack_nibbles_np(words, out):
    shifts = np.arange(4, dtype=np.uint16) * np.uint16(4)
    nib = ((words[:, :, None] >> shifts) & np.uint16(0xF)).astype(np.uint8)
    out[...] = nib.reshape(words.shape[0], -1)[:, : out.shape[1]]


keep_mask_codes = dispatch(_keep_mask_codes_nb, _keep_mask_codes_np)
keep_mask_scores = dispatch(_keep_mask_scores_nb, _keep_mask_scores_np)
compress_codes = dispatch(_compress_codes_numba, _compress_codes_np)
decompress_codes = dispatch(_decompress_codes_nb, _decompress_codes_np)
first_violation = dispatch(_first_violation_nb, _first_violation_np)
unpack_nibbles = dispatch(_unpack_nibbles_nb, _unpack_nibbles_np)
