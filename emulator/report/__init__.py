"""Reports people look at: classified diffs, settings sweeps, and HTML/PNG error reports.

* ``emu.report(result, reference, out)``: an HTML page, PNG plots (matplotlib, the ``plot`` extra) and a text twin
  describing a result's error against a float64 reference (:func:`emulator.report.page.write`);
* ``emu.report.sweep(a, b, ...)``: one matmul (or kernel) under several settings, each error tabulated
  (:func:`emulator.report.sweep.sweep`);
* ``emu.report.compare(a, b, fmt=None)``: the classified bitwise diff (``emu.testing.compare``).

The CLI has ``trn3emu compare``, ``trn3emu sweep`` and ``trn3emu report`` (:mod:`emulator.report.cli`). This
package sits on top: it imports the emulator, nothing in the emulator imports it.

>>> import emulator as emu
>>> callable(emu.report), emu.report.sweep.__name__
(True, 'sweep')
"""

from __future__ import annotations

import sys
import types

from ..testing import compare
from .errors import element_errors, error_stats
from .page import write
from .sweep import Sweep, sweep

__all__ = ["write", "sweep", "Sweep", "compare", "error_stats", "element_errors"]


class _CallableModule(types.ModuleType):
    """``emu.report(...)`` is ``emu.report.write(...)``; the module stays a module for ``emu.report.sweep``."""

    def __call__(self, result, reference, out, **kwargs):
        return write(result, reference, out, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
