"""The results ledger of nki-library runs: one JSON line per case, appended as the case runs, so that a run stopped
from outside (a time limit, the machine's OOM killer, Ctrl-C) keeps every outcome it reached, and a later run can
take up where it stopped (``--resume``) or a suite can be split over machines (``--shard K/N``).

A ledger is a text file of JSON objects, one per line, of three kinds:

* ``{"run": ID, "started": ..., "emulator": ..., "checkout": ..., "args": [...], "shard": "K/N" | null}``: a run began;
* ``{"case": NODEID, "run": ID, "outcome": "started"}``: a case began (its outcome line follows unless the run ended
  during the case);
* ``{"case": NODEID, "run": ID, "outcome": "passed" | "failed" | "skipped", "class": ..., "seconds": ...}``: its end
  (``class``: the failure class of :mod:`.summary`, or the skip reason).

The last outcome of a case wins (a later run's re-run replaces an earlier failure). A case that has ``started`` lines
and no outcome after them ended its run (or is running now): :func:`read` reports it as ``stopped``. ``--resume`` runs the cases of the
selection that have no outcome yet, and once more a case that stopped its run once (Ctrl-C, a time limit); a case that
stopped two runs (it is what takes the process down) is left out and stays ``stopped``.

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "ledger.jsonl")
>>> append(path, {"case": "t.py::a", "run": "r1", "outcome": "started"})
>>> append(path, {"case": "t.py::a", "run": "r1", "outcome": "passed", "class": "", "seconds": 1.5})
>>> append(path, {"case": "t.py::b", "run": "r1", "outcome": "started"})
>>> {k: v.outcome for k, v in read(path).items()}
{'t.py::a': 'passed', 't.py::b': 'stopped'}
>>> parse_shard("2/4")
(2, 4)
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass

from ...errors import SettingsError

__all__ = ["append", "read", "Case", "parse_shard", "in_shard", "skip_on_resume", "checkout_commit",
           "LEDGER_ENV", "RESUME_ENV", "SHARD_ENV"]

#: the child appends to this ledger (``run(results=...)``)
LEDGER_ENV = "TRN3EMU_NKILIB_RESULTS"
#: "1": leave out the cases the ledger already has an outcome for (``run(resume=True)``); "failed": except failures
RESUME_ENV = "TRN3EMU_NKILIB_RESUME"
#: "K/N": run only every N-th collected case, starting with the K-th (``run(shard=...)``)
SHARD_ENV = "TRN3EMU_NKILIB_SHARD"

#: the class of a case whose run ended while it ran
STOPPED = ("stopped: the run ended during this case (killed: out of memory, a time limit, or stopped from outside), "
           "or the case is still running")


@dataclass
class Case:
    """What the ledger knows about one case: its last outcome, failure class (or skip reason), seconds, the run
    that gave it, and how many runs it stopped (started without an outcome after)."""
    outcome: str
    cls: str = ""
    seconds: float = 0.0
    run: str = ""
    stops: int = 0


def append(path: str, entry: dict) -> None:
    """Append one entry as a line (written whole with one ``write``, then flushed to the OS); a file whose last line
    was torn (a run died while writing it) gets its line ended first."""
    line = json.dumps(entry, separators=(",", ":")) + "\n"
    with open(path, "a+b") as f:
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                line = "\n" + line
        f.write(line.encode("utf-8"))


def _entries(path: str):
    """The entries of a ledger. A line torn by a run that died while writing it (killed, or a full disk) is skipped;
    where the next run's entry was appended to the torn line, that entry is kept."""
    parsed = torn = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                entry = None
                start = line.find('{"', 1)
                while start > 0 and entry is None:  # the entry a later run appended after the torn text
                    try:
                        entry = json.loads(line[start:])
                    except json.JSONDecodeError:
                        start = line.find('{"', start + 1)
                torn += 1
            if isinstance(entry, dict):
                parsed += 1
                yield entry
    if torn and not parsed:
        raise SettingsError(f"nkilib ledger {path}: no line is a JSON object; a ledger has one per line")


def read(*paths: str) -> dict[str, Case]:
    """The cases of one or more ledgers (read in order; a later outcome of a case replaces an earlier one)."""
    cases: dict[str, Case] = {}
    for path in paths:
        if not os.path.exists(path):
            raise SettingsError(f"nkilib ledger {path}: no such file")
        for e in _entries(path):
            node = e.get("case")
            if node is None:
                continue
            outcome = e.get("outcome")
            if outcome == "started":
                prev = cases.get(node)
                stops = (prev.stops if prev else 0)
                if prev is not None and prev.outcome == "stopped":
                    stops += 1  # the previous start never ended either
                cases[node] = Case("stopped", STOPPED, 0.0, e.get("run", ""), stops)
            elif outcome in ("passed", "failed", "skipped"):
                prev = cases.get(node)
                cases[node] = Case(outcome, e.get("class", ""), float(e.get("seconds", 0.0)), e.get("run", ""),
                                   prev.stops if prev else 0)
    # a case whose last entry is a start stopped that run
    for case in cases.values():
        if case.outcome == "stopped":
            case.stops += 1
    return cases


def skip_on_resume(case: Case | None, rerun_failed: bool = False) -> bool:
    """Whether ``--resume`` leaves the case out: it has an outcome (with ``rerun_failed``: one that is not a failure),
    or it stopped two runs."""
    if case is None:
        return False
    if case.outcome == "stopped":
        return case.stops >= 2
    return not (rerun_failed and case.outcome == "failed")


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> (K, N) with 1 <= K <= N."""
    try:
        k, n = (int(part) for part in str(text).split("/"))
    except ValueError:
        raise SettingsError(f"trn3emu nkilib: --shard {text!r}: expected K/N, e.g. 1/4 (the first of four shards)") \
            from None
    if not 1 <= k <= n:
        raise SettingsError(f"trn3emu nkilib: --shard {text!r}: K must be between 1 and N (got K={k}, N={n})")
    return k, n


def in_shard(index: int, k: int, n: int) -> bool:
    """Whether the collected case at ``index`` (0-based, in collection order) belongs to shard K of N: every N-th
    case from the K-th, so that each shard gets its share of every family and of every sweep's sizes."""
    return index % n == k - 1


def checkout_commit(path: str) -> str | None:
    """The git commit of the checkout at ``path`` (None when it is not a git work tree or git is absent)."""
    try:
        out = subprocess.run(["git", "-C", path, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def run_id() -> str:
    """A run's id: its start time and process id."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{os.getpid()}"
