"""NKI random number generators: XORWOW checked against the recurrence written out here in plain Python."""

from __future__ import annotations

import math

import numpy as np
import pytest

import emulator as emu
from emulator.errors import ShapeError
from emulator.numerics import rng, stochastic

M32 = 0xFFFFFFFF


@pytest.fixture(params=[True, False], ids=["numba", "numpy"])
def path(request):
    with emu.settings(numba=request.param):
        yield request.param


def py_xorwow(state):
    """Marsaglia (2003) xorwow / cuRAND curand(): returns (new_state, output); state = (x, y, z, w, v, d)."""
    x, y, z, w, v, d = state
    t = x ^ (x >> 2)
    x, y, z, w = y, z, w, v
    v = (v ^ ((v << 4) & M32)) ^ (t ^ ((t << 1) & M32))
    d = (d + 362437) & M32
    return (x, y, z, w, v, d), (v + d) & M32


def py_stream(state, count):
    out = []
    for _ in range(count):
        state, o = py_xorwow(state)
        out.append(o)
    return state, out


def test_marsaglia_seed_sequence(path):
    _, want = py_stream(rng.MARSAGLIA_SEED, 1000)
    s = np.array([rng.MARSAGLIA_SEED], np.uint32)
    got = rng.rng(s, (1, 1000))
    assert got.ravel().tolist() == want
    # xorwow_next continues the same stream
    _, more = py_stream(tuple(int(v) for v in rng.MARSAGLIA_SEED), 1003)
    assert int(rng.xorwow_next(s)[0]) == more[1000]


def test_curand_default_seed_stream(path):
    """curand_init(seed=0, subsequence 0, offset 0) state from cuRAND's seed scramble, computed here."""
    t0 = (1099087573 * (0 ^ 0xAAD26B49)) & M32
    t1 = (2591861531 * (0 ^ 0xF7DCEFDD)) & M32
    st0 = ((123456789 + t0) & M32, 362436069 ^ t0, (521288629 + t1) & M32, 88675123 ^ t1, (5783321 + t0) & M32,
           (6615241 + t1 + t0) & M32)
    with emu.settings(rng_seed_expansion="curand_lane_offset"):
        s = rng.set_rng_seed(0, lanes=3, engine="gpsimd")
    for lane in range(3):
        assert tuple(int(v) for v in s[lane]) == tuple((w + lane * 0x9E3779) & M32 for w in st0)
    _, want = py_stream(st0, 50)
    assert rng.rng(s[:1], (1, 50)).ravel().tolist() == want


def test_word_order_setting(path):
    x, y, z, w, v, d = rng.MARSAGLIA_SEED
    _, want = py_stream(rng.MARSAGLIA_SEED, 20)
    with emu.settings(rng_word_order="dxyzwv"):
        s = np.array([[d, x, y, z, w, v]], np.uint32)
        assert rng.rng(s, (1, 20)).ravel().tolist() == want
        assert int(s[0, 0]) == (d + 20 * 362437) & M32  # the Weyl counter sits first


@pytest.mark.parametrize("interleave", ["round_robin", "blocked"])
def test_vector_interleave(path, interleave):
    s = rng.set_rng_seed(42, lanes=3, engine="vector")
    gens = [[tuple(int(v) for v in s[p, g]) for g in range(4)] for p in range(3)]
    cols = 11
    with emu.settings(rng_vector_interleave=interleave):
        got = rng.rng(s, (3, cols))
    block = math.ceil(cols / 4)
    for p in range(3):
        streams = [py_stream(gens[p][g], cols)[1] for g in range(4)]
        for j in range(cols):
            g, step = (j % 4, j // 4) if interleave == "round_robin" else (j // block, j % block)
            assert int(got[p, j]) == streams[g][step], (p, j)
    # each generator advanced once per element it produced
    for p in range(3):
        for g in range(4):
            produced = len([j for j in range(cols) if (j % 4 if interleave == "round_robin" else j // block) == g])
            assert tuple(int(v) for v in s[p, g]) == py_stream(gens[p][g], produced)[0]


def test_save_restore_round_trip(path):
    for engine, width in (("gpsimd", 6), ("vector", 24)):
        s = rng.set_rng_seed(9, lanes=16, engine=engine)
        rng.rng(s, (16, 5))
        tile = rng.rand_get_state(s)
        assert tile.shape == (16, width) and tile.dtype == np.uint32
        a = rng.rng(s, (16, 33))
        restored = rng.rand_set_state(tile, engine)
        assert (rng.rand_get_state(restored) == tile).all()
        assert (rng.rng(restored, (16, 33)) == a).all()
        assert (restored == s).all()


def test_lanes_are_independent(path):
    s = rng.set_rng_seed(3, lanes=4, engine="gpsimd")
    lane1 = s[1].copy()
    rng.rng(s, (1, 100))  # only partition 0 drawn: lane 1 untouched
    assert (s[1] == lane1).all()
    same = np.repeat(s[:1], 4, axis=0)  # every lane the same state -> the same stream
    out = rng.rng(same, (4, 64))
    assert (out == out[0]).all()
    fresh = rng.set_rng_seed(3, lanes=128, engine="gpsimd")
    bits = rng.rng(fresh, (128, 256)).astype(np.float64)
    corr = np.corrcoef(bits)
    off = corr[~np.eye(128, dtype=bool)]
    assert np.abs(off).max() < 6 / math.sqrt(256)


def test_keyed_seed_expansion(path):
    s = rng.set_rng_seed(77, lanes=2, engine="vector")
    words = stochastic.keyed_bits(77, stochastic.site_id("set_rng_seed"), 48, 32)
    assert (s.reshape(-1) == words).all()
    assert not (rng.set_rng_seed(78, lanes=2) == s).all()
    assert (rng.set_rng_seed(77 + 2 ** 32, lanes=2) == s).all()  # one 32-bit seed value


def test_rng_narrow_dtypes_keep_low_bits(path):
    s = rng.set_rng_seed(1, lanes=2, engine="gpsimd")
    saved = s.copy()
    full = rng.rng(s, (2, 40))
    for dt in (np.uint8, np.int8, np.uint16, np.int16, np.int32):
        s[...] = saved
        got = rng.rng(s, (2, 40), dt)
        assert got.dtype == dt
        bits = np.dtype(dt).itemsize * 8
        assert ((got.astype(np.int64) & ((1 << bits) - 1)) == (full.astype(np.int64) & ((1 << bits) - 1))).all()


def test_unit_float_mappings():
    u = np.array([0, 1, 255, 256, 2 ** 31, M32], np.uint32)
    assert rng.unit_float(u, "mul24").tolist() == [(int(v) >> 8) * 2.0 ** -24 for v in u]
    assert rng.unit_float(u, "mantissa23").tolist() == [(int(v) >> 9) * 2.0 ** -23 for v in u]
    assert rng.unit_float(u, "mul32")[-1] == 1.0  # documented: can round up to 1


def test_rand2_range_and_uniformity(path):
    s = rng.set_rng_seed(0, lanes=4)
    lo = np.array([[-1.0], [0.0], [10.0], [-1e-3]], np.float32)
    hi = np.array([[1.0], [1.0], [11.0], [1e-3]], np.float32)
    v = rng.rand2(s, (4, 20000), lo, hi)
    assert v.dtype == np.float32 and ((v >= lo) & (v <= hi)).all()
    means = v.mean(axis=1)
    sd = (hi - lo).ravel() / math.sqrt(12 * 20000)
    assert (np.abs(means - ((lo + hi) / 2).ravel()) < 5 * sd).all()


def test_rand2_mapping_reference(path):
    s = rng.set_rng_seed(5, lanes=2)
    words = rng.rng(s.copy(), (2, 50))
    v = rng.rand2(s, (2, 50), -2.0, 3.0)
    want = np.float32(-2.0) + ((words >> 8).astype(np.float32) * np.float32(2.0 ** -24)) * np.float32(5.0)
    assert (v == np.minimum(want, np.float32(3.0))).all()


def test_rand2_dtypes(path):
    s = rng.set_rng_seed(5, lanes=2)
    for dt in ("bfloat16", "float8_e4m3fn", "float16", "tfloat32"):
        v = rng.rand2(s, (2, 100), 0.0, 4.0, dt)
        assert (v.astype(np.float32) >= 0).all() and (v.astype(np.float32) <= 4).all()
    ints = rng.rand2(s, (2, 1000), 0.0, 5.0, np.int8)
    assert ints.dtype == np.int8 and set(np.unique(ints).tolist()) <= set(range(6))


def test_dropout(path):
    s = rng.set_rng_seed(2, lanes=2)
    data = np.arange(1, 20001, dtype=np.float32).reshape(2, 10000)
    assert (rng.dropout(s, data, 0.0) == data).all()
    assert (rng.dropout(s, data, 1.0) == 0).all()
    prob = np.array([[0.1], [0.7]], np.float32)
    saved = s.copy()
    out = rng.dropout(s, data, prob)
    kept = out != 0
    assert ((out == data) | ~kept).all()  # no rescaling
    for p in range(2):
        rate = 1 - kept[p].mean()
        assert abs(rate - prob[p, 0]) < 5 * math.sqrt(prob[p, 0] * (1 - prob[p, 0]) / 10000)
    words = rng.rng(saved, (2, 10000))
    thr = np.rint(prob.astype(np.float64) * 2 ** 32)
    assert ((words < thr) == ~kept).all()


def test_dropout_preserves_dtype():
    import ml_dtypes

    s = rng.set_rng_seed(2, lanes=1)
    x = np.ones((1, 64), ml_dtypes.bfloat16)
    out = rng.dropout(s, x, 0.5)
    assert out.dtype == x.dtype and set(out.astype(np.float32).ravel().tolist()) <= {0.0, 1.0}


def test_nl_rand_and_random_seed():
    rng.random_seed(11)
    a = rng.rand((128, 16))
    rng.random_seed(11)
    b = rng.rand((128, 16))
    assert (a == b).all() and ((a >= 0) & (a < 1)).all()
    assert not (rng.rand((128, 16)) == a).all()  # the engine state advanced


def test_errors():
    s = rng.set_rng_seed(0, lanes=2, engine="gpsimd")
    with pytest.raises(ShapeError):
        rng.rng(s, (3, 4))
    with pytest.raises(ValueError, match="Vector"):
        rng.rand2(s, (2, 4), 0.0, 1.0)
    v = rng.set_rng_seed(0, lanes=2)
    with pytest.raises(ValueError, match="min must be < max"):
        rng.rand2(v, (2, 4), 1.0, 1.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rng.dropout(v, np.ones((2, 3), np.float32), 1.5)
    with pytest.raises(TypeError):
        rng.rng(s.astype(np.int64), (2, 2))
    with pytest.raises(ShapeError):
        rng.rand_set_state(np.zeros((2, 7), np.uint32))
    with pytest.raises(TypeError):
        rng.rng(s, (2, 2), np.float32)
    with pytest.raises(ValueError):
        rng.set_rng_seed(1, engine="tensor")


def test_dropout_uniform_rule_and_rand_mappings(path):
    s = rng.set_rng_seed(4, lanes=2)
    saved = s.copy()
    data = np.ones((2, 5000), np.float32)
    with emu.settings(dropout_rule="uniform_lt", rand_mapping="mantissa23"):
        out = rng.dropout(s, data, 0.3)
    words = rng.rng(saved.copy(), (2, 5000))
    unit = ((words >> 9).astype(np.float64) * 2.0 ** -23).astype(np.float32)
    assert ((out == 0) == (unit < np.float32(0.3))).all()
    for mapping in ("mul32", "mantissa23"):
        with emu.settings(rand_mapping=mapping):
            v = rng.rand2(saved.copy(), (2, 5000), 2.0, 3.0)
        assert ((v >= 2) & (v <= 3)).all() and abs(v.mean() - 2.5) < 0.02
