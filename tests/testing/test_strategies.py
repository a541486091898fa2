"""The strategies reach every edge-case class within a few hundred examples, and respect their contracts."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import emulator as emu
from emulator.numerics import formats
from emulator.testing import (
    arrays, code_classes, codes, edge_values, m_n_sparse, matmul_shapes, mx_blocks, settings_profiles, value_classes,
    values,
)
from emulator.testing.tensor_strategies import HW_SPARSITY_PATTERNS

ALL = formats.names()
FEW = settings(max_examples=300, derandomize=True, database=None, deadline=None)


def expected_code_classes(fmt):
    """The classes a format has, from its definition (not from the strategies)."""
    f = formats.get(fmt)
    out = {"normal", "max_finite", "min_normal"}
    if f.has_subnormals:
        out.add("min_subnormal")
        if f.mantissa_bits > 1:  # e2m1fn's only subnormal (0.5) is both the smallest and the largest
            out |= {"max_subnormal", "subnormal"}
    if f.has_zero:
        out |= {"zero", "negative_zero"}
    if f.has_inf:
        out.add("inf")
    if f.has_nan:
        out.add("nan")
    if f.mantissa_bits > 1 or not f.has_subnormals:  # e2m1fn's 1.0 is its min normal
        out.add("one")
    return out


@pytest.mark.parametrize("fmt", ALL)
def test_codes_hit_every_edge_class_within_300_examples(fmt):
    seen = set()

    @FEW
    @given(codes(fmt))
    def draw(c):
        seen.add(code_classes(np.array([c]), fmt)[0])

    draw()
    assert seen == expected_code_classes(fmt)


def expected_value_classes(fmt):
    f = formats.get(fmt)
    out = {"exact", "other", "nan", "inf"} - ({"other"} if fmt == "float32" else set())
    if fmt != "float32":  # fp32 inputs cannot express ties or overflow thresholds of fp32 itself
        out |= {"tie", "near_tie", "above_max_finite", "overflow_tie", "beyond_overflow"}
        if f.has_zero:
            out.add("underflow")
    return out


@pytest.mark.parametrize("fmt", ALL)
def test_values_hit_every_class_within_300_examples(fmt):
    seen = set()

    @FEW
    @given(values(fmt))
    def draw(x):
        assert isinstance(x, np.float32)
        seen.add(value_classes([x], fmt)[0])

    draw()
    assert seen == expected_value_classes(fmt)


def test_values_width64_reaches_fp32_ties_and_overflow():
    seen = set()

    @FEW
    @given(values("float32", width=64))
    def draw(x):
        assert isinstance(x, np.float64)
        seen.add(value_classes([x], "float32", width=64)[0])

    draw()
    assert {"tie", "near_tie", "overflow_tie", "beyond_overflow", "underflow"} <= seen


def test_value_classes_from_hand_values():
    # e4m3fn: 1.0625 = 1 + 2^-4 is halfway between 1 and 1.125; 464 = 448 + 32/2; 2^-10 = half min subnormal
    got = value_classes([1.0625, 464.0, 2.0**-10, 2.0**-11, 449.0, 480.0, 1.125, np.nextafter(np.float32(1.0625), 2)],
                        "float8_e4m3fn")
    assert list(got) == ["tie", "overflow_tie", "tie", "underflow", "above_max_finite", "beyond_overflow", "exact",
                         "near_tie"]
    assert edge_values("bfloat16")["overflow_tie"] == [float(np.float32(3.3961775292304266e38))] or \
        edge_values("bfloat16")["overflow_tie"][0] == (2 - 2**-7) * 2.0**127 + 2.0**(127 - 8)


@pytest.mark.parametrize("fmt", ALL)
def test_flags_exclude_classes(fmt):
    f = formats.get(fmt)

    @settings(max_examples=60, derandomize=True, database=None)
    @given(values(fmt, (8,), allow_nan=False, allow_infinity=False, allow_overflow=False, allow_subnormal=False))
    def draw(x):
        assert not np.isnan(x).any() and not np.isinf(x).any()
        assert (np.abs(x[np.isfinite(x)]) <= f.max_finite).all()
        nz = x[x != 0]
        assert (np.abs(nz) >= f.min_normal).all()

    draw()

    @settings(max_examples=60, derandomize=True, database=None)
    @given(codes(fmt, (8,), allow_nan=False, allow_infinity=False, allow_subnormal=False, allow_negative_zero=False))
    def draw_codes(c):
        cls = set(code_classes(c, fmt))
        assert not cls & {"nan", "inf", "subnormal", "min_subnormal", "max_subnormal", "negative_zero"}
        assert c.dtype == f.code_dtype

    draw_codes()


@pytest.mark.parametrize("fmt", ALL)
@settings(max_examples=20, derandomize=True, database=None)
@given(data=st.data())
def test_arrays_views(fmt, data):
    f = formats.get(fmt)
    native = data.draw(arrays(fmt, (3, 2)))
    assert native.shape == (3, 2)
    assert native.dtype == (f.ml_dtype if f.ml_dtype is not None else np.float32)
    as_f32 = data.draw(arrays(fmt, 5, view="float32", allow_nan=False))
    # float32 views hold exactly representable values: the lead's cast must map them to themselves
    assert np.array_equal(emu.round_to(as_f32, fmt), as_f32)


@pytest.mark.parametrize("layout,shape", [("ocp", (3, 64)), ("hw", (16, 8))])
@pytest.mark.parametrize("fmt", ["float8_e4m3fn", "float8_e5m2", "mxfp4"])
def test_mx_blocks_shapes_and_kinds(fmt, layout, shape):
    seen_zero = seen_sub = seen_dom = False

    @settings(max_examples=60, derandomize=True, database=None)
    @given(mx_blocks(fmt, shape, layout=layout))
    def draw(x):
        nonlocal seen_zero, seen_sub, seen_dom
        assert x.shape == shape and x.dtype == np.float32 and np.isfinite(x).all()
        blocks = (x.reshape(-1, 32) if layout == "ocp" else
                  x.reshape(shape[0] // 8, 8, shape[1] // 4, 4).transpose(0, 2, 1, 3).reshape(-1, 32))
        amax = np.abs(blocks).max(axis=1)
        seen_zero |= bool((amax == 0).any())
        seen_sub |= bool(((amax > 0) & (amax < np.finfo(np.float32).tiny)).any())
        second = np.sort(np.abs(blocks), axis=1)[:, -2]
        seen_dom |= bool((second * 2.0**9 < amax).any())

    draw()
    assert seen_zero and seen_sub and seen_dom


def test_mx_blocks_validation():
    with pytest.raises(ValueError, match="multiple of block_size"):
        mx_blocks("float8_e4m3fn", (2, 33))
    with pytest.raises(ValueError, match="multiple of 8"):
        mx_blocks("float8_e4m3fn", (12, 8), layout="hw")
    with pytest.raises(ValueError, match="not an MX element format"):
        mx_blocks("bfloat16")


@pytest.mark.parametrize("m,n", HW_SPARSITY_PATTERNS)
def test_m_n_sparse_pattern(m, n):
    @settings(max_examples=25, derandomize=True, database=None)
    @given(m_n_sparse(m, n, (2 * n, 3), axis=0, fmt="bfloat16"), m_n_sparse(m, n, (2, n), axis=1, exact_m=True))
    def draw(x, y):
        assert ((x.reshape(2, n, 3) != 0).sum(axis=1) <= m).all()
        assert ((y.reshape(2, 1, n) != 0).sum(axis=2) == m).all()
        assert np.array_equal(emu.round_to(x, "bfloat16"), x)

    draw()
    with pytest.raises(ValueError, match="multiple of n"):
        m_n_sparse(m, n, (n + 1, 2))


@pytest.mark.parametrize("kind,psum,max_n", [("nc_matmul", "float32", None), ("nc_matmul", "bfloat16", 8192),
                                             ("nc_matmul_mx", "float32", 4096), ("matmul", "float32", None)])
def test_matmul_shapes_respect_limits(kind, psum, max_n):
    seen = set()

    @settings(max_examples=150, derandomize=True, database=None)
    @given(matmul_shapes(kind, psum_dtype=psum, max_n=max_n))
    def draw(s):
        assert min(s) >= 1
        if kind != "matmul":
            assert s.k <= 128 and s.m <= 128 and s.n <= (max_n or 512)
        if kind == "nc_matmul_mx":
            assert s.k % 32 == 0 and s.m % 2 == 0
        seen.update({("k", s.k), ("n", s.n)})

    draw()
    if kind != "matmul":
        assert ("k", 128) in seen and ("n", max_n or 512) in seen  # the limits themselves are drawn
    with pytest.raises(ValueError, match="limit"):
        matmul_shapes("nc_matmul", max_n=4097)
    with pytest.raises(ValueError, match="limit"):
        matmul_shapes("nc_matmul", psum_dtype="bfloat16", max_k=129)


def test_settings_profiles_are_valid_and_varied():
    rows = {r["name"]: r for r in emu.config.describe()}
    seen: dict[str, set] = {}

    @settings(max_examples=400, derandomize=True, database=None)
    @given(settings_profiles())
    def draw(profile):
        with emu.settings(**profile) as s:
            for name, value in profile.items():
                assert getattr(s, name) == value
                seen.setdefault(name, set()).add(value)

    draw()
    for name, row in rows.items():
        if row["choices"] and len(row["choices"]) > 1:
            assert seen.get(name) == set(row["choices"]), name
    assert seen["numba"] == {True, False}
    assert "collective_timeout" not in seen

    @settings(max_examples=20, derandomize=True, database=None)
    @given(settings_profiles(areas=("casts",)))
    def casts_only(profile):
        assert all(rows[n]["area"] == "casts" for n in profile)

    casts_only()
    with pytest.raises(ValueError, match="unknown setting"):
        settings_profiles(fields=["no_such_setting"])
