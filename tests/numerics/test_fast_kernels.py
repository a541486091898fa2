"""The uint32 arithmetic of the fast kernels and the branch-free fp8/fp4 encoder, against independent references.

* ``emulator.numerics._u32``: each operation against NumPy's own wrapping uint32 arithmetic;
* the uint32 cast kernels (``encode_f32_float`` for fp8/fp4, ``_encode_f32_fast`` for float16,
  ``_encode_f32_same_range`` for bf16/tf32: the Numba paths of ``emu.cast``) against the
  scalar reference of ``scalar_ref.py`` on fp32 patterns chosen to exercise what the 16-bit sweeps of test_cast.py
  cannot: every input binade with random low (sticky) bits and exact ties, under RTZ and saturation too;
* the MX kernel's branch-free element and scale loops, against the NumPy twin (written as float64 arithmetic and a
  separate encoder) on groups that mix every scale regime.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from numba import njit

import emulator as emu
from emulator.numerics import _u32
from scalar_ref import ref_encode

NARROW8 = ["float8_e5m2", "float8_e4m3", "float8_e4m3fn", "float4_e2m1fn"]


@njit(cache=False)
def _ops(a, b, out):
    for i in range(a.size):
        s = b[i] & 31
        out[0, i] = _u32.add(a[i], b[i])
        out[1, i] = _u32.sub(a[i], b[i])
        out[2, i] = _u32.band(a[i], b[i])
        out[3, i] = _u32.bor(a[i], b[i])
        out[4, i] = _u32.bxor(a[i], b[i])
        out[5, i] = _u32.shl(a[i], s)
        out[6, i] = _u32.shr(a[i], s)
        out[7, i] = _u32.u32(np.int64(a[i]) - np.int64(b[i]))  # a negative int64 wraps to uint32
        out[8, i] = _u32.sar(a[i], s)
        out[9, i] = _u32.umax(a[i], b[i])
        out[10, i] = _u32.bits_of(_u32.f32_of(a[i]))
        out[11, i] = _u32.fp32_pattern(np.uint16(a[i] & 0xFFFF))
        out[12, i] = _u32.fp32_pattern(a[i])


@njit(cache=False)
def _float_ops(x, y, out):
    for i in range(x.size):
        out[i] = _u32.f32_of(_u32.bits_of(x[i])) * y[i]


def test_u32_float_bitcasts_are_exact_views():
    """f32_of / bits_of are views of the same 32 bits (NaN payloads too), and a product through them is NumPy's."""
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2**32, 4096, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    y = np.exp2(rng.integers(-127, 128, x.size)).astype(np.float32)
    out = np.empty(x.size, np.float32)
    _float_ops(x, y, out)
    with np.errstate(all="ignore"):
        want = x * y
    fin = np.isfinite(want)
    np.testing.assert_array_equal(out.view(np.uint32)[fin], want.view(np.uint32)[fin])
    assert np.isnan(out[np.isnan(want)]).all()


def test_u32_operations_wrap_like_numpy_uint32():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2**32, 10_000, dtype=np.uint64).astype(np.uint32)
    b = rng.integers(0, 2**32, 10_000, dtype=np.uint64).astype(np.uint32)
    a[:4] = [0, 1, 0xFFFFFFFF, 0x80000000]
    b[:4] = [1, 0xFFFFFFFF, 0xFFFFFFFF, 31]
    out = np.empty((13, a.size), np.uint32)
    _ops(a, b, out)
    s = b & np.uint32(31)
    want = [a + b, a - b, a & b, a | b, a ^ b, a << s, a >> s, a - b, (a.view(np.int32) >> s.astype(np.int32)).view(
        np.uint32), np.maximum(a, b), a, (a & np.uint32(0xFFFF)) << np.uint32(16), a]
    for k, w in enumerate(want):
        np.testing.assert_array_equal(out[k], w, err_msg=f"operation {k}")


def _boundary_patterns(n_random: int, seed: int) -> np.ndarray:
    """fp32 patterns: every exponent field with random mantissas, exact ties and ties +- 1 ulp for 1..3 kept
    mantissa bits, specials and subnormals."""
    rng = np.random.default_rng(seed)
    ex = rng.integers(0, 256, n_random).astype(np.uint32)
    m = rng.integers(0, 1 << 23, n_random).astype(np.uint32)
    sign = rng.integers(0, 2, n_random).astype(np.uint32) << np.uint32(31)
    rand = sign | (ex << np.uint32(23)) | m
    ties = []
    for keep in (1, 2, 3):
        half = np.uint32(1 << (22 - keep))
        for e in range(100, 160):
            base = np.uint32(e << 23) | (rng.integers(0, 1 << keep, 8).astype(np.uint32) << np.uint32(23 - keep))
            ties += [base | half, (base | half) + np.uint32(1), (base | half) - np.uint32(1)]
    special = np.array([0, 0x80000000, 1, 0x807FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00001, 0x7F800001],
                       np.uint32)
    return np.concatenate([rand, np.concatenate(ties).astype(np.uint32), special])


@pytest.mark.parametrize("name", NARROW8 + ["float16", "bfloat16", "tfloat32"])
@pytest.mark.parametrize("rounding,saturate", [("rne", False), ("rtz", False), ("rne", True), ("rtz", True)])
def test_uint32_cast_kernels_match_scalar_reference_on_sticky_bits(name, rounding, saturate):
    """The fp8/fp4 kernel and the uint32 kernels of float16 and bf16/tf32, every input binade, ties, specials."""
    bits = _boundary_patterns(3000, seed=len(name) + 7 * saturate)
    fp4_nans = ("ml_dtypes", "zero") if name == "float4_e2m1fn" else ("ml_dtypes",)
    for fp4_nan in fp4_nans:
        with emu.settings(numba=True, fp4_nan=fp4_nan):
            got = emu.cast(bits.view(np.float32), name, rounding=rounding, saturate=saturate)
        for u, g in zip(bits.tolist(), got.tolist()):
            r = ref_encode(u, name, rounding, saturate, fp4_nan=fp4_nan)
            assert g == r, (name, rounding, saturate, fp4_nan, hex(u), hex(g), hex(r))


def _regime_tile(seed: int) -> np.ndarray:
    """[64, 256] float32 in groups of 8x4 / rows of 32 / columns of 32 whose amax spans every scale regime: normal,
    tiny (scale clamped at 2^-127), fp32 subnormal, zero, with elements from equal to amax down to far below it."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((64, 256)) * np.exp2(rng.integers(-30, 0, (64, 256)))
    band_exp = rng.choice([-140, -128, -120, -60, 0, 40, 120], size=(64, 1))
    x = (x * np.exp2(band_exp)).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = 0
    return x


@pytest.mark.parametrize("fmt", ["float8_e4m3fn", "float8_e5m2", "float4_e2m1fn"])
@pytest.mark.parametrize("convention", ["hw", "ocp"])
@pytest.mark.parametrize("rounding", ["rne", "rtz"])
def test_mx_kernel_matches_numpy_twin_in_every_scale_regime(fmt, convention, rounding):
    x = _regime_tile(hash((fmt, convention, rounding)) % 1000)
    for underflow in ("clamp", "nki_library"):
        outs = []
        for numba in (True, False):
            with emu.settings(numba=numba, mx_scale_underflow=underflow, mx_fp4_quantize_mx="allow"):
                outs.append([*emu.mx.quantize(x, fmt, convention=convention, rounding=rounding),
                             *emu.mx.quantize(x, fmt, axis=0, convention=convention, rounding=rounding),
                             *emu.mx.quantize(x, fmt, block_size=16, convention=convention, rounding=rounding),
                             *emu.mx.quantize_mx(x.astype(ml_dtypes.bfloat16), fmt, convention, rounding)])
        for k, (a, b) in enumerate(zip(*outs)):
            np.testing.assert_array_equal(a, b, err_msg=f"{fmt} {convention} {rounding} {underflow} output {k}")
