"""``out=`` of emu.cast (every rounding), cast_sr and emu.decode: the same codes and values as a fresh result, written
into the caller's array and returned; a wrong array is refused, naming the rule, before anything is written."""

import numpy as np
import pytest

import emulator as emu
from emulator.errors import ArgumentError, ArgumentTypeError, DtypeError, ShapeError

FORMATS = ["float8_e4m3fn", "float8_e5m2", "float4_e2m1fn", "bfloat16", "float16", "tfloat32", "float8_e8m0fnu"]


def _x(n=70_000):  # above the serial size: the threaded kernels write into out
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(n) * np.exp2(rng.integers(-20, 20, n))).astype(np.float32)
    x[:4] = [np.nan, -np.inf, -0.0, 3e38]
    return x.reshape(350, 200)


@pytest.mark.parametrize("rounding", ["rne", "rtz", "sr"])
@pytest.mark.parametrize("name", FORMATS)
def test_cast_into_out_equals_a_fresh_cast(name, rounding):
    x = _x()
    fmt = emu.formats.get(name)
    want = emu.cast(x, name, rounding=rounding, seed=3)
    out = np.full(x.shape, 0xAB, fmt.code_dtype)
    got = emu.cast(x, name, rounding=rounding, seed=3, out=out)
    assert got is out and np.array_equal(out, want)


def test_xorwow_sr_into_out():
    from emulator.numerics import stochastic

    x = _x()
    with emu.settings(sr_generator="xorwow"):  # a stateful stream: each call starts it afresh from seed 9
        stochastic._xorwow_streams.pop(9, None)
        want = emu.cast(x, "bfloat16", rounding="sr", seed=9)
        out = np.zeros(x.shape, np.uint16)
        stochastic._xorwow_streams.pop(9, None)
        assert stochastic.cast_sr(x, "bfloat16", seed=9, out=out) is out
    assert np.array_equal(out, want)


@pytest.mark.parametrize("name", FORMATS)
def test_decode_into_out_equals_a_fresh_decode(name):
    codes = emu.cast(_x(), name)
    want = emu.decode(codes, name)
    out = np.full(codes.shape, 7.0, np.float32)
    assert emu.decode(codes, name, out=out) is out
    assert np.array_equal(out.view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("bad,error,message", [
    (lambda x: x.tolist(), ArgumentTypeError, "out must be a NumPy array"),
    (lambda x: np.empty(x.shape, np.uint16), DtypeError, "out must be uint8, got uint16"),
    (lambda x: np.empty((x.shape[0], x.shape[1] + 1), np.uint8), ShapeError, r"out has shape \(350, 201\)"),
    (lambda x: np.empty((x.shape[1], x.shape[0]), np.uint8).T, ArgumentError, "C-contiguous"),
    (lambda x: x.view(np.uint8).reshape(-1)[:x.size].reshape(x.shape), ArgumentError, "overlaps the input"),
])
def test_a_wrong_out_is_refused_before_anything_is_written(bad, error, message):
    x = _x()
    out = bad(x)
    before = np.array(out, copy=True) if isinstance(out, np.ndarray) else None
    for rounding in ("rne", "sr"):
        with pytest.raises(error, match=message):
            emu.cast(x, "float8_e4m3fn", rounding=rounding, out=out)
    if before is not None:
        assert np.array_equal(np.asarray(out), before)
