"""``trn3emu demo`` / ``selftest`` section for the collective engine."""

from __future__ import annotations

import hashlib
import time

import ml_dtypes
import numpy as np

from .. import config
from ._check import timed


def _data(r, n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(n) * np.exp2(rng.integers(-4, 5, n))).astype(np.float32).astype(dtype)
            for _ in range(r)]


def _err(out, xs):
    exact = np.sum(np.stack([x.astype(np.float64) for x in xs]), 0)
    return float(np.max(np.abs(out.astype(np.float64) - exact))), float(np.mean(out.astype(np.float64) - exact))


def demo(timings: bool = False) -> str:
    """The section's report; ``timings`` adds the time of each call, measured after a warm-up call."""
    from ..collectives import ALGORITHMS, all_reduce, estimate, explain
    from ..collectives.describe import order_of
    from ..collectives.algorithms import build

    lines = []
    r, n = 16, 1 << 14
    xs = _data(r, n, ml_dtypes.bfloat16, seed=1)
    lines.append(f"bf16 all-reduce of {r} ranks x {n} elements: every algorithm fixes its own order, so its own bits")
    lines.append(f"  {'algorithm':<20s} {'max |err| vs fp64':>18s} {'mean err':>11s}  digest     order of chunk 0")
    for alg in ALGORITHMS:
        if timings:
            outs, dt = timed(lambda: all_reduce(xs, algorithm=alg, server_ranks=4))
        else:
            outs = all_reduce(xs, algorithm=alg, server_ranks=4)
        out = outs[0]
        mx, mean = _err(out, xs)
        dig = hashlib.sha256(out.tobytes()).hexdigest()[:10]
        order = order_of(build("all_reduce", alg, 4, server_ranks=2), 0)
        lines.append(f"  {alg:<20s} {mx:18.4g} {mean:11.3g}  {dig} (R=4: {order})"
                     + (f"  [{dt * 1e3:.0f} ms after a warm-up call]" if timings else ""))
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
    lines.append(_nki_ranks()[1])
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


def _nki_ranks(ranks: int = 4, rows: int = 256, cols: int = 32) -> tuple[bool, str]:
    """An NKI kernel on ``ranks`` virtual ranks, each launching it on two cores (LNC=2): every core all-gathers its
    own 128-row tiles with the same core of the other ranks (setting ``lnc_collectives``); (every rank's result equals
    NumPy's concatenation, the report line)."""
    from .. import nki

    nl, nisa, ncc = nki.language, nki.isa, nki.collectives

    @nki.jit
    def gather(inp, group):
        cores, me = nl.num_programs(axes=0), nl.program_id(axis=0)
        per = inp.shape[0] // 128 // cores
        out = nl.ndarray((inp.shape[0], cols * ranks), dtype=inp.dtype, buffer=nl.shared_hbm)
        for t in range(per):
            m0 = (me * per + t) * 128
            src = nl.ndarray((128, cols), dtype=inp.dtype, buffer=nl.sbuf)
            dst = nl.ndarray((128, cols * ranks), dtype=inp.dtype, buffer=nl.sbuf)
            nisa.dma_copy(dst=src, src=inp[m0:m0 + 128, :])
            ncc.all_gather(dsts=[dst], srcs=[src], replica_group=group, collective_dim=1)
            nisa.dma_copy(dst=out[m0:m0 + 128, :], src=dst)
        return out

    xs = np.random.default_rng(7).standard_normal((ranks, rows, cols)).astype(np.float32)
    outs = [None] * ranks

    def rank():
        r = ncc.rank_id()
        outs[r] = gather[2](xs[r], ncc.ReplicaGroup([list(range(ranks))]))

    ncc.run_spmd(rank, ranks)
    want = np.concatenate(list(xs), axis=1)
    same = all(np.array_equal(o, want) for o in outs)
    line = (f"NKI kernel on {ranks} ranks x 2 cores (run_spmd, LNC=2): each core all-gathers its own {rows // 256} "
            f"tile(s) of 128 rows with the same core of the other ranks; every rank's [{rows}, {cols * ranks}] "
            f"result {'equals' if same else 'DIFFERS from'} NumPy's concatenation")
    return same, line


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
    checks.append(("NKI all_gather on 3 ranks x 2 cores == NumPy concatenation", _nki_ranks(3)[0], ""))
    topo = Topology.preset("gen1")
    rep = replay(build("all_reduce", "ring", 64), 64 * 1024, 2, topo)["seconds"]
    ana = analytic("all_reduce", "ring", 64, 64 * 1024 * 2, topo)
    checks.append(("cost: ring closed form == schedule replay (64 ranks)", abs(rep - ana) <= 1e-9 * rep,
                   f"{rep * 1e6:.2f} us"))
    return checks
