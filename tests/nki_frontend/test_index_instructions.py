"""nisa.nonzero_with_count, nisa.local_gather and nisa.sequence_bounds in kernels, against the scalar references of
tests/engines/test_gpsimd_index.py (written from NKI's API docstrings)."""

import numpy as np
import pytest

import emulator.nki as nki
from emulator.errors import UninitializedReadError
from tests.engines.test_gpsimd_index import bounds_ref, local_gather_ref, nonzero_ref

nl, nisa = nki.language, nki.isa
RNG = np.random.default_rng(180)


@nki.jit
def nonzero_kernel(x, offset):
    rows, t = x.shape
    cores = (rows + 15) // 16
    out = nl.ndarray((cores, t + 1), dtype=nl.int32, buffer=nl.shared_hbm)
    src = nl.ndarray((rows, t), dtype=x.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=src, src=x)
    res = nl.ndarray((rows, t + 1), dtype=nl.int32, buffer=nl.sbuf)
    nisa.nonzero_with_count(dst=res, src=src, index_offset=offset, padding_val=-1)
    for c in range(cores):   # only the GpSimd cores' first partitions hold results
        nisa.dma_copy(dst=out[c:c + 1, :], src=res[16 * c:16 * c + 1, :])
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_nonzero_with_count_kernel(dtype):
    x = (RNG.integers(-1, 2, size=(128, 40)) * (RNG.random((128, 40)) < 0.3)).astype(dtype)
    out = nki.simulate(nonzero_kernel)(x, 100)
    want = [nonzero_ref(x[16 * c].tolist(), 100, -1) for c in range(8)]
    assert out.tolist() == want


@nki.jit
def nonzero_read_all_kernel(x):
    rows, t = x.shape
    out = nl.ndarray((rows, t + 1), dtype=nl.int32, buffer=nl.shared_hbm)
    src = nl.ndarray((rows, t), dtype=x.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=src, src=x)
    res = nl.ndarray((rows, t + 1), dtype=nl.int32, buffer=nl.sbuf)
    nisa.nonzero_with_count(dst=res, src=src)
    nisa.dma_copy(dst=out, src=res)   # rows 1..15 were never written
    return out


def test_nonzero_with_count_other_rows_stay_unwritten():
    with pytest.raises(UninitializedReadError, match="at index \\(1, 0\\)"):
        nki.simulate(nonzero_read_all_kernel)(np.ones((16, 4), np.float32))


@nki.jit
def local_gather_kernel(src_h, index_h, valid):
    rows = src_h.shape[0]
    out = nl.ndarray((rows, valid), dtype=src_h.dtype, buffer=nl.shared_hbm)
    src = nl.ndarray(src_h.shape, dtype=src_h.dtype, buffer=nl.sbuf)
    idx = nl.ndarray(index_h.shape, dtype=nl.uint16, buffer=nl.sbuf)
    nisa.dma_copy(dst=src, src=src_h)
    nisa.dma_copy(dst=idx, src=index_h)
    g = nl.ndarray((rows, valid), dtype=src_h.dtype, buffer=nl.sbuf)
    nisa.local_gather(dst=g, src_buffer=src, index=idx, num_valid_indices=valid)
    nisa.dma_copy(dst=out, src=g)
    return out


def test_local_gather_kernel_moe_shape():
    """moe_tkg's use: affinities [128, E], uint16 expert ids [128, 16], all 256 indices of each core valid."""
    e = 8
    src = RNG.standard_normal((128, e)).astype(np.float32)
    index = RNG.integers(0, e, size=(128, 16), dtype=np.uint16)
    out = nki.simulate(local_gather_kernel)(src, index, 256)
    assert out.tobytes() == local_gather_ref(src, index, 1, 256).tobytes()


@nki.jit
def bounds_kernel(ids_h):
    n = ids_h.shape[1]
    out = nl.ndarray((1, 2, n), dtype=ids_h.dtype, buffer=nl.shared_hbm)
    ids = nl.ndarray((1, n), dtype=ids_h.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=ids, src=ids_h)
    res = nl.ndarray((1, 2, n), dtype=ids_h.dtype, buffer=nl.sbuf)
    nisa.sequence_bounds(dst=res, segment_ids=ids)
    nisa.dma_copy(dst=out, src=res)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_sequence_bounds_kernel(dtype):
    seq = np.sort(RNG.integers(0, 32, size=32))
    out = nki.simulate(bounds_kernel)(seq.reshape(1, 32).astype(dtype))
    assert out[0].tolist() == bounds_ref(seq.tolist())


@nki.jit
def topk_kernel(in_tensor, n, k):
    par_dim, src_x = in_tensor.shape
    src = nl.ndarray((par_dim, src_x), dtype=nl.bfloat16, buffer=nl.sbuf)
    nisa.dma_copy(dst=src, src=in_tensor)
    val_dst = nl.ndarray((par_dim, k), dtype=nl.bfloat16, buffer=nl.sbuf)
    idx_dst = nl.ndarray((par_dim, k), dtype=nl.uint32, buffer=nl.sbuf)
    nisa.topk(val_dst=val_dst, idx_dst=idx_dst, src=src, n=n)
    cols = (k + 15) // 16   # the results occupy the first ceil(k / 16) columns of the snake
    val_h = nl.ndarray((par_dim, cols), dtype=nl.bfloat16, buffer=nl.shared_hbm)
    idx_h = nl.ndarray((par_dim, cols), dtype=nl.uint32, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=val_h, src=val_dst[:, 0:cols])
    nisa.dma_copy(dst=idx_h, src=idx_dst[:, 0:cols])
    return val_h, idx_h


def test_topk_kernel_sdk_example():
    import ml_dtypes
    from tests.engines.test_gpsimd_index import topk_ref
    src = RNG.standard_normal((128, 3)).astype(ml_dtypes.bfloat16)
    val, idx = nki.simulate(topk_kernel)(src, 42, 32)
    want_v, want_i = topk_ref(src, 42, 32)
    assert val.tobytes() == np.array([r[:2] for r in want_v], ml_dtypes.bfloat16).tobytes()
    assert idx.tolist() == [r[:2] for r in want_i]


@nki.jit
def legacy_kernel(src_h, index_h, ids_h):
    from emulator.nki import legacy_isa as lisa

    src = nl.load(src_h)
    idx = nl.load(index_h)
    g = lisa.local_gather(src, idx, 2, 20)          # NKI 0.1 form: returns a [P, valid, elems] tile
    b = lisa.sequence_bounds(segment_ids=nl.load(ids_h))
    out_g = nl.ndarray(g.shape, dtype=g.dtype, buffer=nl.shared_hbm)
    out_b = nl.ndarray(b.shape, dtype=b.dtype, buffer=nl.shared_hbm)
    nl.store(out_g, g)
    nl.store(out_b, b)
    return out_g, out_b


def test_legacy_tile_returning_forms():
    src = RNG.standard_normal((32, 16)).astype(np.float32)
    index = (RNG.integers(0, 8, size=(32, 2)) * 2).astype(np.uint16)
    ids = np.array([[0, 2, 2, 5, 5, 5, 0, 1]], np.float32)
    g, b = nki.simulate(legacy_kernel)(src, index, ids)
    assert g.shape == (32, 20, 2)
    assert g.reshape(32, -1).tobytes() == local_gather_ref(src, index, 2, 20).tobytes()
    assert b.shape == (1, 2, 8) and b[0].tolist() == bounds_ref(ids[0].tolist())
