"""Kernels launched on two cores (LNC=2) by the ranks of a run_spmd: each core meets the same core of the other ranks
in nki.collectives (setting lnc_collectives), rank_id is the rank, and a failure anywhere stops every rank."""

import numpy as np
import pytest

import emulator as emu
import emulator.nki as nki
from emulator.errors import ShapeError, UsageError

nl = nki.language
nisa = nki.isa
ncc = nki.collectives


@nki.jit
def gather_tiles(inp, replica_group):
    """sb2sb-style: each program loads its own 128-row tiles, all-gathers them along the columns, stores them."""
    M, K = inp.shape
    ranks = len(replica_group.groups[0])
    programs = nl.num_programs(axes=0) if nl.program_ndim() else 1
    me = nl.program_id(axis=0) if nl.program_ndim() else 0
    per = M // 128 // programs
    out = nl.ndarray((M, K * ranks), dtype=inp.dtype, buffer=nl.shared_hbm)
    for t in range(per):
        m0 = (me * per + t) * 128
        src = nl.ndarray((128, K), dtype=inp.dtype, buffer=nl.sbuf)
        dst = nl.ndarray((128, K * ranks), dtype=inp.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=src, src=inp[m0:m0 + 128, 0:K])
        ncc.all_gather(dsts=[dst], srcs=[src], replica_group=replica_group, collective_dim=1)
        nisa.dma_copy(dst=out[m0:m0 + 128, 0:K * ranks], src=dst)
    return out


@nki.jit
def reduce_everywhere(inp, replica_group):
    """Both programs run the same all-reduce on the same shared-HBM tensors (no program_id in the kernel)."""
    src = nl.ndarray(inp.shape, dtype=inp.dtype, buffer=nl.shared_hbm, name="src")
    dst = nl.ndarray(inp.shape, dtype=inp.dtype, buffer=nl.shared_hbm, name="dst")
    out = nl.ndarray(inp.shape, dtype=inp.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=src, src=inp)
    ncc.all_reduce(dsts=[dst], srcs=[src], op=nl.add, replica_group=replica_group)
    nisa.dma_copy(dst=out, src=dst)
    return out


@nki.jit
def select_by_rank(table):
    """The rank as a DMA's scalar offset: row block ``rank`` of the table."""
    _, H, W = table.shape
    out = nl.ndarray((H, W), dtype=table.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=out, src=table.ap(pattern=[[W, H], [1, W]], scalar_offset=ncc.rank_id(), indirect_dim=0))
    return out


def _run(kernel, ranks, lnc, inputs):
    outs = [None] * ranks

    def body():
        r = ncc.rank_id()
        outs[r] = kernel[lnc](*inputs[r])

    ncc.run_spmd(body, ranks)
    return outs


@pytest.mark.parametrize("ranks,lnc,rows", [(4, 2, 512), (2, 2, 256), (3, 1, 256), (8, 1, 128)])
def test_each_core_gathers_its_own_tiles_with_the_other_ranks(ranks, lnc, rows):
    rng = np.random.default_rng(ranks * 10 + lnc)
    xs = rng.standard_normal((ranks, rows, 48)).astype(np.float32)
    group = ncc.ReplicaGroup([list(range(ranks))])
    outs = _run(gather_tiles, ranks, lnc, [(xs[r], group) for r in range(ranks)])
    want = np.concatenate(list(xs), axis=1)  # rank r's columns r*48 .. r*48+47
    for r in range(ranks):
        assert outs[r].tobytes() == want.tobytes(), r


def test_both_cores_running_the_same_all_reduce_agree():
    ranks = 4
    # small integers: every summation order gives the same float32 sum, so NumPy's is the reference
    xs = np.random.default_rng(1).integers(-50, 50, (ranks, 64, 32)).astype(np.float32)
    group = ncc.ReplicaGroup([list(range(ranks))])
    outs = _run(reduce_everywhere, ranks, 2, [(xs[r], group) for r in range(ranks)])
    want = xs.astype(np.float64).sum(axis=0)
    for r in range(ranks):
        assert np.array_equal(outs[r], want), r


def test_rank_id_in_an_lnc_kernel_is_the_rank_not_the_core():
    table = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    outs = _run(select_by_rank, 3, 2, [(table,)] * 3)
    for r in range(3):
        assert np.array_equal(outs[r], table[r]), r


def test_lnc_collectives_refuse_names_the_setting():
    group = ncc.ReplicaGroup([[0, 1]])
    xs = np.ones((2, 8, 4), np.float32)
    with emu.settings(lnc_collectives="refuse"):
        with pytest.raises(UsageError, match="lnc_collectives"):
            _run(reduce_everywhere, 2, 2, [(xs[r], group) for r in range(2)])
        # one core per rank is not affected
        outs = _run(reduce_everywhere, 2, 1, [(xs[r], group) for r in range(2)])
    assert np.array_equal(outs[1], 2 * xs[1])


def test_a_failing_core_stops_every_rank():
    @nki.jit
    def fails_on_rank1_core1(inp, replica_group):
        if ncc.rank_id() == 1 and nl.program_id(axis=0) == 1:
            raise ShapeError("rank 1 core 1 gave up")
        return reduce_everywhere(inp, replica_group)

    group = ncc.ReplicaGroup([[0, 1, 2]])
    xs = np.ones((3, 8, 4), np.float32)
    with emu.settings(collective_timeout=20.0):  # the failure must end the wait, not the timeout
        with pytest.raises(ShapeError, match="rank 1 core 1 gave up"):
            _run(fails_on_rank1_core1, 3, 2, [(xs[r], group) for r in range(3)])
