"""Hot loops of stochastic rounding: Numba kernels and their NumPy twins, bit-identical.

Stochastic rounding of one value is "the round-toward-zero code, plus one magnitude step when
``F + r >= 2**n``", where ``F`` is the dropped fraction written as an ``n``-bit integer and ``r`` is ``n`` random
bits (see :mod:`emulator.numerics.stochastic` for the full definition). The RTZ code, and every special case (NaN,
inf, zero, negative to an unsigned format), comes from the cast encoder :func:`encode_f32` / :func:`encode_f64` of
``_cast_kernels``; these kernels only add the dropped-fraction test and the overflow of the extra step.

The random bits of the keyed stream (defined in :mod:`emulator.numerics.keyed`) are made *inside* the loops: a
32-bit lane hash per element under a block key hoisted out of each chunk, so a 16M-element cast makes one pass over
memory, and element ``i`` gets the same bits however the loop is split.

Parameter tuple ``p``: the cast encoder's (``cast_params(fmt, saturate, rtz=True, ...)``); ``thr``: the bit pattern
(of the input's float type) of ``max_finite + ulp(max_finite)``, capped at the pattern of +inf: inputs at or above it
overflow whatever the random bits.
"""

from __future__ import annotations

import numpy as np

from .._jit import HAVE_NUMBA, dispatch, njit, prange
from ._cast_kernels import _bit_length, _bit_length_np, _encode_numpy, encode_f32, encode_f64
from ._u32 import add, band, shl, shr, u32  # single 32-bit LLVM instructions (8 lanes per AVX2 register)
from ._vec import contiguous_1d, elem_ptr, splat, vfunc

__all__ = ["GOLDEN", "MIX1", "MIX2", "H1", "H2", "H3", "keyed_words", "keyed_word", "sr_keyed", "sr_with_bits"]

GOLDEN = 0x9E3779B97F4A7C15  # 2^64 / golden ratio: the Weyl step of SplitMix64
MIX1 = 0xBF58476D1CE4E5B9  # SplitMix64 finaliser multipliers (Stafford's Mix13)
MIX2 = 0x94D049BB133111EB
H1 = 0xED5AD4BB  # the three multipliers of the 32-bit lane hash (triple32, Wellons' hash-prospector; shifts 17 11 15 14)
H2 = 0xAC4C1B51
H3 = 0x31848BAB
_MASK64 = 0xFFFFFFFFFFFFFFFF
_M32 = 0xFFFFFFFF
# _NO_CACHE_WHY: the two vectorised SR kernels are compiled afresh in each process (~0.6 s each, on first use): they
# are closures over one format's constants. (An older note here said their cached copies ran 2x slower; that was a
# threaded and a serial build sharing one cache entry, fixed in emulator._jit.njit.)
_SERIAL_BELOW = 8192  # elements: below this the threaded kernels cost more to launch than to run


# --------------------------------------------------------------------------------------------------------------------
# the keyed stream (definition: emulator/numerics/keyed.py)
# --------------------------------------------------------------------------------------------------------------------

@njit(inline="always")
def _mix64(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
    return z ^ (z >> np.uint64(31))


@njit(inline="always")
def block_key(key, hi, half):
    """The 64-bit key of half ``half`` (0: top 32 bits, 1: low 32) of the words of elements ``hi * 2^32 ..``."""
    return _mix64(key ^ ((np.uint64(2) * hi + np.uint64(half + 1)) * np.uint64(GOLDEN)))


def _hash32_py(x, b):
    x = int(x) & _M32
    x = ((x ^ (x >> 17)) * H1) & _M32
    x ^= int(b) & _M32
    x = ((x ^ (x >> 11)) * H2) & _M32
    x = ((x ^ (x >> 15)) * H3) & _M32
    return np.uint32(x ^ (x >> 14))


def hash_ir(builder, x, key, const):
    """:func:`hash32` as LLVM IR on ``x`` (i32, or a vector of i32) with the key half ``key`` (the same type);
    ``const(k)`` makes a constant of that type."""
    x = builder.mul(builder.xor(x, builder.lshr(x, const(17))), const(H1))
    x = builder.xor(x, key)
    x = builder.mul(builder.xor(x, builder.lshr(x, const(11))), const(H2))
    x = builder.mul(builder.xor(x, builder.lshr(x, const(15))), const(H3))
    return builder.xor(x, builder.lshr(x, const(14)))


if HAVE_NUMBA:
    from numba import types as _nbtypes
    from numba.extending import intrinsic as _intrinsic

    @_intrinsic
    def _hash32_ir(typingctx, x, b):
        """:func:`hash32` written directly as 32-bit LLVM instructions. Written with Numba's integer arithmetic, every
        uint32 operation is widened to 64 bits and truncated back; LLVM then widens the whole hash (and the counter
        feeding it) to 64-bit lanes, 4 per AVX2 register with multiplies emulated by vpmuludq: 2x slower."""
        def codegen(context, builder, signature, args):
            return hash_ir(builder, args[0], args[1], args[0].type)
        return _nbtypes.uint32(_nbtypes.uint32, _nbtypes.uint32), codegen
else:  # never called hot: the NumPy twins run instead
    _hash32_ir = _hash32_py


@njit(inline="always")
def hash32(x, b):
    """The lane hash of ``x = lo + a`` (uint32) with the key's other half ``b`` xored in after the first round:
    32-bit operations only, so the loops that call it vectorise with 8 lanes on AVX2 (vpmulld)."""
    return _hash32_ir(np.uint32(x), np.uint32(b))


@njit(inline="always")
def half_word(k, lo):
    """The 32-bit half word of element ``lo`` (uint32, the index mod 2^32) under block key ``k``."""
    return hash32(np.uint32(lo + np.uint32(k & np.uint64(_M32))), np.uint32(k >> np.uint64(32)))


@njit(inline="always")
def keyed_word(key, index):
    """The 64-bit word of element ``index`` (uint64) of the stream with key ``key`` (uint64)."""
    hi = index >> np.uint64(32)
    lo = np.uint32(index & np.uint64(_M32))
    top = half_word(block_key(key, hi, 0), lo)
    return (np.uint64(top) << np.uint64(32)) | np.uint64(half_word(block_key(key, hi, 1), lo))


@njit(inline="always")
def chunk_split(offset, start, stop):
    """Where the global index ``offset + i`` of a chunk ``[start, stop)`` crosses a multiple of 2^32 (``stop`` if it
    does not): the chunk's two parts have different block keys. Returns ``(cut, hi)``, ``hi`` the first part's."""
    g = offset + np.uint64(start)
    room = np.int64(np.uint64(1 << 32) - (g & np.uint64(_M32)))
    return start + min(stop - start, room), g >> np.uint64(32)


@njit(parallel=True)
def _keyed_words_nb(key, index, out):
    for i in prange(index.size):
        out[i] = keyed_word(key, np.uint64(index[i]))


def mix64_array(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on a uint64 array (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
    return z ^ (z >> np.uint64(31))


def _half_words_np(key: int, hi: np.ndarray, lo: np.ndarray, half: int) -> np.ndarray:
    k = mix64_array(np.uint64(key) ^ ((np.uint64(2) * hi + np.uint64(half + 1)) * np.uint64(GOLDEN)))
    x = lo + (k & np.uint64(_M32)).astype(np.uint32)
    x ^= x >> np.uint32(17)
    x *= np.uint32(H1)
    x ^= (k >> np.uint64(32)).astype(np.uint32)
    x ^= x >> np.uint32(11)
    x *= np.uint32(H2)
    x ^= x >> np.uint32(15)
    x *= np.uint32(H3)
    return x ^ (x >> np.uint32(14))


def _keyed_words_np(key, index, out):
    idx = index.astype(np.uint64)
    hi, lo = idx >> np.uint64(32), (idx & np.uint64(_M32)).astype(np.uint32)
    with np.errstate(over="ignore"):
        top = _half_words_np(key, hi, lo, 0).astype(np.uint64)
        out[...] = (top << np.uint64(32)) | _half_words_np(key, hi, lo, 1)


keyed_words = dispatch(_keyed_words_nb, _keyed_words_np)
keyed_words.__doc__ = """Fill ``out`` (uint64) with the keyed words of the uint64/int64 ``index`` array."""


# --------------------------------------------------------------------------------------------------------------------
# scalar core (Numba)
# --------------------------------------------------------------------------------------------------------------------

@njit
def _over_mag(p):
    """Magnitude code an overflowing finite value takes (the encoder's non-RTZ rule)."""
    if p.saturate == 1 or p.nan_kind == 2:
        return p.max_mag
    if p.nan_kind == 0:
        return p.inf_mag
    return p.nan_mag


@njit
def _step_up(code, sig, k, e, r, n, p):
    """``code`` (the RTZ code of (-1)^s * sig * 2^k, e = floor(log2)) plus one step if F + r >= 2^n."""
    mbits = p.mantissa_bits
    emin = p.emin
    if p.has_subnormals == 0 and e < emin:  # below the smallest value of a format without zero (e8m0): no lower one
        return code
    et = e if e > emin else emin
    d = et - mbits - k
    if d <= 0:
        return code  # exactly representable
    if d >= 63:
        rem = np.uint64(sig)
    else:
        rem = np.uint64(sig) & ((np.uint64(1) << np.uint64(d)) - np.uint64(1))
    if n >= d:
        frac = rem << np.uint64(n - d)
    elif d - n >= 64:
        frac = np.uint64(0)
    else:
        frac = rem >> np.uint64(d - n)
    if frac == 0:
        return code
    nmask = np.uint64(_MASK64) >> np.uint64(64 - n)
    if r <= nmask - frac:  # r + frac < 2^n
        return code
    pad = p.pad_bits
    c = code >> pad
    if p.sign_bit != 0:
        mag = c & (p.sign_bit - 1)
        sign = c & p.sign_bit
    else:
        mag = c
        sign = 0
    if mag >= p.max_mag:
        mag = _over_mag(p)
    else:
        mag += 1
    return (sign | mag) << pad


@njit
def _sr_f32(b, r, n, p, thr):
    """SR code of the fp32 bit pattern ``b`` (int64) with ``n``-bit random integer ``r`` (uint64)."""
    code = encode_f32(b, p)
    a = b & 0x7FFFFFFF
    if a == 0 or a >= 0x7F800000:
        return code
    neg = (b >> 31) & 1
    if p.sign_bit == 0 and neg == 1:
        return code
    if a >= thr:
        return ((p.sign_bit if neg else 0) | _over_mag(p)) << p.pad_bits
    ex = a >> 23
    m = a & 0x7FFFFF
    if ex == 0:
        return _step_up(code, m, np.int64(-149), np.int64(-150) + _bit_length(m), r, n, p)
    return _step_up(code, m | 0x800000, ex - 150, ex - 127, r, n, p)


@njit
def _sr_f64(b, r, n, p, thr):
    """SR code of the fp64 bit pattern ``b`` (int64), exact-value rounding."""
    code = encode_f64(b, p)
    a = b & 0x7FFFFFFFFFFFFFFF
    if a == 0 or a >= 0x7FF0000000000000:
        return code
    neg = (b >> 63) & 1
    if p.sign_bit == 0 and neg == 1:
        return code
    if a >= thr:
        return ((p.sign_bit if neg else 0) | _over_mag(p)) << p.pad_bits
    ex = a >> 52
    m = a & 0xFFFFFFFFFFFFF
    if ex == 0:
        return _step_up(code, m, np.int64(-1074), np.int64(-1075) + _bit_length(m), r, n, p)
    return _step_up(code, m | 0x10000000000000, ex - 1075, ex - 1023, r, n, p)


# --------------------------------------------------------------------------------------------------------------------
# array kernels (Numba)
# --------------------------------------------------------------------------------------------------------------------

@njit(parallel=True)
def _sr_keyed_general(bits, out, key, offset, nbits, p, thr, is64):
    """Any input, any format. ``nbits`` 0 = per element min(d, 64) bits (the top bits of the word)."""
    for i in prange(bits.size):
        w = keyed_word(key, offset + np.uint64(i))
        b = np.int64(bits[i])
        if is64:
            n = 64 if nbits == 0 else nbits
            out[i] = _sr_f64(b, w >> np.uint64(64 - n), n, p, thr)
        else:
            n = 64 if nbits == 0 else nbits
            out[i] = _sr_f32(b & 0xFFFFFFFF, w >> np.uint64(64 - n), n, p, thr)


@njit
def _fix_part(bits, out, s0, s1, key, hi, base, kb, offset, lo_b, span_b, n, p, thr):
    """Redo with the general :func:`_sr_f32` the elements of ``[s0, s1)`` (one block key) whose magnitude pattern lies
    outside ``[lo_b, lo_b + span_b)``. Groups of ``_GROUP`` elements are tested with a vectorised count first (a
    scalar test per element costs as much as the normal-range loop). A function of its own: inlined into the
    normal-range kernel it made LLVM compile the main loop 2x slower."""
    u32 = np.uint32
    k1 = block_key(key, hi, 1)
    base1 = u32(u32(offset + np.uint64(s0)) + u32(k1))
    kb1 = u32(k1 >> np.uint64(32))
    for g0 in range(0, s1 - s0, _GROUP):
        g1 = min(s1 - s0, g0 + _GROUP)
        cnt = 0
        for j in range(g0, g1):
            a = u32(bits[np.uint64(s0 + j)] & u32(0x7FFFFFFF))
            cnt += np.int64(u32(u32(a - lo_b) >= span_b) & u32(a != u32(0)))
        if cnt == 0:
            continue
        for j in range(g0, g1):
            ui = np.uint64(s0 + j)
            a = u32(bits[ui] & u32(0x7FFFFFFF))
            if a != u32(0) and u32(a - lo_b) >= span_b:
                w = (np.uint64(hash32(add(base, u32(j)), kb)) << np.uint64(32)) | np.uint64(
                    hash32(add(base1, u32(j)), kb1))
                out[ui] = _sr_f32(np.int64(bits[ui]), w >> np.uint64(64 - n), n, p, thr)


_LANES = 16  # elements per step of the narrow targets' vector loop (two AVX2 registers of 32-bit lanes)


def _narrow_loop(d: int, exmin: int, dsub: int, n: int, sbpos: int, pad: int, hi_b: int, branchy: bool):
    """The vector loop of the narrow targets' normal-range kernel (see :func:`_normal_kernel`) as one Numba
    intrinsic ``loop(bits, out, s0, nvec, base, kb) -> flag | (steps << 2)``: elements ``s0 .. s0 + 16 nvec`` (fp32
    patterns as uint32; codes into ``out``, uint8 or uint16), ``base`` the hash input of element ``s0`` and ``kb``
    the key's other half; ``flag`` is 1 when some magnitude lies at or above ``hi_b`` (max finite), 2 when some
    element's carry is ambiguous (``n > 31``), else 0. The operations of the scalar loop of ``run`` written in LLVM
    vector IR on 16 lanes with this format's constants (the loop vectoriser made 8-lane steps whose 1-byte stores
    took five shuffles per 8 codes; 16 lanes truncate to codes in fewer).

    ``branchy``: a step whose 16 magnitudes all lie at or above the target's smallest normal drops ``d`` bits in
    every lane and takes the formula with constant shifts (``(a - ((exmin - 1) << 23) + (h >> (32 - d))) >> d``, 4
    operations against 14); other steps take the general one, and ``steps`` counts them. Without ``branchy`` every
    step takes the general formula (no test, no branch to mispredict): :func:`_normal_kernel` picks the variant per
    piece from the count. Both give the same codes."""
    from llvmlite import ir
    from numba.core import cgutils

    masked, amb = n < 31, n > 31
    rkeep = 0xFFFFFFFF & ~((1 << max(32 - n, 0)) - 1)

    @_intrinsic
    def loop(typingctx, bits, out, s0, nvec, base, kb):
        if not (contiguous_1d(bits, out) and bits.dtype == _nbtypes.uint32
                and out.dtype in (_nbtypes.uint8, _nbtypes.uint16)):
            return None
        sig = _nbtypes.int64(bits, out, _nbtypes.int64, _nbtypes.int64, _nbtypes.uint32, _nbtypes.uint32)

        def codegen(context, builder, signature, args):
            abits, aout, start, count, x0, key = args
            i32, i64 = ir.IntType(32), ir.IntType(64)
            v = ir.VectorType(i32, _LANES)
            vo = ir.VectorType(ir.IntType(signature.args[1].dtype.bitwidth), _LANES)
            v8 = ir.VectorType(i32, 8)

            def c(k, vty=v):
                return ir.Constant(vty, [k & 0xFFFFFFFF] * vty.count)

            def fold(x):
                """umax of the two 8-lane halves: one AVX2 register per accumulator (fewer spills)."""
                lo = builder.shuffle_vector(x, x, ir.Constant(v8, list(range(8))))
                hi = builder.shuffle_vector(x, x, ir.Constant(v8, list(range(8, 16))))
                return builder.call(umax8, [lo, hi])

            umin = vfunc(builder, f"llvm.umin.v{_LANES}i32", v)
            umax8 = vfunc(builder, "llvm.umax.v8i32", v8)
            any16 = vfunc(builder, f"llvm.vector.reduce.or.v{_LANES}i1", ir.VectorType(ir.IntType(1), _LANES), 1,
                          ir.IntType(1))
            acc_a = cgutils.alloca_once_value(builder, c(0, v8))  # loop-carried vectors: promoted to registers
            acc_s = cgutils.alloca_once_value(builder, c(0, v8))
            n_gen = cgutils.alloca_once_value(builder, i64(0))  # steps that took the general formula
            xs = builder.add(splat(builder, x0, v), ir.Constant(v, list(range(_LANES))))
            kv = splat(builder, key, v)
            with cgutils.for_range(builder, count) as lp:
                off = builder.mul(lp.index, i64(_LANES))
                idx = builder.add(start, off)
                b = builder.load(elem_ptr(context, builder, signature.args[0], abits, idx, v), align=4)
                h = hash_ir(builder, builder.add(xs, splat(builder, builder.trunc(off, i32), v)), kv, c)
                a = builder.and_(b, c(0x7FFFFFFF))
                builder.store(builder.call(umax8, [builder.load(acc_a), fold(a)]), acc_a)
                if masked:
                    h = builder.and_(h, c(rkeep))

                def general():
                    """Every lane through the clamped formula: any magnitude below max finite."""
                    t = builder.call(umin, [builder.lshr(a, c(23)), c(exmin)])
                    de = builder.call(umin, [builder.sub(c(dsub), t), c(62)])  # beyond 62 dropped bits: alike
                    dc = builder.call(umin, [de, c(31)])  # the final shift's; the first drops de - dc (<= 31)
                    big = builder.lshr(builder.add(builder.sub(a, builder.shl(t, c(23))), c(1 << 23)),
                                       builder.sub(de, dc))
                    sm = builder.add(big, builder.lshr(h, builder.sub(c(32), dc)))
                    if amb:
                        builder.store(builder.call(umax8, [builder.load(acc_s), fold(builder.and_(sm, c(0x7FFFFFFF)))]),
                                      acc_s)
                    return builder.lshr(sm, dc)

                if not branchy:
                    mag = general()
                else:
                    low = builder.icmp_unsigned("<", a, c(exmin << 23))  # below the target's smallest normal
                    with builder.if_else(builder.call(any16, [low])) as (some_low, all_normal):
                        with some_low:
                            builder.store(builder.add(builder.load(n_gen), i64(1)), n_gen)
                            mag_g, bb_g = general(), builder.basic_block
                        with all_normal:  # d dropped bits: constant shifts
                            sm = builder.add(builder.sub(a, c((exmin - 1) << 23)), builder.lshr(h, c(32 - d)))
                            mag_n, bb_n = builder.lshr(sm, c(d)), builder.basic_block
                    mag = builder.phi(v)
                    mag.add_incoming(mag_g, bb_g)
                    mag.add_incoming(mag_n, bb_n)
                code = builder.or_(builder.shl(builder.lshr(b, c(31)), c(sbpos)), mag)
                if pad:
                    code = builder.shl(code, c(pad))
                builder.store(builder.trunc(code, vo), elem_ptr(context, builder, signature.args[1], aout, idx, vo),
                              align=1)
            red = vfunc(builder, "llvm.vector.reduce.umax.v8i32", v8, 1, i32)
            over = builder.icmp_unsigned(">=", builder.call(red, [builder.load(acc_a)]), i32(hi_b))
            flag = builder.select(over, i32(1), i32(0))
            if amb:
                allones = builder.icmp_unsigned("==", builder.call(red, [builder.load(acc_s)]), i32(0x7FFFFFFF))
                flag = builder.select(allones, i32(2), flag)
            return builder.or_(builder.zext(flag, i64), builder.shl(builder.load(n_gen), i64(2)))

        return sig, codegen

    return loop


@njit
def _no_loop(bits, out, s0, nvec, base, kb):
    """Stands for :func:`_narrow_loop`'s intrinsic in the targets with fp32's exponent range (never called)."""
    return 0


_PIECE = 64  # steps of 16 elements per call of the narrow vector loop: the unit of its choice of variant
_PROBE = 7  # after a piece where the branching variant took the general formula often, pieces run branch-free
_GROUP = 32  # elements per group of the fix-up scan (a vectorised count decides whether to look inside)
_CHUNK = 1 << 14  # elements per task of the normal-range kernels (the stream index advances by one add inside it)
_normal_kernels: dict = {}


def _max_finite_pattern(p: tuple) -> int:
    """The fp32 bit pattern of the target's max finite value: the normal-range kernel leaves every magnitude at or
    above it (which may overflow), inf and NaN to the general encoder."""
    d = 23 - p.mantissa_bits
    return (p.max_mag << d) + ((p.emin + 126) << 23)


def _normal_kernel(n: int, p: tuple):
    """The normal-range kernel for target ``p`` and ``n`` random bits, compiled once per process with its constants
    frozen in (Numba treats closure variables as compile-time constants, so LLVM folds every shift, mask and select
    that does not apply to this format: 2x faster than passing them as arguments).

    It rounds every magnitude below the target's max finite (:func:`_max_finite_pattern`); the others (overflow, inf,
    NaN) are redone with the general :func:`_sr_f32`, part by part while the part is in cache. Every operation is a
    32-bit LLVM instruction (:mod:`._u32`; Numba's own integer arithmetic is 64-bit, and a variable shift in it stays
    64-bit: 4 lanes per AVX2 register instead of 8).

    Targets with fp32's exponent range (bf16, tf32): round-toward-zero plus the SR step is one add of the top
    ``m = min(n, d)`` random bits under the ``d`` dropped bits (with ``n >= d`` the fraction's low ``n - d`` bits
    are zero, so only the top ``d`` random bits can carry) and one shift; the carry walks into the exponent field,
    and the sign rides along (nothing below max finite carries into it).

    Narrower targets: with the exponent field ``ex`` clamped to ``t = min(ex, exmin)`` (``exmin``: the target's
    smallest normal), ``A = a - ((t - 1) << 23)`` is the magnitude pattern rebased so that the target's smallest
    normal has exponent field 1 (a normal), or the significand with its implicit bit (a target subnormal, any value
    below). ``de = dsub - t`` bits are dropped. With ``de <= 31`` the code is ``(A + (h >> (32 - de))) >> de``: the
    top ``de`` bits of the top half word ``h`` (masked first to its top ``n`` bits when ``n < de``) added under the
    dropped bits, whose carry is the SR step; exact, since with ``n >= de`` only the top ``de`` random bits can
    carry, and with ``n < de`` the zero bits of the shifted random word cannot change a carry of the top ``n``.
    With ``de > 31`` a first shift keeps the top 31 dropped bits (``A >> (de - 31)``, the code bits being zero) and
    the second adds the top 31 random bits: exact for ``n <= 31``; for ``n > 31`` except when the 31-bit sum is all
    ones (the bits below decide: probability 2^-31; the part is then redone by the general encoder). Zero and fp32
    subnormals (``ex = 0``, ``t = 0``) fall in the second case with ``A < 2^24`` shifted out: code 0, plus the
    carry of no dropped bits. No element below max finite needs the encoder, however small.

    The narrow targets' loop runs in vector IR (:func:`_narrow_loop`), in pieces of :data:`_PIECE` steps of 16: a
    piece runs the branching variant (constant shifts for steps of target normals) unless the last branching piece
    took the general formula in over 1/8 of its steps, in which case the next :data:`_PROBE` pieces run the
    branch-free one (data with many small magnitudes: the branch would mispredict)."""
    key = (n, p)
    kern = _normal_kernels.get(key)
    if kern is not None:
        return kern
    c32 = np.uint32
    d = 23 - p.mantissa_bits
    wide = p.emin == -126  # fp32's exponent range: no rebasing, fp32's subnormals are the target's
    hi_b = c32(_max_finite_pattern(p))
    m_w = min(n, d)  # wide: random bits per element (constant), the top m_w of the half word
    keep_w, rsh_w, lsh_w = c32(0xFFFFFFFF & ~((1 << (d - m_w)) - 1)), c32(32 - m_w), c32(d - m_w)
    ud, pad, abs_mask = c32(d), c32(p.pad_bits), c32(0x7FFFFFFF)
    chunk = _CHUNK
    if wide:
        vloop_b = vloop_g = _no_loop
    else:
        sbpos = max(p.sign_bit.bit_length() - 1, 0)
        vloop_b, vloop_g = (_narrow_loop(d, p.emin + 127, p.emin + 127 + d, n, sbpos, p.pad_bits, int(hi_b), br)
                            for br in (True, False))
    piece, probe = _PIECE, _PROBE

    @njit(cache=False)
    def run(bits, out, s0, s1, base, kb):
        """Elements ``[s0, s1)`` (one block key). Returns 0, 1 when some element lies at or above max finite (or is
        NaN), 2 when some element's carry needs the bits below the ones the loop adds. A function of its own: with
        the fix-up code in the same function LLVM compiled the loop 2.5x slower."""
        if wide:
            x = base  # the hash input, a 32-bit induction variable (from the 64-bit j, LLVM widens the hash)
            amax = u32(0)  # the largest magnitude pattern (a reduction: vpmaxud)
            for j in range(s1 - s0):
                ui = np.uint64(s0 + j)  # unsigned: no negative-index wrap-around, the loads stay contiguous
                b = u32(bits[ui])
                h = hash32(x, kb)
                x = add(x, u32(1))
                amax = max(amax, band(b, abs_mask))
                out[ui] = shl(shr(add(band(b, keep_w), shl(shr(h, rsh_w), lsh_w)), ud), pad)
            return 1 if amax >= hi_b else 0
        # narrow targets: 16 lanes at a time in vector IR, in pieces; the last < 16 elements through a padded step
        nv = (s1 - s0) // _LANES
        flag = 0
        k = 0
        left = 0  # pieces still to run with the branch-free variant before trying the branching one again
        while k < nv:
            m = min(nv - k, piece)
            at = s0 + k * _LANES
            if left > 0:
                r = vloop_g(bits, out, at, m, add(base, u32(k * _LANES)), kb)
                left -= 1
            else:
                r = vloop_b(bits, out, at, m, add(base, u32(k * _LANES)), kb)
                if (r >> 2) * 8 > m:  # over 1/8 of its steps took the general formula (and the branch)
                    left = probe
            flag = max(flag, r & 3)
            k += m
        tail = s1 - s0 - nv * _LANES
        if tail:  # zeros after the last elements: code 0; they can only raise flag 2 (p = 2^-31: a redo, same codes)
            tb = np.zeros(_LANES, np.uint32)
            to = np.empty(_LANES, out.dtype)
            at = s0 + nv * _LANES
            tb[:tail] = bits[at:s1]
            flag = max(flag, vloop_g(tb, to, 0, 1, add(base, u32(nv * _LANES)), kb) & 3)
            out[at:s1] = to[:tail]
        return flag

    @njit(parallel=True, cache=False)  # see _NO_CACHE_WHY; a closure cannot be cached anyway
    def kern(bits, out, key, offset, pp, thr):
        size = bits.size
        for c in prange((size + chunk - 1) // chunk):
            start = c * chunk
            stop = min(size, start + chunk)
            cut, hi = chunk_split(offset, start, stop)
            for part in range(2):
                if part == 0:
                    s0, s1, k = start, cut, block_key(key, hi, 0)
                    base = u32(u32(offset + np.uint64(start)) + u32(k))
                else:  # the global index crossed a multiple of 2^32: the next block's key, lo from 0
                    s0, s1, k = cut, stop, block_key(key, hi + np.uint64(1), 0)
                    base = u32(k)
                kb = u32(k >> np.uint64(32))
                fix = run(bits, out, s0, s1, base, kb)
                if fix:
                    # redo, while the part is in cache, its elements at or above max finite, or (2) every element
                    _fix_part(bits, out, s0, s1, key, hi + np.uint64(part), base, kb, offset, u32(0),
                              hi_b if fix == 1 else u32(0), n, pp, thr)

    _normal_kernels[key] = kern
    return kern


@njit
def _sr_keyed_serial(bits, out, key, offset, nbits, p, thr, is64):
    """:func:`_sr_keyed_general` without threads: small arrays (a thread launch costs more than the work)."""
    n = 64 if nbits == 0 else nbits
    for i in range(bits.size):
        w = keyed_word(key, offset + np.uint64(i))
        if is64:
            out[i] = _sr_f64(np.int64(bits[i]), w >> np.uint64(64 - n), n, p, thr)
        else:
            out[i] = _sr_f32(np.int64(bits[i]) & 0xFFFFFFFF, w >> np.uint64(64 - n), n, p, thr)


@njit(parallel=True)
def _sr_bits_nb(bits, rbits, out, n, p, thr, is64):
    for i in prange(bits.size):
        if is64:
            out[i] = _sr_f64(np.int64(bits[i]), np.uint64(rbits[i]), n, p, thr)
        else:
            out[i] = _sr_f32(np.int64(bits[i]) & 0xFFFFFFFF, np.uint64(rbits[i]), n, p, thr)


def _sr_keyed_numba(x, out, key, offset, nbits, p, thr, minnorm):
    flat_out = out.reshape(-1)
    if x.size < _SERIAL_BELOW:
        bits = x.reshape(-1).view(np.uint32 if x.dtype == np.float32 else np.int64)
        _sr_keyed_serial(bits, flat_out, np.uint64(key), np.uint64(offset), nbits, p, thr, x.dtype != np.float32)
        return
    if x.dtype == np.float32:
        bits = x.reshape(-1).view(np.uint32)
        if p.has_subnormals == 1 and p.sign_bit != 0 and p.mantissa_bits < 23:  # signed, subnormals, narrower than fp32
            # the normal-range kernel covers every magnitude below max finite; the rest (overflow, inf, NaN) is
            # redone in the same pass by the general encoder
            _normal_kernel(nbits if nbits else 64, p)(bits, flat_out, np.uint64(key), np.uint64(offset), p, thr)
            return
        _sr_keyed_general(bits, flat_out, np.uint64(key), np.uint64(offset), nbits, p, thr, False)
    else:
        _sr_keyed_general(x.reshape(-1).view(np.int64), flat_out, np.uint64(key), np.uint64(offset), nbits, p, thr,
                          True)


def _sr_bits_numba(x, rbits, out, n, p, thr):
    if x.dtype == np.float32:
        _sr_bits_nb(x.reshape(-1).view(np.uint32), rbits.reshape(-1), out.reshape(-1), n, p, thr, False)
    else:
        _sr_bits_nb(x.reshape(-1).view(np.int64), rbits.reshape(-1), out.reshape(-1), n, p, thr, True)


# --------------------------------------------------------------------------------------------------------------------
# NumPy twin
# --------------------------------------------------------------------------------------------------------------------

def _sr_numpy_core(x: np.ndarray, r: np.ndarray, n: np.ndarray, out: np.ndarray, p: tuple, thr: int) -> None:
    """Vectorised twin of :func:`_sr_f32` / :func:`_sr_f64`; ``r`` uint64 and ``n`` int64 arrays (flat)."""
    flat_out = out.reshape(-1)
    _encode_numpy(x, flat_out, p)
    code = flat_out.astype(np.int64)
    if x.dtype == np.float32:
        b = x.reshape(-1).view(np.uint32).astype(np.int64)
        a = b & 0x7FFFFFFF
        neg = (b >> 31) & 1
        special, mbits_in, bias_off, exmax = a >= 0x7F800000, 23, 150, 0xFF
    else:
        b = x.reshape(-1).view(np.int64)
        a = b & 0x7FFFFFFFFFFFFFFF
        neg = (b >> 63) & 1
        special, mbits_in, bias_off, exmax = a >= 0x7FF0000000000000, 52, 1075, 0x7FF
    ex = a >> mbits_in
    m = a & ((1 << mbits_in) - 1)
    sub = ex == 0
    sig = np.where(sub, m, m | (1 << mbits_in))
    k = np.where(sub, 1 - bias_off, ex - bias_off)
    e = k + _bit_length_np(sig) - 1
    live = (a != 0) & ~special & ~((p.sign_bit == 0) & (neg == 1))
    sign = np.where(neg == 1, p.sign_bit, 0)
    over_code = (sign | _over_mag_py(p)) << p.pad_bits
    overflow = live & (a >= thr)
    live &= ~overflow
    if p.has_subnormals == 0:
        live &= e >= p.emin
    et = np.maximum(e, p.emin)
    d = et - p.mantissa_bits - k
    live &= d > 0
    dc = np.clip(d, 0, 62)
    rem = np.where(d >= 63, sig, sig & ((np.int64(1) << dc) - 1)).astype(np.uint64)
    left = np.clip(n - d, 0, 63).astype(np.uint64)
    right = np.clip(d - n, 0, 63).astype(np.uint64)
    frac = np.where(n >= d, rem << left, np.where(d - n >= 64, np.uint64(0), rem >> right))
    nmask = np.uint64(_MASK64) >> (64 - n).astype(np.uint64)
    up = live & (frac != 0) & (r > nmask - frac)
    c = code >> p.pad_bits
    mag = c & (p.sign_bit - 1) if p.sign_bit else c
    csign = c & p.sign_bit
    stepped = np.where(mag >= p.max_mag, csign | _over_mag_py(p), c + 1) << p.pad_bits
    res = np.where(overflow, over_code, np.where(up, stepped, code))
    flat_out[...] = res.astype(out.dtype)


def _over_mag_py(p: tuple) -> int:
    if p.saturate == 1 or p.nan_kind == 2:
        return p.max_mag
    if p.nan_kind == 0:
        return p.inf_mag
    return p.nan_mag


def _sr_keyed_numpy(x, out, key, offset, nbits, p, thr, minnorm):
    size = x.size
    words = np.empty(size, np.uint64)
    _keyed_words_np(key, np.arange(offset, offset + size, dtype=np.uint64), words)
    n = 64 if nbits == 0 else nbits
    _sr_numpy_core(x, words >> np.uint64(64 - n), np.full(size, n, np.int64), out, p, thr)


def _sr_bits_numpy(x, rbits, out, n, p, thr):
    _sr_numpy_core(x, rbits.reshape(-1).astype(np.uint64), np.full(x.size, n, np.int64), out, p, thr)


sr_keyed = dispatch(_sr_keyed_numba, _sr_keyed_numpy)
sr_keyed.__doc__ = """SR of C-contiguous float32/float64 ``x`` into ``out`` with the keyed stream.

``key``: the stream key; ``offset``: index of x's first element; ``nbits``: random bits per rounding (0 = all
dropped bits); ``p``: ``cast_params(..., rtz=True)``; ``thr``: overflow threshold pattern; ``minnorm``: fp32 pattern
of the target's smallest normal."""

sr_with_bits = dispatch(_sr_bits_numba, _sr_bits_numpy)
sr_with_bits.__doc__ = """SR of ``x`` into ``out`` with caller-supplied ``n``-bit random integers ``rbits``."""
