"""``trn3emu demo`` / ``selftest`` section for the collective engine."""

from __future__ import annotations

import time

import ml_dtypes
import numpy as np

from .. import config


def _data(r, n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(n) * np.exp2(rng.integers(-4, 5, n))).astype(np.float32).astype(dtype)
            for _ in range(r)]


def _err(out, xs):
    exact = np.sum(np.stack([x.astype(np.float64) for x in xs]), 0)
    return float(np.max(np.abs(out.astype(np.float64) - exact))), float(np.mean(out.astype(np.float64) - exact))


def demo() -> str:
    from ..collectives import ALGORITHMS, all_reduce, estimate, explain
    from ..collectives.describe import order_of
    from ..collectives.algorithms import build

    lines = []
    r, n = 16, 1 << 14
    xs = _data(r, n, ml_dtypes.bfloat16, seed=1)
    lines.append(f"bf16 all-reduce of {r} ranks x {n} elements: every algorithm fixes its own order, so its own bits")
    lines.append(f"  {'algorithm':<20s} {'max |err| vs fp64':>18s} {'mean err':>11s}  digest     order of chunk 0")
    for alg in ALGORITHMS:
        t = time.perf_counter()
        out = all_reduce(xs, algorithm=alg, server_ranks=4)[0]
        dt = time.perf_counter() - t
        mx, mean = _err(out, xs)
        import hashlib

        dig = hashlib.sha256(out.tobytes()).hexdigest()[:10]
        order = order_of(build("all_reduce", alg, 4, server_ranks=2), 0)
        lines.append(f"  {alg:<20s} {mx:18.4g} {mean:11.3g}  {dig} (R=4: {order})  [{dt * 1e3:.0f} ms]")
    lines.append("")
    lines.append("The datapath is a setting: fp32 accumulate per DMA op (Neuron) vs a bf16 rounding after every add:")
    for acc in ("float32", "dtype"):
        out = all_reduce(xs, algorithm="mesh", accumulation=acc)[0]
        lines.append(f"  mesh, accumulation={acc:<8s} max |err| {_err(out, xs)[0]:.4g}")
    lines.append("")
    small = [np.ones(4096, np.float32).astype(ml_dtypes.bfloat16)] + [
        np.full(4096, 2 ** -9, np.float32).astype(ml_dtypes.bfloat16) for _ in range(63)]
    lines.append("rank-order chain 1.0 + 63 x 2^-9 in bf16 (exact 1.123): each RNE add ties back to 1.0; SR keeps "
                 "the small terms on average:")
    for rounding in ("rne", "sr"):
        out = all_reduce(small, algorithm="rank_order", rounding=rounding, seed=5)[0]
        lines.append(f"  rounding={rounding}: mean result {float(np.mean(out.astype(np.float64))):.5f}")
    lines.append("")
    lines.append(explain("all_reduce", ranks=8, count=1 << 20, dtype="bfloat16", algorithm="ring", rounds=4))
    lines.append("")
    lines.append("Cost of a 64 MiB bf16 all-reduce (ring unless noted) as the job grows:")
    for ranks, what in ((4, "1 chip"), (16, "1 server"), (144, "36 chips"), (576, "1 Gen2 UltraServer"),
                        (4 * 1152, "8 UltraServers"),
                        (4 * 1_000_000, "1M chips")):
        for alg in ("ring", "hierarchical") if ranks > 16 else ("ring",):
            t = time.perf_counter()
            e = estimate("all_reduce", ranks, 32 << 20, 2, alg, server_ranks=16)
            lines.append(f"  {what:<20s} {ranks:>8d} ranks {alg:<13s} {e['seconds'] * 1e3:10.3f} ms  busbw "
                         f"{e['busbw'] / 1e9:7.1f} GB/s  ({e['method']}, {1e3 * (time.perf_counter() - t):.1f} ms "
                         "to estimate)")
    return "\n".join(lines)


def selftest() -> list:
    from ..collectives import all_reduce, build
    from ..collectives.cost import analytic, replay
    from ..collectives.topology import Topology

    checks = []
    xs = _data(6, 257, ml_dtypes.bfloat16, seed=3)
    for alg in ("ring", "tree", "recursive_halving", "mesh"):
        a = all_reduce(xs, algorithm=alg)[0]
        with config.settings(numba=False):
            b = all_reduce(xs, algorithm=alg)[0]
        checks.append((f"{alg}: Numba kernel == NumPy twin (bf16, 6 ranks)", a.tobytes() == b.tobytes(), ""))
    f = [x.astype(np.float32) for x in xs]
    out = all_reduce(xs, algorithm="ring")[0].astype(np.float32)
    m = -(-257 // 6)
    ok = True
    for c in range(6):  # chunk c: x[c+1] + ... + x[c], each add rounded to bf16
        sl = slice(c * m, min((c + 1) * m, 257))
        acc = f[(c + 1) % 6][sl]
        for i in range(2, 7):
            acc = (acc + f[(c + i) % 6][sl]).astype(ml_dtypes.bfloat16).astype(np.float32)
        ok &= bool(np.array_equal(acc.view(np.uint32), out[sl].view(np.uint32)))
    checks.append(("ring order x[c+1] + ... + x[c] with bf16 rounding per add", ok, ""))
    ints = [(np.arange(50) % 7).astype(np.float32) * (r + 1) for r in range(8)]  # every partial sum <= 216
    exact = all(np.array_equal(all_reduce([i.astype(ml_dtypes.bfloat16) for i in ints], algorithm=a)[0]
                               .astype(np.float32), (np.arange(50) % 7) * 36.0) for a in ("ring", "tree", "mesh"))
    checks.append(("integer-valued bf16 data reduces exactly", exact, ""))
    topo = Topology.preset("gen1")
    rep = replay(build("all_reduce", "ring", 64), 64 * 1024, 2, topo)["seconds"]
    ana = analytic("all_reduce", "ring", 64, 64 * 1024 * 2, topo)
    checks.append(("cost: ring closed form == schedule replay (64 ranks)", abs(rep - ana) <= 1e-9 * rep,
                   f"{rep * 1e6:.2f} us"))
    return checks
