"""emu.testing.compare / trn3emu compare: each difference kind at a known index, built from hand-written codes."""

import ml_dtypes
import numpy as np
import pytest

from emulator.cli import main
from emulator.testing import compare

# (index, actual code, expected code, kind): float32 bit patterns written from the IEEE layout.
F32_CASES = [
    (1, 0x3F800000, 0x3F800001, "one_ulp"),        # 1.0 vs its successor
    (3, 0x40A00000, 0x40A00005, "multi_ulp"),      # 5.0 vs 5 ulps above
    (4, 0x00000000, 0x80000000, "signed_zero"),
    (6, 0x7FC00000, 0x7FC00123, "nan_payload"),
    (7, 0x7F800000, 0x7F7FFFFF, "inf_vs_finite"),  # inf vs max finite
    (9, 0x40400000, 0xC0400000, "sign_flip"),      # 3 vs -3
    (10, 0x7FC00000, 0x3F800000, "nan_vs_number"),
    (12, 0x7F800000, 0xFF800000, "inf_sign"),
]
N = 14


def _arrays():
    a = np.full(N, 0x3E800000, np.uint32)  # 0.25 everywhere else: identical
    e = a.copy()
    for i, x, y, _ in F32_CASES:
        a[i], e[i] = x, y
    return a, e


def test_every_kind_counted_at_its_index():
    a, e = _arrays()
    result = compare(a.view(np.float32), e.view(np.float32))
    assert result.n_identical == N - len(F32_CASES)
    assert result.total == N
    want = {}
    for _, _, _, kind in F32_CASES:
        want[kind] = want.get(kind, 0) + 1
    assert result.counts() == want
    assert dict(zip(result.indices.tolist(), result.kinds.tolist())) == {i: k for i, _, _, k in F32_CASES}
    assert int(result.ulps[result.indices.tolist().index(3)]) == 5


def test_codes_with_fmt_and_bfloat16():
    a = np.array([0x3F80, 0x3F80, 0xBF80, 0x0000], np.uint16)  # 1, 1, -1, +0
    e = np.array([0x3F80, 0x3F82, 0x3F80, 0x8000], np.uint16)  # 1, 1+2^-6, 1, -0
    result = compare(a, e, "bfloat16")
    assert result.counts() == {"signed_zero": 1, "sign_flip": 1, "multi_ulp": 1}
    assert result.n_identical == 1


def test_worst_first_then_bitlevel_last():
    a, e = _arrays()
    result = compare(a.view(np.float32), e.view(np.float32))
    order = [int(result.indices[p]) for p in result.worst(20)]
    # NaN vs number, inf vs finite, +inf vs -inf, sign flip, 5 ulps, 1 ulp, NaN payload, signed zero
    assert order == [10, 7, 12, 9, 3, 1, 6, 4]
    summary = result.summary(3)
    assert "identical: 6" in summary and "worst 3" in summary and "... and 5 more" in summary
    assert "[10]" in summary and "(nan)" in summary and "(1)" in summary


def test_cli_compare_identical_and_different(tmp_path, capsys):
    a, e = _arrays()
    np.save(tmp_path / "a.npy", a.view(np.float32))
    np.save(tmp_path / "e.npy", e.view(np.float32))
    assert main(["compare", str(tmp_path / "a.npy"), str(tmp_path / "a.npy")]) == 0
    assert "identical: all 14 elements" in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "a.npy"), str(tmp_path / "e.npy")]) == 1
    out = capsys.readouterr().out
    assert "8 of 14 elements differ" in out and "sign flip: 1" in out and "identical: 6" in out
    assert "0x40400000 (3) | 0xc0400000 (-3)" in out  # codes and decoded values side by side


def test_cli_ml_dtypes_file_needs_fmt(tmp_path, capsys):
    x = np.array([1.0, -0.0, 2.0], ml_dtypes.bfloat16)
    y = np.array([1.0, 0.0, 2.0], ml_dtypes.bfloat16)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    assert main(["compare", str(tmp_path / "x.npy"), str(tmp_path / "y.npy")]) == 2
    assert "pass --fmt" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "--fmt", "bfloat16"]) == 1
    assert "signed zero: 1" in capsys.readouterr().out


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "nope.npy"), str(tmp_path / "nope.npy")]) == 2
    assert "no such file" in capsys.readouterr().err
    np.save(tmp_path / "a.npy", np.zeros(3, np.float32))
    np.save(tmp_path / "b.npy", np.zeros(4, np.float32))
    assert main(["compare", str(tmp_path / "a.npy"), str(tmp_path / "b.npy")]) == 2
    assert "shape" in capsys.readouterr().err


@pytest.mark.parametrize("fmt,a,e,kind", [("float8_e4m3fn", 0x38, 0xB8, "sign_flip"),
                                          ("float8_e5m2", 0x01, 0x81, "sign_flip"),
                                          ("float8_e4m3fn", 0x00, 0x80, "signed_zero")])
def test_sign_flip_in_narrow_formats(fmt, a, e, kind):
    assert compare(np.uint8([a]), np.uint8([e]), fmt).counts() == {kind: 1}
