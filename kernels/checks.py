"""Run each NKI kernel of this package on seeded random inputs and compare it with its float64 reference.

One function per kernel, ``check_<kernel>(shape..., dtype, seed) -> Check``: the tests call them over many shapes and
assert ``passed``; the demo (``emulator/tour/kernels_nki.py``) prints their rows as the error table. The references
and tolerances are in :mod:`kernels.reference` (float64 NumPy, independent of the emulator).

>>> c = check_softmax(4, 8, "float32")
>>> c.passed, c.kernel
(True, 'softmax')
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

from . import reference as ref

__all__ = ["Check", "check_rmsnorm", "check_layernorm", "check_softmax", "check_attention", "check_mxfp8_matmul",
           "check_mxfp4_matmul", "check_cumsum", "check_all_reduce", "DTYPES"]

DTYPES = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16, "float16": np.float16}


@dataclass
class Check:
    """One kernel run against its reference."""

    kernel: str
    shape: str
    dtype: str
    result: ref.Comparison
    instructions: int | None = None  # of the kernel's launch, from emulator.nki.last_report()
    estimated_us: float | None = None

    def __post_init__(self) -> None:
        if self.instructions is None:
            from emulator.nki import last_report

            rep = last_report()
            if rep is not None:
                self.instructions = sum(rep.instructions.values())
                self.estimated_us = rep.estimated_us

    @property
    def passed(self) -> bool:
        return self.result.passed

    def row(self) -> str:
        n = "" if self.instructions is None else str(self.instructions)
        t = "" if self.estimated_us is None else f"{self.estimated_us:.1f}"
        return f"{self.kernel:13s} {self.shape:36s} {self.dtype:9s} {self.result.row()} {n:>6s} {t:>8s}"

    def __str__(self) -> str:
        return self.row()


def _rounding() -> str:
    from emulator.config import get_settings

    return get_settings().rounding


def _inputs(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(DTYPES[dtype])


def _lnc(label: str, lnc: int) -> str:
    return label if lnc == 1 else f"{label} lnc={lnc}"


def check_rmsnorm(n: int, h: int, dtype: str = "float32", seed: int = 0, lnc: int = 1) -> Check:
    """kernels.rmsnorm on ``[n, h]`` normal inputs (and normal gamma), eps 1e-6."""
    from .rmsnorm import rmsnorm

    rng = np.random.default_rng(seed)
    x, g = _inputs(rng, (n, h), dtype), _inputs(rng, (h,), dtype)
    want, bound = ref.rmsnorm_reference(x, g, 1e-6)
    got = rmsnorm(x, g, 1e-6, lnc)
    return Check("rmsnorm", _lnc(f"[{n}, {h}]", lnc), dtype, ref.compare(got, want, bound, DTYPES[dtype]))


def check_layernorm(n: int, h: int, dtype: str = "float32", seed: int = 0, lnc: int = 1) -> Check:
    """kernels.layernorm on ``[n, h]`` inputs with mean 0.5, sd 2 (normal gamma, beta), eps 1e-5."""
    from .layernorm import layernorm

    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, h)) * 2 + 0.5).astype(DTYPES[dtype])
    g, b = _inputs(rng, (h,), dtype), _inputs(rng, (h,), dtype)
    want, bound = ref.layernorm_reference(x, g, b, 1e-5)
    got = layernorm(x, g, b, 1e-5, lnc)
    return Check("layernorm", _lnc(f"[{n}, {h}]", lnc), dtype, ref.compare(got, want, bound, DTYPES[dtype]))


def check_softmax(n: int, f: int, dtype: str = "float32", seed: int = 0, lnc: int = 1,
                  vector_exp: bool = False) -> Check:
    """kernels.softmax on ``[n, f]`` logits of sd 3."""
    from .softmax import softmax

    x = _inputs(np.random.default_rng(seed), (n, f), dtype, scale=3.0)
    want, bound = ref.softmax_reference(x)
    got = softmax(x, lnc, vector_exp)
    label = _lnc(f"[{n}, {f}]", lnc) + (" vector exp" if vector_exp else "")
    return Check("softmax", label, dtype, ref.compare(got, want, bound, DTYPES[dtype]))


def check_attention(s: int, s_kv: int, d: int, dtype: str = "bfloat16", seed: int = 0, causal: bool = False) -> Check:
    """kernels.attention on normal ``q [s, d]``, ``k, v [s_kv, d]``, scale ``1/sqrt(d)``."""
    from .attention import attention

    rng = np.random.default_rng(seed)
    q, k, v = (_inputs(rng, shape, dtype) for shape in ((s, d), (s_kv, d), (s_kv, d)))
    scale = 1.0 / np.sqrt(d)
    want, bound = ref.attention_reference(q, k, v, scale, ref.unit_roundoff(DTYPES[dtype], _rounding()), causal)
    got = attention(q, k, v, scale, causal)
    label = f"S={s} Skv={s_kv} d={d}" + (" causal" if causal else "")
    return Check("attention", label, dtype, ref.compare(got, want, bound, DTYPES[dtype]))


_MX_EMAX = {"float8_e4m3fn": (8, ml_dtypes.float8_e4m3fn), "float8_e5m2": (15, ml_dtypes.float8_e5m2)}


def check_mxfp8_matmul(m: int, k: int, n: int, element: str = "float8_e4m3fn", out: str = "bfloat16",
                       seed: int = 0, psum: str = "float32") -> Check:
    """kernels.mxfp8_matmul on normal bf16 ``lhsT [k, m]``, ``rhs [k, n]`` against the independent
    quantiser of :func:`kernels.reference.mx_quantize_reference`."""
    from .mxfp8_matmul import mxfp8_matmul

    rng = np.random.default_rng(seed)
    a_t = _inputs(rng, (k, m), "bfloat16")
    b = _inputs(rng, (k, n), "bfloat16")
    emax, elem = _MX_EMAX[element]
    qa, qb = (ref.mx_quantize_reference(v, emax, elem) for v in (a_t, b))
    narrow = psum != "float32"
    want, bound = ref.mx_matmul_reference(qa, qb, -(-k // 512) if narrow else 0,
                                          ref.unit_roundoff(DTYPES[psum], _rounding()) if narrow else 0.0)
    got = mxfp8_matmul(a_t, b, element, out, psum)
    label = f"[{m}x{k}]@[{k}x{n}] {element[7:]}" + (" psum bf16" if narrow else "")
    return Check("mxfp8_matmul", label, out, ref.compare(got, want, bound, DTYPES[out]))


def check_mxfp4_matmul(m: int, k: int, n: int, out: str = "bfloat16", seed: int = 0) -> Check:
    """kernels.mxfp4_matmul on uniform random FP4 codes and scales 2^-7 .. 2^6."""
    from .mxfp4_matmul import mxfp4_matmul, pack_fp4

    rng = np.random.default_rng(seed)
    a_codes = rng.integers(0, 16, (k, m), dtype=np.uint8)
    b_codes = rng.integers(0, 16, (k, n), dtype=np.uint8)
    a_scale = rng.integers(120, 134, (k // 32, m), dtype=np.uint8)
    b_scale = rng.integers(120, 134, (k // 32, n), dtype=np.uint8)
    a = ref.fp4_decode(a_codes) * ref.mx_row_scales(a_scale, k)
    b = ref.fp4_decode(b_codes) * ref.mx_row_scales(b_scale, k)
    want, bound = ref.mx_matmul_reference(a, b)
    got = mxfp4_matmul(pack_fp4(a_codes), a_scale, pack_fp4(b_codes), b_scale, out)
    return Check("mxfp4_matmul", f"[{m}x{k}]@[{k}x{n}]", out, ref.compare(got, want, bound, DTYPES[out]))


def check_cumsum(n: int, f: int, dtype: str = "float32", seed: int = 0, lnc: int = 1) -> Check:
    """kernels.cumsum on ``[n, f]`` normal inputs."""
    from .cumsum import cumsum

    x = _inputs(np.random.default_rng(seed), (n, f), dtype)
    want, bound = ref.cumsum_reference(x)
    got = cumsum(x, lnc)
    return Check("cumsum", _lnc(f"[{n}, {f}]", lnc), dtype, ref.compare(got, want, bound, DTYPES[dtype]))


def check_all_reduce(ranks: int, shape: tuple, dtype: str = "float32", op: str = "add", seed: int = 0) -> Check:
    """kernels.all_reduce over ``ranks`` normal arrays; the row reports the worst rank."""
    from .all_reduce import all_reduce

    rng = np.random.default_rng(seed)
    xs = [_inputs(rng, shape, dtype) for _ in range(ranks)]
    if op == "add":
        want, bound = ref.all_reduce_reference(xs, DTYPES[dtype], _rounding())
    else:  # max / min select one input exactly
        stack = np.stack([x.astype(np.float64) for x in xs])
        want, bound = (stack.max(0) if op == "maximum" else stack.min(0)), np.zeros(shape)
    outs = all_reduce(xs, op)
    results = [ref.compare(o, want, bound, DTYPES[dtype]) for o in outs]
    worst = max(results, key=lambda c: c.worst)
    worst.passed = all(c.passed for c in results)
    return Check("all_reduce", f"{ranks} ranks {list(shape)} {op}", dtype, worst)
