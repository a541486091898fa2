"""Classify element-by-element differences between two arrays seen in one format, and write the report.

Kinds, checked in this order (the first that applies wins):

``nan_payload``    both NaN, different codes (sign or payload bits)
``nan_vs_number``  one side NaN, the other not
``signed_zero``    +0 against -0
``inf_sign``       +inf against -inf
``inf_vs_finite``  an infinity against a finite value
``sign_flip``      ``x`` against ``-x`` for a finite nonzero ``x`` (the ulp distance, twice its magnitude index, is kept)
``one_ulp``        neighbouring representable values
``multi_ulp``      finite values further apart (the ulp distance is reported)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._bits import BitView

__all__ = ["KINDS", "KIND_LABELS", "WORST_ORDER", "Comparison", "classify"]

KINDS = ("nan_payload", "nan_vs_number", "signed_zero", "inf_sign", "inf_vs_finite", "sign_flip", "one_ulp",
         "multi_ulp")
KIND_LABELS = {
    "nan_payload": "NaN payload/sign",
    "nan_vs_number": "NaN vs number",
    "signed_zero": "signed zero",
    "inf_sign": "+inf vs -inf",
    "inf_vs_finite": "inf vs finite",
    "sign_flip": "sign flip",
    "one_ulp": "1 ulp",
    "multi_ulp": ">1 ulp",
}

#: kinds from most to least serious, for :meth:`Comparison.worst`
WORST_ORDER = ("nan_vs_number", "inf_vs_finite", "inf_sign", "sign_flip", "multi_ulp", "one_ulp", "nan_payload",
               "signed_zero")


def classify(a: BitView, e: BitView, where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kind index (into KINDS) and ulp distance (-1 where not a finite pair) of the elements selected by ``where``."""
    an, en = a.nan[where], e.nan[where]
    av, ev = a.value[where], e.value[where]
    ainf, einf = np.isinf(av) & ~an, np.isinf(ev) & ~en
    dist = np.abs(a.key[where] - e.key[where])
    kind = np.where(dist == 1, KINDS.index("one_ulp"), KINDS.index("multi_ulp"))
    kind = np.where((a.key[where] == -e.key[where]) & (av != 0), KINDS.index("sign_flip"), kind)
    kind = np.where(ainf != einf, KINDS.index("inf_vs_finite"), kind)
    kind = np.where(ainf & einf, KINDS.index("inf_sign"), kind)
    kind = np.where((av == 0) & (ev == 0), KINDS.index("signed_zero"), kind)
    kind = np.where(an != en, KINDS.index("nan_vs_number"), kind)
    kind = np.where(an & en, KINDS.index("nan_payload"), kind)
    finite_pair = kind >= KINDS.index("sign_flip")
    return kind, np.where(finite_pair, dist, -1)


def _fmt_value(v: float, digits: int) -> str:
    if np.isnan(v):
        return "nan"
    if v == 0:
        return "-0" if np.signbit(v) else "0"
    return f"{v:.{digits}g}"


@dataclass
class Comparison:
    """The differences between ``actual`` and ``expected``, element by element.

    ``indices`` are the flat indices of the elements that failed the comparison, ``kinds`` their kind names and
    ``ulps`` their ulp distance (-1 where one side is NaN or infinite, or for a signed-zero difference).
    """

    fmt_name: str
    shape: tuple
    actual: BitView
    expected: BitView
    indices: np.ndarray
    kinds: np.ndarray
    ulps: np.ndarray
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.indices.size == 0

    @property
    def n_different(self) -> int:
        return int(self.indices.size)

    @property
    def total(self) -> int:
        """Number of elements compared."""
        return int(np.prod(self.shape)) if self.shape else 1

    @property
    def n_identical(self) -> int:
        """Elements whose codes are the same (NaNs with the same payload included)."""
        return self.total - self.n_different

    def counts(self) -> dict[str, int]:
        """Number of differences of each kind (kinds that do not occur are left out)."""
        names, counts = np.unique(self.kinds, return_counts=True)
        return {str(n): int(c) for n, c in sorted(zip(names, counts), key=lambda nc: KINDS.index(nc[0]))}

    def ulp_histogram(self) -> dict[str, int]:
        """Differences between finite values by ulp distance, in power-of-two buckets ("1", "2", "3-4", ...)."""
        d = self.ulps[(self.ulps > 0) & np.isin(self.kinds, ("one_ulp", "multi_ulp"))]
        hist: dict[str, int] = {}
        for lo_exp in range(0, 64):
            lo, hi = (1 << lo_exp) // 2 + 1, 1 << lo_exp
            n = int(((d >= lo) & (d <= hi)).sum())
            if n:
                hist[str(hi) if lo == hi else f"{lo}-{hi}"] = n
        return hist

    def worst(self, n: int = 10) -> np.ndarray:
        """Positions (into ``indices``) of the ``n`` worst differences, worst first.

        Severity: a NaN or infinity where the other side has a number, then +inf vs -inf, sign flips, finite
        differences by decreasing ulp distance, and last the bit-level ones (NaN payload, signed zero). Ties keep
        index order.
        """
        order = {k: r for r, k in enumerate(WORST_ORDER)}
        rank = np.array([order[k] for k in self.kinds], dtype=np.int64)
        return np.lexsort((-self.ulps, rank))[:n]

    def _rows(self, positions) -> list[str]:
        """One line per difference: index, kind (with its ulp distance), both codes and decoded values."""
        digits = 17 if self.actual.code_width >= 16 else 9
        width = self.actual.code_width
        index_strs = [str([int(j) for j in np.unravel_index(int(self.indices[r]), self.shape)]) if self.shape
                      else "[]" for r in positions]
        pad = max((len(s) for s in index_strs), default=0)
        kinds = [KIND_LABELS[self.kinds[r]] + (f" ({int(self.ulps[r])})" if self.kinds[r] == "multi_ulp" else "")
                 for r in positions]
        kpad = max([18, *(len(k) for k in kinds)])
        lines = []
        for row, index_str, kind in zip(positions, index_strs, kinds):
            flat = self.indices[row]
            a_code, e_code = int(self.actual.codes[flat]), int(self.expected.codes[flat])
            a_val = _fmt_value(float(self.actual.value[flat]), digits)
            e_val = _fmt_value(float(self.expected.value[flat]), digits)
            lines.append(f"    {index_str:<{pad}}  {kind:<{kpad}} | 0x{a_code:0{width}x} ({a_val}) | "
                         f"0x{e_code:0{width}x} ({e_val})")
        return lines

    def _header(self, title: str) -> list[str]:
        lines = [f"{title}: {self.n_different} of {self.total} elements differ (compared as {self.fmt_name}, "
                 f"shape {self.shape})"]
        lines.append("  by kind: " + ", ".join(f"{KIND_LABELS[k]}: {n}" for k, n in self.counts().items()))
        hist = self.ulp_histogram()
        if hist:
            finite = self.ulps[np.isin(self.kinds, ("one_ulp", "multi_ulp"))]
            lines.append("  ulp distances: " + ", ".join(f"{b}: {n}" for b, n in hist.items())
                         + f"; max {int(finite.max())} ulp")
        lines.extend("  " + n for n in self.notes)
        return lines

    def report(self, title: str = "arrays differ", max_rows: int = 10) -> str:
        """A readable account: how many, of which kinds, where, and the values side by side."""
        lines = self._header(title)
        shown = min(max_rows, self.n_different)
        lines.append(f"  first {shown} (index: kind | actual code (value) | expected code (value)):")
        lines.extend(self._rows(range(shown)))
        if self.n_different > shown:
            lines.append(f"    ... and {self.n_different - shown} more")
        return "\n".join(lines)

    def summary(self, max_rows: int = 10, names: tuple[str, str] = ("actual", "expected")) -> str:
        """The classified diff as ``trn3emu compare`` prints it: identical and per-kind counts, the ulp histogram,
        and the ``max_rows`` worst differences (see :meth:`worst`) with both codes and values side by side."""
        if self.ok:
            return (f"identical: all {self.total} elements have the same codes (compared as {self.fmt_name}, shape "
                    f"{self.shape})")
        lines = self._header(f"{names[0]} vs {names[1]}")
        lines.insert(1, f"  identical: {self.n_identical}")
        rows = self.worst(max_rows)
        lines.append(f"  worst {rows.size} (index: kind | {names[0]} code (value) | {names[1]} code (value)):")
        lines.extend(self._rows(rows))
        if self.n_different > rows.size:
            lines.append(f"    ... and {self.n_different - rows.size} more")
        return "\n".join(lines)
