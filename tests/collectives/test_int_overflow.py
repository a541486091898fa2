"""Integer collectives whose result leaves the dtype's range: setting ``collective_int_overflow``.

The reference is the exact integer sum in Python ints, then the policy written from its definition: clamp to
[min, max] (saturate) or two's complement modulo 2^bits (wrap, what NCCL/MPI integer sums give). Inputs stay far
below 2^24, so the fp32 fold Neuron uses is exact and the policy alone decides the result.
"""

from __future__ import annotations

import numpy as np
import pytest

import emulator as emu
from emulator import collectives as C

DTYPES = [np.int8, np.uint8, np.int16, np.uint16, np.int32]


def _inputs(dtype, ranks=5, n=64, seed=0):
    info = np.iinfo(dtype)
    lo, hi = max(info.min, -(1 << 20)), min(info.max, 1 << 20)
    rng = np.random.default_rng(seed)
    return [rng.integers(lo, hi, n, endpoint=True).astype(dtype) for _ in range(ranks)]


def _exact(xs) -> list[int]:
    return [sum(int(x[i]) for x in xs) for i in range(xs[0].size)]


def _wrap(v: int, dtype) -> int:
    info = np.iinfo(dtype)
    span = 1 << (8 * np.dtype(dtype).itemsize)
    return (v - info.min) % span + info.min


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm", ["ring", "tree"])
def test_saturate_and_wrap_follow_their_definitions(dtype, algorithm):
    xs = _inputs(dtype)
    exact = _exact(xs)
    info = np.iinfo(dtype)
    if dtype != np.int32:  # int32 sums of 2^20-sized values stay in range: nothing to overflow
        assert any(not info.min <= v <= info.max for v in exact)
    with emu.settings(collective_int_overflow="saturate"):
        sat = C.all_reduce(xs, algorithm=algorithm)[0]
    with emu.settings(collective_int_overflow="wrap"):
        wrap = C.all_reduce(xs, algorithm=algorithm)[0]
    assert sat.dtype == wrap.dtype == dtype
    assert sat.tolist() == [min(max(v, int(info.min)), int(info.max)) for v in exact]
    assert wrap.tolist() == [_wrap(v, dtype) for v in exact]


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16])
def test_the_default_refuses_an_overflow_and_names_it(dtype):
    xs = _inputs(dtype)
    exact = _exact(xs)
    info = np.iinfo(dtype)
    first = next(i for i, v in enumerate(exact) if not info.min <= v <= info.max)
    with pytest.raises(emu.IntegerOverflowError, match=f"{np.dtype(dtype).name} result at flat index {first} is "
                                                       f"{exact[first]}, outside {info.min}..{info.max}"):
        C.all_reduce(xs)
    with pytest.raises(OverflowError):  # the builtin base stays
        C.reduce_scatter([np.full((4, 2), info.max, dtype)] * 4)


def test_the_issue_case_four_ranks_of_int8_100():
    xs = [np.full(4, 100, np.int8)] * 4
    with pytest.raises(emu.IntegerOverflowError, match="400"):
        C.all_reduce(xs)
    with emu.settings(collective_int_overflow="wrap"):
        assert C.all_reduce(xs)[0].tolist() == [400 - 512] * 4  # 400 mod 256 = 144 = -112 as int8
    with emu.settings(collective_int_overflow="saturate"):
        assert C.all_reduce(xs)[0].tolist() == [127] * 4


def test_in_range_results_are_unchanged_by_the_setting():
    xs = [np.full(4, 30, np.int8)] * 4
    for policy in ("raise", "saturate", "wrap"):
        with emu.settings(collective_int_overflow=policy):
            assert C.all_reduce(xs)[0].tolist() == [120] * 4
