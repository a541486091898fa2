"""The float path of the MX kernels (:mod:`._mx_kernels`): each element divided by its group's scale with one exact
float32 multiply, then rounded once, 8 lanes wide on AVX2.

For a group whose scale 2^s has -127 <= s <= 127, q = v * 2^-s (2^-s a float32; 2^-127 is an fp32 subnormal) is
exact whenever q is an fp32 normal; when it is not, q is below 2^-126, far below half the smallest subnormal of every
element format (e2m1fn's is 0.5, e5m2's 2^-16), so both q and its rounded fp32 value give code 0. That covers every
finite input, fp32 subnormals and zeros included, with no per-element special case. The rounding of q
(:class:`MXConsts`): at and above the target's smallest normal on the bit pattern; below it by the FPU (RNE) or a
truncating conversion (RTZ); overflow by an unsigned min (the overflow code is max finite or the code above it).
Results are those of the general encoder (benchmarks/bit_identity.py, tests/numerics/test_mx_reference.py).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import njit, prange
from ._narrow import narrow_consts
from ._u32 import add, band, bits_of, bor, bxor, f32_of, fp32_pattern, gt_small, sar, shl, shr, sub, u32, umax
from ._vec import absmax_pattern32

__all__ = ["MXConsts", "fast_params", "encode_f32_float", "encode_row_float", "row_fused", "ix", "halve_pairs"]


class MXConsts(NamedTuple):
    """Constants of the kernel's branch-free element loops for one element format and rounding (all uint32: Numba's
    parallel loops take tuples of one type).

    The first twelve are the :class:`NarrowConsts` (exponent bias 256) of the integer path (:func:`round_magnitude`
    reads them by name). The float path rounds the exact quotient q = v * 2^-s (a float32) once: at and above the
    target's smallest normal (pattern ``normal``) on the bit pattern (add half - 1 + the kept lsb for RNE, drop ``sh``
    bits, rebias the exponent: the carry walks into it); below it, the subnormal code is q in units of the smallest
    subnormal, rounded by the FPU (RNE: add ``magic``, whose ulp is that unit, and subtract its pattern) or truncated
    (RTZ: q * ``up`` converted toward zero); overflow is min(mag, ``over``).
    """

    sh: np.uint32
    lim: np.uint32
    suboff: np.uint32
    ebias: np.uint32
    mbits: np.uint32
    rmask: np.uint32
    rbit: np.uint32
    over: np.uint32
    inf_out: np.uint32
    nan_mag: np.uint32
    nan_flip: np.uint32
    signpos: np.uint32
    rne: np.uint32  #: 1 RNE, 0 RTZ
    half: np.uint32  #: 2^(sh - 1) - 1
    rebias: np.uint32  #: (127 + emin - 1) << mantissa bits: fp32 exponent field to the target's
    normal: np.uint32  #: pattern of 2^emin, the target's smallest normal
    magic: np.uint32  #: pattern of 2^(emin - mantissa bits + 23)
    up: np.uint32  #: pattern of 2^(mantissa bits - emin)
    lsb: np.uint32  #: 1 << sh: the lowest kept bit
    signbit: np.uint32  #: the target's sign bit
    half16: np.uint32  #: bf16 path (:mod:`._mx_bf16`): 2^(13 - mantissa bits) - 1 for RNE, 0 for RTZ
    c16: np.uint32  #: bf16 path: 14 - mantissa bits, the bits its rounding drops
    sgnsh16: np.uint32  #: bf16 path: 15 - the position of the target's sign bit
    emin_neg: np.uint32  #: bf16 path: -emin
    halfreb: np.uint32  #: half - (rebias << sh), wrapped: the float path's rounding and rebias in one add


def fast_params(p: tuple) -> MXConsts:
    """Constants of the kernel's branch-free element loops (:class:`MXConsts`): the :func:`narrow_consts` of ``p``
    for exponent fields biased by 256 (the quotient's field, ex - s, can be as low as -170) and the float path's."""
    m, emin = p.mantissa_bits, p.emin
    u = np.uint32
    return MXConsts(*narrow_consts(p, bias=256), u(0 if p.rtz else 1), u((1 << (22 - m)) - 1),
                    u((127 + emin - 1) << m), u((127 + emin) << 23), u((127 + emin - m + 23) << 23),
                    u((127 + m - emin) << 23), u(1 << (23 - m)), u(p.sign_bit),
                    u(0 if p.rtz else (1 << (13 - m)) - 1), u(14 - m), u(15 - (p.sign_bit.bit_length() - 1)), u(-emin),
                    u((((1 << (22 - m)) - 1) - (((127 + emin - 1) << m) << (23 - m))) & 0xFFFFFFFF))


# --------------------------------------------------------------------------------------------------------------------
# Numba kernels
# --------------------------------------------------------------------------------------------------------------------

@njit(inline="always")
def ix(i):
    """An index as uint64: Numba then leaves out the negative-index wrap-around, which costs a vector loop its
    contiguous loads and stores (an offset index c0 + f is not known to be >= 0)."""
    return np.uint64(i)


@njit
def halve_pairs(x, y, w):
    """y[i] = max(x[2i], x[2i+1]) for i < w, reading each neighbour pair as one word of twice the width (contiguous
    loads: the even/odd form made LLVM shuffle or go scalar; uint32 operations: Numba's own max of these mixed
    integer types went through float64)."""
    if x.itemsize == 2:
        xv = x.view(np.uint32)
        for i in range(w):
            v = xv[i]
            y[i] = umax(band(v, 0xFFFF), shr(v, 16))
    else:
        xv = x.view(np.uint64)
        for i in range(w):
            v = xv[i]
            y[i] = umax(u32(v), u32(v >> np.uint64(32)))


@njit(inline="always")
def _encode_one(x, f, fk):
    """Code of the element pattern ``x`` (fp32 uint32, or bf16 uint16) divided by the scale whose inverse is
    the float32 ``f``: q = v * f is exact (or, below fp32's normals, far below the target's smallest subnormal, so
    that its rounding cannot matter), then rounded once as in :class:`MXConsts`. Right for every finite input (fp32
    subnormals and zeros too) when -127 <= s <= 127. The shifts are by constants where they can be (a shift by a
    per-call amount is a slower instruction on AVX2), the sign's by copying bit 31."""
    qb = bits_of(f32_of(fp32_pattern(x)) * f)
    qa = band(qb, 0x7FFFFFFF)
    if fk.rne:  # + half - 1 + the kept lsb, the rebias folded in (no wrap: qa is at least the target's normal)
        norm = shr(add(add(qa, fk.halfreb), band(shr(qa, fk.sh), 1)), fk.sh)
        low = sub(bits_of(f32_of(qa) + f32_of(fk.magic)), fk.magic)
    else:
        norm = sub(shr(qa, fk.sh), fk.rebias)
        low = u32(np.int32(f32_of(qa) * f32_of(fk.up)))
    mag = low if gt_small(fk.normal, qa) else norm
    return bor(band(sar(qb, 31), fk.signbit), min(mag, fk.over))


def encode_f32_float(bits, out, fk):
    """Kernel body of the plain fp32 -> fp8 / fp4 cast (signed targets with subnormals and no NaN payload): every
    finite value through :func:`_encode_one` with the scale 1 (the constant-shift rounding at and above the target's
    smallest normal, the FPU's below it), inf and NaN selected in with their sign (ml_dtypes' e2m1fn flips a NaN's).
    One formula for every finite fp32 value, subnormals included (they round to a signed zero), and no per-lane
    shift: 15-25% less time per core on AVX2 than the integer formula of :func:`._narrow.round_magnitude` the cast
    used before, with the same codes."""
    one = f32_of(u32(0x3F800000))
    for i in prange(bits.size):
        u = u32(bits[i])
        a = band(u, 0x7FFFFFFF)
        nan = gt_small(a, 0x7F800000)
        sign = shl(bxor(shr(u, 31), band(fk.nan_flip, u32(nan))), fk.signpos)
        special = bor(sign, fk.nan_mag if nan else fk.inf_out)
        out[i] = special if a >= 0x7F800000 else _encode_one(u, one, fk)


@njit
def encode_row_float(srow, c0, w, fcol, fk, crow):
    """Encode columns ``[c0, c0 + w)`` of one row with :func:`_encode_one`; ``fcol[f]`` = 2^-s of element c0 + f
    (float32, -127 <= s <= 127), 8 lanes wide."""
    for f in range(w):
        crow[ix(c0 + f)] = _encode_one(srow[ix(c0 + f)], fcol[f], fk)


@njit(inline="always")
def row_fused(srow, crow, scales_row, C, conv_off, fk):
    """One row of groups of C contiguous elements (the R = 1 layout), each group read once from memory: its amax,
    scale and codes while it sits in registers and L1. Returns 0, having written part of the row, at the first group
    whose amax is not a normal fp32 value with a scale in range (zero, subnormal, inf or NaN, or a scale below
    2^-127): the caller redoes the row. Inlined where C is a literal, so that the group loops unroll."""
    lo = max(conv_off, 1)  # exponent fields whose scale 2^(ex - 127 - conv_off) is >= 2^-127
    for j in range(srow.size // C):
        b = j * C
        if C == 32:
            m = absmax_pattern32(srow, b)
        else:
            m = u32(0)
            for c in range(C):
                m = umax(m, band(fp32_pattern(srow[ix(b + c)]), 0x7FFFFFFF))
        ex = shr(m, 23)
        if sub(ex, lo) > 254 - lo:
            return 0
        code = sub(ex, conv_off)
        scales_row[j] = code
        f = f32_of(shl(sub(254, code), 23))  # 2^-(code - 127), a normal float32: 1 <= code <= 253
        for c in range(C):
            crow[ix(b + c)] = _encode_one(srow[ix(b + c)], f, fk)
    return 1
