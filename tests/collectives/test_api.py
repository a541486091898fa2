"""Public in-process API: ops, SR, integers, replica groups, data movement, bad inputs, cost model."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import emulator as emu
from emulator.collectives import cost
from emulator.errors import DtypeError, ShapeError
from emulator.numerics import stochastic

C = emu.collectives


def bits(a):
    return np.asarray(a).view(np.uint8).tobytes()


def randn(r, n, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(n).astype(np.float32).astype(dtype) for _ in range(r)]


# ---------------------------------------------------------------------------------------------------------------
# ops and datapaths
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("numba", [True, False])
@pytest.mark.parametrize("op,fn", [("max", np.maximum.reduce), ("min", np.minimum.reduce)])
@pytest.mark.parametrize("algorithm", ["ring", "tree", "recursive_doubling", "mesh"])
def test_max_min_are_exact(numba, op, fn, algorithm):
    xs = randn(6, 40, ml_dtypes.bfloat16, seed=1)
    xs[2][:3] = [np.nan, -0.0, 0.0]
    xs[4][1:3] = [0.0, -0.0]
    with emu.settings(numba=numba):
        out = C.all_reduce(xs, op=op, algorithm=algorithm)[0].astype(np.float32)
    want = fn(np.stack([x.astype(np.float32) for x in xs]))
    np.testing.assert_array_equal(out, want)  # NaN wins
    sign = np.signbit(out[1:3])
    assert list(sign) == ([False, False] if op == "max" else [True, True])  # +0 > -0


def test_mul_of_small_integers_is_exact():
    xs = [np.full(8, v, np.float32) for v in (2, -3, 5, 1, 2)]
    np.testing.assert_array_equal(C.all_reduce(xs, op="mul")[0], np.full(8, -60.0))


@pytest.mark.parametrize("dtype", [np.int32, np.int16, np.uint8])
def test_integer_buffers(dtype):
    rng = np.random.default_rng(2)
    xs = [rng.integers(0, 20, 16).astype(dtype) for _ in range(5)]
    out = C.all_reduce(xs)
    assert out[0].dtype == dtype
    np.testing.assert_array_equal(out[0], np.sum(np.stack(xs).astype(np.int64), 0).astype(dtype))


def test_int32_beyond_2_24_goes_through_fp32_like_neuron():
    xs = [np.array([2 ** 24], np.int32), np.array([1], np.int32)]
    assert C.all_reduce(xs)[0][0] == 2 ** 24  # 2^24 + 1 is not an fp32 value


def test_rtz_rounding_is_used_per_step():
    xs = [np.array([1.0], np.float32).astype(ml_dtypes.bfloat16)] * 2 + [
        np.array([2 ** -8], np.float32).astype(ml_dtypes.bfloat16)] * 2
    # ring chunk 0 order: x1 + x2 + x3 + x0 = 1 + 2^-8 + 2^-8 + 1: under RNE 1 + 2^-8 ties to 1
    rne = C.all_reduce(xs, rounding="rne")[0].astype(np.float32)
    rtz = C.all_reduce(xs, rounding="rtz")[0].astype(np.float32)
    assert rne[0] == 2.0 and rtz[0] == 2.0
    assert C.all_reduce([np.float32([1.0, 3.0]).astype(ml_dtypes.bfloat16)] * 3, rounding="rtz")[0].dtype == \
        ml_dtypes.bfloat16


@pytest.mark.parametrize("numba", [True, False])
def test_stochastic_rounding_matches_per_step_reference(numba):
    r, n = 4, 64
    xs = randn(r, n, ml_dtypes.bfloat16, seed=3)
    with emu.settings(numba=numba):
        got = C.all_reduce(xs, rounding="sr", seed=11, site=5)[0]
    # reference: ring order, each step rounded with the SR stream keyed by the documented site
    base = stochastic.site_id("collective", 5)
    f = [x.astype(np.float32) for x in xs]
    want = np.empty(n, np.float32)
    m = n // r
    for c in range(r):
        a, b = c * m, (c + 1) * m
        acc = f[(c + 1) % r][a:b]
        for s in range(r - 1):
            acc = (acc + f[(c + 2 + s) % r][a:b]).astype(np.float32)
            site = (base + (s << 24) + c) % 2 ** 64
            codes = stochastic.cast_sr(acc, "bfloat16", seed=11, site=site, offset=a, sr_bits=0)
            acc = emu.decode(codes, "bfloat16")
        want[a:b] = acc
    assert bits(got) == bits(want.astype(ml_dtypes.bfloat16))


def test_stochastic_rounding_depends_on_seed_and_site_only():
    xs = randn(5, 300, ml_dtypes.bfloat16, seed=4)
    a = C.all_reduce(xs, rounding="sr", seed=1)[0]
    assert bits(a) == bits(C.all_reduce(xs, rounding="sr", seed=1)[0])
    assert bits(a) != bits(C.all_reduce(xs, rounding="sr", seed=2)[0])
    assert bits(a) != bits(C.all_reduce(xs, rounding="sr", seed=1, site=1)[0])
    assert bits(a) != bits(C.all_reduce(xs, rounding="rne")[0])


def test_sr_scope_excluding_collectives_rounds_to_nearest():
    xs = randn(5, 100, ml_dtypes.bfloat16, seed=6)
    with emu.settings(rounding="sr", sr_scope="engine"):
        got = C.all_reduce(xs)[0]
    assert bits(got) == bits(C.all_reduce(xs, rounding="rne")[0])


def test_fp8_overflow_follows_the_cast_rules():
    big = np.float32([400.0]).astype(ml_dtypes.float8_e4m3fn)
    assert np.isnan(C.all_reduce([big, big])[0].astype(np.float32)[0])  # 800 -> NaN (e4m3fn has no inf)
    assert C.all_reduce([big, big], saturate=True)[0].astype(np.float32)[0] == 448.0


def test_stacked_array_input_equals_list_input():
    xs = randn(6, 100, ml_dtypes.bfloat16, seed=7)
    assert bits(C.all_reduce(np.stack(xs))[0]) == bits(C.all_reduce(xs)[0])


def test_results_are_read_only_unless_copied():
    xs = randn(2, 4)
    out = C.all_reduce(xs)
    with pytest.raises(ValueError):
        out[0][0] = 1.0
    C.all_reduce(xs, copy=True)[0][0] = 1.0


# ---------------------------------------------------------------------------------------------------------------
# reduce_scatter / reduce / replica groups
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", emu.collectives.ALGORITHMS)
def test_reduce_scatter_blocks_are_exact_sums(algorithm):
    rng = np.random.default_rng(8)
    ints = rng.integers(-50, 50, (4, 12, 3))
    out = C.reduce_scatter([v.astype(np.float32) for v in ints], algorithm=algorithm, server_ranks=2)
    total = ints.sum(0)
    for r in range(4):
        np.testing.assert_array_equal(out[r], total[3 * r:3 * r + 3])


def test_reduce_to_root():
    xs = randn(5, 10, ml_dtypes.bfloat16, seed=9)
    out = C.reduce(xs, root=3, algorithm="ring")
    assert [o is None for o in out] == [True, True, True, False, True]
    assert bits(out[3]) == bits(C.all_reduce(xs, algorithm="ring")[0])


def test_replica_groups_reduce_separately():
    xs = [np.full(3, float(r), np.float32) for r in range(6)]
    out = C.all_reduce(xs, replica_group=[[0, 2, 4], [1, 5]])
    assert out[3] is None
    np.testing.assert_array_equal(out[4], np.full(3, 6.0))
    np.testing.assert_array_equal(out[5], np.full(3, 6.0))


def test_group_local_ranks_decide_the_order():
    xs = randn(4, 8, ml_dtypes.bfloat16, seed=12)
    perm = [2, 0, 3, 1]
    out = C.all_reduce(xs, replica_group=[perm])
    assert bits(out[0]) == bits(C.all_reduce([xs[i] for i in perm])[0])


# ---------------------------------------------------------------------------------------------------------------
# data movement
# ---------------------------------------------------------------------------------------------------------------

def test_all_gather_and_all_to_all():
    xs = [np.arange(4, dtype=np.float32) + 10 * r for r in range(4)]
    g = C.all_gather(xs)
    np.testing.assert_array_equal(g[2], np.concatenate(xs))
    a = C.all_to_all(xs)
    for j in range(4):
        np.testing.assert_array_equal(a[j], np.array([xs[i][j] for i in range(4)]))
    two_d = [np.arange(6, dtype=np.float32).reshape(2, 3) + r for r in range(2)]
    assert C.all_gather(two_d, collective_dim=1)[0].shape == (2, 6)


def test_v_forms_and_permutes():
    xs = [np.arange(3, dtype=np.float32), np.arange(5, dtype=np.float32) + 100]
    np.testing.assert_array_equal(C.all_gather_v(xs)[1], np.concatenate(xs))
    out = C.all_to_all_v(xs, [[1, 2], [3, 2]])
    np.testing.assert_array_equal(out[0], [0.0, 100, 101, 102])
    np.testing.assert_array_equal(out[1], [1.0, 2, 103, 104])
    p = C.collective_permute(randn(3, 2), [(0, 2), (2, 1)])
    assert p[0] is None and p[1] is not None
    ring = C.collective_permute_implicit([np.float32([r]) for r in range(4)])
    assert [float(x[0]) for x in ring] == [3.0, 0.0, 1.0, 2.0]
    assert float(C.broadcast([None, np.float32([7.0]), None], root=1)[2][0]) == 7.0


# ---------------------------------------------------------------------------------------------------------------
# bad inputs
# ---------------------------------------------------------------------------------------------------------------

def test_bad_inputs_give_clear_errors():
    with pytest.raises(ShapeError, match="rank 1 has shape"):
        C.all_reduce([np.zeros(4, np.float32), np.zeros(5, np.float32)])
    with pytest.raises(DtypeError, match="rank 1 holds"):
        C.all_reduce([np.zeros(4, np.float32), np.zeros(4, np.float16)])
    with pytest.raises(ValueError, match="op: 'avg'"):
        C.all_reduce(randn(2, 4), op="avg")
    with pytest.raises(ValueError, match="algorithm: 'bogus'"):
        C.all_reduce(randn(2, 4), algorithm="bogus")
    with pytest.raises(ShapeError, match="does not split into 3 equal blocks"):
        C.reduce_scatter(randn(3, 4))
    with pytest.raises(ShapeError, match="servers of 4 ranks"):
        C.all_reduce(randn(6, 4), algorithm="hierarchical", server_ranks=4)
    with pytest.raises(ShapeError, match="must not overlap"):
        C.all_reduce(randn(4, 4), replica_group=[[0, 1], [1, 2]])
    with pytest.raises(ShapeError, match="names rank 7"):
        C.all_reduce(randn(4, 4), replica_group=[[0, 7]])
    with pytest.raises(DtypeError, match="float4_e2m1fn"):
        C.all_reduce([np.zeros(4, ml_dtypes.float4_e2m1fn)] * 2)
    with pytest.raises(ShapeError, match="target of two pairs"):
        C.collective_permute(randn(3, 2), [(0, 1), (2, 1)])
    with pytest.raises(ShapeError, match="send_counts"):
        C.all_to_all_v(randn(2, 4), [[1, 1]])
    with pytest.raises(TypeError, match="list of arrays"):
        C.all_reduce(3.0)


# ---------------------------------------------------------------------------------------------------------------
# cost model
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ["ring", "recursive_doubling"])
@pytest.mark.parametrize("ranks", [2, 4, 16, 64, 256])
def test_closed_forms_equal_the_replay(algorithm, ranks):
    topo = C.Topology.preset("gen1")
    sch = C.build("all_reduce", algorithm, ranks)
    count = ranks * 1024
    replayed = cost.replay(sch, count, 2, topo)["seconds"]
    closed = cost.analytic("all_reduce", algorithm, ranks, count * 2, topo)
    assert closed == pytest.approx(replayed, rel=1e-9)


def test_cost_grows_with_bytes_and_crosses_tiers():
    topo = C.Topology.preset("gen2")
    small = cost.estimate("all_reduce", 16, 1 << 10, 2, "ring", topo)["seconds"]
    big = cost.estimate("all_reduce", 16, 1 << 24, 2, "ring", topo)["seconds"]
    assert small == pytest.approx(30 * (1.5e-6 + 4 * 3 * 64 / 4.9e12), rel=0.05)  # latency-bound: 2(R-1) hops
    m = (2 << 24) / 16  # bandwidth-bound: 30 hops of one chunk over the 256 GB/s server links + 15 DMA reduces
    assert big == pytest.approx(30 * (1.5e-6 + m / 256e9) + 15 * 4 * 3 * m / 4.9e12, rel=1e-6)
    # 4 ranks on one chip use only the on-chip tier; 2 UltraServers' worth reach EFA
    assert cost.replay(C.build("all_reduce", "ring", 4), 4096, 2, topo)["by_tier"][0] == 6
    far = cost.estimate("all_reduce", 4 * 288, 1 << 20, 2, "ring", topo)
    assert far["method"] == "analytic" and far["seconds"] > cost.estimate("all_reduce", 576, 1 << 20, 2, "ring",
                                                                          topo)["seconds"]


def test_estimate_at_a_million_chips_is_closed_form():
    for algorithm in C.ALGORITHMS:
        e = C.estimate("all_reduce", ranks=4 * 1_000_000, count=1 << 26, itemsize=2, algorithm=algorithm)
        assert e["method"] == "analytic" and 0 < e["seconds"] < 1e4


def test_explain_shows_schedule_order_and_estimate():
    text = C.explain("all_reduce", ranks=4, count=1024, algorithm="ring")
    assert "order of chunk 0: (((x1+x2)+x3)+x0)" in text
    assert "estimate (replay)" in text and "busbw" in text
    assert "order of chunk 0: ((x0+x1)+(x2+x3))" in C.explain("all_reduce", ranks=4, algorithm="recursive_halving")
