"""Cast every one of the 2^32 fp32 bit patterns to a narrow format and compare with ml_dtypes.

    python scripts/exhaustive_fp32.py [float8_e4m3fn float8_e5m2 float8_e4m3 float4_e2m1fn float8_e8m0fnu bfloat16 ...]

Prints the number of mismatches per format (and the first few); exit status 1 on any mismatch. The slow test
``tests/numerics/test_cast.py::test_all_fp32_patterns_match_ml_dtypes`` runs the same sweep.

ml_dtypes versions differ on float8_e8m0fnu (0.6 sends every value strictly between 2^-127 and 2^-126 up to
2^-126; 0.7 rounds to nearest): the e8m0 sweep runs under the ``e8m0_rounding`` setting that reproduces the installed
version (``emulator.numerics.ml_dtypes_versions.ml_dtypes_behaviour``) and says which. Every e8m0 setting is also checked on every
fp32 input against the scalar reference by ``test_e8m0_every_fp32_class_matches_scalar_reference``.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import emulator as emu
from emulator.numerics.ml_dtypes_versions import ml_dtypes_behaviour
from emulator.progress import Progress


def matching_settings(name: str) -> dict:
    """The settings under which ``emu.cast`` to ``name`` should equal the installed ml_dtypes on every fp32 input."""
    if emu.formats.get(name).name != "float8_e8m0fnu":
        return {}
    behaviour = ml_dtypes_behaviour()
    if behaviour.e8m0_rounding is None:
        raise RuntimeError(f"{behaviour}: no e8m0_rounding setting reproduces it; update the probe and the docs")
    return {"e8m0_rounding": behaviour.e8m0_rounding}


def sweep(name: str, chunk: int = 1 << 25, limit: int = 1 << 32, step: int = 1) -> list[tuple[int, int, int]]:
    """Patterns ``0, step, 2 * step, ...`` below ``limit`` in chunks, cast under :func:`matching_settings`; returns
    (pattern, ours, ml_dtypes) for each mismatch (first 100). ``step > 1`` (odd) samples a slice."""
    fmt = emu.formats.get(name)
    mismatches: list[tuple[int, int, int]] = []
    starts = range(0, limit, chunk * step)
    with Progress(len(starts), f"exhaustive {name}") as bar:  # on a terminal only; ~2 min per format on 2 cores
        for first in starts:
            bits = np.arange(first, min(first + chunk * step, limit), step, dtype=np.uint64).astype(np.uint32)
            x = bits.view(np.float32)
            with emu.settings(**matching_settings(name)):
                ours = emu.cast(x, fmt)
            with np.errstate(invalid="ignore", over="ignore"):
                ref = x.astype(fmt.ml_dtype).view(fmt.code_dtype)
            bad = np.nonzero(ours != ref)[0]
            for i in bad[: 100 - len(mismatches)]:
                mismatches.append((int(bits[i]), int(ours[i]), int(ref[i])))
            bar.update()
            if len(mismatches) >= 100:
                break
    return mismatches


def main(argv: list[str]) -> int:
    names = argv or ["float8_e4m3fn", "float8_e5m2", "float8_e4m3", "float4_e2m1fn", "float8_e8m0fnu", "bfloat16"]
    status = 0
    for name in names:
        t = time.perf_counter()
        bad = sweep(name)
        how = f" with {matching_settings(name)}" if matching_settings(name) else ""
        print(f"{name}: {len(bad)} mismatches over 2^32 fp32 patterns against ml_dtypes "
              f"{ml_dtypes_behaviour().version}{how} ({time.perf_counter() - t:.1f} s)"
              + (f"; first: {[(hex(b), hex(o), hex(r)) for b, o, r in bad[:5]]}" if bad else ""))
        status |= bool(bad)
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
