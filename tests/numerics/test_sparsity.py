"""M:N sparsity: prune / mask / is_m_n / validate / compress / decompress against the scalar reference."""

from __future__ import annotations

import re

import ml_dtypes
import numpy as np
import pytest

import emulator as emu
from emulator.errors import DtypeError, ShapeError
from emulator.numerics import sparsity as sp
from test_sparsity_reference import (
    compress_positions,
    first_bad_group,
    groups,
    pack_ref,
    prune_ref,
)

PATTERNS = [(4, 16), (4, 12), (4, 8), (2, 8), (2, 4), (1, 4), (1, 2)]
DTYPES = [np.float32, np.float64, ml_dtypes.bfloat16, np.float16, ml_dtypes.float8_e5m2, ml_dtypes.float8_e4m3,
          ml_dtypes.float8_e4m3fn, ml_dtypes.float4_e2m1fn]


@pytest.fixture(params=["numba", "numpy"])
def path(request):
    with emu.settings(numba=request.param == "numba"):
        yield request.param


def bits(a: np.ndarray) -> np.ndarray:
    return a.view({1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def tie_heavy(shape, dtype, rng, zero_frac=0.3):
    """Values from a small set (many magnitude ties), with signed zeros."""
    pool = np.array([0.5, 1.0, 1.5, 2.0, 3.0, 4.0], dtype=np.float64)
    x = rng.choice(pool, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    z = rng.random(shape) < zero_frac
    x[z] = np.where(rng.random(shape) < 0.5, 0.0, -0.0)[z]
    return x.astype(dtype)


# ---- patterns ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("m,n", PATTERNS)
def test_supported_patterns(m, n):
    assert sp.check_pattern(m, n) == (m, n)


@pytest.mark.parametrize("m,n", [(3, 7), (5, 4), (0, 4), (2, 2), (4, 4), (1, 1), (8, 16), (-2, 4), (2, 16)])
def test_unsupported_patterns_rejected_everywhere(m, n):
    x = np.zeros((16 * 7,), np.float32)
    for fn in (lambda: sp.prune(x, m, n), lambda: sp.mask(x, m, n), lambda: sp.is_m_n(x, m, n),
               lambda: sp.compress(x, m, n), lambda: sp.decompress(x, np.zeros(28, np.uint16), m, n)):
        with pytest.raises(ValueError, match=rf"{m}:{n} is not supported.*4:16, 4:12, 4:8, 2:8, 2:4, 1:4, 1:2"):
            fn()


def test_pattern_types_rejected():
    with pytest.raises(TypeError):
        sp.check_pattern(2.0, 4)
    with pytest.raises(TypeError):
        sp.check_pattern(True, 2)


# ---- prune / mask against the reference: every pattern, every axis, both paths ---------------------------------
@pytest.mark.parametrize("m,n", PATTERNS)
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_prune_matches_reference(m, n, axis, path):
    rng = np.random.default_rng(m * 100 + n + 7 * axis)
    shape = [3, 2, 5]
    shape[axis] = 2 * n
    x = tie_heavy(tuple(shape), np.float32, rng)
    keep = prune_ref(x.astype(np.float64), m, n, axis)
    np.testing.assert_array_equal(sp.mask(x, m, n, axis=axis), keep)
    got = sp.prune(x, m, n, axis=axis)
    want = np.where(keep, bits(x), 0)
    np.testing.assert_array_equal(bits(got), want)
    assert got.dtype == x.dtype


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_prune_every_dtype(dtype, path):
    rng = np.random.default_rng(3)
    x = tie_heavy((24, 6), dtype, rng)
    for m, n in [(2, 4), (4, 12), (1, 2)]:
        keep = prune_ref(x.astype(np.float64), m, n, 0)
        np.testing.assert_array_equal(bits(sp.prune(x, m, n)), np.where(keep, bits(x), 0))


def test_prune_specials_nan_above_inf(path):
    x = np.array([1.0, np.nan, np.inf, -np.inf, 3.0, -0.0, 0.0, 2.0], np.float32)
    np.testing.assert_array_equal(sp.mask(x, 2, 4), [False, True, True, False, True, False, False, True])
    np.testing.assert_array_equal(sp.mask(x, 1, 2), [False, True, True, False, True, False, False, True])
    # subnormals are ordered by magnitude too
    tiny = np.array([1, 3, 0, 0x80000002], np.uint32).view(np.float32)  # subnormals 1, 3, 0, -2 ulps
    np.testing.assert_array_equal(sp.mask(tiny, 2, 4), [False, True, False, True])


def test_prune_by_score(path):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((16, 3)).astype(np.float32)
    score = np.round(rng.random((16, 3)) * 4)  # integer scores: many ties
    keep = prune_ref(x.astype(np.float64), 4, 8, 0, scores=score)
    np.testing.assert_array_equal(sp.mask(x, 4, 8, score=score), keep)
    np.testing.assert_array_equal(sp.prune(x, 4, 8, score=score), np.where(keep, x, 0))
    with pytest.raises(ValueError, match="NaN"):
        sp.prune(x, 4, 8, score=np.full((16, 3), np.nan))
    with pytest.raises(ShapeError, match="score has shape"):
        sp.prune(x, 4, 8, score=np.ones((16,)))


@pytest.mark.parametrize("m,n", PATTERNS)
def test_prune_invariants(m, n, path):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n * 6, 10)).astype(ml_dtypes.bfloat16)
    p = sp.prune(x, m, n)
    keep = sp.mask(x, m, n)
    assert sp.is_m_n(p, m, n)
    g = np.abs(x.astype(np.float32)).reshape(6, n, 10)
    k = keep.reshape(6, n, 10)
    assert (k.sum(axis=1) == m).all()
    kept_min = np.where(k, g, np.inf).min(axis=1)
    dropped_max = np.where(k, -np.inf, g).max(axis=1)
    assert (kept_min >= dropped_max).all()
    assert sp.prune(p, m, n).tobytes() == p.tobytes()  # idempotent


def test_prune_codes_with_fmt(path):
    rng = np.random.default_rng(5)
    x = tie_heavy((8, 4), ml_dtypes.float8_e4m3fn, rng)
    codes = x.view(np.uint8)
    np.testing.assert_array_equal(sp.prune(codes, 2, 4, fmt="float8_e4m3fn"), bits(sp.prune(x, 2, 4)))
    with pytest.raises(DtypeError, match="fmt="):
        sp.prune(codes, 2, 4)
    with pytest.raises(DtypeError, match="uint16"):
        sp.prune(codes, 2, 4, fmt="bfloat16")
    with pytest.raises(DtypeError, match="only for raw code arrays"):
        sp.prune(x, 2, 4, fmt="float8_e4m3fn")


def test_shape_and_axis_errors():
    x = np.ones((6, 4), np.float32)
    with pytest.raises(ShapeError, match="6 elements, not a multiple of the group size n=4; zero-pad it to 8"):
        sp.prune(x, 2, 4, axis=0)
    with pytest.raises(ShapeError, match="axis 2 is out of range"):
        sp.prune(x, 2, 4, axis=2)
    with pytest.raises(ShapeError, match="0-d"):
        sp.prune(np.float32(1.0), 1, 2)
    with pytest.raises(DtypeError, match="not supported"):
        sp.prune(np.ones(4, np.int32), 1, 2)


# ---- is_m_n / validate ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_validator_names_first_group(axis, path):
    rng = np.random.default_rng(axis + 5)
    shape = [8, 12, 3]
    shape[axis] = 24
    x = sp.prune(rng.standard_normal(shape).astype(np.float32), 4, 12, axis=axis)
    assert sp.is_m_n(x, 4, 12, axis=axis)
    # break two groups; the first in C order of groups must be reported
    idx_late = [5, 7, 2]
    idx_early = [1, 3, 1]
    idx_late[axis] = 12 + 5
    idx_early[axis] = 12 + 2
    for ix in (idx_late, idx_early):
        gstart = list(ix)
        gstart[axis] = 12
        sl = tuple(slice(12, 24) if k == axis % 3 else ix[k] for k in range(3))
        x[sl] = 1.0
    assert not sp.is_m_n(x, 4, 12, axis=axis)
    flat, count = first_bad_group(x.astype(np.float64), 4, 12, axis)
    ax = axis % 3
    others = [i for k, i in enumerate(idx_early) if k != ax]
    assert count == 12
    with pytest.raises(sp.NotMNError) as err:
        sp.validate_m_n(x, 4, 12, axis=axis, name="weights")
    msg = str(err.value)
    assert msg.startswith(f"weights is not 4:12 along axis {ax}: group 1 along axis {ax} (elements 12..23)")
    assert f"at index {others} of the other axes has 12 non-zeros; at most 4" in msg
    with pytest.raises(sp.NotMNError, match=re.escape(f"index {others}")):
        sp.compress(x, 4, 12, axis=axis)


def test_negative_zero_is_zero_nan_is_not():
    assert sp.is_m_n(np.array([-0.0, -0.0, -0.0, 1.0], np.float32), 1, 4)
    assert not sp.is_m_n(np.array([np.nan, 0.0, 0.0, 1.0], np.float32), 1, 4)
    assert sp.is_m_n(np.array([np.inf, -0.0], np.float32), 1, 2)
    assert not sp.is_m_n(np.array([np.inf, np.nan], np.float32), 1, 2)


# ---- compress / decompress --------------------------------------------------------------------------------------
def reference_compress(x, m, n, axis):
    """(values bits, unpacked tags) from the scalar reference."""
    ax = axis % x.ndim
    vshape = list(x.shape)
    vshape[ax] = vshape[ax] // n * m
    vals = np.zeros(vshape, dtype=bits(x).dtype)
    tags = np.zeros(vshape, dtype=np.int64)
    xb = bits(x)
    x64 = x.astype(np.float64)
    for _, idx in groups(x.shape, ax, n):
        pos = compress_positions([float(x64[i]) for i in idx], m)
        for s, j in enumerate(pos):
            out = list(idx[j])
            out[ax] = idx[0][ax] // n * m + s
            vals[tuple(out)] = xb[idx[j]]
            tags[tuple(out)] = j
    return vals, tags


@pytest.mark.parametrize("m,n", PATTERNS)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_compress_matches_reference(m, n, axis, path):
    rng = np.random.default_rng(17 * n + m + axis)
    shape = [5, 6, 7]
    shape[axis] = 2 * n
    x = sp.prune(tie_heavy(tuple(shape), np.float32, rng, zero_frac=0.5), m, n, axis=axis)
    x[(0,) * 3] = -0.0  # a kept signed zero or a padding one
    values, tags = sp.compress(x, m, n, axis=axis)
    want_vals, want_tags = reference_compress(x, m, n, axis)
    np.testing.assert_array_equal(bits(values), want_vals)
    assert tags.dtype == np.uint16 and values.dtype == x.dtype
    words = np.array([pack_ref(row) for row in want_tags.reshape(-1, want_tags.shape[-1])], dtype=np.uint16)
    np.testing.assert_array_equal(tags, words.reshape(want_tags.shape[:-1] + (-1,)))
    back = sp.decompress(values, tags, m, n, axis=axis)
    assert back.dtype == x.dtype and back.shape == x.shape
    # exact unless x[0,0,0]'s group was already full: then that -0 comes back as +0 (documented)
    expect = bits(x).copy()
    ax = axis % 3
    first_group = tuple(slice(0, n) if k == ax else 0 for k in range(3))
    if np.count_nonzero(bits(x)[first_group]) > m:
        expect[0, 0, 0] = 0
    np.testing.assert_array_equal(bits(back), expect)


def test_compress_hardware_shape():
    """A 512x128 4:16 stationary compresses to the hardware's 128x128 values and [128, 32] uint16 tags."""
    rng = np.random.default_rng(1)
    w = sp.prune(rng.standard_normal((512, 128)).astype(ml_dtypes.bfloat16), 4, 16)
    values, tags = sp.compress(w, 4, 16)
    assert values.shape == (128, 128) and tags.shape == (128, 32) and tags.dtype == np.uint16


def test_signed_zero_padding():
    x = np.array([-0.0, -0.0, 1.0, 0.0], np.float32)  # 3 non-+0 codes, 2 slots: one -0 must become +0
    v, t = sp.compress(x, 2, 4)
    assert bits(v).tolist() == [0x80000000, 0x3F800000] and t.tolist() == [0x20]
    assert bits(sp.decompress(v, t, 2, 4)).tolist() == [0x80000000, 0, 0x3F800000, 0]
    y = np.array([0.0, -0.0, 0.0, 0.0], np.float32)
    assert bits(sp.decompress(*sp.compress(y, 1, 4), 1, 4)).tolist() == bits(y).tolist()


@pytest.mark.parametrize("name", ["float8_e5m2", "float8_e4m3", "float8_e4m3fn", "bfloat16", "float16"])
def test_round_trip_every_code_exhaustive(name, path):
    """Every code of the format (NaNs, infs, -0, subnormals) survives compress/decompress, as floats and as codes."""
    fmt = emu.formats.get(name)
    codes = np.arange(1 << fmt.storage_bits, dtype=np.uint64).astype(fmt.code_dtype)
    x = np.zeros((codes.size * 2, 2), dtype=fmt.code_dtype)  # 1:2 along axis 0: code, then +0
    x[0::2, 0] = codes
    x[1::2, 1] = codes[::-1]
    for arr, kw in ((x, {"fmt": name}), (x.view(fmt.ml_dtype), {})):
        v, t = sp.compress(arr, 1, 2, **kw)
        assert v.dtype == arr.dtype
        back = sp.decompress(v, t, 1, 2)
        assert back.dtype == arr.dtype
        np.testing.assert_array_equal(bits(back), x)


def test_round_trip_float32_specials(path):
    specials = np.array([0x80000000, 0x7F800000, 0xFF800000, 0x7FC00001, 0xFFBFFFFF, 0x00000001, 0x807FFFFF,
                         0x7F7FFFFF, 0x3F800000], dtype=np.uint32)
    x = np.zeros((16, specials.size), np.uint32)
    x[np.arange(specials.size) % 16, np.arange(specials.size)] = specials
    for arr in (x, x.view(np.float32)):
        v, t = sp.compress(arr, 4, 16, fmt="float32" if arr.dtype == np.uint32 else None)
        np.testing.assert_array_equal(bits(sp.decompress(v, t, 4, 16)), x)


def test_decompress_rejects_bad_tags(path):
    v = np.ones((6, 4), np.float32)  # 4:12 along axis 0: two groups of 3 slots... use 2:4 with 3 groups
    good = sp.compress(sp.prune(np.ones((12, 4), np.float32), 2, 4), 2, 4)[1]
    assert good.shape == (6, 1)
    # group 2 of column 3: slots 4 and 5 name the same position
    bad = good.copy()
    bad[5, 0] = (bad[5, 0] & 0x0FFF) | ((int(bad[4, 0]) >> 12) << 12)
    with pytest.raises(sp.NotMNError, match=re.escape("group 2 along axis 0 (elements 8..11) at index [3] of the "
                                                      "other axes are invalid: a tag names the same position twice")):
        sp.decompress(v, bad, 2, 4)
    # position >= n (n=12, tag 13) in group 0 of column 1
    v12 = np.ones((4, 3), np.float32)
    t12 = sp.pack_tags(np.array([[0, 0, 0], [1, 13, 1], [2, 2, 2], [3, 3, 3]]))
    with pytest.raises(sp.NotMNError, match=r"group 0 along axis 0 \(elements 0..11\) at index \[1\].*>= n=12"):
        sp.decompress(v12, t12, 4, 12)
    with pytest.raises(DtypeError, match="uint16"):
        sp.decompress(v, good.astype(np.uint32), 2, 4)
    with pytest.raises(ShapeError, match=r"need tags of shape \(6, 1\)"):
        sp.decompress(v, np.zeros((6, 2), np.uint16), 2, 4)
    with pytest.raises(ShapeError, match="not a multiple of m=4"):
        sp.decompress(np.ones((6, 4), np.float32), good, 4, 8)


def test_decompress_accepts_any_tag_order():
    v = np.array([7.0, 5.0], np.float32)
    t = sp.pack_tags(np.array([3, 1]))  # not ascending
    assert sp.decompress(v, t, 2, 4).tolist() == [0.0, 5.0, 0.0, 7.0]


def test_pack_unpack_tags():
    rng = np.random.default_rng(2)
    for f in (1, 3, 4, 7, 8):
        t = rng.integers(0, 16, size=(3, f))
        words = sp.pack_tags(t)
        want = np.array([pack_ref(row) for row in t], dtype=np.uint16)
        np.testing.assert_array_equal(words, want)
        np.testing.assert_array_equal(sp.unpack_tags(words, f), t)
    with pytest.raises(ValueError, match="0..15"):
        sp.pack_tags(np.array([16]))


def test_compress_is_strict():
    x = np.array([[1.0, 1.0, 1.0, 0.0]], np.float32).T
    with pytest.raises(sp.NotMNError, match=r"compress: x is not 2:4 along axis 0: group 0 .* has 3 non-zeros"):
        sp.compress(x, 2, 4)


# ---- report -----------------------------------------------------------------------------------------------------
def test_report_against_direct_computation():
    rng = np.random.default_rng(4)
    w = rng.standard_normal((32, 8)).astype(np.float32)
    x = rng.standard_normal((32, 5))
    r = sp.report(w, 2, 4, moving=x)
    p = sp.prune(w, 2, 4).astype(np.float64)
    w64 = w.astype(np.float64)
    assert r.energy_kept == pytest.approx((p ** 2).sum() / (w64 ** 2).sum(), rel=1e-12)
    assert 0.5 <= r.energy_kept <= 1.0  # 2:4 keeps the larger half of every group
    d = p.T @ x - w64.T @ x
    assert r.matmul_rel_error == pytest.approx(np.linalg.norm(d) / np.linalg.norm(w64.T @ x), rel=1e-12)
    assert r.matmul_max_abs_error == pytest.approx(np.abs(d).max(), rel=1e-12)
    assert r.nonzeros_before == 256 and r.nonzeros_after == 128 and r.pattern == "2:4"
    assert "energy kept" in str(r) and "relative Frobenius" in str(r)
    assert sp.report(sp.prune(w, 2, 4), 2, 4, moving=x).matmul_rel_error == 0.0
    assert sp.report(np.zeros((4, 2), np.float32), 1, 2).energy_kept == 1.0
    with pytest.raises(ShapeError, match="first axis must be K=32"):
        sp.report(w, 2, 4, moving=np.ones((31, 2)))


@pytest.mark.parametrize("m,n", PATTERNS)
@pytest.mark.parametrize("B", [1, 3, 8, 40])
def test_compress_kernels_agree(m, n, B):
    """Both Numba compress kernels (narrow and wide inner axis) and the NumPy twin pick the same slots."""
    from emulator.numerics import _sparsity_kernels as k

    rng = np.random.default_rng(B * 1000 + n)
    x = tie_heavy((2, 4 * n, B), np.float32, rng, zero_frac=0.6)
    x = sp.prune(x, m, n, axis=1)
    keep = sp.mask(x, m, n, axis=1)
    x[keep & (rng.random(x.shape) < 0.3)] = -0.0
    x[~keep & (rng.random(x.shape) < 0.2)] = -0.0  # more signed zeros than free slots in some groups
    codes = bits(x)
    outs = []
    for kernel in (k._compress_codes_nb, k._compress_codes_wide_nb, k._compress_codes_np):
        values = np.empty((2, 4 * m, B), np.uint32)
        tags = np.empty((2, 4 * m, B), np.uint8)
        kernel(codes, np.uint32(0x7FFFFFFF), m, n, values, tags)
        outs.append((values, tags))
    for values, tags in outs[1:]:
        np.testing.assert_array_equal(values, outs[0][0])
        np.testing.assert_array_equal(tags, outs[0][1])
    want_vals, want_tags = reference_compress(x, m, n, 1)
    np.testing.assert_array_equal(outs[0][0], want_vals)
    np.testing.assert_array_equal(outs[0][1], want_tags)
