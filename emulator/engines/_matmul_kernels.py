"""Hot loops of the Tensor Engine accumulation models: Numba kernels and their bit-identical NumPy twins.

Every kernel takes the decoded operands as float32 (``a [K, M]`` stationary, ``b [K, N]`` moving; products of
bf16/fp16/fp8/tf32 values are exact in float32) and returns the float32 PE result ``[M, N]``. None of them
reassociates, so the Numba and NumPy paths agree bit for bit (the tests run both). The one fastmath flag is
``contract`` on the tiled micro-kernel, taken only when :func:`_exact_products` proves every product exact in float32
(then ``fma(a, b, acc)`` and ``acc + a*b`` are the same bits); otherwise the plain twin of that kernel runs.

* :data:`seq_tiled` -- the default ``sequential`` model over a long K: within each run of ``ktile`` consecutive k
  the PE sums ``acc = acc + a*b`` from +0 in k order, and the runs are added in order (the first one overwrites),
  which is what a loop of ``nc_matmul`` instructions accumulating into one PSUM tile computes. The Numba version
  packs the operands into panels and runs a register-blocked ``MR x NR`` micro-kernel (vectorised across the NR
  columns by LLVM's SLP vectoriser, which is switched on only while these kernels compile).
* :data:`generic` -- one instruction (K <= a few hundred) under any model: sequential (optionally with a correctly
  rounded fp32 FMA step), ``blocked:B``, ``pairwise``; optional flush-to-zero of the accumulator and a ``keep`` mask
  whose False entries contribute an exact +0 product (used by the structured-sparsity engine).
"""

from __future__ import annotations

import threading

import numpy as np

from .._jit import HAVE_NUMBA, dispatch, njit, prange, simd_target

__all__ = ["seq_tiled", "seq_packed", "code_panels", "decode_values", "generic", "MODEL_SEQUENTIAL", "MODEL_BLOCKED",
           "MODEL_PAIRWISE",
           "MR", "NR"]

MODEL_SEQUENTIAL, MODEL_BLOCKED, MODEL_PAIRWISE = 0, 1, 2
#: Register blocks of the micro-kernel (MR stationary columns x NR moving columns of output) by :func:`simd_target`:
#: (float32 lanes, AVX-512 registers) -> (MR, NR). Measured on one core of an AMD EPYC (znver5), 1024^3 bf16:
#: AVX-512 code with 4x16 has 4 zmm accumulators, too few to hide the FMA latency (~29 ms CPU); 8x32 (16 zmm)
#: ~20 ms. 256-bit code with AVX-512's 32 registers (skylake-avx512 tuning): 4x16 30-34 ms, 8x16 ~29 ms. AVX2 code
#: (16 registers): 4x16 25-29 ms, 6x16 ~27, 8x16 37-39 (spills). MR must divide 128 (emu.matmul's row blocks start
#: on a panel). Every block gives the same bits: each output's k order is fixed.
_BLOCKS = {(8, False): (4, 16), (8, True): (8, 16), (16, True): (8, 32)}
#: panels per parallel block of the tiled kernel (stationary, moving)
_MB, _NB = 8, 8
_TINY = np.float32(2.0 ** -126)


# --------------------------------------------------------------------------------------------------------------------
# sequential, tiled over K (the fast path of emu.matmul and of every default nc_matmul)
# --------------------------------------------------------------------------------------------------------------------

def _micro_source(mr: int, nr: int) -> str:
    """Source of the MR x NR micro-kernel over one run of ``kn`` k: one scalar accumulator per output, so LLVM keeps
    them in (vector) registers; the run's sum then overwrites (``first``) or is added to ``res`` (MR*NR values; constant
    indices, so the stores are consecutive and seed LLVM's SLP vectoriser)."""
    acc = [(i, j) for i in range(mr) for j in range(nr)]
    lines = ["def _micro(ap, bp, kn, res, first):"]
    lines += [f"    c{i}_{j} = np.float32(0.0)" for i, j in acc]
    lines += ["    for k in range(kn):"]
    lines += [f"        a{i} = ap[k * {mr} + {i}]" for i in range(mr)]
    lines += [f"        b{j} = bp[k * {nr} + {j}]" for j in range(nr)]
    lines += [f"        c{i}_{j} = c{i}_{j} + a{i} * b{j}" for i, j in acc]
    lines += ["    if first:"]
    lines += [f"        res[{i * nr + j}] = c{i}_{j}" for i, j in acc]
    lines += ["    else:"]
    lines += [f"        res[{i * nr + j}] = res[{i * nr + j}] + c{i}_{j}" for i, j in acc]
    return "\n".join(lines) + "\n"


_block_lock = threading.Lock()


def _set_block() -> tuple[int, int]:
    """Choose MR, NR for this target and build the micro-kernels (once; module globals, which the cached
    ``_seq_block`` reads when it compiles: Numba keys its cache on the CPU, and the block depends on the CPU only)."""
    g = globals()
    with _block_lock:
        if "MR" in g:
            return g["MR"], g["NR"]
        mr, nr = _BLOCKS[simd_target()]
        ns: dict = {"np": np}
        exec(compile(_micro_source(mr, nr), f"<trn3emu matmul micro-kernel {mr}x{nr}>", "exec"), ns)
        g["_micro"] = njit(cache=False)(ns["_micro"])
        # The same source with LLVM allowed to contract ``c + a*b`` into one FMA. Used only when every product is
        # exact in float32 (checked by _exact_products), where fma(a, b, c) = fl(c + a*b) = fl(c + fl(a*b)): the
        # same bits, about twice the throughput.
        g["_micro_fma"] = njit(cache=False, fastmath={"contract"})(ns["_micro"])
        g["MR"], g["NR"] = mr, nr
        return mr, nr


def __getattr__(name: str):
    """``MR`` / ``NR`` (and the micro-kernels) on first use: choosing them compiles a probe loop (~0.1 s)."""
    if name in ("MR", "NR", "_micro", "_micro_fma"):
        _set_block()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@njit(cache=True)
def _seq_block(ap, bp, K, ktile, out, fma, i0, i1, j0, j1):
    """Stationary panels i0..i1-1 x moving panels j0..j1-1 of the output, the K runs in k order."""
    M, N = out.shape
    res = np.empty((j1 - j0) * (i1 - i0) * MR * NR, np.float32)
    for k0 in range(0, K, ktile):
        kn = min(K, k0 + ktile) - k0
        for jp in range(j0, j1):
            b = bp[jp, k0 * NR:(k0 + kn) * NR]
            for ip in range(i0, i1):
                r0 = ((jp - j0) * (i1 - i0) + ip - i0) * MR * NR
                if fma:
                    _micro_fma(ap[ip, k0 * MR:(k0 + kn) * MR], b, kn, res[r0:r0 + MR * NR], k0 == 0)
                else:
                    _micro(ap[ip, k0 * MR:(k0 + kn) * MR], b, kn, res[r0:r0 + MR * NR], k0 == 0)
    for jp in range(j0, j1):
        for ip in range(i0, i1):
            r0 = ((jp - j0) * (i1 - i0) + ip - i0) * MR * NR
            for i in range(MR):
                m = ip * MR + i
                if m < M:
                    for j in range(NR):
                        n = jp * NR + j
                        if n < N:
                            out[m, n] = res[r0 + i * NR + j]


@njit(parallel=True, cache=True)
def _seq_panels(ap, bp, K, ktile, out, fma):
    # Blocks of MB stationary x NB moving panels, so that the block's slices of one K run (8 x 2 KiB + 8 x 8 KiB at
    # ktile 128) stay in L1/L2 while every micro-tile of the block is computed; the runs go in k order.
    nmp = ap.shape[0]
    nnp = bp.shape[0]
    nbm = -(-nmp // _MB)
    for tt in prange(nbm * -(-nnp // _NB)):
        t = np.int64(tt)
        i0 = (t % nbm) * _MB
        j0 = (t // nbm) * _NB
        _seq_block(ap, bp, K, ktile, out, fma, i0, min(nmp, i0 + _MB), j0, min(nnp, j0 + _NB))


def _operand_range(x):
    """:func:`_operand_range_kernel`, threaded only for large operands: waking the thread pool costs about 100 us,
    more than a PE-array tile's scan (nki-library kernels issue thousands of [128, 512] matmuls)."""
    return (_operand_range_threaded if x.size >= _THREADED_SCAN else _operand_range_serial)(x)


_THREADED_SCAN = 1 << 20


def _operand_range_kernel(x):
    """(OR of the low 12 significand bits, smallest nonzero and largest |x| bit pattern) of a float32 array: integer
    reductions over the bits, which LLVM vectorises (|x|'s bit patterns order as the magnitudes do; inf/NaN patterns
    are the largest)."""
    bits = x.reshape(-1).view(np.uint32)
    n = bits.size
    chunks = 16
    low = np.zeros(chunks, np.uint32)
    lo = np.full(chunks, 0xFFFFFFFF, np.uint32)
    hi = np.zeros(chunks, np.uint32)
    step = -(-n // chunks)
    for c in prange(chunks):
        o, mn, mx = np.uint32(0), np.uint32(0xFFFFFFFF), np.uint32(0)
        for i in range(c * step, min(n, (c + 1) * step)):
            u = bits[i] & np.uint32(0x7FFFFFFF)
            o |= u
            mx = max(mx, u)
            mn = min(mn, u if u != 0 else np.uint32(0xFFFFFFFF))
        low[c], lo[c], hi[c] = o & np.uint32(0xFFF), mn, mx
    return low.max(), lo.min(), hi.max()


_operand_range_threaded = njit(parallel=True, cache=True)(_operand_range_kernel)
_operand_range_serial = njit(cache=True)(_operand_range_kernel)


def _exact_products(ap: np.ndarray, bp: np.ndarray) -> bool:
    """True when every product of an element of ``ap`` with one of ``bp`` is exact in float32, so the FMA micro-kernel
    gives the same bits: significands of <= 12 bits (24 bits in a product), no inf/NaN, and magnitudes whose product
    neither overflows (max * max < 2^127) nor drops bits below 2^-149. An element of binade 2^e (normal) has its last
    bit at 2^(e-11), so every product's last bit is at least 2^(ea + eb - 22) for the smallest nonzero elements'
    binades ea, eb, which must then satisfy ea + eb >= -127 (operands with a subnormal element are refused)."""
    if ap.size == 0 or bp.size == 0:
        return True
    low_a, lo_a, hi_a = _operand_range(ap)
    low_b, lo_b, hi_b = _operand_range(bp)
    if low_a or low_b or max(hi_a, hi_b) >= 0x7F800000:  # long significands, inf or NaN
        return False
    if hi_a == 0 or hi_b == 0:
        return True
    if min(lo_a, lo_b) < 0x00800000:  # a subnormal element: its last bit is 2^-149 already
        return False
    binades = (int(lo_a) >> 23) - 127 + (int(lo_b) >> 23) - 127
    mag = np.array([hi_a, hi_b], np.uint32).view(np.float32).astype(np.float64)
    return binades >= -127 and mag[0] * mag[1] < 2.0 ** 127


def _pack(x: np.ndarray, r: int) -> np.ndarray:
    """[K, F] -> [ceil(F/r), K*r]: panel p holds columns r*p .. r*p+r-1, k-major; padding columns are zero.

    An F-contiguous ``x`` (the transpose view of a row-major [F, K] matrix, as emu.matmul passes the stationary
    operand) is packed from its rows directly, which avoids materialising the full transpose first."""
    K, F = x.shape
    panels = -(-F // r)
    if x.flags.f_contiguous and not x.flags.c_contiguous:
        rows = x.T  # [F, K], row-major
        if panels * r != F:
            rows = np.concatenate([rows, np.zeros((panels * r - F, K), np.float32)], axis=0)
        return np.ascontiguousarray(rows.reshape(panels, r, K).transpose(0, 2, 1)).reshape(panels, K * r)
    if panels * r != F:
        x = np.concatenate([x, np.zeros((K, panels * r - F), np.float32)], axis=1)
    return np.ascontiguousarray(x.reshape(K, panels, r).transpose(1, 0, 2)).reshape(panels, K * r)


_compile_lock = threading.Lock()
_compiled = False


def _ensure_compiled() -> None:
    global _compiled
    if _compiled:
        return
    with _compile_lock:
        if not _compiled:
            import numba

            mr, nr = _set_block()

            # SLP vectorisation turns the MR x NR scalar accumulators into vector registers (4-8x faster). It only groups
            # identical independent operations, so results are unchanged; it is off by default in Numba, hence the
            # switch around this one compilation (both micro-kernels compile inside it).
            old = numba.config.SLP_VECTORIZE
            numba.config.SLP_VECTORIZE = 1
            try:
                for fma in (False, True):
                    _seq_panels(_pack(np.zeros((1, 1), np.float32), mr), _pack(np.zeros((1, 1), np.float32), nr),
                                1, 1, np.empty((1, 1), np.float32), fma)
            finally:
                numba.config.SLP_VECTORIZE = old
            _compiled = True


def seq_packed(ap: np.ndarray, bp: np.ndarray, K: int, ktile: int, out: np.ndarray) -> None:
    """:data:`seq_tiled` on operands already packed into panels (``ap`` by :data:`code_panels` or :func:`_pack` with
    ``MR``, ``bp`` with ``NR``), writing the PE result into ``out [M, N]`` (a C-contiguous array or row block).
    Numba only: the caller checks :func:`~emulator._jit.numba_active` first."""
    if K == 0:
        out[:] = 0.0
        return
    _ensure_compiled()
    _seq_panels(ap, bp, K, int(ktile), out, _exact_products(ap, bp))


def _seq_tiled_numba(a: np.ndarray, b: np.ndarray, ktile: int) -> np.ndarray:
    K, M = a.shape
    out = np.empty((M, b.shape[1]), np.float32)
    mr, nr = _set_block()
    seq_packed(_pack(a, mr), _pack(b, nr), K, ktile, out)
    return out


def _seq_tiled_numpy(a: np.ndarray, b: np.ndarray, ktile: int) -> np.ndarray:
    K, M = a.shape
    N = b.shape[1]
    out = np.zeros((M, N), np.float32)
    acc = np.empty((M, N), np.float32)
    prod = np.empty((M, N), np.float32)
    for k0 in range(0, K, ktile):
        acc[:] = 0.0
        for k in range(k0, min(K, k0 + ktile)):
            np.multiply(a[k][:, None], b[k][None, :], out=prod)
            np.add(acc, prod, out=acc)
        if k0 == 0:
            out[:] = acc
        else:
            np.add(out, acc, out=out)
    return out


seq_tiled = dispatch(_seq_tiled_numba, _seq_tiled_numpy)
seq_tiled.__doc__ = """PE result of ``a.T @ b`` (float32 ``[K, M]``, ``[K, N]``) under the sequential model, K in runs of
``ktile``: each run summed from +0 in k order, the runs then added in order (the first overwrites)."""


@njit(parallel=True, cache=True)
def _code_panels_nb(codes, vtab, scales, R, C, ftab, r, by_rows, out):
    """Decode codes straight into matmul panels (see :data:`code_panels`)."""
    if by_rows:
        X, K = codes.shape
    else:
        K, X = codes.shape
    G = C if by_rows else R  # k per scale group
    scaled = scales.size > 0
    for p in prange(out.shape[0]):
        row = out[p]
        full = (p + 1) * r <= X  # every column of the panel exists: no bounds test in the inner loop
        if not scaled:
            for k in range(K):
                for i in range(r):
                    x = p * r + i
                    v = np.float32(0.0)
                    if full or x < X:
                        v = vtab[codes[x, k] if by_rows else codes[k, x]]
                    row[k * r + i] = v
        else:
            # each column's factor for the current group of k, looked up once per group (a lookup and a division
            # per element cost more than the rest of the decode)
            f = np.ones(r, np.float32)
            for k0 in range(0, K, G):
                for i in range(r):
                    x = min(p * r + i, X - 1)
                    f[i] = ftab[scales[x // R, k0 // C]] if by_rows else ftab[scales[k0 // R, x // C]]
                for k in range(k0, min(k0 + G, K)):
                    for i in range(r):
                        x = p * r + i
                        v = np.float32(0.0)
                        if full or x < X:
                            v = vtab[codes[x, k] if by_rows else codes[k, x]]
                            v = f[i] if f[i] != f[i] else v * f[i]  # a NaN scale: its own NaN, as dequantize gives
                        row[k * r + i] = v


def decode_values(codes, vtab, scales, R, C, ftab) -> np.ndarray:
    """float32 ``vtab[code]`` (times ``ftab[scale]`` per R x C group, a NaN scale giving its own NaN), codes' shape:
    the values :data:`code_panels` writes, before they are packed."""
    vals = vtab[codes]
    if scales.size:
        f = ftab[np.repeat(np.repeat(scales, R, axis=0), C, axis=1)]
        with np.errstate(invalid="ignore", over="ignore"):
            vals = np.where(np.isnan(f), f, vals * f).astype(np.float32)
    return vals


def _code_panels_np(codes, vtab, scales, R, C, ftab, r, by_rows, out):
    vals = decode_values(codes, vtab, scales, R, C, ftab)
    out[...] = _pack(vals.T if by_rows else vals, r)


code_panels = dispatch(_code_panels_nb, _code_panels_np)
code_panels.__doc__ = """Fill ``out [ceil(X/r), K*r]`` (float32) with the panels :func:`_pack` makes of the decoded
operand ``vtab[code]`` (times ``ftab[scale]`` for MX, a NaN scale giving its own NaN), without materialising the
values first. ``by_rows``: ``codes`` is ``[X, K]`` (a's rows: the stationary operand, K along each row), otherwise
``[K, X]`` (the moving operand). MX: ``scales[row // R, col // C]`` per group; an empty ``scales`` means unscaled
codes."""


# --------------------------------------------------------------------------------------------------------------------
# one instruction under any model
# --------------------------------------------------------------------------------------------------------------------

@njit(cache=True)
def _round_f32_sticky(s, err):
    """float32 nearest-even rounding of the exact value s + err, given s = fl64(exact) and the exact residual err."""
    r = np.float32(s)
    if np.float64(r) == s or err == 0.0 or not np.isfinite(s):
        return r
    other = np.nextafter(r, np.float32(np.inf) if s > np.float64(r) else np.float32(-np.inf))
    if s != (np.float64(r) + np.float64(other)) * 0.5:
        return r
    # s sits exactly on the midpoint that rounding had to break as a tie: the residual decides the direction
    if (err > 0.0) == (np.float64(other) > np.float64(r)):
        return other
    return r


@njit(cache=True)
def _fma_f32(a, b, c):
    """fp32 fused multiply-add ``a*b + c`` rounded once (a*b is exact in float64; TwoSum recovers the rest)."""
    p = np.float64(a) * np.float64(b)
    cc = np.float64(c)
    s = p + cc
    bb = s - p
    err = (p - (s - bb)) + (cc - bb)
    return _round_f32_sticky(s, err)


@njit(cache=True)
def _ftz(x, ftz):
    if ftz and x != 0.0 and abs(x) < np.float32(1.1754943508222875e-38):
        return np.float32(0.0) * np.sign(x)
    return x


@njit(cache=True)
def _element(a, b, keep, m, n, model, block, fma, ftz, buf):
    K = a.shape[0]
    if model == 2:  # pairwise: adjacent pairs combined level by level, an odd last term carried up
        for k in range(K):
            buf[k] = _ftz(a[k, m] * b[k, n], ftz) if keep[k, m] else np.float32(0.0)
        L = K
        while L > 1:
            h = L // 2
            for i in range(h):
                buf[i] = _ftz(buf[2 * i] + buf[2 * i + 1], ftz)
            if L % 2:
                buf[h] = buf[L - 1]
                L = h + 1
            else:
                L = h
        return buf[0] if K > 0 else np.float32(0.0)
    step = block if model == 1 else K
    total = np.float32(0.0)
    for k0 in range(0, K, max(step, 1)):
        acc = np.float32(0.0)
        for k in range(k0, min(K, k0 + step)):
            if not keep[k, m]:
                acc = _ftz(acc + np.float32(0.0), ftz)
            elif fma:
                acc = _ftz(_fma_f32(a[k, m], b[k, n], acc), ftz)
            else:
                acc = _ftz(acc + _ftz(a[k, m] * b[k, n], ftz), ftz)
        total = acc if k0 == 0 else _ftz(total + acc, ftz)
    return total


@njit(parallel=True, cache=True)
def _generic_numba_kernel(a, b, keep, model, block, fma, ftz, out):
    M, N = out.shape
    K = a.shape[0]
    for m in prange(M):
        buf = np.empty(max(K, 1), np.float32)
        for n in range(N):
            out[m, n] = _element(a, b, keep, m, n, model, block, fma, ftz, buf)


def _generic_numba(a, b, keep, model: int, block: int, fma: bool, ftz: bool) -> np.ndarray:
    out = np.empty((a.shape[1], b.shape[1]), np.float32)
    _generic_numba_kernel(a, b, keep, int(model), int(block), bool(fma), bool(ftz), out)
    return out


def _ftz_np(x: np.ndarray, ftz: bool) -> np.ndarray:
    if not ftz:
        return x
    tiny = (x != 0) & (np.abs(x) < np.float32(1.1754943508222875e-38))
    return np.where(tiny, np.float32(0.0) * np.sign(x), x).astype(np.float32)


def _fma_np(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    p = a.astype(np.float64) * b.astype(np.float64)
    cc = c.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        s = p + cc
        bb = s - p
        err = (p - (s - bb)) + (cc - bb)
        r = s.astype(np.float32)
        rd = r.astype(np.float64)
        toward = np.where(s > rd, np.float32(np.inf), np.float32(-np.inf)).astype(np.float32)
        other = np.nextafter(r, toward)
        tie = (rd != s) & (err != 0) & np.isfinite(s) & (s == (rd + other.astype(np.float64)) * 0.5)
        up = (err > 0) == (other.astype(np.float64) > rd)
    return np.where(tie & up, other, r).astype(np.float32)


def _generic_numpy(a, b, keep, model: int, block: int, fma: bool, ftz: bool) -> np.ndarray:
    K, M = a.shape
    N = b.shape[1]
    zero = np.zeros((M, N), np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        prods = [None] * K
        if not fma:
            for k in range(K):
                p = _ftz_np(np.multiply(a[k][:, None], b[k][None, :]), ftz)
                prods[k] = np.where(keep[k][:, None], p, zero)
        if model == MODEL_PAIRWISE:
            level = prods
            while len(level) > 1:
                nxt = [_ftz_np(level[2 * i] + level[2 * i + 1], ftz) for i in range(len(level) // 2)]
                if len(level) % 2:
                    nxt.append(level[-1])
                level = nxt
            return level[0].astype(np.float32) if K else zero
        step = block if model == MODEL_BLOCKED else K
        total = zero.copy()
        for k0 in range(0, K, max(step, 1)):
            acc = np.zeros((M, N), np.float32)
            for k in range(k0, min(K, k0 + step)):
                if fma:
                    f = _fma_np(np.broadcast_to(a[k][:, None], (M, N)), np.broadcast_to(b[k][None, :], (M, N)), acc)
                    acc = _ftz_np(np.where(keep[k][:, None], f, _ftz_np(acc + zero, ftz)), ftz)
                else:
                    acc = _ftz_np(acc + prods[k], ftz)
            total = acc if k0 == 0 else _ftz_np(total + acc, ftz)
        return total.astype(np.float32)


generic = dispatch(_generic_numba, _generic_numpy)
generic.__doc__ = """PE result of one instruction ``a.T @ b`` under model MODEL_SEQUENTIAL / MODEL_BLOCKED (runs of
``block`` k summed from +0, then added in order) / MODEL_PAIRWISE; ``fma`` fuses each sequential step; ``ftz``
flushes subnormal products and partial sums to signed zero; ``keep [K, M]`` bool, False = exact +0 product."""

if not HAVE_NUMBA:  # pragma: no cover
    prange = range
