"""Emulation speed of the collective engine, as ratios to ``np.sum`` over the stacked buffers (same run).

    python benchmarks/bench_collectives.py [--quick]

1. The headline: an fp32 ring all-reduce of R ranks x N elements (stacked [R, N] input, and a list of R arrays)
   against ``np.sum(stacked, axis=0)``; a ratio >= 0.5 means "at least half as fast as np.sum". bf16 is shown
   against the same fp32 np.sum (ml_dtypes has no fast bf16 sum).
2. How emulation cost grows with ranks and bytes (ring, bf16), and per algorithm.
3. First call (schedule build + plan compile, cached afterwards) and the cost model at 1M chips.
Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import time

import ml_dtypes
import numpy as np

from _machine import machine_line
from _timing import best_of
import emulator as emu
from emulator._jit import numba_active
from emulator.collectives import executor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="64 ranks x 16K instead of 256 x 64K")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    r, n = (64, 1 << 14) if args.quick else (256, 1 << 16)
    rng = np.random.default_rng(0)
    stacked = rng.standard_normal((r, n)).astype(np.float32)
    listed = list(stacked.copy())
    print(machine_line())
    print(f"collectives: {r} ranks x {n} elements, Numba {'on' if numba_active() else 'off'}, best of {args.repeat}")
    base = best_of(lambda: np.sum(stacked, axis=0), args.repeat)
    print(f"  baseline np.sum(stacked [R, N] fp32, axis=0): {base * 1e3:8.2f} ms  "
          f"({r * n / base / 1e9:.2f} Gelem/s)")
    t0 = time.perf_counter()
    emu.collectives.all_reduce(stacked[:, :64])
    first = time.perf_counter() - t0
    bf = stacked.astype(ml_dtypes.bfloat16)
    for label, data in (("fp32 ring, stacked input", stacked), ("fp32 ring, list of arrays", listed),
                        ("bf16 ring, stacked input", bf)):
        t = best_of(lambda: emu.collectives.all_reduce(data, algorithm="ring"), args.repeat)
        print(f"  all_reduce {label:<26s} {t * 1e3:8.2f} ms  ratio to np.sum {base / t:5.2f}")
    print(f"  first call at {r} ranks (schedule build + plan compile, then cached): {first * 1e3:.0f} ms")

    print("\nEmulation cost vs ranks and bytes (bf16 ring all-reduce, ms per call; Melem/s of input reduced):")
    sizes = (1 << 10, 1 << 14) if args.quick else (1 << 10, 1 << 14, 1 << 17)
    ranks = (8, 32, 64) if args.quick else (8, 32, 128, 256)
    print("  ranks " + "".join(f"{s:>22d}" for s in sizes))
    for rr in ranks:
        row = []
        for s in sizes:
            d = rng.standard_normal((rr, s)).astype(np.float32).astype(ml_dtypes.bfloat16)
            t = best_of(lambda: emu.collectives.all_reduce(d), max(2, args.repeat // 2))
            row.append(f"{t * 1e3:9.2f} ({rr * s / t / 1e6:7.0f})")
        print(f"  {rr:5d} " + "".join(f"{c:>22s}" for c in row))

    rr, s = (32, 1 << 14) if args.quick else (64, 1 << 16)
    d = rng.standard_normal((rr, s)).astype(np.float32).astype(ml_dtypes.bfloat16)
    sub = np.sum(d.astype(np.float32), axis=0)
    b2 = best_of(lambda: np.sum(d.astype(np.float32), axis=0), args.repeat)
    print(f"\nPer algorithm, bf16, {rr} ranks x {s} (ratio to np.sum of the fp32-decoded stack, {b2 * 1e3:.2f} ms):")
    for alg in emu.collectives.ALGORITHMS:
        t = best_of(lambda: emu.collectives.all_reduce(d, algorithm=alg, server_ranks=16), args.repeat)
        print(f"  {alg:<20s} {t * 1e3:8.2f} ms  ratio {b2 / t:5.2f}")
    del sub

    with emu.settings(numba=False):
        d = rng.standard_normal((8, 1 << 14)).astype(np.float32).astype(ml_dtypes.bfloat16)
        tn = best_of(lambda: emu.collectives.all_reduce(d), 3)
    tj = best_of(lambda: emu.collectives.all_reduce(d), 3)
    print(f"\nNumPy twin vs Numba kernel (bf16, 8 x 16K): {tn * 1e3:.2f} ms vs {tj * 1e3:.2f} ms "
          f"(Numba {tn / tj:.1f}x faster)")

    t = best_of(lambda: emu.collectives.estimate("all_reduce", 4 * 1_000_000, 1 << 26, 2, "ring"), 5)
    print(f"Cost model, 1M chips (4M ranks), closed form: {t * 1e6:.0f} us per estimate")
    executor.get_plan.cache_clear()


if __name__ == "__main__":
    main()
