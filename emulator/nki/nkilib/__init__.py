"""Run AWS's nki-library test suite on the emulator, with no Neuron package installed.

:func:`run` (and ``trn3emu nkilib PATH [pytest args...]``) runs the pytest suite of an nki-library checkout at
``PATH`` in ``--test-mode simulation --platform-target trn3``, in a child Python of the current environment, with
:mod:`emulator.nki.nkilib.plugin` loaded first. The plugin installs our stand-in modules (:mod:`.stand_ins`:
``nki_cpu_simulator.nki.*``, ``nki``, ``neuron_dtypes``, ``neuronxcc.*``), works around the harness's own defects in
memory and prints a per-family summary (:mod:`.summary`). Nothing in the checkout is changed: pytest's cache, the
harness's output and artifact directories go to a temporary directory (unless the caller passes its own).

The child runs with the Neuron runtime's ``NEURON_RT_ENABLE_OCP_SATURATION=1`` (the emulator's ``saturate``
setting True), as nki-library's harness sets it for every hardware run (``test/utils/host_management.py``), unless
the caller's environment sets it or ``TRN3EMU_SATURATE`` already; and with ``TRN3EMU_OUTPUT_UNWRITTEN=zero``
(elements of a new output the kernel never writes read as zero, as nki-library's goldens expect) unless the caller
set it.

The harness's test dependencies (torch, pytest-html, allpairspy, filelock, attrs, plotext, typing_extensions,
scipy) must be importable; the Neuron packages and the unused cloud ones (fabric2, boto3, ...) need not be.

>>> from emulator.nki import nkilib
>>> nkilib.pytest_command("/src/nki-library", ["-k", "rope"])[:4]
['-m', 'pytest', '-p', 'emulator.nki.nkilib.plugin']
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from ...config import NEURON_SATURATION_ENV, env_name
from ...errors import SettingsError
from . import ledger
from .source_fixes import FIX_ENV

__all__ = ["run", "report", "pytest_command", "child_env", "RUN_ALL_ENV"]

#: the harness's switch for the large-shape cases it skips in simulation by default
RUN_ALL_ENV = "NKILIB_SIMULATION_RUN_ALL"
#: the child writes every failed comparison's arrays to this directory (``run(dump_misses=...)``)
DUMP_ENV = "TRN3EMU_NKILIB_DUMP_MISSES"
#: directories (os.pathsep-separated) of the run's own scratch whose per-case entries the child deletes after each
#: case: the harness dumps every case's inputs and outputs there (GBs over a family's run)
SCRATCH_ENV = "TRN3EMU_NKILIB_SCRATCH"
_EMULATOR_ROOT = str(Path(__file__).resolve().parents[3])


def _has(args: list[str], option: str) -> bool:
    return any(a == option or a.startswith(option + "=") for a in args)


def pytest_command(path: str, args: list[str], scratch: str | None = None) -> list[str]:
    """The arguments of ``python`` for the run (the test selection defaults to ``test/integration``)."""
    scratch = scratch or tempfile.gettempdir()
    # a module that fails to import (nki-library has a few at some commits) must not stop the others
    cmd = ["-m", "pytest", "-p", "emulator.nki.nkilib.plugin", "-p", "no:cacheprovider",
           "--continue-on-collection-errors"]
    if not _has(args, "--test-mode"):
        cmd += ["--test-mode", "simulation"]
    if not _has(args, "--platform-target"):
        cmd += ["--platform-target", "trn3"]
    if not _has(args, "--output-directory"):
        cmd += ["--output-directory", os.path.join(scratch, "output")]
    cmd += ["-o", f"artifacts_dir={os.path.join(scratch, 'artifacts')}"]
    return cmd + list(args) + ([] if _selects_tests(path, args) else ["test/integration"])


#: pytest (and harness) options whose value is the next argument (a value is never a test selection)
_VALUE_OPTIONS = {"-k", "-m", "-p", "-o", "-c", "-W", "--override-ini", "--output-directory", "--platform-target",
                  "--test-mode", "--rootdir", "--basetemp", "--deselect", "--ignore", "--ignore-glob", "--junitxml",
                  "--tb", "--maxfail", "--durations", "--log-level", "--confcutdir"}


def _selects_tests(path: str, args: list[str]) -> bool:
    """Whether ``args`` name tests: a file or directory of the checkout (``test/...``, ``test/x.py::case``) that is
    not the value of an option."""
    root = os.path.abspath(path)
    for prev, a in zip([None] + list(args), args):
        if a.startswith("-") or prev in _VALUE_OPTIONS:
            continue
        target = os.path.abspath(os.path.join(root, a.split("::")[0]))
        if (target == root or target.startswith(root + os.sep)) and os.path.exists(target):
            return True
    return False


def child_env(path: str, all_shapes: bool = False, summary_json: str | None = None,
              dump_misses: str | None = None, fix_source_defects: bool = False, results: str | None = None,
              resume: bool = False, shard: str | None = None, rerun_failed: bool = False) -> dict[str, str]:
    """The environment of the child: the emulator, the checkout and its ``src/`` first on ``PYTHONPATH``."""
    env = dict(os.environ)
    parts = [_EMULATOR_ROOT, os.path.join(path, "src"), path] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                                                                if p]
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ in the checkout either
    # the harness's hardware hosts export it on every run; the caller's own choice (either variable) stands
    if NEURON_SATURATION_ENV not in env and env_name("saturate") not in env:
        env[NEURON_SATURATION_ENV] = "1"
    # nki-library's goldens read zeros where a kernel never writes its new output (moe_tkg's dynamic all-expert path)
    env.setdefault(env_name("output_unwritten"), "zero")
    if all_shapes:
        env[RUN_ALL_ENV] = "1"
    if summary_json:
        env["TRN3EMU_NKILIB_SUMMARY"] = os.path.abspath(summary_json)
    if dump_misses:
        env[DUMP_ENV] = os.path.abspath(dump_misses)
    if fix_source_defects:
        env[FIX_ENV] = "1"
    if results:
        env[ledger.LEDGER_ENV] = os.path.abspath(results)
    if resume:
        env[ledger.RESUME_ENV] = "failed" if rerun_failed else "1"
    if shard:
        env[ledger.SHARD_ENV] = shard
    return env


def run(path: str, args: list[str] | None = None, all_shapes: bool = False, summary_json: str | None = None,
        timeout: float | None = None, dump_misses: str | None = None, fix_source_defects: bool = False,
        results: str | None = None, resume: bool = False, shard: str | None = None, rerun_failed: bool = False) -> int:
    """Run the nki-library suite at ``path`` on the emulator; pytest's exit code.

    Parameters
    ----------
    path : an nki-library checkout (the directory holding ``test/`` and ``src/``).
    args : extra pytest arguments (test paths relative to ``path``, ``-k``, ``-x``, ...).
    all_shapes : also run the large-shape cases the harness skips in simulation (sets NKILIB_SIMULATION_RUN_ALL=1).
    summary_json : also write the per-family summary as JSON there.
    timeout : seconds before the run is stopped (None: no limit).
    dump_misses : a directory: every failed golden comparison leaves ``<case>-<n>.npz`` there with the arrays
        ``got`` and ``want`` (and ``rtol``, ``atol``), to look at the miss beyond its worst element.
    fix_source_defects : fix the known nki-library source defects of :mod:`.source_fixes` in memory as their files
        are imported (each fix applied is named in the summary); by default their cases fail as
        ``harness/source defect``.
    results : a ledger file (:mod:`.ledger`, JSON lines) the run appends every case's start and outcome to as it
        goes, so that a run stopped from outside keeps what it reached; :func:`report` reads it.
    resume : with ``results``: leave out the cases the ledger already has an outcome for (a case that stopped a run
        is run once more; one that stopped two is left out).
    rerun_failed : with ``resume``: run again the cases whose last outcome is a failure (after a fix, or a failure
        of the machine such as a full disk).
    shard : ``"K/N"``: run every N-th collected case from the K-th only (to split the suite over machines or
        processes; shards are taken from the whole collection, before ``resume``).
    """
    path = os.path.abspath(path)
    if not os.path.isfile(os.path.join(path, "test", "conftest.py")):
        raise SettingsError(f"trn3emu nkilib: {path} is not an nki-library checkout (no test/conftest.py)")
    if rerun_failed and not resume:
        raise SettingsError("trn3emu nkilib: rerun_failed (--rerun-failed) goes with resume (--resume)")
    if resume and not results:
        raise SettingsError("trn3emu nkilib: resume needs the ledger to resume from (results=FILE, --results FILE)")
    if shard:
        ledger.parse_shard(shard)
    for target in (summary_json, results):
        if target:  # the child writes them after every case
            os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="trn3emu-nkilib-") as scratch:
        cmd = [sys.executable] + pytest_command(path, list(args or []), scratch)
        env = child_env(path, all_shapes, summary_json, dump_misses, fix_source_defects, results, resume, shard,
                        rerun_failed)
        # the harness's per-case dumps in our own scratch go after each case (a caller's --output-directory stays)
        own = [os.path.join(scratch, "artifacts")]
        if not _has(list(args or []), "--output-directory"):
            own.append(os.path.join(scratch, "output"))
        env[SCRATCH_ENV] = os.pathsep.join(own)
        proc = subprocess.Popen(cmd, cwd=path, env=env)
        try:
            return proc.wait(timeout=timeout)
        except (subprocess.TimeoutExpired, KeyboardInterrupt) as exc:
            # pytest stops at the case in progress and still prints its summary on SIGINT
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            why = f"after {timeout} s" if isinstance(exc, subprocess.TimeoutExpired) else "on interrupt"
            print(f"trn3emu nkilib: stopped {why}", file=sys.stderr)
            return 124 if isinstance(exc, subprocess.TimeoutExpired) else 130


def report(*ledgers: str, summary_json: str | None = None) -> str:
    """The per-family summary of one or more ledgers (``run(results=...)``): every case's last outcome, over all the
    runs that wrote to them; also written as JSON to ``summary_json``."""
    from .summary import Record

    if not ledgers:
        raise SettingsError("trn3emu nkilib --report: name at least one ledger file")
    cases = ledger.read(*ledgers)
    record = Record.from_ledger(cases)
    runs = {case.run for case in cases.values()}
    text = record.render({}) + f"\n{len(cases)} cases from {len(runs)} run(s) in {', '.join(ledgers)}; each case " \
        "counted once, with its last outcome"
    if summary_json:
        record.dump(summary_json, {})
    return text
