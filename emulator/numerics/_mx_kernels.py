"""Hot loops of MX quantisation: Numba kernels and their NumPy twins, bit-identical.

Every MX layout is handled as *groups of R rows x C columns* of a 2-D array: the Trainium ``quantize_mx`` group is
8 partitions x 4 free elements (R=8, C=4); an OCP block of 32 along the last axis is R=1, C=32; a block of 32 along
the rows (the contraction dim of a matmul operand) is R=32, C=1.

Inputs are fp32 bit patterns: a uint32 array (shift 0) or bfloat16 bits in a uint16 array (shift 16: a bf16 pattern
is the top half of the fp32 one, so no conversion pass is needed).

Per group, with ``amax`` the largest magnitude (compared as fp32 bit patterns, which orders them exactly):

* the scale exponent is ``se = floor(log2 amax) - conv_off``, with floor(log2) read exactly from the exponent field
  (from the bit length of the mantissa for subnormals, never from a float log2);
* ``conv_off`` is ``Emax - 1`` (hw) or ``Emax`` (ocp); the E8M0 code is ``se + 127``;
* a zero group gets code 0; a scale below 2^-127 gets code 0 and divides by 2^-127 (``underflow`` 0) or by its
  true value (``underflow`` 1); above 2^127 (impossible for finite fp32 input) clamps to code 254;
* ``pol`` 0: a group with NaN/inf gets code 0xFF and every element the format's NaN code (0 for e2m1fn);
  ``pol`` 1: amax runs over the finite elements only and each NaN/inf element is cast on its own.

Each element is the exact value ``v / 2**se`` rounded once by the lead's encoder (:mod:`._cast_kernels`), with the
parameter tuple of :func:`cast_params` (saturating for the ocp convention: that is its clip to max finite).
"""

from __future__ import annotations

import functools

import numpy as np

from .._jit import dispatch, njit, prange
from ._cast_kernels import _bit_length, _encode_finite, encode_array, encode_f32

__all__ = ["quantize_groups", "group_exponents", "dequantize_groups", "fast_params", "bf16_table"]


def fast_params(p: tuple) -> tuple:
    """Constants of the in-range fast path (an integer round on the fp32 pattern of the scaled value).

    (shift, half-1, rebias, smallest normal exponent field, overflow magnitude, rtz, subnormal shift offset) for a
    signed target format with subnormals, derived from the cast parameter tuple ``p``.
    """
    mbits, emin = p.mantissa_bits, p.emin
    shift = 23 - mbits
    half_m1 = (1 << (shift - 1)) - 1
    rebias = (127 - (1 - emin)) << mbits
    if p.saturate == 1 or p.rtz == 1 or p.nan_kind == 2:
        over = p.max_mag
    elif p.nan_kind == 0:
        over = p.inf_mag
    else:
        over = p.nan_mag
    return (shift, half_m1, rebias, emin + 127, over, p.rtz, emin - mbits + 150)


@functools.lru_cache(maxsize=64)
def bf16_table(p: tuple) -> tuple[np.ndarray, int, int]:
    """(codes, lo, hi): the magnitude code of every bf16-precision quotient ``(1 + m/128) * 2^(ey-127)`` for
    exponent fields ey in [lo, hi] (row-major, 128 mantissas a row), encoded by the lead's exact encoder.

    Below lo every quotient is under half the target's smallest subnormal (code 0); at and above hi every quotient
    overflows (the overflow code of ``p``): so clamping ey into [lo, hi] is exact.
    """
    mbits, emin = p.mantissa_bits, p.emin
    emax = (p.max_mag >> mbits) - (1 - emin)  # exponent of the largest finite value
    lo = max(1, emin + 127 - mbits - 3)
    hi = emax + 127 + 2
    ey = np.arange(lo, hi + 1, dtype=np.uint32)[:, None]
    bits = (ey << 23) | (np.arange(128, dtype=np.uint32)[None, :] << 16)
    out = np.empty(bits.shape, np.uint8)
    encode_array(np.ascontiguousarray(bits).view(np.float32), out, p)
    table = out.reshape(-1)  # positive quotients: magnitude codes
    table.setflags(write=False)
    return table, lo, hi


# --------------------------------------------------------------------------------------------------------------------
# Numba kernels
# --------------------------------------------------------------------------------------------------------------------

@njit
def _group_scale(amax, special, conv_off, pol, underflow):
    """(E8M0 code, scale exponent applied to the data, 1 if the whole group is NaN) of one group."""
    if special and pol == 0:
        return 255, 0, 1
    if amax == 0:
        return 0, -127, 0
    ex = amax >> 23
    e = ex - 127 if ex != 0 else _bit_length(amax) - 150
    se = e - conv_off
    if se < -127:
        return 0, (-127 if underflow == 0 else se), 0
    if se > 127:
        return 254, 127, 0
    return se + 127, se, 0


@njit
def _encode_scaled(b, se, p, fp):
    """Code of the exact value (fp32 pattern ``b``) / 2**se, rounded once.

    The scalar statement of what the kernel's branch-free loop computes (the kernel calls it only for fp32
    subnormals, inf and NaN): fp32-normal inputs round on the bit pattern (the round-and-carry of the lead's
    ``_encode_f32_fast``, applied to the quotient's exponent); the rest goes through the general encoder of
    :mod:`._cast_kernels`.
    """
    a = b & 0x7FFFFFFF
    ex = a >> 23
    if ex >= 1 and ex <= 254:
        ey = ex - se  # exponent field of the quotient (may leave fp32's range: only the integer matters)
        if ey >= fp[3]:  # a normal of the target, or overflow
            y = a - (se << 23)
            if fp[5] == 1:
                r = y >> fp[0]
            else:
                r = (y + fp[1] + ((y >> fp[0]) & 1)) >> fp[0]
            mag = r - fp[2]
            if mag > p.max_mag:
                mag = fp[4]
        else:  # a subnormal of the target (or zero): round the significand to the subnormal quantum
            s2 = fp[6] - ey
            if s2 > 25:
                mag = np.int64(0)
            else:
                sig = (a & 0x7FFFFF) | 0x800000
                mag = sig >> s2
                if fp[5] == 0:
                    rem = sig - (mag << s2)
                    half = np.int64(1) << (s2 - 1)
                    if rem > half or (rem == half and (mag & 1) == 1):
                        mag += 1
        return ((b >> 31) * p.sign_bit) | mag
    if a == 0:
        return (b >> 31) * p.sign_bit
    if ex == 0:
        return _encode_finite(b >> 31, a, np.int64(-149 - se), _bit_length(a) - 150 - se, p)
    return encode_f32(b, p)


@njit
def _finite_amax(src, shift, g0, R, c0, C):
    """Largest finite magnitude pattern of one group (the propagate policy's amax), as fp32 bits."""
    m = np.int64(0)
    for r in range(R):
        for c in range(C):
            a = (np.int64(src[g0 + r, c0 + c]) << shift) & 0x7FFFFFFF
            if a < 0x7F800000 and a > m:
                m = a
    return m


@njit
def _group_amax(src, absmask, g0, R, J, C, amax):
    """amax[j] = largest |pattern| (in the source's own width) of group j of the row band starting at g0.

    Magnitude patterns order exactly like the values, NaN above inf above every finite value, so one integer max
    finds both the amax and any NaN/inf. The C == 4 case is unrolled so that it vectorises.
    """
    for j in range(J):
        amax[j] = 0
    for r in range(R):
        row = g0 + r
        if C == 4:
            for j in range(J):
                f = 4 * j
                m = max(max(src[row, f] & absmask, src[row, f + 1] & absmask),
                        max(src[row, f + 2] & absmask, src[row, f + 3] & absmask))
                amax[j] = max(amax[j], m)
        elif C == 1:
            for j in range(J):
                amax[j] = max(amax[j], src[row, j] & absmask)
        else:
            for j in range(J):
                m = amax[j]
                for c in range(C):
                    m = max(m, src[row, j * C + c] & absmask)
                amax[j] = m


@njit
def _encode_row(src, shift, row, se_f, p, fp, codes):
    """Encode one row of fp32-normal elements without branches (so that it vectorises); zeros come out as signed
    zeros. Returns how many elements need the general encoder (fp32 subnormals, inf, NaN); their codes here are junk.
    """
    sh, hm1, rebias, minf, over, rtz, suboff = fp
    rne = 1 - rtz
    maxmag = p.max_mag
    sbit = p.sign_bit
    nrare = 0
    for f in range(src.shape[1]):
        s = se_f[f]
        b = np.int64(src[row, f]) << shift
        a = b & 0x7FFFFFFF
        ex = a >> 23
        ey = ex - s  # the quotient's exponent field (only the integer matters)
        y = a - (s << 23)  # the quotient's bit pattern when it is an fp32 normal
        magn = ((y + (hm1 + ((y >> sh) & 1)) * rne) >> sh) - rebias
        magn = over if magn > maxmag else magn
        s2 = min(max(suboff - ey, 1), 40)  # below the target's smallest normal: round to the subnormal quantum
        sig = (a & 0x7FFFFF) | 0x800000
        mags = (sig + (((np.int64(1) << (s2 - 1)) - 1 + ((sig >> s2) & 1)) * rne)) >> s2
        mag = magn if ey >= minf else mags
        mag = 0 if a == 0 else mag
        codes[row, f] = ((b >> 31) * sbit) | mag
        nrare += ((ex == 0) & (a != 0)) | (ex == 255)
    return nrare


@njit
def _encode_row_bf16(src, row, se_f, table, lo, hi, sbit, codes):
    """The bf16 twin of :func:`_encode_row`: a bf16 quotient has 7 mantissa bits, so its code is a table lookup
    indexed by (exponent field clamped to [lo, hi], mantissa); rows lo and hi are constant (all zero / all overflow).
    """
    nrare = 0
    for f in range(src.shape[1]):
        b = np.int64(src[row, f])
        a = b & 0x7FFF
        ex = a >> 7
        ey = min(max(ex - se_f[f], lo), hi)
        mag = np.int64(table[((ey - lo) << 7) | (a & 0x7F)])
        mag = 0 if a == 0 else mag
        codes[row, f] = ((b >> 15) * sbit) | mag
        nrare += ((ex == 0) & (a != 0)) | (ex == 255)
    return nrare


def _quantize_nb_body(src, shift, R, C, conv_off, pol, underflow, p, fp, nan_code, codes, scales, table, tlo, thi):
    P, F = src.shape
    G = P // R
    J = F // C
    absmask = src.dtype.type(0x7FFFFFFF >> shift)
    for g in prange(G):
        g0 = g * R
        amax = np.empty(J, src.dtype)
        _group_amax(src, absmask, g0, R, J, C, amax)
        se = np.empty(J, np.int64)
        nan_group = np.empty(J, np.int64)
        for j in range(J):
            a = np.int64(amax[j]) << shift
            special = a >= 0x7F800000
            if special and pol == 1:
                a = _finite_amax(src, shift, g0, R, j * C, C)
            code, s, ng = _group_scale(a, special, conv_off, pol, underflow)
            scales[g, j] = code
            se[j] = s
            nan_group[j] = ng
        se_f = np.empty(F, np.int64)
        for j in range(J):
            for c in range(C):
                se_f[j * C + c] = se[j]
        for r in range(R):
            row = g0 + r
            if shift == 16:
                nrare = _encode_row_bf16(src, row, se_f, table, tlo, thi, p.sign_bit, codes)
            else:
                nrare = _encode_row(src, shift, row, se_f, p, fp, codes)
            if nrare:
                for f in range(F):  # fp32 subnormals, inf, NaN: the general encoder
                    b = np.int64(src[row, f]) << shift
                    ex = (b >> 23) & 0xFF
                    if ex == 255 or (ex == 0 and (b & 0x7FFFFF) != 0):
                        codes[row, f] = _encode_scaled(b, se_f[f], p, fp)
            for j in range(J):
                if nan_group[j] == 1:
                    for c in range(C):
                        codes[row, j * C + c] = nan_code


def _exponents_nb_body(src, shift, R, C, conv_off, pol, underflow, scales, se, nan_group):
    P, F = src.shape
    G = P // R
    J = F // C
    for g in prange(G):
        for j in range(J):
            m = np.int64(0)
            special = 0
            for r in range(R):
                for c in range(C):
                    a = (np.int64(src[g * R + r, j * C + c]) << shift) & 0x7FFFFFFF
                    if a >= 0x7F800000:
                        special = 1
                    elif a > m:
                        m = a
            code, s, ng = _group_scale(m, special, conv_off, pol, underflow)
            scales[g, j] = code
            se[g, j] = s
            nan_group[g, j] = ng


def _dequantize_nb_body(codes, scales, R, C, vtab, ftab, out):
    P, F = codes.shape
    J = F // C
    for row in prange(P):
        g = row // R
        for j in range(J):
            f = ftab[scales[g, j]]
            if f != f:  # a NaN scale: the factor's own NaN, whatever the element (x86 would pick either operand)
                for c in range(C):
                    out[row, j * C + c] = f
            else:
                for c in range(C):
                    out[row, j * C + c] = vtab[codes[row, j * C + c]] * f


# Each kernel is compiled twice: threaded for big arrays, serial below SERIAL_BELOW elements, where waking the
# thread pool costs more than it saves (and, on a busy machine, can cost a whole scheduler time slice).
SERIAL_BELOW = 1 << 18


def _sized(body, size_arg: int):
    threaded, serial = njit(parallel=True)(body), njit(body)

    def run(*args):
        return (serial if args[size_arg].size < SERIAL_BELOW else threaded)(*args)

    run.threaded, run.serial = threaded, serial
    return run


_quantize_nb = _sized(_quantize_nb_body, 0)
_exponents_nb = _sized(_exponents_nb_body, 0)
_dequantize_nb = _sized(_dequantize_nb_body, 0)


# --------------------------------------------------------------------------------------------------------------------
# NumPy twins
# --------------------------------------------------------------------------------------------------------------------

def _exponents_np(src, shift, R, C, conv_off, pol, underflow, scales, se, nan_group):
    P, F = src.shape
    G, J = P // R, F // C
    a = (src.astype(np.int64) << shift) & 0x7FFFFFFF
    blk = a.reshape(G, R, J, C)
    nonfinite = blk >= 0x7F800000
    special = nonfinite.any(axis=(1, 3))
    amax = np.where(nonfinite, 0, blk).max(axis=(1, 3))
    # frexp of the exact value gives floor(log2) + 1, for subnormals too
    e = np.frexp(amax.astype(np.uint32).view(np.float32).astype(np.float64))[1].astype(np.int64) - 1
    s = e - conv_off
    code = np.clip(s + 127, 0, 254)
    s_data = np.where(s > 127, 127, s)
    if underflow == 0:
        s_data = np.maximum(s_data, -127)
    zero = amax == 0
    code = np.where(zero, 0, code)
    s_data = np.where(zero, -127, s_data)
    ng = special & (pol == 0)
    scales[...] = np.where(ng, 255, code)
    se[...] = np.where(ng, 0, s_data)
    nan_group[...] = ng


def _quantize_np(src, shift, R, C, conv_off, pol, underflow, p, fp, nan_code, codes, scales, table, tlo, thi):
    P, F = src.shape
    G, J = P // R, F // C
    se = np.empty((G, J), np.int64)
    ng = np.empty((G, J), np.uint8)
    _exponents_np(src, shift, R, C, conv_off, pol, underflow, scales, se, ng)
    v = ((src.astype(np.int64) << shift) & 0xFFFFFFFF).astype(np.uint32).view(np.float32).astype(np.float64)
    factor = np.ldexp(1.0, -se).reshape(G, 1, J, 1)
    q = (v.reshape(G, R, J, C) * factor).reshape(P, F)  # exact in float64: |se| <= 164
    # NaN * 2^k may not keep the NaN's sign on every platform: take specials from the input itself
    q = np.where(np.isfinite(v), q, v)
    out = np.empty((P, F), codes.dtype)
    encode_array.numpy_impl(np.ascontiguousarray(q), out, p)
    nan_mask = np.broadcast_to(ng.astype(bool).reshape(G, 1, J, 1), (G, R, J, C)).reshape(P, F)
    codes[...] = np.where(nan_mask, np.asarray(nan_code, codes.dtype), out)


def _dequantize_np(codes, scales, R, C, vtab, ftab, out):
    P, F = codes.shape
    G, J = P // R, F // C
    vals = vtab[codes].reshape(G, R, J, C)
    f = ftab[scales].reshape(G, 1, J, 1)
    with np.errstate(over="ignore", invalid="ignore"):
        prod = vals * f
    out[...] = np.where(np.isnan(f), f, prod).reshape(P, F)


quantize_groups = dispatch(_quantize_nb, _quantize_np)
quantize_groups.__doc__ = """quantize_groups(src, shift, R, C, conv_off, pol, underflow, p, fp, nan_code, codes, scales,
table, tlo, thi)

Quantise every R x C group of the 2-D bit-pattern array ``src`` into ``codes`` (uint8, shape of src) and ``scales``
(uint8 [P//R, F//C]). ``table, tlo, thi`` come from :func:`bf16_table` (used for bf16 input only). See the module
docstring for the rules."""

group_exponents = dispatch(_exponents_nb, _exponents_np)
group_exponents.__doc__ = """group_exponents(src, shift, R, C, conv_off, pol, underflow, scales, se, nan_group)

The scale pass alone: E8M0 codes, the scale exponent each group's data is divided by (int64) and the NaN-group flags
(uint8). Used when the element rounding happens elsewhere (stochastic rounding)."""

dequantize_groups = dispatch(_dequantize_nb, _dequantize_np)
dequantize_groups.__doc__ = """dequantize_groups(codes, scales, R, C, vtab, ftab, out)

``out = vtab[codes] * ftab[scale of the group]`` in the dtype of the tables (float32 or float64)."""
