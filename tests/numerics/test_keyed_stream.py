"""Statistical tests of the keyed stream (emulator.numerics.keyed) and of SR's unbiasedness.

Every bound comes from the distribution the statistic has when the words are independent and uniform, at a
one-sided tail probability of about 1e-6 per statistic (z = 5.3 two-sided normal, the chi-square quantile by the
Wilson-Hilferty approximation), never from the stream's output. The streams are fixed (seeds and sites are
constants), so the tests are deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import emulator as emu
from emulator.numerics import formats
from emulator.numerics.stochastic import cast_sr, keyed_bits

Z = 5.3  # two-sided normal bound, P(|N(0,1)| > 5.3) ~ 1.2e-7
Z1 = 4.75  # one-sided, P(N(0,1) > 4.75) ~ 1e-6
N = 1 << 20


def chi2_bound(df: int) -> float:
    """The chi-square quantile with ``df`` degrees of freedom at upper tail ~1e-6 (Wilson-Hilferty)."""
    c = 2.0 / (9.0 * df)
    return df * (1.0 - c + Z1 * math.sqrt(c)) ** 3


def chi2(counts: np.ndarray) -> float:
    expected = counts.sum() / counts.size
    return float(((counts - expected) ** 2).sum() / expected)


def words(seed: int, site: int, count: int = N, start: int = 0) -> np.ndarray:
    return keyed_bits(seed, site, np.arange(start, start + count, dtype=np.uint64), 64)


def uniform(w: np.ndarray) -> np.ndarray:
    """The top 32 bits of each word as a float in [0, 1) (what a rounding with sr_bits <= 32 uses)."""
    return (w >> np.uint64(32)).astype(np.float64) / 2.0 ** 32


STREAMS = [(0, 0, 0), (1, 7, 0), (12345, 2 ** 63 + 5, 2 ** 32 - N // 2)]  # the last one crosses a 2^32 block


@pytest.mark.parametrize("seed, site, start", STREAMS)
def test_every_bit_is_fair(seed, site, start):
    w = words(seed, site, start=start)
    ones = np.array([int(((w >> np.uint64(b)) & np.uint64(1)).sum()) for b in range(64)])
    assert (np.abs(ones - N / 2) <= Z * math.sqrt(N) / 2).all(), np.abs(ones - N / 2).max()


@pytest.mark.parametrize("seed, site, start", STREAMS)
def test_bytes_are_uniform(seed, site, start):
    w = words(seed, site, start=start)
    for pos in range(8):
        counts = np.bincount(((w >> np.uint64(8 * pos)) & np.uint64(0xFF)).astype(np.int64), minlength=256)
        assert chi2(counts) <= chi2_bound(255), pos


@pytest.mark.parametrize("seed, site, start", STREAMS)
def test_consecutive_words_are_uncorrelated(seed, site, start):
    u = uniform(words(seed, site, start=start))
    for lag in (1, 2, 3, 8, 64, 4096):
        r = np.corrcoef(u[:-lag], u[lag:])[0, 1]
        assert abs(r) <= Z / math.sqrt(u.size - lag), (lag, r)
    lo = (words(seed, site, start=start) & np.uint64(0xFFFFFFFF)).astype(np.float64)
    assert abs(np.corrcoef(lo[:-1], lo[1:])[0, 1]) <= Z / math.sqrt(N - 1)  # the low half too


@pytest.mark.parametrize("seed, site, start", STREAMS)
def test_pairs_fill_the_square(seed, site, start):
    """Non-overlapping pairs of consecutive words, top 4 bits each: 256 cells, chi-square with 255 df; also the top
    4 bits of an element's two halves (the >32-bit roundings use both)."""
    w = words(seed, site, start=start)
    top = (w >> np.uint64(60)).astype(np.int64)
    counts = np.bincount(top[0::2] * 16 + top[1::2], minlength=256)
    assert chi2(counts) <= chi2_bound(255)
    low = ((w >> np.uint64(28)) & np.uint64(0xF)).astype(np.int64)
    assert chi2(np.bincount(top * 16 + low, minlength=256)) <= chi2_bound(255)


@pytest.mark.parametrize("a, b", [((0, 0), (0, 1)), ((0, 5), (0, 6)), ((0, 0), (1, 0)), ((7, 3), (8, 3)),
                                  ((0, 2 ** 32), (0, 2 ** 32 + 1))])
def test_neighbouring_seeds_and_sites_are_unrelated(a, b):
    """Element i of two streams keyed by neighbouring seeds or sites: correlation, agreement of every bit, and the
    joint distribution of their top 4 bits."""
    wa, wb = words(*a, count=N // 2), words(*b, count=N // 2)
    n = wa.size
    assert abs(np.corrcoef(uniform(wa), uniform(wb))[0, 1]) <= Z / math.sqrt(n)
    diff = wa ^ wb
    for bit in range(64):
        agree = n - int(((diff >> np.uint64(bit)) & np.uint64(1)).sum())
        assert abs(agree - n / 2) <= Z * math.sqrt(n) / 2, bit
    joint = (wa >> np.uint64(60)).astype(np.int64) * 16 + (wb >> np.uint64(60)).astype(np.int64)
    assert chi2(np.bincount(joint, minlength=256)) <= chi2_bound(255)
    # a stream is not a shifted copy of the other: no lag within 64 shows a correlation either
    ua, ub = uniform(wa), uniform(wb)
    for lag in range(1, 65):
        assert abs(np.corrcoef(ua[:-lag], ub[lag:])[0, 1]) <= Z / math.sqrt(n - lag), lag


def _flip_fraction(w0: np.ndarray, w1: np.ndarray) -> float:
    x = w0 ^ w1
    flipped = sum(int(((x >> np.uint64(b)) & np.uint64(1)).sum()) for b in range(64))
    return flipped / (64 * w0.size)


def test_key_avalanche():
    """Flipping any one bit of the seed or of the site flips each output bit with probability 1/2."""
    count = 4096
    base = words(0x1234_5678_9ABC_DEF0, 99, count)
    m = 64 * count
    for bit in range(64):
        for seed, site in ((0x1234_5678_9ABC_DEF0 ^ (1 << bit), 99), (0x1234_5678_9ABC_DEF0, 99 ^ (1 << bit))):
            f = _flip_fraction(base, words(seed, site, count))
            assert abs(f - 0.5) <= Z * 0.5 / math.sqrt(m), (bit, seed, site, f)


def test_counter_avalanche():
    """Flipping one bit of the element index (low half: inside the 32-bit hash; high half: a new block key) flips
    each bit of the top half word with probability 1/2 (the top half is what roundings with <= 32 bits use)."""
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 2 ** 63, 1 << 14, dtype=np.uint64)
    w0 = keyed_bits(3, 4, idx, 32).astype(np.uint64)
    m = 32 * idx.size
    for bit in range(64):
        w1 = keyed_bits(3, 4, idx ^ np.uint64(1 << bit), 32).astype(np.uint64)
        x = w0 ^ w1
        f = sum(int(((x >> np.uint64(b)) & np.uint64(1)).sum()) for b in range(32)) / m
        assert abs(f - 0.5) <= Z * 0.5 / math.sqrt(m), (bit, f)


@pytest.mark.parametrize("name", ["bfloat16", "float8_e4m3fn", "float4_e2m1fn", "float16"])
def test_sr_rounds_up_with_the_dropped_fraction(name):
    """64 values between two neighbours (normal and subnormal), 2^16 roundings each (sr_bits = 0: P(up) is the
    dropped fraction exactly): the number of roundings up lies within the binomial bound of its expectation."""
    fmt = formats.get(name)
    rng = np.random.default_rng(7)
    reps = 1 << 16
    top = int(fmt.max_code) >> fmt.pad_bits  # magnitude code of max finite
    mags = np.concatenate([rng.integers(1, 2 ** fmt.mantissa_bits, 8),  # subnormals
                           rng.integers(2 ** fmt.mantissa_bits, top, 56)])
    lo = emu.decode((mags << fmt.pad_bits).astype(fmt.code_dtype), name).astype(np.float64)
    hi = emu.decode(((mags + 1) << fmt.pad_bits).astype(fmt.code_dtype), name).astype(np.float64)
    x = (lo + rng.random(lo.size) * (hi - lo)).astype(np.float32).astype(np.float64)
    p = (x - lo) / (hi - lo)  # exact: the float32 x, lo and hi are exact in float64
    got = emu.decode(cast_sr(np.repeat(x.astype(np.float32), reps), name, seed=21, site=3, sr_bits=0), name)
    ups = (got.reshape(lo.size, reps) == hi[:, None]).sum(axis=1)
    assert ((got.reshape(lo.size, reps) == hi[:, None]) | (got.reshape(lo.size, reps) == lo[:, None])).all()
    assert (np.abs(ups - reps * p) <= Z * np.sqrt(reps * p * (1 - p)) + 1).all(), np.abs(ups - reps * p).max()
