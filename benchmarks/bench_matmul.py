"""Throughput of emu.matmul (exact-order emulation) against numpy.matmul in float32, measured in the same run.

    python benchmarks/bench_matmul.py [--quick] [--avx2]

Prints, per format, the emulated time, GMAC/s and the ratio to numpy float32 matmul (optimised BLAS) on the same
shape; it never asserts on time. Target (issue 16): bf16 and MXFP8 1024^3 at >= 0.5x numpy, with and without
AVX-512 (``--avx2`` compiles the emulator for haswell and restricts OpenBLAS to its Haswell kernels, so that an
AVX-512 machine measures what an AVX2-only one would).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # let BLAS pick its best kernel for the baseline
    os.environ.pop(_var, None)
if "--avx2" in sys.argv[1:]:  # before NumPy and Numba load: both read these once
    os.environ.update(NUMBA_CPU_NAME="haswell", NUMBA_CPU_FEATURES="+avx2", OPENBLAS_CORETYPE="Haswell")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout without installing
from _machine import machine_line  # noqa: E402
from _timing import best_of  # noqa: E402
import emulator as emu  # noqa: E402


#: Pause after each timed call, so that the worker threads of the library just called (OpenBLAS's, Numba's OpenMP
#: pool) stop spin-waiting before the other one runs: on 2 cores, OpenBLAS's spinning thread right after
#: numpy.matmul took a core from emu.matmul's 2 threads (1024^3 bf16: 17 ms right after it, 10 ms after 0.2 s).
_SETTLE = 0.2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="512^3 only, fewer repeats")
    parser.add_argument("--avx2", action="store_true",
                        help="an AVX2-only machine on any x86-64: the emulator's kernels compiled for haswell "
                             "(NUMBA_CPU_NAME=haswell NUMBA_CPU_FEATURES=+avx2) and OpenBLAS's Haswell kernels "
                             "for the baseline (OPENBLAS_CORETYPE=Haswell)")
    parser.add_argument("--big", action="store_true", help="also run 4096^3 bf16 once (minutes)")
    args = parser.parse_args()
    n = 512 if args.quick else 1024
    repeat = 2 if args.quick else 7  # a shared VM: the best of 7 interleaved rounds is steadier than of 3
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    base = best_of(lambda: np.matmul(a, b), repeat + 2, warmup=False)
    macs = n ** 3
    print(machine_line())
    if args.avx2:
        print("--avx2: emulator kernels compiled for haswell, baseline BLAS with OPENBLAS_CORETYPE=Haswell")
    print("(compute-bound: the streaming limit, one pass over A, B and C, is not a bound worth printing here)")
    print(f"baseline numpy.matmul float32 {n}^3: {base * 1e3:8.1f} ms  {macs / base / 1e9:7.2f} GMAC/s")
    for fmt in ("bfloat16", "mxfp8_e4m3", "mxfp4", "float8_e4m3fn", "float32"):
        emu.matmul(a[:64, :64], b[:64, :64], fmt)  # compile / load the kernels
        t, tb = float("inf"), float("inf")
        for _ in range(repeat):  # interleaved with the baseline, so a busy machine slows both alike
            t = min(t, best_of(lambda: emu.matmul(a, b, fmt), 1, warmup=False))
            time.sleep(_SETTLE)
            tb = min(tb, best_of(lambda: np.matmul(a, b), 1, warmup=False))
            time.sleep(_SETTLE)
        print(f"emu.matmul {fmt:14s} {n}^3: {t * 1e3:8.1f} ms  {macs / t / 1e9:7.2f} GMAC/s  "
              f"ratio to numpy float32 {tb / t:5.2f}x (numpy {tb * 1e3:.1f} ms in these rounds)")
    with emu.settings(numba=False):
        m = 256
        t = best_of(lambda: emu.matmul(a[:m, :m], b[:m, :m], "bfloat16"), 1, warmup=False)
        print(f"emu.matmul bfloat16 NumPy twin {m}^3: {t * 1e3:8.1f} ms  {m ** 3 / t / 1e9:7.2f} GMAC/s")
    if args.big:
        big = 4096
        x = rng.standard_normal((big, big)).astype(np.float32)
        y = rng.standard_normal((big, big)).astype(np.float32)
        t0 = time.perf_counter()
        emu.matmul(x, y, "bfloat16", progress=True)
        t = time.perf_counter() - t0
        tb = best_of(lambda: np.matmul(x, y), 1, warmup=False)
        print(f"emu.matmul bfloat16 {big}^3: {t:6.1f} s  ratio to numpy float32 {tb / t:5.2f}x")


if __name__ == "__main__":
    main()
