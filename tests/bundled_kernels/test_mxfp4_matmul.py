"""kernels.mxfp4_matmul (offline FP4 codes, scales scattered over quadrants by .ap DMA) against the float64 product
of the decoded codes times their scales."""

import numpy as np
import pytest

from kernels.checks import check_mxfp4_matmul
from kernels.mxfp4_matmul import pack_fp4


@pytest.mark.parametrize("m, k, n", [(2, 128, 1), (128, 512, 512), (130, 640, 520), (64, 1536, 64)])
@pytest.mark.parametrize("out", ["bfloat16", "float32"])
def test_mxfp4_matmul_within_tolerance(m, k, n, out):
    check = check_mxfp4_matmul(m, k, n, out, seed=m + k + n)
    assert check.passed, check.row()


def test_pack_fp4_layout():
    # K = 256: one tile of Kp = 64 partitions; word [p, f] holds rows p, 64 + p, 128 + p, 192 + p, low nibble first
    codes = (np.arange(256) % 16).astype(np.uint8).reshape(256, 1)
    words = pack_fp4(codes)
    p = 5
    want = sum(int(codes[q * 64 + p, 0]) << (4 * q) for q in range(4))
    assert words.shape == (64, 1) and int(words[p, 0]) == want
