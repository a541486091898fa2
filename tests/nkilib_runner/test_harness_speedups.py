"""emulator.nki.nkilib.harness_speedups: the bulk replacement of the harness's per-group MX data loop gives the same
numbers and leaves NumPy's global generator where the loop leaves it. References: NumPy's own scalar calls, and the
mini harness's per-group generator (tests/nkilib_runner/nkilib_fixture/test/integration/nkilib/utils)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

import emulator as emu
from emulator.nki.nkilib import harness_speedups as hs
from emulator.nki.nkilib import stand_ins

FIXTURE = Path(__file__).parent / "nkilib_fixture"


def _same_state(a, b) -> bool:
    return all(np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y for x, y in zip(a, b))


def _scalar_calls(groups):
    """What the harness's loop draws, by NumPy's own scalar calls."""
    out = []
    for _ in range(groups):
        out.append((np.random.randint(0, 7), np.random.randint(0, 3), np.random.choice([-1, 1]),
                    np.random.random()))
    return [np.array(col) for col in zip(*out)]


@pytest.mark.parametrize("numba", [True, False])
@pytest.mark.parametrize("seed,groups", [(0, 1), (1, 7), (2, 1000), (3, 5000)])
def test_bulk_draws_are_the_scalar_calls(numba, seed, groups):
    np.random.seed(seed)
    np.random.random(5)  # a generator part-way through its buffer
    want = _scalar_calls(groups)
    want_state = np.random.get_state()
    np.random.seed(seed)
    np.random.random(5)
    with emu.settings(numba=numba):
        got = hs.legacy_group_draws(groups)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    assert _same_state(np.random.get_state(), want_state)
    # redraws happen (the row offset's 7, the column's 3): the parse is exercised, not only the first word
    if groups >= 1000:
        assert got[0].max() == 6 and got[1].max() == 2 and set(got[2].tolist()) == {-1, 1}


def test_too_few_words_are_drawn_again():
    # a run of redraws longer than the first batch of words allows: the batch doubles, the result is the same
    np.random.seed(4)
    want = _scalar_calls(3)
    np.random.seed(4)
    with emu.settings(numba=False):
        words = hs._raw_words(40)
        np.random.seed(4)
        out = [np.empty(3, np.int64) for _ in range(5)]
        assert hs._parse_numpy(words[:6], 3, *out) == -1  # 3 groups need at least 15 words
        got = hs.legacy_group_draws(3)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


@pytest.fixture
def fixture_harness(monkeypatch):
    """The mini harness's tensor_generators module, imported as the runner's child imports it."""
    monkeypatch.syspath_prepend(str(FIXTURE))
    stand_ins.install()
    before = set(sys.modules)
    try:
        yield importlib.import_module("test.integration.nkilib.utils.tensor_generators")
    finally:
        for name in set(sys.modules) - before:
            if name == "test" or name.startswith("test."):
                del sys.modules[name]
        stand_ins.uninstall()


def test_only_the_published_function_is_replaced(fixture_harness):
    original = fixture_harness.generate_stabilized_mx_data
    assert hs.install({"m": fixture_harness}) == []  # not the published source: left alone
    assert fixture_harness.generate_stabilized_mx_data is original
    other = type(sys)("other")
    other.generate_stabilized_mx_data = original  # a test module that imported it by name
    changed = hs.install({"m": fixture_harness, "other": other}, published={"mini": hs.source_digest(original)})
    assert changed == ["m", "other"]
    fast = fixture_harness.generate_stabilized_mx_data
    assert fast is not original and other.generate_stabilized_mx_data is fast and fast.__wrapped__ is original
    assert hs.install({"m": fixture_harness}, published={"mini": hs.source_digest(original)}) == []  # done once


@pytest.mark.parametrize("fmt", ["float4_e2m1fn_x4", "float8_e4m3fn_x4", "float8_e5m2_x4"])
@pytest.mark.parametrize("shape,val_range", [((8, 4), 1.0), ((64, 96), 1.0), ((16, 256), 0.5), ((8, 8), 7.0),
                                             ((8, 8), 0)])
def test_replacement_matches_the_per_group_loop(fixture_harness, fmt, shape, val_range):
    import nki.language as nl

    original = fixture_harness.generate_stabilized_mx_data
    fast = hs.stabilized_mx_data(original)
    dtype = getattr(nl, fmt)
    np.random.seed(9)
    want = original(dtype, shape, val_range)
    want_state = np.random.get_state()
    np.random.seed(9)
    got = fast(dtype, shape, val_range)
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        assert g.dtype == w.dtype and g.shape == w.shape
        assert np.array_equal(g.view(np.uint8), w.view(np.uint8))
    assert _same_state(np.random.get_state(), want_state)
    if val_range:  # one element per group at the largest exponent, as the loop made it
        data = np.asarray(got[0]).reshape(shape[0] // 8, 8, shape[1] // 4, 4)
        assert np.all(np.abs(data).max(axis=(1, 3)) > 0)


def test_bad_shape_goes_to_the_harness_own_check(fixture_harness):
    import nki.language as nl

    fast = hs.stabilized_mx_data(fixture_harness.generate_stabilized_mx_data)
    with pytest.raises(AssertionError, match="not made of 8 x 4 groups"):
        fast(nl.float8_e4m3fn_x4, (12, 4))
