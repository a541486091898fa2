"""Per-core cost of the casts, SR casts, MX quantisation and emu.matmul: thread CPU time on one Numba thread,
against the streaming kernel's (casts, SR, MX; with the same output width) or one-thread numpy float32 matmul's
(emu.matmul), so that a busy shared machine (where
wall times move 2-5x) still gives comparable fractions.

    python benchmarks/bench_percore.py [--part casts|sr|mx|matmul]
    NUMBA_CPU_NAME=haswell NUMBA_CPU_FEATURES=+avx2 python benchmarks/bench_percore.py   # AVX2 code on any x86-64

CPU time counts only the cycles this thread ran, not the time it waited for a core; the fraction is the streaming
kernel's CPU time over the operation's (100% = as cheap per element as a plain copy). Casts and SR casts write
into a reused output array (``out=``), as the streaming kernel does; a fresh 32 MiB array costs the OS's page
zeroing (printed once, for the 2-byte outputs). It still moves by ~20% on a machine whose other jobs share the
core's caches. Never asserts on time.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # one BLAS thread: its CPU time is ours
    os.environ[_var] = "1"

import ml_dtypes
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _machine  # noqa: E402
from _timing import best_of  # noqa: E402
import emulator as emu  # noqa: E402


def cpu_best(fn, repeat: int = 7) -> float:
    """Least thread CPU time of ``repeat`` calls (after one untimed call)."""
    return best_of(fn, repeat, clock=time.thread_time)


def main() -> int:
    import argparse

    import numba

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("all", "casts", "sr", "mx", "matmul"), default="all", help="which rows to run")
    part = ap.parse_args().part
    numba.set_num_threads(1)  # the kernels then run on this thread, whose CPU time thread_time reads
    x = np.random.default_rng(0).standard_normal(16 << 20).astype(np.float32)
    rng = np.random.default_rng(0)
    xb = (rng.standard_normal((4096, 4096)) * np.exp2(rng.integers(-8, 8, (4096, 4096)))).astype(ml_dtypes.bfloat16)
    x32 = xb.astype(np.float32)
    kern = _machine._stream_kernel()
    dst = {k: np.empty(x.size, t) for k, t in ((1, np.uint8), (2, np.uint16), (4, np.uint32))}
    s32 = {k: cpu_best(lambda d=d: kern(x.view(np.uint32), d)) for k, d in dst.items()}
    s16 = cpu_best(lambda: kern(xb.view(np.uint16).reshape(-1), dst[1]))
    print(_machine.machine_line())
    print(f"streaming kernel, 1 thread, CPU time: fp32 -> uint8 / uint16 / uint32 {s32[1] * 1e3:.1f} / "
          f"{s32[2] * 1e3:.1f} / {s32[4] * 1e3:.1f} ms, bf16 -> uint8 {s16 * 1e3:.1f} ms "
          f"(16.8M elements; NUMBA_CPU_NAME={os.environ.get('NUMBA_CPU_NAME', 'host')})")
    outs = {}

    def codes(f):
        """The reused output array of format f's codes: the streaming kernel, too, writes into a reused array (a
        fresh one above 32 MiB costs the OS's page zeroing at first touch: the line printed below)."""
        dt = np.dtype(emu.formats.get(f).code_dtype)
        return outs.setdefault(dt, np.empty(x.size, dt))

    fresh = cpu_best(lambda: kern(x.view(np.uint32), np.empty(x.size, np.uint16)))
    print(f"  (into a fresh array each call, as an op without out= does: fp32 -> uint16 {fresh * 1e3:.1f} ms; the "
          f"rows below write into a reused one)")
    rows = []
    if part in ("all", "casts"):
        rows += [(f"cast fp32 -> {f} {r}", (lambda f=f, r=r: emu.cast(x, f, rounding=r, out=codes(f))),
                  s32[emu.formats.get(f).code_dtype.itemsize])
                 for f in ("float8_e4m3fn", "float8_e5m2", "float4_e2m1fn", "float8_e8m0fnu", "bfloat16", "float16",
                           "tfloat32")
                 for r in ("rne", "rtz")]
    if part in ("all", "sr"):
        rows += [(f"SR fp32 -> {f.split('_')[-1] if '_' in f else f}, all dropped bits",
                  (lambda f=f: emu.stochastic.cast_sr(x, f, saturate=False, seed=1, sr_bits=0, out=codes(f))),
                  s32[emu.formats.get(f).code_dtype.itemsize])
                 for f in ("bfloat16", "float16", "float8_e4m3fn", "float8_e5m2", "float4_e2m1fn")]
    if part in ("all", "mx"):
        rows += [("quantize_mx bf16 -> e4m3fn (hw)", lambda: emu.mx.quantize_mx(xb, "float8_e4m3fn"), s16),
                 ("quantize_mx bf16 -> e4m3fn (ocp)", lambda: emu.mx.quantize_mx(xb, "float8_e4m3fn", "ocp"), s16),
                 ("mx.quantize fp32 blocks of 32 (e4m3fn)", lambda: emu.mx.quantize(x32, "float8_e4m3fn"), s32[1]),
                 ("mx.quantize fp32 blocks of 32 (e2m1fn)", lambda: emu.mx.quantize(x32, "float4_e2m1fn"), s32[1])]
    for name, fn, lim in rows:
        t = cpu_best(fn)
        print(f"  {name:40s} {t * 1e3:7.1f} ms CPU  {100 * lim / t:4.0f}% of the streaming kernel")
    if part not in ("all", "matmul"):
        return 0
    a, b = (rng.standard_normal((1024, 1024)).astype(np.float32) for _ in range(2))
    base = cpu_best(lambda: np.matmul(a, b))
    print(f"numpy.matmul float32 1024^3, 1 BLAS thread, CPU time: {base * 1e3:.1f} ms")
    for fmt in ("bfloat16", "mxfp8_e4m3", "mxfp4", "float8_e4m3fn"):
        t = cpu_best(lambda: emu.matmul(a, b, fmt))
        print(f"  emu.matmul {fmt:28s} {t * 1e3:7.1f} ms CPU  {base / t:5.2f}x numpy float32 matmul")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
