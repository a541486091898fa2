"""The trn3emu command: info, selftest, demo and bench run and say what they should."""

from __future__ import annotations

import subprocess
import sys

from emulator.cli import AREAS, main


def run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emulator", *args], capture_output=True, text=True, timeout=timeout)


def test_info_lists_version_numba_formats_and_every_setting(capsys):
    from emulator.config import describe

    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "trn3-emulator" in out and "numba" in out
    assert "float8_e4m3fn" in out and "max 448" in out
    for row in describe():
        assert f"{row['name']} = " in out
        assert row["env"] in out


def test_selftest_passes():
    out = run("selftest")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert " 0 failed" in out.stdout


def test_every_area_module_has_demo_and_selftest():
    import importlib

    for title, module in AREAS:
        mod = importlib.import_module(module)
        assert callable(mod.demo), title
        assert callable(mod.selftest), title


def test_demo_runs_every_section():
    out = run("demo", timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for title, _ in AREAS:
        assert title in out.stdout


def test_bench_rejects_unknown_names():
    out = run("bench", "nosuchbench")
    assert out.returncode == 2
    assert "unknown benchmark" in out.stderr and "cast" in out.stderr


def test_unknown_command_is_an_argparse_error():
    out = run("frobnicate")
    assert out.returncode == 2 and "invalid choice" in out.stderr
