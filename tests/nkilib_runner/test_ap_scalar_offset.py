"""``t.ap(pattern, scalar_offset=i, indirect_dim=d)``: ``d`` is a dim of ``t`` (NKI's dynamic select, as
nki-library's TensorView.select issues it: the selected dim is dropped from the pattern and the register value is
scaled by that dim's stride in ``t``). Reference: NumPy indexing ``x[i]`` / ``x[:, i]``."""

import numpy as np
import pytest

import emulator.nki as nki
from emulator.errors import ShapeError
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


def _scatter_row(skip: bool):
    """indexed_flatten's pattern: store a row at a dynamic row offset of a [4, 8] HBM tensor; an out-of-bounds
    offset (a sentinel) is meant to be skipped with oob_mode=skip."""
    @nki.jit
    def kernel(row, where):
        reg = nl.ndarray((1, 1), dtype=where.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=reg, src=where)
        out = nl.ndarray((4, 8), dtype=row.dtype, buffer=nl.shared_hbm)
        zero = nl.ndarray((4, 8), dtype=row.dtype, buffer=nl.sbuf)
        nisa.memset(zero, 0.0)
        nisa.dma_copy(dst=out, src=zero)
        t = nl.ndarray((1, 8), dtype=row.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=row)
        nisa.dma_copy(dst=out.ap(pattern=[[8, 1], [1, 8]], offset=0, scalar_offset=reg, indirect_dim=0), src=t,
                      oob_mode=nisa.oob_mode.skip if skip else nisa.oob_mode.error)
        return out
    return kernel


@pytest.mark.parametrize("where", [0, 3, 4, 1 << 20, -1])
def test_scalar_offset_out_of_bounds_is_decided_by_the_dma_oob_mode(where):
    row = np.arange(1, 9, dtype=np.float32).reshape(1, 8)
    want = np.zeros((4, 8), np.float32)
    if 0 <= where < 4:
        want[where] = row[0]
    got = _scatter_row(True)(row, np.array([[where]], np.int32))
    np.testing.assert_array_equal(got, want)
    if 0 <= where < 4:
        np.testing.assert_array_equal(_scatter_row(False)(row, np.array([[where]], np.int32)), want)
    else:
        with pytest.raises(ShapeError, match="nisa.dma_copy: the dynamic .scalar_offset. access pattern is out of "
                                             "bounds.*oob_mode=error"):
            _scatter_row(False)(row, np.array([[where]], np.int32))


@nki.jit
def _last_step_pattern(x, use_last: bool):
    """nki-library output_proj_tkg's shape: a loop builds the stationary pattern of a step one past the tile's last
    and uses it only under ``if step < steps``. Reference: NumPy column sums."""
    p, f = x.shape
    tile = nl.ndarray((p, f), dtype=x.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=tile, src=x)
    ones = nl.ndarray((p, 1), dtype=x.dtype, buffer=nl.sbuf)
    nisa.memset(dst=ones, value=1.0)
    out = nl.ndarray((f, 1), dtype=nl.float32, buffer=nl.shared_hbm)
    acc = nl.ndarray((f, 1), dtype=nl.float32, buffer=nl.psum)
    for step in range(f + 1):
        column = tile.ap(pattern=[[f, p], [1, 1]], offset=step)  # step == f reaches one element past the tile
        if step < f or use_last:
            nisa.nc_matmul(dst=acc[step:step + 1] if step < f else acc[0:1], stationary=column, moving=ones)
    res = nl.ndarray((f, 1), dtype=nl.float32, buffer=nl.sbuf)
    nisa.tensor_copy(dst=res, src=acc)
    nisa.dma_copy(dst=out, src=res)
    return out


def test_an_out_of_tile_pattern_is_refused_only_when_an_instruction_uses_it():
    x = np.arange(4 * 3, dtype=np.float32).reshape(4, 3)
    np.testing.assert_array_equal(_last_step_pattern(x, False), x.sum(axis=0, dtype=np.float64)
                                  .astype(np.float32).reshape(3, 1))
    with pytest.raises(ShapeError, match=r"nc_matmul: an operand's access pattern reaches outside its tile: "
                                         r".*at offset 3 reaches element 12; the tensor holds 12"):
        _last_step_pattern(x, True)
