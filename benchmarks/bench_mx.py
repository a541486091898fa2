"""Benchmark: MX quantisation of a 4096x4096 bfloat16 tile (quantize_mx, 8x4 groups) and its dequantisation.

The named baseline is ml_dtypes' plain float32 -> float8_e4m3fn ``astype`` of the same array (as float32), measured
in the same run; every line prints throughput (Melem/s) and the ratio to it. For context it also times a NumPy
version of the algorithm AWS's CPU golden uses (exponent-field max per group, float64 divide, ml_dtypes cast,
x4 view), written here from its description. Never asserts on time.

    python benchmarks/bench_mx.py [--quick] [--threads T]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import ml_dtypes
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout without installing
from _machine import limit_text, machine_line, streaming_time  # noqa: E402
from _timing import best_of  # noqa: E402
import emulator as emu  # noqa: E402


def golden_style_quantize(x_bf16: np.ndarray, emax: int = 8):
    """The golden's steps (section 9.1 of the datapath reference), in plain NumPy: OCP scale, clip, astype."""
    P, F = x_bf16.shape
    x = x_bf16.astype(np.float32)
    e = ((x.view(np.uint32) >> 23) & 0xFF).astype(np.uint8)
    code = e.reshape(P // 8, 8, F // 4, 4).max(axis=(1, 3)) - np.uint8(emax)
    scale = np.exp2(code.astype(np.int32) - 127.0)
    q = x.reshape(P // 8, 8, F // 4, 4) / scale[:, None, :, None]
    q = np.clip(q, -448.0, 448.0).reshape(P, F).astype(ml_dtypes.float8_e4m3fn)
    return q.view(np.uint32), code


def _quantize_fp4(x):
    with emu.settings(mx_fp4_quantize_mx="allow"):  # Trn3's quantize_mx writes fp8; the fp4 target is a setting
        return emu.mx.quantize_mx(x, "float4_e2m1fn")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1024x1024 and fewer repeats")
    ap.add_argument("--threads", type=int, default=None, help="Numba threads (default: all)")
    args = ap.parse_args(argv)
    if args.threads:
        import numba

        numba.set_num_threads(args.threads)
    n = 1024 if args.quick else 4096
    repeats = 3 if args.quick else 5
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((n, n)) * np.exp2(rng.integers(-8, 8, (n, n)))).astype(ml_dtypes.bfloat16)
    x32 = x.astype(np.float32)
    elems = x.size

    lim0 = {2: streaming_time(x, 1, repeats), 4: streaming_time(x32, 1, repeats),
            -2: streaming_time(x, 1, repeats, threads=1), -4: streaming_time(x32, 1, repeats, threads=1)}
    base = best_of(lambda: x32.astype(ml_dtypes.float8_e4m3fn), repeats)
    x4, scale = emu.mx.quantize_mx(x, "float8_e4m3fn")
    x4_5, scale_5 = emu.mx.quantize_mx(x, "float8_e5m2")
    rows = [
        ("baseline: ml_dtypes fp32->e4m3fn astype", base),
        ("quantize_mx bf16 -> e4m3fn (hw)", best_of(lambda: emu.mx.quantize_mx(x, "float8_e4m3fn"), repeats)),
        ("quantize_mx bf16 -> e4m3fn (ocp)",
         best_of(lambda: emu.mx.quantize_mx(x, "float8_e4m3fn", "ocp"), repeats)),
        ("quantize_mx bf16 -> e5m2 (hw)", best_of(lambda: emu.mx.quantize_mx(x, "float8_e5m2"), repeats)),
        ("quantize_mx bf16 -> e2m1fn (hw; packs 4-bit x4 words)", best_of(lambda: _quantize_fp4(x), repeats)),
        ("dequantize_mx e4m3fn -> fp32", best_of(lambda: emu.mx.dequantize_mx(x4, scale, "float8_e4m3fn"), repeats)),
        ("dequantize_mx e5m2 -> fp32", best_of(lambda: emu.mx.dequantize_mx(x4_5, scale_5, "float8_e5m2"), repeats)),
        ("mx.quantize fp32 OCP blocks of 32 (e4m3fn)",
         best_of(lambda: emu.mx.quantize(x32, "float8_e4m3fn"), repeats)),
        ("quantize_operand fp32 [K, N] interleaved (e4m3fn)",
         best_of(lambda: emu.mx.quantize_operand(x32, "float8_e4m3fn", order="interleaved"), repeats)),
        ("context: golden-style NumPy quantize (ocp)", best_of(lambda: golden_style_quantize(x), repeats)),
    ]
    try:  # per-core efficiency: the same kernel on one Numba thread (less sensitive to a busy machine)
        import numba

        threads = numba.get_num_threads()
        numba.set_num_threads(1)
        rows.append(("quantize_mx bf16 -> e4m3fn (hw), 1 Numba thread",
                     best_of(lambda: emu.mx.quantize_mx(x, "float8_e4m3fn"), repeats)))
        rows.append(("mx.quantize fp32 blocks of 32 (e4m3fn), 1 Numba thread",
                     best_of(lambda: emu.mx.quantize(x32, "float8_e4m3fn"), repeats)))
        numba.set_num_threads(threads)
    except ImportError:
        pass
    small = x[:512]
    with emu.settings(numba=False):
        t_np = best_of(lambda: emu.mx.quantize_mx(small, "float8_e4m3fn"), 1 if args.quick else 2)
    rows.append(("context: quantize_mx NumPy twin (numba off)", t_np * x.shape[0] / 512))

    # streaming limits: read the input (bf16, or fp32 for the fp32 rows), write one byte per element; all threads
    # and one thread (the scales, 1/32 of the output, are left out)
    # (timed before and after the rows, the best kept: on a busy machine the limit moves with the load)
    lim = {2: min(lim0[2], streaming_time(x, 1, repeats)), 4: min(lim0[4], streaming_time(x32, 1, repeats))}
    lim1 = {2: min(lim0[-2], streaming_time(x, 1, repeats, threads=1)),
            4: min(lim0[-4], streaming_time(x32, 1, repeats, threads=1))}
    in_size = {"mx.quantize fp32 OCP blocks of 32 (e4m3fn)": 4, "quantize_operand fp32 [K, N] interleaved (e4m3fn)": 4,
               "baseline: ml_dtypes fp32->e4m3fn astype": 4}
    print(machine_line())
    print(f"MX benchmark, {n}x{n} bfloat16 ({elems / 1e6:.1f}M elements); ratio = baseline time / time "
          f"(higher is faster)")
    for name, t in rows:
        if name.startswith("context") or name.startswith("dequantize") or "e2m1fn" in name:  # (a half-byte output)
            tail = ""
        elif name.endswith("1 Numba thread"):
            tail = "  " + limit_text(lim1[4 if name.startswith("mx.quantize fp32") else 2], t)
        else:
            tail = "  " + limit_text(lim[in_size.get(name, 2)], t)
        print(f"  {name:52s} {t * 1e3:9.2f} ms  {elems / t / 1e6:9.1f} Melem/s  {base / t:6.2f}x{tail}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
