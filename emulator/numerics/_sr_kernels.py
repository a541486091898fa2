"""Hot loops of stochastic rounding: Numba kernels and their NumPy twins, bit-identical.

Stochastic rounding of one value is "the round-toward-zero code, plus one magnitude step when
``F + r >= 2**n``", where ``F`` is the dropped fraction written as an ``n``-bit integer and ``r`` is ``n`` random
bits (see :mod:`emulator.numerics.stochastic` for the full definition). The RTZ code, and every special case (NaN,
inf, zero, negative to an unsigned format), comes from the cast encoder :func:`encode_f32` / :func:`encode_f64` of
``_cast_kernels``; these kernels only add the dropped-fraction test and the overflow of the extra step.

The random bits of the keyed stream are made *inside* the loops (``word = mix64(key ^ ((index + 1) * G))``), so a
16M-element cast makes one pass over memory, and element ``i`` gets the same bits however the loop is split.

Parameter tuple ``p``: the cast encoder's (``cast_params(fmt, saturate, rtz=True, ...)``); ``thr``: the bit pattern
(of the input's float type) of ``max_finite + ulp(max_finite)``, capped at the pattern of +inf: inputs at or above it
overflow whatever the random bits.
"""

from __future__ import annotations

import numpy as np

from .._jit import dispatch, njit, prange
from ._cast_kernels import _bit_length, _bit_length_np, _encode_numpy, encode_f32, encode_f64

__all__ = ["GOLDEN", "MIX1", "MIX2", "keyed_words", "sr_keyed", "sr_with_bits"]

GOLDEN = 0x9E3779B97F4A7C15  # 2^64 / golden ratio: the Weyl step of SplitMix64
MIX1 = 0xBF58476D1CE4E5B9  # SplitMix64 finaliser multipliers (Stafford's Mix13)
MIX2 = 0x94D049BB133111EB
H1 = 0x21F0AAAD  # the two multipliers of the 32-bit lane hash (hash-prospector's best two-round 32-bit finaliser)
H2 = 0x735A2D97
_MASK64 = 0xFFFFFFFFFFFFFFFF
_M32 = 0xFFFFFFFF
# _NO_CACHE_WHY: the two vectorised SR kernels are compiled afresh in each process (~0.6 s each, on first use):
# loaded from Numba's on-disk cache they measured 2x slower than freshly compiled (numba 0.6x, this machine).
_SERIAL_BELOW = 8192  # elements: below this the threaded kernels cost more to launch than to run


# --------------------------------------------------------------------------------------------------------------------
# the keyed stream (definition: emulator/numerics/keyed.py)
# --------------------------------------------------------------------------------------------------------------------

@njit(inline="always")
def _mix64(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
    return z ^ (z >> np.uint64(31))


@njit(inline="always")
def block_key(key, hi, half):
    """The 64-bit key of half ``half`` (0: top 32 bits, 1: low 32) of the words of elements ``hi * 2^32 ..``."""
    return _mix64(key ^ ((np.uint64(2) * hi + np.uint64(half + 1)) * np.uint64(GOLDEN)))


@njit(inline="always")
def hash32(x, b):
    """The lane hash of ``x = lo + a`` (uint32) with the key's other half ``b`` xored in between the two rounds.
    Every step is a 32-bit operation (the truncations keep Numba's integer promotion from widening them), so the
    loops that call it vectorise with 8 lanes on AVX2 (vpmulld)."""
    u32 = np.uint32
    x = u32(x ^ (x >> u32(16)))
    x = u32(x * u32(H1))
    x = u32(x ^ b)
    x = u32(x ^ (x >> u32(15)))
    x = u32(x * u32(H2))
    return u32(x ^ (x >> u32(15)))


@njit(inline="always")
def half_word(k, lo):
    """The 32-bit half word of element ``lo`` (uint32, the index mod 2^32) under block key ``k``."""
    return hash32(np.uint32(lo + np.uint32(k & np.uint64(_M32))), np.uint32(k >> np.uint64(32)))


@njit(inline="always")
def keyed_word(key, index):
    """The 64-bit word of element ``index`` (uint64) of the stream with key ``key`` (uint64)."""
    hi = index >> np.uint64(32)
    lo = np.uint32(index & np.uint64(_M32))
    top = half_word(block_key(key, hi, 0), lo)
    return (np.uint64(top) << np.uint64(32)) | np.uint64(half_word(block_key(key, hi, 1), lo))


@njit(inline="always")
def chunk_split(offset, start, stop):
    """Where the global index ``offset + i`` of a chunk ``[start, stop)`` crosses a multiple of 2^32 (``stop`` if it
    does not): the chunk's two parts have different block keys. Returns ``(cut, hi)``, ``hi`` the first part's."""
    g = offset + np.uint64(start)
    room = np.int64(np.uint64(1 << 32) - (g & np.uint64(_M32)))
    return start + min(stop - start, room), g >> np.uint64(32)


@njit(parallel=True)
def _keyed_words_nb(key, index, out):
    for i in prange(index.size):
        out[i] = keyed_word(key, np.uint64(index[i]))


def mix64_array(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on a uint64 array (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
    return z ^ (z >> np.uint64(31))


def _half_words_np(key: int, hi: np.ndarray, lo: np.ndarray, half: int) -> np.ndarray:
    k = mix64_array(np.uint64(key) ^ ((np.uint64(2) * hi + np.uint64(half + 1)) * np.uint64(GOLDEN)))
    x = lo + (k & np.uint64(_M32)).astype(np.uint32)
    x ^= x >> np.uint32(16)
    x *= np.uint32(H1)
    x ^= (k >> np.uint64(32)).astype(np.uint32)
    x ^= x >> np.uint32(15)
    x *= np.uint32(H2)
    return x ^ (x >> np.uint32(15))


def _keyed_words_np(key, index, out):
    idx = index.astype(np.uint64)
    hi, lo = idx >> np.uint64(32), (idx & np.uint64(_M32)).astype(np.uint32)
    with np.errstate(over="ignore"):
        top = _half_words_np(key, hi, lo, 0).astype(np.uint64)
        out[...] = (top << np.uint64(32)) | _half_words_np(key, hi, lo, 1)


def top_words_np(key: int, offset: int, size: int) -> np.ndarray:
    """The top 32 bits (uint32) of the words of elements ``offset .. offset + size - 1`` (NumPy)."""
    idx = np.arange(size, dtype=np.uint64) + np.uint64(offset)
    with np.errstate(over="ignore"):
        return _half_words_np(key, idx >> np.uint64(32), (idx & np.uint64(_M32)).astype(np.uint32), 0)


keyed_words = dispatch(_keyed_words_nb, _keyed_words_np)
keyed_words.__doc__ = """Fill ``out`` (uint64) with the keyed words of the uint64/int64 ``index`` array."""


# --------------------------------------------------------------------------------------------------------------------
# scalar core (Numba)
# --------------------------------------------------------------------------------------------------------------------

@njit
def _over_mag(p):
    """Magnitude code an overflowing finite value takes (the encoder's non-RTZ rule)."""
    if p.saturate == 1 or p.nan_kind == 2:
        return p.max_mag
    if p.nan_kind == 0:
        return p.inf_mag
    return p.nan_mag


@njit
def _step_up(code, sig, k, e, r, n, p):
    """``code`` (the RTZ code of (-1)^s * sig * 2^k, e = floor(log2)) plus one step if F + r >= 2^n."""
    mbits = p.mantissa_bits
    emin = p.emin
    if p.has_subnormals == 0 and e < emin:  # below the smallest value of a format without zero (e8m0): no lower one
        return code
    et = e if e > emin else emin
    d = et - mbits - k
    if d <= 0:
        return code  # exactly representable
    if d >= 63:
        rem = np.uint64(sig)
    else:
        rem = np.uint64(sig) & ((np.uint64(1) << np.uint64(d)) - np.uint64(1))
    if n >= d:
        frac = rem << np.uint64(n - d)
    elif d - n >= 64:
        frac = np.uint64(0)
    else:
        frac = rem >> np.uint64(d - n)
    if frac == 0:
        return code
    nmask = np.uint64(_MASK64) >> np.uint64(64 - n)
    if r <= nmask - frac:  # r + frac < 2^n
        return code
    pad = p.pad_bits
    c = code >> pad
    if p.sign_bit != 0:
        mag = c & (p.sign_bit - 1)
        sign = c & p.sign_bit
    else:
        mag = c
        sign = 0
    if mag >= p.max_mag:
        mag = _over_mag(p)
    else:
        mag += 1
    return (sign | mag) << pad


@njit
def _sr_f32(b, r, n, p, thr):
    """SR code of the fp32 bit pattern ``b`` (int64) with ``n``-bit random integer ``r`` (uint64)."""
    code = encode_f32(b, p)
    a = b & 0x7FFFFFFF
    if a == 0 or a >= 0x7F800000:
        return code
    neg = (b >> 31) & 1
    if p.sign_bit == 0 and neg == 1:
        return code
    if a >= thr:
        return ((p.sign_bit if neg else 0) | _over_mag(p)) << p.pad_bits
    ex = a >> 23
    m = a & 0x7FFFFF
    if ex == 0:
        return _step_up(code, m, np.int64(-149), np.int64(-150) + _bit_length(m), r, n, p)
    return _step_up(code, m | 0x800000, ex - 150, ex - 127, r, n, p)


@njit
def _sr_f64(b, r, n, p, thr):
    """SR code of the fp64 bit pattern ``b`` (int64), exact-value rounding."""
    code = encode_f64(b, p)
    a = b & 0x7FFFFFFFFFFFFFFF
    if a == 0 or a >= 0x7FF0000000000000:
        return code
    neg = (b >> 63) & 1
    if p.sign_bit == 0 and neg == 1:
        return code
    if a >= thr:
        return ((p.sign_bit if neg else 0) | _over_mag(p)) << p.pad_bits
    ex = a >> 52
    m = a & 0xFFFFFFFFFFFFF
    if ex == 0:
        return _step_up(code, m, np.int64(-1074), np.int64(-1075) + _bit_length(m), r, n, p)
    return _step_up(code, m | 0x10000000000000, ex - 1075, ex - 1023, r, n, p)


# --------------------------------------------------------------------------------------------------------------------
# array kernels (Numba)
# --------------------------------------------------------------------------------------------------------------------

@njit(parallel=True)
def _sr_keyed_general(bits, out, key, offset, nbits, p, thr, is64):
    """Any input, any format. ``nbits`` 0 = per element min(d, 64) bits (the top bits of the word)."""
    for i in prange(bits.size):
        w = keyed_word(key, offset + np.uint64(i))
        b = np.int64(bits[i])
        if is64:
            n = 64 if nbits == 0 else nbits
            out[i] = _sr_f64(b, w >> np.uint64(64 - n), n, p, thr)
        else:
            n = 64 if nbits == 0 else nbits
            out[i] = _sr_f32(b & 0xFFFFFFFF, w >> np.uint64(64 - n), n, p, thr)


@njit(parallel=True, cache=False)  # see _NO_CACHE_WHY
def _sr_keyed_fast(bits, out, key, offset, n, p):
    """fp32 input, signed target with subnormals, 1 <= n <= 64: every element as if it were a normal fp32 number
    below the overflow threshold, by branch-free integer arithmetic (so the loop vectorises). In the target's normal
    range the magnitude is the bit pattern shifted (the carry of the extra step walks into the exponent, and one
    step past max finite lands on the inf/NaN code); below it, the significand shifted by a per-element ``d``.
    :func:`_sr_fixup` then redoes the rest (zeros, fp32 subnormals, overflow, inf, NaN)."""
    mbits = p.mantissa_bits
    d0 = np.uint64(23 - mbits)
    rebias = np.uint64((127 - (1 - p.emin)) << mbits)
    exmin = np.uint64(p.emin + 127)  # fp32 exponent field of the target's smallest normal
    maxmag = np.uint64(p.max_mag)
    # one step past max is the overflow code itself (inf, or e4m3fn's NaN) unless the format saturates
    back = np.uint64(1 if _over_mag(p) == p.max_mag else 0)
    sbpos = np.uint64(0)
    sb = p.sign_bit
    while sb > 1:
        sb >>= 1
        sbpos += np.uint64(1)
    pad = np.uint64(p.pad_bits)
    un = np.uint64(n)
    rshift = np.uint64(64 - n)
    nmask = np.uint64(_MASK64) >> rshift
    chunk = _CHUNK
    for c in prange((bits.size + chunk - 1) // chunk):
        start = c * chunk
        stop = min(bits.size, start + chunk)
        cut, hi = chunk_split(offset, start, stop)
        for part in range(2):
            if part == 1:  # the global index crossed a multiple of 2^32: the next block's key, lo from 0
                s0, s1, k = cut, stop, block_key(key, hi + np.uint64(1), 0)
                base = np.uint32(k)
            else:
                s0, s1, k = start, cut, block_key(key, hi, 0)
                base = np.uint32(np.uint32(offset + np.uint64(start)) + np.uint32(k))
            kb = np.uint32(k >> np.uint64(32))
            for j in range(s1 - s0):
                ui = np.uint64(s0 + j)
                b = np.uint64(bits[ui])
                a = b & np.uint64(0x7FFFFFFF)
                ex = a >> np.uint64(23)
                sig = (a & np.uint64(0x7FFFFF)) | np.uint64(0x800000)
                below = ex < exmin
                d = d0 + (exmin - ex if below else np.uint64(0))
                dc = min(d, np.uint64(63))
                rem = sig & ((np.uint64(1) << dc) - np.uint64(1))
                mag = (sig >> dc) if below else (a >> d0) - rebias
                frac = (rem << (un - d)) if d <= un else (rem >> min(d - un, np.uint64(63)))
                # the top half word only: exact while min(n, d) <= 32 (the caller redoes the others)
                r = (np.uint64(hash32(np.uint32(base + np.uint32(j)), kb)) << np.uint64(32)) >> rshift
                mag += np.uint64(frac > nmask - r)
                mag -= np.uint64(mag > maxmag) & back
                out[ui] = (((b >> np.uint64(31)) << sbpos) | mag) << pad


_CHUNK = 1 << 14  # elements per task of the normal-range kernels (the stream index advances by one add inside it)
_normal_kernels: dict = {}
_FEW_OUTSIDE = 16  # below 1/16 of the elements outside the normal range, the fused fix-up pays (measured: e4m3fn)


def _normal_kernel(n: int, p: tuple):
    """The normal-range kernel for target ``p`` and ``n`` random bits, compiled once per process with its constants
    frozen in (Numba treats closure variables as compile-time constants, so LLVM folds every shift, mask and select
    that does not apply to this format: 2x faster than passing them as arguments).

    It covers every array for a target with fp32's exponent range (bf16, tf32); for narrower targets, the elements
    whose magnitude pattern lies outside ``[lo_b, lo_b + span_b)`` (the target's normal range: zeros, subnormals,
    overflow, inf, NaN) are redone with the general :func:`_sr_f32` chunk by chunk, while the chunk is in cache (the
    caller sends here only arrays with few such elements). Round-toward-zero plus the SR step is one
    add: with ``d`` dropped bits and ``m = min(n, d)`` random bits (with ``n >= d`` the fraction's low ``n - d`` bits
    are zero, so only the top ``d`` random bits can carry), ``mag = ((a & ~low) + (r << (d - m))) >> d - rebias``
    where ``low`` masks the ``d - m`` fraction bits too fine to matter; the carry walks into the exponent, and one
    step past max finite lands on the inf/NaN code (or steps back when the format saturates). NaN inputs take the
    encoder's NaN code. The random bits are the top ``d`` of each element's top half word (``d <= 23``)."""
    key = (n, p)
    kern = _normal_kernels.get(key)
    if kern is not None:
        return kern
    u32 = np.uint32
    d = 23 - p.mantissa_bits
    m = min(n, d)
    low = (1 << (d - m)) - 1
    hmask, rmask = u32(0x7FFFFFFF & ~low), u32(((1 << d) - 1) & ~low)
    ud, rebias, maxmag = u32(d), u32((127 - (1 - p.emin)) << p.mantissa_bits), u32(p.max_mag)
    back = u32(1 if _over_mag_py(p) == p.max_mag else 0)
    sbpos, pad = u32(max(p.sign_bit.bit_length() - 1, 0)), u32(p.pad_bits)
    # NaN (only bf16/tf32 inputs can hold one here): the payload truncated and forced non-zero when the encoder keeps
    # payloads (p.keep_payload), else the canonical code; ``keep`` is an and-mask: both cases are one branch-free formula
    keep = u32(0xFFFFFFFF if p.keep_payload else 0)
    nan_canon, nan_mask = u32(0 if p.keep_payload else p.nan_mag), u32((1 << p.mantissa_bits) - 1)
    chunk, rshift = _CHUNK, u32(32 - d)
    fix = p.emin != -126  # formats narrower than fp32's exponent range: some inputs need the general encoder

    @njit(inline="always")
    def seg(bits, out, start, stop, base, kb):
        """Elements ``start .. stop - 1``, whose half-word hash inputs are ``base + j`` (one block key)."""
        for j in range(stop - start):
            ui = np.uint64(start + j)  # an unsigned index: no negative-index wrap-around, the loads stay contiguous
            b = bits[ui]
            a = b & u32(0x7FFFFFFF)
            r = (hash32(u32(base + u32(j)), kb) >> rshift) & rmask
            mag = (((a & hmask) + r) >> ud) - rebias
            mag -= u32(mag > maxmag) & back
            top = a >> ud
            nan_mag = ((top | u32((top & nan_mask) == u32(0))) & keep) | nan_canon
            mag = nan_mag if a > u32(0x7F800000) else mag
            out[ui] = (((b >> u32(31)) << sbpos) | mag) << pad

    @njit(parallel=True, cache=False)  # see _NO_CACHE_WHY; a closure cannot be cached anyway
    def kern(bits, out, key, offset, pp, thr, lo_b, span_b):
        size = bits.size
        for c in prange((size + chunk - 1) // chunk):
            start = c * chunk
            stop = min(size, start + chunk)
            cut, hi = chunk_split(offset, start, stop)
            k = block_key(key, hi, 0)
            seg(bits, out, start, cut, u32(u32(offset + np.uint64(start)) + u32(k)), u32(k >> np.uint64(32)))
            if cut < stop:  # the global index crossed a multiple of 2^32: the next block's key, lo from 0
                k = block_key(key, hi + np.uint64(1), 0)
                seg(bits, out, cut, stop, u32(k), u32(k >> np.uint64(32)))
            if fix:
                # redo the chunk's few elements outside the target's normal range while they are still in cache
                for i in range(start, stop):
                    ui = np.uint64(i)
                    if (bits[ui] & u32(0x7FFFFFFF)) - lo_b >= span_b:
                        w = keyed_word(key, offset + ui)
                        out[ui] = _sr_f32(np.int64(bits[ui]), w >> np.uint64(64 - n), n, pp, thr)

    _normal_kernels[key] = kern
    return kern


@njit(parallel=True)
def _count_outside(bits, lo, span):
    """How many fp32 patterns have a magnitude outside [lo, lo + span) (a flat loop: it vectorises)."""
    n = 0
    for i in prange(bits.size):
        n += np.int64((bits[i] & np.uint32(0x7FFFFFFF)) - lo >= span)
    return n


@njit(parallel=True)
def _sr_fixup(bits, out, key, offset, n_slow, p, thr, lo, span):
    """Redo, with the general :func:`_sr_f32`, the elements whose magnitude pattern lies outside [lo, lo + span)
    (those the branch-free kernel does not cover). ``n_slow`` is 64 when the caller asked for all dropped bits."""
    lo_b = np.uint32(lo)
    span_b = np.uint32(span)
    for i in prange(bits.size):
        if (bits[i] & np.uint32(0x7FFFFFFF)) - lo_b >= span_b:
            w = keyed_word(key, offset + np.uint64(i))
            out[i] = _sr_f32(np.int64(bits[i]), w >> np.uint64(64 - n_slow), n_slow, p, thr)


@njit
def _sr_keyed_serial(bits, out, key, offset, nbits, p, thr, is64):
    """:func:`_sr_keyed_general` without threads: small arrays (a thread launch costs more than the work)."""
    n = 64 if nbits == 0 else nbits
    for i in range(bits.size):
        w = keyed_word(key, offset + np.uint64(i))
        if is64:
            out[i] = _sr_f64(np.int64(bits[i]), w >> np.uint64(64 - n), n, p, thr)
        else:
            out[i] = _sr_f32(np.int64(bits[i]) & 0xFFFFFFFF, w >> np.uint64(64 - n), n, p, thr)


@njit(parallel=True)
def _sr_bits_nb(bits, rbits, out, n, p, thr, is64):
    for i in prange(bits.size):
        if is64:
            out[i] = _sr_f64(np.int64(bits[i]), np.uint64(rbits[i]), n, p, thr)
        else:
            out[i] = _sr_f32(np.int64(bits[i]) & 0xFFFFFFFF, np.uint64(rbits[i]), n, p, thr)


def _sr_keyed_numba(x, out, key, offset, nbits, p, thr, minnorm):
    flat_out = out.reshape(-1)
    if x.size < _SERIAL_BELOW:
        bits = x.reshape(-1).view(np.uint32 if x.dtype == np.float32 else np.int64)
        _sr_keyed_serial(bits, flat_out, np.uint64(key), np.uint64(offset), nbits, p, thr, x.dtype != np.float32)
        return
    if x.dtype == np.float32:
        bits = x.reshape(-1).view(np.uint32)
        if p.has_subnormals == 1 and p.sign_bit != 0 and p.mantissa_bits < 23:  # signed, subnormals, narrower than fp32
            n = nbits if nbits else 64
            k = np.uint64(key)
            off = np.uint64(offset)
            # bfloat16, tfloat32 (fp32's exponent range): the normal-range arithmetic is right for every input
            # (zeros, fp32 subnormals, inf, overflow, NaN); other formats: when every element is a normal of the target
            # other formats: the few elements outside the target's normal range are redone in the same pass; when
            # many are (more than 1/_FEW_OUTSIDE) the per-element-shift kernel is faster than the general encoder
            lo_b, span_b = np.uint32(minnorm), np.uint32(thr - minnorm)
            if p.emin == -126 or _count_outside(bits, lo_b, span_b) * _FEW_OUTSIDE <= bits.size:
                _normal_kernel(n, p)(bits, flat_out, k, off, p, thr, lo_b, span_b)
                return
            _sr_keyed_fast(bits, flat_out, k, off, n, p)
            # the fast kernel uses the top half word: exact where min(n, d) <= 32, d = the element's dropped bits
            lo = max(p.emin + 127 + 23 - p.mantissa_bits - 32, 1) << 23 if n > 32 else 0x00800000
            if _count_outside(bits, np.uint32(lo), np.uint32(thr - lo)):
                _sr_fixup(bits, flat_out, k, off, n, p, thr, lo, thr - lo)
            return
        _sr_keyed_general(bits, flat_out, np.uint64(key), np.uint64(offset), nbits, p, thr, False)
    else:
        _sr_keyed_general(x.reshape(-1).view(np.int64), flat_out, np.uint64(key), np.uint64(offset), nbits, p, thr,
                          True)


def _sr_bits_numba(x, rbits, out, n, p, thr):
    if x.dtype == np.float32:
        _sr_bits_nb(x.reshape(-1).view(np.uint32), rbits.reshape(-1), out.reshape(-1), n, p, thr, False)
    else:
        _sr_bits_nb(x.reshape(-1).view(np.int64), rbits.reshape(-1), out.reshape(-1), n, p, thr, True)


# --------------------------------------------------------------------------------------------------------------------
# NumPy twin
# --------------------------------------------------------------------------------------------------------------------

def _sr_numpy_core(x: np.ndarray, r: np.ndarray, n: np.ndarray, out: np.ndarray, p: tuple, thr: int) -> None:
    """Vectorised twin of :func:`_sr_f32` / :func:`_sr_f64`; ``r`` uint64 and ``n`` int64 arrays (flat)."""
    flat_out = out.reshape(-1)
    _encode_numpy(x, flat_out, p)
    code = flat_out.astype(np.int64)
    if x.dtype == np.float32:
        b = x.reshape(-1).view(np.uint32).astype(np.int64)
        a = b & 0x7FFFFFFF
        neg = (b >> 31) & 1
        special, mbits_in, bias_off, exmax = a >= 0x7F800000, 23, 150, 0xFF
    else:
        b = x.reshape(-1).view(np.int64)
        a = b & 0x7FFFFFFFFFFFFFFF
        neg = (b >> 63) & 1
        special, mbits_in, bias_off, exmax = a >= 0x7FF0000000000000, 52, 1075, 0x7FF
    ex = a >> mbits_in
    m = a & ((1 << mbits_in) - 1)
    sub = ex == 0
    sig = np.where(sub, m, m | (1 << mbits_in))
    k = np.where(sub, 1 - bias_off, ex - bias_off)
    e = k + _bit_length_np(sig) - 1
    live = (a != 0) & ~special & ~((p.sign_bit == 0) & (neg == 1))
    sign = np.where(neg == 1, p.sign_bit, 0)
    over_code = (sign | _over_mag_py(p)) << p.pad_bits
    overflow = live & (a >= thr)
    live &= ~overflow
    if p.has_subnormals == 0:
        live &= e >= p.emin
    et = np.maximum(e, p.emin)
    d = et - p.mantissa_bits - k
    live &= d > 0
    dc = np.clip(d, 0, 62)
    rem = np.where(d >= 63, sig, sig & ((np.int64(1) << dc) - 1)).astype(np.uint64)
    left = np.clip(n - d, 0, 63).astype(np.uint64)
    right = np.clip(d - n, 0, 63).astype(np.uint64)
    frac = np.where(n >= d, rem << left, np.where(d - n >= 64, np.uint64(0), rem >> right))
    nmask = np.uint64(_MASK64) >> (64 - n).astype(np.uint64)
    up = live & (frac != 0) & (r > nmask - frac)
    c = code >> p.pad_bits
    mag = c & (p.sign_bit - 1) if p.sign_bit else c
    csign = c & p.sign_bit
    stepped = np.where(mag >= p.max_mag, csign | _over_mag_py(p), c + 1) << p.pad_bits
    res = np.where(overflow, over_code, np.where(up, stepped, code))
    flat_out[...] = res.astype(out.dtype)


def _over_mag_py(p: tuple) -> int:
    if p.saturate == 1 or p.nan_kind == 2:
        return p.max_mag
    if p.nan_kind == 0:
        return p.inf_mag
    return p.nan_mag


def _sr_keyed_numpy(x, out, key, offset, nbits, p, thr, minnorm):
    size = x.size
    words = np.empty(size, np.uint64)
    _keyed_words_np(key, np.arange(offset, offset + size, dtype=np.uint64), words)
    n = 64 if nbits == 0 else nbits
    _sr_numpy_core(x, words >> np.uint64(64 - n), np.full(size, n, np.int64), out, p, thr)


def _sr_bits_numpy(x, rbits, out, n, p, thr):
    _sr_numpy_core(x, rbits.reshape(-1).astype(np.uint64), np.full(x.size, n, np.int64), out, p, thr)


sr_keyed = dispatch(_sr_keyed_numba, _sr_keyed_numpy)
sr_keyed.__doc__ = """SR of C-contiguous float32/float64 ``x`` into ``out`` with the keyed stream.

``key``: the stream key; ``offset``: index of x's first element; ``nbits``: random bits per rounding (0 = all
dropped bits); ``p``: ``cast_params(..., rtz=True)``; ``thr``: overflow threshold pattern; ``minnorm``: fp32 pattern
of the target's smallest normal."""

sr_with_bits = dispatch(_sr_bits_numba, _sr_bits_numpy)
sr_with_bits.__doc__ = """SR of ``x`` into ``out`` with caller-supplied ``n``-bit random integers ``rbits``."""
