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

Each element is the exact value ``v / 2**se`` rounded once, with the parameter tuple of :func:`cast_params`
(saturating for the ocp convention: that is its clip to max finite). The Numba kernel has two element paths: the
float path of :mod:`._mx_float` (one exact float32 multiply, then one rounding; right for every finite input) for a
band whose groups all have a normal, finite amax and a scale in [2^-127, 2^127], the common case; otherwise the
integer path: fp32 normals and zeros with the branch-free :func:`._narrow.round_magnitude` (the quotient's
exponent field is the input's minus se), fp32 subnormals, inf and NaN with the general encoder of
:mod:`._cast_kernels`. The NumPy twin multiplies in float64 (exact) and runs the general NumPy encoder.

The kernel works on bands of R rows, several bands per parallel task: the amax runs down the rows (contiguous,
vectorised), then across each group's C columns by halving (neighbour pairs read as one wider word); the scale loop
is branch-free unless a band holds a zero, tiny, subnormal or non-finite group; then each row is encoded in one
8-lane pass, from cache. OCP blocks of 32 along rows (R=1, C=32: ``mx.quantize``'s default) take one pass instead:
each group's amax, scale and codes while it is in registers (:func:`._mx_float.row_fused`), until a row has a group
that is not the common case. bfloat16 input (quantize_mx's) takes :func:`._mx_bf16.band_bf16` first: 16-bit lanes,
amax and encode fused per column tile; a band it declines goes through the bands above.
"""

from __future__ import annotations

import numpy as np

from .._jit import dispatch, njit, prange, sized
from ._cast_kernels import _bit_length, _encode_finite, encode_array, encode_f32
from ._mx_bf16 import TILE, band_bf16
from ._mx_float import MXConsts, halve_pairs, encode_row_float, fast_params, row_fused
from ._narrow import round_magnitude
from ._u32 import band, bor, shl, shr, sub, u32

__all__ = ["quantize_groups", "group_exponents", "dequantize_groups", "fast_params", "MXConsts"]


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
def _encode_scaled(b, se, p):
    """Code of the exact value (fp32 pattern ``b``) / 2**se, rounded once: the general encoder of
    :mod:`._cast_kernels`. The kernel calls it only for what its branch-free loop leaves out (fp32 subnormals, inf
    and NaN)."""
    a = b & 0x7FFFFFFF
    if a == 0:
        return (b >> 31) * p.sign_bit
    ex = a >> 23
    if ex == 0:
        return _encode_finite(b >> 31, a, np.int64(-149 - se), _bit_length(a) - 150 - se, p)
    if ex == 255:
        return encode_f32(b, p)
    return _encode_finite(b >> 31, (a & 0x7FFFFF) | 0x800000, ex - 150 - se, ex - 127 - se, p)


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
def _band_amax(src, absmask, g0, R, C, col, tmp, amax):
    """amax[j] = largest |pattern| (in the source's own width) of group j of the row band starting at g0.

    Magnitude patterns order exactly like the values, NaN above inf above every finite value, so one integer max
    finds both the amax and any NaN/inf. The max runs down the R rows first (contiguous rows: it vectorises), then
    across the C columns of each group by halving (max of neighbours, which vectorises too) while C is even.
    """
    F = col.size
    first = src[g0]
    w, c_left = F, C
    if R == 1 and C % 2 == 0:  # one row: the first halving reads it directly
        w //= 2
        c_left //= 2
        for i in range(w):
            col[i] = max(first[2 * i] & absmask, first[2 * i + 1] & absmask)
    else:
        for f in range(F):
            col[f] = first[f] & absmask
        for r in range(1, R):
            row = src[g0 + r]
            for f in range(F):
                col[f] = max(col[f], row[f] & absmask)
    x, y = col, tmp
    while c_left % 2 == 0:
        w //= 2
        c_left //= 2
        halve_pairs(x, y, w)
        x, y = y, x
    for j in range(amax.size):
        m = x[j * c_left]
        for c in range(1, c_left):
            m = max(m, x[j * c_left + c])
        amax[j] = m


@njit
def _encode_row(srow, shift, se_f, k, crow):
    """Encode one row without branches, 8 lanes wide (:func:`round_magnitude`): fp32-normal inputs and zeros come out
    right. Returns 1 if the row holds an fp32 subnormal, whose code here is junk (inf and NaN are known from amax).

    ``se_f[f]`` is the scale exponent of element f as uint32 (negative ones wrapped): 256 + ex - s stays positive.
    """
    rare = u32(0)
    for f in range(srow.size):
        u = shl(srow[f], shift)
        a = band(u, 0x7FFFFFFF)
        mag = round_magnitude(a, sub(bor(shr(a, 23), 256), se_f[f]), k)
        mag = u32(0) if a == 0 else mag
        crow[f] = bor(shl(shr(u, 31), k.signpos), mag)
        rare = bor(rare, u32(sub(a, 1) < 0x7FFFFF))
    return rare


@njit
def _band_scales(src, shift, g0, R, C, conv_off, pol, underflow, amax, scales_row, se_j, se_f):
    """E8M0 codes of the band's groups into ``scales_row``; the scale exponent of every group into ``se_j``
    (uint32, negative ones wrapped). Returns (any NaN group, any NaN/inf element, float path): with the float path
    (every scale exponent in [-127, 127], no NaN/inf) ``se_f`` holds the float32 pattern of 2^-s of every column,
    else its scale exponent s (uint32, negative ones wrapped).

    The common case (amax a finite fp32 normal whose scale is in range) runs branch-free over all groups; a band
    with any other group is redone group by group with :func:`_group_scale`.
    """
    J = amax.size
    lo = max(conv_off, 1)  # exponent fields whose scale 2^(ex - 127 - conv_off) is >= 2^-127
    odd = u32(0)
    for j in range(J):
        ex = shr(shl(amax[j], shift), 23)
        code = sub(ex, conv_off)
        scales_row[j] = code
        se_j[j] = sub(code, 127)
        odd = bor(odd, u32(sub(ex, lo) > 254 - lo))
    nan_any = 0
    special_any = 0
    fast = 1
    if odd:
        for j in range(J):
            a = np.int64(amax[j]) << shift
            special = a >= 0x7F800000
            special_any |= special
            if special and pol == 1:
                a = _finite_amax(src, shift, g0, R, j * C, C)
            code, s, ng = _group_scale(a, special, conv_off, pol, underflow)
            scales_row[j] = code
            nan_any |= ng
            se_j[j] = u32(s)
            if special or s < -127:
                fast = 0
    if fast:  # every column gets 2^-s of its group, as float32 (2^-127 is an fp32 subnormal), in se_f's bits
        for j in range(J):
            s = np.int32(se_j[j])
            fj = shl(127 - s, 23) if s < 127 else u32(1 << 22)
            for c in range(C):
                se_f[j * C + c] = fj
    else:  # every column gets its group's exponent
        for j in range(J):
            s = se_j[j]
            for c in range(C):
                se_f[j * C + c] = s
    return nan_any, special_any, fast


@njit
def _quantize_band(src, shift, g0, R, C, conv_off, pol, underflow, p, fp, nan_code, codes, scales_row, col, tmp,
                   amax, se_j, se_f):
    """Scales and codes of the R-row band starting at g0 (scratch arrays col, tmp, amax, se_j and se_f (uint32) given
    by the caller; ``fp`` is :func:`fast_params` of ``p``)."""
    F = col.size
    _band_amax(src, src.dtype.type(0x7FFFFFFF >> shift), g0, R, C, col, tmp, amax)
    nan_any, special_any, fast = _band_scales(src, shift, g0, R, C, conv_off, pol, underflow, amax, scales_row, se_j,
                                              se_f)
    if fast:
        fcol = se_f.view(np.float32)
        for r in range(R):
            encode_row_float(src[g0 + r], 0, F, fcol, fp, codes[g0 + r])
        return
    for r in range(R):
        srow = src[g0 + r]
        crow = codes[g0 + r]
        if _encode_row(srow, shift, se_f, fp, crow) or (special_any and pol == 1):
            for f in range(F):  # fp32 subnormals, inf, NaN: the general encoder
                b = np.int64(srow[f]) << shift
                ex = (b >> 23) & 0xFF
                if ex == 255 or (ex == 0 and (b & 0x7FFFFF) != 0):
                    crow[f] = _encode_scaled(b, np.int64(np.int32(se_f[f])), p)
        if nan_any:
            for j in range(amax.size):
                if scales_row[j] == 255 and pol == 0:
                    for c in range(C):
                        crow[j * C + c] = nan_code


@njit
def _quantize_bands(src, shift, R, C, conv_off, pol, underflow, p, fp, nan_code, codes, scales, g0, g1):
    """Bands g0..g1-1 with :func:`_quantize_band` (scratch arrays allocated once for them)."""
    F = src.shape[1]
    J = F // C
    col = np.empty(F, src.dtype)
    tmp = np.empty(F, src.dtype)
    amax = np.empty(J, src.dtype)
    se_j = np.empty(J, np.uint32)
    se_f = np.empty(F, np.uint32)
    bcol = np.empty(min(F, C * max(1, TILE // C)), np.uint16)
    nxt = np.empty(bcol.size, src.dtype)
    for g in range(g0, g1):
        if src.itemsize == 2 and band_bf16(src, g * R, R, C, conv_off, fp, codes, scales[g], col, tmp, bcol, nxt):
            continue  # bf16: the fused 16-lane path took the band
        _quantize_band(src, shift, g * R, R, C, conv_off, pol, underflow, p, fp, nan_code, codes, scales[g], col, tmp,
                       amax, se_j, se_f)


def _quantize_nb_body(src, shift, R, C, conv_off, pol, underflow, p, fp, nan_code, codes, scales):
    P, F = src.shape
    G = P // R
    # bands per parallel task: enough work to amortise the scratch arrays, at most ~64 tasks (a few per thread, so
    # that a thread slowed by other jobs does not hold up the rest)
    per = max(1, _CHUNK // max(1, R * F), G // 64)
    for t in prange((G + per - 1) // per):
        g, g1 = t * per, min(G, (t + 1) * per)
        if R == 1 and C == 32:  # OCP blocks along rows: each group read once, until a row needs the general path
            while g < g1 and row_fused(src[g], codes[g], scales[g], 32, conv_off, fp):
                g += 1
        if g < g1:
            _quantize_bands(src, shift, R, C, conv_off, pol, underflow, p, fp, nan_code, codes, scales, g, g1)


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
_CHUNK = 1 << 14  # elements per parallel task at least (a few rows)


# both builds cached, apart; emulator._jit clears every cached kernel when a source file of the package changes, so
# editing what these call (_narrow.py, _u32.py, _mx_float.py) needs no manual step
_quantize_nb = sized(_quantize_nb_body, 0, SERIAL_BELOW)
_exponents_nb = sized(_exponents_nb_body, 0, SERIAL_BELOW)
_dequantize_nb = sized(_dequantize_nb_body, 0, SERIAL_BELOW)


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


def _quantize_np(src, shift, R, C, conv_off, pol, underflow, p, fp, nan_code, codes, scales):
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
quantize_groups.__doc__ = """quantize_groups(src, shift, R, C, conv_off, pol, underflow, p, fp, nan_code, codes, scales)

Quantise every R x C group of the 2-D bit-pattern array ``src`` into ``codes`` (uint8, shape of src) and ``scales``
(uint8 [P//R, F//C]); ``fp`` is :func:`fast_params` of ``p``. See the module docstring for the rules."""

group_exponents = dispatch(_exponents_nb, _exponents_np)
group_exponents.__doc__ = """group_exponents(src, shift, R, C, conv_off, pol, underflow, scales, se, nan_group)

The scale pass alone: E8M0 codes, the scale exponent each group's data is divided by (int64) and the NaN-group flags
(uint8). Used when the element rounding happens elsewhere (stochastic rounding)."""

dequantize_groups = dispatch(_dequantize_nb, _dequantize_np)
dequantize_groups.__doc__ = """dequantize_groups(codes, scales, R, C, vtab, ftab, out)

``out = vtab[codes] * ftab[scale of the group]`` in the dtype of the tables (float32 or float64)."""
