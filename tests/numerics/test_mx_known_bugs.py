"""Each known bug of other MX implementations (numerics-references.md section 8, the golden notes of
trainium3-datapath.md section 9.2) gets a test showing what this implementation does instead.

Expected values are derived by hand from the MX definitions in the comments, not from running the code.
"""

from __future__ import annotations

import math
import struct

import ml_dtypes
import numpy as np
import pytest

import emulator as emu
from test_mx_reference import ref_block

E4, E5, E2 = "float8_e4m3fn", "float8_e5m2", "float4_e2m1fn"
BF16 = ml_dtypes.bfloat16


def f32(bits: int) -> np.float32:
    return np.float32(struct.unpack("<f", struct.pack("<I", bits))[0])


def group(values, dtype=BF16) -> np.ndarray:
    """A [32, 4] quantize_mx source whose first 8x4 group holds ``values`` (padded with zeros)."""
    src = np.zeros((32, 4), np.float32)
    flat = np.zeros(32, np.float32)
    flat[:len(values)] = values
    src[:8] = flat.reshape(8, 4)
    return src.astype(dtype)


def qmx(values, fmt=E4, convention=None, **kw):
    x4, scale = emu.mx.quantize_mx(group(values), fmt, convention, **kw)
    codes = x4.view(np.uint8) if fmt != E2 else emu.unpack_x4(x4, fmt)
    return int(scale[0, 0]), codes[:8].reshape(-1)


@pytest.mark.parametrize("fmt, golden_code", [(E4, 248), (E5, 241)])
def test_zero_group_scale_is_code_0_not_a_uint8_wraparound(fmt, golden_code):
    # golden: uint8(0) - Emax wraps to 256 - Emax; the ISA says 2^-127, i.e. code 0, and zero data
    scale, codes = qmx([0.0] * 32, fmt)
    assert scale == 0 and scale != golden_code
    assert (codes == 0).all()


def test_zero_group_keeps_the_signs_of_its_zeros():
    scale, codes = qmx([-0.0, 0.0, -0.0], E4)
    assert scale == 0 and codes[:3].tolist() == [0x80, 0x00, 0x80]


def test_zero_ocp_block_scale_is_not_nan():
    # intel/auto-round #1908: 0/0 gave NaN scales for all-zero blocks
    codes, scales = emu.mx.quantize(np.zeros((2, 32), np.float32), E2)
    assert (scales == 0).all() and (codes == 0).all()


def test_tiny_amax_is_not_scale_255_and_data_survive():
    # golden: e4m3fn with amax = 2^-120 gives code 255 (the E8M0 NaN) and flushes the data.
    # hw: floor(log2) = -120, X = 2^(-120-7) = 2^-127 exactly: code 0, data 2^-120 / 2^-127 = 128 (0x70)
    scale, codes = qmx([2.0 ** -120], E4, "hw")
    assert scale == 0 and int(codes[0]) == 0x70
    # ocp: 2^(-120-8) underflows, clamps to 2^-127: data is 128 too
    scale, codes = qmx([2.0 ** -120], E4, "ocp")
    assert scale == 0 and int(codes[0]) == 0x70


def test_bf16_subnormal_amax_uses_the_true_floor_log2():
    # bf16 subnormal 2^-130 (pattern 0x0010): the raw exponent field would say -127.
    # hw e5m2: X = 2^(-130-14) < 2^-127 -> clamp to code 0; data 2^-130 / 2^-127 = 2^-3 (e5m2 field 12: 0x30)
    scale, codes = qmx([2.0 ** -130], E5, "hw")
    assert scale == 0 and int(codes[0]) == 0x30
    # e4m3fn: 2^-3 is field 4 (0x20); -2^-133 / 2^-127 = -2^-6, the smallest normal (field 1: 0x88)
    scale, codes = qmx([2.0 ** -130, -(2.0 ** -133)], E4, "hw")
    assert scale == 0 and codes[:2].tolist() == [0x20, 0x88]


def test_fp32_subnormal_input_to_ocp_quantize_is_not_flushed():
    # golden reads exponent field 0 -> treats as 2^-127 -> wraps; exact: amax 2^-140, ocp e2m1 X clamps to 2^-127
    x = np.zeros((1, 32), np.float32)
    x[0, 0] = f32(0x200)  # 2^-140
    x[0, 1] = f32(0x600)  # 3 * 2^-139
    codes, scales = emu.mx.quantize(x, E4, convention="ocp")
    # 2^-140 / 2^-127 = 2^-13: below e4m3fn's smallest subnormal 2^-9 -> 0; 1.5*2^-138 / 2^-127 = 1.5*2^-11 -> 0
    assert int(scales[0, 0]) == 0 and codes[0, :2].tolist() == [0, 0]
    x[0, 0] = f32(0x00400000)  # 2^-127
    codes, scales = emu.mx.quantize(x, E5, convention="hw")
    # floor(log2) = -127, hw X = 2^(-127-14) -> clamps to code 0; data = 1.0 (e5m2 0x3C)
    assert int(scales[0, 0]) == 0 and int(codes[0, 0]) == 0x3C


@pytest.mark.parametrize("k", [-100, -1, 0, 1, 9, 15, 100, 127])
def test_floor_log2_exact_just_below_a_power_of_two(k):
    # microxcaling/gfloat use a float log2 that rounds nextafter(2^k, 0) up to k (56/60 binades wrong)
    amax = np.nextafter(np.float32(2.0 ** k), np.float32(0))
    x = np.full((1, 32), np.float32(2.0 ** (k - 1)), np.float32)
    x[0, 0] = amax
    codes, scales = emu.mx.quantize(x, E4, convention="ocp")
    assert int(scales[0, 0]) == max((k - 1) - 8, -127) + 127


def test_ocp_floor_rule_clamps_957_to_896_and_hw_does_not():
    # microxcaling #4: amax 960 -> X = 2 (ocp), 957/2 = 478.5 clips to 448 -> 896
    x = np.zeros((1, 32), np.float32)
    x[0, :2] = [960.0, 957.0]
    codes, scales = emu.mx.quantize(x, E4, convention="ocp")
    back = emu.mx.dequantize(codes, scales, E4)
    assert int(scales[0, 0]) == 128 and back[0, :2].tolist() == [896.0, 896.0]
    # hw: X = 2^(9-7) = 4, 957/4 = 239.25 -> 240 -> 960; 960/4 = 240 exactly
    codes, scales = emu.mx.quantize(x, E4, convention="hw")
    back = emu.mx.dequantize(codes, scales, E4)
    assert int(scales[0, 0]) == 129 and back[0, :2].tolist() == [960.0, 960.0]


def test_hw_never_saturates_and_ocp_clips_block_maxima():
    # just below 2^(E+1): hw quotient < 2^Emax rounds to at most 2^Emax <= max finite; ocp clips 500 -> 448
    top = 510.0  # the largest bf16 below 512: 1.9921875 * 2^8
    scale, codes = qmx([top], E4, "hw")  # X = 2^(8-7) = 2: 255 -> 256 (0x78)
    assert scale == 128 and int(codes[0]) == 0x78
    scale, codes = qmx([500.0], E4, "ocp")  # X = 1: 500 clips to 448 (0x7E), not NaN
    assert scale == 127 and int(codes[0]) == 0x7E
    scale, codes = qmx([61440.0], E5, "ocp")  # X = 1: 61440 clips to 57344 (0x7B), not inf
    assert scale == 127 and int(codes[0]) == 0x7B


@pytest.mark.parametrize("fmt", [E4, E5, E2])
def test_inf_group_is_nan_not_a_finite_max(fmt):
    # golden: inf / X = inf is clipped to max_val: +inf becomes ~6e38 finite, other elements flush to 0
    with emu.settings(mx_fp4_quantize_mx="allow"):
        scale, codes = qmx([1.0, np.inf, 2.0], fmt, "ocp")
        assert scale == 255
        back = emu.mx.dequantize_mx(*emu.mx.quantize_mx(group([1.0, np.inf, 2.0]), fmt, "ocp"), fmt)
    assert np.isnan(back[:8]).all()


def test_nan_in_an_fp4_group_is_not_silently_minus_zero():
    # ml_dtypes casts NaN to e2m1 as -0; here the group's scale is the E8M0 NaN, so the whole group reads NaN
    codes, scales = emu.mx.quantize(np.array([[np.nan] + [1.0] * 31], np.float32), E2)
    assert int(scales[0, 0]) == 255
    assert np.isnan(emu.mx.dequantize(codes, scales, E2)).all()


def test_propagate_policy_scales_from_finite_elements_and_casts_specials_alone():
    x = np.array([[np.nan, -np.inf, 3.0] + [0.5] * 29], np.float32)
    with emu.settings(mx_nonfinite="propagate"):
        codes, scales = emu.mx.quantize(x, E5, convention="hw")
    want_scale, want = ref_block([float(v) for v in x[0]], E5, "hw", nonfinite="propagate")
    assert int(scales[0, 0]) == want_scale
    assert codes[0, 2:].tolist() == want[2:]
    assert int(codes[0, 0]) & 0x7F == 0x7E and int(codes[0, 1]) == 0xFC  # NaN, -inf of e5m2


@pytest.mark.parametrize("mode, want", [("nan", math.nan), ("clip", 2.0 ** 127), ("inf", math.inf)])
def test_scale_0xff_is_handled_one_declared_way(mode, want):
    # goldens disagree: nc_matmul_mx_golden gives inf (NaN for zero data), dequantize_mx_golden clips to 2^127
    x4 = np.zeros((8, 1), np.uint32)
    x4[0, 0] = 0x00000038  # sub-element 0 = 1.0, the rest 0
    with emu.settings(mx_scale_ff=mode):
        out = emu.mx.dequantize_mx(x4, np.array([[255]], np.uint8), E4, dtype=np.float64)
    if math.isnan(want):
        assert np.isnan(out).all()
    elif mode == "clip":
        assert out[0, 0] == want and out[0, 1] == 0.0
    else:
        assert out[0, 0] == math.inf and np.isnan(out[0, 1])  # 0 * inf


def test_scale_code_0_is_the_exact_subnormal_2_pow_minus_127():
    x4 = np.full((8, 1), 0x38383838, np.uint32)
    out = emu.mx.dequantize_mx(x4, np.array([[0]], np.uint8), E4)
    assert out.dtype == np.float32 and (out == np.float32(2.0 ** -127)).all()
    assert out.view(np.uint32)[0, 0] == 0x00400000


def test_huge_scale_overflows_float32_to_inf_but_float64_is_exact():
    x4 = np.full((8, 1), 0x7B7B7B7B, np.uint32)  # e5m2 57344
    s = np.array([[254]], np.uint8)
    assert np.isposinf(emu.mx.dequantize_mx(x4, s, E5)).all()
    assert (emu.mx.dequantize_mx(x4, s, E5, dtype=np.float64) == 57344.0 * 2.0 ** 127).all()


def test_flt_max_block_scale_matches_the_floor_rule():
    # torchao vector: FLT_MAX -> scale 246 under FLOOR (ocp) for e4m3fn: floor(log2) = 127, 127 - 8 + 127
    codes, scales = emu.mx.quantize(np.full((1, 32), np.finfo(np.float32).max, np.float32), E4)
    assert int(scales[0, 0]) == 246 and (codes == 0x7E).all()
    codes, scales = emu.mx.quantize(np.full((1, 32), np.finfo(np.float32).max, np.float32), E4, convention="hw")
    assert int(scales[0, 0]) == 247 and (codes == 0x78).all()  # X = 2^120: (2 - 2^-23) * 2^7 rounds to 256


def test_oversized_hw_scale_tile_with_kp_32_works():
    # get_p_contiguous_scale slices P rows (should be P/8): a [32, F] tile with Kp = 32 raised a broadcast error
    dense = np.array([[1, 2], [3, 4], [5, 6], [7, 8]], np.uint8)
    tile = emu.mx.to_hw_scale_layout(dense, p_offset=12)
    assert tile.shape == (32, 2)
    assert (emu.mx.from_hw_scale_layout(tile, kp=32, p_offset=12) == dense).all()
    assert (emu.mx.from_hw_scale_layout(dense, kp=32) == dense).all()  # the compact [4, F] tile


def test_float64_input_is_not_double_rounded_through_float32():
    # ml_dtypes PR #401 / triton PR #2583: a float64 value that is not a float32 is refused, never rounded twice
    x = np.full((1, 32), 1.0 + 2.0 ** -30, np.float64)
    with pytest.raises(TypeError, match="float32"):
        emu.mx.quantize(x, E4)
    codes, _ = emu.mx.quantize(np.full((1, 32), 1.5, np.float64), E4)  # exact float32 values are fine
    assert (codes == 0x7C).all()  # ocp: X = 2^(0-8), 1.5 * 2^8 = 384 = e4m3fn 0x7C
