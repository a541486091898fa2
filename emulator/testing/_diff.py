"""Classify element-by-element differences between two arrays seen in one format, and write the report.

Kinds, checked in this order (the first that applies wins):

``nan_payload``    both NaN, different codes (sign or payload bits)
``nan_vs_number``  one side NaN, the other not
``signed_zero``    +0 against -0
``inf_sign``       +inf against -inf
``inf_vs_finite``  an infinity against a finite value
``one_ulp``        neighbouring representable values
``multi_ulp``      finite values further apart (the ulp distance is reported)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._bits import BitView

__all__ = ["KINDS", "KIND_LABELS", "Comparison", "classify"]

KINDS = ("nan_payload", "nan_vs_number", "signed_zero", "inf_sign", "inf_vs_finite", "one_ulp", "multi_ulp")
KIND_LABELS = {
    "nan_payload": "NaN payload/sign",
    "nan_vs_number": "NaN vs number",
    "signed_zero": "signed zero",
    "inf_sign": "+inf vs -inf",
    "inf_vs_finite": "inf vs finite",
    "one_ulp": "1 ulp",
    "multi_ulp": ">1 ulp",
}


def classify(a: BitView, e: BitView, where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kind index (into KINDS) and ulp distance (-1 where not a finite pair) of the elements selected by ``where``."""
    an, en = a.nan[where], e.nan[where]
    av, ev = a.value[where], e.value[where]
    ainf, einf = np.isinf(av) & ~an, np.isinf(ev) & ~en
    dist = np.abs(a.key[where] - e.key[where])
    kind = np.where(dist == 1, KINDS.index("one_ulp"), KINDS.index("multi_ulp"))
    kind = np.where(ainf != einf, KINDS.index("inf_vs_finite"), kind)
    kind = np.where(ainf & einf, KINDS.index("inf_sign"), kind)
    kind = np.where((av == 0) & (ev == 0), KINDS.index("signed_zero"), kind)
    kind = np.where(an != en, KINDS.index("nan_vs_number"), kind)
    kind = np.where(an & en, KINDS.index("nan_payload"), kind)
    finite_pair = kind >= KINDS.index("one_ulp")
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

    def counts(self) -> dict[str, int]:
        """Number of differences of each kind (kinds that do not occur are left out)."""
        names, counts = np.unique(self.kinds, return_counts=True)
        return {str(n): int(c) for n, c in sorted(zip(names, counts), key=lambda nc: KINDS.index(nc[0]))}

    def ulp_histogram(self) -> dict[str, int]:
        """Differences between finite values by ulp distance, in power-of-two buckets ("1", "2", "3-4", ...)."""
        d = self.ulps[self.ulps > 0]
        hist: dict[str, int] = {}
        for lo_exp in range(0, 64):
            lo, hi = (1 << lo_exp) // 2 + 1, 1 << lo_exp
            n = int(((d >= lo) & (d <= hi)).sum())
            if n:
                hist[str(hi) if lo == hi else f"{lo}-{hi}"] = n
        return hist

    def report(self, title: str = "arrays differ", max_rows: int = 10) -> str:
        """A readable account: how many, of which kinds, where, and the values side by side."""
        total = int(np.prod(self.shape)) if self.shape else 1
        lines = [f"{title}: {self.n_different} of {total} elements differ (compared as {self.fmt_name}, "
                 f"shape {self.shape})"]
        lines.append("  by kind: " + ", ".join(f"{KIND_LABELS[k]}: {n}" for k, n in self.counts().items()))
        hist = self.ulp_histogram()
        if hist:
            lines.append("  ulp distances: " + ", ".join(f"{b}: {n}" for b, n in hist.items())
                         + f"; max {int(self.ulps.max())} ulp")
        lines.extend("  " + n for n in self.notes)
        digits = 17 if self.actual.code_width >= 16 else 9
        width = self.actual.code_width
        shown = min(max_rows, self.n_different)
        lines.append(f"  first {shown} (index: kind | actual code (value) | expected code (value)):")
        index_strs = [str([int(j) for j in np.unravel_index(int(i), self.shape)]) if self.shape else "[]"
                      for i in self.indices[:shown]]
        pad = max((len(s) for s in index_strs), default=0)
        for row, flat in enumerate(self.indices[:shown]):
            kind = KIND_LABELS[self.kinds[row]]
            if self.ulps[row] > 1:
                kind += f" ({int(self.ulps[row])})"
            a_code, e_code = int(self.actual.codes[flat]), int(self.expected.codes[flat])
            a_val = _fmt_value(float(self.actual.value[flat]), digits)
            e_val = _fmt_value(float(self.expected.value[flat]), digits)
            lines.append(f"    {index_strs[row]:<{pad}}  {kind:<18} | 0x{a_code:0{width}x} ({a_val}) | "
                         f"0x{e_code:0{width}x} ({e_val})")
        if self.n_different > shown:
            lines.append(f"    ... and {self.n_different - shown} more")
        return "\n".join(lines)
