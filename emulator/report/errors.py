"""Error of a result against a float64 reference: per element (absolute, relative, in float32 ulps) and summarised.

The ulp unit is the spacing of float32 at the reference value (``emu.testing.ulp(reference, "float32")``), so "3
ulps" means three float32 steps away from the exactly computed answer, whatever format the inputs were in. Relative
error is ``|result - reference| / |reference|`` where the reference is nonzero (NaN where it is zero, left out of the
maxima). ``norm_rel`` is the normwise relative error ``max |error| / max |reference|``: unlike the elementwise
maxima it is not blown up by elements where the sum cancels to nearly zero. Elements where either side is not finite are counted apart (``nonfinite``), never averaged in.

>>> import numpy as np
>>> s = error_stats(np.float32([1.0, 2.0 + 2.0**-22]), np.float64([1.0, 2.0]))
>>> s["max_ulps"], s["max_abs"], s["exact"]
(1.0, 2.384185791015625e-07, 1)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ShapeError
from ..testing import ulp

__all__ = ["ElementErrors", "element_errors", "error_stats", "STAT_COLUMNS"]

#: the summary columns, in the order tables show them
STAT_COLUMNS = ("max_abs", "max_rel", "norm_rel", "max_ulps", "median_ulps", "mean_abs", "exact", "nonfinite")


@dataclass(frozen=True)
class ElementErrors:
    """Per-element errors (same shape as the result); ``finite`` marks where both sides are finite."""

    abs: np.ndarray
    rel: np.ndarray
    ulps: np.ndarray
    finite: np.ndarray


def element_errors(result, reference) -> ElementErrors:
    """Absolute, relative and float32-ulp error of every element of ``result`` against ``reference``."""
    r = np.asarray(result).astype(np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if r.shape != ref.shape:
        raise ShapeError(f"report: result has shape {r.shape} but the reference has shape {ref.shape}; they must match")
    finite = np.isfinite(r) & np.isfinite(ref)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        err = np.where(finite, np.abs(r - ref), np.nan)
        rel = np.where(finite & (ref != 0), err / np.abs(ref), np.nan)
        ulps = err / ulp(np.where(finite, ref, 0.0), "float32")
    return ElementErrors(err, rel, ulps, finite)


def _max(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(x.max()) if x.size else 0.0


def error_stats(result, reference) -> dict:
    """Summary of :func:`element_errors`: the :data:`STAT_COLUMNS` as a dict (``exact``: elements with no error)."""
    e = element_errors(result, reference)
    fin = e.finite
    scale = float(np.abs(np.asarray(reference, dtype=np.float64)[fin]).max()) if fin.any() else 0.0
    max_abs = _max(e.abs)
    return {
        "max_abs": max_abs, "max_rel": _max(e.rel), "norm_rel": max_abs / scale if scale else 0.0,
        "max_ulps": _max(e.ulps), "median_ulps": float(np.median(e.ulps[fin])) if fin.any() else 0.0,
        "mean_abs": float(e.abs[fin].mean()) if fin.any() else 0.0,
        "exact": int((e.abs[fin] == 0).sum()), "nonfinite": int((~fin).sum()),
    }
