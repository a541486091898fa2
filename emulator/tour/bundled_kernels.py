"""``trn3emu demo`` / ``selftest`` for the bundled kernels: the tiled NKI matmul kernel against the one-call
emu.matmul; the instruction counts, DMA bytes and peak SBUF/PSUM come from the launch report
(``emulator.nki.last_report()``)."""

from __future__ import annotations

import numpy as np

from ._check import timed

__all__ = ["demo", "selftest"]


def _summary(rep) -> str:
    """One line of a launch report: instructions by name, DMA traffic, peak on-chip footprint."""
    ops = ", ".join(f"{name} x{count}" for name, count in sorted(rep.instructions.items()))
    return (f"{ops}; DMA {sum(rep.dma_bytes.values()) / 2 ** 20:.2f} MiB; peak SBUF {rep.peak_sbuf} B and PSUM "
            f"{rep.peak_psum} B per partition")


def demo(timings: bool = False) -> str:
    """The section's report; ``timings`` adds the time of each call, measured after a warm-up call."""
    import emulator as emu

    from emulator.nki import last_report
    from kernels import matmul, sparse_matmul

    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 384)).astype(np.float32)  # 2 x 3 x 2 tiles (M, K, N): every loop of the kernel
    b = rng.standard_normal((384, 520)).astype(np.float32)
    lines = ["kernels.matmul: [256 x 384] @ [384 x 520] as an NKI kernel (Tensor Engine instructions through SBUF "
             "and PSUM), against emu.matmul; counts from emulator.nki.last_report():"]
    for fmt in ("bfloat16", "float8_e4m3fn", "mxfp8_e4m3", "mxfp4"):
        got = matmul(a, b, fmt)
        summary = _summary(last_report())
        same = bool((got.view(np.uint32) == emu.matmul(a, b, fmt).view(np.uint32)).all())
        took = ""
        if timings:
            took = f" ({timed(lambda: matmul(a, b, fmt))[1] * 1e3:6.0f} ms, best of 3 after a warm-up call)"
        lines.append(f"  {fmt:14s} {'bit-identical' if same else 'DIFFERENT'}{took}")
        lines.append(f"    {summary}")
    w = emu.sparsity.prune(a, 2, 4, axis=1)
    b[7] = np.nan  # a NaN row of b: only positions that every row of w pruned meet it on the sparse datapath
    w[:, 7] = 0.0
    w[:, 4:8:2] = a[:, 4:8:2]  # keep 2 non-zeros in that group of every row, so k = 7 is never a kept position
    w[:, 5] = 0.0
    sparse = sparse_matmul(w, b, 2, 4, "bfloat16")
    summary = _summary(last_report())
    dense = matmul(w, b, "bfloat16")
    lines.append(f"kernels.sparse_matmul, 2:4 weights, b with a NaN row only pruned positions select: "
                 f"{int(np.isnan(sparse).sum())} NaN in the result (dense datapath: {int(np.isnan(dense).sum())})")
    lines.append(f"    {summary}")
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
