"""Fingerprints of the cast and MX outputs, to show that a speed change leaves every bit where it was.

    python benchmarks/bit_identity.py --write before.json     # on the code before the change
    python benchmarks/bit_identity.py --check before.json     # after it: lists every case whose output moved

Each case hashes the codes (and scales) of one call on a fixed input: a random mix of magnitudes plus NaN, +-inf,
+-0, fp32 subnormals, every format's max finite and its neighbours, ties and out-of-range values; every format x
RNE/RTZ x saturate x fp32/fp64 input; every MX element format x both conventions x the quantize_mx / mx.quantize
axis variants x both nonfinite policies; stochastic rounding (keyed stream) to every SR target x sr_bits x saturate,
with an offset, and quantize_mx with SR. Numba on and off are both hashed and must agree with each other.
This is a regression fingerprint, not a correctness test (tests/numerics compare against ml_dtypes and scalar
references); it is what the tests cannot see cheaply: the fast kernels on large, mixed arrays.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import ml_dtypes
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout
import emulator as emu  # noqa: E402


def edge_values(n: int = 1 << 18) -> np.ndarray:
    """float64 values: random magnitudes over every binade of fp32, with the special cases spliced in."""
    rng = np.random.default_rng(1234)
    x = rng.standard_normal(n) * np.exp2(rng.integers(-150, 129, n))
    special = [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 2.0 ** -149, -(2.0 ** -149), 2.0 ** -126, 2.0 ** -127]
    for fmt in emu.formats.FORMATS.values():
        if fmt.storage_bits > 16 and fmt.name != "tfloat32":
            continue
        m = float(fmt.max_finite)
        ulp = 2.0 ** (np.floor(np.log2(m)) - fmt.mantissa_bits)
        special += [m, -m, m + ulp / 2, m + ulp / 4, m + ulp, -(m + ulp / 2), float(fmt.min_subnormal) / 2,
                    float(fmt.min_subnormal) * 1.5, float(fmt.min_subnormal) * 2.5]
    ties = (np.arange(1, 257) + 0.5) * 2.0 ** rng.integers(-20, 10, 256)  # halfway cases of many precisions
    x[: len(special)] = special
    x[len(special): len(special) + ties.size] = ties * np.where(rng.random(256) < 0.5, -1, 1)
    rng.shuffle(x)
    return x


def _h(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype, a.shape)).encode())
        h.update(a.view(np.uint8).tobytes())
    return h.hexdigest()[:16]


def cast_cases(x64: np.ndarray) -> dict[str, str]:
    with np.errstate(over="ignore"):
        x32 = x64.astype(np.float32)
    out = {}
    for fmt in emu.formats.FORMATS.values():
        for rounding in ("rne", "rtz"):
            for sat in (False, True):
                for name, x in (("f32", x32), ("f64", x64)):
                    kw = dict(rounding=rounding, saturate=sat)
                    if fmt.name == "float8_e8m0fnu":
                        for mode in ("nearest_up", "nearest_even", "ml_dtypes_0.6"):
                            with emu.settings(e8m0_rounding=mode):
                                out[f"cast/{fmt.name}/{rounding}/sat{int(sat)}/{name}/{mode}"] = _h(emu.cast(x, fmt, **kw))
                        continue
                    out[f"cast/{fmt.name}/{rounding}/sat{int(sat)}/{name}"] = _h(emu.cast(x, fmt, **kw))
                    if not fmt.has_nan:
                        with emu.settings(fp4_nan="zero"):
                            out[f"cast/{fmt.name}/{rounding}/sat{int(sat)}/{name}/fp4zero"] = _h(emu.cast(x, fmt, **kw))
    return out


def mx_cases(x64: np.ndarray) -> dict[str, str]:
    with np.errstate(over="ignore"):
        x32 = x64.astype(np.float32)
    rng = np.random.default_rng(7)
    # tiles with a realistic spread (most groups clean) plus the edge mix in a band of rows
    tile = (rng.standard_normal((256, 512)) * np.exp2(rng.integers(-12, 12, (256, 512)))).astype(np.float32)
    tile[:64] = x32[: 64 * 512].reshape(64, 512)
    tile[64:72] *= np.float32(2.0 ** -120)  # tiny groups (scale underflow)
    tile[72:80, :256] = 0  # zero groups
    out = {}
    with emu.settings(mx_fp4_quantize_mx="allow"):
        for fmt in ("float8_e4m3fn", "float8_e5m2", "float4_e2m1fn"):
            for conv in ("hw", "ocp"):
                for rounding in ("rne", "rtz"):
                    for pol in ("nan", "propagate"):
                        for uf in ("clamp", "nki_library"):
                            with emu.settings(mx_nonfinite=pol, mx_scale_underflow=uf):
                                key = f"{fmt}/{conv}/{rounding}/{pol}/{uf}"
                                for dt in (ml_dtypes.bfloat16, np.float16):
                                    with np.errstate(over="ignore"):
                                        src = tile.astype(dt)
                                    out[f"quantize_mx/{np.dtype(dt).name}/{key}"] = _h(
                                        *emu.mx.quantize_mx(src, fmt, conv, rounding))
                                for axis in (-1, 0):
                                    out[f"mx.quantize/axis{axis}/{key}"] = _h(
                                        *emu.mx.quantize(tile, fmt, axis=axis, convention=conv, rounding=rounding))
                                out[f"mx.quantize/3d/{key}"] = _h(*emu.mx.quantize(
                                    tile.reshape(4, 64, 512), fmt, axis=1, convention=conv, rounding=rounding))
                                out[f"mx.quantize/bf16/{key}"] = _h(*emu.mx.quantize(
                                    tile.astype(ml_dtypes.bfloat16), fmt, convention=conv, rounding=rounding))
                                for order in ("contiguous", "interleaved"):
                                    out[f"operand/{order}/{key}"] = _h(*emu.mx.quantize_operand(
                                        tile, fmt, order=order, convention=conv, rounding=rounding))
    return out


def sr_cases(x64: np.ndarray) -> dict[str, str]:
    """SR through the keyed stream: the normal-range kernels (arrays above the serial size) and their fix-up path."""
    with np.errstate(over="ignore"):
        x32 = x64.astype(np.float32)
    rng = np.random.default_rng(11)
    # values spread around each target's normal and subnormal range, plus the edge mix
    mixed = (rng.standard_normal(1 << 17) * np.exp2(rng.integers(-30, 20, 1 << 17))).astype(np.float32)
    mixed[: 1 << 15] = x32[: 1 << 15]
    out = {}
    for fmt in ("bfloat16", "float16", "float8_e4m3fn", "float8_e5m2", "float8_e4m3", "float4_e2m1fn"):
        for bits in (0, 3, 8, 13):
            for sat in (False, True):
                key = f"sr/{fmt}/bits{bits}/sat{int(sat)}"
                out[key] = _h(emu.cast(mixed, fmt, rounding="sr", saturate=sat, seed=5, sr_bits=bits, site=3))
                out[key + "/f64"] = _h(emu.cast(x64[:4096], fmt, rounding="sr", saturate=sat, seed=5, sr_bits=bits))
        out[f"sr/{fmt}/offset"] = _h(emu.stochastic.cast_sr(mixed, fmt, seed=9, offset=(1 << 32) - 1000))
    tile = mixed[: 256 * 512].reshape(256, 512)
    for fmt in ("float8_e4m3fn", "float8_e5m2"):
        out[f"sr/quantize_mx/{fmt}"] = _h(*emu.mx.quantize_mx(tile.astype(ml_dtypes.bfloat16), fmt, rounding="sr",
                                                               seed=2))
    return out


def fingerprints() -> dict[str, str]:
    x64 = edge_values()
    res = {}
    for numba in (True, False):
        with emu.settings(numba=numba):
            part = {**cast_cases(x64), **mx_cases(x64), **sr_cases(x64)}
        res.update({f"{k}/numba{int(numba)}": v for k, v in part.items()})
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", type=Path)
    g.add_argument("--check", type=Path)
    args = ap.parse_args()
    fp = fingerprints()
    bad = [k[: -len("/numba1")] for k in fp if k.endswith("/numba1") and fp[k] != fp[k[:-1] + "0"]]
    for k in bad:
        print("numba on/off differ:", k)
    if args.write:
        args.write.write_text(json.dumps(fp, indent=0, sort_keys=True))
        print(f"{len(fp)} fingerprints written to {args.write}")
        return 1 if bad else 0
    ref = json.loads(args.check.read_text())
    moved = sorted(k for k in ref if fp.get(k) != ref[k])
    for k in moved:
        print("changed:", k)
    print(f"{len(ref)} fingerprints checked: {len(moved)} changed, {len(bad)} numba on/off mismatches")
    return 1 if (moved or bad) else 0


if __name__ == "__main__":
    raise SystemExit(main())
