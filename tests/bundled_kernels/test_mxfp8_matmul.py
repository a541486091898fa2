"""kernels.mxfp8_matmul (quantize_mx on chip, nc_matmul_mx) against a float64 product of independently quantised
operands; M > 128, N > 512 and K over several 512-row tiles (and a short last tile) need tiling."""

import numpy as np
import pytest

from kernels.checks import check_mxfp8_matmul


@pytest.mark.parametrize("m, k, n", [(2, 128, 1), (128, 512, 512), (130, 640, 520), (256, 1152, 96)])
@pytest.mark.parametrize("element", ["float8_e4m3fn", "float8_e5m2"])
def test_mxfp8_matmul_within_tolerance(m, k, n, element):
    check = check_mxfp8_matmul(m, k, n, element, "bfloat16", seed=m + k + n)
    assert check.passed, check.row()


def test_fp32_output():
    check = check_mxfp8_matmul(64, 256, 200, "float8_e4m3fn", "float32", seed=5)
    assert check.passed, check.row()


def test_k_must_be_a_multiple_of_128():
    import ml_dtypes

    from kernels.mxfp8_matmul import mxfp8_matmul

    with pytest.raises(Exception, match="multiple of 128"):
        mxfp8_matmul(np.ones((96, 2), ml_dtypes.bfloat16), np.ones((96, 2), ml_dtypes.bfloat16))
