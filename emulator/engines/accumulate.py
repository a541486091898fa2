"""The Tensor Engine's accumulation models and its PSUM write, as plain functions other engines can reuse.

:func:`matmul_accumulate` computes the PE-array result of one instruction, ``st.T @ mv`` in float32, from operands
already decoded to float32 values, under a declared model (setting ``accumulation``):

``sequential`` (default)
    exact products, then fp32 round-to-nearest-even adds in partition (k) order starting from +0.
``exact``
    the exact sum of the exact products, rounded once to fp32 (the widest adder tree a PE could have).
``pairwise``
    adjacent products added level by level (k0+k1, k2+k3, ...; an odd last term is carried up), each add in fp32.
``blocked:B``
    sequential inside runs of B consecutive k (each from +0), the run sums then added in order.

fp32/tf32 inputs (products up to 48 bits, not exact in fp32) follow setting ``fp32_matmul``: ``fp32`` rounds each
product to fp32 before the add, ``fma`` fuses multiply and add (sequential model only), ``tf32`` rounds both
operands to tf32 (RNE) first, ``bf16x3`` splits each operand into bf16 hi + lo and sums the three cross products
``(lo·hi + hi·lo) + hi·hi``, each accumulated under the model.

:func:`psum_write` then stores that result in PSUM: fp32 PSUM overwrites or adds in fp32; bf16 PSUM (v4) stores
``bf16(fp32(psum) + result)`` with the rounding ``cast.rounding_for("psum")`` gives (RNE, or SR when enabled).

Example
-------
>>> import numpy as np
>>> from emulator.engines import accumulate
>>> st = np.array([[1.0], [2.0**-24]], np.float32); mv = np.array([[1.0], [1.0]], np.float32)
>>> accumulate.matmul_accumulate(st, mv, "sequential"), accumulate.matmul_accumulate(st, mv, "exact")
(array([[1.]], dtype=float32), array([[1.]], dtype=float32))
"""

from __future__ import annotations

import math

import numpy as np

from ..config import get_settings
from ..errors import ArgumentError, DtypeError, ShapeError
from . import _matmul_kernels as _k

__all__ = ["parse_model", "matmul_accumulate", "tiled_accumulate", "psum_write", "canonical_nan", "flush_subnormals",
           "exact_sum_f32", "FP32_MODES"]

FP32_MODES = ("fp32", "fma", "tf32", "bf16x3")
_CANONICAL_NAN = np.uint32(0x7FC00000)


def parse_model(model: str | None = None) -> tuple[str, int]:
    """``(name, block)`` of an accumulation model string (default: the ``accumulation`` setting).

    >>> parse_model("blocked:32")
    ('blocked', 32)
    """
    model = get_settings().accumulation if model is None else model
    if model in ("sequential", "exact", "pairwise"):
        return model, 0
    if isinstance(model, str) and model.startswith("blocked:") and model[8:].isdigit() and int(model[8:]) > 0:
        return "blocked", int(model[8:])
    raise ArgumentError(f"accumulation: {model!r} is not one of 'sequential', 'exact', 'pairwise', 'blocked:B' (B > 0)")


def flush_subnormals(x: np.ndarray) -> np.ndarray:
    """float32 ``x`` with every subnormal replaced by a zero of its sign (the ``denormals="ftz"`` model)."""
    x = np.asarray(x, np.float32)
    tiny = (x != 0) & (np.abs(x) < np.float32(np.finfo(np.float32).tiny))
    if not tiny.any():
        return x
    return np.where(tiny, np.copysign(np.float32(0.0), x), x).astype(np.float32)


def canonical_nan(x: np.ndarray) -> np.ndarray:
    """float32 ``x`` with every NaN replaced by the positive quiet NaN 0x7FC00000 (setting ``pe_nan="canonical"``)."""
    x = np.asarray(x, np.float32)
    nan = np.isnan(x)
    if nan.any():
        x = x.copy()
        x.view(np.uint32)[nan] = _CANONICAL_NAN
    return x


def exact_sum_f32(products: np.ndarray) -> np.float32:
    """The exact sum of float64 values (each exact) rounded once to float32, nearest-even.

    ``math.fsum`` gives the sum correctly rounded to float64 and, summed again with its own negation, the sign of
    the remainder, which breaks the one case where a second rounding to float32 could go wrong (a float64 result
    lying exactly halfway between two float32 values). Infinities and NaN follow IEEE addition.
    """
    p = np.asarray(products, np.float64).ravel()
    if not np.isfinite(p).all():
        with np.errstate(invalid="ignore"):
            return np.float32(np.sum(p))
    s = math.fsum(p)
    err = math.fsum(np.append(p, -s)) if s == s else 0.0
    r = np.float32(s)
    rd = float(r)
    if rd == s or err == 0.0 or not math.isfinite(s):
        return r
    other = np.nextafter(r, np.float32(np.inf) if s > rd else np.float32(-np.inf))
    if s != (rd + float(other)) * 0.5:
        return r
    return other if (err > 0.0) == (float(other) > rd) else r


def _exact(st: np.ndarray, mv: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    K, M = st.shape
    N = mv.shape[1]
    out = np.empty((M, N), np.float32)
    a = st.astype(np.float64)
    b = mv.astype(np.float64)
    for m in range(M):
        with np.errstate(invalid="ignore", over="ignore"):
            prods = a[:, m][:, None] * b  # exact: 24 x 24 bits fit in float64's 53
        if keep is not None:
            prods[~keep[:, m]] = 0.0
        for n in range(N):
            out[m, n] = exact_sum_f32(prods[:, n]) if K else np.float32(0.0)
    return out


def _one_pass(st, mv, name, block, fma, ftz, keep) -> np.ndarray:
    if name == "exact":
        out = _exact(st, mv, keep)
        return flush_subnormals(out) if ftz else out
    if name == "sequential" and not fma and not ftz and keep is None:
        return _k.seq_tiled(st, mv, max(st.shape[0], 1))
    code = {"sequential": _k.MODEL_SEQUENTIAL, "blocked": _k.MODEL_BLOCKED, "pairwise": _k.MODEL_PAIRWISE}[name]
    keep_arr = np.ones(st.shape, np.bool_) if keep is None else np.ascontiguousarray(keep, np.bool_)
    return _k.generic(st, mv, keep_arr, code, block, fma, ftz)


def _split_bf16(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from ..numerics.cast import round_to

    hi = round_to(x, "bfloat16", rounding="rne", saturate=False)
    with np.errstate(invalid="ignore", over="ignore"):
        lo = round_to(np.where(np.isfinite(hi), x - hi, np.float32(0.0)).astype(np.float32), "bfloat16",
                      rounding="rne", saturate=False)
    return hi, lo


def _operand(x, name: str, allow_f: bool = False) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype != np.float32:
        raise DtypeError(f"matmul_accumulate: {name} must hold float32 values (decode narrow codes first), "
                         f"got {arr.dtype}")
    if arr.ndim != 2:
        raise ShapeError(f"matmul_accumulate: {name} must be 2-D [K, free], got shape {arr.shape}")
    if allow_f and arr.flags.f_contiguous:
        return arr
    return np.ascontiguousarray(arr)


def matmul_accumulate(st, mv, model: str | None = None, *, fp32_mode: str = "fp32", keep=None,
                      denormals: str | None = None, pe_nan: str | None = None) -> np.ndarray:
    """PE-array result ``st.T @ mv`` (float32 ``[M, N]``) of one instruction under an accumulation model.

    Parameters
    ----------
    st, mv : float32 ``[K, M]`` and ``[K, N]``: the decoded stationary and moving values, k in the order the PE
        array sums them.
    model : ``sequential`` | ``exact`` | ``pairwise`` | ``blocked:B`` (default: setting ``accumulation``).
    fp32_mode : how products of fp32 operands are formed (``fp32`` | ``fma`` | ``tf32`` | ``bf16x3``); pass the
        ``fp32_matmul`` setting when an operand is fp32, ``"fp32"`` otherwise (narrow products are exact anyway).
    keep : optional bool ``[K, M]``; a False entry contributes an exact +0 product whatever ``mv`` holds (used by
        structured sparsity: pruned positions never meet the moving data).
    denormals : ``keep`` | ``ftz`` (default: setting ``denormals``); ftz flushes subnormal inputs, products,
        partial sums and the result to signed zero.
    pe_nan : ``canonical`` | ``ieee`` (default: setting ``pe_nan``).

    >>> import numpy as np
    >>> st = np.array([[2.0**24], [1.0], [1.0]], np.float32); mv = np.ones((3, 1), np.float32)
    >>> float(matmul_accumulate(st, mv, "sequential")[0, 0]), float(matmul_accumulate(st, mv, "exact")[0, 0])
    (16777216.0, 16777218.0)
    """
    s = get_settings()
    name, block = parse_model(model)
    st = _operand(st, "st")
    mv = _operand(mv, "mv")
    if st.shape[0] != mv.shape[0]:
        raise ShapeError(f"matmul_accumulate: st has K = {st.shape[0]} rows and mv has {mv.shape[0]}; they must match")
    if keep is not None and np.shape(keep) != st.shape:
        raise ShapeError(f"matmul_accumulate: keep has shape {np.shape(keep)}; it must match st {st.shape}")
    if fp32_mode not in FP32_MODES:
        raise ArgumentError(f"matmul_accumulate: fp32_mode {fp32_mode!r} is not one of {', '.join(FP32_MODES)}")
    if fp32_mode == "fma" and name != "sequential":
        raise ArgumentError(f"matmul_accumulate: fp32_mode 'fma' fuses the sequential adds; accumulation {model!r} "
                         "has no such step (use accumulation='sequential')")
    ftz = (s.denormals if denormals is None else denormals) == "ftz"
    if ftz:
        st, mv = flush_subnormals(st), flush_subnormals(mv)
    if fp32_mode == "tf32":
        from ..numerics.cast import round_to

        st = round_to(st, "tfloat32", rounding="rne", saturate=False)
        mv = round_to(mv, "tfloat32", rounding="rne", saturate=False)
    if fp32_mode == "bf16x3":
        (sh, sl), (mh, ml) = _split_bf16(st), _split_bf16(mv)
        with np.errstate(invalid="ignore", over="ignore"):
            small = _one_pass(sl, mh, name, block, False, ftz, keep) + _one_pass(sh, ml, name, block, False, ftz, keep)
            out = (small + _one_pass(sh, mh, name, block, False, ftz, keep)).astype(np.float32)
        if ftz:
            out = flush_subnormals(out)
    else:
        out = _one_pass(st, mv, name, block, fp32_mode == "fma", ftz, keep)
    if (s.pe_nan if pe_nan is None else pe_nan) == "canonical":
        out = canonical_nan(out)
    return out


def tiled_accumulate(st, mv, ktile: int, model: str | None = None, *, fp32_mode: str = "fp32") -> np.ndarray:
    """Several instructions into one fp32 PSUM tile: K split into runs of ``ktile``, each run's PE result from
    :func:`matmul_accumulate`, the first written and the rest added in fp32 (what ``emu.matmul`` does per output
    tile). The default sequential model without ftz runs as one fused kernel."""
    s = get_settings()
    name, _ = parse_model(model)
    st = _operand(st, "st", allow_f=True)  # the fused kernel packs a transposed view without copying it first
    mv = _operand(mv, "mv")
    K = st.shape[0]
    if name == "sequential" and fp32_mode in ("fp32", "tf32") and s.denormals == "keep":
        if fp32_mode == "tf32":
            from ..numerics.cast import round_to

            st = round_to(st, "tfloat32", rounding="rne", saturate=False)
            mv = round_to(mv, "tfloat32", rounding="rne", saturate=False)
        out = _k.seq_tiled(st, mv, int(ktile))
        return canonical_nan(out) if s.pe_nan == "canonical" else out
    out = None
    for k0 in range(0, max(K, 1), ktile):
        part = matmul_accumulate(st[k0:k0 + ktile], mv[k0:k0 + ktile], model, fp32_mode=fp32_mode)
        out = part if out is None else psum_write(part, out, "float32")
    return out


def psum_write(result, psum=None, psum_dtype="float32", *, accumulate: bool | None = None,
               rounding: str | None = None, site: int = 0, denormals: str | None = None) -> np.ndarray:
    """Store a PE result (float32 ``[M, N]``) in PSUM and return the new PSUM contents.

    ``psum=None`` or ``accumulate=False`` overwrites; otherwise the result is added to ``psum`` in fp32. A bf16
    PSUM (``psum_dtype="bfloat16"`` or a bfloat16 ``psum``) stores ``bf16(fp32(psum) + result)``, rounded as
    ``cast.rounding_for("psum")`` says (or ``rounding``); SR streams are keyed by ``site``. The returned array is
    float32 or ml_dtypes bfloat16; ``psum`` itself is not modified.

    >>> import numpy as np
    >>> r = np.array([[1.0 + 2.0**-8]], np.float32)
    >>> psum_write(r, psum_dtype="bfloat16").astype(np.float32)   # RNE: the tie goes to even
    array([[1.]], dtype=float32)
    """
    import ml_dtypes

    from ..numerics.cast import cast, rounding_for

    result = np.asarray(result, np.float32)
    if psum is not None:
        psum = np.asarray(psum)
        if psum.shape != result.shape:
            raise ShapeError(f"psum_write: psum has shape {psum.shape}; the result is {result.shape}")
        psum_dtype = "bfloat16" if psum.dtype == ml_dtypes.bfloat16 else "float32" if psum.dtype == np.float32 \
            else str(psum.dtype)
    if psum_dtype not in ("float32", "bfloat16"):
        raise DtypeError(f"psum_write: PSUM holds float32 or bfloat16 on trn3, got {psum_dtype!r}")
    ftz = (get_settings().denormals if denormals is None else denormals) == "ftz"
    add = psum is not None and accumulate is not False
    if add:
        with np.errstate(invalid="ignore", over="ignore"):  # fp32 addition (a bf16 PSUM widened exactly first)
            value = np.add(psum if psum.dtype == np.float32 else psum.astype(np.float32), result, dtype=np.float32)
        if get_settings().pe_nan == "canonical":  # a NaN the accumulation makes (inf + -inf) is canonical too
            value = canonical_nan(value)
    else:
        value = result
    if ftz:
        value = flush_subnormals(value)
    if psum_dtype == "float32":
        return value if value is not result else result.copy()  # always a new array
    rounding = rounding_for("psum") if rounding is None else rounding
    codes = cast(value, "bfloat16", rounding=rounding, saturate=False, site=site)
    out = codes.view(ml_dtypes.bfloat16)
    if ftz:
        out = flush_subnormals(out.astype(np.float32)).astype(ml_dtypes.bfloat16)
    return out
