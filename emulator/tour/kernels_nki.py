"""``trn3emu demo`` / ``selftest`` section: the NKI kernels of ``kernels/`` against their float64 references.

Each row runs one kernel (written against ``nki.isa`` / ``nki.language``, unchanged from how it would run on a
Trainium3) on seeded random inputs of a shape that needs tiling, and prints the largest absolute error, the largest
error in ulps of the output format, the worst ratio of error to the declared tolerance (<= 1 passes), the verdict, and
from the launch report the number of instructions and the cost model's time estimate.
The tolerance of each kernel, and why, follows the table.

>>> len({name for name, _ in CASES})  # every kernel has a row (demo() runs them: seconds, not a doctest)
8
"""

from __future__ import annotations

__all__ = ["demo", "selftest", "CASES", "SELFTEST_CASES"]

#: (check function name, args) per row; quick mode keeps the first row of each kernel
CASES = [
    ("check_rmsnorm", (300, 1024, "bfloat16")),
    ("check_rmsnorm", (130, 520, "float32")),
    ("check_rmsnorm", (300, 1024, "bfloat16", 0, 2)),  # LNC=2: the same rows on two cores
    ("check_layernorm", (260, 1500, "bfloat16")),
    ("check_softmax", (200, 1000, "bfloat16")),
    ("check_softmax", (131, 2048, "float32")),
    ("check_softmax", (131, 2048, "float32", 0, 1, True)),  # exponential on the Vector Engine (v4)
    ("check_attention", (200, 1030, 128, "bfloat16")),
    ("check_attention", (130, 600, 32, "float32")),
    ("check_attention", (300, 300, 64, "bfloat16", 0, True)),  # causal: affine_select mask
    ("check_mxfp8_matmul", (256, 1152, 520, "float8_e4m3fn", "bfloat16")),
    ("check_mxfp8_matmul", (130, 640, 96, "float8_e5m2", "float32")),
    ("check_mxfp8_matmul", (130, 640, 520, "float8_e4m3fn", "float32", 0, "bfloat16")),  # bf16 PSUM
    ("check_mxfp4_matmul", (130, 1536, 520, "bfloat16")),
    ("check_cumsum", (140, 2100, "bfloat16")),
    ("check_cumsum", (129, 513, "float32")),
    ("check_all_reduce", (4, (300, 64), "bfloat16", "add")),
    ("check_all_reduce", (8, (128, 512), "float32", "add")),
]


#: small shapes for ``trn3emu selftest``: one per kernel, still crossing a tile edge where it is cheap
SELFTEST_CASES = [
    ("check_rmsnorm", (130, 40, "bfloat16")),
    ("check_layernorm", (20, 520, "float32")),
    ("check_softmax", (130, 33, "bfloat16")),
    ("check_attention", (20, 130, 16, "bfloat16")),
    ("check_mxfp8_matmul", (16, 256, 24, "float8_e4m3fn", "bfloat16")),
    ("check_mxfp4_matmul", (16, 256, 24, "float32")),
    ("check_cumsum", (4, 600, "float32")),
    ("check_all_reduce", (3, (8, 16), "bfloat16", "add")),
]


def _run(name: str, args: tuple) -> str:
    from kernels import checks

    try:
        return getattr(checks, name)(*args).row()
    except Exception as exc:  # a missing front-end feature must not hide the other rows
        kernel = name.removeprefix("check_")
        return f"{kernel:13s} {'':36s} {'':9s} not run: {type(exc).__name__}: {str(exc).splitlines()[0][:90]}"


def demo(timings: bool = False, quick: bool | None = None) -> str:
    """The error table of every bundled NKI kernel: one shape per kernel, or every case in ``CASES`` with
    ``timings`` (``trn3emu demo --timings``) or ``quick=False``."""
    quick = not timings if quick is None else quick
    from kernels.reference import TOLERANCES

    seen: set = set()
    rows = []
    for name, args in CASES:
        if quick and name in seen:
            continue
        seen.add(name)
        rows.append(_run(name, args))
    head = (f"{'kernel':13s} {'shape':36s} {'out':9s} {'max abs':>10s} {'max ulp':>8s} {'err/tol':>6s} verdict "
            f"{'instr':>6s} {'est us':>8s}")
    lines = ["NKI kernels (kernels/) against float64 references: error = |kernel - float64|, tolerance = declared",
             head, "-" * len(head), *rows,
             "(max ulp is at the reference value: it is large where a sum cancels to near zero, which the tolerance",
             " allows through its sum-of-magnitudes term; err/tol <= 1 is the pass criterion)", "",
             "Tolerances (U = 2^-24, gamma(n) = nU/(1-nU), FUNC = 2^-21 per transcendental):"]
    lines += [f"  {k:13s} {v}" for k, v in TOLERANCES.items()]
    return "\n".join(lines)


def selftest() -> list[tuple[str, bool, str]]:
    """One small run per kernel: (name, within the declared tolerance, the error row)."""
    from kernels import checks

    out = []
    for name, args in SELFTEST_CASES:
        kernel = name.removeprefix("check_")
        try:
            c = getattr(checks, name)(*args)
            out.append((f"kernels.{kernel} (NKI) within its float64 tolerance", c.passed, c.row()))
        except Exception as exc:
            out.append((f"kernels.{kernel} (NKI) within its float64 tolerance", False, f"{type(exc).__name__}: {exc}"))
    return out
