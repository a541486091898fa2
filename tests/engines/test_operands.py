"""The engine write path: one rounding through cast() (or the ml_dtypes astype it is documented to equal), the
float -> integer rule, the settings that must reach it (saturate, SR) and the SR call-site key."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emulator as emu
from emulator.engines import operands
from emulator.errors import DtypeError
from emulator.numerics import formats

FORMATS = ["bfloat16", "float16", "float8_e4m3fn", "float8_e4m3", "float8_e5m2", "float4_e2m1fn", "float8_e8m0fnu"]


def _random_f32(seed, n=1 << 14):
    bits = np.random.default_rng(seed).integers(0, 2**32, size=n, dtype=np.uint64).astype(np.uint32)
    edges = np.array([0, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0x00000001, 0x437FFFFF,
                      0x43E00000, 0x47800000, 0x477FF000, 0x3F808000, 0x3F818000], np.uint32)
    return np.concatenate([bits, edges]).view(np.float32).reshape(1, -1)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("saturate", [False, True])
def test_write_equals_cast(fmt, saturate):
    f = formats.get(fmt)
    x = _random_f32(hash(fmt) % 1000)
    dst = np.empty(x.shape, f.ml_dtype)
    with emu.settings(saturate=saturate):
        operands.write(dst, x, "test")
        codes = emu.cast(x, f)
    assert (dst.view(f.code_dtype) == codes).all()


@settings(max_examples=50)
@given(st.lists(st.floats(width=32, allow_nan=True), min_size=1, max_size=20),
       st.sampled_from([np.int8, np.int16, np.int32, np.uint8, np.uint16, np.uint32]))
def test_float_to_int_rounds_to_nearest_even_and_saturates(vals, dt):
    x = np.array([vals], np.float32)
    dst = np.empty(x.shape, dt)
    operands.write(dst, x, "test")
    info = np.iinfo(dt)
    for got, v in zip(dst.ravel().tolist(), vals):
        if v != v:
            assert got == 0
        else:
            r = round(v) if abs(v) != float("inf") else v  # Python round() is round-half-even
            assert got == int(min(max(r, info.min), info.max))


def test_sr_uses_the_site_key():
    x = np.full((4, 256), 1.0 + 2**-8, np.float32)  # exactly half way between two bf16 values
    with emu.settings(rounding="sr", seed=7):
        a, b, c = (np.empty(x.shape, ml_dtypes.bfloat16) for _ in range(3))
        with operands.sr_site(1):
            operands.write(a, x, "t")
        with operands.sr_site(1):
            operands.write(b, x, "t")
        with operands.sr_site(2):
            operands.write(c, x, "t")
    assert (a.view(np.uint16) == b.view(np.uint16)).all()
    assert not (a.view(np.uint16) == c.view(np.uint16)).all()
    up = (a.astype(np.float32) > 1.0).mean()
    assert 0.4 < up < 0.6  # a tie rounds up half the time
    with emu.settings(rounding="sr", sr_scope="psum"):  # SR not in scope for engine writes: RNE (tie to even)
        operands.write(a, x, "t")
    assert (a.astype(np.float32) == 1.0).all()


def test_refused_dtypes():
    with pytest.raises(DtypeError, match="float64"):
        operands.f32(np.ones(3), "data", "t")
    with pytest.raises(DtypeError, match="not an NKI dtype"):
        operands.write(np.empty((1, 2), np.complex64), np.ones((1, 2), np.float32), "t")
