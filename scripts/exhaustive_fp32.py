"""Cast every one of the 2^32 fp32 bit patterns to a narrow format and compare with ml_dtypes.

    python scripts/exhaustive_fp32.py [float8_e4m3fn float8_e5m2 float8_e4m3 float4_e2m1fn float8_e8m0fnu bfloat16 ...]

Prints the number of mismatches per format (and the first few); exit status 1 on any mismatch. The slow test
``tests/numerics/test_cast.py::test_all_fp32_patterns_match_ml_dtypes`` runs the same sweep.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import emulator as emu


def sweep(name: str, chunk: int = 1 << 25, limit: int = 1 << 32) -> list[tuple[int, int, int]]:
    """All patterns below ``limit`` in chunks; returns (pattern, ours, ml_dtypes) for each mismatch (first 100)."""
    fmt = emu.formats.get(name)
    mismatches: list[tuple[int, int, int]] = []
    for start in range(0, limit, chunk):
        bits = np.arange(start, min(start + chunk, limit), dtype=np.uint64).astype(np.uint32)
        x = bits.view(np.float32)
        ours = emu.cast(x, fmt)
        with np.errstate(invalid="ignore", over="ignore"):
            ref = x.astype(fmt.ml_dtype).view(fmt.code_dtype)
        bad = np.nonzero(ours != ref)[0]
        for i in bad[: 100 - len(mismatches)]:
            mismatches.append((int(bits[i]), int(ours[i]), int(ref[i])))
        if len(mismatches) >= 100:
            break
    return mismatches


def main(argv: list[str]) -> int:
    names = argv or ["float8_e4m3fn", "float8_e5m2", "float8_e4m3", "float4_e2m1fn", "float8_e8m0fnu", "bfloat16"]
    status = 0
    for name in names:
        t = time.perf_counter()
        bad = sweep(name)
        print(f"{name}: {len(bad)} mismatches over 2^32 fp32 patterns ({time.perf_counter() - t:.1f} s)"
              + (f"; first: {[(hex(b), hex(o), hex(r)) for b, o, r in bad[:5]]}" if bad else ""))
        status |= bool(bad)
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
