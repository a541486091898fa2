"""MPI backend: digests equal the in-process backend's; a hung or exiting rank ends the job with a clear error.

Each mpiexec launch costs a couple of seconds, so the cases are batched into one script per process layout.
Skipped (with the reason) only when mpi4py or mpiexec is missing; CI installs the ``mpi`` extra.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import emulator as emu
from emulator.errors import ShapeError

from .mpi_cases import CASES, ERROR_CASES, case_data, digest

ROOT = Path(__file__).resolve().parents[2]


def _mpiexec():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None, "mpi4py is not installed (pip install 'trn3-emulator[mpi]')"
    here = Path(sys.executable).parent / "mpiexec"
    exe = str(here) if here.exists() else shutil.which("mpiexec")
    if exe is None:
        return None, "no mpiexec next to the Python executable or on PATH (pip install mpich)"
    return exe, ""


MPIEXEC, WHY = _mpiexec()
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason=WHY)


def launch(nproc: int, args: list, timeout: float = 120, **settings):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.update({f"TRN3EMU_{k.upper()}": str(v) for k, v in settings.items()})
    start = time.monotonic()
    proc = subprocess.run([MPIEXEC, "-n", str(nproc), sys.executable, "-m", "mpi4py"] + args, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    return proc, time.monotonic() - start


def local_digest(fn, kw, dtype, count, ranks):
    data = [case_data(r, count, dtype) for r in range(ranks)]
    return digest(getattr(emu.collectives, fn)(data, **kw))


@pytest.mark.parametrize("nproc,per_process", [(4, 1), (2, 2)])
def test_mpi_digests_equal_local(nproc, per_process):
    proc, _ = launch(nproc, [str(ROOT / "tests/collectives/mpi_script.py"), str(per_process)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = {c[0] for c in CASES}
    got = dict(line.split() for line in proc.stdout.splitlines() if line.split()[:1] and line.split()[0] in names)
    for name, fn, kw, dtype, count in CASES:
        assert got[name] == local_digest(fn, kw, dtype, count, nproc * per_process), name
    errors = {w[1]: json.loads(w[2]) for w in (line.split(" ", 2) for line in proc.stdout.splitlines())
              if w[0] == "ERR"}
    for name, fn, kw, dtype, count in ERROR_CASES:
        data = [case_data(r, count, dtype) for r in range(nproc * per_process)]
        with pytest.raises(ShapeError) as local:
            getattr(emu.collectives, fn)(data, **kw)
        assert errors[name] == [str(local.value)] * nproc, name


def test_cli_digest_local_equals_mpi():
    args = ["collective", "all_reduce", "--ranks", "4", "--dtype", "bfloat16", "--count", "777", "--seed", "9"]
    local = subprocess.run([sys.executable, "-m", "emulator.cli"] + args, cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
    proc, _ = launch(4, ["-m", "emulator.cli"] + args + ["--backend", "mpi"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    digest = [line for line in local.stdout.splitlines() if line.startswith("digest=")]
    assert digest and digest[0] in proc.stdout.splitlines()
    assert "max_abs_err_vs_float64=" in proc.stdout and "estimate=" in proc.stdout


@pytest.mark.parametrize("algorithm", ["ring", "tree"])
def test_hung_rank_is_named_and_the_job_aborts(algorithm):
    args = ["-m", "emulator.cli", "collective", "all_reduce", "--ranks", "4", "--count", "256", "--backend", "mpi",
            "--algorithm", algorithm, "--kill-rank", "2", "--timeout", "3"]
    proc, elapsed = launch(4, args, timeout=90)
    assert proc.returncode != 0
    assert "RankFailure: rank 2 " in proc.stderr, proc.stderr[-3000:]
    assert elapsed < 45


def test_exiting_rank_ends_the_job():
    args = ["-m", "emulator.cli", "collective", "all_reduce", "--ranks", "4", "--count", "256", "--backend", "mpi",
            "--kill-rank", "1", "--kill-mode", "exit", "--timeout", "3"]
    proc, elapsed = launch(4, args, timeout=90)
    assert proc.returncode != 0
    assert "rank 1 exits" in proc.stderr
    assert elapsed < 45


HANG_BEFORE_ALL_GATHER_V = (  # every process sets up its watchdog channel first, then rank 2 stops responding
    "import time, numpy as np\n"
    "from emulator.collectives import mpi\n"
    "me = mpi.rank_id()\n"
    "mpi.gather(me, timeout=20)\n"
    "if me == 2:\n"
    "    time.sleep(120)\n"
    "mpi.all_gather_v(np.zeros(me + 1, np.float32), timeout=3)\n")
NEVER_CALLS = (  # rank 2 never reaches its first collective, which sets up the watchdog channel (a duplication)
    "import time, numpy as np\n"
    "from emulator.collectives import mpi\n"
    "if mpi.rank_id() == 2:\n"
    "    time.sleep(120)\n"
    "mpi.all_reduce(np.ones(8, np.float32), timeout=3)\n")


@pytest.mark.parametrize("code,message", [
    (HANG_BEFORE_ALL_GATHER_V, "RankFailure: rank 2 did not respond"),  # the lengths exchange of all_gather_v
    (NEVER_CALLS, "RankFailure: rank 2 did not respond at setup"),  # the setup hello, under its own timeout
], ids=["hung-before-all_gather_v", "never-calls-a-collective"])
def test_a_missing_rank_is_named_and_the_job_aborts(code, message):
    # the setup timeout absorbs start-up skew; 10 s is far above it here and keeps the run short
    proc, elapsed = launch(4, ["-c", code], timeout=90, collective_setup_timeout=10)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr[-3000:]
    assert elapsed < 45
