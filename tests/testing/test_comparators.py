"""The comparators classify every kind of difference correctly and explain it (values written from the specs)."""

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from emulator.testing import assert_bitwise_equal, assert_close_to_exact, assert_within_ulps, compare, gamma, ulp

# (format, actual code, expected code, kind), each pair built by hand from the format's bit layout.
CASES = [
    ("float32", 0x00000000, 0x80000000, "signed_zero"),
    ("float32", 0x7FC00000, 0x7FC00001, "nan_payload"),
    ("float32", 0x7FC00000, 0xFFC00000, "nan_payload"),  # NaN sign
    ("float32", 0x7FC00000, 0x3F800000, "nan_vs_number"),
    ("float32", 0x7F800000, 0x7F7FFFFF, "inf_vs_finite"),
    ("float32", 0x7F800000, 0xFF800000, "inf_sign"),
    ("float32", 0x3F800000, 0x3F800001, "one_ulp"),
    ("float32", 0x3F800000, 0x3F800003, "multi_ulp"),
    ("float32", 0x80000001, 0x00000000, "one_ulp"),  # -min subnormal vs +0: neighbours
    ("float32", 0x80000001, 0x00000001, "sign_flip"),  # -min subnormal vs +min subnormal
    ("float32", 0x80000001, 0x00000002, "multi_ulp"),  # 3 ulps across zero
    ("float32", 0xC0400000, 0x40400000, "sign_flip"),  # -3 vs 3
    ("bfloat16", 0x3F80, 0x3F81, "one_ulp"),
    ("bfloat16", 0x007F, 0x0080, "one_ulp"),  # max subnormal vs min normal
    ("float8_e4m3fn", 0x7E, 0x7F, "nan_vs_number"),  # 448 vs NaN
    ("float8_e4m3fn", 0x7F, 0xFF, "nan_payload"),
    ("float8_e4m3fn", 0x00, 0x80, "signed_zero"),
    ("float8_e4m3fn", 0x38, 0x3A, "multi_ulp"),
    ("float8_e5m2", 0x7B, 0x7C, "inf_vs_finite"),
    ("float8_e5m2", 0x7D, 0x7E, "nan_payload"),
    ("float4_e2m1fn", 0x07, 0x06, "one_ulp"),
    ("float4_e2m1fn", 0x00, 0x08, "signed_zero"),
    ("float8_e8m0fnu", 0xFE, 0xFF, "nan_vs_number"),
    ("float8_e8m0fnu", 0x00, 0x01, "one_ulp"),
    ("tfloat32", 0x3F800000, 0x3F802000, "one_ulp"),  # tf32 steps are 2^13 container units
]


@pytest.mark.parametrize("fmt,a,e,kind", CASES)
def test_each_kind_is_classified(fmt, a, e, kind):
    dtype = {8: np.uint8, 16: np.uint16, 32: np.uint32}[8 if fmt.startswith(("float8", "float4")) else
                                                        16 if fmt == "bfloat16" else 32]
    result = compare(np.array([a], dtype), np.array([e], dtype), fmt)
    assert result.counts() == {kind: 1}
    with pytest.raises(AssertionError) as info:
        assert_bitwise_equal(np.array([a], dtype), np.array([e], dtype), fmt)
    msg = str(info.value)
    assert "1 of 1 elements differ" in msg and f"0x{a:0{2 * dtype().itemsize}x}" in msg


def test_report_counts_positions_and_values():
    exp = np.array([[1.0, 2.0, 3.0], [0.0, np.inf, 5.0]], np.float32)
    act = exp.copy()
    act[0, 1] = np.nextafter(np.float32(2.0), np.float32(3.0))  # 1 ulp
    act[1, 0] = -0.0
    act[1, 2] = 5.5  # 5.5 - 5.0 = 2^-1 = 2^20 ulps of 2^-21
    with pytest.raises(AssertionError) as info:
        assert_bitwise_equal(act, exp)
    msg = str(info.value)
    assert "3 of 6 elements differ" in msg
    assert "signed zero: 1" in msg and "1 ulp: 1" in msg and ">1 ulp: 1" in msg
    assert "[0, 1]" in msg and "[1, 0]" in msg and "[1, 2]" in msg
    assert "(1048576)" in msg  # the ulp distance of 5.5 vs 5.0 in float32
    assert "(5.5)" in msg and "(5)" in msg and "(-0)" in msg
    # rows come in index order
    assert msg.index("[0, 1]") < msg.index("[1, 0]") < msg.index("[1, 2]")


def test_max_rows_and_more_line():
    a = np.arange(20, dtype=np.float32)
    with pytest.raises(AssertionError) as info:
        assert_bitwise_equal(a + 1, a, max_rows=3)
    assert "... and 17 more" in str(info.value)


def test_equal_arrays_pass_in_every_representation():
    x = np.array([1.0, -0.0, np.inf, 0.5], np.float32)
    bf = x.astype(ml_dtypes.bfloat16)
    codes = bf.view(np.uint16)
    assert_bitwise_equal(bf, codes)  # format inferred from the typed side
    assert_bitwise_equal(codes, bf)
    assert_bitwise_equal(bf, x, fmt="bfloat16")  # exactly representable floats are converted
    assert_bitwise_equal(x, x)
    assert_bitwise_equal(x.astype(np.float64), x.astype(np.float64))
    assert_bitwise_equal(np.float32(2.0) * np.ones(3, np.float32), np.float32(2.0))  # scalar expected broadcasts


def test_misuse_is_reported():
    with pytest.raises(TypeError, match="fmt="):
        compare(np.uint8([1]), np.uint8([1]))
    with pytest.raises(AssertionError, match="shapes differ"):
        assert_bitwise_equal(np.zeros(3, np.float32), np.zeros(4, np.float32))
    with pytest.raises(AssertionError, match="dtypes differ"):
        assert_bitwise_equal(np.zeros(3, np.float32), np.zeros(3, np.float16))
    with pytest.raises(ValueError, match="not exactly representable in float8_e4m3fn"):
        compare(np.float32([0.3]), np.uint8([0]), "float8_e4m3fn")
    with pytest.raises(ValueError, match="outside"):
        compare(np.uint8([16]), np.uint8([0]), "float4_e2m1fn")


def test_within_ulps():
    one = np.float32(1.0)
    x = np.array([one, 2.0, np.nan, 0.0], np.float32)
    y = np.array([np.nextafter(np.nextafter(one, 2), 2), 2.0, np.nan, -0.0], np.float32)
    y_bits = y.view(np.uint32).copy()
    y_bits[2] |= 1  # another NaN payload
    y = y_bits.view(np.float32)
    assert_within_ulps(x, y, ulps=2)
    with pytest.raises(AssertionError, match="not within 1 ulp") as info:
        assert_within_ulps(x, y, ulps=1)
    assert ">1 ulp: 1" in str(info.value)
    with pytest.raises(AssertionError, match="NaN payload"):
        assert_within_ulps(x, y, ulps=2, nan_payload=True)
    with pytest.raises(AssertionError, match="signed zero"):
        assert_within_ulps(x, y, ulps=2, signed_zero=True)
    # infinities never pass as "close" to max finite
    with pytest.raises(AssertionError, match="inf vs finite"):
        assert_within_ulps(np.uint8([0x7C]), np.uint8([0x7B]), ulps=4, fmt="float8_e5m2")


def test_ulp_and_gamma_from_definitions():
    assert ulp(1.0, "bfloat16") == 2.0**-7
    assert ulp(1.99, "bfloat16") == 2.0**-7
    assert ulp(2.0, "bfloat16") == 2.0**-6
    assert ulp(0.0, "float8_e4m3fn") == 2.0**-9
    assert ulp(2.0**-8, "float8_e4m3fn") == 2.0**-9  # subnormal range: fixed spacing
    assert ulp(448.0, "float8_e4m3fn") == 32.0
    assert gamma(3, "float32") == float(Fraction(3, 2**24) / (1 - Fraction(3, 2**24)))
    assert gamma(2**8, "bfloat16") == float("inf")


def test_close_to_exact_passes_and_fails_at_the_bound():
    actual = np.float32([1.0, 2.0, 3.0])
    exact = np.array([1.0 + 2**-20, 2.0, 3.0 - 2**-20])
    assert_close_to_exact(actual, exact, bound=2**-20)
    with pytest.raises(AssertionError, match="2 of 3 elements outside"):
        assert_close_to_exact(actual, exact, bound=2**-21)
    # exact Fractions: the error 2^-60 sits exactly on the bound, which float64 cannot resolve near 1.0
    frac = np.array([Fraction(1) + Fraction(1, 2**60)], dtype=object)
    assert_close_to_exact(np.float32([1.0]), frac, bound=2.0**-60)
    with pytest.raises(AssertionError):
        assert_close_to_exact(np.float32([1.0]), frac, bound=2.0**-61)
    # specials
    assert_close_to_exact(np.float32([np.nan, np.inf]), np.array([np.nan, np.inf]), atol=1.0)
    with pytest.raises(AssertionError, match="worst at"):
        assert_close_to_exact(np.float32([np.inf]), np.array([1e30]), rtol=1.0)
    with pytest.raises(AssertionError):
        assert_close_to_exact(np.float32([1.0]), np.array([np.nan]), atol=1.0)
    # ulps of the actual's format
    bf = np.array([1.0], ml_dtypes.bfloat16)
    assert_close_to_exact(bf, [1.0 + 2**-8], ulps=0.5)
    with pytest.raises(AssertionError):
        assert_close_to_exact(bf, [1.0 + 2**-8], ulps=0.49)
    with pytest.raises(ValueError, match="bound"):
        assert_close_to_exact(bf, [1.0])


def test_close_to_exact_recursive_sum_bound():
    rng = np.random.default_rng(1)
    terms = rng.standard_normal(200).astype(np.float32)
    total = np.float32(0)
    for t in terms:
        total = np.float32(total + t)
    exact = sum(Fraction(float(t)) for t in terms)
    bound = gamma(len(terms) - 1) * float(np.abs(terms.astype(np.float64)).sum())
    assert_close_to_exact(np.float32([total]), np.array([exact], dtype=object), bound=bound)
