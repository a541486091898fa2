"""Random shapes (hypothesis) for the row-wise NKI kernels: any N (row tiles of 128, a ragged last one), any free
size, both dtypes, each within its float64 tolerance."""

from hypothesis import given, settings, strategies as st

from kernels.checks import check_cumsum, check_layernorm, check_rmsnorm, check_softmax

CHECKS = {"rmsnorm": check_rmsnorm, "layernorm": check_layernorm, "softmax": check_softmax, "cumsum": check_cumsum}


@settings(max_examples=12)
@given(kernel=st.sampled_from(sorted(CHECKS)), n=st.integers(1, 300), f=st.integers(1, 1100),
       dtype=st.sampled_from(["float32", "bfloat16"]), seed=st.integers(0, 2 ** 16))
def test_row_kernels_on_random_shapes(kernel, n, f, dtype, seed):
    check = CHECKS[kernel](n, f, dtype, seed)
    assert check.passed, check.row()
