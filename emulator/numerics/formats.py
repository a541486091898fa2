"""Format descriptors: one :class:`Format` per number format, everything else derived from its fields.

Code asks the descriptor (``fmt.max_finite``, ``fmt.has_inf``, ``fmt.code_dtype``), never switches on names.
A format's *code* is its raw bit pattern held in an unsigned integer (uint8 for <= 8 bits, uint16 for 16, uint32
for 32). ``tfloat32`` is held in a 32-bit fp32-layout container whose 13 low mantissa bits are zero.

>>> from emulator.numerics import formats
>>> f = formats.get("float8_e4m3fn")
>>> (f.bits, f.exponent_bits, f.mantissa_bits, f.bias, f.max_finite, f.has_inf)
(8, 4, 3, 7, 448.0, False)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import ml_dtypes
import numpy as np
from ..errors import ArgumentError, ArgumentTypeError

from .decode import decode_table

__all__ = ["Format", "get", "names", "FORMATS", "X4_FORMATS", "x4_element"]

_NAN_KINDS = ("ieee", "all_ones", "none")


@dataclass(frozen=True, eq=False)
class Format:
    """A binary floating-point format.

    Parameters
    ----------
    name : the NKI / ml_dtypes name.
    exponent_bits, mantissa_bits : field widths (mantissa without the implicit bit).
    bias : exponent bias.
    nan_kind : ``"ieee"`` (all-ones exponent is inf when the mantissa is 0, NaN otherwise), ``"all_ones"`` (only the
        all-ones code is NaN, there is no inf: e4m3fn, e8m0fnu) or ``"none"`` (no inf, no NaN: e2m1fn).
    signed : False only for the unsigned scale format e8m0fnu.
    has_zero : False for e8m0fnu, whose code 0 is 2^-127.
    pad_bits : zero bits below the mantissa in the container (13 for tfloat32 in its fp32 container).
    ml_dtype : the matching ml_dtypes / NumPy dtype, or None.
    """

    name: str
    exponent_bits: int
    mantissa_bits: int
    bias: int
    nan_kind: str = "ieee"
    signed: bool = True
    has_zero: bool = True
    pad_bits: int = 0
    ml_dtype: object = None

    def __post_init__(self) -> None:
        if self.nan_kind not in _NAN_KINDS:
            raise ArgumentError(f"Format {self.name}: nan_kind {self.nan_kind!r} is not one of {_NAN_KINDS}")

    def __repr__(self) -> str:
        return f"Format({self.name!r})"

    # ---- layout -------------------------------------------------------------------------------------------------
    @property
    def bits(self) -> int:
        """Significant bits of a code (sign + exponent + mantissa), without container padding."""
        return int(self.signed) + self.exponent_bits + self.mantissa_bits

    @property
    def storage_bits(self) -> int:
        """Bits of the container that holds one code (8, 16 or 32)."""
        used = self.bits + self.pad_bits
        return 8 if used <= 8 else 16 if used <= 16 else 32

    @property
    def code_dtype(self) -> np.dtype:
        """The unsigned integer dtype that holds codes."""
        return np.dtype({8: np.uint8, 16: np.uint16, 32: np.uint32}[self.storage_bits])

    @property
    def sign_mask(self) -> int:
        """The sign bit of a code in its container (0 for unsigned formats)."""
        return (1 << (self.bits - 1 + self.pad_bits)) if self.signed else 0

    @property
    def magnitude_mask(self) -> int:
        """The exponent and mantissa bits of a code in its container."""
        return ((1 << (self.exponent_bits + self.mantissa_bits)) - 1) << self.pad_bits

    # ---- specials -----------------------------------------------------------------------------------------------
    @property
    def has_inf(self) -> bool:
        return self.nan_kind == "ieee"

    @property
    def has_nan(self) -> bool:
        return self.nan_kind != "none"

    @property
    def has_subnormals(self) -> bool:
        return self.mantissa_bits > 0

    @property
    def has_negative_zero(self) -> bool:
        return self.signed and self.has_zero

    @property
    def inf_code(self) -> int | None:
        """Code of +inf, or None."""
        if not self.has_inf:
            return None
        return ((1 << self.exponent_bits) - 1) << (self.mantissa_bits + self.pad_bits)

    @property
    def nan_code(self) -> int | None:
        """Code of the canonical (quiet, positive) NaN, or None."""
        if self.nan_kind == "ieee":
            return (((1 << self.exponent_bits) - 1) << self.mantissa_bits | 1 << (self.mantissa_bits - 1)) << self.pad_bits
        if self.nan_kind == "all_ones":
            return self.magnitude_mask
        return None

    @property
    def max_code(self) -> int:
        """Magnitude code of the largest finite value."""
        full = (1 << (self.exponent_bits + self.mantissa_bits)) - 1
        if self.nan_kind == "ieee":
            return (full - (1 << self.mantissa_bits)) << self.pad_bits
        if self.nan_kind == "all_ones":
            return (full - 1) << self.pad_bits
        return full << self.pad_bits

    # ---- range --------------------------------------------------------------------------------------------------
    @property
    def emin(self) -> int:
        """Exponent of the smallest normal value (of code 0 for formats without subnormals)."""
        return (1 - self.bias) if self.has_subnormals else -self.bias

    @property
    def emax(self) -> int:
        """Exponent of the largest finite value."""
        return (self.max_code >> (self.mantissa_bits + self.pad_bits)) - self.bias

    @property
    def max_finite(self) -> float:
        mant = (self.max_code >> self.pad_bits) & ((1 << self.mantissa_bits) - 1)
        return float(np.ldexp(1.0 + mant / (1 << self.mantissa_bits), self.emax))

    @property
    def min_normal(self) -> float:
        return float(np.ldexp(1.0, self.emin))

    @property
    def min_subnormal(self) -> float:
        """Smallest positive value (the smallest normal where there are no subnormals)."""
        return float(np.ldexp(1.0, self.emin - self.mantissa_bits))

    @property
    def eps(self) -> float:
        """Distance from 1.0 to the next larger value."""
        return float(np.ldexp(1.0, -self.mantissa_bits))

    @property
    def decimal_digits(self) -> float:
        return float((self.mantissa_bits + 1) * np.log10(2.0))

    @cached_property
    def value_table(self) -> np.ndarray | None:
        """float32 value of every code, for formats of at most 16 bits (None otherwise). Read-only."""
        if self.storage_bits > 16:
            return None
        table = decode_table(np.arange(1 << self.storage_bits, dtype=np.uint64).astype(self.code_dtype), self)
        table.setflags(write=False)
        return table

    def summary(self) -> str:
        """One line: layout, bias, range and specials."""
        specials = {"ieee": "inf+NaN", "all_ones": "NaN only (all-ones code)", "none": "no inf/NaN"}[self.nan_kind]
        sign = "S" if self.signed else "unsigned"
        return (
            f"{self.name:16s} {sign} E{self.exponent_bits} M{self.mantissa_bits} bias {self.bias:3d}  "
            f"max {self.max_finite:.6g}  min normal {self.min_normal:.6g}  min subnormal {self.min_subnormal:.6g}  "
            f"{specials}"
        )


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("float32", 8, 23, 127, ml_dtype=np.dtype(np.float32)),
        Format("tfloat32", 8, 10, 127, pad_bits=13),
        Format("bfloat16", 8, 7, 127, ml_dtype=np.dtype(ml_dtypes.bfloat16)),
        Format("float16", 5, 10, 15, ml_dtype=np.dtype(np.float16)),
        Format("float8_e5m2", 5, 2, 15, ml_dtype=np.dtype(ml_dtypes.float8_e5m2)),
        Format("float8_e4m3", 4, 3, 7, ml_dtype=np.dtype(ml_dtypes.float8_e4m3)),
        Format("float8_e4m3fn", 4, 3, 7, nan_kind="all_ones", ml_dtype=np.dtype(ml_dtypes.float8_e4m3fn)),
        Format("float4_e2m1fn", 2, 1, 1, nan_kind="none", ml_dtype=np.dtype(ml_dtypes.float4_e2m1fn)),
        Format(
            "float8_e8m0fnu", 8, 0, 127, nan_kind="all_ones", signed=False, has_zero=False,
            ml_dtype=np.dtype(ml_dtypes.float8_e8m0fnu),
        ),
    )
}

#: NKI's packed x4 types: name -> element format. fp8 x4 words are uint32, fp4 x4 words uint16.
X4_FORMATS: dict[str, str] = {
    "float8_e4m3fn_x4": "float8_e4m3fn",
    "float8_e5m2_x4": "float8_e5m2",
    "float4_e2m1fn_x4": "float4_e2m1fn",
}

_ALIASES = {
    "fp32": "float32", "f32": "float32", "tf32": "tfloat32", "bf16": "bfloat16", "fp16": "float16",
    "f16": "float16", "half": "float16", "fp8_e5m2": "float8_e5m2", "e5m2": "float8_e5m2",
    "fp8_e4m3": "float8_e4m3", "e4m3": "float8_e4m3", "fp8_e4m3fn": "float8_e4m3fn", "e4m3fn": "float8_e4m3fn",
    "fp4": "float4_e2m1fn", "e2m1": "float4_e2m1fn", "fp4_e2m1fn": "float4_e2m1fn", "e2m1fn": "float4_e2m1fn",
    "e8m0": "float8_e8m0fnu", "e8m0fnu": "float8_e8m0fnu",
}


def names() -> list[str]:
    """The canonical format names."""
    return list(FORMATS)


def get(fmt: "str | Format | np.dtype | type", *, name: str = "fmt") -> Format:
    """The :class:`Format` for a name, an alias (``bf16``, ``e4m3fn``...), a NumPy/ml_dtypes dtype or a Format.

    Raises :class:`~emulator.errors.ArgumentError` (a ``ValueError``) naming the valid choices for an unknown name,
    :class:`~emulator.errors.ArgumentTypeError` (a ``TypeError``) for anything else; ``name`` is how the message
    calls the argument (e.g. ``"cast: fmt"``).

    >>> get("bf16").name
    'bfloat16'
    """
    if isinstance(fmt, Format):
        return fmt
    if fmt is None:  # np.dtype(None) is float64: say what was passed, not "dtype float64"
        raise ArgumentTypeError(f"{name}: None is not a format; give a name ({', '.join(FORMATS)}), a Format or "
                                "a dtype")
    if isinstance(fmt, str):
        key = fmt.strip().lower()
        key = _ALIASES.get(key, key)
        if key in FORMATS:
            return FORMATS[key]
        if key in X4_FORMATS:
            raise ArgumentError(
                f"{name} {fmt!r} is a packed x4 type; use its element format {X4_FORMATS[key]!r} with "
                "pack_x4/unpack_x4"
            )
        raise ArgumentError(f"{name}: unknown format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    try:
        dt = np.dtype(fmt)
    except TypeError:
        raise ArgumentTypeError(f"{name} must be a name, a Format or a dtype, got {fmt!r}") from None
    for f in FORMATS.values():
        if f.ml_dtype is not None and f.ml_dtype == dt:
            return f
    raise ArgumentError(f"{name}: dtype {dt} is not an emulated format; valid formats: {', '.join(FORMATS)}")


def x4_element(name: str) -> Format:
    """The element format of an x4 name (``float8_e4m3fn_x4`` -> float8_e4m3fn); plain names pass through."""
    key = name.strip().lower()
    return get(X4_FORMATS.get(key, key))
