"""emu.report.sweep: each row equals a direct run under the same settings; the error columns are recomputed here."""

import numpy as np
import pytest

import emulator as emu
from emulator.cli import main
from emulator.report.errors import error_stats
from emulator.report.sweep import sweep_settings


def _inputs(m=40, k=512, n=24, seed=1):  # MX under SR: emu.matmul refuses K > 512 (engine issue, reported)
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32)


def test_combinations_without_repeats():
    rows = sweep_settings(["bfloat16", "mxfp4"], ["sequential"], ["rne", "sr"], 2, ["hw", "ocp"])
    # bf16: rne + 2 SR seeds = 3 rows; mxfp4: the same times 2 conventions = 6 rows
    assert len(rows) == 9
    assert len({tuple(r.values()) for r in rows}) == 9
    assert all(r["mx_convention"] is None for r in rows if r["fmt"] == "bfloat16")
    assert {r["seed"] for r in rows if r["rounding"] == "sr"} == {0, 1}


def test_rows_equal_direct_runs():
    a, b = _inputs()
    table = emu.report.sweep(a, b, fmts=["bfloat16", "mxfp8_e4m3"], accumulations=["sequential", "pairwise"],
                             roundings=["rne", "sr"], seeds=[5, 9], mx_conventions=["hw", "ocp"], keep_results=True)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    assert len(table.rows) == 2 * 3 + 2 * 3 * 2
    for row, kept in zip(table.rows, table.results):
        overrides = {k: row[k] for k in ("accumulation", "rounding", "seed", "mx_convention") if row[k] is not None}
        with emu.settings(**overrides):
            direct = emu.matmul(a, b, row["fmt"])
        assert np.array_equal(direct.view(np.uint32), np.asarray(kept).view(np.uint32)), row
        err = np.abs(direct.astype(np.float64) - ref)
        assert row["max_abs"] == err.max()
        assert row["mean_abs"] == pytest.approx(err.mean(), rel=1e-12)
        assert row["max_rel"] == (err / np.abs(ref)).max()
        assert row["norm_rel"] == err.max() / np.abs(ref).max()
    # SR with different seeds gives different results; RNE rows do not depend on a seed
    sr = [r["max_abs"] for r in table.rows if r["rounding"] == "sr" and r["fmt"] == "bfloat16"
          and r["accumulation"] == "sequential"]
    assert sr[0] != sr[1]


def test_custom_fn_and_table_text():
    a, b = _inputs(8, 16, 8)
    seen = []

    def fn(x, y, fmt):
        seen.append((fmt, emu.get_settings().rounding))
        return (x.astype(np.float64) @ y).astype(np.float32)

    table = emu.report.sweep(a, b, fmts=["f"], roundings=["rne", "rtz"], fn=fn)
    assert seen == [("f", "rne"), ("f", "rtz")]
    text = str(table)
    assert "max_abs" in text and "rtz" in text and text.count("\n") == 4


def test_error_stats_by_hand():
    # ulp of float32 at 4 is 2^-21; 4 + 3 * 2^-21 is 3 ulps away; zero reference: no relative error, and its ulp
    # is the smallest subnormal 2^-149, so 0.5 there is 2^148 ulps
    s = error_stats(np.float32([4 + 3 * 2.0**-21, 0.5, np.inf]), np.float64([4, 0, 1]))
    assert s["max_ulps"] == 2.0**148 and s["max_abs"] == 0.5 and s["nonfinite"] == 1
    assert error_stats(np.float32([4 + 3 * 2.0**-21]), np.float64([4]))["max_ulps"] == 3
    assert s["max_rel"] == 3 * 2.0**-21 / 4 and s["exact"] == 0 and s["norm_rel"] == 0.5 / 4


def test_bad_arguments():
    a, b = _inputs(4, 8, 4)
    with pytest.raises(emu.ArgumentError, match="fmts is empty"):
        emu.report.sweep(a, b, fmts=[])
    with pytest.raises(emu.ArgumentError, match="seeds"):
        emu.report.sweep(a, b, seeds=[])
    with pytest.raises(emu.ArgumentError, match=r"\[M, K\]"):
        emu.report.sweep(a, a.T[:3])
    with pytest.raises(emu.SettingsError):
        emu.report.sweep(a, b, accumulations=["banana"])


def test_cli_sweep(capsys):
    assert main(["sweep", "--shape", "16", "128", "8", "--fmt", "bf16,mxfp4", "--seeds", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("mxfp4") == 6 and "ocp" in out
    assert main(["sweep", "--shape", "0", "4", "4"]) == 2


def test_cli_sweep_runs_a_function_from_a_file(tmp_path, capsys):
    script = tmp_path / "mine.py"
    script.write_text("import numpy as np\n"
                      "def run(a, b, fmt):\n"
                      "    return np.zeros((a.shape[0], b.shape[1]), np.float32)\n")
    assert main(["sweep", "--shape", "4", "8", "2", "--fmt", "x", "--rounding", "rne", "--fn", f"{script}:run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and out[-1].split()[0] == "x"
    assert main(["sweep", "--fn", f"{script}:nope"]) == 2
    assert "defines no function 'nope'" in capsys.readouterr().err
