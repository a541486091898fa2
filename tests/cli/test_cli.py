"""The trn3emu command: info, selftest, demo and bench run and say what they should; every mistake is one line."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

from emulator import tour
from emulator.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run(*args: str, timeout: int = 600, code: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "emulator", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


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


def test_every_tour_section_has_demo_and_selftest():
    import importlib

    import pathlib

    # every public module of emulator/tour/ (warmup is the compile watcher, not a section) is exactly one section
    files = {p.stem for p in pathlib.Path(tour.__file__).parent.glob("*.py")
             if not p.stem.startswith("_") and p.stem != "warmup"}
    assert len({s.key for s in tour.SECTIONS}) == len(tour.SECTIONS)
    assert sorted(s.module.rsplit(".", 1)[1] for s in tour.SECTIONS) == sorted(files)
    for section in tour.SECTIONS:
        mod = importlib.import_module(section.module)
        assert callable(mod.demo), section.title
        assert callable(mod.selftest), section.title


def test_demo_runs_every_section():
    out = run("demo", timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for section in tour.SECTIONS:
        assert section.title in out.stdout
    assert "Traceback" not in out.stderr


def test_no_library_module_imports_the_tour_or_the_cli():
    """The tour and the CLI are the top layer: nothing under emulator/ or kernels/ outside them imports them."""
    offenders = []
    for path in list((ROOT / "emulator").rglob("*.py")) + list((ROOT / "kernels").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("emulator/tour/") or rel in ("emulator/cli.py", "emulator/__main__.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")] + [a.name for a in node.names]
            if any("tour" in n.split(".") or n.endswith("cli") and "collectives" not in n for n in names):
                offenders.append(f"{rel}: {names}")
    assert not offenders, offenders
    assert not list((ROOT / "emulator").rglob("demo*.py")) and not (ROOT / "kernels" / "demo.py").exists()


NO_HYPOTHESIS = ("import sys; sys.modules['hypothesis'] = None; from emulator.cli import main; "
                 "raise SystemExit(main(sys.argv[1:]))")


@pytest.mark.parametrize("command", ["demo", "selftest"])
def test_without_hypothesis_the_testing_section_is_skipped_with_a_hint(command):
    out = run(command, "testing", code=NO_HYPOTHESIS, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    hint = [ln for ln in out.stdout.splitlines() if "skipped" in ln]
    assert len(hint) == 1 and "hypothesis" in hint[0] and "trn3-emulator[test]" in hint[0], out.stdout


def test_demo_of_one_section_runs_only_that_section():
    out = run("demo", "casts", timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Formats and bit-exact casts" in out.stdout and "Collectives" not in out.stdout


# (arguments, a word the one-line message must contain)
BAD = [
    (["explain", "matmul", "8", "8", "8", "--fmt", "banana"], "banana"),
    (["explain", "matmul", "0", "8", "8"], "M must be positive, got 0"),
    (["explain", "matmul", "-5", "8", "8"], "M must be positive, got -5"),
    (["explain", "matmul", "8", "8", "0"], "N must be positive, got 0"),
    (["explain", "matmul", "x", "8", "8"], "invalid int value: 'x'"),
    (["explain", "matmul", "8", "8", "8", "--show", "-1"], "--show"),
    (["explain", "matmul", "8", "8", "8", "--psum-dtype", "int8"], "int8"),
    (["explain"], "required"),
    (["explain", "collective", "all_reduce", "--ranks", "0"], "--ranks"),
    (["explain", "collective", "all_reduce", "--algorithm", "banana"], "banana"),
    (["explain", "collective", "all_reduce", "--dtype", "banana"], "banana"),
    (["collective", "all_reduce", "--ranks", "0"], "--ranks must be >= 1, got 0"),
    (["collective", "all_reduce", "--count", "-1"], "--count must be >= 0, got -1"),
    (["collective", "all_reduce", "--dtype", "banana", "--count", "8"], "banana"),
    (["collective", "all_reduce", "--ranks", "4", "--count", "8", "--channels", "0"], "channels"),
    (["collective", "all_reduce", "--ranks", "4", "--count", "8", "--timeout", "0"], "--timeout"),
    (["collective", "all_reduce", "--ranks", "4", "--count", "8", "--kill-rank", "2"], "--backend mpi"),
    (["collective", "all_gather", "--ranks", "4", "--backend", "mpi", "--kill-rank", "1"], "all_gather"),
    (["collective", "all_reduce", "--ranks", "4", "--backend", "mpi", "--kill-rank", "7"], "--kill-rank 7"),
    (["collective", "all_reduce", "--ranks", "4", "--count", "8", "--algorithm", "hierarchical",
      "--server-ranks", "3"], "servers of 3 ranks"),
    (["collective", "reduce_scatter", "--ranks", "4", "--count", "7"], "4 equal blocks"),
    (["collective", "frobnicate"], "invalid choice"),
    (["demo", "banana"], "banana"),
    (["selftest", "banana"], "banana"),
    (["bench", "nosuchbench"], "unknown benchmark"),
    (["frobnicate"], "invalid choice"),
    (["info", "--bogus"], "--bogus"),
]


@pytest.mark.parametrize("argv,word", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_every_cli_error_is_one_line_and_a_nonzero_exit(argv, word, capsys):
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert status == 2, captured
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert lines[0].startswith("trn3emu") and word in lines[0], lines[0]


def test_kill_rank_without_mpiexec_is_refused_instead_of_hanging():
    out = run("collective", "all_reduce", "--ranks", "4", "--backend", "mpi", "--kill-rank", "2", "--timeout", "3",
              timeout=120)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert "mpiexec -n" in lines[0]


def test_bench_cast_columns_line_up():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_cast.py"), "--n", "4096", "--repeat", "1"],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    header = next(ln for ln in lines if ln.startswith("format"))
    rows = [ln for ln in lines if "/r" in ln.split()[0]]  # float8_e4m3fn/rne, bfloat16/rtz, ...
    assert len(rows) >= 16 and any(r.startswith("float8_e4m3fn/rne ") for r in rows)
    end = header.index("Melem/s") + len("Melem/s")  # the right-aligned "emu Melem/s" column
    for row in rows:
        label, number = row.split()[:2]
        assert row.index(number, len(label)) + len(number) == end, (header, row)
