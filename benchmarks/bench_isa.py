"""Python overhead of the NeuronCore instruction dispatch: a stream of small Vector/Scalar instructions through
``NeuronCore`` methods (memory views, connectivity and initialisation checks, statistics), the same stream through
the array-level ``emu.isa`` functions, and the equivalent bare NumPy calls, measured in the same run.

    python benchmarks/bench_isa.py [--quick] [--n N] [--free F] [--repeat R]

Reports instructions/s and the ratios core / isa (what the dispatch adds) and core / NumPy (goal < 3x on
[128, 512] tiles), against two NumPy baselines: float32 ``np.exp`` and the like-for-like float64 exp rounded
once to float32 (what ``activation_accuracy="exact"`` computes). Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _machine import limit_text, machine_line, streaming_time
import emulator as emu
from emulator.engines.core import NeuronCore

_OPS = 4  # instructions per round of the stream


def _streams(free: int):
    rng = np.random.default_rng(0)
    a0, b0 = rng.standard_normal((128, free)).astype(np.float32), rng.standard_normal((128, free)).astype(np.float32)
    bias0 = rng.standard_normal((128, 1)).astype(np.float32)
    core = NeuronCore()
    mem = core.memory
    a, b, bias = mem.sbuf((128, free), "float32", value=a0), mem.sbuf((128, free), "float32", value=b0), \
        mem.sbuf((128, 1), "float32", value=bias0)
    c, d = mem.sbuf((128, free), "float32"), mem.psum((128, min(free, 512)), "float32")
    dv = d if free <= 512 else mem.sbuf((128, free), "float32")

    def core_round():
        core.tensor_tensor(c, a, b, "add")
        core.tensor_scalar(c, c, "multiply", 0.5, op1="add", operand1=1.0)
        core.activation(dv, "exp", c, bias=bias, scale=0.25)
        core.tensor_copy(c, dv)

    ca, cc, cd = a0.copy(), np.empty_like(a0), np.empty_like(a0)

    def isa_round():
        emu.isa.tensor_tensor(cc, ca, b0, "add")
        emu.isa.tensor_scalar(cc, cc, "multiply", 0.5, op1="add", operand1=1.0)
        emu.isa.activation(cd, "exp", cc, bias=bias0, scale=0.25)
        emu.isa.tensor_copy(cc, cd)

    def numpy_round():
        np.add(ca, b0, out=cc)
        np.multiply(cc, np.float32(0.5), out=cc)
        np.add(cc, np.float32(1.0), out=cc)
        np.multiply(cc, np.float32(0.25), out=cd)
        np.add(cd, bias0, out=cd)
        np.exp(cd, out=cd)
        np.copyto(cc, cd)

    def exact_round():  # the like-for-like baseline: exp evaluated in float64 and rounded once, as the emulator does
        np.add(ca, b0, out=cc)
        np.multiply(cc, np.float32(0.5), out=cc)
        np.add(cc, np.float32(1.0), out=cc)
        np.multiply(cc, np.float32(0.25), out=cd)
        np.add(cd, bias0, out=cd)
        cd[...] = np.exp(cd.astype(np.float64)).astype(np.float32)
        np.copyto(cc, cd)

    return {"core": core_round, "isa": isa_round, "numpy": numpy_round, "numpy_exact": exact_round}, core


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1,000 instructions instead of 10,000")
    ap.add_argument("--n", type=int, default=None, help="instructions per stream")
    ap.add_argument("--free", type=int, nargs="*", default=[64, 512], help="free size of the [128, F] tiles")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n = args.n or (1000 if args.quick else 10_000)
    rounds = max(1, n // _OPS)
    print(f"{rounds * _OPS} Vector/Scalar instructions (tensor_tensor, tensor_scalar, activation exp, tensor_copy) "
          f"on fp32 [128, F] tiles, best of {args.repeat}")
    print(machine_line())
    print(f"activation_accuracy={emu.get_settings().activation_accuracy}; core/np-exact is the like-for-like ratio "
          f"(exp in float64, rounded once, as the emulator's exact setting), core/np-f32 is against NumPy's float32 exp")
    print(f"{'F':>5s} {'core instr/s':>13s} {'isa instr/s':>12s} {'np-f32 instr/s':>15s} {'us/instr':>9s} "
          f"{'core/isa':>9s} {'core/np-f32':>12s} {'core/np-exact':>14s} {'streaming limit':>24s}")
    for free in args.free:
        fns, core = _streams(free)
        best = {}
        for name, fn in fns.items():
            fn()  # warm-up
            best[name] = float("inf")
        for _ in range(args.repeat):
            for name, fn in fns.items():
                t = time.perf_counter()
                for _ in range(rounds):
                    fn()
                best[name] = min(best[name], time.perf_counter() - t)
        k = rounds * _OPS
        # streaming limit: each instruction reads one [128, F] fp32 tile and writes one; one thread, as small tiles run
        lim = streaming_time(np.zeros(128 * free, np.float32), 4, 20, threads=1) * k
        print(f"{free:5d} {k / best['core']:13.0f} {k / best['isa']:12.0f} {k / best['numpy']:15.0f} "
              f"{best['core'] / k * 1e6:9.1f} {best['core'] / best['isa']:9.2f} {best['core'] / best['numpy']:12.2f} "
              f"{best['core'] / best['numpy_exact']:14.2f} {limit_text(lim, best['core']):>24s}")


if __name__ == "__main__":
    main()
