"""Every write into memory rounds once per the settings (issue 13 item 6): ``Tensor.write`` for every format,
both overflow modes and stochastic rounding, against the independent scalar reference of tests/numerics."""

from __future__ import annotations

import pathlib
import sys

import ml_dtypes
import numpy as np
import pytest

import emulator as emu
from emulator.engines.memory import Memory
from emulator.numerics import formats

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "numerics"))
from scalar_ref import ref_encode  # noqa: E402

FORMATS = ["bfloat16", "float16", "float8_e5m2", "float8_e4m3", "float8_e4m3fn", "float4_e2m1fn",
           "float8_e8m0fnu"]


def _values(name: str) -> np.ndarray:
    """Ordinary values, ties, subnormals, values just past the largest finite, huge values, inf and NaN."""
    fmt = formats.get(name)
    top = float(fmt.max_finite) if hasattr(fmt, "max_finite") else float(ml_dtypes.finfo(fmt.ml_dtype).max)
    rng = np.random.default_rng(7)
    xs = [0.0, -0.0, 1.0, -1.5, 3.1, 1e-3, -7e-6, top, -top, top * 1.03, top * 1.2, -top * 1.5, 1e30, np.inf,
          -np.inf, np.nan, 2.0 ** -130]
    xs += list(rng.standard_normal(200) * rng.choice([1e-4, 1.0, 30.0, 1e4], 200))
    return np.array(xs, np.float32)


def _codes(t) -> list[int]:
    data = t.read("probe")
    code = np.uint8 if data.dtype.itemsize == 1 else np.uint16
    return [int(c) for c in data.view(code)]


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("saturate", [False, True])
def test_write_rounds_like_the_reference(name, saturate):
    x = _values(name)
    mem = Memory()
    t = mem.hbm((x.size,), name, name="t")
    with emu.settings(saturate=saturate):
        t.write(x)
    want = [ref_encode(float(v), name, "rne", saturate) for v in x]
    got = _codes(t)
    bad = [(float(x[i]), hex(got[i]), hex(want[i])) for i in range(x.size) if got[i] != want[i]]
    assert not bad, bad[:5]


def test_float32_destination_rounds_float64_once():
    x = np.array([1.0 + 2.0 ** -24, 1.0 + 3 * 2.0 ** -25, 1e39, -1e-46, 3.4028235677973366e38], np.float64)
    mem = Memory()
    t = mem.sbuf((1, x.size), "float32")
    t.write(x.reshape(1, -1))
    want = x.astype(np.float32)  # NumPy's float64 -> float32 is one IEEE RNE rounding
    np.testing.assert_array_equal(t.read().view(np.uint32)[0], want.view(np.uint32))


def test_saturate_example_of_the_issue():
    mem = Memory()
    t = mem.sbuf((1, 1), "float8_e4m3fn")
    t.write(np.float32([[500.0]]))
    assert np.isnan(float(t.read().astype(np.float32)[0, 0]))
    with emu.settings(saturate=True):
        t.write(np.float32([[500.0]]))
    assert float(t.read().astype(np.float32)[0, 0]) == 448.0


@pytest.mark.parametrize("name", ["bfloat16", "float16", "float8_e5m2", "float8_e4m3fn", "float4_e2m1fn"])
def test_write_under_sr_picks_a_neighbour(name):
    rng = np.random.default_rng(8)
    top = float(ml_dtypes.finfo(formats.get(name).ml_dtype).max)
    x = (rng.uniform(-1, 1, 600) * top * 0.9).astype(np.float32)
    mem = Memory()
    t = mem.hbm((x.size,), name)
    with emu.settings(rounding="sr"):
        t.write(x)
    got = _codes(t)
    ml = formats.get(name).ml_dtype
    code = np.uint8 if np.dtype(ml).itemsize == 1 else np.uint16
    for v, g in zip(x.tolist(), got):
        down = ref_encode(v, name, "rtz")  # toward zero; the other neighbour is the next magnitude code
        exact = float(np.array([down], code).view(ml).astype(np.float64)[0]) == v
        assert g == down or (not exact and g == down + 1), (v, hex(g), hex(down))


def test_sr_probability_and_scope():
    x = np.full(20000, 1.0 + 2 ** -9, np.float32)  # a quarter of the way from 1 to the next bf16
    mem = Memory()
    t = mem.hbm((x.size,), "bfloat16")
    with emu.settings(rounding="sr"):
        t.write(x)
        up = (t.read().astype(np.float32) > 1).mean()
        assert 0.23 < up < 0.27  # P = 1/4; 20000 draws: > 8 standard deviations either side
        first = t.read().copy()
        t.write(x)  # a new SR site per write: fresh bits
        assert (t.read() != first).any()
    with emu.settings(rounding="sr", sr_scope="dma"):
        t.write(x)  # path engine not in scope: RNE
        assert (t.read().astype(np.float32) == 1.0).all()
        t.write(x, path="dma")
        assert (t.read().astype(np.float32) > 1).any()


def test_integer_destinations():
    mem = Memory()
    t = mem.sbuf((1, 6), "int8")
    t.write(np.array([[1.5, 2.5, -300.0, 300.0, np.nan, -0.4]], np.float32))
    np.testing.assert_array_equal(t.read(), [[2, 2, -128, 127, 0, 0]])  # RNE, clamp, NaN -> 0
    u = mem.sbuf((1, 2), "uint8")
    u.write(np.array([[257, -1]], np.int32))  # integers wrap like a register store
    np.testing.assert_array_equal(u.read(), [[1, 255]])
