"""Bit-level views of arrays for the comparators and strategies: codes, exact values, order keys, classes.

Everything here is computed from the format descriptor's fields with integer arithmetic, independently of
``emulator.numerics.cast``: the comparators are used to test the casts, so they must not lean on them.

A :class:`BitView` holds one array as (codes, exact float64 values, NaN mask, order keys). The order key of a
non-NaN code is its signed magnitude index (``-0`` and ``+0`` both 0, inf one past max finite), so the distance
in ulps between two codes of a format is the difference of their keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ArgumentError, DtypeError
from ..numerics import formats as _formats
from ..numerics.formats import Format

__all__ = ["BitView", "FLOAT64", "as_bitview", "resolve_format", "decode_exact", "order_key", "code_classes",
           "CODE_CLASSES"]

# float64 is not an emulated format (no Format entry), but comparisons of reference values need it.
FLOAT64 = "float64"


@dataclass(frozen=True)
class BitView:
    """One array seen bit by bit in a format (``fmt`` is a Format, or the string "float64")."""

    fmt: "Format | str"
    codes: np.ndarray   # uint64, the raw code of each element (tf32: the fp32-layout container)
    value: np.ndarray   # float64, exact value of each element (NaN where NaN)
    nan: np.ndarray     # bool
    key: np.ndarray     # int64, signed magnitude index (meaningless where NaN)

    @property
    def name(self) -> str:
        return self.fmt if isinstance(self.fmt, str) else self.fmt.name

    @property
    def code_width(self) -> int:
        """Hex digits needed to print one code."""
        if isinstance(self.fmt, str):
            return 16
        return self.fmt.storage_bits // 4


def resolve_format(fmt) -> "Format | str":
    """A Format for a name/dtype/Format, or FLOAT64 for float64."""
    if isinstance(fmt, str) and fmt.strip().lower() in ("float64", "f64", "fp64", "double"):
        return FLOAT64
    if not isinstance(fmt, (str, Format)):
        try:
            if np.dtype(fmt) == np.float64:
                return FLOAT64
        except TypeError:
            pass
    return _formats.get(fmt)


def _fields(codes: np.ndarray, fmt: Format):
    c = codes.astype(np.uint64) >> np.uint64(fmt.pad_bits)
    mbits = fmt.mantissa_bits
    mant = c & np.uint64((1 << mbits) - 1)
    exp = (c >> np.uint64(mbits)) & np.uint64((1 << fmt.exponent_bits) - 1)
    if fmt.signed:
        sign = (c >> np.uint64(fmt.exponent_bits + mbits)) & np.uint64(1)
    else:
        sign = np.zeros_like(c)
    return sign.astype(bool), exp.astype(np.int64), mant.astype(np.int64)


def _nan_mask(codes: np.ndarray, fmt: Format) -> np.ndarray:
    mag = codes.astype(np.uint64) & np.uint64(fmt.magnitude_mask)
    if fmt.nan_kind == "ieee":
        return mag > np.uint64(fmt.inf_code)
    if fmt.nan_kind == "all_ones":
        return mag == np.uint64(fmt.magnitude_mask)
    return np.zeros(codes.shape, dtype=bool)


def decode_exact(codes: np.ndarray, fmt: Format) -> np.ndarray:
    """Exact float64 value of each code (every emulated format fits float64 exactly)."""
    sign, exp, mant = _fields(codes, fmt)
    mbits = fmt.mantissa_bits
    if fmt.has_subnormals:
        sub = exp == 0
        scale = np.where(sub, fmt.emin - mbits, exp - fmt.bias - mbits)
        sig = np.where(sub, mant, mant + (1 << mbits))
    else:
        scale = exp - fmt.bias - mbits
        sig = mant + (1 << mbits)
    value = np.ldexp(sig.astype(np.float64), scale.astype(np.int32))
    if fmt.has_inf:
        inf = (codes.astype(np.uint64) & np.uint64(fmt.magnitude_mask)) == np.uint64(fmt.inf_code)
        value = np.where(inf, np.inf, value)
    value = np.where(_nan_mask(codes, fmt), np.nan, value)
    return np.where(sign, -value, value)


def order_key(codes: np.ndarray, fmt: Format) -> np.ndarray:
    """Signed magnitude index of each code: consecutive representable values have consecutive keys."""
    c = codes.astype(np.uint64)
    mag = ((c & np.uint64(fmt.magnitude_mask)) >> np.uint64(fmt.pad_bits)).astype(np.int64)
    if not fmt.signed:
        return mag
    neg = (c & np.uint64(fmt.sign_mask)) != 0
    return np.where(neg, -mag, mag)


def _float64_view(arr: np.ndarray) -> BitView:
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    bits = arr.view(np.uint64)
    mag = (bits & np.uint64(0x7FFF_FFFF_FFFF_FFFF)).astype(np.int64)
    key = np.where((bits >> np.uint64(63)) != 0, -mag, mag)
    return BitView(FLOAT64, bits.copy(), arr.copy(), np.isnan(arr), key)


def _view_of_codes(codes: np.ndarray, fmt: Format) -> BitView:
    return BitView(fmt, codes.astype(np.uint64), decode_exact(codes, fmt), _nan_mask(codes, fmt),
                   order_key(codes, fmt))


def _codes_from_floats(arr: np.ndarray, fmt: Format, operand: str) -> np.ndarray:
    """Codes of float values that ``fmt`` represents exactly; ValueError naming the first one it cannot."""
    x = np.asarray(arr, dtype=np.float64)
    if fmt.ml_dtype is not None:
        with np.errstate(all="ignore"):
            codes = x.astype(fmt.ml_dtype).view(fmt.code_dtype)
    else:  # tfloat32: the fp32 bit pattern is the container code
        codes = x.astype(np.float32).view(np.uint32)
        codes = np.where(np.isnan(x), codes, codes & np.uint32(~((1 << fmt.pad_bits) - 1) & 0xFFFFFFFF))
    back = decode_exact(codes, fmt)
    bad = ~((back == x) | (np.isnan(back) & np.isnan(x)))
    bad |= (back == 0) & (np.signbit(back) != np.signbit(x))
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ArgumentError(
            f"{operand}{list(idx)} = {x[idx]!r} is not exactly representable in {fmt.name}; pass codes, an array of "
            f"that format, or the result of a cast"
        )
    return codes.astype(fmt.code_dtype)


def _format_of_dtype(dtype: np.dtype):
    """The format whose native dtype is ``dtype`` (float32, float16, ml_dtypes types, float64), else None."""
    if dtype == np.float64:
        return FLOAT64
    if dtype.kind in "uib":
        return None
    try:
        return _formats.get(dtype)
    except (ValueError, TypeError):
        return None


def as_bitview(arr, fmt, operand: str) -> BitView:
    """View ``arr`` (codes, float array or ml_dtypes array) in format ``fmt`` (a resolved format or None)."""
    arr = np.asarray(arr)
    native = _format_of_dtype(arr.dtype)
    if fmt is None:
        if native is None:
            if arr.dtype.kind in "ui":
                raise DtypeError(f"{operand} holds integer codes ({arr.dtype}); pass fmt= to say which format they "
                                "encode")
            raise DtypeError(f"{operand} has dtype {arr.dtype}, which is not a floating-point format; pass fmt=")
        fmt = native
    if fmt == FLOAT64:
        if arr.dtype.kind in "ui":
            if arr.dtype.itemsize != 8:
                raise DtypeError(f"{operand}: float64 codes must be 64-bit integers, got {arr.dtype}")
            return _float64_view(arr.astype(np.uint64).view(np.float64))
        return _float64_view(arr)
    if arr.dtype.kind in "ui":
        bad = arr.astype(np.int64) if arr.dtype.kind == "i" else arr.astype(np.uint64)
        width = fmt.bits + fmt.pad_bits
        if (arr.dtype.kind == "i" and (bad < 0).any()) or (bad.astype(np.uint64) >= np.uint64(1 << width)).any():
            raise ArgumentError(f"{operand} holds codes outside [0, 2^{width}), the codes of {fmt.name}")
        return _view_of_codes(arr.astype(fmt.code_dtype), fmt)
    if native is fmt:
        return _view_of_codes(np.ascontiguousarray(arr).view(fmt.code_dtype), fmt)
    if arr.dtype.kind not in "f" and native is None:
        raise DtypeError(f"{operand} has dtype {arr.dtype}; expected codes or floating-point values")
    return _view_of_codes(_codes_from_floats(arr, fmt, operand), fmt)


# ---- edge-case classes of codes --------------------------------------------------------------------------------

#: The edge-case classes a code can fall in (a code may be in several, e.g. max subnormal and max finite for e2m1
#: only in degenerate formats; the first matching one in this order is reported).
CODE_CLASSES = ("nan", "inf", "zero", "negative_zero", "min_subnormal", "max_subnormal", "min_normal",
                "max_finite", "one", "subnormal", "normal")


def code_classes(codes: np.ndarray, fmt) -> np.ndarray:
    """The edge-case class (a name from :data:`CODE_CLASSES`) of each code, as an array of str."""
    fmt = _formats.get(fmt)
    codes = np.asarray(codes).astype(np.uint64)
    shift = np.uint64(fmt.pad_bits)
    mag = (codes & np.uint64(fmt.magnitude_mask)) >> shift
    neg = (codes & np.uint64(fmt.sign_mask)) != 0
    _, exp, _ = _fields(codes, fmt)
    out = np.full(codes.shape, "normal", dtype=object)
    one = (fmt.bias << fmt.mantissa_bits)
    top = np.uint64(fmt.max_code >> fmt.pad_bits)
    rules = [
        ("normal", np.ones(codes.shape, bool)),
        ("subnormal", (exp == 0) & (mag != 0) & fmt.has_subnormals),
        ("one", mag == np.uint64(one)),
        ("max_finite", mag == top),
        ("min_normal", (mag == np.uint64(1 << fmt.mantissa_bits)) if fmt.has_subnormals else (mag == 0)),
        ("max_subnormal", (mag == np.uint64((1 << fmt.mantissa_bits) - 1)) & fmt.has_subnormals),
        ("min_subnormal", (mag == 1) & fmt.has_subnormals),
        ("zero", (mag == 0) & fmt.has_zero & ~neg),
        ("negative_zero", (mag == 0) & fmt.has_zero & neg),
    ]
    if fmt.has_inf:
        rules.append(("inf", mag == np.uint64(fmt.inf_code >> fmt.pad_bits)))
    rules.append(("nan", _nan_mask(codes, fmt)))
    for name, mask in rules:  # later rules take precedence, so the order above is least to most specific
        out[mask] = name
    return out
