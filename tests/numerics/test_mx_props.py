"""Property tests: hypothesis over shapes, axes, block sizes and edge magnitudes against the scalar reference; the
Numba kernels against their NumPy twins under every MX setting; stochastic rounding of MX elements."""

from __future__ import annotations

import itertools
import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st
from hypothesis.extra import numpy as hnp

import emulator as emu
from test_mx_reference import ref_block

E4, E5, E2 = "float8_e4m3fn", "float8_e5m2", "float4_e2m1fn"
FMTS = [E4, E5, E2]

_F32 = np.finfo(np.float32)
EDGES = [0.0, -0.0, 1.0, -1.0, 1.5, 3.0, 2.0 ** -149, -(2.0 ** -149), 2.0 ** -133, 2.0 ** -126,
         float(np.nextafter(np.float32(2.0 ** -126), np.float32(0))), float(_F32.max), -float(_F32.max),
         float(np.nextafter(np.float32(1.0), np.float32(0))), float(np.nextafter(np.float32(2.0 ** 9), np.float32(0))),
         448.0, 464.0, 480.0, 57344.0, 61440.0, 6.0, 7.0, 2.0 ** -120, 2.0 ** 127, 2.0 ** -127, 2.0 ** -128]


def _finite_values():
    wide = st.builds(lambda m, e: float(np.float32(m * 2.0 ** e)), st.floats(-2, 2, width=32),
                     st.integers(-150, 126))
    return st.one_of(st.sampled_from(EDGES), wide, st.floats(width=32, allow_nan=False, allow_infinity=False))


def _blocks_strategy(allow_special: bool):
    vals = _finite_values()
    if allow_special:
        vals = st.one_of(vals, st.sampled_from([math.nan, math.inf, -math.inf]))
    return vals


@st.composite
def ocp_cases(draw, allow_special=True):
    ndim = draw(st.integers(1, 3))
    bs = draw(st.sampled_from([1, 2, 4, 8, 32]))
    axis = draw(st.integers(-ndim, ndim - 1))
    shape = list(draw(hnp.array_shapes(min_dims=ndim, max_dims=ndim, min_side=1, max_side=5)))
    shape[axis] = bs * draw(st.integers(1, 3))
    kind = draw(st.sampled_from(["mixed", "all_equal", "one_nonzero", "zeros"]))
    vals = _blocks_strategy(allow_special)
    if kind == "all_equal":
        x = np.full(shape, draw(vals), np.float32)
    else:
        x = np.array(draw(st.lists(vals, min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))),
                     np.float32).reshape(shape)
        if kind == "one_nonzero":
            keep = x.reshape(-1)[0]
            x = np.where(np.signbit(x), -0.0, 0.0).astype(np.float32)
            x.reshape(-1)[draw(st.integers(0, x.size - 1))] = keep
        elif kind == "zeros":
            x = np.where(np.signbit(x), -0.0, 0.0).astype(np.float32)
    return x, bs, axis


@hsettings(max_examples=150)
@given(case=ocp_cases(), fmt=st.sampled_from(FMTS), convention=st.sampled_from(["hw", "ocp"]),
       rounding=st.sampled_from(["rne", "rtz"]))
def test_ocp_quantize_matches_reference(case, fmt, convention, rounding):
    x, bs, axis = case
    codes, scales = emu.mx.quantize(x, fmt, block_size=bs, axis=axis, convention=convention, rounding=rounding)
    xm = np.moveaxis(x, axis, -1)
    cm = np.moveaxis(codes, axis, -1)
    sm = np.moveaxis(scales, axis, -1)
    n = xm.shape[-1]
    for idx in np.ndindex(xm.shape[:-1]):
        for b in range(n // bs):
            blk = [float(v) for v in xm[idx][b * bs:(b + 1) * bs]]
            want_scale, want = ref_block(blk, fmt, convention, rounding)
            assert int(sm[idx][b]) == want_scale
            assert cm[idx][b * bs:(b + 1) * bs].tolist() == want


@hsettings(max_examples=60)
@given(x=hnp.arrays(np.uint16, st.tuples(st.sampled_from([32, 64]), st.sampled_from([4, 8, 12]))),
       fmt=st.sampled_from([E4, E5]), convention=st.sampled_from(["hw", "ocp"]))
def test_quantize_mx_on_any_bf16_patterns_matches_reference(x, fmt, convention):
    src = x.view(ml_dtypes.bfloat16)
    x4, scale = emu.mx.quantize_mx(src, fmt, convention)
    codes = x4.view(np.uint8)
    vals = src.astype(np.float32)
    for g, j in itertools.product(range(x.shape[0] // 8), range(x.shape[1] // 4)):
        want_scale, want = ref_block([float(v) for v in vals[8 * g:8 * g + 8, 4 * j:4 * j + 4].reshape(-1)], fmt,
                                     convention)
        assert int(scale[g, j]) == want_scale
        assert codes[8 * g:8 * g + 8, 4 * j:4 * j + 4].reshape(-1).tolist() == want


# ---- Numba kernels vs NumPy twins -------------------------------------------------------------------------------------

def _wild(shape, seed):
    rng = np.random.default_rng(seed)
    with np.errstate(over="ignore"):
        x = (rng.standard_normal(shape) * np.exp2(rng.integers(-150, 128, shape))).astype(np.float32)
    x[rng.random(shape) < 0.002] = np.nan
    x[rng.random(shape) < 0.002] = -np.inf
    x[rng.random(shape) < 0.05] = -0.0
    x[:8, :4] = 2.0 ** -140  # a subnormal group
    return x


SETTING_GRID = [dict(mx_nonfinite=a, mx_scale_underflow=b) for a in ("nan", "propagate")
                for b in ("clamp", "nki_library")] + [dict(fp4_nan="zero")]


@pytest.mark.parametrize("kw", SETTING_GRID, ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()))
@pytest.mark.parametrize("fmt", FMTS)
def test_numba_and_numpy_twins_are_bit_identical(kw, fmt):
    x = _wild((128, 96), 3)
    xb = x.astype(ml_dtypes.bfloat16)
    for conv, rnd in itertools.product(("hw", "ocp"), ("rne", "rtz")):
        results = []
        for numba_on in (True, False):
            with emu.settings(numba=numba_on, mx_fp4_quantize_mx="allow", **kw):
                r = [*emu.mx.quantize_mx(xb, fmt, conv, rnd),
                     *emu.mx.quantize(x, fmt, block_size=8, axis=0, convention=conv, rounding=rnd),
                     *emu.mx.quantize_operand(x, fmt, convention=conv, rounding=rnd)]
                r.append(emu.mx.dequantize_mx(r[0], r[1], fmt))
                r.append(emu.mx.dequantize(r[2], r[3], fmt, block_size=8, axis=0, dtype=np.float64))
                results.append(r)
        for a, b in zip(*results):
            assert a.dtype == b.dtype and np.array_equal(a.view(np.uint8), b.view(np.uint8))


@pytest.mark.parametrize("mode", ["nan", "clip", "inf"])
def test_dequantize_twins_agree_on_every_scale_code(mode):
    codes = np.tile(np.arange(256, dtype=np.uint8), 256).reshape(256, 256)
    scales = np.tile(np.arange(256, dtype=np.uint8), 8).reshape(256, 8)
    outs = []
    for numba_on in (True, False):
        with emu.settings(numba=numba_on, mx_scale_ff=mode):
            outs.append(emu.mx.dequantize(codes, scales, E5))
    assert np.array_equal(outs[0].view(np.uint32), outs[1].view(np.uint32))


# ---- stochastic rounding --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("convention", ["hw", "ocp"])
def test_sr_elements_are_a_neighbour_of_the_exact_quotient(fmt, convention):
    x = _wild((64, 64), 8)
    x[~np.isfinite(x)] = 1.0
    sr = emu.mx.quantize(x, fmt, convention=convention, rounding="sr", seed=5)
    rtz = emu.mx.quantize(x, fmt, convention=convention, rounding="rtz")
    assert (sr[1] == rtz[1]).all()  # the scale does not depend on the element rounding
    scale = np.repeat(np.ldexp(1.0, rtz[1].astype(np.int64) - 127), 32, axis=1)
    q = x.astype(np.float64) / scale
    f = emu.formats.get(fmt)
    lo = emu.decode(rtz[0], fmt).astype(np.float64)
    got = emu.decode(sr[0], fmt).astype(np.float64)
    exact = lo == (np.clip(q, -f.max_finite, f.max_finite) if convention == "ocp" else q)
    assert (got[exact] == lo[exact]).all()
    away = np.abs(got) >= np.abs(lo)  # SR moves away from zero by at most one code, never toward it
    assert away.all()
    up_codes = sr[0] != rtz[0]
    assert (np.abs(sr[0][up_codes].astype(int) - rtz[0][up_codes].astype(int)) == 1).all()
    assert up_codes.any() and (~up_codes & ~exact).any()


def test_sr_is_reproducible_per_seed_and_site_and_follows_sr_scope():
    x = np.random.default_rng(2).standard_normal((64, 32)).astype(ml_dtypes.bfloat16)
    a = emu.mx.quantize_mx(x, E4, rounding="sr", seed=1)
    assert (a[0] == emu.mx.quantize_mx(x, E4, rounding="sr", seed=1)[0]).all()
    assert (a[0] != emu.mx.quantize_mx(x, E4, rounding="sr", seed=2)[0]).any()
    assert (a[0] != emu.mx.quantize_mx(x, E4, rounding="sr", seed=1, site=9)[0]).any()
    rne = emu.mx.quantize_mx(x, E4)
    with emu.settings(rounding="sr", seed=1, sr_scope="engine,psum"):
        assert (emu.mx.quantize_mx(x, E4)[0] == rne[0]).all()  # mx is not in sr_scope: RNE
    with emu.settings(rounding="sr", seed=1):
        assert (emu.mx.quantize_mx(x, E4)[0] == a[0]).all()


@pytest.mark.parametrize("convention, offset", [("hw", 14), ("ocp", 15)])
def test_sr_keeps_nan_groups(convention, offset):
    x = np.ones((32, 4), np.float32)
    x[3, 1] = np.nan
    x4, s = emu.mx.quantize_mx(x.astype(ml_dtypes.bfloat16), E5, convention, rounding="sr", seed=3)
    assert int(s[0, 0]) == 255 and (x4[:8].view(np.uint8) == 0x7E).all()
    # 1.0: X = 2^-offset, data 2^offset, whose e5m2 code is the biased exponent (offset + 15) << 2
    assert (s[1:] == 0 - offset + 127).all() and (x4[8:].view(np.uint8) == (offset + 15) << 2).all()


@pytest.mark.parametrize("fmt", FMTS)
def test_sr_numba_and_numpy_paths_agree(fmt):
    x = _wild((64, 64), 12)
    outs = []
    for numba_on in (True, False):
        with emu.settings(numba=numba_on, mx_fp4_quantize_mx="allow"):
            outs.append([*emu.mx.quantize(x, fmt, rounding="sr", seed=4, site=2),
                         *emu.mx.quantize_mx(x.astype(ml_dtypes.bfloat16), fmt, rounding="sr", seed=4)])
    for a, b in zip(*outs):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("fmt", [E4, E2])
def test_threaded_and_serial_kernels_agree(fmt, monkeypatch):
    """Small arrays run a serial build of each kernel, big ones the threaded build: both must give the same bits."""
    from emulator.numerics import _mx_kernels

    x = _wild((256, 128), 21)
    results = []
    for limit in (0, 1 << 40):  # everything threaded, then everything serial
        monkeypatch.setattr(_mx_kernels, "SERIAL_BELOW", limit)
        with emu.settings(mx_fp4_quantize_mx="allow"):
            r = [*emu.mx.quantize_mx(x.astype(ml_dtypes.bfloat16), fmt), *emu.mx.quantize(x, fmt, block_size=16),
                 *emu.mx.quantize_operand(x, fmt, rounding="sr", seed=1)]
            r.append(emu.mx.dequantize_mx(r[0], r[1], fmt))
        results.append(r)
    for a, b in zip(*results):
        assert np.array_equal(a.view(np.uint8), b.view(np.uint8))
