"""The one place that decides between a Numba kernel and its pure NumPy twin.

Each hot loop lives in a ``_kernels.py`` module beside the code that uses it, written twice: a Numba kernel and a
NumPy twin with the same signature and bit-identical results. :func:`dispatch` picks one per call, so
``with emu.settings(numba=False)`` (or ``TRN3EMU_DISABLE_NUMBA=1``) switches every hot loop to NumPy at once, and
the tests run both.
"""

from __future__ import annotations

import functools
import os
import threading
import time
import types
from pathlib import Path
from typing import Callable

from .config import get_settings

try:  # Numba is a hard dependency, but keep working (slowly) where it cannot be imported.
    import numba as _numba

    HAVE_NUMBA = True
except Exception:  # pragma: no cover - exercised only on machines without numba
    _numba = None
    HAVE_NUMBA = False

__all__ = ["HAVE_NUMBA", "numba_active", "njit", "prange", "dispatch", "sized", "clear_stale_kernel_caches",
           "simd_target"]

_STAMP = "trn3emu-kernels.stamp"


def clear_stale_kernel_caches(package_dir: Path, cache_root: str | None = None) -> bool:
    """Delete Numba's on-disk kernel caches of the package when any of its source files changed since the last call.

    Numba validates a cached kernel against the source file of the function only. A kernel that inlines helpers
    from another module (the cast kernels call ``_narrow.py`` and ``_u32.py``, the tiled matmul calls its generated
    micro-kernel) would load stale machine code after only the helper changed, e.g. after ``git pull`` in an
    editable install. The stamp is the (path, size, mtime) of every ``.py`` file of the package, kept in
    ``<package>/__pycache__``; when it differs, every ``*.nbi``/``*.nbc`` beside the sources (and under
    ``cache_root``, Numba's ``NUMBA_CACHE_DIR`` mirror of them) is removed, and kernels recompile once. Returns
    True when it cleared. Errors (a read-only install) are ignored: such an install is replaced as a whole.
    """
    package_dir = Path(package_dir)
    sources = sorted(package_dir.rglob("*.py"))
    stats = [(f, f.stat()) for f in sources]
    stamp_text = "\n".join(f"{f.relative_to(package_dir)} {st.st_size} {st.st_mtime_ns}" for f, st in stats)
    stamp = package_dir / "__pycache__" / _STAMP
    try:
        if stamp.read_text() == stamp_text:
            return False
    except OSError:
        pass
    dirs = {f.parent for f in sources}
    cache_dirs = [d / "__pycache__" for d in dirs]
    if cache_root:
        cache_dirs += [Path(cache_root) / str(d.resolve()).lstrip(os.sep) for d in dirs]
    for d in cache_dirs:
        for f in [*d.glob("*.nbi"), *d.glob("*.nbc")]:
            try:
                f.unlink()
            except OSError:
                pass
    try:
        stamp.parent.mkdir(exist_ok=True)
        stamp.write_text(stamp_text)
    except OSError:
        pass
    return True


if HAVE_NUMBA:
    try:
        clear_stale_kernel_caches(Path(__file__).resolve().parent, _numba.config.CACHE_DIR or None)
    except OSError:  # pragma: no cover - an unreadable source tree: Numba's own checks still apply
        pass


def numba_active() -> bool:
    """True when Numba is importable and the ``numba`` setting is on."""
    return HAVE_NUMBA and get_settings().numba


def njit(*args, **kwargs):
    """``numba.njit`` with ``cache=True``; without Numba, the function is returned unchanged (never called hot).

    A cached ``parallel=True`` build is made from a copy of the function under another qualified name
    (:func:`_cached_apart`): Numba keys its on-disk cache on the function's name, signature and CPU, not on the
    ``parallel`` flag, so the threaded and the serial build of one function shared a cache entry and whichever
    compiled first was loaded for both. Serial code then ran in place of the threaded kernel (one core busy at any
    thread count), or the threaded one woke the thread pool for every small call.
    """
    kwargs.setdefault("cache", True)
    if not HAVE_NUMBA:
        if args and callable(args[0]):
            return args[0]
        return lambda f: f
    if kwargs.get("parallel") and kwargs["cache"]:
        if args and callable(args[0]):
            return _numba.njit(**kwargs)(_cached_apart(args[0]))
        return lambda f: _numba.njit(*args, **kwargs)(_cached_apart(f))
    return _numba.njit(*args, **kwargs)


def _cached_apart(fn: Callable) -> Callable:
    """``fn`` under the qualified name ``<qualname>__parallel`` (same code, globals and closure), so Numba's cache
    file for its threaded build differs from the serial build's."""
    twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    twin.__kwdefaults__ = fn.__kwdefaults__
    twin.__qualname__ = fn.__qualname__ + "__parallel"
    twin.__module__ = fn.__module__
    twin.__doc__ = fn.__doc__
    twin.__dict__.update(fn.__dict__)
    return twin


prange = _numba.prange if HAVE_NUMBA else range


def sized(body: Callable, size_arg: int, serial_below: int) -> Callable:
    """A kernel body compiled twice, threaded and serial (both cached apart, :func:`njit`); the returned function
    runs the serial build when argument ``size_arg`` has fewer than ``serial_below`` elements, where waking the
    thread pool costs more than it saves (on a busy machine, up to a scheduler time slice). The builds are its
    ``threaded`` and ``serial`` attributes."""
    threaded, serial = njit(parallel=True)(body), njit(body)

    def run(*args):
        return (serial if args[size_arg].size < serial_below else threaded)(*args)

    run.threaded, run.serial = threaded, serial
    return run


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


@functools.lru_cache(maxsize=None)
def simd_target() -> tuple[int, bool]:
    """(float32 lanes per vector, AVX-512 registers) of the code Numba generates in this process.

    Read off the assembly of two small loops compiled as the kernels are (same ``NUMBA_CPU_NAME`` and
    ``NUMBA_CPU_FEATURES``): 16 lanes where LLVM emits zmm vectors, else 8 (AVX2, or an AVX-512 CPU that LLVM
    tunes for 256-bit vectors, such as skylake-avx512); AVX-512 registers with zmm code, or where a 64-bit integer
    maximum becomes one ``vpmaxsq`` (AVX-512VL: 32 vector registers rather than AVX2's 16). Note that
    ``NUMBA_CPU_NAME=haswell`` alone keeps the host's features (Numba passes them to LLVM, overriding the CPU's
    defaults): AVX2 code on an AVX-512 machine needs ``NUMBA_CPU_FEATURES`` too (e.g. ``+avx2``). (8, False) without
    Numba. Costs one compilation of ~0.1 s, once per process.
    """
    if not HAVE_NUMBA:
        return 8, False

    def scale(x, y):  # pragma: no cover - compiled, not run
        for i in range(x.size):
            y[i] += x[i] * x.dtype.type(3)

    def imax(x, y):  # pragma: no cover - compiled, not run
        for i in range(x.size):
            y[i] = max(y[i], x[i])

    f32 = (_numba.float32[::1], _numba.float32[::1])
    i64 = (_numba.int64[::1], _numba.int64[::1])
    lanes = 16 if "zmm" in _numba.njit(f32, cache=False)(scale).inspect_asm(f32) else 8
    wide_regs = lanes == 16 or "vpmaxsq" in _numba.njit(i64, cache=False)(imax).inspect_asm(i64)
    return lanes, wide_regs


class _CompileActivity:
    """Numba compilations in progress in this process, and when the last one started or ended (``numba:compile``
    events, which fire for real compilations, never for cache loads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clock = time.monotonic
        self.active = 0
        self.last = float("-inf")
        self.installed = False

    def install(self) -> None:
        with self._lock:
            if self.installed or not HAVE_NUMBA:
                return
            self.installed = True
        from numba.core import event

        activity = self

        class _Listener(event.Listener):
            def on_start(self, ev):
                with activity._lock:
                    activity.active += 1
                    activity.last = activity._clock()

            def on_end(self, ev):
                with activity._lock:
                    activity.active -= 1
                    activity.last = activity._clock()

        event.register("numba:compile", _Listener())


_COMPILES = _CompileActivity()


def compile_activity() -> tuple[int, float]:
    """(Numba compilations in progress, ``time.monotonic()`` of the last start or end; -inf before any). The first
    call starts listening; compilations before it are not seen."""
    _COMPILES.install()
    with _COMPILES._lock:
        return _COMPILES.active, _COMPILES.last


def patient_wait(wait_once: Callable[[float], bool], timeout: float) -> bool:
    """``wait_once(seconds)`` (True when the awaited thing happened) until it returns True, or until ``timeout``
    seconds passed both since the call and since Numba last compiled anything in this process, with no compilation
    in progress; False then. A peer that is compiling the emulator's kernels (minutes on a first run on a busy
    machine) is late, not gone: rendezvous watchdogs (setting ``collective_timeout``) wait through it."""
    start = time.monotonic()
    while True:
        active, last = compile_activity()
        now = time.monotonic()
        left = (now if active else max(start, last)) + timeout - now
        if left <= 0:
            return False
        if wait_once(min(left, 1.0)):
            return True
