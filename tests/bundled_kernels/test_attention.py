"""kernels.attention against its float64 reference: query tiles over 128 rows, key chunks over 512."""

import pytest

from kernels.checks import check_attention


@pytest.mark.parametrize("s, s_kv, d", [(1, 1, 1), (16, 40, 8), (128, 128, 64), (130, 600, 32), (200, 1030, 128)])
@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_attention_within_tolerance(s, s_kv, d, dtype):
    check = check_attention(s, s_kv, d, dtype, seed=s + s_kv + d)
    assert check.passed, check.row()


def test_head_dimension_over_128_is_refused():
    import numpy as np

    from kernels.attention import attention

    q = np.zeros((4, 130), np.float32)
    with pytest.raises(Exception, match="head dimension 130 exceeds 128"):
        attention(q, q, q)


@pytest.mark.parametrize("s, d", [(1, 4), (130, 32), (300, 64)])
@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_causal_attention_within_tolerance(s, d, dtype):
    check = check_attention(s, s, d, dtype, seed=s + d, causal=True)
    assert check.passed, check.row()


def test_causal_first_query_sees_only_the_first_key():
    import numpy as np

    from kernels.attention import attention

    rng = np.random.default_rng(9)
    q, k, v = (rng.standard_normal((5, 8)).astype(np.float32) for _ in range(3))
    out = attention(q, k, v, causal=True)
    assert np.array_equal(out[0], v[0])  # softmax over one key is exactly 1: the row is v[0] bit for bit
