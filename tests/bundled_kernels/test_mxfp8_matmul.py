"""kernels.mxfp8_matmul (quantize_mx on chip, nc_matmul_mx) against a float64 product of independently quantised
operands; M > 128, N > 512 and K over several 512-row tiles (and a short last tile) need tiling."""

import ml_dtypes
import numpy as np
import pytest

import emulator as emu
from kernels.checks import check_mxfp8_matmul


@pytest.fixture(autouse=True, params=["hw", "ocp"])
def convention(request):
    """Every test under both MX scale conventions: the kernel's quantize_mx and the reference quantiser (its own
    float64 arithmetic) both follow the setting."""
    with emu.settings(mx_convention=request.param):
        yield request.param


@pytest.mark.parametrize("m, k, n", [(2, 128, 1), (128, 512, 512), (130, 640, 520), (256, 1152, 96)])
@pytest.mark.parametrize("element", ["float8_e4m3fn", "float8_e5m2"])
def test_mxfp8_matmul_within_tolerance(m, k, n, element):
    check = check_mxfp8_matmul(m, k, n, element, "bfloat16", seed=m + k + n)
    assert check.passed, check.row()


def test_fp32_output():
    check = check_mxfp8_matmul(64, 256, 200, "float8_e4m3fn", "float32", seed=5)
    assert check.passed, check.row()


def test_k_must_be_a_multiple_of_128():
    from kernels.mxfp8_matmul import mxfp8_matmul

    with pytest.raises(Exception, match="multiple of 128"):
        mxfp8_matmul(np.ones((96, 2), ml_dtypes.bfloat16), np.ones((96, 2), ml_dtypes.bfloat16))


def _quantize_contiguous(x, emax, elem, convention):
    """The same scale rule over 32 *consecutive* rows (OCP-style blocks): the layout the kernel must NOT use."""
    g = x.reshape(-1, 32, x.shape[1])
    amax = np.abs(g).max(axis=1, keepdims=True)
    off = emax - 1 if convention == "hw" else emax
    scale = np.ldexp(1.0, (np.floor(np.log2(np.where(amax > 0, amax, 1.0))) - off).astype(int))
    top = float(ml_dtypes.finfo(elem).max)
    return (np.clip(g / scale, -top, top).astype(elem).astype(np.float64) * scale).reshape(x.shape)


def test_scale_groups_follow_the_partition_layout(convention):
    # K = 512 is one tile of Kp = 128: a scale group is partitions 8j..8j+7 x sub-elements 0..3, i.e. logical rows
    # {q * 128 + p}. A spike in row 0 sets group 0's scale so high that its other rows (1..7, 128.., 256.., 384..)
    # fall into e4m3fn's subnormals and round coarsely; rows 8..31 are in other groups. b weights rows 0..31 only,
    # so the result tells the partition layout from 32-consecutive-row blocks.
    from kernels.mxfp8_matmul import mxfp8_matmul
    from kernels.reference import compare, mx_matmul_reference, mx_quantize_reference

    k, m, n = 512, 2, 4
    a_t = np.full((k, m), 1.3).astype(ml_dtypes.bfloat16)
    a_t[0] = 2.0 ** 16
    b = np.zeros((k, n), ml_dtypes.bfloat16)
    b[:32] = 1.0
    got = mxfp8_matmul(a_t, b, "float8_e4m3fn", "float32")
    e4 = ml_dtypes.float8_e4m3fn
    want, bound = mx_matmul_reference(mx_quantize_reference(a_t, 8, e4), mx_quantize_reference(b, 8, e4))
    assert compare(got, want, bound, np.float32).passed
    other, _ = mx_matmul_reference(_quantize_contiguous(a_t.astype(np.float64), 8, e4, convention), b.astype(np.float64))
    assert not compare(got, other, bound, np.float32).passed


@pytest.mark.parametrize("m, k, n", [(64, 1536, 100), (130, 640, 520)])
def test_bf16_psum_accumulation(m, k, n):
    # v4 accepts a bf16 PSUM tile: every accumulating nc_matmul_mx rounds the running sum to bf16 (K/512 times)
    check = check_mxfp8_matmul(m, k, n, "float8_e4m3fn", "float32", seed=k, psum="bfloat16")
    assert check.passed, check.row()
    # and the bf16 PSUM really rounds: the same product through an fp32 PSUM is ~1000x closer to float64
    fp32 = check_mxfp8_matmul(m, k, n, "float8_e4m3fn", "float32", seed=k)
    assert check.result.max_abs > 100 * fp32.result.max_abs, (check.row(), fp32.row())
