"""Casts and decodes against independent references: the scalar reference (scalar_ref.py), ml_dtypes, and
exhaustive enumeration of every 8- and 16-bit pattern. Every test runs the Numba kernel and its NumPy twin.

The scalar reference is the oracle for every setting. ml_dtypes is a cross-check only where its semantics coincide
with the setting under test, and its versions differ (docs/numerics.md): 0.5/0.6 send every value in (2^-127, 2^-126)
up to 2^-126 when casting to float8_e8m0fnu and round float64 through float32; 0.7 rounds both to nearest, once.
``ml_dtypes_behaviour()`` probes the installed version, and the ml_dtypes comparisons run under the settings that
reproduce it (``_like_ml_dtypes``)."""

from __future__ import annotations

import math
import struct

import ml_dtypes
import numpy as np
import pytest

import emulator as emu
from emulator.numerics.ml_dtypes_versions import ml_dtypes_behaviour
from emulator.numerics import formats
from emulator.testing import assert_bitwise_equal, reference_cast
from scalar_ref import SPECS, f32_from_bits, ref_decode, ref_encode

NARROW = ["tfloat32", "bfloat16", "float16", "float8_e5m2", "float8_e4m3", "float8_e4m3fn", "float4_e2m1fn",
          "float8_e8m0fnu"]
WITH_ML = [n for n in NARROW if formats.get(n).ml_dtype is not None]


@pytest.fixture(params=[True, False], ids=["numba", "numpy"])
def path(request):
    with emu.settings(numba=request.param):
        yield request.param


def _all16_as_f32() -> np.ndarray:
    """Every bf16 bit pattern and every fp16 bit pattern, as exact float32 values."""
    b = np.arange(1 << 16, dtype=np.uint32)
    bf = (b << 16).view(np.float32)
    hf = b.astype(np.uint16).view(np.float16).astype(np.float32)
    return np.concatenate([bf, hf])


ALL16 = _all16_as_f32()


def _ml_codes(x: np.ndarray, fmt) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        return x.astype(fmt.ml_dtype).view(fmt.code_dtype)


ML = ml_dtypes_behaviour()
E8M0_MODES = ["nearest_up", "nearest_even", "ml_dtypes_0.6"]
# What each ml_dtypes release does where releases differ, as the settings that reproduce it (probed by
# ml_dtypes_behaviour; measured on 0.5.4, 0.6.0 and 0.7.0, and read in the 0.6.0 source, docs/numerics.md).
KNOWN_ML_DTYPES = {
    "0.5": {"e8m0_rounding": "ml_dtypes_0.6", "wide_input": "via_fp32"},
    "0.6": {"e8m0_rounding": "ml_dtypes_0.6", "wide_input": "via_fp32"},
    "0.7": {"e8m0_rounding": "nearest_up", "wide_input": "exact"},
}


def _like_ml_dtypes(fmt, wide: bool = False):
    """Settings under which casts to ``fmt`` reproduce the installed ml_dtypes (the e8m0 rounding, and for float64
    input, ``wide``, whether it rounds once); skips if no setting reproduces it."""
    over = {}
    if formats.get(fmt).name == "float8_e8m0fnu":
        if ML.e8m0_rounding is None:
            pytest.skip(f"{ML}: no e8m0_rounding setting reproduces this ml_dtypes")
        over["e8m0_rounding"] = ML.e8m0_rounding
    if wide:
        over["wide_input"] = ML.wide_input
    return emu.settings(**over)


def test_installed_ml_dtypes_is_a_known_behaviour():
    """The ml_dtypes cross-checks below follow the installed version: say which one it is and what it does."""
    release = ".".join(ML.version.split(".")[:2])
    if release in KNOWN_ML_DTYPES:
        assert ML.settings() == KNOWN_ML_DTYPES[release], str(ML)
    else:  # a newer release: its behaviour must still be one of our settings, then add it to the table and docs
        assert ML.e8m0_rounding is not None, f"{ML}: document this release in docs/numerics.md"


# ---- descriptors -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", WITH_ML)
def test_descriptor_matches_ml_dtypes_finfo(name):
    fmt = formats.get(name)
    fi = ml_dtypes.finfo(fmt.ml_dtype)
    assert fmt.max_finite == float(fi.max)
    assert fmt.min_normal == float(fi.smallest_normal)
    assert fmt.min_subnormal == float(fi.smallest_subnormal)
    assert fmt.bits == fi.bits


@pytest.mark.parametrize("name", list(SPECS))
def test_descriptor_matches_the_spec_table(name):
    fmt, spec = formats.get(name), SPECS[name]
    assert (fmt.exponent_bits, fmt.mantissa_bits, fmt.bias, fmt.pad_bits) == (spec.e, spec.m, spec.bias, spec.pad)
    assert fmt.max_finite == float(ref_decode(fmt.max_code, spec)[2])
    assert fmt.has_inf == (spec.specials == "ieee")


def test_documented_maxima():
    # NKI dtype table: e4m3 (legacy) 240, e4m3fn 448, e5m2 57344, e2m1 6, e8m0 2^127
    assert [formats.get(n).max_finite for n in ("float8_e4m3", "float8_e4m3fn", "float8_e5m2", "float4_e2m1fn")] \
        == [240.0, 448.0, 57344.0, 6.0]
    assert formats.get("float8_e8m0fnu").max_finite == 2.0**127


def test_unknown_format_lists_the_valid_names():
    with pytest.raises(ValueError, match="unknown format 'fp9'.*float8_e4m3fn"):
        formats.get("fp9")
    with pytest.raises(ValueError, match="packed x4"):
        formats.get("float8_e4m3fn_x4")
    with pytest.raises(TypeError):
        formats.get(3.5)


# ---- decode: every code of every <=16-bit format ---------------------------------------------------------------

@pytest.mark.parametrize("name", NARROW[1:])
def test_decode_every_code(name):
    fmt, spec = formats.get(name), SPECS[name]
    codes = np.arange(1 << fmt.bits, dtype=np.uint32).astype(fmt.code_dtype)
    got = emu.decode(codes, fmt)
    assert got.dtype == np.float32
    for c, g in zip(codes.tolist(), got.tolist()):
        ref = ref_decode(c, spec)
        if ref[0] == "nan":
            assert math.isnan(g), (name, hex(c))
        elif ref[0] == "inf":
            assert g == (-math.inf if ref[1] else math.inf), (name, hex(c))
        else:
            assert g == float(ref[2]) * (-1 if ref[1] else 1), (name, hex(c))
            assert math.copysign(1.0, g) == (-1.0 if ref[1] else 1.0), (name, hex(c))


@pytest.mark.parametrize("name", WITH_ML)
def test_decode_matches_ml_dtypes_on_every_code(name):
    fmt = formats.get(name)
    codes = np.arange(1 << fmt.bits, dtype=np.uint32).astype(fmt.code_dtype)
    ref = codes.view(fmt.ml_dtype).astype(np.float32)
    got = emu.decode(codes, fmt)
    np.testing.assert_array_equal(got.view(np.uint32), ref.view(np.uint32))  # NaN sign and payload included
    np.testing.assert_array_equal(fmt.value_table[: 1 << fmt.bits].view(np.uint32), ref.view(np.uint32))


@pytest.mark.parametrize("numba", [True, False])
@pytest.mark.parametrize("name", [n for n in WITH_ML if formats.get(n).storage_bits == 8])
def test_decode_of_large_arrays_matches_ml_dtypes(name, numba):
    """8-bit decodes above the serial size take the threaded gather kernel (and its NumPy twin): every code, many
    times over, in a 2-D array, bit for bit against ml_dtypes."""
    fmt = formats.get(name)
    codes = np.random.default_rng(7).integers(0, 1 << fmt.bits, (300, 700)).astype(np.uint8)
    with emu.settings(numba=numba):
        got = emu.decode(codes, fmt)
    assert got.shape == codes.shape and got.dtype == np.float32
    np.testing.assert_array_equal(got.view(np.uint32), codes.view(fmt.ml_dtype).astype(np.float32).view(np.uint32))


def test_decode_accepts_ml_dtypes_arrays_and_rejects_wrong_code_dtypes():
    x = np.array([1.5, -2.0], dtype=ml_dtypes.bfloat16)
    np.testing.assert_array_equal(emu.decode(x, "bfloat16"), [1.5, -2.0])
    with pytest.raises(TypeError, match="codes of float8_e4m3fn must be uint8"):
        emu.decode(np.array([1, 2], np.int32), "float8_e4m3fn")
    with pytest.raises(ValueError, match="4-bit; got code 16"):
        emu.decode(np.array([16], np.uint8), "float4_e2m1fn")


# ---- cast: every bf16 and fp16 pattern, against ml_dtypes and the scalar reference ----------------------------

@pytest.mark.parametrize("name", WITH_ML)
def test_rne_matches_ml_dtypes_on_all_16bit_patterns(name, path):
    fmt = formats.get(name)
    with _like_ml_dtypes(fmt):
        assert_bitwise_equal(emu.cast(ALL16, fmt), _ml_codes(ALL16, fmt), fmt, err_msg=str(ML))


@pytest.mark.parametrize("name", NARROW)
@pytest.mark.parametrize("rounding,saturate", [("rne", False), ("rtz", False), ("rne", True), ("rtz", True)])
def test_cast_matches_scalar_reference_on_all_16bit_patterns(name, rounding, saturate, path):
    fmt = formats.get(name)
    if fmt.bits <= 8:
        xs = ALL16
    elif name == "tfloat32":  # every 16-bit value is exact in tf32: use fp32 patterns that drop bits
        xs = _sampled_f32(4000, seed=5)
    else:  # bf16/fp16 targets: ml_dtypes checks all patterns under rne; the Python reference samples
        xs = ALL16[::5]
    got = emu.cast(xs, fmt, rounding=rounding, saturate=saturate)
    for u, g in zip(xs.view(np.uint32).tolist(), got.tolist()):
        r = ref_encode(u, name, rounding, saturate)
        assert g == r, (name, rounding, saturate, hex(u), hex(g), hex(r))


def test_float32_to_float32_is_the_identity_unless_saturating(path):
    x = _sampled_f32(100_000, seed=9)
    np.testing.assert_array_equal(emu.cast(x, "float32"), x.view(np.uint32))
    sat = emu.cast(np.array([np.inf, -np.inf, 1.5], np.float32), "float32", saturate=True)
    assert sat.tolist() == [0x7F7FFFFF, 0xFF7FFFFF, 0x3FC00000]


def test_float16_input_equals_its_float32_widening(path):
    h = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    for name in ("bfloat16", "float8_e4m3fn", "float4_e2m1fn"):
        np.testing.assert_array_equal(emu.cast(h, name), emu.cast(h.astype(np.float32), name))


@pytest.mark.parametrize("name", WITH_ML)
def test_ml_dtypes_inputs_cast_between_formats(name, path):
    src = np.arange(256, dtype=np.uint8).view(ml_dtypes.float8_e5m2)
    fmt = formats.get(name)
    with _like_ml_dtypes(fmt):
        np.testing.assert_array_equal(emu.cast(src, fmt), _ml_codes(src.astype(np.float32), fmt))


# ---- millions of fp32 patterns ----------------------------------------------------------------------------------

def _sampled_f32(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    # half the samples concentrated in the exponent range where narrow formats live, rounding bits randomised
    near = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    exps = rng.integers(127 - 30, 127 + 20, n).astype(np.uint32)
    near = (near & np.uint32(0x807FFFFF)) | (exps << np.uint32(23))
    return np.concatenate([bits, near]).view(np.float32)


@pytest.mark.parametrize("name", WITH_ML)
def test_rne_matches_ml_dtypes_on_millions_of_fp32_patterns(name):
    fmt = formats.get(name)
    x = _sampled_f32(1_500_000, seed=hash(name) % 1000)
    with _like_ml_dtypes(fmt):
        assert_bitwise_equal(emu.cast(x, fmt), _ml_codes(x, fmt), fmt, err_msg=str(ML))


@pytest.mark.parametrize("name", NARROW)
@pytest.mark.parametrize("rounding", ["rne", "rtz"])
@pytest.mark.parametrize("saturate", [False, True])
def test_numba_and_numpy_paths_agree_on_fp32_and_fp64(name, rounding, saturate):
    x32 = _sampled_f32(200_000, seed=7)
    rng = np.random.default_rng(3)
    with np.errstate(invalid="ignore"):
        widened = x32.astype(np.float64) * (1 + rng.uniform(-1e-9, 1e-9, x32.size))
    x64 = np.concatenate([widened,
                          rng.integers(0, 2**63, 100_000, dtype=np.int64).view(np.float64)])
    for x in (x32, x64):
        with emu.settings(numba=True):
            a = emu.cast(x, name, rounding=rounding, saturate=saturate)
        with emu.settings(numba=False):
            b = emu.cast(x, name, rounding=rounding, saturate=saturate)
        assert_bitwise_equal(a, b, name, err_msg="Numba vs NumPy")


# ---- ties and overflow boundaries ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", WITH_ML)
def test_every_midpoint_and_its_neighbours(name, path):
    """Every exact halfway point between consecutive codes, and the fp32 values just below and above it."""
    fmt = formats.get(name)
    vals = emu.decode(np.arange(1 << fmt.bits, dtype=np.uint32).astype(fmt.code_dtype), fmt).astype(np.float64)
    pos = np.unique(vals[np.isfinite(vals) & (vals >= 0)])
    mids = ((pos[:-1] + pos[1:]) / 2).astype(np.float32)
    mids = np.concatenate([mids, [fmt.max_finite + (fmt.max_finite - pos[-2]) / 2]]).astype(np.float32)
    near = np.concatenate([mids, np.nextafter(mids, np.float32(0)), np.nextafter(mids, np.float32(np.inf))])
    near = np.concatenate([near, -near])
    with _like_ml_dtypes(fmt):
        assert_bitwise_equal(emu.cast(near, fmt), _ml_codes(near, fmt), fmt, err_msg=str(ML))


def test_documented_overflow_behaviour(path):
    f32 = lambda *v: np.array(v, np.float32)  # noqa: E731
    # e4m3fn: 448..464 rounds to 448, above 464 is NaN (ml_dtypes), saturate clamps
    assert emu.cast(f32(464, 465, -465, np.inf), "float8_e4m3fn").tolist() == [0x7E, 0x7F, 0xFF, 0x7F]
    assert emu.cast(f32(465, -np.inf, np.nan), "float8_e4m3fn", saturate=True).tolist() == [0x7E, 0xFE, 0x7F]
    # e5m2: 61439 -> 57344, 61440 -> inf
    assert emu.cast(f32(61439, 61440), "float8_e5m2").tolist() == [0x7B, 0x7C]
    # legacy e4m3: max 240, 248 (the tie) -> inf
    assert emu.cast(f32(247, 248), "float8_e4m3").tolist() == [0x77, 0x78]
    # e2m1 saturates to 6 with no inf
    assert emu.cast(f32(7, 100, -np.inf), "float4_e2m1fn").tolist() == [0x7, 0x7, 0xF]
    # range_select's FP32_MIN fill becomes -inf in bf16 (reference 2.3)
    assert emu.cast(f32(-3.4028235e38), "bfloat16").tolist() == [0xFF80]
    # RTZ never overflows to inf, but inf stays inf
    assert emu.cast(f32(1e6, np.inf), "float8_e5m2", rounding="rtz").tolist() == [0x7B, 0x7C]


# ---- float64 input: one rounding from the exact value ----------------------------------------------------------

def test_float64_is_rounded_once():
    x = np.array([1.0625 + 2**-40, -431.99999999999994], np.float64)
    # exact: 1.0625+tiny is above the tie 1.0625 -> 1.125; -431.99.. is below the tie 432 -> -416
    want = {"exact": [1.125, -416.0], "via_fp32": [1.0, -448.0]}  # via fp32: the ties 1.0625 and 432, to even
    assert emu.decode(emu.cast(x, "float8_e4m3fn"), "float8_e4m3fn").tolist() == want["exact"]
    with emu.settings(wide_input="via_fp32"):
        assert emu.decode(emu.cast(x, "float8_e4m3fn"), "float8_e4m3fn").tolist() == want["via_fp32"]
    # ml_dtypes <= 0.6 rounds float64 through float32 (double rounding); 0.7 rounds once (its PR #401)
    got_ml = x.astype(ml_dtypes.float8_e4m3fn).astype(np.float64).tolist()
    assert got_ml == want[ML.wide_input], str(ML)


def test_float64_to_float32_matches_the_hardware_conversion(path):
    rng = np.random.default_rng(12)
    x = np.concatenate([rng.integers(0, 2**63, 200_000, dtype=np.int64).view(np.float64),
                        np.ldexp(rng.uniform(1, 2, 200_000), rng.integers(-160, 130, 200_000)),
                        [0.0, -0.0, np.inf, -np.inf, 5e-324, 1e308, 2.0**-150, 3 * 2.0**-151]])
    with np.errstate(over="ignore"):
        ref = x.astype(np.float32)  # IEEE conversion, correctly rounded from the float64 value
    ok = ~np.isnan(x)
    np.testing.assert_array_equal(emu.cast(x, "float32")[ok], ref.view(np.uint32)[ok])


@pytest.mark.parametrize("name", WITH_ML)
def test_float64_matches_ml_dtypes_under_its_wide_input(name, path):
    """Random float64 values (many just off an fp32 value, where rounding once and through fp32 differ) against
    ml_dtypes astype, under the wide_input (and e8m0) setting that reproduces the installed version."""
    rng = np.random.default_rng(21)
    fmt = formats.get(name)
    mags = np.ldexp(rng.uniform(1, 2, 100_000), rng.integers(fmt.emin - fmt.mantissa_bits - 3, fmt.emax + 3, 100_000))
    with np.errstate(invalid="ignore"):  # (NumPy 2.4.6 warns when it widens a NaN)
        mids = _sampled_f32(50_000, seed=22).astype(np.float64)
        x = np.concatenate([mags * rng.choice([-1, 1], mags.size), mids * (1 + rng.uniform(-1e-12, 1e-12, mids.size))])
    if name == "float16":  # NumPy's own dtype: its float64 -> float16 cast rounds once, whatever ml_dtypes does
        with emu.settings(wide_input="exact"):
            assert_bitwise_equal(emu.cast(x, fmt), _ml_codes(x, fmt), fmt)
        return
    with _like_ml_dtypes(fmt, wide=True):
        assert_bitwise_equal(emu.cast(x, fmt), _ml_codes(x, fmt), fmt, err_msg=str(ML))


@pytest.mark.parametrize("name", ["bfloat16", "float16", "float8_e4m3fn", "float4_e2m1fn", "float8_e8m0fnu",
                                  "tfloat32"])
def test_float64_matches_scalar_reference(name, path):
    rng = np.random.default_rng(11)
    fmt = formats.get(name)
    mags = np.ldexp(rng.uniform(1, 2, 3000), rng.integers(fmt.emin - fmt.mantissa_bits - 3, fmt.emax + 3, 3000))
    x = np.concatenate([mags * rng.choice([-1, 1], 3000), [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, 1e308]])
    got = emu.cast(x, fmt)
    for v, g in zip(x.tolist(), got.tolist()):
        assert g == ref_encode(v, name, bits=64), (name, v, hex(g))


# ---- NaN policies ----------------------------------------------------------------------------------------------

def test_nan_to_fp4_policies():
    x = np.array([np.nan, -np.nan], np.float32)
    assert emu.cast(x, "float4_e2m1fn").tolist() == [0x8, 0x0]  # ml_dtypes: sign-flipped zero
    with emu.settings(fp4_nan="zero"):
        assert emu.cast(x, "float4_e2m1fn").tolist() == [0x0, 0x8]
    with emu.settings(fp4_nan="raise"), pytest.raises(ValueError, match=r"NaN at index \(1,\)"):
        emu.cast(np.array([1.0, np.nan], np.float32), "float4_e2m1fn")


# ---- e8m0fnu: the three e8m0_rounding settings against the scalar reference ------------------------------------

def test_e8m0_rounding_settings(path):
    """Ties 1.5 * 2^k, and the fp32 subnormals between 2^-127 (code 0) and 2^-126 (code 1), where the settings
    differ; expected codes from the definitions: code c is 2^(c-127), nearest wins, a tie goes up or to the even code."""
    tiny = 2.0**-127
    x = np.array([1.5, 3.0, 0.75, 6.0, 1.25 * tiny, 1.5 * tiny, 1.75 * tiny, 1.5 * 2.0**127], np.float32)
    want = {
        "nearest_up": [0x80, 0x81, 0x7F, 0x82, 0x00, 0x01, 0x01, 0xFF],  # 1.5 * 2^127 rounds up past 2^127: NaN
        "nearest_even": [0x80, 0x80, 0x7E, 0x82, 0x00, 0x00, 0x01, 0xFE],
        "ml_dtypes_0.6": [0x80, 0x81, 0x7F, 0x82, 0x01, 0x01, 0x01, 0xFF],
    }
    for mode, codes in want.items():
        with emu.settings(e8m0_rounding=mode):
            assert emu.cast(x, "float8_e8m0fnu").tolist() == codes, mode
    assert emu.cast(x, "float8_e8m0fnu").tolist() == want["nearest_up"]  # the default
    assert [ref_encode(float(v), "float8_e8m0fnu", e8m0=m) for m in want for v in x] == sum(want.values(), [])
    # the shipped toolkit's Fraction reference (emulator.testing.reference_cast) agrees
    assert [reference_cast(float(v), "float8_e8m0fnu", e8m0_rounding=m) for m in want for v in x] \
        == sum(want.values(), [])


def _fp32_rounding_classes() -> np.ndarray:
    """One fp32 pattern per rounding class of a target with at most 6 mantissa bits (e8m0, fp8, fp4): the round bit
    lies in the top 16 bits of the pattern, and below it only whether any bit is set matters. Each positive top
    half with low halves 0, 1 and 0xFFFF covers every positive fp32 input; negatives are all NaN for e8m0."""
    hi = np.arange(1 << 15, dtype=np.uint32) << np.uint32(16)
    return np.concatenate([hi, hi | np.uint32(1), hi | np.uint32(0xFFFF)]).view(np.float32)


@pytest.mark.parametrize("mode", E8M0_MODES)
def test_e8m0_every_fp32_class_matches_scalar_reference(mode, path):
    """Every positive fp32 input to e8m0 (by rounding class), each setting, against the scalar reference: this is the
    exhaustive oracle whatever ml_dtypes is installed (the 2^32 sweep compares with ml_dtypes)."""
    x = _fp32_rounding_classes()
    with emu.settings(e8m0_rounding=mode):
        got = emu.cast(x, "float8_e8m0fnu")
    want = np.array([ref_encode(u, "float8_e8m0fnu", e8m0=mode) for u in x.view(np.uint32).tolist()], np.uint8)
    assert_bitwise_equal(got, want, "float8_e8m0fnu", err_msg=mode)


@pytest.mark.parametrize("mode", E8M0_MODES)
def test_e8m0_every_midpoint_matches_scalar_reference(mode, path):
    codes = np.arange(255, dtype=np.uint8)
    vals = emu.decode(codes, "float8_e8m0fnu").astype(np.float64)
    mids = np.concatenate([(vals[:-1] + vals[1:]) / 2, [vals[-1] * 1.5], [vals[0] / 2]]).astype(np.float32)
    x = np.concatenate([mids, np.nextafter(mids, np.float32(0)), np.nextafter(mids, np.float32(np.inf))])
    with emu.settings(e8m0_rounding=mode):
        got = emu.cast(x, "float8_e8m0fnu")
    want = np.array([ref_encode(u, "float8_e8m0fnu", e8m0=mode) for u in x.view(np.uint32).tolist()], np.uint8)
    assert_bitwise_equal(got, want, "float8_e8m0fnu", err_msg=mode)


# ---- errors ----------------------------------------------------------------------------------------------------

def test_bad_inputs_name_the_argument_and_the_choices():
    with pytest.raises(TypeError, match="x: expected a float array.*int64"):
        emu.cast(np.arange(3), "bfloat16")
    with pytest.raises(TypeError, match="complex"):
        emu.cast(np.ones(2, np.complex64), "bfloat16")
    with pytest.raises(ValueError, match="rounding: 'nearest' is not one of 'rne', 'rtz', 'sr'"):
        emu.cast(np.ones(2, np.float32), "bfloat16", rounding="nearest")
    with pytest.raises(ValueError, match="unknown format"):
        emu.cast(np.ones(2, np.float32), "float7")


def test_shapes_and_scalars_are_preserved():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    assert emu.cast(x, "float8_e5m2").shape == (2, 3, 4)
    assert emu.cast(np.float32(2.0), "bfloat16").shape == ()
    assert emu.cast(x[:, ::2, 1], "bfloat16").tolist() == emu.cast(np.ascontiguousarray(x[:, ::2, 1]), "bfloat16").tolist()
    assert emu.round_to(1.0 + 2**-9, "bfloat16").tolist() == 1.0


def test_rounding_for_respects_sr_scope():
    with emu.settings(rounding="sr", sr_scope="psum,collective"):
        from emulator.numerics.cast import rounding_for
        assert rounding_for("psum") == "sr"
        assert rounding_for("engine") == "rne"
    with pytest.raises(ValueError, match="path 'hbm'"):
        rounding_for("hbm")


# ---- exhaustive over all 2^32 fp32 patterns (slow) -------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2", "float8_e4m3", "float4_e2m1fn", "float8_e8m0fnu",
                                  "bfloat16"])
def test_all_fp32_patterns_match_ml_dtypes(name):
    from exhaustive_fp32 import sweep

    mismatches = sweep(name, chunk=1 << 25)
    assert mismatches == [], mismatches[:5]


def _e8m0_kernels(e8m0_rounding, rtz, saturate):
    """(the 8-lane e8m0fnu kernel's arguments, the table kernel's table) for one cast."""
    from emulator.numerics import _cast_kernels as ck

    p = ck.cast_params(formats.get("float8_e8m0fnu"), saturate=saturate, rtz=rtz, e8m0_rounding=e8m0_rounding)
    return ck._e8m0_consts(p), ck._lut16(p)


E8M0_CASTS = [(r, rtz, sat) for r in ("nearest_up", "nearest_even") for rtz in (False, True) for sat in (False, True)]


@pytest.mark.parametrize("e8m0_rounding,rtz,saturate", E8M0_CASTS)
def test_e8m0_branch_free_kernel_matches_the_table_at_every_exponent(e8m0_rounding, rtz, saturate):
    """Every exponent field with the mantissas that decide the rounding (0, 1, around half, half, around the
    subnormal midpoint 0x600000, all ones), both signs, and 4M random patterns; through ``emu.cast`` too."""
    from emulator.numerics import _cast_kernels as ck

    args, table = _e8m0_kernels(e8m0_rounding, rtz, saturate)
    mant = np.array([0, 1, 0x200000, 0x3FFFFF, 0x400000, 0x400001, 0x5FFFFF, 0x600000, 0x600001, 0x7FFFFF], np.uint32)
    grid = ((np.arange(256, dtype=np.uint32)[:, None] << np.uint32(23)) | mant[None, :]).reshape(-1)
    rand = np.random.default_rng(8).integers(0, 2**32, 1 << 22, dtype=np.uint64).astype(np.uint32)
    bits = np.concatenate([grid, grid | np.uint32(0x80000000), rand])
    got, want = np.empty(bits.size, np.uint8), np.empty(bits.size, np.uint8)
    ck._F32_E8M0[0](bits, got, *args)
    ck._F32_LUT[0](bits, want, table)
    np.testing.assert_array_equal(got, want)
    with emu.settings(e8m0_rounding=e8m0_rounding):  # the cast takes this kernel
        np.testing.assert_array_equal(emu.cast(bits.view(np.float32), "float8_e8m0fnu", saturate=saturate,
                                               rounding="rtz" if rtz else "rne"), want)


@pytest.mark.slow
@pytest.mark.parametrize("e8m0_rounding,rtz,saturate", [("nearest_up", False, False), ("nearest_up", False, True),
                                                        ("nearest_up", True, False), ("nearest_even", False, False)])
def test_e8m0_branch_free_kernel_matches_the_table_on_all_fp32_patterns(e8m0_rounding, rtz, saturate):
    """The 8-lane e8m0fnu encoder (``_encode_f32_e8m0``) against the table kernel, whose 2^17 entries the general
    encoder makes (one pattern per (top 16 bits, any low bit set) pair decides an e8m0 code), on every fp32 pattern."""
    from emulator.numerics import _cast_kernels as ck

    args, table = _e8m0_kernels(e8m0_rounding, rtz, saturate)
    chunk = 1 << 24
    base = np.arange(chunk, dtype=np.uint32)
    bits = np.empty(chunk, np.uint32)
    got = np.empty(chunk, np.uint8)
    want = np.empty(chunk, np.uint8)
    for start in range(0, 1 << 32, chunk):
        np.add(base, np.uint32(start), out=bits)
        ck._F32_E8M0[0](bits, got, *args)
        ck._F32_LUT[0](bits, want, table)
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, [(hex(int(bits[i])), int(got[i]), int(want[i])) for i in bad[:5]]
