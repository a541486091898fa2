"""Which of our settings reproduce the installed ml_dtypes, where its versions differ.

ml_dtypes is a cross-check, not the truth: its versions disagree on e8m0 rounding and on float64 inputs (see
docs/numerics.md). Tests, the self-check and the exhaustive sweep ask :func:`ml_dtypes_behaviour` which behaviour the
installed version has, and compare under the settings that reproduce it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

__all__ = ["MlDtypesBehaviour", "ml_dtypes_behaviour"]


@dataclass(frozen=True)
class MlDtypesBehaviour:
    """How the installed ml_dtypes casts where its versions differ, as the settings that reproduce it.

    ``e8m0_rounding``: the setting that gives ml_dtypes' fp32 -> float8_e8m0fnu ``astype`` ("ml_dtypes_0.6" for
    0.6, "nearest_up" for 0.7), or None if none does. ``wide_input``: "exact" if its float64 ``astype`` rounds once
    (0.7), "via_fp32" if it rounds to float32 first (0.6 and older).
    """

    version: str
    e8m0_rounding: str | None
    wide_input: str

    def settings(self) -> dict:
        """The settings under which ``emu.cast`` equals this ml_dtypes (for ``with emu.settings(**b.settings())``)."""
        return {"e8m0_rounding": self.e8m0_rounding, "wide_input": self.wide_input}

    def __str__(self) -> str:
        return (f"ml_dtypes {self.version}: e8m0 casts as e8m0_rounding={self.e8m0_rounding!r}, float64 casts as "
                f"wide_input={self.wide_input!r}")


@functools.cache
def ml_dtypes_behaviour() -> MlDtypesBehaviour:
    """Probe the installed ml_dtypes on the inputs where its versions are known to differ.

    >>> ml_dtypes_behaviour().wide_input in ("exact", "via_fp32")
    True
    """
    import ml_dtypes

    # fp32 -> e8m0: the tie 3.0 (2.0 = code 0x80 or 4.0 = 0x81), and 1.25 * 2^-127 (nearest: 2^-127 = code 0;
    # 0.6 sends everything in (2^-127, 2^-126) up to 2^-126 = code 1)
    probe = np.array([3.0, 1.25 * 2.0**-127], np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        tie, sub = probe.astype(ml_dtypes.float8_e8m0fnu).view(np.uint8).tolist()
    e8m0 = {(0x81, 1): "ml_dtypes_0.6", (0x81, 0): "nearest_up", (0x80, 0): "nearest_even"}.get((tie, sub))
    # float64 1.0625 + 2^-40 -> e4m3fn: 1.125 (code 0x39) rounded once; 1.0 (0x38) through the fp32 tie 1.0625
    once = np.array([1.0625 + 2.0**-40]).astype(ml_dtypes.float8_e4m3fn).view(np.uint8)[0] == 0x39
    return MlDtypesBehaviour(ml_dtypes.__version__, e8m0, "exact" if once else "via_fp32")
