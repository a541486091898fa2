"""``trn3emu demo`` / ``selftest`` section for the formats and casts."""

from __future__ import annotations

import time

import numpy as np

from ..config import settings
from ..numerics import formats
from ..numerics.cast import cast, decode


def demo() -> str:
    lines = ["Formats (codes are the truth; values decode exactly to float32):"]
    lines += ["  " + f.summary() for f in formats.FORMATS.values()]
    x = np.array([1.0, 3.3, 464.0, 465.0, 1e-3, -0.0, np.inf, np.nan], np.float32)
    lines.append("\nfp32 -> narrow, RNE (bit-identical to ml_dtypes), IEEE overflow; value [code]:")
    def cell(v, k) -> str:
        return f"{f'{v:.4g}[{int(k):02x}]':>16s}"

    lines.append("  input          " + "".join(f"{f'{v:.4g}':>16s}" for v in x))
    for name in ("bfloat16", "float16", "float8_e5m2", "float8_e4m3", "float8_e4m3fn", "float4_e2m1fn"):
        c = cast(x, name)
        vals = decode(c, name)
        lines.append(f"  {name:14s} " + "".join(cell(v, k) for v, k in zip(vals, c)))
    sat = cast(x, "float8_e4m3fn", saturate=True)
    lines.append("  e4m3fn sat.    " + "".join(cell(v, k) for v, k in zip(decode(sat, "float8_e4m3fn"), sat)))
    d = np.array([1.0625 + 2**-40], np.float64)
    lines.append(f"\nfloat64 1.0625 + 2^-40 -> e4m3fn: {decode(cast(d, 'float8_e4m3fn'), 'float8_e4m3fn')[0]} "
                 "(one rounding from the exact value)")
    with settings(wide_input="via_fp32"):
        lines.append(f"  with wide_input='via_fp32' (what ml_dtypes and torch do): "
                     f"{decode(cast(d, 'float8_e4m3fn'), 'float8_e4m3fn')[0]}")
    rng = np.random.default_rng(0)
    big = rng.standard_normal(1 << 22).astype(np.float32)
    fmt = formats.get("float8_e4m3fn")
    cast(big[:16], fmt)  # compile outside the timing
    t0 = time.perf_counter()
    ours = cast(big, fmt)
    t1 = time.perf_counter()
    ref = big.astype(fmt.ml_dtype).view(np.uint8)
    t2 = time.perf_counter()
    lines.append(f"\n4M fp32 -> e4m3fn: {(t1 - t0) * 1e3:.1f} ms here vs {(t2 - t1) * 1e3:.1f} ms for ml_dtypes "
                 f"astype ({(t2 - t1) / (t1 - t0):.1f}x); identical codes: {bool((ours == ref).all())}")
    return "\n".join(lines)


def selftest() -> list[tuple[str, bool, str]]:
    checks = []
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    for fmt in formats.FORMATS.values():
        if fmt.ml_dtype is None or fmt.name == "float32":
            continue
        with np.errstate(invalid="ignore", over="ignore"):
            ref = x.astype(fmt.ml_dtype).view(fmt.code_dtype)
        results = []
        for use_numba in (True, False):
            with settings(numba=use_numba):
                results.append(cast(x, fmt))
        bad = int((results[0] != ref).sum() + (results[1] != ref).sum())
        checks.append((f"cast fp32->{fmt.name} == ml_dtypes on 200k random patterns (Numba and NumPy)", bad == 0,
                       f"{bad} mismatches" if bad else ""))
        if fmt.bits <= 16:
            codes = np.arange(1 << fmt.bits, dtype=np.uint32).astype(fmt.code_dtype)
            vals = decode(codes, fmt)
            ok = ~np.isnan(vals)
            back = cast(vals[ok], fmt)
            same = bool((back == codes[ok]).all())
            checks.append((f"{fmt.name}: every non-NaN code survives decode->cast", same, ""))
    return checks
