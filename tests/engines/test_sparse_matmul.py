"""nc_matmul_sparse: independent references (np.float32 k loop, exact fractions), the dense nc_matmul, specials."""

from __future__ import annotations

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emulator as emu
from emulator.errors import DtypeError, ShapeError
from emulator.numerics import sparsity as sp
from engine_refs import f32_of

PATTERNS = [(4, 16), (4, 12), (4, 8), (2, 8), (2, 4), (1, 4), (1, 2)]
BF16 = ml_dtypes.bfloat16


def kept_mask_ref(values_shape, tags, m, n):
    """[K, M] keep mask straight from the tag nibbles (tag of column c in word c // 4, bits 4*(c % 4))."""
    kc, mcols = values_shape
    keep = np.zeros((kc // m * n, mcols), dtype=bool)
    for s in range(kc):
        g = s // m
        for c in range(mcols):
            t = (int(tags[s, c // 4]) >> (4 * (c % 4))) & 0xF
            keep[g * n + t, c] = True
    return keep


def dense_ref(values, tags, m, n):
    """Decompressed stationary as float32, from the tag nibbles."""
    kc, mcols = values.shape
    dense = np.zeros((kc // m * n, mcols), dtype=np.float32)
    v32 = values.astype(np.float32)
    for s in range(kc):
        g = s // m
        for c in range(mcols):
            t = (int(tags[s, c // 4]) >> (4 * (c % 4))) & 0xF
            dense[g * n + t, c] = v32[s, c]
    return dense


def sequential_ref(values, tags, moving, m, n):
    """Sparse datapath, sequential model: acc = fp32(acc + a*b) over the kept k in ascending order, from +0.

    Products of bf16/fp16/fp8 values are exact in float32, so the np.float32 multiply is exact here."""
    keep = kept_mask_ref(values.shape, tags, m, n)
    dense = dense_ref(values, tags, m, n)
    mv = moving.astype(np.float32)
    acc = np.zeros((values.shape[1], moving.shape[1]), dtype=np.float32)
    for k in range(dense.shape[0]):
        prod = dense[k][:, None] * mv[k][None, :]
        acc = np.where(keep[k][:, None], acc + prod, acc).astype(np.float32)
    return acc


def exact_ref(values, tags, moving, m, n):
    dense = dense_ref(values, tags, m, n)
    mv = moving.astype(np.float32)
    out = np.zeros((dense.shape[1], mv.shape[1]), dtype=np.float32)
    for i in range(dense.shape[1]):
        for j in range(mv.shape[1]):
            total = sum(Fraction(float(dense[k, i])) * Fraction(float(mv[k, j])) for k in range(dense.shape[0]))
            out[i, j] = f32_of(total)
    return out


def make_case(m, n, kc, mcols, ncols, rng, dtype=BF16, mv_dtype=None):
    w = sp.prune(rng.standard_normal((kc // m * n, mcols)).astype(dtype), m, n)
    values, tags = sp.compress(w, m, n)
    x = rng.standard_normal((kc // m * n, ncols)).astype(mv_dtype or dtype)
    return w, values, tags, x


def same_value(a, b):
    """Equal values (+0 == -0), NaN where NaN."""
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    return bool(np.all((a32 == b32) | (np.isnan(a32) & np.isnan(b32))))


@pytest.fixture(params=["numba", "numpy"])
def path(request):
    with emu.settings(numba=request.param == "numba"):
        yield request.param


# ---- sequential (default) against the independent k loop, every pattern, up to 128 compressed partitions --------
@pytest.mark.parametrize("m,n", PATTERNS)
def test_sequential_matches_reference(m, n, path):
    rng = np.random.default_rng(100 * m + n)
    w, values, tags, x = make_case(m, n, 128, 20, 24, rng)
    got = emu.nc_matmul_sparse(values, tags, x, m, n)
    assert got.dtype == np.float32 and got.shape == (20, 24)
    np.testing.assert_array_equal(got, sequential_ref(values, tags, x, m, n))


@pytest.mark.parametrize("m,n", [(2, 4), (4, 16), (1, 2)])
def test_moving_as_an_sbuf_tile_kc_by_n_over_m(m, n):
    """A [Kc, n/m, N] moving tile holds logical row (n/m) p + t at partition p, slot t."""
    rng = np.random.default_rng(11)
    w, values, tags, x = make_case(m, n, 64, 12, 8, rng)
    tile = np.empty((64, n // m, 8), x.dtype)
    for p in range(64):
        for t in range(n // m):
            tile[p, t] = x[(n // m) * p + t]
    np.testing.assert_array_equal(emu.nc_matmul_sparse(values, tags, tile, m, n),
                                  sequential_ref(values, tags, x, m, n))


@pytest.mark.parametrize("m,n", [(2, 4), (4, 16), (1, 2)])
@pytest.mark.parametrize("dtype,mv_dtype", [(np.float16, np.float16), (ml_dtypes.float8_e4m3fn, BF16),
                                            (ml_dtypes.float8_e5m2, ml_dtypes.float8_e4m3fn),
                                            (ml_dtypes.float8_e4m3, ml_dtypes.float8_e5m2)])
def test_sequential_other_dtypes(m, n, dtype, mv_dtype):
    rng = np.random.default_rng(7)
    w, values, tags, x = make_case(m, n, 64, 16, 8, rng, dtype=dtype, mv_dtype=mv_dtype)
    np.testing.assert_array_equal(emu.nc_matmul_sparse(values, tags, x, m, n),
                                  sequential_ref(values, tags, x, m, n))


def test_float32_operands_short_mantissas():
    """fp32 x fp32 with 12-bit significands: the products are exact, so the float32 k loop is a reference."""
    rng = np.random.default_rng(8)
    w = sp.prune((rng.integers(-2048, 2048, (64, 8)) * 2.0 ** rng.integers(-20, 20, (64, 8))).astype(np.float32),
                 2, 4)
    x = (rng.integers(-2048, 2048, (64, 5)) * 2.0 ** rng.integers(-20, 20, (64, 5))).astype(np.float32)
    values, tags = sp.compress(w, 2, 4)
    np.testing.assert_array_equal(emu.nc_matmul_sparse(values, tags, x, 2, 4), sequential_ref(values, tags, x, 2, 4))


def test_exact_model_matches_fractions():
    rng = np.random.default_rng(9)
    w, values, tags, x = make_case(2, 8, 16, 6, 5, rng)
    x[3, :] = x[3, :] * BF16(2.0 ** 60)  # wide dynamic range: cancellation inside one sum
    with emu.settings(accumulation="exact"):
        got = emu.nc_matmul_sparse(values, tags, x, 2, 8)
    np.testing.assert_array_equal(got, exact_ref(values, tags, x, 2, 8))


# ---- bit-identical to the dense nc_matmul on the decompressed operand --------------------------------------------
@pytest.mark.parametrize("model", ["sequential", "exact", "pairwise", "blocked:4", "blocked:32"])
@pytest.mark.parametrize("m,n", [(2, 4), (4, 8), (1, 2), (4, 16)])
def test_identical_to_dense_nc_matmul(model, m, n):
    rng = np.random.default_rng(len(model) * 31 + n)
    w, values, tags, x = make_case(m, n, 128 // n * m, 32, 40, rng)  # logical K = 128: one dense instruction
    with emu.settings(accumulation=model):
        got = emu.nc_matmul_sparse(values, tags, x, m, n)
        want = emu.nc_matmul(w, x)
    assert got.dtype == want.dtype
    assert same_value(got, want)
    # the zero-sum sign is the only allowed difference
    diff = got.view(np.uint32) != want.view(np.uint32)
    assert np.all(got[diff] == 0)
    with emu.settings(accumulation=model):
        for psum_dtype in ("float32", "bfloat16"):
            first = emu.nc_matmul_sparse(values, tags, x, m, n, psum_dtype=psum_dtype)
            assert same_value(first, emu.nc_matmul(w, x, psum_dtype=psum_dtype))
            assert same_value(emu.nc_matmul_sparse(values, tags, x, m, n, psum=first.copy()),
                              emu.nc_matmul(w, x, psum=first.copy()))


@pytest.mark.parametrize("model", ["sequential", "exact", "pairwise", "blocked:4"])
def test_masked_path_identical_to_dense_on_clean_moving(model, path):
    """NaN/inf in rows every column prunes: the masked kernel runs; it equals the dense op with those rows zeroed."""
    rng = np.random.default_rng(21)
    w = np.zeros((64, 24), BF16)
    w[0::4] = (rng.uniform(0.5, 2.0, (16, 24)) * rng.choice([-1, 1], (16, 24))).astype(BF16)
    w[3::4] = (rng.uniform(0.5, 2.0, (16, 24)) * rng.choice([-1, 1], (16, 24))).astype(BF16)
    values, tags = sp.compress(w, 2, 4)
    x = rng.standard_normal((64, 16)).astype(BF16)
    x[1::4, ::2] = np.nan
    x[2::4, 1::3] = -np.inf
    x_clean = x.copy()
    x_clean[1::4] = 0
    x_clean[2::4] = 0
    with emu.settings(accumulation=model):
        got = emu.nc_matmul_sparse(values, tags, x, 2, 4)
        want = emu.nc_matmul(w, x_clean)
    assert np.isfinite(got).all() and same_value(got, want)


@pytest.mark.parametrize("psum_dtype", ["float32", "bfloat16"])
def test_psum_semantics_match_dense(psum_dtype):
    rng = np.random.default_rng(12)
    w, values, tags, x = make_case(2, 4, 64, 16, 32, rng)
    first = emu.nc_matmul_sparse(values, tags, x, 2, 4, psum_dtype=psum_dtype)
    assert first.dtype == np.dtype(psum_dtype if psum_dtype == "float32" else BF16)
    seq = sequential_ref(values, tags, x, 2, 4)
    np.testing.assert_array_equal(first, seq.astype(first.dtype))  # bf16: one RNE cast (ml_dtypes rounds RNE)
    target = first.copy()
    second = emu.nc_matmul_sparse(values, tags, x, 2, 4, psum=target)
    want = (first.astype(np.float32) + seq).astype(first.dtype)  # bf16(fp32(psum) + fp32(result))
    np.testing.assert_array_equal(second, want)
    assert second is target  # PSUM is updated in place, as nc_matmul does
    overwrite = emu.nc_matmul_sparse(values, tags, x, 2, 4, psum=first.copy(), accumulate=False)
    np.testing.assert_array_equal(overwrite, first)


# ---- what only the sparse datapath does ---------------------------------------------------------------------------
def test_nan_inf_in_pruned_rows_do_not_propagate():
    rng = np.random.default_rng(13)
    w = np.zeros((32, 8), BF16)
    w[0::4] = rng.standard_normal((8, 8)).astype(BF16)  # every group keeps its rows 0 and 2
    w[2::4] = rng.standard_normal((8, 8)).astype(BF16)
    w[w.astype(np.float32) == 0] = BF16(1.0)
    w[1::4] = 0
    w[3::4] = 0
    values, tags = sp.compress(w, 2, 4)
    x = rng.standard_normal((32, 6)).astype(BF16)
    k = 5
    keep = kept_mask_ref(values.shape, tags, 2, 4)
    assert not keep[k].any()
    x = x.copy()
    x[k, 0] = np.nan
    x[k, 1] = np.inf
    x[k, 2] = -np.inf
    got = emu.nc_matmul_sparse(values, tags, x, 2, 4)
    assert np.isfinite(got).all()
    x_clean = x.copy()
    x_clean[k] = 0
    np.testing.assert_array_equal(got, sequential_ref(values, tags, x_clean, 2, 4))
    dense = emu.nc_matmul(w, x)  # the dense emulation computes 0 x NaN = NaN
    assert np.isnan(dense[:, 0]).all() and np.isnan(dense[:, 1]).all()


def test_nan_reaches_only_the_columns_that_keep_its_row():
    w = np.zeros((8, 4), np.float32)
    w[[0, 1], 0] = [1.0, 2.0]     # column 0 keeps rows 0, 1
    w[[2, 3], 1] = [1.0, -1.0]    # column 1 keeps rows 2, 3
    w[[1, 3], 2] = [0.5, 0.5]     # column 2 keeps rows 1, 3
    w[[4, 6], 3] = [1.0, 1.0]     # column 3 keeps rows 4, 6 (and pads group 0 with zeros)
    values, tags = sp.compress(w, 2, 4)
    x = np.ones((8, 3), np.float32)
    x[1, 0] = np.nan
    got = emu.nc_matmul_sparse(values, tags, x, 2, 4)
    # column 3 pads group 0 with rows 0 and 1 (zeros): a padded slot is a kept position holding 0, so 0 x NaN there
    assert np.isnan(got[[0, 2, 3], 0]).all() and got[1, 0] == 0.0
    assert np.all(got[:, 1:] == (w.T @ np.ones((8, 2), np.float32)))


def test_hardware_maximum_4_16():
    """128 compressed partitions standing for 512 logical rows, 128 columns."""
    rng = np.random.default_rng(14)
    w, values, tags, x = make_case(4, 16, 128, 128, 16, rng)
    assert values.shape == (128, 128) and tags.shape == (128, 32) and x.shape == (512, 16)
    np.testing.assert_array_equal(emu.nc_matmul_sparse(values, tags, x, 4, 16),
                                  sequential_ref(values, tags, x, 4, 16))


@settings(max_examples=40)
@given(st.sampled_from(PATTERNS), st.integers(1, 8), st.integers(1, 9), st.integers(1, 7),
       st.sampled_from([BF16, np.float16, ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2]), st.integers(0, 2**32 - 1))
def test_hypothesis_shapes_and_dtypes(pattern, groups, mcols, ncols, dtype, seed):
    m, n = pattern
    rng = np.random.default_rng(seed)
    kc = min(groups * m, 128 // m * m)
    w, values, tags, x = make_case(m, n, kc, mcols, ncols, rng, dtype=dtype)
    np.testing.assert_array_equal(emu.nc_matmul_sparse(values, tags, x, m, n),
                                  sequential_ref(values, tags, x, m, n))


# ---- validation -------------------------------------------------------------------------------------------------
def test_validation_errors():
    rng = np.random.default_rng(15)
    w, values, tags, x = make_case(2, 4, 128, 16, 8, rng)
    big = np.zeros((130, 16), BF16)
    with pytest.raises(ShapeError, match="values has 130 partitions; the Tensor Engine takes at most 128"):
        emu.nc_matmul_sparse(big, np.zeros((130, 4), np.uint16), np.zeros((260, 8), BF16), 2, 4)
    with pytest.raises(ShapeError, match="free size 132"):
        emu.nc_matmul_sparse(np.zeros((8, 132), BF16), np.zeros((8, 33), np.uint16), np.zeros((16, 8), BF16), 2, 4)
    with pytest.raises(ShapeError, match="moving has 255 partitions; 128 compressed partitions of a 2:4 stationary "
                                         "stand for 256 logical rows"):
        emu.nc_matmul_sparse(values, tags, x[:255], 2, 4)
    with pytest.raises(ShapeError, match="not a multiple of m=4"):
        emu.nc_matmul_sparse(values[:6], tags[:6], x[:24], 4, 16)
    with pytest.raises(ValueError, match="3:7 is not supported"):
        emu.nc_matmul_sparse(values, tags, x, 3, 7)
    bad = tags.copy()
    bad[1, 0] = bad[0, 0]  # slots 0 and 1 of group 0 name the same rows
    with pytest.raises(sp.NotMNError, match="group 0"):
        emu.nc_matmul_sparse(values, bad, x, 2, 4)
    with pytest.raises(DtypeError):
        emu.nc_matmul_sparse(values, tags.astype(np.uint32), x, 2, 4)
    with pytest.raises(DtypeError):
        emu.nc_matmul_sparse(values, tags, x.astype(np.float32), 2, 4)  # fp32 only with fp32/tf32
    with pytest.raises(DtypeError):
        emu.nc_matmul_sparse(values.astype(ml_dtypes.float8_e4m3), tags, x.astype(ml_dtypes.float8_e4m3fn), 2, 4)
    with pytest.raises(ShapeError, match="2-D"):
        emu.nc_matmul_sparse(values[None], tags, x, 2, 4)
