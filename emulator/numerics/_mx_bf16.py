"""The bfloat16 path of the MX kernels (:mod:`._mx_kernels`): 16 elements per AVX2 vector, amax and encode fused.

A bf16 pattern is 16 bits: sign, the 8-bit fp32 exponent field ``E0``, 7 mantissa bits. Divided by a group's scale
2^s the exponent field becomes ``E0 - s`` and the 8-bit significand ``sig = 0x80 | mantissa`` is unchanged, so every
element code follows from 16-bit integer arithmetic (AVX2 holds 16 such lanes per register where the fp32 paths hold
8), with ``B = 127 + emin + s`` per group (emin: the target's smallest normal exponent):

* exponent part ``max(E0 - B, 0) << m`` (m mantissa bits of the target): the quotient's biased exponent, minus one
  for the implicit bit that the rounded significand adds back;
* significand part ``round(sig / 2^(7 - m + k))`` with ``k = max(B - E0, 0)`` (how far below the target's normals
  the quotient is), computed as ``round((sig << (7 - k)) / 2^(14 - m))``: the left shift is exact, and the rounding
  by a constant shift (RNE: add half - 1 + the kept lsb; RTZ: nothing) carries into the exponent where it must;
* overflow by an unsigned min with the overflow code (:class:`._mx_float.MXConsts` ``over``); the sign copied in.

``k`` is capped at 7: for every element format (m <= 3) a quotient that many binades below the normals rounds to 0,
and so does the capped computation. Zeros and bf16 subnormals (E0 = 0) come out as signed zeros, which is right
when ``B >= 8`` (the quotient is then below 2^(emin - 7), under half the smallest subnormal). The path takes a group
only when its amax is a finite bf16 normal with that bound (:func:`band_bf16`'s ``lo``), which covers the scales of
any ordinary data; the caller sends any other band (zero, tiny, inf or NaN groups) to the general path. Results are
those of the general encoder (benchmarks/bit_identity.py, tests/numerics/test_mx_reference.py).

A band (R rows) is done in column tiles of :data:`TILE`: the tile's scales from its column maxima, then its codes
read from L1, in the same loop as the next tile's column maxima (so that reads from memory overlap the encoding),
with the tile after that prefetched. That loop steps 16 columns at a time in LLVM vector operations
(:func:`vcode16`, :func:`vabsmax16`), with a loop of its own for each element format's shift counts.
"""

from __future__ import annotations

import numpy as np

from .._jit import njit
from ._mx_float import halve_pairs, ix
from ._u32 import bor, shr, sub, u32
from ._vec import contiguous_1d, elem_ptr, splat, vfunc

__all__ = ["band_bf16", "TILE"]

#: Columns per tile of a band: the tile's R rows stay in L1 between the amax and the encode (8 x 512 bf16 = 8 KB).
TILE = 512

try:
    from numba.core import types
    from numba.extending import intrinsic
except ImportError:  # pragma: no cover - only without Numba (the kernels then never run)
    intrinsic = None


def _op16(name: str, build):
    """A uint16 -> uint16 operation as one LLVM instruction (Numba would widen uint16 arithmetic to 64 bits)."""
    if intrinsic is None:  # pragma: no cover
        return None

    @intrinsic
    def op(typingctx, a, b):
        if not (isinstance(a, types.Integer) and isinstance(b, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            return build(builder, args[0], args[1])

        return types.uint16(types.uint16, types.uint16), codegen

    op.__name__ = name
    return op


def _call(name):
    def build(builder, a, b):
        return builder.call(vfunc(builder, name, a.type), [a, b])
    return build


add16 = _op16("add16", lambda b, x, y: b.add(x, y))
sub16 = _op16("sub16", lambda b, x, y: b.sub(x, y))
and16 = _op16("and16", lambda b, x, y: b.and_(x, y))
or16 = _op16("or16", lambda b, x, y: b.or_(x, y))
shl16 = _op16("shl16", lambda b, x, y: b.shl(x, y))  # counts < 16
shr16 = _op16("shr16", lambda b, x, y: b.lshr(x, y))
umin16 = _op16("umin16", _call("llvm.umin.i16"))
umax16 = _op16("umax16", _call("llvm.umax.i16"))
subus16 = _op16("subus16", _call("llvm.usub.sat.i16"))  # max(x - y, 0): one AVX2 instruction (vpsubusw)


if intrinsic is None:  # pragma: no cover
    def prefetch(arr, i):
        return None
else:
    @intrinsic
    def prefetch(typingctx, arr, i):
        """Ask the CPU to bring the cache line of ``arr[i]`` into L1 (a hint: no fault, no effect on results)."""
        if not isinstance(arr, types.Array) or not isinstance(i, types.Integer):
            return None

        def codegen(context, builder, signature, args):
            from llvmlite import ir
            ary = context.make_array(signature.args[0])(context, builder, args[0])
            ptr = builder.gep(ary.data, [args[1]])
            i8p = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            fn = builder.module.globals.get("llvm.prefetch.p0") or ir.Function(
                builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0")
            builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
            return context.get_dummy_value()

        return types.none(arr, types.intp), codegen


# --------------------------------------------------------------------------------------------------------------------
# 16 lanes at a time in LLVM vector IR
#
# The element loop written as scalar code lost time to what LLVM made of it on AVX2 (a quarter, measured): the per-lane
# shift of the significand (no 16-bit variable shift before AVX-512BW) widened into unpacks, two 32-bit shifts and
# a pack, and the format's shift counts, read from the constants tuple, kept in registers re-extended every
# iteration, with the loop's dozen constants spilled to the stack. These intrinsics spell the 16-lane step out in
# generic LLVM vector operations (no x86 intrinsics: any target Numba supports compiles them), with the per-lane
# shift done on the 32-bit words that hold two lanes (below) and the shift counts constants of the caller.
# --------------------------------------------------------------------------------------------------------------------

#: Lanes per vector step of the encode loop.
LANES = 16


def _vec_ir():
    from llvmlite import ir
    i16, i32 = ir.IntType(16), ir.IntType(32)
    v16, w8 = ir.VectorType(i16, LANES), ir.VectorType(i32, LANES // 2)
    return ir, i16, i32, v16, w8


if intrinsic is None:  # pragma: no cover
    vcode16 = vabsmax16 = vscales4 = None
else:
    @intrinsic
    def vcode16(typingctx, srow, i, bcol, j, crow, k, mbits, sgnsh, half, rbit, signbit, over):
        """crow[k:k+16] = codes of srow[i:i+16] with B = bcol[j:j+16] (:func:`_code_bf16`, 16 lanes; contiguous
        1-D arrays, the caller keeps the ranges inside them). ``mbits`` and ``sgnsh`` (the format's mantissa bits
        and 15 - its sign bit's position) are shift counts: constants of the caller, they become immediates."""
        if not contiguous_1d(srow, bcol, crow):
            return None
        sig = types.none(srow, i, bcol, j, crow, k, mbits, sgnsh, half, rbit, signbit, over)

        def codegen(context, builder, signature, args):
            ir, _, i32, v16, w8 = _vec_ir()
            ta = signature.args
            mb, sh, half_, rbit_, sbit, over_ = (splat(builder, a, v16) for a in args[6:])
            c16 = builder.sub(ir.Constant(v16, [14] * LANES), mb)  # the bits the rounding drops

            def cv(vty, c):
                return ir.Constant(vty, [c] * vty.count)

            usub = vfunc(builder, "llvm.usub.sat.v16i16", v16)
            umin = vfunc(builder, "llvm.umin.v16i16", v16)
            x = builder.load(elem_ptr(context, builder, ta[0], args[0], args[1], v16), align=1)
            B = builder.load(elem_ptr(context, builder, ta[2], args[2], args[3], v16), align=1)
            a = builder.and_(x, cv(v16, 0x7FFF))
            e0 = builder.lshr(a, cv(v16, 7))
            expo = builder.shl(builder.call(usub, [e0, B]), mb)
            cnt = builder.sub(cv(v16, 7), builder.call(umin, [builder.call(usub, [B, e0]), cv(v16, 7)]))
            sg = builder.or_(builder.and_(a, cv(v16, 0x7F)), cv(v16, 0x80))
            # sg << cnt per 16-bit lane, on the 32-bit words that hold lanes 2w (low half) and 2w+1 (high half):
            # sg < 2^8 and cnt <= 7, so a lane shifted stays inside its half; shifting the word by the even lane's
            # count gives that lane in the low half, by the odd lane's count that lane in the high half, and the
            # result takes the even lanes of the first and the odd lanes of the second (one blend on AVX2)
            even = ir.Constant(ir.VectorType(i32, LANES), [n if n % 2 == 0 else LANES + n for n in range(LANES)])
            words = builder.bitcast(sg, w8)
            c_even = builder.bitcast(builder.shuffle_vector(cnt, cv(v16, 0), even), w8)
            c_odd = builder.lshr(builder.bitcast(cnt, w8), cv(w8, 16))
            v = builder.shuffle_vector(builder.bitcast(builder.shl(words, c_even), v16),
                                       builder.bitcast(builder.shl(words, c_odd), v16), even)
            lsb = builder.and_(builder.lshr(v, c16), rbit_)
            r = builder.lshr(builder.add(builder.add(v, half_), lsb), c16)
            mag = builder.call(umin, [builder.add(expo, r), over_])
            code = builder.or_(builder.and_(builder.lshr(x, sh), sbit), mag)  # <= 0xFF: sign bit 7 or below
            out = builder.trunc(code, ir.VectorType(ir.IntType(8), LANES))
            builder.store(out, elem_ptr(context, builder, ta[4], args[4], args[5], out.type), align=1)
            return context.get_dummy_value()

        return sig, codegen

    @intrinsic
    def vabsmax16(typingctx, acc, f, srow, i, first):
        """acc[f:f+16] = |srow[i:i+16]| patterns (``first`` a true literal) or their max with acc (false)."""
        if not (contiguous_1d(acc, srow) and isinstance(first, types.BooleanLiteral)):
            return None
        init = first.literal_value
        sig = types.none(acc, f, srow, i, first)

        def codegen(context, builder, signature, args):
            ir, _, _, v16, _ = _vec_ir()
            ta = signature.args
            pa = elem_ptr(context, builder, ta[0], args[0], args[1], v16)
            x = builder.load(elem_ptr(context, builder, ta[2], args[2], args[3], v16), align=1)
            x = builder.and_(x, ir.Constant(v16, [0x7FFF] * LANES))
            if not init:
                x = builder.call(vfunc(builder, "llvm.umax.v16i16", v16), [builder.load(pa, align=1), x])
            builder.store(x, pa, align=1)
            return context.get_dummy_value()

        return sig, codegen

    @intrinsic
    def vscales4(typingctx, col, f, bcol, scales_row, j, conv_off, off, lo, span):
        """Four groups of 4 columns at once (:func:`_tile_scales4`): from the column maxima col[f:f+16], each group's
        E8M0 code ``ex - conv_off`` into scales_row[j:j+4] and ``B = ex - off`` into bcol[f:f+16] (ex: the group
        maximum's exponent field); returns nonzero if a group's ``ex - lo`` (wrapped) exceeds ``span``. The group
        maxima by two neighbour swaps and maxima within the vector; the stride-4 form made LLVM shuffle more."""
        if not contiguous_1d(col, bcol, scales_row):
            return None
        sig = types.uint32(col, f, bcol, scales_row, j, conv_off, off, lo, span)

        def codegen(context, builder, signature, args):
            ir, i16, i32, v16, _ = _vec_ir()
            ta = signature.args
            umax = vfunc(builder, "llvm.umax.v16i16", v16)
            mask = ir.VectorType(i32, LANES)
            v = builder.load(elem_ptr(context, builder, ta[0], args[0], args[1], v16), align=1)
            m = builder.call(umax, [v, builder.shuffle_vector(v, v, ir.Constant(mask, [n ^ 1 for n in range(LANES)]))])
            m = builder.call(umax, [m, builder.shuffle_vector(m, m, ir.Constant(mask, [n ^ 2 for n in range(LANES)]))])
            ex = builder.lshr(m, ir.Constant(v16, [7] * LANES))
            conv, off_, lo_, span_ = (splat(builder, a, v16) for a in args[5:])
            builder.store(builder.sub(ex, off_), elem_ptr(context, builder, ta[2], args[2], args[1], v16), align=1)
            codes = builder.trunc(builder.shuffle_vector(builder.sub(ex, conv), ex, ir.Constant(
                ir.VectorType(i32, 4), [0, 4, 8, 12])), ir.VectorType(ir.IntType(8), 4))
            builder.store(codes, elem_ptr(context, builder, ta[3], args[3], args[4], codes.type), align=1)
            bad = builder.icmp_unsigned(">", builder.sub(ex, lo_), span_)
            anyb = builder.call(vfunc(builder, "llvm.vector.reduce.or.v16i1", bad.type, 1, ir.IntType(1)), [bad])
            return builder.zext(anyb, i32)

        return sig, codegen


@njit(inline="always")
def _code_bf16(x, B, fk):
    """Code of the bf16 pattern ``x`` divided by 2^s, ``B = 127 + emin + s`` (uint16; see the module docstring)."""
    a = and16(x, 0x7FFF)
    e0 = shr16(a, 7)
    expo = shl16(subus16(e0, B), fk.mbits)
    v = shl16(or16(and16(a, 0x7F), 0x80), sub16(7, umin16(subus16(B, e0), 7)))
    r = shr16(add16(add16(v, fk.half16), and16(shr16(v, fk.c16), fk.rbit)), fk.c16)
    return or16(and16(shr16(x, fk.sgnsh16), fk.signbit), umin16(add16(expo, r), fk.over))


@njit
def _tile_amax(src, g0, R, c0, w, col):
    """col[f] = largest bf16 magnitude pattern of column c0 + f over rows g0..g0+R-1 (16 lanes wide)."""
    first = src[g0]
    for f in range(w):
        col[f] = and16(first[ix(c0 + f)], 0x7FFF)
    for r in range(1, R):
        row = src[g0 + r]
        for f in range(w):
            col[f] = umax16(col[f], and16(row[ix(c0 + f)], 0x7FFF))


@njit
def _prefetch_tile(src, g0, R, c0, w):
    """Prefetch rows g0..g0+R-1, columns c0..c0+w-1 of ``src`` (one hint per 64-byte line)."""
    step = 64 // src.itemsize
    for r in range(R):
        row = src[g0 + r]
        for f in range(c0, c0 + w, step):
            prefetch(row, f)


@njit
def _halvings(col, tmp, C, w):
    """Halve the column maxima ``col`` while the group width is even (the result back in ``col``); returns the
    number of maxima per group left."""
    cl = C
    while cl % 2 == 0:
        w //= 2
        cl //= 2
        halve_pairs(col, tmp, w)
        col[:w] = tmp[:w]
    return cl


@njit
def _tile_scales4(col, J, j0, conv_off, lo, emin_neg, scales_row, bcol):
    """:func:`_tile_scales` for groups of 4 columns, from the column maxima: four groups at a time with
    :func:`vscales4`, the last ``J % 4`` one by one."""
    odd = u32(0)
    span = u32(254 - lo)
    off = conv_off + emin_neg
    jv = J - J % 4
    for j in range(0, jv, 4):
        odd = bor(odd, vscales4(col, 4 * j, bcol, scales_row, j0 + j, conv_off, off, lo, span))
    for j in range(jv, J):
        m = umax16(umax16(col[4 * j], col[4 * j + 1]), umax16(col[4 * j + 2], col[4 * j + 3]))
        ex = shr(m, 7)
        odd = bor(odd, u32(sub(ex, lo) > span))
        scales_row[ix(j0 + j)] = sub(ex, conv_off)
        b = sub16(ex, off)
        bcol[4 * j] = b
        bcol[4 * j + 1] = b
        bcol[4 * j + 2] = b
        bcol[4 * j + 3] = b
    return 1 if odd == 0 else 0


@njit
def _tile_scales(x, cl, J, C, j0, conv_off, lo, emin_neg, scales_row, bcol):
    """From the tile's column maxima ``x`` (``cl`` per group, after halving): the groups' E8M0 codes into
    ``scales_row[j0:j0 + J]`` and ``B`` of every column into ``bcol``; 0 if a group is not the common case. The
    loops over groups are branch-free (vectorised; a tile holds 128 groups of 8 x 4)."""
    if cl > 1:  # C not a power of two: finish each group's max here
        for j in range(J):
            m = x[j * cl]
            for c in range(1, cl):
                m = max(m, x[j * cl + c])
            x[j] = m
    odd = u32(0)
    span = u32(254 - lo)
    off = conv_off + emin_neg
    for j in range(J):
        ex = shr16(x[j], 7)
        odd = bor(odd, u32(sub(ex, lo) > span))
        scales_row[ix(j0 + j)] = sub(ex, conv_off)
    if odd:
        return 0
    for j in range(J):
        b = sub16(shr16(x[j], 7), off)
        for c in range(C):
            bcol[j * C + c] = b
    return 1


@njit(inline="always")
def _encode_rows_vec(src, g0, R, c0, w, bcol, fk, codes, c1, w1, nxt, mbits, sgnsh):
    """:func:`_encode_rows` with the 16-lane steps (:func:`vcode16`, :func:`vabsmax16`) and the format's shift counts
    ``mbits`` and ``sgnsh`` (constants at the call, so that they compile to immediates); the last ``w % 16``
    columns one by one."""
    wv = w - w % LANES
    fused = w1 == w
    for r in range(R):
        srow, crow = src[g0 + r], codes[g0 + r]
        if fused and r == 0:
            for f in range(0, wv, LANES):
                vcode16(srow, c0 + f, bcol, f, crow, c0 + f, mbits, sgnsh, fk.half16, fk.rbit, fk.signbit, fk.over)
                vabsmax16(nxt, f, srow, c1 + f, True)
        elif fused:
            for f in range(0, wv, LANES):
                vcode16(srow, c0 + f, bcol, f, crow, c0 + f, mbits, sgnsh, fk.half16, fk.rbit, fk.signbit, fk.over)
                vabsmax16(nxt, f, srow, c1 + f, False)
        else:
            for f in range(0, wv, LANES):
                vcode16(srow, c0 + f, bcol, f, crow, c0 + f, mbits, sgnsh, fk.half16, fk.rbit, fk.signbit, fk.over)
        for f in range(wv, w):
            crow[ix(c0 + f)] = _code_bf16(srow[ix(c0 + f)], bcol[f], fk)
            if fused:
                a = and16(srow[ix(c1 + f)], 0x7FFF)
                nxt[f] = a if r == 0 else umax16(nxt[f], a)
    if 0 < w1 != w:
        _tile_amax(src, g0, R, c1, w1, nxt)


@njit
def _encode_rows(src, g0, R, c0, w, bcol, fk, codes, c1, w1, nxt):
    """Codes of the tile's rows (columns c0..c0+w-1, ``bcol`` per column), and, in the same loop where the widths
    agree, the next tile's amax (columns c1..c1+w1-1 into ``nxt``): its reads from memory overlap the encoding.
    The formats of quantize_mx get a loop each, with their shift counts as constants."""
    if fk.mbits == 3 and fk.sgnsh16 == 8:  # float8_e4m3fn, float8_e4m3
        _encode_rows_vec(src, g0, R, c0, w, bcol, fk, codes, c1, w1, nxt, 3, 8)
    elif fk.mbits == 2 and fk.sgnsh16 == 8:  # float8_e5m2
        _encode_rows_vec(src, g0, R, c0, w, bcol, fk, codes, c1, w1, nxt, 2, 8)
    elif fk.mbits == 1 and fk.sgnsh16 == 12:  # float4_e2m1fn
        _encode_rows_vec(src, g0, R, c0, w, bcol, fk, codes, c1, w1, nxt, 1, 12)
    else:
        _encode_rows_vec(src, g0, R, c0, w, bcol, fk, codes, c1, w1, nxt, fk.mbits, fk.sgnsh16)


@njit
def _tile_groups(col, tmp, C, w, c0, conv_off, lo, fk, scales_row, bcol):
    """Scales of the tile from its column maxima ``col`` (overwritten) and ``B`` per column into ``bcol``."""
    if C == 4:  # quantize_mx's groups
        return _tile_scales4(col, w // 4, c0 // 4, conv_off, lo, fk.emin_neg, scales_row, bcol)
    return _tile_scales(col, _halvings(col, tmp, C, w), w // C, C, c0 // C, conv_off, lo, fk.emin_neg, scales_row,
                        bcol)


@njit
def band_bf16(src, g0, R, C, conv_off, fk, codes, scales_row, col, tmp, bcol, nxt):
    """Scales and codes of the R-row band of bf16 patterns ``src`` (uint16) starting at row g0, tile by tile: each
    tile's scales from its amax, then its codes from L1 while the next tile's amax is read. Returns 0 (having
    written part of the band) at the first tile with a group that is not the common case; the caller redoes the
    band. Scratch: col, tmp, nxt (uint16, at least the tile width), bcol (uint16, the tile width)."""
    F = src.shape[1]
    W = C * max(1, TILE // C)
    lo = 8 + conv_off + fk.emin_neg  # smallest amax exponent field with B >= 8
    _tile_amax(src, g0, R, 0, min(W, F), col)
    for c0 in range(0, F, W):
        w = min(W, F - c0)
        cp = c0 + 2 * W  # the tile after next (the next one's reads are already under way in _encode_rows)
        if cp < F:
            _prefetch_tile(src, g0, R, cp, min(W, F - cp))
        elif g0 + 2 * R <= src.shape[0] and cp - F < F:
            _prefetch_tile(src, g0 + R, R, cp - F, min(W, 2 * F - cp))
        if not _tile_groups(col, tmp, C, w, c0, conv_off, lo, fk, scales_row, bcol):
            return 0
        c1 = c0 + W
        _encode_rows(src, g0, R, c0, w, bcol, fk, codes, c1, max(0, min(W, F - c1)), nxt)
        col, nxt = nxt, col
    return 1
