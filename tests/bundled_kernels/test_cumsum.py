"""kernels.cumsum against a float64 cumulative sum: row tiles over 128, scan tiles of 512 with an fp32 carry."""

import pytest

from kernels.checks import check_cumsum


@pytest.mark.parametrize("n, f", [(1, 1), (3, 17), (128, 512), (129, 513), (140, 2100)])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_cumsum_within_tolerance(n, f, dtype):
    check = check_cumsum(n, f, dtype, seed=n + f)
    assert check.passed, check.row()

