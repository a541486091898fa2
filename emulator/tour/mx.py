"""``trn3emu demo`` / ``trn3emu selftest`` for MX micro-scaling: real results of quantize_mx in both scale
conventions, the edge groups the AWS goldens get wrong, the hardware layouts, and a speed line."""

from __future__ import annotations

import math
import time
import warnings

import ml_dtypes
import numpy as np

from ..config import get_settings, settings
from ..numerics import mx
from ._check import check as _check

__all__ = ["demo", "selftest"]

E4, E5, E2 = "float8_e4m3fn", "float8_e5m2", "float4_e2m1fn"


def _group(values) -> np.ndarray:
    """A [32, 4] bf16 tile whose first 8x4 group holds ``values``, the rest zeros."""
    src = np.zeros((32, 4), np.float32)
    flat = np.zeros(32, np.float32)
    flat[:len(values)] = values
    src[:8] = flat.reshape(8, 4)
    return src.astype(ml_dtypes.bfloat16)


def _one(values, fmt=E4, convention=None):
    x4, s = mx.quantize_mx(_group(values), fmt, convention)
    back = mx.dequantize_mx(x4, s, fmt)[:8].reshape(-1)
    return int(s[0, 0]), x4[:8].view(np.uint8).reshape(-1), back


def _fmt_vals(v, n=4) -> str:
    return "[" + ", ".join(f"{float(x):g}" for x in v[:n]) + "]"


def demo() -> str:
    s = get_settings()
    out = [f"Settings: mx_convention={s.mx_convention}, mx_nonfinite={s.mx_nonfinite}, "
           f"mx_scale_underflow={s.mx_scale_underflow}, mx_scale_ff={s.mx_scale_ff}, "
           f"mx_fp4_quantize_mx={s.mx_fp4_quantize_mx}"]
    vals = [960.0, 957.0, 100.0, -3.0, 0.01]
    out += ["", f"One 8x4 group (bf16) holding {vals} + zeros, to float8_e4m3fn:"]
    for conv in ("hw", "ocp"):
        code, codes, back = _one(vals, E4, conv)
        rule = "floor(log2 amax) - (Emax-1)" if conv == "hw" else "floor(log2 amax) - Emax"
        out.append(f"  {conv:3s}: X = 2^({rule}) = 2^{code - 127} (scale code {code}); codes "
                   f"{' '.join(f'{int(c):02x}' for c in codes[:5])}; dequantized {_fmt_vals(back, 5)}")
    out.append("  (ocp clips 960/2 = 480 and 957/2 to 448: the microxcaling '957 -> 896' report; hw never saturates)")

    out += ["", "Edge groups (AWS golden behaviour -> this emulator):"]
    code, _, back = _one([0.0, -0.0], E4)
    out.append(f"  all-zero group        golden: scale byte 248 (uint8 wraparound)  -> scale {code}, data {_fmt_vals(back, 2)}")
    code, codes, back = _one([2.0 ** -120], E4)
    out.append(f"  amax = 2^-120         golden: scale 255 (E8M0 NaN), data 0       -> scale {code}, "
               f"data {_fmt_vals(back, 1)} (exact)")
    code, codes, back = _one([2.0 ** -130], E5)
    out.append(f"  bf16 subnormal 2^-130 golden: exponent field read as -127         -> scale {code}, "
               f"data {_fmt_vals(back, 1)}")
    code, codes, back = _one([1.0, math.inf, 2.0], E4, "ocp")
    out.append(f"  +inf in a group       golden: inf becomes a finite ~6e38          -> scale {code} (NaN), "
               f"data {_fmt_vals(back, 3)}")

    out += ["", "Trainium layouts:"]
    x4, scale = mx.quantize_mx(np.full((128, 8), 3.0, ml_dtypes.bfloat16), E4)
    out.append(f"  quantize_mx [128, 8] bf16 -> x4 {x4.shape} {x4.dtype} (word 0x{int(x4[0, 0]):08x}: sub-element q "
               f"in bits [8q, 8q+8)), scales {scale.shape} uint8")
    hw = mx.to_hw_scale_layout(scale, p_offset=4)
    rows = [int(p) for p in np.flatnonzero(hw[:, 0])]
    out.append(f"  to_hw_scale_layout(p_offset=4): scale rows 0..15 -> partitions {rows}")
    a = np.arange(16, dtype=np.float32).reshape(16, 1)
    out.append(f"  to_interleaved of k = 0..15 ([16, 1] -> [4, 4]): partition 0 holds k {mx.to_interleaved(a)[0].astype(int).tolist()}"
               f" (k = q*Kp + p)")

    rng = np.random.default_rng(0)
    x = (rng.standard_normal((4096, 4096)) * np.exp2(rng.integers(-8, 8, (4096, 4096)))).astype(ml_dtypes.bfloat16)
    mx.quantize_mx(x[:64], E4)
    t0 = time.perf_counter()
    x4, sc = mx.quantize_mx(x, E4)
    t1 = time.perf_counter()
    back = mx.dequantize_mx(x4, sc, E4)
    t2 = time.perf_counter()
    x32 = x.astype(np.float32).astype(np.float64)
    rel = float(np.sqrt(np.mean((back - x32) ** 2) / np.mean(x32 ** 2)))
    out += ["", f"4096x4096 bf16 -> MXFP8 e4m3fn: quantize_mx {t1 - t0:.3f} s ({x.size / (t1 - t0) / 1e6:.0f} Melem/s), "
                f"dequantize_mx {t2 - t1:.3f} s; relative RMS error {rel:.2e}"]
    return "\n".join(out)


def _hand_vectors():
    cases = [  # (values, fmt, convention, scale code, first element code), derived from the definitions
        ([3.0], E4, "hw", 121, 0x74), ([3.0], E4, "ocp", 120, 0x7C), ([960.0], E4, "ocp", 128, 0x7E),
        ([0.0], E5, "hw", 0, 0x00), ([2.0 ** -120], E4, "hw", 0, 0x70), ([1.0], E5, "hw", 113, 0x74),
    ]
    for values, fmt, conv, want_scale, want_code in cases:
        code, codes, _ = _one(values, fmt, conv)
        if code != want_scale or int(codes[0]) != want_code:
            return False, f"{values} {fmt} {conv}: scale {code}, code {int(codes[0]):#x}; want {want_scale}, {want_code:#x}"
    return True, f"{len(cases)} hand-derived vectors"


def _twins_agree():
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((64, 64)) * np.exp2(rng.integers(-140, 120, (64, 64)))).astype(np.float32)
    x[3, 5], x[40, 1] = np.nan, -np.inf
    xb = x.astype(ml_dtypes.bfloat16)
    res = []
    for numba in (True, False):
        with settings(numba=numba), warnings.catch_warnings():
            warnings.simplefilter("ignore", mx.MXExtensionWarning)
            r = []
            for fmt in (E4, E5, E2):
                for conv in ("hw", "ocp"):
                    r += [*mx.quantize_mx(xb, fmt, conv), *mx.quantize(x, fmt, convention=conv)]
            res.append([a.tobytes() for a in r])
    return res[0] == res[1], "quantize_mx and OCP quantize: Numba == NumPy for 3 formats x 2 conventions"


def _round_trip():
    rng = np.random.default_rng(6)
    codes = rng.integers(0, 0x7E, (8, 32)).astype(np.uint8) & np.uint8(0x77)  # e4m3fn, exponent field <= 14
    codes[:, 0] = 0x78  # 256 = 2^8 in each block: the ocp scale recovers X exactly
    s = rng.integers(100, 150, (8, 1)).astype(np.uint8)
    x = mx.dequantize(codes, s, E4)
    c2, s2 = mx.quantize(x, E4, convention="ocp")
    return bool((s2 == s).all() and (mx.dequantize(c2, s2, E4) == x).all()), "ocp round trip of representable blocks"


def _layouts():
    dense = np.arange(64, dtype=np.uint8).reshape(16, 4)
    ok = all((mx.from_hw_scale_layout(mx.to_hw_scale_layout(dense, o), 128, o) == dense).all() for o in mx.P_OFFSETS)
    a = np.arange(128.0, dtype=np.float32).reshape(64, 2)
    ok &= bool((mx.from_interleaved(mx.to_interleaved(a)) == a).all())
    x4, sc = mx.quantize_operand(np.ones((64, 2), np.float32), E5, order="interleaved")
    ok &= bool((mx.dequantize_operand(x4, sc, E5, order="interleaved") == 1.0).all())
    return ok, "scale quadrants, interleave and operand round trips"


def selftest() -> list[tuple[str, bool, str]]:
    return [_check("mx hand vectors (hw and ocp)", _hand_vectors), _check("mx Numba == NumPy twins", _twins_agree),
            _check("mx ocp round trip", _round_trip), _check("mx layouts", _layouts)]
