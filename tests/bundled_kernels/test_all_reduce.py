"""kernels.all_reduce (nki.collectives inside an NKI kernel) against float64 sums over the ranks."""

import pytest

from kernels.checks import check_all_reduce


@pytest.mark.parametrize("ranks, shape", [(2, (2, 3)), (4, (128, 64)), (3, (300, 17))])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_all_reduce_sum_within_tolerance(ranks, shape, dtype):
    check = check_all_reduce(ranks, shape, dtype, "add", seed=ranks)
    assert check.passed, check.row()


@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_all_reduce_max_min_exact(op):
    check = check_all_reduce(4, (64, 32), "bfloat16", op, seed=7)
    assert check.passed and check.result.max_abs == 0.0, check.row()
