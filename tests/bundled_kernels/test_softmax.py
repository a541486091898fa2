"""kernels.softmax against its float64 reference, over shapes with N > 128 rows and F > 512 columns."""

import numpy as np
import pytest

from kernels.checks import check_softmax
from kernels.reference import compare, softmax_reference


@pytest.mark.parametrize("n, f", [(1, 1), (5, 7), (128, 512), (200, 1000), (131, 2048)])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_softmax_within_tolerance(n, f, dtype):
    check = check_softmax(n, f, dtype, seed=n + f)
    assert check.passed, check.row()


def test_large_logits_do_not_overflow():
    # exp(1000) overflows fp32: the kernel must subtract the row max first
    from kernels.softmax import softmax

    x = np.array([[1000.0, 1000.0, 999.0]], np.float32)
    want, bound = softmax_reference(x)
    assert compare(softmax(x), want, bound, np.float32).passed


def test_the_tolerance_rejects_a_bf16_rounded_denominator():
    x = np.random.default_rng(3).standard_normal((2, 300)).astype(np.float32)
    want, bound = softmax_reference(x)
    e = np.exp(x.astype(np.float64) - x.max(1, keepdims=True))
    wrong = e / e.sum(1, keepdims=True) * (1 + 2.0 ** -9)  # one bf16 half-ulp in the sum
    assert not compare(wrong.astype(np.float32), want, bound, np.float32).passed


def test_within_tolerance_with_libm_grade_activations():
    # the FUNC budget (4 fp32 ulps per exp / reciprocal) covers both activation_accuracy models
    import emulator as emu

    with emu.settings(activation_accuracy="float32"):
        check = check_softmax(130, 700, "float32", seed=11)
    assert check.passed, check.row()


@pytest.mark.parametrize("n, f", [(3, 5), (130, 700)])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_vector_engine_exponential_within_tolerance(n, f, dtype):
    check = check_softmax(n, f, dtype, seed=n * f, vector_exp=True)
    assert check.passed, check.row()
