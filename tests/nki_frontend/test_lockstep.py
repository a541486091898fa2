"""The turn order of a multi-program launch (setting ``lnc_schedule``).

Expected orders are written from the rule in docs/nki.md ("programs take turns in rank order, one DMA each; the
compute instructions between two DMAs run in the same turn; a program waiting in a rendezvous gives up its turns
until the rendezvous is complete; a finished program drops out"), not from running the code. Sleeps in the kernels' host code make a free-running thread order differ from the
rule, so a scheduler that did not enforce it would fail these tests; nothing here measures time.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from emulator import nki, settings
from emulator.errors import RankFailure
from emulator.nki import isa as nisa, language as nl


def _record(order: list, counts: dict, barrier_after: dict | None = None, sleep: dict | None = None):
    """A kernel whose program r issues counts[r] DMAs (each followed by two compute instructions of its own),
    appending (r, i) after each DMA; optionally a core_barrier after DMA barrier_after[r] and a host-side sleep
    before each DMA of the programs in ``sleep``."""
    barrier_after = barrier_after or {}
    sleep = sleep or {}

    @nki.jit
    def kernel(x):
        r = nl.program_id(0)
        t = nl.ndarray((1, 4), nl.float32, buffer=nl.sbuf)
        for i in range(counts[r]):
            time.sleep(sleep.get(r, 0.0))
            nisa.dma_copy(dst=t, src=x)
            order.append((r, i))
            nisa.memset(dst=t, value=float(i))  # compute: no turn boundary
            nisa.tensor_scalar(dst=t, data=t, op0=nl.add, operand0=1.0)
            if barrier_after.get(r) == i:
                nisa.core_barrier(data=t, cores=(0, 1))
                order.append((r, "barrier"))

    return kernel


_X = np.ones((1, 4), np.float32)


def test_programs_take_turns_one_dma_each_in_rank_order():
    order: list = []
    # program 0 is slowed down on the host: free threads would let program 1 run ahead
    _record(order, {0: 3, 1: 5}, sleep={0: 0.02})[2](_X)
    assert order == [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2), (1, 3), (1, 4)]


def test_a_program_in_a_barrier_gives_up_its_turns_until_the_barrier_is_complete():
    order: list = []
    # program 0 reaches the barrier after its 1st instruction, program 1 after its 4th; then 2 more each
    _record(order, {0: 3, 1: 6}, barrier_after={0: 0, 1: 3}, sleep={1: 0.01})[2](_X)
    # program 0 waits at the barrier while program 1 runs alone; program 1's arrival completes it, and as every
    # rendezvous is a turn boundary (the last to arrive also hands the turn on), the programs leave it in rank order
    assert order == [(0, 0), (1, 0), (1, 1), (1, 2), (1, 3), (0, "barrier"), (1, "barrier"),
                     (0, 1), (1, 4), (0, 2), (1, 5)]


def _zero_fill_then_store(sleep_before_fill: float):
    """Each program zero-fills the whole shared output, then writes its own half: the LNC kernels' pattern
    (nki-library cascaded_max_utils) that relies on both cores starting together."""

    @nki.jit
    def kernel(x):
        r = nl.program_id(0)
        out = nl.ndarray((8, 4), nl.float32, buffer=nl.shared_hbm)
        zero = nl.ndarray((8, 4), nl.float32, buffer=nl.sbuf)
        if r == 1:
            time.sleep(sleep_before_fill)
        nisa.memset(dst=zero, value=0.0)
        nisa.dma_copy(dst=out, src=zero)
        half = nl.ndarray((4, 4), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=half, src=x[4 * r:4 * r + 4, :])
        nisa.dma_copy(dst=out[4 * r:4 * r + 4, :], src=half)
        return out

    return kernel


def test_shared_hbm_race_resolves_as_both_cores_starting_together():
    x = np.arange(32, dtype=np.float32).reshape(8, 4) + 1
    for _ in range(3):  # same result every run, whatever the host-side delay of program 1
        out = _zero_fill_then_store(0.2)[2](x)
        np.testing.assert_array_equal(out, x)


def test_free_schedule_runs_race_free_kernels():
    x = np.arange(32, dtype=np.float32).reshape(8, 4) + 1
    with settings(lnc_schedule="free"):
        out = _zero_fill_then_store(0.0)[2](x)
    assert out.shape == (8, 4)  # which half survives the race is not defined under free


def test_a_failing_program_releases_the_one_waiting_for_its_turn():
    @nki.jit
    def kernel():
        r = nl.program_id(0)
        t = nl.ndarray((1, 4), nl.float32, buffer=nl.sbuf)
        for i in range(4):
            if r == 0 and i == 2:
                raise ValueError("kernel bug in program 0")
            nisa.memset(dst=t, value=1.0)

    with pytest.raises(ValueError, match="kernel bug in program 0"):
        kernel[2]()


def test_a_program_that_never_arrives_is_named_under_lockstep():
    @nki.jit
    def kernel():
        t = nl.ndarray((1, 4), nl.float32, buffer=nl.sbuf)
        nisa.memset(dst=t, value=1.0)
        if nl.program_id(0) == 0:
            nisa.core_barrier(data=t, cores=(0, 1))

    with settings(collective_timeout=0.3):
        with pytest.raises(RankFailure, match="core 1 did not arrive"):
            kernel[2]()


@pytest.mark.parametrize("schedule", ["lockstep", "free"])
def test_collectives_inside_a_launch_under_both_schedules(schedule):
    from emulator.nki import collectives as ncc

    @nki.jit
    def kernel(x):
        r = nl.program_id(0)
        src = nl.ndarray((2, 4), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=src, src=x[2 * r:2 * r + 2, :])
        dst = nl.ndarray((2, 4), nl.float32, buffer=nl.sbuf)
        ncc.all_reduce(srcs=[src], dsts=[dst], replica_group=[[0, 1, 2]], op=nl.add)
        out = nl.ndarray((6, 4), nl.float32, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=out[2 * r:2 * r + 2, :], src=dst)
        return out

    x = np.arange(24, dtype=np.float32).reshape(6, 4)
    want = x[0:2] + x[2:4] + x[4:6]  # small integers: exact in fp32 in any order
    with settings(lnc_schedule=schedule):
        out = kernel[3](x)
    for r in range(3):
        np.testing.assert_array_equal(out[2 * r:2 * r + 2], want)
