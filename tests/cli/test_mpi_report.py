"""Under mpiexec, a hung rank ends `trn3emu collective` with its report printed once and no Python traceback.

Launched the way tests/collectives/test_mpi.py launches its jobs; skipped (with the reason) where mpi4py or mpiexec
is missing.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _mpiexec():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None, "mpi4py is not installed (pip install 'trn3-emulator[mpi]')"
    here = pathlib.Path(sys.executable).parent / "mpiexec"
    exe = str(here) if here.exists() else shutil.which("mpiexec")
    return (exe, "") if exe else (None, "no mpiexec next to the Python executable or on PATH (pip install mpich)")


MPIEXEC, WHY = _mpiexec()


@pytest.mark.mpi
@pytest.mark.skipif(MPIEXEC is None, reason=WHY)
@pytest.mark.parametrize("kill_rank", [2, 0])
def test_hung_rank_is_reported_once_without_tracebacks(kill_rank):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    args = ["-m", "emulator", "collective", "all_reduce", "--ranks", "4", "--count", "256", "--backend", "mpi",
            "--kill-rank", str(kill_rank), "--timeout", "3"]
    proc = subprocess.run([MPIEXEC, "-n", "4", sys.executable] + args, cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr[-3000:]
    reports = [ln for ln in proc.stderr.splitlines() if "did not respond" in ln]
    assert reports == [ln for ln in reports if ln.startswith("trn3emu collective: RankFailure: ")], proc.stderr
    assert len(reports) == 1 and f"rank {kill_rank} did not respond" in reports[0], proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
