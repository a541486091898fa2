"""Shared by the benchmark scripts (they run as ``python benchmarks/bench_*.py``, so this folder is on sys.path)."""

from __future__ import annotations

import time


def best_of(fn, repeat: int, warmup: bool = True, clock=time.perf_counter) -> float:
    """Best wall time of ``repeat`` calls of ``fn``, in seconds, after one untimed call (Numba compiles on first use,
    pages get touched) unless ``warmup=False``; ``clock=time.thread_time`` times this thread's CPU time instead."""
    if warmup:
        fn()
    best = float("inf")
    for _ in range(repeat):
        t = clock()
        fn()
        best = min(best, clock() - t)
    return best
