"""``trn3emu demo`` / ``selftest`` for the testing toolkit: a comparator report and a mutation caught live."""

from __future__ import annotations

import numpy as np

from ..numerics import formats
from ..testing.comparators import assert_bitwise_equal, compare


def _ties_away(x, fmt, rounding="rne", saturate=False):
    """A deliberately broken cast: exact ties go away from zero (nudged one fp32 ulp outward, then RNE)."""
    from ..numerics.cast import cast
    from ..testing.strategies import value_classes

    x = np.asarray(x)
    tie = value_classes(x, fmt) == "tie"
    with np.errstate(over="ignore"):
        nudged = np.where(tie, np.nextafter(x, np.copysign(np.inf, x).astype(x.dtype)), x).astype(x.dtype)
    return cast(nudged, fmt, rounding=rounding, saturate=saturate)


def demo() -> str:
    from ..numerics.cast import cast
    from ..testing.properties import check_cast
    from ..testing.strategies import edge_values

    lines = ["Edge-case cast inputs that emulator.testing.values('float8_e4m3fn') draws (positive side):"]
    for name, vals in edge_values("float8_e4m3fn").items():
        lines.append(f"  {name:17s} " + ", ".join(f"{v:.9g}" for v in vals))
    x = np.float32([1.0625, 464.0, -0.0, 2.0**-10, 3 * 2.0**-11, np.nan])
    expected = cast(x, "float8_e4m3fn")
    actual = _ties_away(x, "float8_e4m3fn")
    actual[2] = 0  # and a lost sign of zero
    lines.append("\nA cast that rounds ties away from zero, compared with emu.cast:")
    try:
        assert_bitwise_equal(actual, expected, "float8_e4m3fn")
    except AssertionError as exc:
        lines.extend("  " + ln for ln in str(exc).splitlines())
    lines.append("\nThe shipped property test (check_cast) on that mutant, 200 examples, no shrinking:")
    try:
        check_cast(_ties_away, "float8_e4m3fn", max_examples=200, shape=(16,), derandomize=True, shrink=False)
        lines.append("  NOT caught (this is a bug in the toolkit)")
    except AssertionError as exc:
        first = [ln for ln in str(exc).splitlines() if "by kind" in ln]
        lines.append("  caught:" + (first[0].replace("  by kind:", "") if first else ""))
    check_cast(None, "float8_e4m3fn", max_examples=50, shape=(16,), derandomize=True)
    lines.append("  emu.cast itself passes the same property (50 examples).")
    return "\n".join(lines)


def selftest() -> list[tuple[str, bool, str]]:
    from ..testing.properties import reference_cast

    checks = []
    c = compare(np.uint8([0x00, 0x38, 0x7F, 0x7E]), np.uint8([0x80, 0x39, 0xFF, 0x7F]), "float8_e4m3fn")
    want = {"nan_payload": 1, "nan_vs_number": 1, "signed_zero": 1, "one_ulp": 1}
    checks.append(("comparator classifies signed zero, NaN sign, NaN vs number, 1 ulp", c.counts() == want,
                   str(c.counts())))
    cases = [(464.0, 126), (465.0, 127), (1.0625, 0x38), (1.1875, 0x3A), (2.0**-10, 0x00), (3 * 2.0**-11, 0x01)]
    got = [reference_cast(v, "float8_e4m3fn") for v, _ in cases]
    checks.append(("reference cast: e4m3fn top tie, ties to even, subnormal ties",
                   got == [w for _, w in cases], f"got {got}"))
    f = formats.get("float8_e4m3fn")
    try:
        from ..numerics.cast import cast

        codes = np.arange(256, dtype=np.uint8)
        vals = f.value_table
        ok = np.isnan(vals) | (cast(vals, f) == codes)
        checks.append(("every e4m3fn code survives decode -> emu.cast", bool(ok.all()), ""))
    except ImportError as exc:  # the cast module is part of the foundation; report rather than crash
        checks.append(("every e4m3fn code survives decode -> emu.cast", False, str(exc)))
    try:
        from ..testing.properties import check_cast

        check_cast(_ties_away, "float8_e4m3fn", max_examples=100, shape=(8,), derandomize=True, shrink=False)
        checks.append(("check_cast catches a ties-away cast", False, "not caught"))
    except AssertionError:
        checks.append(("check_cast catches a ties-away cast", True, ""))
    except ImportError as exc:
        checks.append(("check_cast catches a ties-away cast", False, f"hypothesis missing: {exc}"))
    return checks
