"""Benchmark: M:N compress + decompress (and prune) of a 4096x4096 bfloat16 2:4 stationary operand.

Prints throughput in Melem/s (dense elements per second) and the ratio to a plain NumPy ``argsort`` implementation
measured in the same run. Never asserts on time.

    python benchmarks/bench_sparsity.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import ml_dtypes
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout without installing
from _machine import machine_line  # noqa: E402
from _timing import best_of  # noqa: E402
import emulator as emu  # noqa: E402
from emulator.numerics import sparsity as sp  # noqa: E402


def baseline_compress(x: np.ndarray, m: int, n: int):
    """The obvious NumPy version along axis 0: stable argsort of the non-zero flags, gather, pack 4 tags/uint16."""
    K, M = x.shape
    g = x.reshape(K // n, n, M)
    nonzero = (g.view(np.uint16) & np.uint16(0x7FFF)) != 0
    pos = np.sort(np.argsort(~nonzero, axis=1, kind="stable")[:, :m, :], axis=1)
    values = np.take_along_axis(g, pos, axis=1).reshape(K // n * m, M)
    t = pos.reshape(K // n * m, M // 4, 4).astype(np.uint16)
    tags = t[..., 0] | (t[..., 1] << 4) | (t[..., 2] << 8) | (t[..., 3] << 12)
    return values, tags


def baseline_decompress(values: np.ndarray, tags: np.ndarray, m: int, n: int):
    Kc, M = values.shape
    nib = ((tags[..., None] >> (np.arange(4, dtype=np.uint16) * 4)) & 0xF).reshape(Kc, M).astype(np.int64)
    out = np.zeros((Kc // m, n, M), dtype=values.dtype)
    np.put_along_axis(out, nib.reshape(Kc // m, m, M), values.reshape(Kc // m, m, M), axis=1)
    return out.reshape(Kc // m * n, M)


def baseline_prune(x: np.ndarray, m: int, n: int):
    K, M = x.shape
    g = x.reshape(K // n, n, M)
    mag = g.view(np.uint16) & np.uint16(0x7FFF)
    keep = np.argsort(-mag.astype(np.int32), axis=1, kind="stable")[:, :m, :]
    out = np.zeros_like(g)
    np.put_along_axis(out, keep, np.take_along_axis(g, keep, axis=1), axis=1)
    return out.reshape(K, M)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one timed repetition instead of three")
    args = parser.parse_args()
    reps = 1 if args.quick else 3
    m, n, size = 2, 4, 4096
    rng = np.random.default_rng(0)
    dense = rng.standard_normal((size, size)).astype(ml_dtypes.bfloat16)
    w = sp.prune(dense, m, n)
    elems = w.size

    # the baselines must compute what the emulator computes, or the ratio means nothing
    v_ref, t_ref = baseline_compress(w, m, n)
    v, t = sp.compress(w, m, n)
    assert v.tobytes() == v_ref.tobytes() and t.tobytes() == t_ref.tobytes(), "baseline disagrees with compress"
    assert baseline_decompress(v, t, m, n).tobytes() == w.tobytes()
    assert baseline_prune(dense, m, n).tobytes() == w.tobytes(), "baseline disagrees with prune"

    def round_trip():
        vv, tt = sp.compress(w, m, n)
        sp.decompress(vv, tt, m, n)

    def base_round_trip():
        vv, tt = baseline_compress(w, m, n)
        baseline_decompress(vv, tt, m, n)

    t_base = best_of(base_round_trip, reps)
    with emu.settings(numba=True):
        t_nb = best_of(round_trip, reps)
        t_prune_nb = best_of(lambda: sp.prune(dense, m, n), reps)
    with emu.settings(numba=False):
        t_np = best_of(round_trip, reps)
    t_prune_base = best_of(lambda: baseline_prune(dense, m, n), reps)

    print(machine_line())
    print(f"M:N sparsity, {size}x{size} bfloat16, {m}:{n} along axis 0 (stationary layout), best of {reps}")
    print(f"  {'operation':44s} {'time (s)':>9s} {'Melem/s':>9s} {'vs argsort baseline':>20s}")
    for name, sec, base in (
        ("compress+decompress, NumPy argsort baseline", t_base, t_base),
        ("compress+decompress, emulator (Numba)", t_nb, t_base),
        ("compress+decompress, emulator (NumPy twin)", t_np, t_base),
        ("prune, NumPy argsort baseline", t_prune_base, t_prune_base),
        ("prune, emulator (Numba)", t_prune_nb, t_prune_base),
    ):
        print(f"  {name:44s} {sec:9.3f} {elems / sec / 1e6:9.1f} {base / sec:19.2f}x")


if __name__ == "__main__":
    main()
