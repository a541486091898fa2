"""kernels.layernorm against its float64 reference: bn_stats over several 512-element chunks, row tiles over 128."""

import numpy as np
import pytest

from kernels.checks import check_layernorm
from kernels.reference import compare, layernorm_reference


@pytest.mark.parametrize("n, h", [(1, 4), (64, 512), (129, 513), (260, 1500)])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_layernorm_within_tolerance(n, h, dtype):
    check = check_layernorm(n, h, dtype, seed=n * h)
    assert check.passed, check.row()


def test_the_tolerance_rejects_the_sample_variance():
    # dividing by H - 1 instead of H changes y by ~1/(2H) relative: far outside the fp32 bound
    x = np.random.default_rng(2).standard_normal((3, 256)).astype(np.float32)
    g, b = np.ones(256, np.float32), np.zeros(256, np.float32)
    want, bound = layernorm_reference(x, g, b, 1e-5)
    x64 = x.astype(np.float64)
    wrong = (x64 - x64.mean(1, keepdims=True)) / np.sqrt(x64.var(1, ddof=1, keepdims=True) + 1e-5)
    assert not compare(wrong.astype(np.float32), want, bound, np.float32).passed
