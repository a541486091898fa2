"""nki.collectives-style SPMD calls map onto the engine (same bits as the in-process API)."""

import ml_dtypes
import numpy as np
import pytest

import emulator as emu
from emulator.errors import RankFailure
from emulator.nki import collectives as ncc


def test_spmd_all_reduce_matches_the_engine():
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(64).astype(np.float32).astype(ml_dtypes.bfloat16) for _ in range(4)]
    out = np.zeros((4, 64), ml_dtypes.bfloat16)

    def kernel():
        r = ncc.rank_id()
        ncc.all_reduce([xs[r]], [out[r]], ncc.ReplicaGroup([[0, 1, 2, 3]]), op=np.add)

    ncc.run_spmd(kernel, 4)
    want = emu.collectives.all_reduce(xs)[0]
    assert all(out[r].tobytes() == want.tobytes() for r in range(4))


def test_spmd_groups_gather_scatter_and_permute():
    out_g = np.zeros((4, 4), np.float32)
    out_rs = np.zeros((4, 2), np.float32)
    out_p = np.full((4, 2), -1.0, np.float32)

    def kernel():
        r = ncc.rank_id()
        src = np.full(2, float(r), np.float32)
        ncc.all_gather([src], [out_g[r]], [[0, 2], [1, 3]])
        ncc.reduce_scatter([np.arange(8, dtype=np.float32)],
                           [out_rs[r]], [[0, 1, 2, 3]])
        ncc.collective_permute([src], [out_p[r]], [(0, 1), (1, 2)])

    ncc.run_spmd(kernel, 4)
    assert out_g[2].tolist() == [0.0, 0.0, 2.0, 2.0]
    assert out_rs[1].tolist() == [8.0, 12.0]
    assert out_p[2].tolist() == [1.0, 1.0] and out_p[0].tolist() == [-1.0, -1.0]


def test_spmd_missing_rank_is_named():
    def kernel():
        if ncc.rank_id() == 1:
            return  # never joins
        ncc.all_reduce([np.ones(2, np.float32)], [np.zeros(2, np.float32)], [[0, 1, 2]])

    with emu.settings(collective_timeout=0.5):
        with pytest.raises(RankFailure, match="rank 1 did not arrive"):
            ncc.run_spmd(kernel, 3)


def test_patient_wait_counts_compiling_as_progress():
    import time

    import numba

    from emulator._jit import patient_wait

    calls = []

    def wait_once(t):
        calls.append(t)
        if len(calls) == 1:
            time.sleep(1.5)  # past the timeout...
            numba.njit(cache=False)(lambda x: x + 1)(1)  # ...but a kernel compiled just now
            return False
        return len(calls) == 3

    # (a second of slack after the compilation, so that a busy machine cannot make the check late)
    assert patient_wait(wait_once, timeout=1.0) and len(calls) == 3
    # nothing compiling: the timeout holds
    assert not patient_wait(lambda t: time.sleep(t) or False, timeout=0.05)
