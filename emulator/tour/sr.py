"""``trn3emu demo`` / ``trn3emu selftest`` for stochastic rounding and the NKI random number generators: real
results of the SR cast, the keyed stream and the XORWOW generators."""

from __future__ import annotations

import math

import numpy as np

from ..config import settings
from ..numerics import keyed, rng, stochastic
from ..numerics.cast import cast, decode, round_to
from ._check import timed

__all__ = ["demo", "selftest"]

_DRAWS = 8000  # per case of the demo


def _fp16_accumulation(runs: int = 16) -> tuple[float, np.ndarray]:
    """The documented example: fp16 1024, add 0.5 2048 times (``runs`` independent SR runs at once)."""
    rne = np.float32(1024.0)
    acc = np.full(runs, 1024.0, np.float32)
    for step in range(2048):
        rne = round_to(np.float32(rne + np.float32(0.5)), "float16", rounding="rne")
        acc = round_to(acc + np.float32(0.5), "float16", rounding="sr", seed=0, site=step)
    return float(rne), acc


def demo(timings: bool = False) -> str:
    """The section's report; ``timings`` adds a speed line measured after a warm-up call.

    The draws are 8000 per case: enough to show the probabilities to about +-0.005, and small arrays run the
    serial kernels, which Numba caches on disk (the threaded ones for big arrays are per process).
    """
    lines = []
    rne, acc = _fp16_accumulation()
    lines.append("Documented example: fp16 a = 1024; 2048 times a += 0.5")
    lines.append(f"  RNE: {rne:.0f} (every 1024.5 is a tie and rounds back to even)")
    lines.append(f"  SR (16 runs, seed 0, site = step): mean {acc.mean():.1f}, min {acc.min():.0f}, max {acc.max():.0f}"
                 f"  (expected 2048 +- 23 per run)")

    x = np.full(_DRAWS, 1.0 + 3 * 2.0 ** -10, np.float32)  # 3/8 of a bf16 ulp above 1
    lines.append(f"\nP(round up) is the dropped fraction: x = 1 + 3/8 ulp, {_DRAWS} draws to bfloat16")
    for bits in (0, 2, 3, 8):
        up = decode(cast(x, "bfloat16", rounding="sr", seed=1, sr_bits=bits), "bfloat16") > 1
        lines.append(f"  sr_bits={bits or 'all':>3}: up {up.mean():.4f}   (exact: "
                     f"{math.floor(0.375 * 2 ** bits) / 2 ** bits if bits else 0.375:.4f})")

    lines.append(f"\nOverflow follows `saturate`: x = 460 (between e4m3fn max 448 and 480), {_DRAWS} draws")
    x = np.full(_DRAWS, 460.0, np.float32)
    for sat in (False, True):
        v = decode(cast(x, "float8_e4m3fn", rounding="sr", seed=2, saturate=sat), "float8_e4m3fn")
        lines.append(f"  saturate={sat!s:5}: 448 x {np.mean(v == 448):.3f}, NaN x {np.mean(np.isnan(v)):.3f}, "
                     f"other {np.mean((v != 448) & ~np.isnan(v)):.3f}   (P(step up) = 12/32 = 0.375)")

    lines.append("\nKeyed stream: element i's bits depend only on (seed, site, i)")
    y = np.random.default_rng(0).standard_normal(_DRAWS).astype(np.float32)
    whole = stochastic.cast_sr(y, "float8_e4m3fn", seed=5, site=3)
    parts = np.concatenate([stochastic.cast_sr(y[a:b], "float8_e4m3fn", seed=5, site=3, offset=a)
                            for a, b in ((0, 1234), (1234, _DRAWS))])
    lines.append(f"  {_DRAWS} values in one call == in two chunks with offsets: {bool((whole == parts).all())}")
    lines.append(f"  keyed_bits(seed=0, site=0, 4 elements, 32 bits): {stochastic.keyed_bits(0, 0, 4).tolist()}")
    lines.append(f"  site_id('collective', 7, 2) = {stochastic.site_id('collective', 7, 2):#018x}")

    if timings:
        n = 16 << 20
        big = np.random.default_rng(1).standard_normal(n).astype(np.float32)
        _, dt = timed(lambda: stochastic.cast_sr(big, "bfloat16", seed=0))
        lines.append(f"  SR of 16M fp32 values to bfloat16 (best of 3 after a warm-up call): {dt * 1e3:.0f} ms "
                     f"({n / dt / 1e6:.0f} Melem/s)")

    lines.append("\nNKI RNG: XORWOW, Marsaglia's seed (x, y, z, w, v, d) = " + str(rng.MARSAGLIA_SEED))
    s = np.array([rng.MARSAGLIA_SEED], np.uint32)
    lines.append(f"  first outputs: {rng.rng(s, (1, 4)).ravel().tolist()}")
    v = rng.set_rng_seed(42, lanes=4, engine="vector")
    saved = rng.rand_get_state(v)
    a = rng.rand2(v, (4, 6), -1.0, 1.0)
    b = rng.rand2(rng.rand_set_state(saved, "vector"), (4, 6), -1.0, 1.0)
    lines.append(f"  Vector state [4, 4, 6]; rand2(-1, 1) row 0: {np.array2string(a[0], precision=4)}")
    lines.append(f"  rand_get_state -> rand_set_state replays it: {bool((a == b).all())}")
    d = rng.dropout(v, np.ones((4, 20000), np.float32), np.array([[0.0], [0.25], [0.5], [1.0]], np.float32))
    lines.append(f"  dropout with prob [0, .25, .5, 1] per partition: kept fractions "
                 f"{[round(float(k), 3) for k in d.mean(axis=1)]}")
    return "\n".join(lines)


def selftest() -> list[tuple[str, bool, str]]:
    checks = []
    # 1. exact up-probability by enumerating every random value (x = 1 + 5/16 ulp, 4 bits: 5 of 16 go up)
    x = np.full(16, 1.0 + 5 * 2.0 ** -11, np.float32)
    up = decode(stochastic.cast_sr_with_bits(x, "bfloat16", np.arange(16), 4), "bfloat16") > 1
    checks.append(("sr: up-count over all 2^4 random values == dropped fraction", int(up.sum()) == 5,
                   f"{int(up.sum())} of 16"))
    # 2. representable values never move
    codes = np.arange(256, dtype=np.uint8)
    vals = decode(codes, "float8_e4m3fn")
    ok = bool((cast(vals, "float8_e4m3fn", rounding="sr", seed=3) == cast(vals, "float8_e4m3fn")).all())
    checks.append(("sr: all 256 e4m3fn values unchanged", ok, ""))
    # 3. keyed stream matches its written definition
    key = stochastic.mix64(stochastic.mix64(7 + 0x9E3779B97F4A7C15) ^ stochastic.mix64(1 + 2 * 0x9E3779B97F4A7C15))
    want = [keyed.word(key, i) for i in (0, 1, 2, 2 ** 32, 2 ** 64 - 1)]
    got = stochastic.keyed_bits(7, 1, np.array([0, 1, 2, 2 ** 32, 2 ** 64 - 1], np.uint64), 64).tolist()
    checks.append(("sr: keyed_bits == the keyed stream's definition on Python ints", got == want, ""))
    # 4. Numba and NumPy twins agree
    y = (np.random.default_rng(0).standard_normal(20000) * 1e3).astype(np.float32)
    y[::101] = np.nan
    a = stochastic.cast_sr(y, "float8_e5m2", seed=1)
    with settings(numba=False):
        b = stochastic.cast_sr(y, "float8_e5m2", seed=1)
    checks.append(("sr: Numba kernel == NumPy twin (20000 values, e5m2)", bool((a == b).all()), ""))
    # 5. the documented fp16 example
    rne, acc = _fp16_accumulation(8)
    checks.append(("sr: fp16 1024 + 2048 x 0.5: RNE stays 1024, SR mean within 6 sd of 2048",
                   bool(rne == 1024.0 and abs(acc.mean() - 2048) < 6 * 23 / math.sqrt(8)), f"SR mean {acc.mean():.1f}"))
    # 6. XORWOW recurrence
    st = list(rng.MARSAGLIA_SEED)
    m = 0xFFFFFFFF
    ref = []
    for _ in range(3):
        t = st[0] ^ (st[0] >> 2)
        st = st[1:5] + [st[5]]
        v = (st[3] ^ ((st[3] << 4) & m)) ^ (t ^ ((t << 1) & m))
        st = st[:4] + [v, (st[4] + 362437) & m]
        ref.append((v + st[5]) & m)
    got = rng.rng(np.array([rng.MARSAGLIA_SEED], np.uint32), (1, 3)).ravel().tolist()
    checks.append(("rng: XORWOW outputs == Marsaglia recurrence", got == ref, f"{got}"))
    # 7. state round trip
    v = rng.set_rng_seed(1, lanes=8, engine="vector")
    tile = rng.rand_get_state(v)
    ok = bool((rng.rng(v, (8, 9)) == rng.rng(rng.rand_set_state(tile, "vector"), (8, 9))).all())
    checks.append(("rng: rand_get_state/rand_set_state round trip", ok, ""))
    return checks
