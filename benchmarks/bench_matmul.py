"""Throughput of emu.matmul (exact-order emulation) against numpy.matmul in float32, measured in the same run.

    python benchmarks/bench_matmul.py [--quick]

Prints, per format, the emulated time, GMAC/s and the ratio to numpy float32 matmul (optimised BLAS) on the same
shape; it never asserts on time. Target from issue 7: bf16 and MXFP8 1024^3 at >= 0.25x numpy.
"""

from __future__ import annotations

import argparse
import os
import time

for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # let BLAS pick its best kernel for the baseline
    os.environ.pop(_var, None)

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout without installing
from _machine import machine_line  # noqa: E402
from _timing import best_of  # noqa: E402
import emulator as emu  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="512^3 only, fewer repeats")
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
    print("(compute-bound: the streaming limit, one pass over A, B and C, is not a bound worth printing here)")
    print(f"baseline numpy.matmul float32 {n}^3: {base * 1e3:8.1f} ms  {macs / base / 1e9:7.2f} GMAC/s")
    for fmt in ("bfloat16", "mxfp8_e4m3", "mxfp4", "float8_e4m3fn", "float32"):
        emu.matmul(a[:64, :64], b[:64, :64], fmt)  # compile / load the kernels
        t, tb = float("inf"), float("inf")
        for _ in range(repeat):  # interleaved with the baseline, so a busy machine slows both alike
            t = min(t, best_of(lambda: emu.matmul(a, b, fmt), 1, warmup=False))
            tb = min(tb, best_of(lambda: np.matmul(a, b), 1, warmup=False))
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
