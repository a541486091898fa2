"""Property tests of M:N sparsity over shapes, axes, patterns and formats (edge-biased codes: NaN, inf, -0, ...)."""

from __future__ import annotations

import ml_dtypes  # noqa: F401  (registers the dtypes used by the formats)
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import emulator as emu
from emulator.numerics import sparsity as sp
from emulator.testing.strategies import codes
from test_sparsity_reference import compress_positions, groups, prune_ref

PATTERNS = [(4, 16), (4, 12), (4, 8), (2, 8), (2, 4), (1, 4), (1, 2)]
FORMATS = ["float32", "tfloat32", "bfloat16", "float16", "float8_e5m2", "float8_e4m3", "float8_e4m3fn",
           "float4_e2m1fn"]


def as_float64(c: np.ndarray, fmt) -> np.ndarray:
    with np.errstate(invalid="ignore"):  # NaN payloads are quietened by the widening: values only matter here
        if fmt.ml_dtype is None:  # tfloat32: an fp32 bit pattern
            return c.view(np.float32).astype(np.float64)
        return c.view(fmt.ml_dtype).astype(np.float64)


@st.composite
def operands(draw):
    m, n = draw(st.sampled_from(PATTERNS))
    fmt = emu.formats.get(draw(st.sampled_from(FORMATS)))
    ndim = draw(st.integers(1, 3))
    axis = draw(st.integers(-ndim, ndim - 1))
    shape = [draw(st.integers(1, 3)) for _ in range(ndim)]
    shape[axis] = n * draw(st.integers(1, 3))
    c = draw(codes(fmt, tuple(shape)))
    if fmt.has_nan:  # one NaN pattern per sign, so NaN ties are ties in the value-level reference too
        nan = np.isnan(as_float64(c, fmt))
        c = np.where(nan, fmt.code_dtype.type(fmt.nan_code) | (c & fmt.code_dtype.type(fmt.sign_mask)), c)
    return m, n, fmt, axis, c


@settings(max_examples=150)
@given(operands())
def test_prune_properties(case):
    m, n, fmt, axis, c = case
    x64 = as_float64(c, fmt)
    keep = prune_ref(x64, m, n, axis)
    with emu.settings(numba=True):
        got_nb = sp.prune(c, m, n, axis=axis, fmt=fmt)
        mask_nb = sp.mask(c, m, n, axis=axis, fmt=fmt)
    with emu.settings(numba=False):
        got_np = sp.prune(c, m, n, axis=axis, fmt=fmt)
    np.testing.assert_array_equal(mask_nb, keep)
    np.testing.assert_array_equal(got_nb, np.where(keep, c, 0))
    np.testing.assert_array_equal(got_np, got_nb)
    assert sp.is_m_n(got_nb, m, n, axis=axis, fmt=fmt)
    if fmt.ml_dtype is not None:  # the float view takes the same decisions as the code view
        np.testing.assert_array_equal(sp.prune(c.view(fmt.ml_dtype), m, n, axis=axis).view(c.dtype), got_nb)


@settings(max_examples=150)
@given(operands())
def test_compress_round_trip(case):
    m, n, fmt, axis, c = case
    x = sp.prune(c, m, n, axis=axis, fmt=fmt)
    x64 = as_float64(x, fmt)
    results = []
    for numba in (True, False):
        with emu.settings(numba=numba):
            values, tags = sp.compress(x, m, n, axis=axis, fmt=fmt)
            back = sp.decompress(values, tags, m, n, axis=axis)
        np.testing.assert_array_equal(back, x)  # prune output: bit-exact round trip
        assert back.dtype == x.dtype
        results.append((values, tags))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
    values, tags = results[0]
    # every kept (value, tag) is what the reference picks
    ax = axis % x.ndim
    nib = sp.unpack_tags(tags, values.shape[-1])
    for _, idx in groups(x.shape, ax, n):
        pos = compress_positions([float(x64[i]) for i in idx], m)
        for s, j in enumerate(pos):
            slot = list(idx[0])
            slot[ax] = idx[0][ax] // n * m + s
            assert nib[tuple(slot)] == j
            assert values[tuple(slot)] == x[idx[j]]


@settings(max_examples=100)
@given(operands())
def test_is_m_n_agrees_with_counting(case):
    m, n, fmt, axis, c = case
    x64 = as_float64(c, fmt)
    ax = axis % c.ndim
    nonzero = np.moveaxis((x64 != 0) | np.isnan(x64), ax, -1)
    expect = bool((nonzero.reshape(nonzero.shape[:-1] + (-1, n)).sum(axis=-1) <= m).all())
    for numba in (True, False):
        with emu.settings(numba=numba):
            assert sp.is_m_n(c, m, n, axis=axis, fmt=fmt) == expect
            if not expect:
                try:
                    sp.compress(c, m, n, axis=axis, fmt=fmt)
                except sp.NotMNError as exc:
                    assert "non-zeros; at most" in str(exc)
                else:
                    raise AssertionError("compress accepted a non-M:N operand")
