"""kernels.sparse_matmul: M:N-sparse stationary tiles on nc_matmul_sparse, against an independent k loop."""

import math

import numpy as np
import pytest

import emulator as emu
import kernels
from emulator.nki import last_report
from emulator.numerics.sparsity import NotMNError

F32 = np.float32
PATTERNS = [(4, 16), (4, 12), (4, 8), (2, 8), (2, 4), (1, 4), (1, 2)]


def bits(x):
    return np.asarray(x, F32).view(np.uint32)


def loop_ref(a, b, ktile):
    """Per K tile of ``ktile`` rows a plain np.float32 loop over k from +0; the tiles added in order."""
    out = None
    for k0 in range(0, a.shape[1], ktile):
        part = np.zeros((a.shape[0], b.shape[1]), F32)
        for k in range(k0, min(a.shape[1], k0 + ktile)):
            part = (part + np.outer(a[:, k], b[k]).astype(F32)).astype(F32)
        out = part if out is None else (out + part).astype(F32)
    return out


def pruned_by_hand(a, m, n):
    """Keep the m largest magnitudes of every n consecutive k of each row (ties: lowest index), written here."""
    out = np.zeros_like(a)
    for r in range(a.shape[0]):
        for g in range(0, a.shape[1], n):
            group = a[r, g:g + n]
            keep = sorted(range(n), key=lambda i: (-abs(float(group[i])), i))[:m]
            out[r, g + np.array(keep)] = group[keep]
    return out


@pytest.mark.parametrize("m,n", PATTERNS)
def test_every_pattern_matches_the_loop_reference(m, n):
    rng = np.random.default_rng(m * 100 + n)
    K = 3 * n * 17  # not a multiple of the instruction's 128 * n / m rows
    a = rng.standard_normal((70, K)).astype(F32)
    b = rng.standard_normal((K, 40)).astype(F32)
    got = kernels.sparse_matmul(a, b, m, n, "bfloat16", prune=True)
    stats = last_report()
    ra = emu.round_to(pruned_by_hand(a, m, n), "bfloat16")
    np.testing.assert_array_equal(bits(got), bits(loop_ref(ra, emu.round_to(b, "bfloat16"), 128 * n // m)))
    assert stats.instructions["nc_matmul_sparse"] == math.ceil(K / (128 * n // m))


@pytest.mark.parametrize("fmt", ["float32", "float16", "float8_e4m3fn", "float8_e5m2"])
def test_other_formats_and_a_ragged_k(fmt):
    rng = np.random.default_rng(3)
    a = pruned_by_hand(rng.standard_normal((130, 301)).astype(F32)[:, :300], 2, 4)
    a = np.concatenate([a, np.zeros((130, 1), F32)], axis=1)  # K = 301: padded to 304 by the kernel
    b = rng.standard_normal((301, 515)).astype(F32)
    got = kernels.sparse_matmul(a, b, 2, 4, fmt)
    want = loop_ref(emu.round_to(a, fmt), emu.round_to(b, fmt), 256)
    np.testing.assert_array_equal(bits(got), bits(want))


def test_nan_and_inf_in_rows_only_pruned_positions_select_stay_out():
    rng = np.random.default_rng(5)
    a = np.zeros((20, 64), F32)
    a[:, 2::4] = rng.standard_normal((20, 16))  # every group keeps exactly positions 2 and 3 (no zero padding,
    a[:, 3::4] = rng.standard_normal((20, 16))  # whose tags would select a zero's own row), so k = 5, 9 are pruned
    b = rng.standard_normal((64, 8)).astype(F32)
    clean = b.copy()
    b[5], b[9] = np.nan, np.inf
    got = kernels.sparse_matmul(a, b, 2, 4, "bfloat16")
    assert np.isfinite(got).all()
    clean[5] = clean[9] = 0.0
    want = loop_ref(emu.round_to(a, "bfloat16"), emu.round_to(clean, "bfloat16"), 256)
    np.testing.assert_array_equal(bits(got), bits(want))
    assert np.isnan(kernels.matmul(a, b, "bfloat16")).all()  # the dense datapath: 0 x NaN


def test_half_the_instructions_of_the_dense_kernel():
    rng = np.random.default_rng(6)
    a = pruned_by_hand(rng.standard_normal((128, 1024)).astype(F32), 2, 4)
    b = rng.standard_normal((1024, 512)).astype(F32)
    kernels.matmul(a, b, "bfloat16")
    dense = last_report().instructions
    kernels.sparse_matmul(a, b, 2, 4, "bfloat16")
    sparse = last_report().instructions
    transposes = 1024 // 128  # the dense kernel transposes a on the Tensor Engine; the sparse one gets a's
    assert dense["nc_transpose"] == transposes  # compressed transpose from the host
    assert sparse["nc_matmul_sparse"] * 2 == dense["nc_matmul"] == 8
    assert "nc_transpose" not in sparse and "nc_matmul" not in sparse


def test_bad_input_is_named():
    a = np.ones((4, 8), F32)
    b = np.ones((8, 3), F32)
    with pytest.raises(NotMNError, match="group 0 .* has 4 non-zeros; at most 2"):
        kernels.sparse_matmul(a, b, 2, 4)
    with pytest.raises(ValueError, match="MX format"):
        kernels.sparse_matmul(a, b, 2, 4, "mxfp8_e4m3", prune=True)
    with pytest.raises(ValueError, match="3:7"):
        kernels.sparse_matmul(a, b, 3, 7, prune=True)
