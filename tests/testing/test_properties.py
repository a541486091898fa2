"""The shipped cast property test passes on emu.cast and catches deliberately broken casts (mutation check)."""

import re

import ml_dtypes
import numpy as np
import pytest

import emulator as emu
from emulator.numerics import formats
from emulator.testing import check_cast, reference_cast, value_classes


@pytest.mark.parametrize("fmt", formats.names())
def test_reference_matches_ml_dtypes_on_random_and_edge_inputs(fmt):
    """The Fraction reference against an independent oracle (ml_dtypes astype, RNE, non-saturating)."""
    f = formats.get(fmt)
    if f.ml_dtype is None or fmt == "float4_e2m1fn":  # no oracle / NaN policy is ml_dtypes' quirk, checked below
        pytest.skip("no ml_dtypes oracle for this format")
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(400) * 2.0 ** rng.integers(-30, 30, 400)).astype(np.float32)
    x = np.concatenate([x, np.float32([0, -0.0, np.inf, -np.inf, 464, 465, 61440, 1.0625, 2**-10, 3 * 2**-11])])
    if not f.signed:
        x = np.abs(x)
    with np.errstate(over="ignore"):
        want = x.astype(f.ml_dtype).view(f.code_dtype)
    got = np.array([reference_cast(v, fmt) for v in x.tolist()], dtype=np.uint64).astype(f.code_dtype)
    emu.testing.assert_bitwise_equal(got, want, fmt)


def test_reference_fp4_nan_policy():
    assert reference_cast(float("nan"), "float4_e2m1fn", fp4_nan="ml_dtypes") == 0x8
    assert reference_cast(float("-nan"), "float4_e2m1fn", fp4_nan="ml_dtypes") == 0x0
    assert reference_cast(float("nan"), "float4_e2m1fn", fp4_nan="zero") == 0x0
    assert np.float32(np.nan).astype(ml_dtypes.float4_e2m1fn).view(np.uint8) == 0x8


@pytest.mark.parametrize("fmt", formats.names())
@pytest.mark.parametrize("rounding,saturate", [("rne", False), ("rtz", False), ("rne", True)])
def test_emu_cast_passes_the_shipped_property(fmt, rounding, saturate):
    check_cast(emu.cast, fmt, rounding=rounding, saturate=saturate, max_examples=25, shape=(16,), derandomize=True)


@pytest.mark.parametrize("fmt", ["bfloat16", "float8_e5m2", "float32"])
def test_emu_cast_passes_for_float64_inputs(fmt):
    check_cast(emu.cast, fmt, width=64, max_examples=25, shape=(16,), derandomize=True)


# ---- mutation check: deliberately broken casts must be caught ---------------------------------------------------

def ties_away(x, fmt, rounding="rne", saturate=False):
    """Round half away from zero instead of half to even: nudge exact ties one input ulp outward first."""
    x = np.asarray(x)
    tie = value_classes(x, fmt, width=64 if x.dtype == np.float64 else 32) == "tie"
    with np.errstate(over="ignore"):
        nudged = np.where(tie, np.nextafter(x, np.copysign(np.inf, x).astype(x.dtype)), x).astype(x.dtype)
    return emu.cast(nudged, fmt, rounding=rounding, saturate=saturate)


def rtz_always(x, fmt, rounding="rne", saturate=False):
    return emu.cast(x, fmt, rounding="rtz", saturate=saturate)


def saturating_overflow(x, fmt, rounding="rne", saturate=False):
    return emu.cast(x, fmt, rounding=rounding, saturate=True)


def flush_subnormals(x, fmt, rounding="rne", saturate=False):
    f = formats.get(fmt)
    c = emu.cast(x, fmt, rounding=rounding, saturate=saturate)
    exp_field = (c.astype(np.uint64) >> np.uint64(f.mantissa_bits + f.pad_bits)) & np.uint64((1 << f.exponent_bits) - 1)
    return np.where(exp_field == 0, c & np.asarray(f.sign_mask, c.dtype), c).astype(c.dtype)


def positive_zero(x, fmt, rounding="rne", saturate=False):
    f = formats.get(fmt)
    c = emu.cast(x, fmt, rounding=rounding, saturate=saturate)
    return np.where(c == f.sign_mask, 0, c).astype(c.dtype)


def nan_loses_sign(x, fmt, rounding="rne", saturate=False):
    f = formats.get(fmt)
    c = emu.cast(x, fmt, rounding=rounding, saturate=saturate)
    return np.where(np.isnan(x), f.nan_code, c).astype(c.dtype)


def via_fp32(x, fmt, rounding="rne", saturate=False):
    with np.errstate(over="ignore", invalid="ignore"):
        narrowed = np.asarray(x).astype(np.float32)
    return emu.cast(narrowed, fmt, rounding=rounding, saturate=saturate)


MUTANTS = [
    (ties_away, "float8_e4m3fn", 32, "1 ulp"),
    (ties_away, "bfloat16", 32, "1 ulp"),
    (ties_away, "float4_e2m1fn", 32, "1 ulp"),
    (rtz_always, "float8_e5m2", 32, "ulp|inf vs finite"),
    (saturating_overflow, "float8_e4m3fn", 32, "NaN vs number"),
    (saturating_overflow, "float16", 32, "inf vs finite"),
    (flush_subnormals, "bfloat16", 32, "ulp|signed zero"),
    (positive_zero, "float8_e5m2", 32, "signed zero"),
    (nan_loses_sign, "float8_e4m3fn", 32, "NaN payload/sign"),
    (via_fp32, "bfloat16", 64, "1 ulp"),
]


@pytest.mark.parametrize("mutant,fmt,width,kind", MUTANTS, ids=[f"{m.__name__}-{f}" for m, f, _, _ in MUTANTS])
def test_broken_casts_are_caught(mutant, fmt, width, kind):
    with pytest.raises(AssertionError) as info:
        check_cast(mutant, fmt, width=width, max_examples=200, shape=(16,), derandomize=True, shrink=False)
    assert re.search(kind, str(info.value)), str(info.value)


def test_ties_away_is_caught_at_every_seed_tried():
    """Not just for one lucky derandomized run: fresh random runs catch it too."""
    for _ in range(3):
        with pytest.raises(AssertionError):
            check_cast(ties_away, "float8_e4m3fn", max_examples=100, shape=(8,), shrink=False)
