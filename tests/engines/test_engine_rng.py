"""RNG instructions on an EngineRNG against an independent XORWOW written here from Marsaglia (2003), under the
default settings (word order x, y, z, w, v, d; Vector element j from generator j % 4; rows filled in order;
rand2 ``mul24`` mapping; dropout drops iff u < round(prob * 2^32))."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from emulator.engines.rng import EngineRNG, dropout, rand2, rand_get_state, rand_set_state, rng, set_rng_seed
from emulator.errors import DtypeError, EmulatorError, ShapeError

M = 0xFFFFFFFF


class Xorwow:
    def __init__(self, words):
        self.x, self.y, self.z, self.w, self.v, self.d = (int(v) for v in words)

    def next(self):
        t = self.x ^ (self.x >> 2)
        self.x, self.y, self.z, self.w = self.y, self.z, self.w, self.v
        self.v = (self.v ^ ((self.v << 4) & M)) ^ (t ^ ((t << 1) & M))
        self.d = (self.d + 362437) & M
        return (self.v + self.d) & M

    def words(self):
        return [self.x, self.y, self.z, self.w, self.v, self.d]


def _seeds(lanes, gens, seed=0):
    r = np.random.default_rng(seed)
    return r.integers(1, 2**32, size=(lanes, 6 * gens), dtype=np.uint64).astype(np.uint32)


def test_gpsimd_rng_matches_independent_xorwow_and_state_roundtrip():
    st = EngineRNG("gpsimd", lanes=4)
    tile = _seeds(4, 1)
    rand_set_state(tile, engine="gpsimd", state=st)
    out = rng(np.empty((3, 5), np.uint32), engine="gpsimd", state=st)
    gens = [Xorwow(tile[p]) for p in range(4)]
    for p in range(3):
        assert out[p].tolist() == [gens[p].next() for _ in range(5)]
    saved = rand_get_state(np.empty((4, 6), np.uint32), state=st)
    assert saved.tolist() == [g.words() for g in gens]  # lane 3 untouched, lanes 0..2 advanced by 5
    narrow = rng(np.empty((3, 2), np.int8), state=st)
    for p in range(3):
        assert narrow[p].view(np.uint8).tolist() == [gens[p].next() & 0xFF for _ in range(2)]  # low bits kept


def test_vector_rng_round_robin_over_four_generators():
    st = EngineRNG("vector", lanes=2)
    tile = _seeds(2, 4, seed=3)
    rand_set_state(tile, engine="vector", state=st)
    out = rng(np.empty((2, 7), np.uint32), state=st)
    for p in range(2):
        gens = [Xorwow(tile[p, 6 * g:6 * g + 6]) for g in range(4)]
        assert out[p].tolist() == [gens[j % 4].next() for j in range(7)]
        back = rand_get_state(np.empty((2, 24), np.uint32), engine="vector", state=st)[p]
        assert back.tolist() == sum((g.words() for g in gens), [])


def test_set_rng_seed_replays_and_differs_by_seed():
    st = EngineRNG("vector")
    set_rng_seed(np.array([[11]], np.uint32), state=st)
    a = rng(np.empty((128, 16), np.uint32), state=st)
    set_rng_seed(np.array([[11]], np.uint32), state=st)
    assert (rng(np.empty((128, 16), np.uint32), state=st) == a).all()
    set_rng_seed(np.array([[12]], np.int32), state=st)
    assert not (rng(np.empty((128, 16), np.uint32), state=st) == a).all()
    assert len({tuple(r) for r in a.tolist()}) == 128  # lanes are decorrelated


def test_rand2_mapping_and_range():
    st = EngineRNG("vector", lanes=3)
    tile = _seeds(3, 4, seed=5)
    rand_set_state(tile, engine="vector", state=st)
    lo = np.array([[-1.0], [0.0], [10.0]], np.float32)
    out = rand2(np.empty((3, 9), np.float32), lo, 20.0, state=st)
    for p in range(3):
        gens = [Xorwow(tile[p, 6 * g:6 * g + 6]) for g in range(4)]
        for j in range(9):
            u = gens[j % 4].next()
            unit = np.float32((u >> 8) * 2.0 ** -24)
            span = np.float32(np.float32(20.0) - lo[p, 0])
            want = min(np.float32(lo[p, 0] + np.float32(unit * span)), np.float32(20.0))
            assert out[p, j] == want
    bf = rand2(np.empty((3, 100), ml_dtypes.bfloat16), 0.0, 1.0, state=st).astype(np.float32)
    assert (bf >= 0).all() and (bf <= 1).all()
    with pytest.raises(EmulatorError, match="min must be < max"):
        rand2(np.empty((3, 4), np.float32), 1.0, 1.0, state=st)


def test_dropout_rule_and_extremes():
    st = EngineRNG("vector", lanes=2)
    tile = _seeds(2, 4, seed=9)
    rand_set_state(tile, engine="vector", state=st)
    data = np.arange(1, 21, dtype=np.float32).reshape(2, 10)
    prob = np.array([[0.3], [0.8]], np.float32)
    out = dropout(np.empty_like(data), data, prob, state=st)
    for p in range(2):
        gens = [Xorwow(tile[p, 6 * g:6 * g + 6]) for g in range(4)]
        thr = round(float(prob[p, 0]) * 2**32)
        want = [0.0 if gens[j % 4].next() < thr else float(data[p, j]) for j in range(10)]
        assert out[p].tolist() == want
    assert (dropout(np.empty_like(data), data, 1.0, state=st) == 0).all()
    assert (dropout(np.empty_like(data), data, 0.0, state=st) == data).all()
    with pytest.raises(DtypeError, match="must equal"):
        dropout(np.empty((2, 10), np.float16), data, 0.5, state=st)


def test_engine_rules():
    gp, vec = EngineRNG("gpsimd"), EngineRNG("vector")
    with pytest.raises(EmulatorError, match="runs on vector"):
        rand2(np.empty((1, 4), np.float32), 0.0, 1.0, state=gp)
    with pytest.raises(EmulatorError, match="runs on vector"):
        set_rng_seed(np.array([[1]], np.uint32), state=gp)
    with pytest.raises(EmulatorError, match="state holds"):
        rng(np.empty((1, 4), np.uint32), engine="gpsimd", state=vec)
    with pytest.raises(DtypeError, match="int8/16/32"):
        rng(np.empty((1, 4), np.float32), state=vec)
    with pytest.raises(ShapeError, match=r"\[P <= 128, 6\]"):
        rand_set_state(np.zeros((2, 24), np.uint32), engine="gpsimd", state=gp)
    with pytest.raises(EmulatorError, match="no random number generator"):
        EngineRNG("scalar")
    states = {"vector": vec, "gpsimd": gp}  # a core may pass its per-engine mapping
    assert rng(np.empty((1, 2), np.uint32), engine="gpsimd", state=states).shape == (1, 2)
