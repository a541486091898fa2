"""Bitwise comparators that explain what differs: how many elements, where, and what kind of difference.

Arrays are compared as *codes* of one format, so ``-0`` differs from ``+0`` and NaN payloads count. Each side may be
raw codes (unsigned integers, with ``fmt=``), a float32/float16/float64 array, or an ml_dtypes array (bfloat16,
float8_*, float4_e2m1fn, float8_e8m0fnu); float values converted to ``fmt`` must be exactly representable.

>>> import numpy as np, ml_dtypes
>>> from emulator.testing import assert_bitwise_equal
>>> a = np.array([1.0, -0.0, 2.0], dtype=ml_dtypes.bfloat16)
>>> assert_bitwise_equal(a, np.array([0x3F80, 0x8000, 0x4000], np.uint16), fmt="bfloat16")
>>> try:
...     assert_bitwise_equal(a, np.array([1.0, 0.0, 2.0], np.float32), fmt="bfloat16")
... except AssertionError as exc:
...     print(str(exc).splitlines()[1])
  by kind: signed zero: 1
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError
from ..numerics import formats as _formats
from ._bits import FLOAT64, BitView, as_bitview, resolve_format
from ._diff import KINDS, Comparison, classify

__all__ = ["compare", "assert_bitwise_equal", "assert_within_ulps", "assert_close_to_exact", "ulp", "gamma"]


def _views(actual, expected, fmt) -> tuple[BitView, BitView, tuple]:
    a_arr, e_arr = np.asarray(actual), np.asarray(expected)
    if a_arr.shape != e_arr.shape:
        if e_arr.ndim == 0:
            e_arr = np.broadcast_to(e_arr, a_arr.shape)
        else:
            raise AssertionError(f"shapes differ: actual {a_arr.shape} vs expected {e_arr.shape}")
    resolved = None if fmt is None else resolve_format(fmt)
    if resolved is None:
        # Integer codes take the format of the typed side; two typed sides must agree.
        a_int, e_int = a_arr.dtype.kind in "ui", e_arr.dtype.kind in "ui"
        if a_int and e_int:
            raise ArgumentTypeError("actual and expected both hold integer codes; pass fmt= to say which format "
                                    "they encode")
        if not a_int and not e_int and a_arr.dtype != e_arr.dtype:
            raise AssertionError(f"dtypes differ: actual is {a_arr.dtype}, expected is {e_arr.dtype} (pass fmt= to "
                                 "compare both as codes of one format)")
        typed = e_arr if a_int else a_arr
        resolved = as_bitview(typed.reshape(-1)[:0], None, "expected" if a_int else "actual").fmt
    a = as_bitview(a_arr.reshape(-1), resolved, "actual")
    e = as_bitview(np.ascontiguousarray(e_arr).reshape(-1), resolved, "expected")
    return a, e, a_arr.shape


def compare(actual, expected, fmt=None) -> Comparison:
    """Compare two arrays code by code and classify every difference (see :mod:`emulator.testing._diff`).

    Parameters
    ----------
    actual, expected : array_like
        Codes (unsigned integers; needs ``fmt``), float arrays or ml_dtypes arrays of the same shape (a scalar
        ``expected`` is broadcast).
    fmt : str, Format or dtype, optional
        Format to compare in; inferred from the dtypes when omitted. ``"float64"`` compares float64 bit patterns.

    Returns
    -------
    Comparison
        ``.ok``, ``.counts()``, ``.ulp_histogram()``, ``.report()``.

    Examples
    --------
    >>> import numpy as np
    >>> compare(np.float32([1, np.nan]), np.float32([1, 2])).counts()
    {'nan_vs_number': 1}
    """
    a, e, shape = _views(actual, expected, fmt)
    where = np.flatnonzero(a.codes != e.codes)
    kind, dist = classify(a, e, where)
    return Comparison(a.name, shape, a, e, where, np.asarray(KINDS, dtype=object)[kind], dist)


def assert_bitwise_equal(actual, expected, fmt=None, *, err_msg: str = "", max_rows: int = 10) -> None:
    """Assert that ``actual`` and ``expected`` hold the same codes, explaining every difference.

    The AssertionError says how many elements differ, of which kind (signed zero, NaN payload, NaN vs number,
    inf vs finite, 1 ulp, more than 1 ulp), gives a histogram of ulp distances and lists the first ``max_rows``
    differing indices with both codes and their decoded values side by side.

    Examples
    --------
    >>> import numpy as np
    >>> assert_bitwise_equal(np.float32([0.5, -0.0]), np.float32([0.5, -0.0]))
    >>> assert_bitwise_equal(np.uint8([0x38]), np.uint8([0x39]), fmt="float8_e4m3fn")
    Traceback (most recent call last):
    ...
    AssertionError: not bitwise equal: 1 of 1 elements differ (compared as float8_e4m3fn, shape (1,))
      by kind: 1 ulp: 1
      ulp distances: 1: 1; max 1 ulp
      first 1 (index: kind | actual code (value) | expected code (value)):
        [0]  1 ulp              | 0x38 (1) | 0x39 (1.125)
    """
    result = compare(actual, expected, fmt)
    if not result.ok:
        title = f"{err_msg}: not bitwise equal" if err_msg else "not bitwise equal"
        raise AssertionError(result.report(title, max_rows))


def assert_within_ulps(actual, expected, ulps: int = 1, fmt=None, *, nan_payload: bool = False,
                       signed_zero: bool = False, err_msg: str = "", max_rows: int = 10) -> None:
    """Assert that finite elements are at most ``ulps`` representable steps apart in the format.

    NaN must meet NaN (any payload unless ``nan_payload=True``), an infinity must meet the same infinity, and
    ``+0``/``-0`` count as equal unless ``signed_zero=True``. The step count is taken over the format's codes, so
    it is uniform across binades and subnormals (``-min_subnormal`` and ``+0`` are 1 ulp apart).

    Examples
    --------
    >>> import numpy as np
    >>> assert_within_ulps(np.float32([1.0, 2.0]), np.float32([np.nextafter(1, 2), 2.0]), ulps=1)
    """
    if not isinstance(ulps, (int, np.integer)) or ulps < 0:
        raise ArgumentError(f"assert_within_ulps: ulps must be a non-negative integer, got {ulps!r}")
    result = compare(actual, expected, fmt)
    keep = ~np.isin(result.kinds, ["one_ulp", "multi_ulp", "sign_flip"]) | (result.ulps > ulps)
    if not nan_payload:
        keep &= result.kinds != "nan_payload"
    if not signed_zero:
        keep &= result.kinds != "signed_zero"
    failing = Comparison(result.fmt_name, result.shape, result.actual, result.expected, result.indices[keep],
                         result.kinds[keep], result.ulps[keep])
    if not failing.ok:
        title = f"not within {ulps} ulp"
        raise AssertionError(failing.report(f"{err_msg}: {title}" if err_msg else title, max_rows))


def ulp(x, fmt="float32") -> np.ndarray:
    """Spacing of ``fmt``'s representable values at ``|x|`` (the gap above |x| in its binade; min subnormal at 0).

    >>> float(ulp(1.0, "bfloat16")), float(ulp(0.0, "float8_e4m3fn"))
    (0.0078125, 0.001953125)
    """
    f = _formats.get(fmt)
    ax = np.abs(np.asarray(x, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        _, e = np.frexp(ax)
    exp = np.where(ax == 0, f.emin, np.maximum(e.astype(np.int64) - 1, f.emin))
    spacing = np.ldexp(1.0, (exp - f.mantissa_bits).astype(np.int32))
    return np.where(np.isfinite(ax), spacing, np.nan)


def gamma(n: int, fmt="float32") -> float:
    """Higham's ``gamma_n = n u / (1 - n u)`` for unit roundoff ``u`` of ``fmt`` under round-to-nearest.

    A recursive sum of ``n + 1`` terms in ``fmt`` is within ``gamma(n) * sum(|terms|)`` of the exact sum (no
    overflow or underflow). ``inf`` once ``n u >= 1``.

    >>> gamma(1, "bfloat16") == 2.0**-8 / (1 - 2.0**-8)
    True
    """
    if n < 0:
        raise ArgumentError(f"gamma: n must be >= 0, got {n}")
    u = Fraction(1, 2 ** (_formats.get(fmt).mantissa_bits + 1))
    return math.inf if n * u >= 1 else float(n * u / (1 - n * u))


def _index(flat: int, shape: tuple) -> str:
    return str([int(i) for i in np.unravel_index(int(flat), shape)]) if shape else "[]"


def _exact_values(exact, shape) -> tuple[np.ndarray, np.ndarray | None]:
    """float64 view of the exact values, plus the object array of Fractions when they were given exactly."""
    arr = np.asarray(exact)
    if arr.shape != shape:
        if arr.ndim != 0:
            raise AssertionError(f"shapes differ: actual {shape} vs exact {arr.shape}")
        arr = np.broadcast_to(arr, shape)
    if arr.dtype == object:
        fr = np.empty(arr.shape, dtype=object)
        flat = arr.reshape(-1)
        fr.reshape(-1)[:] = [Fraction(v) if not isinstance(v, float) or math.isfinite(v) else v for v in flat]
        return np.array([float(v) for v in flat], dtype=np.float64).reshape(shape), fr
    if arr.dtype.kind not in "fiu" and arr.dtype.kind != "V":
        raise ArgumentTypeError(f"assert_close_to_exact: exact has dtype {arr.dtype}; expected numbers or Fractions")
    return arr.astype(np.float64), None


def assert_close_to_exact(actual, exact, bound=None, *, atol: float = 0.0, rtol: float = 0.0, ulps: float = 0.0,
                          fmt=None, err_msg: str = "", max_rows: int = 10) -> None:
    """Assert ``|actual - exact| <= bound + atol + rtol*|exact| + ulps*ulp(exact, fmt)`` element by element.

    Meant for accumulation error bounds: ``exact`` holds the exact results (float64, or an object array of
    ``fractions.Fraction`` / ints for exact comparison), ``actual`` what the emulator produced (floats, ml_dtypes
    or codes with ``fmt``). NaN in ``exact`` requires NaN in ``actual``; an infinite ``exact`` requires the same
    infinity; a NaN or infinity in ``actual`` against a finite ``exact`` always fails.

    Examples
    --------
    >>> import numpy as np
    >>> terms = np.float32([1e8, 1.0, -1e8])
    >>> total = np.float32(0)
    >>> for t in terms:
    ...     total = np.float32(total + t)
    >>> assert_close_to_exact([total], [1.0], bound=gamma(2) * np.abs(terms.astype(np.float64)).sum())
    """
    if bound is None and not (atol or rtol or ulps):
        raise ArgumentError("assert_close_to_exact: give bound=, atol=, rtol= or ulps=")
    a_arr = np.asarray(actual)
    a = as_bitview(a_arr.reshape(-1), None if fmt is None else resolve_format(fmt), "actual")
    shape = a_arr.shape
    ev, efrac = _exact_values(exact, shape)
    ev = ev.reshape(-1)
    ulp_fmt = a.fmt if a.fmt != FLOAT64 else None
    with np.errstate(invalid="ignore"):  # 0 * inf where exact is infinite: those elements are judged apart
        allowed = np.zeros(ev.shape) + atol + rtol * np.abs(ev)
        if bound is not None:
            allowed = allowed + np.broadcast_to(np.asarray(bound, dtype=np.float64), shape).reshape(-1)
        if ulps:
            allowed = allowed + ulps * (ulp(ev, ulp_fmt) if ulp_fmt is not None else np.spacing(np.abs(ev)))
    av = a.value
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(av - ev)
    finite = np.isfinite(av) & np.isfinite(ev)
    special_ok = (np.isnan(av) & np.isnan(ev)) | (np.isinf(ev) & (av == ev))
    bad = ~np.where(finite, err <= allowed, special_ok)
    if efrac is not None:  # exact values given: decide every finite element with exact rational arithmetic
        for i in np.flatnonzero(finite):
            exact_err = abs(Fraction(float(av[i])) - efrac.reshape(-1)[i])
            bad[i] = exact_err > Fraction(float(allowed[i]))
    if not bad.any():
        return
    idx = np.flatnonzero(bad)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(finite[idx] & (allowed[idx] > 0), err[idx] / np.where(allowed[idx] > 0, allowed[idx], 1),
                         np.inf)
    worst = idx[int(np.argmax(ratio))]
    title = f"{err_msg}: not close to exact" if err_msg else "not close to exact"
    lines = [f"{title}: {idx.size} of {ev.size} elements outside the bound (actual as {a.name}, shape {shape})",
             f"  worst at {_index(worst, shape)}: |error| {err[worst]:.6g} vs allowed "
             f"{allowed[worst]:.6g} (x{float(ratio.max()):.3g})",
             f"  first {min(max_rows, idx.size)} (index | actual | exact | |error| | allowed):"]
    for i in idx[:max_rows]:
        lines.append(f"    {_index(i, shape)} | {av[i]:.9g} | {ev[i]:.17g} | {err[i]:.6g} | "
                     f"{allowed[i]:.6g}")
    if idx.size > max_rows:
        lines.append(f"    ... and {idx.size - max_rows} more")
    raise AssertionError("\n".join(lines))
