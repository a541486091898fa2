"""Throughput of stochastic rounding (keyed stream, bits made inside the kernel) as Melem/s and as a ratio to
ml_dtypes RNE ``astype`` of the same values, measured in the same run; plus the XORWOW generators.

    python benchmarks/bench_sr.py [--quick] [--n N] [--repeat R]

Ratios > 1 mean faster than the baseline. Nothing here asserts on time. Timings interleave the SR cast and its
baseline (best of R each), so a shared, busy machine slows both alike.

Besides the streaming limit (a copy into a reused output), each row gives the fraction of a second limit: the same
copy into a freshly allocated output, as every cast returning a new array must do. A new 32 MiB array (16.8M 2-byte
codes) lies above glibc's largest mmap threshold, so each call maps fresh pages that the kernel zeroes on first
touch: at 1 thread that costs about as much as the copy itself.
"""

from __future__ import annotations

import argparse
import time

import ml_dtypes
import numpy as np

from _timing import best_of
from _machine import _stream_kernel, limit_text, machine_line, streaming_time
import emulator as emu
from emulator._jit import numba_active
from emulator.numerics import rng
from emulator.numerics.stochastic import cast_sr


def interleaved_best(fns: dict, repeat: int) -> dict:
    for fn in fns.values():
        fn()  # warm-up (Numba compiles or loads its cache on first use)
    best = {name: float("inf") for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def _one_thread(fn, repeat: int) -> float:
    """Best time of ``fn`` on one Numba thread (per-core speed; less sensitive to a busy machine)."""
    try:
        import numba
    except ImportError:
        return best_of(fn, repeat)
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return best_of(fn, repeat)
    finally:
        numba.set_num_threads(old)


def fresh_streaming_time(src: np.ndarray, out_itemsize: int, repeat: int, threads: int | None = None) -> float:
    """:func:`streaming_time` with a new output array each call (the page faults of a fresh result included)."""
    try:
        import numba
    except ImportError:
        return float("nan")
    kern, s = _stream_kernel(), src.reshape(-1).view(np.uint32)
    dt = {1: np.uint8, 2: np.uint16}[out_itemsize]
    old = numba.get_num_threads()
    if threads is not None:
        numba.set_num_threads(threads)
    try:
        return best_of(lambda: kern(s, np.empty(s.size, dt)), repeat)
    finally:
        numba.set_num_threads(old)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1M elements instead of 16M")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    n = args.n or ((1 << 20) if args.quick else (16 << 20))
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    print(machine_line())
    print(f"fp32 -> format with stochastic rounding, {n / 1e6:.1f}M standard-normal values, Numba "
          f"{'on' if numba_active() else 'off'}, best of {args.repeat}")
    print(f"{'format':16s} {'sr_bits':>7s} {'SR Melem/s':>11s} {'baseline':>24s} {'base Melem/s':>13s} {'ratio':>7s}  "
          f"streaming limit, fraction reached (all threads; then 1 Numba thread)")
    limits = {k: streaming_time(x, k, args.repeat) for k in (1, 2)}
    limits1 = {k: streaming_time(x, k, args.repeat, threads=1) for k in (1, 2)}
    fresh = {k: fresh_streaming_time(x, k, args.repeat) for k in (1, 2)}
    fresh1 = {k: fresh_streaming_time(x, k, args.repeat, threads=1) for k in (1, 2)}
    cases = [("bfloat16", ml_dtypes.bfloat16, 0), ("float8_e4m3fn", ml_dtypes.float8_e4m3fn, 0),
             ("bfloat16", ml_dtypes.bfloat16, 8), ("float16", np.float16, 0), ("float8_e5m2", ml_dtypes.float8_e5m2, 0),
             ("float4_e2m1fn", ml_dtypes.float4_e2m1fn, 0)]
    for name, dt, bits in cases:
        best = interleaved_best({
            "sr": lambda: cast_sr(x, name, saturate=False, seed=1, sr_bits=bits, site=0),
            "base": lambda: x.astype(dt),
        }, args.repeat)
        size = np.dtype(dt).itemsize
        t1 = _one_thread(lambda: cast_sr(x, name, saturate=False, seed=1, sr_bits=bits, site=0), args.repeat)
        print(f"{name:16s} {bits or 'all':>7} {n / best['sr'] / 1e6:11.0f} {'ml_dtypes astype (RNE)':>24s} "
              f"{n / best['base'] / 1e6:13.0f} {best['base'] / best['sr']:7.2f}  {limit_text(limits[size], best['sr'])}; "
              f"1 thread {t1 * 1e3:.1f} ms, {limit_text(limits1[size], t1)}; fresh-output limit "
              f"{100 * fresh[size] / best['sr']:3.0f}% / {100 * fresh1[size] / t1:3.0f}% (1 thread)")

    best = interleaved_best({
        "rne": lambda: emu.cast(x, "bfloat16", rounding="rne"),
        "sr": lambda: cast_sr(x, "bfloat16", saturate=False, seed=1, sr_bits=0, site=0),
    }, args.repeat)
    print(f"\nSR vs the emulator's own RNE cast (bfloat16): SR {n / best['sr'] / 1e6:.0f} Melem/s, RNE "
          f"{n / best['rne'] / 1e6:.0f} Melem/s, ratio {best['rne'] / best['sr']:.2f}")

    rows, cols = 128, max(n // 128 // 16, 64)
    state = rng.set_rng_seed(0, lanes=128, engine="vector")
    best = interleaved_best({
        "xorwow": lambda: rng.rng(state, (rows, cols)),
        "numpy": lambda: np.random.default_rng(0).integers(0, 2 ** 32, (rows, cols), dtype=np.uint32),
    }, args.repeat)
    m = rows * cols
    print(f"XORWOW rng [128, {cols}] (Vector, 4 generators/lane): {m / best['xorwow'] / 1e6:.0f} Mwords/s; "
          f"numpy PCG64 integers {m / best['numpy'] / 1e6:.0f} Mwords/s; ratio {best['numpy'] / best['xorwow']:.2f}")


if __name__ == "__main__":
    main()
