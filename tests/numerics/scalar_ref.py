"""An independent scalar reference for the format definitions, written for the tests only.

It shares no code with ``emulator.numerics``: the format parameters are written out again below from the specs
(IEEE 754, OCP FP8/MX v1.0, the NKI dtype table), values are exact Python integers scaled by 2**SCALE, and
rounding searches the sorted list of every finite code of the target for the nearest one (a different algorithm
from the bit-level encoder under test). Ties go to the code with an even last stored bit; for e8m0fnu (no stored
mantissa) they go up (``e8m0="nearest_up"``) or to the even code (``"nearest_even"``), and ``"ml_dtypes_0.6"``
adds that version's quirk. Overflow is detected by rounding against one virtual code just past the largest finite
one. The reference never looks at ml_dtypes: it is the oracle whatever ml_dtypes version is installed.
"""

from __future__ import annotations

import bisect
import math
import struct
from dataclasses import dataclass
from fractions import Fraction

SCALE = 1200  # exact values are integers v * 2**SCALE (covers float64 subnormals down to 2**-1074 - 100)


@dataclass(frozen=True)
class Spec:
    name: str
    e: int  # exponent bits
    m: int  # stored mantissa bits
    bias: int
    specials: str  # "ieee" | "fn" (only S.1..1 is NaN) | "none" | "e8m0"
    signed: bool = True
    pad: int = 0


SPECS = {s.name: s for s in [
    Spec("float32", 8, 23, 127, "ieee"),
    Spec("tfloat32", 8, 10, 127, "ieee", pad=13),
    Spec("bfloat16", 8, 7, 127, "ieee"),
    Spec("float16", 5, 10, 15, "ieee"),
    Spec("float8_e5m2", 5, 2, 15, "ieee"),
    Spec("float8_e4m3", 4, 3, 7, "ieee"),
    Spec("float8_e4m3fn", 4, 3, 7, "fn"),
    Spec("float4_e2m1fn", 2, 1, 1, "none"),
    Spec("float8_e8m0fnu", 8, 0, 127, "e8m0", signed=False),
]}


def ref_decode(code: int, spec: Spec):
    """('nan', sign) | ('inf', sign) | ('num', sign, Fraction)."""
    code >>= spec.pad
    if spec.specials == "e8m0":
        if code == 0xFF:
            return ("nan", 0)
        return ("num", 0, Fraction(2) ** (code - 127))
    sign = (code >> (spec.e + spec.m)) & 1
    mag = code & ((1 << (spec.e + spec.m)) - 1)
    ef, mf = mag >> spec.m, mag & ((1 << spec.m) - 1)
    top = (1 << spec.e) - 1
    if spec.specials == "ieee" and ef == top:
        return ("inf", sign) if mf == 0 else ("nan", sign)
    if spec.specials == "fn" and mag == (1 << (spec.e + spec.m)) - 1:
        return ("nan", sign)
    if ef == 0:
        val = Fraction(mf, 1 << spec.m) * Fraction(2) ** (1 - spec.bias)
    else:
        val = (1 + Fraction(mf, 1 << spec.m)) * Fraction(2) ** (ef - spec.bias)
    return ("num", sign, val)


class _Table:
    """Sorted finite non-negative magnitudes of a format, as scaled integers, plus one virtual code past the max."""

    def __init__(self, spec: Spec):
        mags = []
        for mag in range(1 << (spec.e + spec.m)):
            d = ref_decode(mag << spec.pad, spec)
            if d[0] == "num":
                mags.append((int(d[2] * 2**SCALE), mag))
        mags.sort()
        self.values = [v for v, _ in mags]
        self.codes = [c for _, c in mags]
        self.max_code = self.codes[-1]
        # the next binade value above max: max + one ulp of max's binade
        vmax = self.values[-1]
        ulp = 2 ** (int(vmax).bit_length() - 1 - spec.m)
        self.virtual = vmax + ulp
        self.virtual_even = ((self.max_code + 1) & 1) == 0
        self.with_virtual = self.values + [self.virtual]


_TABLES: dict[str, _Table] = {}


def _table(spec: Spec) -> _Table:
    if spec.name not in _TABLES:
        _TABLES[spec.name] = _Table(spec)
    return _TABLES[spec.name]


def exact_of_float(x: float, bits: int = 32):
    """('nan', sign, payload) | ('inf', sign) | ('num', sign, scaled int) for a float32 (bits=32) or float64 value.

    For bits=32, ``x`` may be the raw bit pattern (an int): Python floats cannot carry an fp32 NaN payload."""
    if bits == 32:
        (u,) = (x,) if isinstance(x, int) else struct.unpack("<I", struct.pack("<f", x))
        sign, ef, mf, mb, eb, bias = u >> 31, (u >> 23) & 0xFF, u & 0x7FFFFF, 23, 0xFF, 127
    else:
        (u,) = struct.unpack("<Q", struct.pack("<d", x))
        sign, ef, mf, mb, eb, bias = u >> 63, (u >> 52) & 0x7FF, u & ((1 << 52) - 1), 52, 0x7FF, 1023
    if ef == eb:
        return ("inf", sign) if mf == 0 else ("nan", sign, mf, mb)
    sig, exp = (mf, 1 - bias - mb) if ef == 0 else (mf | (1 << mb), ef - bias - mb)
    return ("num", sign, sig << (SCALE + exp))


def ref_encode(x: float, name: str, rounding: str = "rne", saturate: bool = False, bits: int = 32,
               fp4_nan: str = "ml_dtypes", e8m0: str = "nearest_up") -> int:
    """The code of float ``x`` (a float32 value when bits=32, float64 when bits=64) in format ``name``."""
    if e8m0 not in ("nearest_up", "nearest_even", "ml_dtypes_0.6"):
        raise ValueError(f"ref_encode: unknown e8m0 rounding {e8m0!r}")
    spec = SPECS[name]
    t = _table(spec)
    sbit = (1 << (spec.e + spec.m)) if spec.signed else 0
    kind = exact_of_float(x, bits)
    nan_mag = (1 << (spec.e + spec.m)) - 1 if spec.specials in ("fn", "e8m0") else None
    inf_mag = ((1 << spec.e) - 1) << spec.m if spec.specials == "ieee" else None
    if kind[0] == "nan":
        sign = kind[1]
        if spec.specials == "none":
            return (sign if fp4_nan == "zero" else 1 - sign) * sbit
        if spec.specials == "e8m0":
            return 0xFF
        if spec.specials == "fn":
            return (sign * sbit | nan_mag) << spec.pad
        if name in ("float16", "tfloat32", "float32"):  # keep the payload's top bits, never let it become inf
            payload = kind[2] >> (kind[3] - spec.m)
            return (sign * sbit | inf_mag | max(payload, 1)) << spec.pad
        return (sign * sbit | inf_mag | (1 << (spec.m - 1))) << spec.pad
    sign = kind[1]
    if spec.specials == "e8m0" and (sign == 1 or (kind[0] == "num" and kind[2] == 0)):
        return 0xFF
    if kind[0] == "inf":
        if saturate or spec.specials == "none":
            return (sign * sbit | t.max_code) << spec.pad
        return (sign * sbit | (inf_mag if spec.specials == "ieee" else nan_mag)) << spec.pad
    v = kind[2]
    if v == 0:
        return (sign * sbit) << spec.pad
    overflow = False
    if rounding == "rtz":
        i = bisect.bisect_right(t.values, v) - 1
        mag = t.codes[i] if i >= 0 else 0
        if v >= t.virtual:
            mag = t.max_code
        if i < 0:
            mag = 0 if spec.specials != "e8m0" else 0
    else:
        vals = t.with_virtual
        i = bisect.bisect_left(vals, v)
        if i < len(vals) and vals[i] == v:
            pick = i
        elif i == 0:  # below the smallest value: only e8m0fnu, which has no zero, gets here
            pick = 0
        elif i == len(vals):
            pick = len(vals) - 1
        else:
            lo, hi = vals[i - 1], vals[i]
            if 2 * v < lo + hi:
                pick = i - 1
            elif 2 * v > lo + hi:
                pick = i
            else:  # a tie
                if spec.specials == "e8m0":
                    if e8m0 in ("nearest_up", "ml_dtypes_0.6"):
                        pick = i
                    else:  # ties to the even exponent code
                        hi_code = t.codes[i] if i < len(t.codes) else t.max_code + 1
                        pick = i if hi_code % 2 == 0 else i - 1
                else:
                    hi_even = t.virtual_even if i == len(t.codes) else (t.codes[i] & 1) == 0
                    pick = i if hi_even else i - 1
        if spec.specials == "e8m0" and e8m0 == "ml_dtypes_0.6" and v < t.values[1] and v > t.values[0]:
            pick = 1  # ml_dtypes 0.6 sends every value strictly between 2^-127 and 2^-126 up to 2^-126
        if pick == len(t.codes):
            overflow = True
            mag = None
        else:
            mag = t.codes[pick]
    if overflow:
        if saturate or spec.specials == "none":
            mag = t.max_code
        elif spec.specials == "ieee":
            mag = inf_mag
        else:
            mag = nan_mag
    return (sign * sbit | mag) << spec.pad


def f32_from_bits(u: int) -> float:
    return struct.unpack("<f", struct.pack("<I", u))[0]


def is_nan(x: float) -> bool:
    return math.isnan(x)
