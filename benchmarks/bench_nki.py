"""Per-instruction overhead of the NKI front end: instructions per second through ``nki.isa`` and, in the same
run, through the NeuronCore method and the array-level ``emu.isa`` function on the same operands.

    python benchmarks/bench_nki.py [--quick]

The ratios say what each layer costs: front end / core method and core method / array function. Small tiles
([1, 1], [128, 8]) measure overhead, [128, 512] the engine work. Also times one small tiled bf16 matmul kernel
written in NKI, and tile allocation (``nl.ndarray``) with many tiles live, against ``np.empty`` of the same shape
(nki-library's attention_cte holds thousands of tiles at once). Nothing here asserts on time.
"""

from __future__ import annotations

import argparse

import ml_dtypes
import numpy as np

from _machine import machine_line
from _timing import best_of
import emulator as emu
from emulator._jit import numba_active
from emulator.nki import isa as nisa, language as nl
from emulator.nki._launch import current_core


def _per_second(fn, n: int, repeat: int) -> float:
    def loop():
        for _ in range(n):
            fn()
    return n / best_of(loop, repeat)


def instruction_rates(shape, n: int, repeat: int) -> tuple[float, float, float]:
    """(nki.isa, core method, emu.isa) tensor_tensor instructions per second on fp32 tiles of ``shape``."""
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    a = nl.ndarray(shape, nl.float32)
    a.write(x)
    d = nl.ndarray(shape, nl.bfloat16)
    core = current_core()
    out = np.empty(shape, ml_dtypes.bfloat16)
    front = _per_second(lambda: nisa.tensor_tensor(dst=d, data1=a, data2=a, op=nl.add), n, repeat)
    method = _per_second(lambda: core.tensor_tensor(d.t, a.t, a.t, "add"), n, repeat)
    array = _per_second(lambda: emu.isa.tensor_tensor(out, x, x, "add"), n, repeat)
    return front, method, array


def allocation_rates(live: int, n: int, repeat: int) -> tuple[float, float]:
    """(nl.ndarray, np.empty) allocations per second of a [128, 8] fp32 SBUF tile while ``live`` such tiles are
    held: the allocator's work per tile should not grow with the tiles already placed."""
    held = [nl.ndarray((128, 8), nl.float32) for _ in range(live)]
    tile = _per_second(lambda: nl.ndarray((128, 8), nl.float32), n, repeat)
    base = _per_second(lambda: np.empty((128, 8), np.float32), n, repeat)
    del held
    return tile, base


def matmul_kernel_seconds(size: int, repeat: int) -> float:
    from emulator import nki

    @nki.jit
    def matmul(lhsT, rhs):
        K, M = lhsT.shape
        N = rhs.shape[1]
        out = nl.ndarray((M, N), nl.float32, buffer=nl.shared_hbm)
        for m in nl.affine_range(M // 128):
            for n in nl.affine_range(N // 512):
                ps = nl.ndarray((128, 512), nl.float32, buffer=nl.psum)
                for k in nl.affine_range(K // 128):
                    lt = nl.ndarray((128, 128), lhsT.dtype, buffer=nl.sbuf)
                    rt = nl.ndarray((128, 512), rhs.dtype, buffer=nl.sbuf)
                    nisa.dma_copy(dst=lt, src=lhsT[k * 128:(k + 1) * 128, m * 128:(m + 1) * 128])
                    nisa.dma_copy(dst=rt, src=rhs[k * 128:(k + 1) * 128, n * 512:(n + 1) * 512])
                    nisa.nc_matmul(dst=ps, stationary=lt, moving=rt)
                sb = nl.ndarray((128, 512), nl.float32, buffer=nl.sbuf)
                nisa.tensor_copy(dst=sb, src=ps)
                nisa.dma_copy(dst=out[m * 128:(m + 1) * 128, n * 512:(n + 1) * 512], src=sb)
        return out

    rng = np.random.default_rng(1)
    a = rng.standard_normal((size, size)).astype(ml_dtypes.bfloat16)
    b = rng.standard_normal((size, size)).astype(ml_dtypes.bfloat16)
    matmul(a[:128, :128], b[:128, :512])  # warm up (Numba compilation)
    return best_of(lambda: matmul(a, b), repeat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer instructions, a 512^3 matmul instead of 1024^3")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n = 300 if args.quick else 2000
    print(machine_line())
    print(f"nki.isa.tensor_tensor (fp32 + fp32 -> bf16), {n} instructions, Numba {'on' if numba_active() else 'off'}, "
          f"best of {args.repeat}")
    print(f"{'tile':>10s} {'nki.isa/s':>10s} {'core/s':>10s} {'emu.isa/s':>10s} {'front/core':>11s} "
          f"{'core/array':>11s}")
    for shape in ((1, 1), (128, 8), (128, 512)):
        front, method, array = instruction_rates(shape, n, args.repeat)
        print(f"{str(list(shape)):>10s} {front:10.0f} {method:10.0f} {array:10.0f} {front / method:11.2f} "
              f"{method / array:11.2f}")
    print(f"nl.ndarray [128, 8] fp32 SBUF tile allocations per second with tiles already live, {n} allocations; "
          f"baseline np.empty of the same shape in the same run")
    print(f"{'live':>10s} {'tiles/s':>10s} {'np.empty/s':>11s} {'ratio':>8s}")
    for live in (10, 1000, 4000):
        tile, base = allocation_rates(live, n, args.repeat)
        print(f"{live:10d} {tile:10.0f} {base:11.0f} {tile / base:8.4f}")
    size = 512 if args.quick else 1024
    t = matmul_kernel_seconds(size, 1)
    print(f"tiled bf16 matmul kernel {size}^3 in NKI (dma_copy + nc_matmul + tensor_copy): {t:.2f} s")


if __name__ == "__main__":
    main()
