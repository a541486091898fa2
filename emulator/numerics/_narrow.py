"""The branch-free encoder of fp32 values (or of fp32 values divided by a power of two) into fp8 and fp4 codes.

:func:`round_magnitude` is the rounding step of the MX kernels' integer path (:mod:`._mx_kernels`, which divide by
the group's scale by subtracting from the exponent field); the plain cast used it too until the float path of
:mod:`._mx_float` (``encode_f32_float``: the FPU rounds below the target's normals, no per-lane shift) replaced it
there, 15-25% faster per core on AVX2 with the same codes. It works in uint32 arithmetic (:mod:`._u32`), without
branches, so LLVM runs it 8 lanes wide on AVX2. It covers signed formats with subnormals and no NaN payload: float8_e5m2, float8_e4m3,
float8_e4m3fn, float4_e2m1fn (every parameter comes from the cast's :class:`~._cast_kernels.CastParams`); the
general encoder of :mod:`._cast_kernels` stays the statement of the rules and handles everything else.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import njit
from ._u32 import add, band, bor, shl, shr, sub, u32

__all__ = ["NarrowConsts", "narrow_consts", "round_magnitude"]


class NarrowConsts(NamedTuple):
    """Constants of :func:`round_magnitude` for one cast (all uint32; see :func:`narrow_consts`)."""

    sh: int  #: bits dropped from a 24-bit significand when the result is a target normal (23 - mantissa bits)
    lim: int  #: suboff - sh: the biased exponent field at and above which the result is a target normal
    suboff: int  #: bias + emin - mbits + 150: minus the biased exponent field, the bits a target subnormal drops
    ebias: int  #: bias + 127 + emin: biased exponent field of the target's smallest normal
    mbits: int  #: mantissa bits of the target
    rmask: int  #: 0xFFFFFFFF for RNE, 0 for RTZ (masks the rounding increment away)
    rbit: int  #: 1 for RNE, 0 for RTZ
    over: int  #: magnitude code of a finite overflow: max finite or the code just above it (inf or NaN)
    inf_out: int  #: magnitude code of an infinite input
    nan_mag: int  #: magnitude code of a NaN input
    nan_flip: int  #: 1 if a NaN's sign is flipped (ml_dtypes' e2m1fn quirk: +NaN -> -0)
    signpos: int  #: bit position of the target's sign


def narrow_consts(p: tuple, bias: int = 0) -> NarrowConsts:
    """The :class:`NarrowConsts` of a signed target format with subnormals and no NaN payload (fp8, fp4), for
    exponent fields biased by ``bias`` (0 for a plain cast; MX adds 256 so that field - scale stays positive)."""
    sh = 23 - p.mantissa_bits
    suboff = bias + p.emin - p.mantissa_bits + 150
    over = p.max_mag if (p.saturate == 1 or p.rtz == 1 or p.nan_kind == 2) else (
        p.inf_mag if p.nan_kind == 0 else p.nan_mag)
    inf_out = p.max_mag if (p.saturate == 1 or p.nan_kind == 2) else (p.inf_mag if p.nan_kind == 0 else p.nan_mag)
    # overflow is min(mag, over): that needs the overflow code to be max finite or the code just above it (true of
    # every fp8/fp4 format: e5m2 inf 0x7C after max 0x7B, e4m3fn NaN 0x7F after 0x7E, e2m1fn saturates)
    if over not in (p.max_mag, p.max_mag + 1):
        raise ValueError(f"narrow_consts: the overflow code {over} is not max finite {p.max_mag} or the next code")
    vals = (sh, suboff - sh, suboff, bias + 127 + p.emin, p.mantissa_bits, 0 if p.rtz else 0xFFFFFFFF,
            0 if p.rtz else 1, over, inf_out, p.nan_mag, 1 if (p.nan_kind == 2 and p.fp4_nan == 0) else 0,
            p.sign_bit.bit_length() - 1)
    return NarrowConsts(*(np.uint32(v) for v in vals))


@njit
def round_magnitude(a, eyb, k):
    """Magnitude code of ``a / 2**s`` rounded once, for the magnitude pattern ``a`` of an fp32 normal, where
    ``eyb = (exponent field of a) - s + bias`` (the quotient's exponent field, biased so that it stays positive),
    with the :class:`NarrowConsts` ``k`` of that bias; uint32 arithmetic throughout, no branches (it vectorises 8 lanes wide).

    The bits to drop from the 24-bit significand are d = max(sh, suboff - eyb), capped at 31 (anything past 25 is
    zero anyway), and the code is ((eyb - ebias if positive) << mbits) + the rounded significand: the implicit bit
    carries into the exponent field, which covers target normals, subnormals and a subnormal rounding up to the
    smallest normal in one formula. RNE adds half - 1 + the kept lsb before the shift; RTZ adds nothing.
    """
    d = min(sub(k.suboff, min(eyb, k.lim)), u32(31))
    sig = bor(band(a, 0x7FFFFF), 0x800000)
    inc = add(shr(k.rmask, sub(33, d)), band(shr(sig, d), k.rbit))  # half - 1 + lsb (RNE) or 0 (RTZ); 1 <= d
    mag = add(shl(sub(max(eyb, k.ebias), k.ebias), k.mbits), shr(add(sig, inc), d))
    return min(mag, k.over)
