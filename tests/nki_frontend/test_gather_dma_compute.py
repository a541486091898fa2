"""nisa.nc_n_gather and nisa.dma_compute against scalar references written from NKI's API docstrings
(nki/api/nki/isa/__init__.py in aws-neuron-sdk): a per-element Python loop for the gather, a float64 sum
rounded to fp32 after every addition (Python floats) for the DMA reduction."""

import ml_dtypes
import numpy as np
import pytest

import emulator.nki as nki
from emulator.engines import dma as edma, gpsimd
from emulator.engines.instructions import ConnectivityError
from emulator.errors import DtypeError, EmulatorError, ShapeError

nl, nisa = nki.language, nki.isa
RNG = np.random.default_rng(5)


def gather_ref(data, indices):
    """dst[p][j] = flatten(data[p])[indices[p][j]], one element at a time."""
    rows = data.shape[0]
    out = np.empty((rows,) + indices.shape[1:], data.dtype).reshape(rows, -1)
    flat_d, flat_i = data.reshape(rows, -1), indices.reshape(rows, -1)
    for p in range(rows):
        for j in range(flat_i.shape[1]):
            out[p, j] = flat_d[p, int(flat_i[p, j])]
    return out


@nki.jit
def gather_kernel(data, indices):
    out = nl.ndarray(indices.shape, dtype=data.dtype, buffer=nl.shared_hbm)
    d = nl.ndarray(data.shape, dtype=data.dtype, buffer=nl.sbuf)
    i = nl.ndarray(indices.shape, dtype=indices.dtype, buffer=nl.sbuf)
    g = nl.ndarray(indices.shape, dtype=data.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=d, src=data)
    nisa.dma_copy(dst=i, src=indices)
    nisa.nc_n_gather(dst=g, data=d, indices=i)
    nisa.dma_copy(dst=out, src=g)
    return out


@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.bfloat16, np.uint32])
def test_nc_n_gather_kernel_matches_scalar_reference(dtype):
    data = (RNG.standard_normal((16, 4, 8)) * 100).astype(dtype)
    idx = RNG.integers(0, 32, size=(16, 5), dtype=np.uint32)
    out = nki.simulate(gather_kernel)(data, idx)
    want = gather_ref(data, idx)
    assert out.dtype == data.dtype and out.tobytes() == want.tobytes()


def test_nc_n_gather_checks_index_range_and_dtypes():
    data = np.arange(12, dtype=np.float32).reshape(2, 6)
    with pytest.raises(ShapeError, match="element 1 is 6; data has 6 elements per partition"):
        gpsimd.nc_n_gather(np.empty((2, 2), np.float32), data, np.array([[0, 6], [1, 1]], np.uint32))
    with pytest.raises(DtypeError, match="indices is int32; the gather indices must be uint32"):
        gpsimd.nc_n_gather(np.empty((2, 2), np.float32), data, np.zeros((2, 2), np.int32))
    with pytest.raises(DtypeError, match="dst must have data's dtype"):
        gpsimd.nc_n_gather(np.empty((2, 2), ml_dtypes.bfloat16), data, np.zeros((2, 2), np.uint32))
    with pytest.raises(ShapeError, match="same partition count"):
        gpsimd.nc_n_gather(np.empty((3, 2), np.float32), data, np.zeros((3, 2), np.uint32))


def sum_ref(srcs, n):
    """Left-to-right float32 sum: every addition exact in float64, then rounded to fp32 (one RNE step)."""
    out = []
    for k in range(n):
        acc = np.float32(float(np.asarray(srcs[0]).reshape(-1)[k]))
        for s in srcs[1:]:
            acc = np.float32(float(acc) + float(np.asarray(s, np.float64).reshape(-1)[k]))
        out.append(acc)
    return np.array(out, np.float32)


@nki.jit
def residual_kernel(a, b, c):
    """qkv_cte's fused residual add: dma_compute from three HBM views into SBUF, then back to HBM."""
    rows, cols = a.shape
    out = nl.ndarray((rows, cols), dtype=nl.bfloat16, buffer=nl.shared_hbm)
    t = nl.ndarray((rows, cols), dtype=nl.bfloat16, buffer=nl.sbuf)
    nisa.dma_compute(dst=t[0:rows, 0:cols], srcs=[a.ap(pattern=[[cols, rows], [1, cols]], offset=0),
                                                   b[0:rows, 0:cols], c], scales=[1.0, 1.0, 1.0], reduce_op=nl.add)
    nisa.dma_copy(dst=out, src=t)
    return out


def test_dma_compute_kernel_matches_fp32_sum_rounded_once_to_bf16():
    a = RNG.standard_normal((8, 32)).astype(ml_dtypes.bfloat16)
    b = (RNG.standard_normal((8, 32)) * 1e-3).astype(np.float32)
    c = (RNG.standard_normal((8, 32)) * 1e3).astype(ml_dtypes.bfloat16)
    out = nki.simulate(residual_kernel)(a, b, c)
    want = sum_ref([a.astype(np.float64), b, c.astype(np.float64)], a.size).astype(ml_dtypes.bfloat16)
    assert out.dtype == ml_dtypes.bfloat16
    assert out.reshape(-1).view(np.uint16).tolist() == want.view(np.uint16).tolist()


@nki.jit
def inplace_kernel(x):
    """moe_cte's reduction: dst aliases srcs[0] (read-modify-write in HBM)."""
    rows, cols = x.shape
    out = nl.ndarray((rows, cols), dtype=x.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=out, src=x)
    half = rows // 2
    nisa.dma_compute(dst=out[0:half, :], srcs=[out[0:half, :], out[half:rows, :]], reduce_op=nl.add)
    return out


def test_dma_compute_in_place_reads_sources_before_writing():
    x = RNG.standard_normal((4, 8)).astype(np.float32)
    out = nki.simulate(inplace_kernel)(x)
    assert out[:2].tobytes() == sum_ref([x[:2], x[2:]], 16).reshape(2, 8).tobytes()
    assert out[2:].tobytes() == x[2:].tobytes()


def test_dma_compute_rejects_what_the_engines_do_not_support():
    dst, a = np.empty((2, 2), np.float32), np.ones((2, 2), np.float32)
    with pytest.raises(EmulatorError, match="support only nl.add"):
        edma.dma_compute(dst, [a, a], "multiply")
    with pytest.raises(EmulatorError, match="only scale supported"):
        edma.dma_compute(dst, [a, a], "add", scales=[1.0, 2.0])
    with pytest.raises(ShapeError, match=r"srcs\[1\] has 3 elements"):
        edma.dma_compute(dst, [a, np.ones(3, np.float32)], "add")
    with pytest.raises(ShapeError, match="1..16 tensors"):
        edma.dma_compute(dst, [a] * 17, "add")


@nki.jit
def psum_src_kernel(x):
    out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    p = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.psum)
    s = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=s, src=x)
    nisa.tensor_copy(dst=p, src=s)
    nisa.dma_compute(dst=out, srcs=[s, p], reduce_op=nl.add)
    return out


def test_dma_compute_cannot_read_psum():
    with pytest.raises(ConnectivityError, match=r"srcs\[1\] is PSUM"):
        nki.simulate(psum_src_kernel)(np.ones((2, 4), np.float32))


@nki.jit
def gather_transpose_kernel(cache, blocks):
    """attention_tkg's indirect dma_transpose: P blocks of a [nblocks, 1, L, D] cache, picked by an index tile,
    transposed into a [D, 1, L, P] tile."""
    nb, _, L, D = cache.shape
    P = blocks.shape[0]
    idx = nl.ndarray((P, 1), dtype=blocks.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=idx, src=blocks)
    t = nl.ndarray((D, 1, L, P), dtype=cache.dtype, buffer=nl.sbuf)
    nisa.dma_transpose(dst=t, src=cache.ap([[L * D, P], [1, 1], [D, L], [1, D]], offset=0, vector_offset=idx,
                                           indirect_dim=0))
    out = nl.ndarray((D, 1, L, P), dtype=cache.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=out, src=t)
    return out


def test_indirect_dma_transpose_gathers_rows_then_transposes():
    cache = RNG.standard_normal((9, 1, 4, 8)).astype(ml_dtypes.bfloat16)
    blocks = np.array([[7], [0], [3], [3], [8]], np.int32)
    got = gather_transpose_kernel(cache, blocks)
    want = np.empty((8, 1, 4, 5), ml_dtypes.bfloat16)
    for p, b in enumerate(blocks[:, 0]):  # element by element: want[d, 0, l, p] = cache[b, 0, l, d]
        for l in range(4):
            for d in range(8):
                want[d, 0, l, p] = cache[b, 0, l, d]
    assert got.tobytes() == want.tobytes()
    with pytest.raises(ShapeError, match="vector_offset\\[1\\] = 9 reaches outside"):
        gather_transpose_kernel(cache, np.array([[1], [9], [0], [0], [0]], np.int32))
