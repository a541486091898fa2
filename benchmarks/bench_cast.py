"""Throughput of fp32 -> every format, as Melem/s and as a ratio to ml_dtypes ``astype`` measured in the same run.

    python benchmarks/bench_cast.py [--quick] [--n N] [--threads T] [--formats fp8]

Ratios > 1 mean faster than ml_dtypes (NumPy's own astype for float16; a NumPy bit-mask baseline for tfloat32,
which ml_dtypes lacks). Nothing here asserts on time.
"""

from __future__ import annotations

import argparse

import numpy as np

from _machine import limit_text, machine_line, streaming_time
from _timing import best_of
import emulator as emu
from emulator._jit import numba_active


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1M elements instead of 16M")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="Numba threads (default: all)")
    ap.add_argument("--formats", default="all", help="'all', 'fp8' (the 8-bit and fp4 formats) or comma-separated names")
    args = ap.parse_args()
    if args.threads:
        import numba

        numba.set_num_threads(args.threads)
    n = args.n or ((1 << 20) if args.quick else (16 << 20))
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    print(machine_line())
    print(f"fp32 -> format, {n / 1e6:.1f}M standard-normal values, Numba {'on' if numba_active() else 'off'}, "
          f"best of {args.repeat}")
    fmts = [f for f in emu.formats.FORMATS.values() if f.name != "float32"]
    if args.formats == "fp8":
        fmts = [f for f in fmts if f.storage_bits == 8]
    elif args.formats != "all":
        fmts = [emu.formats.get(name) for name in args.formats.split(",")]
    w = max(len(f"{f.name}/rtz") for f in fmts)  # the label column fits the longest "format/rounding"
    print(f"{'format':{w}s} {'emu Melem/s':>12s} {'baseline':>30s} {'base Melem/s':>13s} {'ratio':>7s}  "
          f"streaming limit (read fp32, write the codes), fraction reached")
    limits = {k: streaming_time(x, k, args.repeat) for k in (1, 2, 4)}
    for fmt in fmts:
        for rounding in ("rne", "rtz"):
            t_emu = best_of(lambda: emu.cast(x, fmt, rounding=rounding), args.repeat)
            if fmt.ml_dtype is not None:
                base_name = "ml_dtypes astype (RNE)" if fmt.name != "float16" else "numpy astype (RNE)"
                t_base = best_of(lambda: x.astype(fmt.ml_dtype), args.repeat)
            else:
                base_name = "numpy bit-mask (truncation)"
                t_base = best_of(lambda: x.view(np.uint32) & np.uint32(0xFFFFE000), args.repeat)
            label = f"{fmt.name}/{rounding}"
            # the limit is re-timed next to each row and the best kept: on a busy machine it moves with the load
            k = fmt.code_dtype.itemsize
            limits[k] = min(limits[k], streaming_time(x, k, args.repeat))
            print(f"{label:{w}s} {n / t_emu / 1e6:12.0f} {base_name:>30s} {n / t_base / 1e6:13.0f} "
                  f"{t_base / t_emu:7.2f}  {limit_text(limits[k], t_emu)}")
    t_dec = best_of(lambda: emu.decode(emu.cast(x[:1], "float8_e4m3fn"), "float8_e4m3fn"), 1)
    codes = emu.cast(x, "float8_e4m3fn")
    t_dec = best_of(lambda: emu.decode(codes, "float8_e4m3fn"), args.repeat)
    t_ref = best_of(lambda: codes.view(emu.formats.get("float8_e4m3fn").ml_dtype).astype(np.float32), args.repeat)
    t_lim = streaming_time(codes, 4, args.repeat)
    print(f"{'decode e4m3fn':{w}s} {n / t_dec / 1e6:12.0f} {'ml_dtypes astype(float32)':>30s} {n / t_ref / 1e6:13.0f} "
          f"{t_ref / t_dec:7.2f}  {limit_text(t_lim, t_dec)}")


if __name__ == "__main__":
    main()
