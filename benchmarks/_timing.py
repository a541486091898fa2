"""Shared by the benchmark scripts (they run as ``python benchmarks/bench_*.py``, so this folder is on sys.path)."""

from __future__ import annotations

import time


def best_of(fn, repeat: int, warmup: bool = True) -> float:
    """Best wall time of ``repeat`` calls of ``fn``, in seconds, after one untimed call (Numba compiles on first use,
    pages get touched) unless ``warmup=False``."""
    if warmup:
        fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best
