"""Stochastic rounding: checked against a scalar reference written from the definition with Fractions and the
format's sorted value set (from ml_dtypes / the exact decode), never against the implementation itself."""

from __future__ import annotations

import bisect
import functools
import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

import emulator as emu
from emulator.numerics import formats, stochastic
from emulator.numerics.stochastic import cast_sr, cast_sr_with_bits, keyed_bits

NARROW = ["bfloat16", "float16", "tfloat32", "float8_e5m2", "float8_e4m3", "float8_e4m3fn", "float4_e2m1fn",
          "float8_e8m0fnu"]
M64 = (1 << 64) - 1
M32 = (1 << 32) - 1
G = 0x9E3779B97F4A7C15


@pytest.fixture(params=[True, False], ids=["numba", "numpy"])
def path(request):
    with emu.settings(numba=request.param):
        yield request.param


# ---------------------------------------------------------------------------------------------------------------
# independent reference
# ---------------------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _magnitudes(name: str) -> list[Fraction]:
    """Sorted non-negative finite values of the format, from ml_dtypes' finfo / value enumeration."""
    fmt = formats.get(name)
    if name == "tfloat32":  # 10-bit mantissa, fp32 exponent range: enumerate exponents directly
        return None
    dt = fmt.ml_dtype
    codes = np.arange(1 << (8 if fmt.bits <= 8 else 16), dtype=np.uint16 if fmt.bits > 8 else np.uint8)
    with np.errstate(invalid="ignore"):
        vals = codes.view(dt).astype(np.float64) if fmt.bits > 4 else codes[:16].view(dt).astype(np.float64)
    return sorted({Fraction(float(v)) for v in vals if np.isfinite(v) and v >= 0})


def _neighbours(name: str, mag: Fraction):
    """(lo, hi) around a positive non-representable magnitude; hi None = beyond max (hi = max + ulp(max))."""
    if name == "tfloat32":
        e = max(math.floor(math.log2(mag)), -126)
        q = Fraction(2) ** (e - 10)
        lo = (mag // q) * q
        top = (2 - Fraction(1, 1024)) * Fraction(2) ** 127
        if lo >= top:  # the step above max finite is 2^128: overflow
            return top, None, Fraction(2) ** 117
        return lo, lo + q, q
    mags = _magnitudes(name)
    i = bisect.bisect_right(mags, mag) - 1
    if i < 0:
        return None, mags[0], None  # e8m0 below its smallest value
    lo = mags[i]
    if i + 1 < len(mags):
        return lo, mags[i + 1], mags[i + 1] - lo
    ulp = mags[-1] - mags[-2] if name != "float8_e8m0fnu" else mags[-1]
    return lo, None, ulp


def rne_values(x: np.ndarray, name: str, saturate: bool = False) -> list[float]:
    """The RNE cast of each value (the lead's cast, independent of SR): what specials and zeros must become."""
    return decoded(emu.cast(x, name, rounding="rne", saturate=saturate), name).tolist()


def ref_sr(x: float, name: str, r: int, n: int, saturate: bool = False, rne: float | None = None) -> float:
    """The SR result of one float value, as a float (nan / +-inf for specials)."""
    fmt = formats.get(name)
    if rne is None:
        rne = rne_values(np.array([x]), name, saturate)[0]
    if not math.isfinite(x) or x == 0:
        return rne
    mag = Fraction(abs(x))
    sign = -1.0 if x < 0 else 1.0
    if not fmt.signed and x < 0:
        return float("nan")
    lo, hi, ulp = _neighbours(name, mag)
    if lo is None:
        return float(hi)
    if lo == mag:
        return sign * float(lo)
    overflow = sign * float(fmt.max_finite) if (saturate or not fmt.has_nan) else (
        sign * math.inf if fmt.has_inf else float("nan"))
    if hi is None and mag >= lo + ulp:
        return overflow
    frac_n = math.floor((mag - lo) / ulp * (1 << n))
    if frac_n + r >= (1 << n):
        return overflow if hi is None else sign * float(hi)
    return sign * float(lo)


def same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1, a) == math.copysign(1, b)


def decoded(codes, name):
    with np.errstate(invalid="ignore"):  # signalling-NaN payloads of tf32
        return emu.decode(codes, name).astype(np.float64)


def probe_values(name: str, rng: np.random.Generator, count: int = 60) -> np.ndarray:
    """Representable values, points between neighbours (random, 1/2, 1/2^k), near max, subnormals, specials."""
    fmt = formats.get(name)
    vals = [0.0, -0.0, np.inf, -np.inf, np.nan, fmt.max_finite, fmt.min_subnormal, fmt.min_normal,
            fmt.max_finite * 1.01, fmt.max_finite * 1.2, fmt.min_subnormal * 0.3, fmt.min_subnormal * 1.5]
    if name == "tfloat32":
        base = rng.standard_normal(count) * 10.0 ** rng.integers(-40, 38, count)
    else:
        mags = np.array([float(m) for m in _magnitudes(name)])
        i = rng.integers(0, len(mags) - 1, count)
        t = rng.random(count)
        t[: count // 4] = 0.5
        base = mags[i] + t * (mags[i + 1] - mags[i])
    vals.extend(base.tolist())
    vals = np.array(vals, np.float64)
    vals = np.concatenate([vals, -vals])
    with np.errstate(over="ignore"):
        return vals.astype(np.float32) if fmt.bits < 32 else vals


# ---------------------------------------------------------------------------------------------------------------
# explicit random bits vs the reference
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NARROW)
@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("saturate", [False, True])
def test_every_random_value_small_n(path, name, n, saturate):
    """Enumerate all 2^n random values: the result and hence the exact up-probability match the definition."""
    x = probe_values(name, np.random.default_rng(hash(name) % 1000 + n))
    x = x[(x >= 0) | (formats.get(name).signed)]
    rne = rne_values(x, name, saturate)
    for r in range(1 << n):
        got = decoded(cast_sr_with_bits(x, name, np.full(x.shape, r), n, saturate=saturate), name)
        for xi, gi, ri in zip(x.tolist(), got.tolist(), rne):
            want = ref_sr(xi, name, r, n, saturate, ri)
            assert same(gi, want), f"{name} x={xi!r} r={r} n={n}: got {gi}, want {want}"


@pytest.mark.parametrize("name", NARROW)
def test_random_bits_many_n(path, name):
    rng = np.random.default_rng(7)
    x = probe_values(name, rng, 200)
    x = x[(x >= 0) | (formats.get(name).signed)]
    rne = rne_values(x, name)
    for n in (5, 8, 13, 23, 32, 40, 64):
        r = [int(v) for v in rng.integers(0, 1 << min(n, 63), x.size, dtype=np.uint64)]
        if n == 64:
            r = [v | (int(b) << 63) for v, b in zip(r, rng.integers(0, 2, x.size))]
        got = decoded(cast_sr_with_bits(x, name, np.array(r, np.uint64), n), name)
        for xi, ri, gi, rn in zip(x.tolist(), r, got.tolist(), rne):
            assert same(gi, ref_sr(xi, name, ri, n, rne=rn)), (name, xi, ri, n, gi)


def test_up_probability_is_the_dropped_fraction_exactly():
    """With n = all dropped bits, the count of up-rounding random values over all 2^d values is exactly R."""
    # bf16 from fp32 drops 16 bits: 1 + k * 2^-23 has dropped fraction k / 2^16
    for k in (1, 3, 2 ** 15, 2 ** 16 - 1):
        x = np.full(1 << 16, 1.0 + k * 2.0 ** -23, np.float32)
        up = decoded(cast_sr_with_bits(x, "bfloat16", np.arange(1 << 16), 16), "bfloat16") > 1.0
        assert up.sum() == k


def test_float64_input_rounds_from_the_exact_value(path):
    """fp64 input with 64 random bits: the up/down boundary sits exactly at 2^64 - floor(frac * 2^64)."""
    x = 1.0 + 2.0 ** -8 + 2.0 ** -40  # half a bf16 ulp plus a bit fp32 cannot hold
    frac = (Fraction(x) - 1) / Fraction(2) ** -7
    f64 = math.floor(frac * 2 ** 64)
    bits = np.array([(1 << 64) - f64, (1 << 64) - f64 - 1], np.uint64)
    got = decoded(cast_sr_with_bits(np.array([x, x]), "bfloat16", bits, 64), "bfloat16")
    assert got.tolist() == [1.0078125, 1.0]
    # via fp32 the 2^-40 is lost: the fraction is exactly 1/2 and both of these random values round down
    got32 = decoded(cast_sr_with_bits(np.array([x, x], np.float32), "bfloat16", bits, 64), "bfloat16")
    assert got32.tolist() == [1.0, 1.0]


def test_float32_target_from_float64(path):
    x = np.array([1.0 + 2.0 ** -30, -(1.0 + 2.0 ** -30), 1.0, 2.0 ** 200, np.nan])
    codes = cast_sr_with_bits(x, "float32", np.array([0, 2 ** 40 - 1, 5, 0, 0], np.uint64), 40)
    got = codes.view(np.float32)
    assert got[0] == np.float32(1.0) and got[1] == np.float32(-1.0 - 2.0 ** -23) and got[2] == 1.0
    assert np.isinf(got[3]) and np.isnan(got[4])


# ---------------------------------------------------------------------------------------------------------------
# the keyed stream
# ---------------------------------------------------------------------------------------------------------------

def py_mix64(z: int) -> int:
    z &= M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def py_h32(k: int, lo: int) -> int:
    """The 32-bit lane hash of docs/numerics.md ("The keyed stream"), on Python ints."""
    x = (lo + (k & M32)) & M32
    x ^= x >> 17
    x = (x * 0xED5AD4BB) & M32
    x ^= k >> 32
    x ^= x >> 11
    x = (x * 0xAC4C1B51) & M32
    x ^= x >> 15
    x = (x * 0x31848BAB) & M32
    return x ^ (x >> 14)


def py_word(seed: int, site: int, i: int) -> int:
    key = py_mix64(py_mix64(seed + G) ^ py_mix64(site + 2 * G))
    hi, lo = i >> 32, i & M32
    k0 = py_mix64(key ^ (((2 * hi + 1) * G) & M64))
    k1 = py_mix64(key ^ (((2 * hi + 2) * G) & M64))
    return (py_h32(k0, lo) << 32) | py_h32(k1, lo)


def test_splitmix64_reference_values():
    # SplitMix64 seeded with 0 outputs mix64(G), mix64(2G): published first value 0xE220A8397B1DCDAF
    assert py_mix64(G) == 0xE220A8397B1DCDAF
    assert stochastic.mix64(G) == 0xE220A8397B1DCDAF


@pytest.mark.parametrize("nbits", [1, 7, 32, 33, 64])
def test_keyed_bits_definition(path, nbits):
    for seed, site in ((0, 0), (1, 0), (0, 1), (-5, 2 ** 70), (123456789, stochastic.site_id("psum", 3))):
        idx = [0, 1, 2, 1000, 2 ** 32 - 1, 2 ** 32, 2 ** 40, 2 ** 64 - 1]
        got = keyed_bits(seed, site, np.array(idx, np.uint64), nbits)
        want = [py_word(seed & M64, site & M64, i) >> (64 - nbits) for i in idx]
        assert [int(v) for v in got] == want
        assert got.dtype == (np.uint32 if nbits <= 32 else np.uint64)


def test_cast_sr_uses_the_keyed_stream(path):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(9000) * 10.0 ** rng.integers(-3, 3, 9000)).astype(np.float32)  # > the serial size
    x[:5] = [0.0, np.inf, np.nan, 1e-40, 70000.0]
    check = np.r_[0:40, 40:9000:31]
    for name, nbits in (("bfloat16", 0), ("float8_e4m3fn", 0), ("float8_e5m2", 5), ("float16", 0),
                        ("float4_e2m1fn", 2), ("tfloat32", 0), ("float8_e8m0fnu", 0)):
        xs = np.abs(x) if name == "float8_e8m0fnu" else x
        got = decoded(cast_sr(xs, name, seed=11, site=4, sr_bits=nbits, saturate=False), name)
        n = nbits or 64
        rne = rne_values(xs[check], name)
        for i, xi, gi, rn in zip(check.tolist(), xs[check].tolist(), got[check].tolist(), rne):
            want = ref_sr(xi, name, py_word(11, 4, i) >> (64 - n), n, rne=rn)
            assert same(gi, want), (name, i, xi, gi, want)


def test_chunking_and_paths_agree():
    """Element i gets the same bits whatever the split; the Numba and NumPy twins are bit-identical."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(20000) * 2.0 ** rng.integers(-30, 30, 20000)).astype(np.float32)
    x[::97] = np.nan
    x[::89] = np.inf
    x[::83] = 0.0
    for name in NARROW:
        xs = np.abs(x) if name == "float8_e8m0fnu" else x
        whole = cast_sr(xs, name, seed=9, site=1, sr_bits=0)
        parts = np.concatenate([cast_sr(xs[a:b], name, seed=9, site=1, sr_bits=0, offset=a)
                                for a, b in ((0, 777), (777, 13000), (13000, 20000))])
        assert (whole == parts).all(), name
        with emu.settings(numba=False):
            twin = cast_sr(xs, name, seed=9, site=1, sr_bits=0)
        assert (whole == twin).all(), name
        for bits in (3, 40):
            a = cast_sr(xs, name, seed=9, site=1, sr_bits=bits)
            with emu.settings(numba=False):
                assert (a == cast_sr(xs, name, seed=9, site=1, sr_bits=bits)).all(), (name, bits)
    x64 = x.astype(np.float64) * (1 + 2.0 ** -35)
    a = cast_sr(x64, "bfloat16", seed=2, sr_bits=0)
    with emu.settings(numba=False):
        assert (a == cast_sr(x64, "bfloat16", seed=2, sr_bits=0)).all()


# ---------------------------------------------------------------------------------------------------------------
# statistics (fixed seeds: deterministic)
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["bfloat16", "float16", "float8_e4m3fn", "float8_e5m2", "float4_e2m1fn"])
def test_mean_is_unbiased(name):
    """Averaged over N draws the result equals x within 5 standard errors (N = 200000, ulp-level spread)."""
    rng = np.random.default_rng(1)
    fmt = formats.get(name)
    xs = rng.uniform(fmt.min_normal, fmt.max_finite / 2, 6).astype(np.float32)
    for x in xs.tolist():
        vals = decoded(cast_sr(np.full(200000, x, np.float32), name, seed=4, sr_bits=0), name)
        lo, hi = vals.min(), vals.max()
        p = (x - lo) / (hi - lo) if hi > lo else 0.0
        se = (hi - lo) * math.sqrt(max(p * (1 - p), 1e-12) / vals.size)
        assert abs(vals.mean() - x) <= 5 * se + 1e-12 * abs(x), (name, x, vals.mean())


def test_different_seeds_and_sites_are_independent():
    x = np.full(100000, 1.0 + 2.0 ** -8, np.float32)  # p(up) = 1/2 in bf16
    a = cast_sr(x, "bfloat16", seed=1) != 0x3F80
    b = cast_sr(x, "bfloat16", seed=2) != 0x3F80
    c = cast_sr(x, "bfloat16", seed=1, site=1) != 0x3F80
    for u, v in ((a, b), (a, c)):
        agree = (u == v).mean()
        assert abs(agree - 0.5) < 5 * 0.5 / math.sqrt(x.size)


def test_documented_fp16_accumulation_example():
    """fp16: start at 1024, add 0.5 2048 times. RNE stays at 1024 (every tie rounds to even); SR reaches ~2048.

    32 independent runs at once (element k of the array is run k; the site is the step number)."""
    acc_rne = np.full(32, 1024.0, np.float32)
    acc_sr = acc_rne.copy()
    for step in range(2048):
        acc_rne = emu.round_to(acc_rne + np.float32(0.5), "float16", rounding="rne")
        acc_sr = emu.round_to(acc_sr + np.float32(0.5), "float16", rounding="sr", seed=0, site=step)
    assert (acc_rne == 1024.0).all()
    # each step adds 0.5 on average; a run is a sum of 2048 fair coin flips (sd ~ 23); the mean of 32 runs ~ 4
    assert abs(acc_sr.mean() - 2048.0) < 6 * 23 / math.sqrt(32)
    assert (np.abs(acc_sr - 2048.0) < 6 * 23).all()


# ---------------------------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------------------------

finite32 = st.floats(allow_nan=False, allow_infinity=False, width=32)


@hsettings(max_examples=150)
@given(x=finite32, seed=st.integers(0, 2 ** 64 - 1), name=st.sampled_from(NARROW[:-1]),
       bits=st.sampled_from([0, 1, 4, 12, 64]))
def test_never_past_a_neighbour_and_deterministic(x, seed, name, bits):
    fmt = formats.get(name)
    arr = np.array([x], np.float32)
    c1 = cast_sr(arr, name, seed=seed, sr_bits=bits)
    assert (c1 == cast_sr(arr, name, seed=seed, sr_bits=bits)).all()
    got = float(decoded(c1, name)[0])
    rtz = emu.cast(arr, name, rounding="rtz")
    down = float(decoded(rtz, name)[0])
    if abs(x) > fmt.max_finite:  # RTZ clamps to max; SR gives max or the overflow code (inf / NaN)
        assert got == down or math.isinf(got) or math.isnan(got)
        return
    if float(np.float32(x)) == down:
        assert same(got, down)  # representable: never moves
        return
    up = float(decoded(rtz + np.array(1 << fmt.pad_bits, rtz.dtype), name)[0])  # one magnitude step away from 0
    assert got in (down, up)
    assert min(down, up) < x < max(down, up)


@hsettings(max_examples=150)
@given(x=finite32, seed=st.integers(0, 2 ** 32), name=st.sampled_from(NARROW[:-1]))
def test_sign_symmetric(x, seed, name):
    """Same bits for x and -x: the results are exact negatives (so the distributions are mirror images)."""
    a = decoded(cast_sr(np.array([x], np.float32), name, seed=seed), name)[0]
    b = decoded(cast_sr(np.array([-x], np.float32), name, seed=seed), name)[0]
    assert same(float(a), -float(b)) or (math.isnan(a) and math.isnan(b))


@hsettings(max_examples=100)
@given(code=st.integers(0, 0xFFFF), seed=st.integers(0, 2 ** 32), bits=st.sampled_from([0, 1, 3, 64]))
def test_representable_values_never_move(code, seed, bits):
    for name in ("bfloat16", "float16"):
        fmt = formats.get(name)
        x = np.array([code], np.uint16).view(fmt.ml_dtype).astype(np.float32)
        assert (cast_sr(x, name, seed=seed, sr_bits=bits) == emu.cast(x, name)).all()


def test_exhaustive_fp8_codes_never_move():
    for name in ("float8_e5m2", "float8_e4m3", "float8_e4m3fn"):
        fmt = formats.get(name)
        x = np.arange(256, dtype=np.uint8).view(fmt.ml_dtype).astype(np.float32)
        rne = emu.cast(x, name)
        for seed in range(4):
            assert (cast_sr(x, name, seed=seed) == rne).all(), name


# ---------------------------------------------------------------------------------------------------------------
# integration and errors
# ---------------------------------------------------------------------------------------------------------------

def test_cast_dispatches_and_reads_settings():
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    with emu.settings(rounding="sr", seed=77, sr_bits=5):
        a = emu.cast(x, "bfloat16")
    assert (a == cast_sr(x, "bfloat16", seed=77, sr_bits=5)).all()
    assert not (a == emu.cast(x, "bfloat16", rounding="rne")).all()


def test_xorwow_source_matches_the_rng_module():
    from emulator.numerics import rng

    x = np.random.default_rng(0).standard_normal((130, 7)).astype(np.float32)
    stochastic.reset_xorwow_stream()
    with emu.settings(sr_generator="xorwow"):
        got = cast_sr(x, "bfloat16", seed=5, sr_bits=0)
        again = cast_sr(x, "bfloat16", seed=5, sr_bits=0)  # the stream continues: different bits
        state = rng.set_rng_seed(5, lanes=128, engine="gpsimd")
        words = np.empty((130, 7), np.uint32)
        words[:128] = rng.rng(state, (128, 7))
        words[128:] = rng.rng(state[:2], (2, 7))
    assert (got == cast_sr_with_bits(x, "bfloat16", words, 32)).all()
    assert not (got == again).all()
    stochastic.reset_xorwow_stream()


@pytest.mark.parametrize("kwargs, exc", [
    (dict(sr_bits=65), ValueError), (dict(sr_bits=-1), ValueError), (dict(seed=1.5), TypeError),
    (dict(offset=-1), ValueError), (dict(site="a"), TypeError),
])
def test_argument_errors(kwargs, exc):
    with pytest.raises(exc):
        cast_sr(np.ones(3, np.float32), "bfloat16", **kwargs)


def test_explicit_bits_errors():
    x = np.ones(4, np.float32)
    with pytest.raises(ValueError, match=r"\[0, 2\^3\)"):
        cast_sr_with_bits(x, "bfloat16", np.array([0, 1, 8, 2]), 3)
    with pytest.raises(ValueError, match="nbits"):
        cast_sr_with_bits(x, "bfloat16", np.zeros(4, int), 0)
    with pytest.raises(ValueError, match="broadcast"):
        cast_sr_with_bits(x, "bfloat16", np.zeros(3, int), 4)
    with pytest.raises(TypeError):
        cast_sr_with_bits(x, "bfloat16", np.zeros(4), 4)
    with pytest.raises(TypeError):
        cast_sr(np.arange(3), "bfloat16")
    with emu.settings(sr_generator="xorwow"), pytest.raises(ValueError, match="1..32"):
        cast_sr(x, "bfloat16", sr_bits=40)


def test_ml_dtypes_input_is_widened_exactly():
    x = np.array([1.5, -3.25], ml_dtypes.bfloat16)
    assert (cast_sr(x, "float8_e4m3fn", seed=1) == emu.cast(x.astype(np.float32), "float8_e4m3fn")).all()


def check_sr_kernel(x: np.ndarray, name: str, check: np.ndarray, bit_counts) -> None:
    """cast_sr of ``x`` (seed 3, site 0) equals the NumPy twin everywhere and the reference at ``check``."""
    for bits in bit_counts:
        got = cast_sr(x, name, seed=3, sr_bits=bits)
        with emu.settings(numba=False):
            assert (got == cast_sr(x, name, seed=3, sr_bits=bits)).all(), bits
        n = bits or 64
        vals = decoded(got[check], name)
        for i, xi, gi, rn in zip(check.tolist(), x[check].tolist(), vals.tolist(), rne_values(x[check], name)):
            assert same(gi, ref_sr(xi, name, py_word(3, 0, i) >> (64 - n), n, rne=rn)), (name, bits, xi)


@pytest.mark.parametrize("name", ["bfloat16", "float16", "float8_e4m3fn", "float8_e5m2", "float8_e4m3",
                                  "float4_e2m1fn", "tfloat32"])
def test_normal_range_kernel_matches_twin_and_reference(name):
    """Arrays entirely inside the target's normal range take a shorter Numba kernel: check it too."""
    rng = np.random.default_rng(1)
    fmt = formats.get(name)
    size = 20000
    x = rng.uniform(1, 2, size) * fmt.min_normal * 2.0 ** rng.integers(0, 6, size)
    x = np.minimum(x, fmt.max_finite * 1.05) * np.where(rng.random(size) < 0.5, -1, 1)
    x = x.astype(np.float32)
    check_sr_kernel(x, name, np.arange(0, size, 97), (0, 3, 20, 64))


@pytest.mark.parametrize("name", ["float16", "float8_e4m3fn", "float8_e5m2", "float4_e2m1fn"])
def test_narrow_kernel_switches_between_its_loops(name):
    """The narrow targets' vector loop runs in pieces of 1024 elements, each with a branching variant (a constant-
    shift formula for steps of 16 target normals, the clamped one otherwise) or a branch-free one (after a piece
    where the branch went the general way often): build pieces of each kind in a row, with values at and above max
    finite, NaN, zeros and tiny values inside them, and check the twin and the reference."""
    from emulator.numerics import _sr_kernels

    fmt = formats.get(name)
    rng = np.random.default_rng(11)
    piece = _sr_kernels._PIECE * _sr_kernels._LANES
    assert _sr_kernels._CHUNK // piece > _sr_kernels._PROBE + 2  # a chunk holds a return to the branching variant
    kinds = "NLGGGGGGGNNLGGGG" + "NG"  # N: target normals only, L: 1 step in 4 with a small value, G: any magnitude
    size = piece * len(kinds) + 7  # and a tail shorter than a step
    x = rng.uniform(1, 2, size) * float(fmt.min_normal) * np.exp2(rng.integers(0, 5, size))
    for p, kind in enumerate(kinds):
        seg = slice(p * piece, (p + 1) * piece)
        if kind == "L":
            x[seg][:: 4 * _sr_kernels._LANES] *= 2.0 ** -rng.integers(1, 40, piece // (4 * _sr_kernels._LANES))
        elif kind == "G":
            x[seg] *= np.exp2(-rng.integers(0, 40, piece) * (rng.random(piece) < 0.3))
            x[seg][5::97] = 0.0
    x[3::501] = float(fmt.max_finite) * rng.uniform(1, 1.2, x[3::501].size)  # overflow: the fix-up
    x[7::1499] = np.nan
    x = (x * np.where(rng.random(size) < 0.5, -1, 1)).astype(np.float32)
    check_sr_kernel(x, name, np.r_[np.arange(0, size, 89), size - 7:size], (0, 3, 20))


@pytest.mark.parametrize("name", ["bfloat16", "tfloat32"])
def test_wide_exponent_kernel_specials(name):
    """bfloat16/tfloat32 take one kernel for every input (no fix-up pass): NaN payloads, inf, zeros and fp32
    subnormals must still match the NumPy twin, and the reference on a sample."""
    rng = np.random.default_rng(0)
    size = 30000
    bits = rng.integers(0, 2 ** 32, size, dtype=np.uint64).astype(np.uint32)
    bits[::50] = rng.integers(0x7F800001, 0x80000000, bits[::50].size, dtype=np.uint32)  # NaNs, all payloads
    bits[1::53], bits[2::57], bits[3::59], bits[4::61] = 0x7F800000, 0xFF800000, 0, 0x80000000
    bits[5::67] = rng.integers(1, 0x800000, bits[5::67].size, dtype=np.uint32)  # fp32 subnormals
    bits[6::71] = 0x7F7FFFFF  # fp32 max: overflows both formats' last step
    x = bits.view(np.float32)
    check = np.r_[0:80, 80:size:37]
    for sat in (False, True):
        for sr_bits in (0, 3, 40):
            got = cast_sr(x, name, seed=3, sr_bits=sr_bits, saturate=sat)
            with emu.settings(numba=False):
                assert (got == cast_sr(x, name, seed=3, sr_bits=sr_bits, saturate=sat)).all(), (sat, sr_bits)
            n = sr_bits or 64
            vals = decoded(got[check], name)
            rne = rne_values(x[check], name, sat)
            for i, xi, gi, rn in zip(check.tolist(), x[check].tolist(), vals.tolist(), rne):
                assert same(gi, ref_sr(xi, name, py_word(3, 0, i) >> (64 - n), n, sat, rn)), (name, xi, sat)
            nan_in = np.isnan(x)
            assert (got[nan_in] == emu.cast(x[nan_in], name, saturate=sat)).all()  # the RNE cast's NaN codes


def _ambiguous_carry_values(name: str, seed: int, size: int) -> np.ndarray:
    """Values below the target's smallest subnormal whose top 32 bits of the dropped fraction (F = the 24-bit
    significand >> (dropped bits - 32)) plus the element's top random half word are all ones: only the bottom half
    word decides whether they round up (their top 31 bits then sum to 2^31 - 1 too, which is what the Numba kernel
    tests: it hands such parts to the general encoder). Built from the
    stream's definition on Python ints (py_word); the significand's low bits are all ones so the carry can go either
    way. Every other element is 0."""
    fmt = formats.get(name)
    dsub = fmt.emin + 127 + 23 - fmt.mantissa_bits  # bits a value with fp32 exponent field 0 would drop
    x = np.zeros(size)
    for i in range(size):
        top = py_word(seed, 0, i) >> 32
        f = M32 - top
        if not 0 < f < 1 << 23:
            continue
        k = 23 - (f.bit_length() - 1)  # the significand: f shifted up to 24 bits, k low bits all ones
        ex = dsub - 32 - k  # so that exactly 32 + k bits are dropped
        if ex >= 1:
            x[i] = ((f << k) | ((1 << k) - 1)) * 2.0 ** (ex - 150) * (-1) ** i
    return x.astype(np.float32)


@pytest.mark.parametrize("name", ["float16", "float8_e4m3fn", "float8_e5m2", "float4_e2m1fn"])
def test_narrow_kernel_tiny_values_and_ambiguous_carry(name):
    """The Numba kernel rounds values far below the target's smallest subnormal in its vector loop from the top
    random half word alone, except where the carry needs the bottom half: check every fp32 binade down to fp32
    subnormals, and crafted ambiguous elements, against the twin and the Fraction reference."""
    rng = np.random.default_rng(5)
    size = 4096 * 4
    x = rng.uniform(1, 2, size) * np.exp2(rng.integers(-149, 1, size)) * float(formats.get(name).min_normal)
    x = (x * np.where(rng.random(size) < 0.5, -1, 1)).astype(np.float32)
    amb = _ambiguous_carry_values(name, 3, size)
    assert np.count_nonzero(amb) > 20  # the construction found enough elements (1 in 256 has top >= 2^32 - 2^24)
    x[::4] = 0.0
    x = np.where(amb != 0, amb, x).astype(np.float32)
    check_sr_kernel(x, name, np.union1d(np.flatnonzero(amb), np.arange(0, size, 61)), (0, 31, 33))
