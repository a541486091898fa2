"""``trn3emu demo`` / ``selftest`` for the Tensor Engine, the memory model and the tiled matmul."""

from __future__ import annotations

import time

import numpy as np

__all__ = ["demo", "selftest"]


def _seq_ref(st: np.ndarray, mv: np.ndarray) -> np.ndarray:
    """Independent reference of the sequential model: a plain np.float32 loop over k."""
    out = np.zeros((st.shape[1], mv.shape[1]), np.float32)
    for m in range(st.shape[1]):
        for n in range(mv.shape[1]):
            acc = np.float32(0.0)
            for k in range(st.shape[0]):
                acc = np.float32(acc + np.float32(st[k, m] * mv[k, n]))
            out[m, n] = acc
    return out


def demo() -> str:
    import ml_dtypes

    import emulator as emu
    from emulator.engines.memory import Memory

    lines = []
    st = np.array([[2.0 ** 24], [1.0], [1.0]], np.float32)
    mv = np.ones((3, 1), np.float32)
    lines.append("Accumulation models on [2^24, 1, 1] . [1, 1, 1] (fp32):")
    for model in ("sequential", "pairwise", "blocked:2", "exact"):
        lines.append(f"  {model:11s} -> {float(emu.nc_matmul(st, mv, accumulation=model)[0, 0]):.1f}")
    r = np.full((1, 4), 1.0 + 2.0 ** -8, np.float32)
    bf = emu.nc_matmul(np.ones((1, 1), np.float32), r, psum_dtype="bfloat16")
    lines.append(f"bf16 PSUM write of 1+2^-8 (a tie) -> {bf.astype(np.float32)[0, 0]} (RNE to even)")
    with emu.settings(rounding="sr", seed=7):
        srs = [float(emu.nc_matmul(np.ones((1, 1), np.float32), r, psum_dtype="bfloat16", site=s)
                     .astype(np.float32)[0, 0]) for s in range(8)]
    lines.append(f"  with rounding='sr' over 8 sites -> {srs}")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 384)).astype(np.float32)
    b = rng.standard_normal((384, 512)).astype(np.float32)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    lines.append("emu.matmul of [256 x 384] @ [384 x 512], max relative error against float64:")
    for fmt in ("float32", "bfloat16", "float8_e4m3fn", "mxfp8_e4m3", "mxfp4"):
        emu.matmul(a[:2, :32], b[:32, :2], fmt)  # compile (or load) the kernels outside the timing
        t0 = time.perf_counter()
        got = emu.matmul(a, b, fmt)
        dt = time.perf_counter() - t0
        err = float(np.abs(got - exact).max() / np.abs(exact).max())
        lines.append(f"  {fmt:14s} {err:9.2e}   ({dt * 1e3:6.1f} ms)")
    mem = Memory()
    x = mem.sbuf((128, 512), ml_dtypes.bfloat16, name="x")
    w = mem.sbuf((128, 128), ml_dtypes.bfloat16, name="w")
    out = mem.psum((128, 512), "float32", name="acc")
    x.write(np.ones((128, 512), np.float32))
    try:
        emu.nc_matmul(w, x, psum=out)
    except emu.UninitializedReadError as exc:
        lines.append(f"uninitialised read caught: {exc}")
    lines.append("memory: " + mem.report().replace("\n", "\n        "))
    lines.append(emu.explain.matmul(1024, 1024, 1024, "mxfp8_e4m3", show=2))
    return "\n".join(lines)


def selftest() -> list[tuple[str, bool, str]]:
    import ml_dtypes

    import emulator as emu

    checks = []
    rng = np.random.default_rng(1)
    st = rng.standard_normal((40, 6)).astype(ml_dtypes.bfloat16)
    mv = rng.standard_normal((40, 9)).astype(ml_dtypes.bfloat16)
    got = emu.nc_matmul(st, mv)
    want = _seq_ref(st.astype(np.float32), mv.astype(np.float32))
    checks.append(("nc_matmul bf16 sequential == np.float32 k loop", bool((got.view(np.uint32) == want.view(np.uint32)).all()), ""))
    a = rng.standard_normal((300, 7)).astype(np.float32)
    b = rng.standard_normal((300, 45)).astype(np.float32)
    twins = []
    for use_numba in (True, False):
        with emu.settings(numba=use_numba):
            twins.append(emu.matmul(a.T, b, "float32").view(np.uint32))
    checks.append(("emu.matmul fp32: Numba kernel == NumPy twin", bool((twins[0] == twins[1]).all()), ""))
    x = rng.standard_normal((130, 70)).astype(np.float32)
    y = rng.standard_normal((70, 33)).astype(np.float32)
    err = np.abs(emu.matmul(x, y, "float32") - x.astype(np.float64) @ y)
    bound = 71 * 2.0 ** -24 * (np.abs(x).astype(np.float64) @ np.abs(y))  # (K+1) u sum|a||b|
    checks.append(("emu.matmul fp32 within the fp32 error bound", bool((err <= bound).all()), f"max {err.max():.2e}"))
    t = emu.nc_transpose(np.array([[np.nan, -0.0]], np.float32))
    checks.append(("transpose keeps NaN and -0", bool(np.isnan(t[0, 0]) and np.signbit(t[1, 0])), ""))
    try:
        emu.nc_matmul(np.zeros((129, 4), np.float32), np.zeros((129, 4), np.float32))
        checks.append(("K > 128 rejected", False, "no error"))
    except emu.ShapeError as exc:
        checks.append(("K > 128 rejected", True, str(exc)[:60]))
    return checks
