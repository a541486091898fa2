"""The float64 references and tolerance helpers the kernel tests rest on, checked against hand-worked cases and
ml_dtypes (an independent decoder)."""

import ml_dtypes
import numpy as np
import pytest

import emulator as emu
from kernels import reference as ref


def test_ulp_matches_nextafter_for_float32():
    x = np.array([1.0, 1.5, 3.0, 1e-3, 2.0 ** -126, 2.0 ** -140, 6e4], np.float32)
    want = np.nextafter(x, np.float32(np.inf)) - x
    assert np.array_equal(ref.ulp(x, np.float32), want.astype(np.float64))


@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, np.float16])
def test_ulp_of_narrow_formats(dtype):
    codes = np.arange(1, 0x7B00, 97, dtype=np.uint16)  # positive finite codes of both formats
    x = codes.view(dtype)
    nxt = (codes + 1).view(dtype)
    assert np.array_equal(ref.ulp(x.astype(np.float64), dtype), nxt.astype(np.float64) - x.astype(np.float64))


def test_fp4_decode_agrees_with_ml_dtypes():
    codes = np.arange(16, dtype=np.uint8)
    want = codes.view(ml_dtypes.float4_e2m1fn).astype(np.float64)
    assert np.array_equal(ref.fp4_decode(codes), want)


def test_mx_quantize_reference_by_hand():
    # one group of 8 partitions x 4 sub-elements (K = 128 -> Kp = 32; rows 0, 32, 64, 96 of partition 0 ...)
    x = np.zeros((128, 1))
    x[0, 0] = 3.0  # amax 3 -> floor(log2 3) = 1 -> X = 2^(1 - 7) for e4m3fn (emax 8)
    x[32, 0] = 0.01  # same group (partition 0, sub-element 1): 0.01 / 2^-6 = 0.64 -> e4m3fn 0.625 -> 0.009765625
    x[8, 0] = 5.0  # partition 8: the next group, its own scale
    q = ref.mx_quantize_reference(x, 8, ml_dtypes.float8_e4m3fn, "hw")
    assert q[0, 0] == 3.0 and q[32, 0] == 0.625 * 2.0 ** -6 and q[8, 0] == 5.0
    # ocp: X = 2^(1 - 8); 3.75 / X = 480 lies past e4m3fn's max 448 and is clipped to it; 0.01 / X = 1.28 -> 1.25
    x[0, 0] = 3.75
    q = ref.mx_quantize_reference(x, 8, ml_dtypes.float8_e4m3fn, "ocp")
    assert q[0, 0] == 448 * 2.0 ** -7 and q[32, 0] == 1.25 * 2.0 ** -7 and q[8, 0] == 5.0
    with emu.settings(mx_convention="ocp"):  # the default follows the setting
        assert ref.mx_quantize_reference(x, 8, ml_dtypes.float8_e4m3fn)[0, 0] == 3.5
    with emu.settings(mx_convention="hw"):
        assert ref.mx_quantize_reference(x, 8, ml_dtypes.float8_e4m3fn)[0, 0] == 3.75


def test_compare_counts_ulps_and_fails_outside_the_bound():
    want = np.array([1.0, 2.0])
    got = np.array([1.0 + 2.0 ** -23, 2.0], np.float32)
    c = ref.compare(got, want, np.zeros(2), np.float32)
    assert c.passed and c.max_ulp == 1.0
    got = np.array([1.0 + 2.0 ** -22, 2.0], np.float32)
    assert not ref.compare(got, want, np.zeros(2), np.float32).passed
    assert not ref.compare(np.array([np.nan, 2.0]), want, np.zeros(2), np.float32).passed


def test_cumsum_reference_bound_grows_with_the_prefix():
    _, bound = ref.cumsum_reference(np.ones((1, 4)))
    assert np.allclose(bound[0], ref.gamma(np.arange(1, 5)) * np.arange(1, 5))


def test_unit_roundoff_per_rounding_mode():
    assert ref.unit_roundoff(ml_dtypes.bfloat16) == 2.0 ** -8
    assert ref.unit_roundoff(ml_dtypes.bfloat16, "sr") == ref.unit_roundoff(ml_dtypes.bfloat16, "rtz") == 2.0 ** -7
    assert ref.unit_roundoff(np.float32) == ref.U
