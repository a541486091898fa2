"""Numba compile tracking for the tour: say so on stderr while kernels compile, and measure how long it took.

Numba compiles a kernel on its first call (tens of seconds for the whole tour on two cores) and stores the result in
its on-disk cache (``cache=True``: ``__pycache__`` beside the module, or the user cache directory / ``NUMBA_CACHE_DIR``
where the package folder is read-only), so later runs only load it. :class:`CompileWatch` listens to Numba's
``numba:compile`` event, which fires only for a real compilation (never for a cache load), and

* prints one line on stderr the first time a cacheable kernel starts compiling in this process;
* adds up the wall time of the outermost compilations (a kernel compiling the kernels it calls counts once);
* lists what was compiled (``NAME(arg types)``, the outermost with its time, the kernels it compiled indented
  under it), for ``trn3emu demo --compile-report``.

>>> with CompileWatch(notify=False) as w:
...     pass
>>> w.seconds, w.compiled
(0.0, [])
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["CompileWatch", "NOTICE"]

#: What the user reads while the first run compiles; ``{seconds}`` is the first-run compile time measured on the
#: 2-core reference machine (README, "Commands").
NOTICE = ("trn3emu: compiling Numba kernels on first use (about {seconds} s, once; they are cached on disk "
          "afterwards)")
FIRST_RUN_COMPILE_SECONDS = 30

_notified = False


def _event_module():
    try:
        from numba.core import event
    except Exception:  # no Numba: nothing ever compiles
        return None
    return event


class CompileWatch:
    """Context manager recording Numba compilations inside it (see the module docstring)."""

    def __init__(self, notify: bool = True, stream: TextIO | None = None):
        self.notify = notify
        self.stream = stream
        self.seconds = 0.0
        self.compiled: list[str] = []
        self._depth = 0
        self._t0 = 0.0
        self._top = 0
        self._listener = None

    # --- numba.core.event.Listener protocol -------------------------------------------------------------------------
    def on_start(self, event) -> None:
        if self._depth == 0:
            self._t0 = time.perf_counter()
            self._announce(event)
            self._top = len(self.compiled)
        data = event.data or {}
        disp = data.get("dispatcher")
        name = getattr(getattr(disp, "py_func", None), "__qualname__", "?")
        self.compiled.append("  " * self._depth + f"{name}({', '.join(map(str, data.get('args', ())))})")
        self._depth += 1

    def on_end(self, event) -> None:
        self._depth -= 1
        if self._depth == 0:
            took = time.perf_counter() - self._t0
            self.seconds += took
            self.compiled[self._top] += f"  [{took:.2f} s]"

    def _announce(self, event) -> None:
        global _notified
        if not self.notify or _notified:
            return
        disp = (event.data or {}).get("dispatcher")
        # per-process kernels (cache=False: closures with constants frozen in, or faster when fresh) compile on every
        # run; the notice is about the one-off cost, so it waits for a kernel that will be cached
        if type(getattr(disp, "_cache", None)).__name__ == "NullCache":
            return
        _notified = True
        print(NOTICE.format(seconds=FIRST_RUN_COMPILE_SECONDS), file=self.stream or sys.stderr, flush=True)

    # --- context manager ---------------------------------------------------------------------------------------------
    def __enter__(self) -> "CompileWatch":
        event = _event_module()
        if event is not None:
            watch = self

            class _Forward(event.Listener):
                def on_start(self, ev):
                    watch.on_start(ev)

                def on_end(self, ev):
                    watch.on_end(ev)

            listener = _Forward()
            event.register("numba:compile", listener)
            self._listener = listener
        return self

    def __exit__(self, *exc) -> None:
        if self._listener is not None:
            _event_module().unregister("numba:compile", self._listener)
            self._listener = None
