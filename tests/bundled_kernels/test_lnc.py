"""The row-wise kernels and attention (query tiles) launched as kernel[2] (LNC=2: two cores, alternate row tiles,
one shared-HBM output): the same float64 checks, and bit-identical to the one-core launch (each row is computed by
the same instructions)."""

import numpy as np
import pytest

from kernels import checks
from kernels.attention import attention
from kernels.cumsum import cumsum
from kernels.layernorm import layernorm
from kernels.rmsnorm import rmsnorm
from kernels.softmax import softmax


@pytest.mark.parametrize("name", ["check_rmsnorm", "check_layernorm", "check_softmax", "check_cumsum"])
def test_lnc2_within_tolerance(name):
    check = getattr(checks, name)(300, 600, "bfloat16", 3, lnc=2)
    assert check.passed, check.row()


def test_lnc2_equals_one_core_bit_for_bit():
    import ml_dtypes

    x = np.random.default_rng(4).standard_normal((385, 130)).astype(ml_dtypes.bfloat16)
    g = np.ones(130, ml_dtypes.bfloat16)
    for run in (lambda lnc: rmsnorm(x, g, 1e-6, lnc), lambda lnc: layernorm(x, g, g, 1e-5, lnc),
                lambda lnc: softmax(x, lnc), lambda lnc: cumsum(x, lnc),
                lambda lnc: attention(x[:, :64], x[:200, :64], x[:200, 64:128], causal=True, lnc=lnc)):
        assert run(2).tobytes() == run(1).tobytes()
