"""``t.ap(pattern, scalar_offset=i, indirect_dim=d)``: ``d`` is a dim of ``t`` (NKI's dynamic select, as
nki-library's TensorView.select issues it: the selected dim is dropped from the pattern and the register value is
scaled by that dim's stride in ``t``). Reference: NumPy indexing ``x[i]`` / ``x[:, i]``."""

import numpy as np
import pytest

import emulator.nki as nki
from emulator.nki import isa as nisa
from emulator.nki import language as nl


@nki.jit
def _select(x, idx, dim: int):
    reg = nl.ndarray((1, 1), dtype=idx.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=reg, src=idx)
    a, b, c = x.shape
    if dim == 0:
        view = x.ap(pattern=[[c, b], [1, c]], offset=0, scalar_offset=reg, indirect_dim=0)
        shape = (b, c)
    else:
        view = x.ap(pattern=[[b * c, a], [1, c]], offset=0, scalar_offset=reg, indirect_dim=1)
        shape = (a, c)
    t = nl.ndarray(shape, dtype=x.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=view)
    out = nl.ndarray(shape, dtype=x.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=out, src=t)
    return out


@pytest.mark.parametrize("dim,i", [(0, 0), (0, 2), (0, 3), (1, 1)])
def test_scalar_offset_scales_by_the_tensor_dim_stride(dim, i):
    x = np.arange(4 * 2 * 8, dtype=np.float32).reshape(4, 2, 8)
    got = _select(x, np.array([[i]], np.int32), dim)
    want = x[i] if dim == 0 else x[:, i]
    np.testing.assert_array_equal(got, want)


@nki.jit
def _scatter_flat(values, flat_idx):
    """Scatter values[i] to out[flat_idx[i]] of a 1-D tensor, the pattern's dim-0 stride (5) not being 1."""
    n = values.shape[0]
    v = nl.ndarray((n, 1), dtype=values.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=v, src=values)
    idx = nl.ndarray((n, 1), dtype=flat_idx.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=idx, src=flat_idx)
    out = nl.ndarray((16,), dtype=values.dtype, buffer=nl.shared_hbm)
    zero = nl.ndarray((1, 16), dtype=values.dtype, buffer=nl.sbuf)
    nisa.memset(zero, 0.0)
    nisa.dma_copy(dst=out.reshape((1, 16)), src=zero)
    nisa.dma_copy(dst=out.ap([[5, n], [1, 1]], offset=0, vector_offset=idx, indirect_dim=0), src=v)
    return out


def test_vector_offset_counts_rows_of_the_tensor_dim():
    values = np.array([[1.0], [2.0], [3.0]], np.float32)
    flat_idx = np.array([[13], [0], [7]], np.int32)
    want = np.zeros(16, np.float32)
    want[[13, 0, 7]] = values.ravel()
    np.testing.assert_array_equal(_scatter_flat(values, flat_idx), want)
