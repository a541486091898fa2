"""Hypothesis strategies for format codes, cast inputs and arrays, biased toward the edge cases that break casts.

* :func:`codes` draws raw codes of a format; half the draws come from its edge classes (both zeros, smallest and
  largest subnormal, smallest normal, 1, max finite, inf and NaN where the format has them).
* :func:`values` draws float32 (or float64) *inputs to a cast into* a format: exact values, exact ties between
  neighbours and the floats just either side of them, values just below/at/above the overflow threshold, values
  below half the smallest subnormal, NaN with payloads, infinities, and random values across the format's range.
* :func:`arrays` draws arrays *of* a format (ml_dtypes array, codes or float32), like ``hypothesis.extra.numpy``.

:func:`value_classes` names the class of each drawn value, independently of the strategies (use it with
``hypothesis.event`` to see what a test exercised).

>>> from hypothesis import given
>>> from emulator.testing import values
>>> @given(values("float8_e4m3fn"))
... def test_cast_is_idempotent(x): ...
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..errors import ArgumentError
from ..numerics import formats as _formats
from ..numerics.formats import Format
from ._bits import code_classes, decode_exact

__all__ = ["codes", "values", "arrays", "edge_codes", "edge_values", "value_classes", "VALUE_CLASSES"]

_WIDTHS = {32: (np.float32, np.uint32, 23), 64: (np.float64, np.uint64, 52)}


# ---- codes -----------------------------------------------------------------------------------------------------

def _magnitudes(fmt: Format) -> dict[str, int]:
    """Magnitude codes (container layout) of the named edge values."""
    m, pad = fmt.mantissa_bits, fmt.pad_bits
    out = {"max_finite": fmt.max_code, "one": (fmt.bias << m) << pad}
    if fmt.has_zero:
        out["zero"] = 0
    if fmt.has_subnormals:
        out.update(min_subnormal=1 << pad, max_subnormal=((1 << m) - 1) << pad, min_normal=(1 << m) << pad)
    else:
        out["min_normal"] = 0
    if fmt.has_inf:
        out["inf"] = fmt.inf_code
    return out


def edge_codes(fmt, *, allow_nan: bool = True, allow_infinity: bool = True, allow_subnormal: bool = True,
               allow_negative_zero: bool = True) -> dict[str, list[int]]:
    """Edge-case codes of ``fmt`` by class (both signs), e.g. ``{"zero": [0], "negative_zero": [128], ...}``.

    >>> edge_codes("float8_e4m3fn", allow_nan=False)["max_finite"]
    [126, 254]
    """
    fmt = _formats.get(fmt)
    out: dict[str, list[int]] = {}
    for name, mag in _magnitudes(fmt).items():
        if name == "inf" and not allow_infinity:
            continue
        if "subnormal" in name and not allow_subnormal:
            continue
        if name == "zero":
            out["zero"] = [0]
            if fmt.has_negative_zero and allow_negative_zero:
                out["negative_zero"] = [fmt.sign_mask]
            continue
        out[name] = [mag, mag | fmt.sign_mask] if fmt.signed else [mag]
    if allow_nan and fmt.has_nan:
        nans = {fmt.nan_code, fmt.nan_code | fmt.sign_mask}
        if fmt.nan_kind == "ieee":  # signalling pattern and all-ones payload too
            nans |= {fmt.inf_code | (1 << fmt.pad_bits), fmt.magnitude_mask, fmt.magnitude_mask | fmt.sign_mask}
        out["nan"] = sorted(nans)
    return out


def _allowed(codes_arr: np.ndarray, fmt: Format, allow_nan, allow_infinity, allow_subnormal, allow_negative_zero):
    cls = code_classes(codes_arr, fmt)
    keep = np.ones(codes_arr.shape, bool)
    if not allow_nan:
        keep &= cls != "nan"
    if not allow_infinity:
        keep &= cls != "inf"
    if not allow_subnormal:
        keep &= ~np.isin(cls, ["subnormal", "min_subnormal", "max_subnormal"])
    if not allow_negative_zero:
        keep &= cls != "negative_zero"
    return codes_arr[keep]


def _code_elements(fmt: Format, allow_nan=True, allow_infinity=True, allow_subnormal=True,
                   allow_negative_zero=True, edge_weight: float = 0.5) -> st.SearchStrategy[int]:
    flags = (allow_nan, allow_infinity, allow_subnormal, allow_negative_zero)
    edges = sorted({c for group in edge_codes(fmt, allow_nan=allow_nan, allow_infinity=allow_infinity,
                                              allow_subnormal=allow_subnormal,
                                              allow_negative_zero=allow_negative_zero).values() for c in group})
    if fmt.bits + fmt.pad_bits <= 16:
        table = _allowed(np.arange(1 << (fmt.bits + fmt.pad_bits), dtype=np.uint64), fmt, *flags)
        table = table.astype(np.int64)
        uniform = st.integers(0, table.size - 1).map(lambda i: int(table[i]))
    else:
        m_bits = fmt.mantissa_bits
        uniform = st.builds(
            lambda s, e, m: ((s << 31) | (e << (m_bits + fmt.pad_bits)) | (m << fmt.pad_bits)),
            st.integers(0, 1), st.integers(0, (1 << fmt.exponent_bits) - 1), st.integers(0, (1 << m_bits) - 1),
        ).filter(lambda c: _allowed(np.array([c], np.uint64), fmt, *flags).size == 1)
    edge = st.sampled_from(edges)
    if not 0 <= edge_weight <= 1:
        raise ArgumentError(f"codes: edge_weight must be in [0, 1], got {edge_weight!r}")
    if edge_weight == 1 or edge_weight == 0:
        return edge if edge_weight == 1 else uniform
    # one_of picks its branches about equally; repeat the edge branch to reach the requested weight.
    n_edge = max(1, round(4 * edge_weight / (1 - edge_weight)))
    return st.one_of(*([edge] * n_edge), *([uniform] * 4))


def _shape_arg(shape):
    if isinstance(shape, st.SearchStrategy):
        return shape
    return (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)


def codes(fmt, shape=None, *, allow_nan: bool = True, allow_infinity: bool = True, allow_subnormal: bool = True,
          allow_negative_zero: bool = True, edge_weight: float = 0.5):
    """Codes of ``fmt``: a Python int, or an array of ``fmt.code_dtype`` when ``shape`` is given.

    About ``edge_weight`` of the draws come from :func:`edge_codes`, the rest uniformly from all allowed codes.
    ``shape`` may be an int, a tuple or a strategy of shapes (e.g. ``hypothesis.extra.numpy.array_shapes()``).

    >>> from hypothesis import given
    >>> @given(codes("bfloat16", shape=(4, 8), allow_nan=False))
    ... def test_roundtrip(c): ...
    """
    fmt = _formats.get(fmt)
    elements = _code_elements(fmt, allow_nan, allow_infinity, allow_subnormal, allow_negative_zero, edge_weight)
    if shape is None:
        return elements
    return hnp.arrays(fmt.code_dtype, _shape_arg(shape), elements=elements)


def arrays(fmt, shape, *, view: str = "native", **code_kwargs):
    """Arrays *of* format ``fmt``, edge-biased like :func:`codes`.

    ``view="native"`` gives the ml_dtypes/NumPy array (tfloat32: float32 values with 13 zero low mantissa bits),
    ``"codes"`` the raw codes, ``"float32"`` the decoded values as float32 (float64 for nothing: every format fits).

    >>> from hypothesis import given
    >>> @given(arrays("float8_e5m2", (16,)))
    ... def test_something(x): assert x.dtype.name == "float8_e5m2"
    """
    fmt = _formats.get(fmt)
    if view not in ("native", "codes", "float32"):
        raise ArgumentError(f"arrays: view must be 'native', 'codes' or 'float32', got {view!r}")
    strategy = codes(fmt, shape, **code_kwargs)
    if view == "codes":
        return strategy
    if view == "float32" or fmt.ml_dtype is None:
        if fmt.ml_dtype is None and fmt.storage_bits == 32 and view == "native":
            return strategy.map(lambda c: c.view(np.float32))
        return strategy.map(lambda c: decode_exact(c, fmt).astype(np.float32))
    return strategy.map(lambda c: c.view(fmt.ml_dtype))


# ---- cast inputs -----------------------------------------------------------------------------------------------

#: Classes of cast inputs, as reported by :func:`value_classes`.
VALUE_CLASSES = ("nan", "inf", "exact", "tie", "near_tie", "above_max_finite", "overflow_tie", "beyond_overflow",
                 "underflow", "other")


def _grid(fmt: Format):
    """(mantissa bits, min exponent, max finite, spacing at the top binade) of the finite grid."""
    return fmt.mantissa_bits, fmt.emin, fmt.max_finite, 2.0 ** (fmt.emax - fmt.mantissa_bits)


def value_classes(x, fmt, width: int = 32) -> np.ndarray:
    """The class (a name from :data:`VALUE_CLASSES`) of each cast input ``x`` relative to ``fmt``'s grid.

    ``near_tie``: within one ``width``-bit ulp of a tie (not on it); ``above_max_finite``: between max finite and the
    rounding threshold; ``overflow_tie``: on that threshold; ``underflow``: nonzero below half the smallest
    subnormal (where the format has zero).

    >>> list(value_classes([1.0625, 464.0, 1e-9, 500.0], "float8_e4m3fn"))
    ['tie', 'overflow_tie', 'underflow', 'beyond_overflow']
    """
    fmt = _formats.get(fmt)
    m, emin, top, top_ulp = _grid(fmt)
    x = np.asarray(x, dtype=np.float64)
    ax = np.abs(x)
    with np.errstate(all="ignore"):
        e = np.where(ax > 0, np.floor(np.log2(np.where(ax > 0, ax, 1.0))), emin)
        # log2 can be off by one next to powers of two; settle it exactly.
        e = np.where(np.ldexp(1.0, e.astype(np.int32)) > ax, e - 1, e)
        e = np.where(np.ldexp(1.0, (e + 1).astype(np.int32)) <= ax, e + 1, e)
        e = np.maximum(e, emin).astype(np.int32)
        q = np.ldexp(ax, m - e)
        frac = q - np.floor(q)
        width_ulp = np.spacing(ax.astype(_WIDTHS[width][0])).astype(np.float64)
        dist = np.abs(frac - 0.5) * np.ldexp(1.0, e - m)
    out = np.full(x.shape, "other", dtype=object)
    out[(dist <= width_ulp) & (frac != 0)] = "near_tie"
    out[frac == 0.5] = "tie"
    out[frac == 0] = "exact"
    if fmt.has_zero:
        out[(ax > 0) & (ax < fmt.min_subnormal / 2)] = "underflow"
    threshold = top + top_ulp / 2
    out[(ax > top) & (ax < threshold)] = "above_max_finite"
    out[ax == threshold] = "overflow_tie"
    out[(ax > threshold) & np.isfinite(ax)] = "beyond_overflow"
    out[np.isinf(ax)] = "inf"
    out[np.isnan(x)] = "nan"
    return out


def _representable(v: float, width: int) -> bool:
    fdt = _WIDTHS[width][0]
    with np.errstate(all="ignore"):
        return bool(np.isfinite(fdt(v)) and float(fdt(v)) == v)


def edge_values(fmt, width: int = 32) -> dict[str, list[float]]:
    """Fixed cast inputs of each class, positive (the strategies add signs): a readable list of what matters.

    >>> edge_values("float8_e4m3fn")["overflow_tie"]
    [464.0]
    """
    with np.errstate(all="ignore"):
        return _edge_values(_formats.get(fmt), width)


def _edge_values(fmt: Format, width: int) -> dict[str, list[float]]:
    fdt = _WIDTHS[width][0]
    m, emin, top, top_ulp = _grid(fmt)
    up = lambda v: float(np.nextafter(fdt(v), fdt(np.inf)))  # noqa: E731
    down = lambda v: float(np.nextafter(fdt(v), fdt(0)))  # noqa: E731
    out: dict[str, list[float]] = {}
    ties = []
    if fmt.has_zero:
        ties.append(fmt.min_subnormal / 2)
    if fmt.has_subnormals:
        ties.append(fmt.min_normal - fmt.min_subnormal / 2)  # largest subnormal and min normal
    ties += [1.0 + fmt.eps / 2, top - top_ulp / 2]
    out["tie"] = [t for t in ties if _representable(t, width)]
    out["near_tie"] = [f(t) for t in out["tie"] for f in (up, down)]
    threshold = top + top_ulp / 2
    if _representable(threshold, width):
        out["overflow_tie"] = [threshold]
        out["above_max_finite"] = [up(top), down(threshold)]
        out["beyond_overflow"] = [up(threshold), float(np.finfo(fdt).max)]
    elif threshold > float(np.finfo(fdt).max) and up(top) != np.inf:
        out["above_max_finite"] = [up(top)]
    if fmt.has_zero and fmt.min_subnormal / 2 > float(np.finfo(fdt).smallest_subnormal):
        out["underflow"] = [float(np.finfo(fdt).smallest_subnormal), down(fmt.min_subnormal / 2)]
    return {k: v for k, v in out.items() if v}


def _ldexp(m, e: int) -> float:
    with np.errstate(all="ignore"):
        return float(np.ldexp(m, e))


def _signed(strategy, allow_negative: bool):
    if not allow_negative:
        return strategy
    return st.tuples(strategy, st.booleans()).map(lambda vs: -vs[0] if vs[1] else vs[0])


def _value_classes_strategies(fmt: Format, width: int, allow_nan, allow_infinity, allow_subnormal, allow_overflow):
    fdt, udt, wm = _WIDTHS[width]
    m, emin, top, top_ulp = _grid(fmt)
    fixed = edge_values(fmt, width)
    max_index = fmt.max_code >> fmt.pad_bits
    sub_count = (1 << m) if fmt.has_subnormals else 0

    def mag_value(i):
        return float(decode_exact(np.array([i << fmt.pad_bits], np.uint64), fmt)[0])

    low = sub_count if not allow_subnormal else 0
    index = st.one_of(st.sampled_from(sorted({low, max(low, sub_count - 1), sub_count, max_index - 1})),
                      st.integers(low, max_index - 1))
    ties = index.map(lambda i: (mag_value(i) + mag_value(i + 1)) / 2).filter(lambda t: _representable(t, width))
    strategies: dict[str, st.SearchStrategy[float]] = {}
    exact_codes = _code_elements(fmt, allow_nan=False, allow_infinity=False, allow_subnormal=allow_subnormal)
    strategies["exact"] = exact_codes.map(lambda c: float(decode_exact(np.array([c], np.uint64), fmt)[0]))
    if any(_representable(t, width) for t in fixed.get("tie", [])):
        strategies["tie"] = st.one_of(st.sampled_from(fixed["tie"]), ties)
        strategies["near_tie"] = st.tuples(ties, st.booleans()).map(
            lambda tb: float(np.nextafter(fdt(tb[0]), fdt(np.inf) if tb[1] else fdt(0))))
    if allow_overflow:
        for name in ("above_max_finite", "overflow_tie", "beyond_overflow"):
            if name in fixed:
                strategies[name] = st.sampled_from(fixed[name])
        if "beyond_overflow" in fixed:
            strategies["beyond_overflow"] = st.one_of(
                strategies["beyond_overflow"],
                st.floats(min_value=fixed["beyond_overflow"][0], max_value=float(np.finfo(fdt).max), width=width))
    if "underflow" in fixed and allow_subnormal:
        strategies["underflow"] = st.one_of(
            st.sampled_from(fixed["underflow"]),
            st.floats(min_value=fixed["underflow"][0], max_value=fixed["underflow"][1], width=width))
    if allow_infinity:
        strategies["inf"] = st.just(float("inf"))
    if allow_nan:
        payload = st.integers(1, (1 << wm) - 1)
        strategies["nan"] = payload.map(
            lambda p: float(np.array([(((1 << (width - 1 - wm)) - 1) << wm) | p], udt).view(fdt)[0]))
    # Random magnitudes across (and a little beyond) the format's exponent range.
    lo_e, hi_e = max(emin - m - 2, int(np.finfo(fdt).minexp)), min(fmt.emax + 1, int(np.finfo(fdt).maxexp) - 1)
    strategies["other"] = st.builds(lambda f, e: _ldexp(fdt(1 + f), e),
                                    st.floats(0, 1, exclude_max=True, width=width), st.integers(lo_e, hi_e))
    if not allow_subnormal:
        tiny = fmt.min_normal
        strategies = {k: s.filter(lambda v, tiny=tiny: v == 0 or abs(v) >= tiny or not np.isfinite(v))
                      for k, s in strategies.items()}
    if not allow_overflow:
        strategies = {k: s.filter(lambda v: not (np.isfinite(v) and abs(v) > top)) for k, s in strategies.items()}
    return strategies


def values(fmt, shape=None, *, width: int = 32, allow_nan: bool = True, allow_infinity: bool = True,
           allow_subnormal: bool = True, allow_overflow: bool = True, allow_negative: bool | None = None):
    """Inputs to a cast into ``fmt``: NumPy float32 (``width=64``: float64) scalars, or arrays when ``shape`` is given.

    Each draw first picks a class uniformly among those the format and flags allow (see :data:`VALUE_CLASSES`):
    exact values (from :func:`codes`), exact ties between neighbouring codes, the floats just either side of a tie,
    values above max finite, the overflow rounding threshold and beyond, underflow below half the smallest
    subnormal, NaN with random payload and sign, infinities, and random values over the format's exponent range.
    ``allow_negative`` defaults to the format's signedness (negative inputs to e8m0fnu are a policy question).

    >>> from hypothesis import given
    >>> @given(values("bfloat16", width=64))
    ... def test_double_rounding(x): ...
    """
    fmt = _formats.get(fmt)
    if width not in _WIDTHS:
        raise ArgumentError(f"values: width must be 32 or 64, got {width!r}")
    fdt, udt, _ = _WIDTHS[width]
    allow_negative = fmt.signed if allow_negative is None else allow_negative
    by_class = _value_classes_strategies(fmt, width, allow_nan, allow_infinity, allow_subnormal, allow_overflow)
    names = list(by_class)
    element = st.sampled_from(names).flatmap(lambda n: _signed(by_class[n], allow_negative))
    if shape is None:
        return element.map(fdt)
    bits = element.map(lambda v: int(np.array([v], fdt).view(udt)[0]))
    return hnp.arrays(udt, _shape_arg(shape), elements=bits).map(lambda a: a.view(fdt))
