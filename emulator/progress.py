"""A one-line progress bar on stderr for work that takes more than a few seconds.

Why in-house and not tqdm or rich: the emulator's long operations are a handful of coarse loops (row blocks of a big
matmul, the rows of a sweep, chunks of an exhaustive cast sweep, collective steps, kernel programs), each updated a
few hundred times at most. A 60-line bar covers that; tqdm or rich would be a new dependency for every user (the
project's rule is numpy, ml_dtypes and numba only) for a feature they cannot see in CI logs anyway.

The bar is silent unless stderr is a terminal, outside pytest (``PYTEST_CURRENT_TEST`` unset), and not switched off
with ``TRN3EMU_PROGRESS=0`` (``TRN3EMU_PROGRESS=1`` forces it on, e.g. to watch a job through ``tee``). Updates are
redrawn at most ten times a second, so calling :meth:`Progress.update` once per chunk costs nothing measurable; hot
loops never call it per element.

>>> with Progress(3, "demo", enabled=False) as bar:
...     for _ in range(3):
...         bar.update()
>>> bar.done
3
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

__all__ = ["Progress", "progress_enabled"]

_REDRAW_S = 0.1
_WIDTH = 30


def progress_enabled(stream: TextIO | None = None) -> bool:
    """Whether a progress bar should be drawn on ``stream`` (default stderr); see the module docstring."""
    flag = os.environ.get("TRN3EMU_PROGRESS", "").strip().lower()
    if flag in ("0", "false", "no", "off"):
        return False
    if flag in ("1", "true", "yes", "on"):
        return True
    if "PYTEST_CURRENT_TEST" in os.environ:
        return False
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Progress:
    """``with Progress(total, "label") as bar: ... bar.update(n)``: a bar with percentage, elapsed time and ETA.

    ``total=None`` shows a counter and the elapsed time instead of a bar (work of unknown size).
    """

    def __init__(self, total: int | None, label: str, *, enabled: bool | None = None, stream: TextIO | None = None):
        self.total = total
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        self.enabled = progress_enabled(self.stream) if enabled is None else enabled
        self.done = 0
        self._start = time.perf_counter()
        self._drawn = 0.0

    def __enter__(self) -> "Progress":
        self._start = time.perf_counter()
        return self

    def update(self, n: int = 1, note: str = "") -> None:
        """Record ``n`` more units done; redraw when enabled and at least 0.1 s have passed."""
        self.done += n
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._drawn >= _REDRAW_S or (self.total is not None and self.done >= self.total):
            self._drawn = now
            self._draw(now, note)

    def _draw(self, now: float, note: str) -> None:
        elapsed = now - self._start
        if self.total:
            frac = min(self.done / self.total, 1.0)
            fill = int(_WIDTH * frac)
            eta = elapsed * (1 - frac) / frac if frac > 0 else 0.0
            text = (f"{self.label} [{'#' * fill}{'-' * (_WIDTH - fill)}] {self.done}/{self.total} "
                    f"{elapsed:.1f}s elapsed, ~{eta:.0f}s left")
        else:
            text = f"{self.label}: {self.done} done, {elapsed:.1f}s"
        if note:
            text += f"  {note}"
        self.stream.write("\r" + text + "\033[K")
        self.stream.flush()

    def __exit__(self, *exc) -> None:
        if self.enabled and self._drawn:
            self._draw(time.perf_counter(), "")
            self.stream.write("\n")
            self.stream.flush()
