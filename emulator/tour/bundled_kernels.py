"""``trn3emu demo`` / ``selftest`` for the bundled kernels: the tiled matmul kernel against the one-call emu.matmul."""

from __future__ import annotations

import time

import numpy as np

__all__ = ["demo", "selftest"]


def demo() -> str:
    import emulator as emu

    from kernels import KernelStats, matmul, sparse_matmul

    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 640)).astype(np.float32)
    b = rng.standard_normal((640, 600)).astype(np.float32)
    lines = ["kernels.matmul: [256 x 640] @ [640 x 600] as Tensor Engine instructions through SBUF and PSUM, "
             "against emu.matmul:"]
    for fmt in ("bfloat16", "float8_e4m3fn", "mxfp8_e4m3", "mxfp4"):
        stats = KernelStats()
        t0 = time.perf_counter()
        got = matmul(a, b, fmt, stats=stats)
        dt = time.perf_counter() - t0
        same = bool((got.view(np.uint32) == emu.matmul(a, b, fmt).view(np.uint32)).all())
        lines.append(f"  {fmt:14s} {'bit-identical' if same else 'DIFFERENT'} ({dt * 1e3:6.0f} ms)")
        lines.append(f"    {stats.summary()}")
    w = emu.sparsity.prune(a, 2, 4, axis=1)
    b[7] = np.nan  # a NaN row of b: only positions that every row of w pruned meet it on the sparse datapath
    w[:, 7] = 0.0
    w[:, 4:8:2] = a[:, 4:8:2]  # keep 2 non-zeros in that group of every row, so k = 7 is never a kept position
    w[:, 5] = 0.0
    stats = KernelStats()
    sparse = sparse_matmul(w, b, 2, 4, "bfloat16", stats=stats)
    dense = matmul(w, b, "bfloat16")
    lines.append(f"kernels.sparse_matmul, 2:4 weights, b with a NaN row only pruned positions select: "
                 f"{int(np.isnan(sparse).sum())} NaN in the result (dense datapath: {int(np.isnan(dense).sum())})")
    lines.append(f"    {stats.summary()}")
    return "\n".join(lines)


def selftest() -> list[tuple[str, bool, str]]:
    import emulator as emu

    from kernels import matmul

    rng = np.random.default_rng(2)
    a = rng.standard_normal((130, 200)).astype(np.float32)
    b = rng.standard_normal((200, 40)).astype(np.float32)
    checks = []
    for fmt in ("bfloat16", "mxfp8_e4m3"):
        same = bool((matmul(a, b, fmt).view(np.uint32) == emu.matmul(a, b, fmt).view(np.uint32)).all())
        checks.append((f"kernels.matmul {fmt} == emu.matmul, bit for bit", same, ""))
    return checks
