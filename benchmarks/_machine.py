"""What every benchmark prints besides its baseline: the machine and versions, and the streaming limit.

The *streaming limit* of an operation is the time of a trivial Numba kernel that reads the same input bytes and
writes the same output bytes (one pass, all Numba threads, no arithmetic beyond a truncating copy). An element-wise
cast cannot be faster than that on this machine, so ``limit / time`` (the *fraction of the streaming limit*) says how
close a kernel is to memory-bound, whatever the machine. Benchmarks never assert on time.
"""

from __future__ import annotations

import os
import platform

import numpy as np

from _timing import best_of


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def machine_line() -> str:
    """One line naming the CPU, AVX2 / AVX-512, cores, Numba threads and code-generation target, load, versions."""
    import ml_dtypes

    flags = _cpu_flags()
    avx512 = "AVX-512" if "avx512f" in flags else ("no AVX-512 (AVX2)" if "avx2" in flags else "no AVX2")
    try:
        import numba
        import llvmlite.binding as llvm

        from emulator._jit import simd_target

        target = os.environ.get("NUMBA_CPU_NAME") or llvm.get_host_cpu_name()
        lanes, wide = simd_target()  # what LLVM emits: NUMBA_CPU_NAME alone keeps the host's features
        isa = "AVX-512, 512-bit" if lanes == 16 else "AVX-512, 256-bit" if wide else "AVX2"
        nb = f"numba {numba.__version__} ({numba.get_num_threads()} threads, codegen for {target}: {isa} vectors)"
    except ImportError:
        nb = "numba not installed"
    try:
        load = "load %.1f" % os.getloadavg()[0]
    except OSError:
        load = "load ?"
    return (f"machine: {_cpu_model()}, {avx512}, {os.cpu_count()} cores, {load}; numpy {np.__version__}, "
            f"ml_dtypes {ml_dtypes.__version__}, {nb}")


_kernel = None


def _stream_kernel():
    global _kernel
    if _kernel is None:
        from numba import njit, prange

        @njit(parallel=True, cache=True)
        def stream(src, dst):
            # one read of src and one write of dst per element: the truncating copy keeps the loop a pure stream
            for i in prange(dst.size):
                dst[i] = src[i]

        _kernel = stream
    return _kernel


def _as_uint(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1).view({1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def streaming_time(src: np.ndarray, out_itemsize: int, repeat: int = 5, threads: int | None = None) -> float:
    """Best time of the streaming kernel reading ``src`` (its bytes, element by element) and writing ``src.size``
    elements of ``out_itemsize`` bytes; ``threads`` limits Numba's threads for the measurement (None = all)."""
    try:
        import numba
    except ImportError:  # no Numba: no streaming kernel to time
        return float("nan")
    dst = np.empty(src.size, {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[out_itemsize])
    s = _as_uint(src)
    kern = _stream_kernel()
    old = numba.get_num_threads()
    if threads is not None:
        numba.set_num_threads(threads)
    try:
        return best_of(lambda: kern(s, dst), repeat)
    finally:
        numba.set_num_threads(old)


def limit_text(t_limit: float, t: float) -> str:
    """``'limit 3.7 ms, 46%'``: the streaming limit and the fraction of it a kernel timed ``t`` reaches."""
    if t_limit != t_limit:
        return "limit n/a (no Numba)"
    return f"limit {t_limit * 1e3:.2f} ms, {100 * t_limit / t:3.0f}%"
