"""Run one matmul (or any ``fn(a, b, fmt)``) under several settings and tabulate each result's error.

"What does SR or MXFP4 do to my kernel?" in one call: every combination of input format, accumulation model,
rounding (RNE, RTZ, SR with several seeds) and MX scale convention runs once, and its result is compared with the
float64 product ``a @ b`` (:func:`emulator.report.errors.error_stats`). The MX convention only varies for MX
formats and the seed only for SR, so no row repeats another.

>>> import numpy as np
>>> a = np.full((8, 512), 1 + 2**-9, np.float32); b = np.ones((512, 8), np.float32)
>>> table = sweep(a, b, fmts=["float32", "bfloat16"], roundings=["rne"])
>>> [(row["fmt"], row["max_abs"]) for row in table.rows]   # bf16 rounds 1 + 2^-9 to 1: 512 instead of 513
[('float32', 0.0), ('bfloat16', 1.0)]
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..config import settings
from ..errors import ArgumentError
from ..progress import Progress
from .errors import STAT_COLUMNS, error_stats

__all__ = ["Sweep", "sweep", "sweep_settings", "SETTING_COLUMNS"]

#: the settings columns of a sweep row (``fmt`` is an argument of ``fn``; the others are emulator settings)
SETTING_COLUMNS = ("fmt", "accumulation", "rounding", "seed", "mx_convention")


def _is_mx(fmt: str) -> bool:
    return str(fmt).lower().startswith("mx")


def sweep_settings(fmts: Sequence[str], accumulations: Sequence[str], roundings: Sequence[str], seeds: int | Sequence[int],
                   mx_conventions: Sequence[str]) -> list[dict]:
    """The distinct combinations a sweep runs, one dict per row (``seed``/``mx_convention`` None where unused)."""
    seed_list = list(range(seeds)) if isinstance(seeds, (int, np.integer)) else list(seeds)
    if not seed_list:
        raise ArgumentError("sweep: seeds must name at least one seed (an integer N >= 1 means seeds 0..N-1)")
    for name, values in (("fmts", fmts), ("accumulations", accumulations), ("roundings", roundings),
                         ("mx_conventions", mx_conventions)):
        if not list(values):
            raise ArgumentError(f"sweep: {name} is empty; give at least one value")
    rows = []
    for fmt, acc, rnd in itertools.product(fmts, accumulations, roundings):
        for seed in (seed_list if rnd == "sr" else [None]):
            for conv in (mx_conventions if _is_mx(fmt) else [None]):
                rows.append({"fmt": fmt, "accumulation": acc, "rounding": rnd, "seed": seed, "mx_convention": conv})
    return rows


def _run(fn: Callable, a, b, row: dict):
    overrides = {k: row[k] for k in ("accumulation", "rounding", "seed", "mx_convention") if row[k] is not None}
    with settings(**overrides):
        return fn(a, b, row["fmt"])


def _matmul(a, b, fmt):
    from ..engines.matmul import matmul

    return matmul(a, b, fmt)


@dataclass
class Sweep:
    """The rows of a sweep: each a dict of :data:`SETTING_COLUMNS` and the error :data:`STAT_COLUMNS`."""

    rows: list[dict]
    shape: tuple
    results: list = field(default_factory=list, repr=False)   # each row's result array (kept when asked)

    def table(self) -> str:
        """The rows as an aligned text table, one line per run."""
        cols = [c for c in SETTING_COLUMNS if any(r[c] is not None for r in self.rows)] + list(STAT_COLUMNS)
        cells = [[_cell(r[c]) for c in cols] for r in self.rows]
        widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths))]
        lines.append("  ".join("-" * w for w in widths))
        lines.extend("  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells)
        return "\n".join(lines)

    def __str__(self) -> str:
        m, k, n = self.shape
        return (f"sweep of [{m}, {k}] @ [{k}, {n}] against the float64 product (ulps: float32 steps at the "
                f"reference value)\n" + self.table())


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def sweep(a, b, *, fmts: Sequence[str] = ("bfloat16",), accumulations: Sequence[str] = ("sequential",),
          roundings: Sequence[str] = ("rne", "sr"), seeds: int | Sequence[int] = 3,
          mx_conventions: Sequence[str] = ("hw", "ocp"), fn: Callable | None = None,
          keep_results: bool = False) -> Sweep:
    """Run ``fn(a, b, fmt)`` (default ``emu.matmul``) under every combination of settings; tabulate the errors.

    Parameters
    ----------
    a, b : float arrays ``[M, K]`` and ``[K, N]``; the reference is ``a @ b`` in float64.
    fmts : input formats (any of ``emu.matmul``'s: bfloat16, float8_e4m3fn, mxfp8_e4m3, mxfp4, ...).
    accumulations : values of the ``accumulation`` setting (sequential, exact, pairwise, blocked:B).
    roundings : values of the ``rounding`` setting (rne, rtz, sr); SR runs once per seed.
    seeds : an integer N (seeds 0..N-1) or a list of seeds, for SR rows.
    mx_conventions : values of ``mx_convention`` (hw, ocp), for MX formats.
    fn : what to run instead of ``emu.matmul`` (e.g. a kernel launch), called as ``fn(a, b, fmt)``.
    keep_results : keep each row's result in ``.results``.

    Returns
    -------
    Sweep
        ``.rows`` (dicts of settings and errors), ``.table()``; ``str()`` prints the table.
    """
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a64.ndim != 2 or b64.ndim != 2 or a64.shape[1] != b64.shape[0]:
        raise ArgumentError(f"sweep: a and b must be [M, K] and [K, N]; got shapes {a64.shape} and {b64.shape}")
    reference = a64 @ b64
    fn = _matmul if fn is None else fn
    rows = sweep_settings(fmts, accumulations, roundings, seeds, mx_conventions)
    out = Sweep([], (a64.shape[0], a64.shape[1], b64.shape[1]))
    with Progress(len(rows), "trn3emu sweep") as bar:
        for row in rows:
            result = _run(fn, a, b, row)
            out.rows.append({**row, **error_stats(result, reference)})
            if keep_results:
                out.results.append(result)
            bar.update(note=f"{row['fmt']} {row['rounding']}")
    return out
