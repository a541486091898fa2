"""kernels.rmsnorm against its float64 reference, over shapes that need row tiling (N > 128) and long rows."""

import numpy as np
import pytest

from kernels.checks import check_rmsnorm
from kernels.reference import compare, rmsnorm_reference


@pytest.mark.parametrize("n, h", [(1, 8), (128, 64), (130, 520), (300, 1024)])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_rmsnorm_within_tolerance(n, h, dtype):
    check = check_rmsnorm(n, h, dtype, seed=n + h)
    assert check.passed, check.row()


def test_the_tolerance_rejects_a_wrong_norm():
    # the same comparison must fail when the mean uses H - 1 (a classic off-by-one): the bound is tight enough
    x = np.random.default_rng(1).standard_normal((4, 64)).astype(np.float32)
    g = np.ones(64, np.float32)
    want, bound = rmsnorm_reference(x, g, 1e-6)
    wrong = x / np.sqrt((x.astype(np.float64) ** 2).sum(1, keepdims=True) / 63 + 1e-6)
    assert not compare(wrong.astype(np.float32), want, bound, np.float32).passed
