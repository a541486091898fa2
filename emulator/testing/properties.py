"""Shipped property tests for casts: an exact scalar reference and a hypothesis-driven checker.

:func:`reference_cast` rounds one value with ``fractions.Fraction`` arithmetic straight from the definitions
(IEEE 754 round-to-nearest-even / toward zero, OCP FP8/MX overflow rules, the emulator's declared policies for
NaN to e2m1fn and e8m0fnu). It shares nothing with ``emulator.numerics.cast`` but the format descriptor's fields.

:func:`check_cast` draws edge-biased arrays with :func:`~emulator.testing.values` and asserts that a cast function
matches the reference bit for bit, and that it is odd-symmetric (``cast(-x) == cast(x) ^ sign``). Point it at
``emu.cast`` (the default), at your own cast, or at a deliberately broken one to see it caught.

>>> from emulator.testing import check_cast
>>> check_cast(fmt="float8_e4m3fn", max_examples=20)
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Callable

import numpy as np

from ..config import get_settings
from ..errors import ArgumentError
from ..numerics import formats as _formats
from ..numerics.formats import Format
from .comparators import assert_bitwise_equal

__all__ = ["reference_cast", "check_cast"]

# Formats whose NaN output keeps (some of) the input payload, as NumPy's own conversions do: only NaN-ness and
# sign are checked for them.
_PAYLOAD_FORMATS = ("float32", "tfloat32", "float16")


def _encode_value(value: Fraction, fmt: Format) -> int:
    """Magnitude code (container layout) of an exactly representable finite ``value`` >= 0."""
    m = fmt.mantissa_bits
    if value == 0:
        mag = 0
    elif value < Fraction(fmt.min_normal) and fmt.has_subnormals:
        mag = int(value / Fraction(2) ** (fmt.emin - m))
    else:
        e = _floor_log2(value)
        mag = ((e + fmt.bias) << m) | (int(value / Fraction(2) ** (e - m)) - (1 << m))
    return mag << fmt.pad_bits


def _floor_log2(v: Fraction) -> int:
    e = v.numerator.bit_length() - v.denominator.bit_length()
    while Fraction(2) ** e > v:
        e -= 1
    while Fraction(2) ** (e + 1) <= v:
        e += 1
    return e


def _round(v: Fraction, fmt: Format, rounding: str, e8m0_rounding: str) -> Fraction:
    """``v`` (> 0) rounded to the format's precision with unbounded exponent above emin."""
    m = fmt.mantissa_bits
    e = max(_floor_log2(v), fmt.emin)
    unit = Fraction(2) ** (e - m)
    q = v / unit
    n = math.floor(q)
    r = q - n
    if fmt.has_zero:
        odd = n % 2 == 1
    else:  # e8m0fnu: a tie lies between 2^e and 2^(e+1); "even" is the parity of the code of 2^e
        odd = e8m0_rounding != "nearest_even" or (e + fmt.bias) % 2 == 1
    if rounding == "rne" and (r > Fraction(1, 2) or (r == Fraction(1, 2) and odd)):
        n += 1
    return n * unit


def _sign_bit(fmt: Format, sign: int) -> int:
    return fmt.sign_mask if (sign and fmt.signed) else 0


def reference_cast(x: float, fmt, rounding: str = "rne", saturate: bool = False, *, width: int = 32,
                   fp4_nan: str | None = None, e8m0_rounding: str | None = None) -> int:
    """The code of one float ``x`` (a float32 value for ``width=32``, float64 for 64) in ``fmt``: exact reference.

    ``rounding`` is ``"rne"`` or ``"rtz"``. Overflow: ``saturate`` or a format without inf/NaN clamps to max finite;
    RTZ never rounds a finite value up to inf; otherwise inf (IEEE formats) or NaN (e4m3fn, e8m0fnu).
    NaN: the canonical NaN with the input's sign (e2m1fn per ``fp4_nan``); e8m0fnu maps NaN, negatives and zero to
    its NaN code, values below 2^-127 to code 0, ties up (``e8m0_rounding="nearest_up"``) or to the even code
    (``"nearest_even"``), and (``"ml_dtypes_0.6"``) ties and everything strictly between 2^-127 and 2^-126 upward.
    Defaults for the policies come from the settings.

    >>> reference_cast(464.0, "float8_e4m3fn"), reference_cast(465.0, "float8_e4m3fn")
    (126, 127)
    """
    fmt = _formats.get(fmt)
    s = get_settings()
    fp4_nan = s.fp4_nan if fp4_nan is None else fp4_nan
    e8m0_rounding = s.e8m0_rounding if e8m0_rounding is None else e8m0_rounding
    if rounding not in ("rne", "rtz"):
        raise ArgumentError(f"reference_cast: rounding must be 'rne' or 'rtz', got {rounding!r}")
    xv = float(np.float32(x)) if width == 32 else float(x)
    if width == 64 and s.wide_input == "via_fp32":
        xv = float(np.float32(xv))
    sign = 1 if math.copysign(1.0, xv) < 0 else 0
    max_mag = fmt.max_code
    if math.isnan(xv):
        if not fmt.has_nan:
            if fp4_nan == "raise":
                raise ArgumentError("reference_cast: NaN has no code in " + fmt.name)
            return _sign_bit(fmt, sign if fp4_nan == "zero" else 1 - sign)
        return _sign_bit(fmt, sign) | fmt.nan_code
    if not fmt.signed and (sign or xv == 0):
        return fmt.nan_code
    if math.isinf(xv):
        if saturate or not fmt.has_nan:
            return _sign_bit(fmt, sign) | max_mag
        return _sign_bit(fmt, sign) | (fmt.inf_code if fmt.has_inf else fmt.nan_code)
    v = abs(Fraction(xv))
    if v == 0:
        return _sign_bit(fmt, sign)
    if not fmt.has_zero and v <= Fraction(fmt.min_normal):
        return 0
    if not fmt.has_zero and e8m0_rounding == "ml_dtypes_0.6" and rounding == "rne" \
            and v < 2 * Fraction(fmt.min_normal):
        return 1  # ml_dtypes 0.6 rounds everything in (2^-127, 2^-126) up
    r = _round(v, fmt, rounding, e8m0_rounding)
    if r > Fraction(fmt.max_finite):
        if saturate or rounding == "rtz" or not fmt.has_nan:
            return _sign_bit(fmt, sign) | max_mag
        return _sign_bit(fmt, sign) | (fmt.inf_code if fmt.has_inf else fmt.nan_code)
    return _sign_bit(fmt, sign) | _encode_value(r, fmt)


def _reference_array(x: np.ndarray, fmt: Format, rounding: str, saturate: bool, width: int) -> np.ndarray:
    flat = [reference_cast(v, fmt, rounding, saturate, width=width) for v in x.reshape(-1).tolist()]
    return np.array(flat, dtype=np.uint64).astype(fmt.code_dtype).reshape(x.shape)


def check_cast(cast_fn: Callable | None = None, fmt="float8_e4m3fn", *, rounding: str = "rne",
               saturate: bool = False, width: int = 32, shape=(32,), max_examples: int = 200,
               derandomize: bool = False, shrink: bool = True) -> None:
    """Property-test ``cast_fn(x, fmt, rounding=..., saturate=...) -> codes`` against :func:`reference_cast`.

    Draws ``max_examples`` arrays of edge-biased cast inputs (:func:`~emulator.testing.values`), then asserts
    bitwise equality with the reference (NaN payloads of fp32/tf32/fp16 outputs: only NaN-ness and sign) and odd
    symmetry. Raises AssertionError with hypothesis' falsifying example (minimised unless ``shrink=False``, which
    is faster when you only need to know *whether* it fails) and the comparator's report.

    >>> import emulator as emu
    >>> check_cast(emu.cast, "bfloat16", rounding="rtz", max_examples=10)
    """
    from hypothesis import Phase, given, settings as hsettings
    from .strategies import values

    if cast_fn is None:
        from ..numerics.cast import cast as cast_fn
    fmt = _formats.get(fmt)
    fdt = np.float32 if width == 32 else np.float64

    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if shrink else [])

    @hsettings(max_examples=max_examples, deadline=None, database=None, derandomize=derandomize, phases=phases)
    @given(values(fmt, shape, width=width, allow_nan=fmt.has_nan or get_settings().fp4_nan != "raise"))
    def property_(x):
        x = x.astype(fdt)
        got = np.asarray(cast_fn(x, fmt, rounding=rounding, saturate=saturate))
        want = _reference_array(x, fmt, rounding, saturate, width)
        if fmt.name in _PAYLOAD_FORMATS:
            from ._bits import as_bitview
            gv = as_bitview(got.astype(fmt.code_dtype), fmt, "actual")
            same_nan = gv.nan.reshape(got.shape) & np.isnan(x) & (np.signbit(x) == (
                (got.astype(np.uint64) & np.uint64(fmt.sign_mask)) != 0))
            want = np.where(same_nan, got.astype(fmt.code_dtype), want)
        assert_bitwise_equal(got, want, fmt, err_msg=f"{fmt.name} {rounding} saturate={saturate} vs reference")
        if fmt.signed:
            neg = np.asarray(cast_fn(-x, fmt, rounding=rounding, saturate=saturate))
            flipped = got ^ np.asarray(fmt.sign_mask, dtype=got.dtype)
            if not fmt.has_nan:  # NaN -> signed zero policies are not odd-symmetric by construction
                keep = ~np.isnan(x)
                neg, flipped = neg[keep], flipped[keep]
            assert_bitwise_equal(neg, flipped, fmt, err_msg=f"{fmt.name}: cast(-x) is not cast(x) with the sign "
                                                            "flipped")

    property_()
