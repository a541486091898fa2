"""Float64 references and declared tolerances for the NKI kernels in this package.

Each ``*_reference`` function recomputes a kernel's result from its (exactly representable) inputs in float64 NumPy,
independently of the emulator, and returns ``(ref, bound)``: the float64 result and, per element, a first-order bound
on the error the kernel's fp32 datapath may add before the final rounding. :func:`compare` then accepts an output when

    |got - ref| <= 1 ulp of the output format at ref  +  bound

The 1 ulp is the final rounding to the output format (half an ulp for RNE, doubled because the fp32 value being rounded
may sit across a binade edge from ``ref``; it is also the bound of one RTZ or stochastic rounding). Roundings to a
narrow format *inside* a kernel (attention's bf16 probabilities, the all-reduce steps) count with
:func:`unit_roundoff` of the rounding mode in force. The ``bound`` terms use the unit roundoff of fp32,
``U = 2**-24``, and ``gamma(n) = n U / (1 - n U)`` (Higham's bound for n roundings in a sum or product chain), plus a
declared budget of ``FUNC = 2**-21`` (4 fp32 ulps) relative for each transcendental the Scalar/Vector Engine
evaluates (exp, rsqrt, reciprocal): the ISA documents these as fp32 evaluations without an accuracy figure, so the
budget is ours (it covers both of the emulator's ``activation_accuracy`` models: correctly rounded, and libm-grade
float32).
:data:`TOLERANCES` states the reasoning per kernel; the demo prints it beside the measured errors.

>>> import numpy as np
>>> x = np.array([[3.0, 4.0]], np.float32)
>>> ref, bound = rmsnorm_reference(x, np.ones(2, np.float32), eps=0.0)
>>> ref.round(6).tolist()
[[0.848528, 1.131371]]
>>> compare(ref.astype(np.float32), ref, bound, np.float32).passed
True
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

__all__ = ["U", "FUNC", "gamma", "ulp", "unit_roundoff", "Comparison", "compare", "TOLERANCES", "rmsnorm_reference",
           "layernorm_reference", "softmax_reference", "attention_reference", "mx_quantize_reference",
           "mx_matmul_reference", "fp4_decode", "mx_row_scales", "cumsum_reference", "all_reduce_reference"]

U = 2.0 ** -24  # fp32 unit roundoff (RNE)
FUNC = 2.0 ** -21  # declared accuracy budget of one fp32 transcendental (exp, rsqrt, reciprocal): 4 ulps

TOLERANCES = {
    "rmsnorm": "1 ulp(out) + |y| (gamma(H+2)/2 + 4U + FUNC): fp32 sum of H squares, mean and +eps roundings, "
               "rsqrt budget, two multiplies",
    "layernorm": "1 ulp(out) + |g| r (|dmu| + |x-mu| (dr + 3U)) + U(|y|+|b|): bn_stats mean/var in fp32 "
                 "(dmu <= gamma(H) mean|x|, dvar <= gamma(H+4) mean(x^2) + 3 gamma(H) |mu| mean|x|), "
                 "dr = dvar/2(var+eps) + U + FUNC",
    "softmax": "1 ulp(out) + y (d_i + max_j d_j + gamma(F) + 2 FUNC + U): d = U|x-max| + FUNC per exp, fp32 row "
               "sum of F terms, reciprocal budget, one multiply",
    "attention": "1 ulp(out) + sum_j p_ij|v_j| (2 D_i + 2 u_p + 2 gamma(S_kv) + 3 FUNC + 2U): D_i = max_j score "
                 "error (gamma(d+1) scale sum|q||k| + U|s-max|), P rounded to the input format (u_p), fp32 PV "
                 "accumulation",
    "mxfp8_matmul": "1 ulp(out) + (gamma(K) + T u_psum) sum_k |a~||b~| (T K tiles rounded into a bf16 PSUM "
                    "tile, 0 for fp32 PSUM) against the float64 product of the MX-dequantised "
                    "operands (reference quantiser: scale rule of the mx_convention setting, hw 2^(floor(log2 amax) - "
                    "(Emax-1)) or ocp 2^(floor(log2 amax) - Emax) with clip; RNE elements, so for the default "
                    "rounding only)",
    "mxfp4_matmul": "1 ulp(out) + gamma(K) sum_k |a~||b~| against the float64 product of the decoded FP4 codes "
                    "times their E8M0 scales",
    "cumsum": "1 ulp(out) + gamma(i) sum_{j<=i} |x_j|: sequential fp32 scan, carry kept in fp32 across tiles",
    "all_reduce": "1 ulp(out) + (R-1) u_buf sum_r |x_r|: R-1 reduction steps, each rounded to the buffer format",
}


def gamma(n) -> np.ndarray:
    """Higham's gamma_n = n U / (1 - n U) for fp32 (n may be an array)."""
    n = np.asarray(n, np.float64)
    return n * U / (1.0 - n * U)


def unit_roundoff(dtype, rounding: str = "rne") -> float:
    """Largest relative error of one rounding to ``dtype``: half an ulp (2^-(p)) under RNE, a whole ulp under RTZ or
    stochastic rounding (``p`` = mantissa bits + 1)."""
    nmant = ml_dtypes.finfo(dtype).nmant
    return 2.0 ** -(nmant + 1) if rounding == "rne" else 2.0 ** -nmant


def ulp(values, dtype) -> np.ndarray:
    """Spacing of ``dtype`` (float32, bfloat16, float16) at each of ``values`` (subnormal spacing below min normal)."""
    info = ml_dtypes.finfo(dtype)
    a = np.abs(np.asarray(values, np.float64))
    with np.errstate(divide="ignore"):
        e = np.floor(np.log2(np.where(a > 0, a, 1.0)))
    e = np.maximum(np.where(a > 0, e, info.minexp), info.minexp)
    return np.ldexp(1.0, (e - info.nmant).astype(np.int64))


@dataclass
class Comparison:
    """Errors of one kernel output against its float64 reference."""

    max_abs: float
    max_ulp: float  # in ulps of the output format at the reference value
    worst: float  # max of |got - ref| / allowed: <= 1 passes
    passed: bool

    def row(self) -> str:
        return f"{self.max_abs:10.3e} {self.max_ulp:8.2f} {self.worst:6.3f} {'pass' if self.passed else 'FAIL'}"


def compare(got, ref, bound, out_dtype) -> Comparison:
    """Check ``got`` against ``ref`` within 1 ulp of ``out_dtype`` plus ``bound`` (all elementwise)."""
    got64 = np.asarray(got).astype(np.float64)
    if got64.shape != np.shape(ref):
        raise ValueError(f"compare: got shape {got64.shape}, reference shape {np.shape(ref)}")
    err = np.abs(got64 - ref)
    unit = ulp(ref, out_dtype)
    allowed = unit + np.asarray(bound, np.float64)
    finite = np.isfinite(got64).all()
    if err.size == 0:
        return Comparison(0.0, 0.0, 0.0, True)
    worst = float(np.max(err / allowed)) if finite else float("inf")
    return Comparison(float(err.max()), float(np.max(err / unit)), worst, bool(finite and worst <= 1.0))


def _f64(a) -> np.ndarray:
    return np.asarray(a).astype(np.float64)


def rmsnorm_reference(x, gamma_, eps: float):
    """``x * g / sqrt(mean(x^2) + eps)`` per row of ``x [N, H]``; ``g`` is ``[H]`` or ``[1, H]``."""
    x, g = _f64(x), _f64(gamma_).reshape(-1)
    h = x.shape[1]
    y = x * g / np.sqrt(np.mean(x * x, axis=1, keepdims=True) + eps)
    return y, np.abs(y) * (gamma(h + 2) / 2 + 4 * U + FUNC)


def layernorm_reference(x, gamma_, beta, eps: float):
    """``(x - mean) / sqrt(var + eps) * g + b`` per row of ``x [N, H]`` (population variance)."""
    x, g, b = _f64(x), _f64(gamma_).reshape(-1), _f64(beta).reshape(-1)
    h = x.shape[1]
    mu = x.mean(axis=1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
    r = 1.0 / np.sqrt(var + eps)
    y = (x - mu) * r * g + b
    dmu = gamma(h) * np.abs(x).mean(axis=1, keepdims=True)
    dvar = gamma(h + 4) * (x * x).mean(axis=1, keepdims=True) + 3 * gamma(h) * np.abs(mu) * np.abs(x).mean(
        axis=1, keepdims=True)
    dr = dvar / (2 * (var + eps)) + U + FUNC
    bound = np.abs(g) * r * (dmu + np.abs(x - mu) * (dr + 3 * U)) + U * (np.abs(y) + np.abs(b))
    return y, bound


def softmax_reference(x):
    """Row-wise softmax of ``x [N, F]`` (max-subtracted)."""
    x = _f64(x)
    d = x - x.max(axis=1, keepdims=True)
    e = np.exp(d)
    y = e / e.sum(axis=1, keepdims=True)
    de = U * np.abs(d) + FUNC
    rel = de + de.max(axis=1, keepdims=True) + gamma(x.shape[1]) + 2 * FUNC + U
    return y, y * rel


def attention_reference(q, k, v, scale: float, p_roundoff: float, causal: bool = False):
    """``softmax(scale q k^T) v`` for ``q [S, d]``, ``k, v [S_kv, d]``; ``p_roundoff``: unit roundoff of the
    format the kernel holds the probabilities in for the PV matmul (2**-8 for bf16 RNE, 2**-24 for fp32);
    ``causal``: query i attends keys 0..i only."""
    q, k, v = _f64(q), _f64(k), _f64(v)
    s = scale * (q @ k.T)
    keep = np.tril(np.ones(s.shape, bool)) if causal else np.ones(s.shape, bool)
    s = np.where(keep, s, -np.inf)
    m = s.max(axis=1, keepdims=True)
    e = np.exp(s - m)
    p = e / e.sum(axis=1, keepdims=True)
    out = p @ v
    ds = scale * gamma(q.shape[1] + 1) * (np.abs(q) @ np.abs(k).T) + U * np.abs(s) + U * np.abs(s - m)
    ds = np.where(keep, ds, 0.0)  # a masked score's error does not matter: its probability is exactly 0
    skv = k.shape[0]
    rel = 2 * ds.max(axis=1, keepdims=True) + 2 * p_roundoff + 2 * gamma(skv) + 3 * FUNC + 2 * U
    return out, 1.01 * rel * (p @ np.abs(v))  # 1.01: room for the second-order terms of a first-order bound


def mx_quantize_reference(x, emax: int, element_dtype, convention: str | None = None):
    """Dequantised values of the MX quantisation the kernels do on chip, for ``x [K, F]`` (K a multiple of 128).

    K is cut into tiles of 512 rows (the last one ``4 Kp`` rows, ``Kp = rows left / 4``); a tile sits in SBUF as
    ``[Kp, F, 4]`` with logical row ``q Kp + p`` at partition p, sub-element q, and a scale group is 8 partitions x 4
    sub-elements of one column. ``convention`` (default: the emulator setting ``mx_convention``): ``"hw"`` takes
    ``X = 2^(floor(log2 amax) - (emax - 1))`` (the quantize_mx ISA text), ``"ocp"`` takes
    ``X = 2^(floor(log2 amax) - emax)`` and clips ``x / X`` to the format's largest finite value (OCP MX, and what
    nki-library's goldens compute); elements ``RNE(x / X)`` in ``element_dtype``; an all-zero group stays zero.

    >>> import ml_dtypes
    >>> x = np.full((128, 1), 3.75)
    >>> [float(mx_quantize_reference(x, 8, ml_dtypes.float8_e4m3fn, c)[0, 0]) for c in ("hw", "ocp")]
    [3.75, 3.5]
    """
    if convention is None:
        from emulator.config import get_settings  # only the setting's value: the arithmetic below is our own

        convention = get_settings().mx_convention
    if convention not in ("hw", "ocp"):
        raise ValueError(f"mx_quantize_reference: convention must be 'hw' or 'ocp', got {convention!r}")
    offset = emax - 1 if convention == "hw" else emax
    top = float(ml_dtypes.finfo(element_dtype).max)
    x = _f64(x)
    k, f = x.shape
    out = np.zeros_like(x)
    for t in range(0, k, 512):
        kp = min(128, (k - t) // 4)
        tile = x[t:t + 4 * kp].reshape(4, kp // 8, 8, f)  # [q, group, p-in-group, f]
        amax = np.abs(tile).max(axis=(0, 2), keepdims=True)
        with np.errstate(divide="ignore"):
            e = np.floor(np.log2(np.where(amax > 0, amax, 1.0)))
        scale = np.where(amax > 0, np.ldexp(1.0, (e - offset).astype(np.int64)), 1.0)
        quotient = tile / scale  # exact: a power-of-two scale
        if convention == "ocp":
            quotient = np.clip(quotient, -top, top)  # |x / X| reaches [2^emax, 2^(emax+1)): saturate, as OCP does
        elems = quotient.astype(element_dtype).astype(np.float64)
        out[t:t + 4 * kp] = (elems * scale).reshape(4 * kp, f)
    return out


def mx_matmul_reference(a_t, b, psum_roundings: int = 0, psum_unit: float = 0.0):
    """``a_t.T @ b`` in float64 for dequantised ``a_t [K, M]``, ``b [K, N]``, with the fp32 accumulation bound, plus
    ``psum_roundings`` roundings of a partial sum to a narrow PSUM format of unit roundoff ``psum_unit`` (a bf16
    PSUM tile rounds once per accumulating instruction)."""
    a_t, b = _f64(a_t), _f64(b)
    mag = np.abs(a_t).T @ np.abs(b)
    return a_t.T @ b, (gamma(a_t.shape[0]) + psum_roundings * psum_unit) * mag


_FP4_VALUES = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0])


def fp4_decode(codes) -> np.ndarray:
    """float4_e2m1fn codes (low 4 bits of each entry) -> float64: sign bit 3, magnitudes 0, .5, 1, 1.5, 2, 3, 4, 6."""
    c = np.asarray(codes).astype(np.int64) & 0xF
    return np.where(c & 8, -1.0, 1.0) * _FP4_VALUES[c & 7]


def mx_row_scales(scales, K: int) -> np.ndarray:
    """Contiguous per-tile MX scales ``[K/32, F]`` (E8M0 codes) -> the factor ``2^(s - 127)`` of each logical row,
    ``[K, F]``: row k lies in K tile ``k // 512`` of ``Kp = min(128, rows left / 4)`` partitions, at partition
    ``(k % 512) % Kp``, whose group of 8 partitions has scale row ``16 * tile + partition // 8``."""
    scales = np.asarray(scales).astype(np.int64)
    rows = np.empty(K, np.int64)
    for k in range(K):
        tile, local = divmod(k, 512)
        kp = min(128, (K - 512 * tile) // 4)
        rows[k] = 16 * tile + (local % kp) // 8
    return np.ldexp(1.0, scales[rows] - 127)


def cumsum_reference(x):
    """Cumulative sum along the last axis of ``x [N, F]``, with the sequential fp32 bound gamma(i) sum |x_j|."""
    x = _f64(x)
    idx = np.arange(1, x.shape[1] + 1)
    return np.cumsum(x, axis=1), gamma(idx) * np.cumsum(np.abs(x), axis=1)


def all_reduce_reference(per_rank, buffer_dtype, rounding: str = "rne"):
    """Sum over ranks of ``per_rank`` arrays, with (R-1) roundings to ``buffer_dtype`` (under ``rounding``) bounded."""
    xs = np.stack([_f64(a) for a in per_rank])
    unit = unit_roundoff(buffer_dtype, rounding)
    return xs.sum(axis=0), (len(per_rank) - 1) * unit * np.abs(xs).sum(axis=0)
