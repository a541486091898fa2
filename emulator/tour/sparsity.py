"""``trn3emu demo`` / ``trn3emu selftest`` for structured sparsity: real results of prune, compress, the report and
the sparse Tensor Engine path."""

from __future__ import annotations

import time

import ml_dtypes
import numpy as np

from ..config import get_settings, settings
from ..numerics import sparsity as sp
from ._check import check as _check

__all__ = ["demo", "selftest"]


def _matrix(a: np.ndarray) -> str:
    return "\n".join("      " + " ".join(f"{float(v):6.2f}" for v in row) for row in a)


def _sparse_engine_section(rng: np.random.Generator) -> list[str]:
    try:
        from ..engines.sparse import nc_matmul_sparse
        from ..engines.tensor import nc_matmul
    except ImportError as exc:  # the Tensor Engine is another area; report instead of failing the demo
        return [f"  (sparse matmul not available in this build: {exc})"]
    w = sp.prune(rng.standard_normal((16, 4)).astype(ml_dtypes.bfloat16), 2, 4)
    values, tags = sp.compress(w, 2, 4)
    x = rng.standard_normal((16, 3)).astype(ml_dtypes.bfloat16)
    kept = sp.decompress(np.ones(values.shape, np.uint8), tags, 2, 4).astype(bool)  # positions the tags select
    pruned_rows = np.flatnonzero(~kept.any(axis=1))
    lines = [f"  stationary 16x4 bf16, 2:4 -> values {values.shape}, tags {tags.shape} uint16; moving 16x3 bf16"]
    same = np.array_equal(nc_matmul_sparse(values, tags, x, 2, 4), nc_matmul(w, x))
    lines.append(f"  nc_matmul_sparse == nc_matmul(decompressed stationary), bit for bit: {same}")
    if pruned_rows.size:
        k = int(pruned_rows[0])
        x[k, 0] = np.nan
        sparse = nc_matmul_sparse(values, tags, x, 2, 4)
        dense = nc_matmul(w, x)
        lines.append(f"  moving[{k}, 0] = NaN, a row every column pruned: sparse column 0 = "
                     f"{[round(float(v), 3) for v in sparse[:, 0]]}")
        lines.append(f"  dense emulation of the same (0 x NaN = NaN):         {dense[:, 0].astype(np.float32).tolist()}")
    return lines


def demo() -> str:
    rng = np.random.default_rng(2024)
    out = ["Patterns the NeuronCore-v4 PE array accepts on the stationary operand (at most m non-zeros in every n "
           "contraction elements): " + ", ".join(f"{m}:{n}" for m, n in sp.PATTERNS)]

    w = np.array([[0.5, -2, 1, 3], [4, 0.25, -1, -3], [-1.5, 2, 0, 0.5], [1, -0.5, 2, 2],
                  [0, 0, -0.0, 1], [3, -3, 1, 2], [-1, 1, 1, -1], [2, 0.5, -4, 0]], dtype=ml_dtypes.bfloat16)
    p = sp.prune(w, 2, 4)
    values, tags = sp.compress(p, 2, 4)
    out += ["", "prune(w, 2, 4): keep the 2 largest |w| of each 4 consecutive rows per column (ties: lowest row)",
            "    w (bf16, 8x4):", _matrix(w.astype(np.float32)), "    pruned:", _matrix(p.astype(np.float32)),
            f"    compress -> values {values.shape} bf16, tags {tags.shape} uint16 (4 tags per word, tag of column "
            f"4w+q in bits [4q, 4q+4)):",
            "      " + "  ".join(f"0x{int(t):04x}" for t in tags.ravel()),
            f"    tags per column: {sp.unpack_tags(tags, 4).T.tolist()}",
            f"    decompress(compress(p)) is p bit for bit: "
            f"{sp.decompress(values, tags, 2, 4).tobytes() == p.tobytes()}"]
    try:
        sp.compress(w, 2, 4)
    except sp.NotMNError as exc:
        out += [f"    compress(w) of the unpruned w: NotMNError: {exc}"]

    big = rng.standard_normal((576, 128)).astype(np.float32)
    acts = rng.standard_normal((576, 64)).astype(np.float32)
    out += ["", "What pruning a 576x128 Gaussian weight costs (report(w, m, n, moving=x), x 576x64 Gaussian):"]
    for m, n in sp.PATTERNS:
        r = sp.report(big, m, n, moving=acts)
        out.append(f"    {m:>2d}:{n:<2d} density {m / n:5.3f}  energy kept {r.energy_kept:6.4f}  "
                   f"matmul rel. error {r.matmul_rel_error:6.4f}")

    out += ["", "Sparse Tensor Engine path (nc_matmul_sparse): pruned positions never enter the product"]
    out += _sparse_engine_section(rng)

    x = sp.prune(rng.standard_normal((4096, 4096)).astype(ml_dtypes.bfloat16), 2, 4)
    sp.decompress(*sp.compress(x[:64], 2, 4), 2, 4)  # compile outside the timing
    t0 = time.perf_counter()
    v, t = sp.compress(x, 2, 4)
    t1 = time.perf_counter()
    sp.decompress(v, t, 2, 4)
    t2 = time.perf_counter()
    out += ["", f"4096x4096 bf16 2:4: compress {t1 - t0:.3f} s ({x.size / (t1 - t0) / 1e6:.0f} Melem/s), "
                f"decompress {t2 - t1:.3f} s ({x.size / (t2 - t1) / 1e6:.0f} Melem/s)"]
    return "\n".join(out)


def _patterns_round_trip():
    rng = np.random.default_rng(1)
    for m, n in sp.PATTERNS:
        x = rng.standard_normal((4 * n, 12)).astype(ml_dtypes.bfloat16)
        results = []
        for numba in (True, False):
            with settings(numba=numba):
                p = sp.prune(x, m, n)
                v, t = sp.compress(p, m, n)
                results.append((p.tobytes(), v.tobytes(), t.tobytes()))
                if not sp.is_m_n(p, m, n) or sp.decompress(v, t, m, n).tobytes() != p.tobytes():
                    return False, f"{m}:{n} (numba={numba}) prune/compress/decompress is not exact"
        if results[0] != results[1]:
            return False, f"{m}:{n}: the Numba and NumPy paths differ"
    return True, f"{len(sp.PATTERNS)} patterns, Numba == NumPy"


def _every_bf16_code():
    codes = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    x = np.zeros((codes.size * 2,), np.uint16)
    x[0::2] = codes
    v, t = sp.compress(x, 1, 2, fmt="bfloat16")
    return np.array_equal(sp.decompress(v, t, 1, 2), x), "65536 bf16 codes (NaN, inf, -0) survive 1:2 compression"


def _rejects():
    for m, n in ((3, 7), (5, 4), (0, 4)):
        try:
            sp.check_pattern(m, n)
        except ValueError:
            continue
        return False, f"{m}:{n} was accepted"
    try:
        sp.compress(np.ones(4, np.float32), 2, 4)
    except sp.NotMNError as exc:
        return "group 0" in str(exc), "3:7, 5:4, 0:4 and a dense operand are rejected"
    return False, "compress accepted a dense operand"


def _kept_are_largest():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((64, 32)).astype(np.float32)
    keep = sp.mask(x, 4, 16).reshape(4, 16, 32)
    mag = np.abs(x).reshape(4, 16, 32)
    ok = (np.where(keep, mag, np.inf).min(axis=1) >= np.where(keep, -np.inf, mag).max(axis=1)).all()
    return ok and (keep.sum(axis=1) == 4).all(), "4:16 keeps exactly the 4 largest of every group"


def _sparse_matmul():
    try:
        from ..engines.sparse import nc_matmul_sparse
        from ..engines.tensor import nc_matmul
    except ImportError as exc:
        return True, f"skipped: tensor engine not in this build ({exc})"
    rng = np.random.default_rng(9)
    w = sp.prune(rng.standard_normal((256, 32)).astype(ml_dtypes.bfloat16), 2, 4)
    x = rng.standard_normal((256, 48)).astype(ml_dtypes.bfloat16)
    v, t = sp.compress(w, 2, 4)
    got = nc_matmul_sparse(v, t, x, 2, 4)
    # independent check: the sequential model is fp32 adds in k order; bf16 products are exact in fp32
    dense = w.astype(np.float32)
    acc = np.zeros((32, 48), np.float32)
    for k in range(256):
        acc = (acc + dense[k][:, None] * x[k].astype(np.float32)[None, :]).astype(np.float32)
    if get_settings().accumulation == "sequential" and get_settings().denormals == "keep" \
            and not np.array_equal(got, acc):
        return False, "differs from an fp32 k loop over the 256 logical rows"
    half = 128
    same = np.array_equal(nc_matmul_sparse(v[:64], t[:64], x[:half], 2, 4), nc_matmul(w[:half], x[:half]))
    return same, "128 compressed rows for 256 logical rows; == nc_matmul(decompressed) bit for bit"


def selftest() -> list[tuple[str, bool, str]]:
    return [
        _check("sparsity: every pattern, prune/compress/decompress exact", _patterns_round_trip),
        _check("sparsity: every bfloat16 code round-trips", _every_bf16_code),
        _check("sparsity: unsupported patterns and non-M:N operands rejected", _rejects),
        _check("sparsity: kept elements are the largest", _kept_are_largest),
        _check("sparsity: nc_matmul_sparse on a 256-row logical stationary", _sparse_matmul),
    ]
