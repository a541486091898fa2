"""Shared by the tour sections: ``check`` for ``trn3emu selftest``, ``timed`` for the ``--timings`` speed lines."""

from __future__ import annotations

import time
from typing import Callable


def check(name: str, fn: Callable[[], tuple[bool, str]]) -> tuple[str, bool, str]:
    """Run one self-check ``fn() -> (ok, detail)``; a check that raises counts as failed, with the error as detail."""
    try:
        ok, detail = fn()
    except Exception as exc:  # a crashing check is a failed one
        return name, False, f"raised {type(exc).__name__}: {exc}"
    return name, bool(ok), detail


def timed(fn: Callable, repeat: int = 3):
    """``(fn(), best seconds)``: one warm-up call first (it compiles or loads the Numba kernels for exactly these
    shapes and dtypes), then the best of ``repeat`` calls, so a speed line never includes compilation.

    >>> result, seconds = timed(lambda: sum(range(10)))
    >>> result, seconds >= 0
    (45, True)
    """
    result = fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return result, best
