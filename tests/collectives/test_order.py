"""Bit-exactness of every algorithm against the independent per-chunk references (both kernel paths)."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import emulator as emu
from emulator.collectives import local

from . import reference as ref

DTYPES = [np.float32, ml_dtypes.bfloat16, np.float16, ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2]
PATHS = [True, False]  # numba on / off


def data(r, n, dtype, seed=0, spread=6.0):
    """Per-rank values of the buffer dtype with mixed magnitudes (so roundings and cancellations happen)."""
    rng = np.random.default_rng(seed)
    lim = 64.0 if np.dtype(dtype).itemsize == 1 else 1e4
    vals = rng.standard_normal((r, n)) * np.exp2(rng.integers(-int(spread), int(spread), (r, n)))
    return [np.clip(v, -lim, lim).astype(np.float32).astype(dtype) for v in vals]


def bits(a):
    return np.asarray(a).view(np.uint8).tobytes()


def as_f32(a):
    return np.asarray(a).astype(np.float32)


def run(fn, numba, **kw):
    with emu.settings(numba=numba):
        return fn(**kw)


def assert_same_bits(got, want, dtype):
    got = np.asarray(got).reshape(-1)
    want = np.asarray(want, np.float32).reshape(-1).astype(dtype)
    if bits(got) != bits(want):
        i = int(np.nonzero(got.view(np.uint8) != want.view(np.uint8))[0][0]) // np.dtype(dtype).itemsize
        raise AssertionError(f"element {i}: got {float(got[i])!r}, want {float(want[i])!r}")


@pytest.mark.parametrize("numba", PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("r", [1, 2, 3, 5, 8])
def test_ring_matches_reference(numba, dtype, r):
    xs = data(r, 37, dtype, seed=r)
    want = ref.ring_all_reduce([as_f32(x) for x in xs], dtype)
    out = run(local.all_reduce, numba, per_rank=xs, algorithm="ring")
    for o in out:
        assert_same_bits(o, want, dtype)


@pytest.mark.parametrize("numba", PATHS)
@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn])
@pytest.mark.parametrize("r,channels", [(4, 2), (5, 3), (8, 4)])
def test_ring_channels(numba, dtype, r, channels):
    xs = data(r, 53, dtype, seed=10 + r)
    want = ref.ring_all_reduce([as_f32(x) for x in xs], dtype, channels)
    out = run(local.all_reduce, numba, per_rank=xs, algorithm="ring", channels=channels)
    assert_same_bits(out[0], want, dtype)


@pytest.mark.parametrize("numba", PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("r", [2, 3, 4, 6, 8])
@pytest.mark.parametrize("algorithm", ["recursive_doubling", "recursive_halving"])
def test_recursive_matches_pairwise_tree(numba, dtype, r, algorithm):
    xs = data(r, 29, dtype, seed=20 + r)
    want = ref.recursive_doubling([as_f32(x) for x in xs], dtype)
    out = run(local.all_reduce, numba, per_rank=xs, algorithm=algorithm)
    assert_same_bits(out[r - 1], want, dtype)


@pytest.mark.parametrize("numba", PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("r", [2, 4, 8, 16])
def test_tree_matches_reference(numba, dtype, r):
    xs = data(r, 19, dtype, seed=30 + r)
    want = ref.binary_tree_pow2([as_f32(x) for x in xs], dtype)
    out = run(local.all_reduce, numba, per_rank=xs, algorithm="tree")
    assert_same_bits(out[1], want, dtype)


@pytest.mark.parametrize("numba", PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("r,server", [(4, 2), (8, 4), (12, 4), (6, 3), (4, 4)])
def test_hierarchical_matches_reference(numba, dtype, r, server):
    xs = data(r, 41, dtype, seed=40 + r)
    want = ref.hierarchical([as_f32(x) for x in xs], dtype, server)
    out = run(local.all_reduce, numba, per_rank=xs, algorithm="hierarchical", server_ranks=server)
    assert_same_bits(out[0], want, dtype)


@pytest.mark.parametrize("numba", PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("r,dma", [(3, 16), (7, 3), (9, 4), (20, 16)])
def test_mesh_matches_reference(numba, dtype, r, dma):
    xs = data(r, 45, dtype, seed=50 + r)
    want = ref.mesh([as_f32(x) for x in xs], dtype, dma)
    out = run(local.all_reduce, numba, per_rank=xs, algorithm="mesh", dma_inputs=dma)
    assert_same_bits(out[r // 2], want, dtype)


@pytest.mark.parametrize("numba", PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_rank_order_is_a_rounded_chain(numba, dtype):
    xs = data(6, 23, dtype, seed=60)
    want = ref.chain([as_f32(x) for x in xs], ref.rounder(dtype))
    out = run(local.all_reduce, numba, per_rank=xs, algorithm="rank_order")
    assert_same_bits(out[2], want, dtype)


@pytest.mark.parametrize("numba", PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("r", [2, 4, 5])
def test_reduce_scatter_ring(numba, dtype, r):
    xs = data(r, 4 * r, dtype, seed=70 + r)
    want = ref.ring_reduce_scatter([as_f32(x) for x in xs], dtype)
    out = run(local.reduce_scatter, numba, per_rank=xs, algorithm="ring")
    for b in range(r):
        assert_same_bits(out[b], want[b], dtype)


@pytest.mark.parametrize("numba", PATHS)
def test_tree_accumulation_modes_differ_only_by_rounding(numba):
    # 3-input tree folds: fp32 accumulate + one rounding vs a rounding after every add
    xs = data(8, 64, ml_dtypes.bfloat16, seed=80)
    f = [as_f32(x) for x in xs]
    rnd = ref.rounder(ml_dtypes.bfloat16)

    def per_add(v, b):
        if b == 1:
            return f[v]
        return ref.fold([f[v], per_add(v - b // 2, b // 2), per_add(v + b // 2, b // 2)], rnd, per_add=True)

    want = ref.fold([f[0], per_add(4, 4)], rnd, per_add=True)
    got = run(local.all_reduce, numba, per_rank=xs, algorithm="tree", accumulation="dtype")
    assert_same_bits(got[0], want, ml_dtypes.bfloat16)
    single = run(local.all_reduce, numba, per_rank=xs, algorithm="tree", accumulation="float32")
    assert bits(single[0]) != bits(got[0])  # the data is chosen so the two datapaths disagree somewhere


@pytest.mark.parametrize("numba", PATHS)
@pytest.mark.parametrize("algorithm", emu.collectives.ALGORITHMS)
@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.bfloat16, np.float16, ml_dtypes.float8_e4m3fn])
def test_integer_valued_data_is_exact(numba, algorithm, dtype):
    r = 8
    rng = np.random.default_rng(5)
    hi = 2 if np.dtype(dtype).itemsize == 1 else 30
    ints = rng.integers(-hi, hi + 1, (r, 33))
    xs = [v.astype(np.float32).astype(dtype) for v in ints]
    out = run(local.all_reduce, numba, per_rank=xs, algorithm=algorithm, server_ranks=4)
    np.testing.assert_array_equal(as_f32(out[3]), ints.sum(axis=0))


def test_ring_order_is_not_rank_order():
    # the convention matters: chunk c starts at rank c+1, so a rank-order sum gives different bits
    xs = data(8, 64, ml_dtypes.bfloat16, seed=90)
    ring = local.all_reduce(xs, algorithm="ring")[0]
    chain = local.all_reduce(xs, algorithm="rank_order")[0]
    assert bits(ring) != bits(chain)


@pytest.mark.parametrize("algorithm", emu.collectives.ALGORITHMS)
def test_every_rank_ends_with_the_same_bits(algorithm):
    # NumPy twin with the full state: runs the all-gather phase too, and every rank's buffer must agree
    xs = data(8, 50, ml_dtypes.bfloat16, seed=91)
    opts = local.resolve_options(algorithm, channels=2, server_ranks=4)
    with emu.settings(numba=False):
        _, state = local.run_group("all_reduce", xs, "add", opts, {}, full_state=True)
    assert all(bits(state[i]) == bits(state[0]) for i in range(8))


@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn])
def test_list_stack_and_strided_inputs_agree(dtype):
    """The kernel reads each rank's input through its address: a stack, a list of separate arrays and a list of
    strided views (copied to contiguous first) must give the reference bits."""
    xs = data(16, 3000, dtype, seed=17)
    want = ref.ring_all_reduce([as_f32(x) for x in xs], dtype)
    wide = [np.repeat(x, 2) for x in xs]
    for per_rank in (np.stack(xs), [x.copy() for x in xs], [w[::2] for w in wide]):
        assert_same_bits(local.all_reduce(per_rank, algorithm="ring")[0], want, dtype)


@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.bfloat16])
@pytest.mark.parametrize("r,n", [(2, 80001), (256, 1000), (64, 4096)])
def test_fast_paths_on_long_chains_and_split_tiles(dtype, r, n):
    # chunks longer than a kernel tile (r=2) and 255-step chains (r=256) against the reference order
    xs = data(r, n, dtype, seed=r)
    want = ref.ring_all_reduce([as_f32(x) for x in xs], dtype)
    assert_same_bits(local.all_reduce(np.stack(xs), algorithm="ring")[0], want, dtype)
    assert_same_bits(local.all_reduce(xs, algorithm="ring", channels=2)[0],
                     ref.ring_all_reduce([as_f32(x) for x in xs], dtype, 2), dtype)


def test_the_kernel_addresses_only_buffers_it_can_read():
    """The tile kernel reads each rank's buffer through its address, so anything but C-contiguous buffers of one
    dtype and size is refused before the kernel runs (the public API validates earlier, with its own messages)."""
    from emulator.collectives._kernels import input_addresses

    a = np.arange(8, dtype=np.float32)
    addrs, like = input_addresses([a, a + 1])
    assert addrs[0] == a.ctypes.data and like.dtype == np.float32 and like.size == 0
    stacked = np.zeros((3, 5), np.float32)
    assert (np.diff(input_addresses(stacked)[0]) == 20).all()
    for bad in ([a, a.astype(np.float64)], [a, np.arange(16, dtype=np.float32)[::2]], [a, a[:4]]):
        with pytest.raises(ValueError, match="C-contiguous"):
            input_addresses(bad)
    with pytest.raises(ValueError, match="2-D"):
        input_addresses(np.zeros((4, 6), np.float32)[:, ::2])
