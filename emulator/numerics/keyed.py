"""The keyed counter-based random stream: element ``i`` of stream ``(seed, site)`` is one 64-bit word.

The definition (``docs/numerics.md``, "The keyed stream"); all arithmetic wraps, ``G = 0x9E3779B97F4A7C15``::

    mix64(z)     = z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB; z ^= z >> 31
    key(s, t)    = mix64(mix64(s + G) ^ mix64(t + 2G))                                  (64-bit)
    k_j(key, h)  = mix64(key ^ ((2h + j + 1) * G))           j = 0, 1                      (64-bit)
    h32(k, lo)   = x = lo + (k mod 2^32); x ^= x >> 17; x *= 0xED5AD4BB; x ^= k >> 32;
                   x ^= x >> 11; x *= 0xAC4C1B51; x ^= x >> 15; x *= 0x31848BAB; x ^= x >> 14  (32-bit)
    word(key, i) = h32(k_0(key, hi), lo) * 2^32 + h32(k_1(key, hi), lo)      hi, lo = i >> 32, i mod 2^32

A rounding with ``n`` random bits takes the top ``n`` bits of the word, so ``n <= 32`` needs only the top half: one
32-bit hash per element, with 32-bit lanes only (the SplitMix64 calls run once per 2^32 elements, not per element).
Element indices run over ``0 .. 2^64 - 1``. Stochastic rounding, the RNG seed expansion and the collectives' SR all
draw from it; it depends on nothing else in the package, so each of them can import it.
:mod:`emulator.numerics.stochastic` re-exports every name.

>>> keyed_bits(7, site_id("psum", 3), 4).dtype
dtype('uint32')
"""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError, DtypeError
from ._sr_kernels import GOLDEN, H1, H2, H3, MIX1, MIX2, keyed_words, mix64_array

__all__ = ["WORD_BITS", "mix64", "stream_key", "stream_keys", "site_id", "keyed_bits", "word", "GOLDEN", "H1", "H2", "H3"]

#: Bits of one word of the stream (the most random bits one rounding can use).
WORD_BITS = 64
_M64 = (1 << 64) - 1


def mix64(z: int) -> int:
    """SplitMix64's finaliser on a Python int (taken mod 2^64): the bijective mixer of the keyed stream.

    >>> hex(mix64(0)), hex(mix64(1))
    ('0x0', '0x5692161d100b05e5')
    """
    z &= _M64
    z = ((z ^ (z >> 30)) * MIX1) & _M64
    z = ((z ^ (z >> 27)) * MIX2) & _M64
    return z ^ (z >> 31)


def stream_key(seed: int, site: int = 0) -> int:
    """The 64-bit key of the stream for ``(seed, site)``: ``mix64(mix64(seed + G) ^ mix64(site + 2G))``.

    >>> stream_key(0, 0) != stream_key(0, 1) != stream_key(1, 0)
    True
    """
    for name, v in (("seed", seed), ("site", site)):
        if isinstance(v, (bool, float)) or not isinstance(v, (int, np.integer)):
            raise ArgumentTypeError(f"stream_key: {name} must be an integer, got {v!r}")
    return mix64(mix64(int(seed) + GOLDEN) ^ mix64(int(site) + 2 * GOLDEN))


def word(key: int, index: int) -> int:
    """Word ``index`` of the stream with key ``key``, on Python ints (the definition, one element at a time).

    >>> word(stream_key(7, 1), 3) == int(keyed_bits(7, 1, 4, 64)[3])
    True
    """
    hi, lo = (int(index) >> 32) & 0xFFFFFFFF, int(index) & 0xFFFFFFFF
    halves = []
    for j in (0, 1):
        k = mix64(int(key) ^ ((2 * hi + j + 1) * GOLDEN))
        x = (lo + (k & 0xFFFFFFFF)) & 0xFFFFFFFF
        x = ((x ^ (x >> 17)) * H1) & 0xFFFFFFFF
        x ^= k >> 32
        x = ((x ^ (x >> 11)) * H2) & 0xFFFFFFFF
        x = ((x ^ (x >> 15)) * H3) & 0xFFFFFFFF
        halves.append(x ^ (x >> 14))
    return (halves[0] << 32) | halves[1]


def site_id(*parts: int | str) -> int:
    """A 64-bit site id from a tuple of ints and strings (e.g. ``site_id("collective", step, hop)``).

    Each part is folded in with ``h = mix64(h ^ v)`` where a string's ``v`` is its 64-bit FNV-1a hash of the UTF-8
    bytes and an int's ``v`` is its value mod 2^64; ``h`` starts at ``len(parts)``. The result is a plain int to pass
    as ``site``. Stable across processes and Python versions (no ``hash()``).

    >>> site_id("psum", 3) == site_id("psum", 3) != site_id("psum", 4)
    True
    """
    h = len(parts)
    for part in parts:
        if isinstance(part, str):
            v = 0xCBF29CE484222325
            for byte in part.encode("utf-8"):
                v = ((v ^ byte) * 0x100000001B3) & _M64
        elif isinstance(part, (int, np.integer)) and not isinstance(part, bool):
            v = int(part) & _M64
        else:
            raise ArgumentTypeError(f"site_id: parts must be ints or strings, got {part!r}")
        h = mix64(h ^ v)
    return h


def keyed_bits(seed: int, site: int, index, nbits: int = 32) -> np.ndarray:
    """The top ``nbits`` bits of the keyed stream's word for each element index.

    Parameters
    ----------
    seed, site : integers keying the stream (see :func:`stream_key`).
    index : an int ``N`` (indices ``0..N-1``) or an integer array of element indices (any shape, >= 0).
    nbits : 1..64. The result is uint32 for ``nbits <= 32``, uint64 otherwise.

    >>> import numpy as np
    >>> a = keyed_bits(7, 0, 10)
    >>> bool((keyed_bits(7, 0, np.arange(5, 10)) == a[5:]).all())  # element i's bits do not depend on the chunk
    True
    """
    if isinstance(nbits, bool) or not isinstance(nbits, (int, np.integer)) or not 1 <= nbits <= WORD_BITS:
        raise ArgumentError(f"keyed_bits: nbits must be an integer in 1..{WORD_BITS}, got {nbits!r}")
    if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
        if index < 0:
            raise ArgumentError(f"keyed_bits: a count of elements must be >= 0, got {index}")
        idx = np.arange(int(index), dtype=np.uint64)
    else:
        arr = np.asarray(index)
        if arr.dtype.kind not in "iu":
            raise DtypeError(f"keyed_bits: index must be an int or an integer array, got dtype {arr.dtype}")
        if arr.dtype.kind == "i" and arr.size and arr.min() < 0:
            raise ArgumentError(f"keyed_bits: element indices must be >= 0, got {int(arr.min())}")
        idx = np.ascontiguousarray(arr.astype(np.uint64))
    words = np.empty(idx.shape, np.uint64)
    keyed_words(np.uint64(stream_key(seed, site)), idx.reshape(-1), words.reshape(-1))
    out = words >> np.uint64(64 - int(nbits))
    return out.astype(np.uint32) if nbits <= 32 else out


def stream_keys(seed: int, sites: np.ndarray) -> np.ndarray:
    """:func:`stream_key` of every site of a uint64 array, vectorised (one key per site, same shape).

    >>> import numpy as np
    >>> int(stream_keys(3, np.array([5], np.uint64))[0]) == stream_key(3, 5)
    True
    """
    with np.errstate(over="ignore"):
        a = mix64_array(np.array([(int(seed) + GOLDEN) & _M64], np.uint64))
        return mix64_array(a ^ mix64_array(np.asarray(sites, np.uint64) + np.uint64(2 * GOLDEN & _M64)))
