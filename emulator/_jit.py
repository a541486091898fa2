"""The one place that decides between a Numba kernel and its pure NumPy twin.

Each hot loop lives in a ``_kernels.py`` module beside the code that uses it, written twice: a Numba kernel and a
NumPy twin with the same signature and bit-identical results. :func:`dispatch` picks one per call, so
``with emu.settings(numba=False)`` (or ``TRN3EMU_DISABLE_NUMBA=1``) switches every hot loop to NumPy at once, and
the tests run both.
"""

from __future__ import annotations

import functools
from typing import Callable

from .config import get_settings

try:  # Numba is a hard dependency, but keep working (slowly) where it cannot be imported.
    import numba as _numba

    HAVE_NUMBA = True
except Exception:  # pragma: no cover - exercised only on machines without numba
    _numba = None
    HAVE_NUMBA = False

__all__ = ["HAVE_NUMBA", "numba_active", "njit", "prange", "dispatch"]


def numba_active() -> bool:
    """True when Numba is importable and the ``numba`` setting is on."""
    return HAVE_NUMBA and get_settings().numba


def njit(*args, **kwargs):
    """``numba.njit`` with ``cache=True``; without Numba, the function is returned unchanged (never called hot)."""
    kwargs.setdefault("cache", True)
    if not HAVE_NUMBA:
        if args and callable(args[0]):
            return args[0]
        return lambda f: f
    return _numba.njit(*args, **kwargs)


prange = _numba.prange if HAVE_NUMBA else range


def dispatch(numba_impl: Callable, numpy_impl: Callable) -> Callable:
    """A function that calls ``numba_impl`` when Numba is active and ``numpy_impl`` otherwise."""

    @functools.wraps(numpy_impl)
    def call(*args, **kwargs):
        if numba_active():
            return numba_impl(*args, **kwargs)
        return numpy_impl(*args, **kwargs)

    call.numba_impl = numba_impl  # type: ignore[attr-defined]
    call.numpy_impl = numpy_impl  # type: ignore[attr-defined]
    return call
