"""The nki-library runner's results ledger (emulator.nki.nkilib.ledger), --shard and --resume, and --report: unit
tests of the ledger's rules, then runs of the mini harness (tests/nkilib_runner/nkilib_fixture) in parts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from emulator.errors import SettingsError
from emulator.nki import nkilib
from emulator.nki.nkilib import ledger

FIXTURE = Path(__file__).parent / "nkilib_fixture"


def _write(path: Path, *entries) -> str:
    with open(path, "a") as f:
        for e in entries:
            f.write((e if isinstance(e, str) else json.dumps(e)) + "\n")
    return str(path)


def _start(node, run="r"):
    return {"case": node, "run": run, "outcome": "started"}


def _end(node, outcome, run="r", cls="", seconds=1.0):
    return {"case": node, "run": run, "outcome": outcome, "class": cls, "seconds": seconds}


def test_last_outcome_wins_and_unfinished_cases_are_stopped(tmp_path):
    p = _write(tmp_path / "a.jsonl", {"run": "r1"},
               _start("a", "r1"), _end("a", "failed", "r1", "tolerance miss: x"),
               _start("b", "r1"), _end("b", "passed", "r1"),
               _start("c", "r1"),                                   # the run ended during c
               _start("d", "r1"), _start("d", "r2"),                # d stopped two runs
               _start("a", "r2"), _end("a", "passed", "r2", seconds=2.5),   # a re-run passes
               _start("b", "r2"))                                   # b's re-run stopped
    cases = ledger.read(p)
    assert {k: (v.outcome, v.stops) for k, v in cases.items()} == {
        "a": ("passed", 0), "b": ("stopped", 1), "c": ("stopped", 1), "d": ("stopped", 2)}
    assert cases["a"].seconds == 2.5 and cases["a"].run == "r2" and cases["c"].cls == ledger.STOPPED
    # --resume runs what has no outcome and what stopped one run; a case that stopped two runs is left out
    assert [k for k, v in cases.items() if not ledger.skip_on_resume(v)] == ["b", "c"]
    assert ledger.skip_on_resume(cases["d"]) and not ledger.skip_on_resume(None)


def test_later_ledgers_override_earlier_ones(tmp_path):
    first = _write(tmp_path / "1.jsonl", _start("a"), _end("a", "failed", cls="other: x"), _start("b"),
                   _end("b", "skipped", cls="large shape"))
    second = _write(tmp_path / "2.jsonl", _start("a"), _end("a", "passed"))
    assert {k: v.outcome for k, v in ledger.read(first, second).items()} == {"a": "passed", "b": "skipped"}
    assert {k: v.outcome for k, v in ledger.read(second, first).items()} == {"a": "failed", "b": "skipped"}


def test_torn_lines_are_skipped_and_the_next_run_starts_a_new_line(tmp_path):
    # a run that dies while writing (killed, a full disk) leaves a torn line; the next run's first entry would be
    # appended to it: the reader keeps that entry, and append() starts a new line first
    torn_end = _write(tmp_path / "end.jsonl", _start("a"), _end("a", "passed"), '{"case": "b", "ru')
    assert {k: v.outcome for k, v in ledger.read(torn_end).items()} == {"a": "passed"}
    glued = tmp_path / "glued.jsonl"
    glued.write_text(json.dumps(_start("a")) + "\n" + '{"case": "b", "ru' + json.dumps(_end("a", "failed")) + "\n")
    assert {k: v.outcome for k, v in ledger.read(str(glued)).items()} == {"a": "failed"}
    ledger.append(torn_end, _start("c"))
    assert torn_end and open(torn_end).read().endswith('"ru\n' + json.dumps(_start("c"), separators=(",", ":")) + "\n")
    assert {k: v.outcome for k, v in ledger.read(torn_end).items()} == {"a": "passed", "c": "stopped"}
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("not json\nnor this\n")
    with pytest.raises(SettingsError, match="no line is a JSON object"):
        ledger.read(str(garbage))
    with pytest.raises(SettingsError, match="no such file"):
        ledger.read(str(tmp_path / "absent.jsonl"))


@pytest.mark.parametrize("n", range(1, 9))
def test_shards_partition_the_collection(n):
    members = [[i for i in range(50) if ledger.in_shard(i, k, n)] for k in range(1, n + 1)]
    assert sorted(sum(members, [])) == list(range(50))               # every case in exactly one shard
    assert max(map(len, members)) - min(map(len, members)) <= 1      # balanced


@pytest.mark.parametrize("text,match", [("3", "expected K/N"), ("a/2", "expected K/N"), ("0/2", "between 1 and N"),
                                        ("3/2", "between 1 and N")])
def test_bad_shard_names_the_rule(text, match):
    with pytest.raises(SettingsError, match=match):
        ledger.parse_shard(text)


def test_resume_needs_a_ledger():
    with pytest.raises(SettingsError, match="resume needs the ledger"):
        nkilib.run(str(FIXTURE), resume=True)


def test_cli_takes_the_ledger_options_anywhere():
    from emulator.cli import build_parser
    from emulator.nki.nkilib.cli import _own_options

    args = build_parser().parse_args(["nkilib", "/x", "-k", "rope", "--results", "l.jsonl", "--resume",
                                      "--shard=2/3"])
    assert _own_options(args) == ["-k", "rope"] and (args.results, args.resume, args.shard) == ("l.jsonl", True, "2/3")
    env = nkilib.child_env("/x", results="l.jsonl", resume=True, shard="2/3")
    assert env[ledger.LEDGER_ENV].endswith("l.jsonl") and env[ledger.RESUME_ENV] == "1"
    assert env[ledger.SHARD_ENV] == "2/3"


def test_two_shards_and_a_resume_add_up_to_the_whole_run(tmp_path, capsys):
    book = tmp_path / "runs" / "ledger.jsonl"  # its directory does not exist yet: the runner makes it
    # a case of the first shard was started by an earlier run that never finished it (killed): resume re-runs it
    first = "integration/nkilib/core/scale/test_scale.py::test_scale_rows[128-64-0.5]"
    twice = "integration/nkilib/core/scale/test_scale.py::test_scale_rows_rejects_too_many_partitions"
    book.parent.mkdir()
    _write(book, _start(first, "old"), _start(twice, "old1"), _start(twice, "old2"))
    args = ["-q", "-p", "no:doctest"]
    assert nkilib.run(str(FIXTURE), args, results=str(book), shard="1/2", resume=True, timeout=600) == 0
    one = ledger.read(str(book))
    assert one[first].outcome == "passed" and one[first].stops == 1
    # a case that stopped two runs (as one that takes the process down would): resume leaves it out
    assert one[twice].outcome == "stopped" and one[twice].stops == 2
    ran = {k for k, v in one.items() if v.outcome != "stopped"}
    assert len(ran) == 6  # shard 1/2 of the fixture's 13 cases less the one left out
    assert nkilib.run(str(FIXTURE), args, results=str(book), shard="2/2", timeout=600) == 1  # scale_custom fails
    both = ledger.read(str(book))
    assert len(both) == 13 and ran < set(both)
    assert nkilib.run(str(FIXTURE), args, results=str(book), resume=True, timeout=600) == 5  # nothing left: no tests
    capsys.readouterr()
    out = tmp_path / "report.json"
    text = nkilib.report(str(book), summary_json=str(out))
    rows = {r["family"]: r for r in json.loads(out.read_text())["families"]}
    # the counts of one whole run (test_nkilib_runner's end-to-end test: 9 cases, 8 passed, the off-by-one golden
    # failed) but for the case that stopped two runs, counted as a failure of its own class
    scale = rows["core/scale/scale"]
    assert (scale["collected"], scale["passed"], scale["failed"], scale["skipped"]) == (9, 7, 2, 0)
    assert scale["classes"] == {"stopped": 1, "tolerance miss": 1}
    assert (rows["core/scale/scale_custom"]["failed"], rows["experimental/collectives/gather"]["passed"]) == (1, 3)
    assert "13 cases from" in text and "stopped: the run ended during this case" in text
    # the run header says what ran: the emulator, the checkout, the shard, the settings that differ from default
    headers = [json.loads(line) for line in book.read_text().splitlines() if '"started":' in line]
    assert [h["shard"] for h in headers] == ["1/2", "2/2", None]
    assert all(h["emulator"].startswith("0.") and h["settings"].get("saturate") == "True" for h in headers)


def test_rerun_failed_runs_failures_again(tmp_path):
    cases = ledger.read(_write(tmp_path / "l.jsonl", _start("a"), _end("a", "failed", cls="other: OSError"),
                               _start("b"), _end("b", "passed"), _start("c"), _end("c", "skipped")))
    assert [k for k, v in cases.items() if not ledger.skip_on_resume(v)] == []
    assert [k for k, v in cases.items() if not ledger.skip_on_resume(v, rerun_failed=True)] == ["a"]
    with pytest.raises(SettingsError, match="goes with resume"):
        nkilib.run(str(FIXTURE), results=str(tmp_path / "l.jsonl"), rerun_failed=True)


class _KeptScratch:
    """tempfile.TemporaryDirectory that leaves its directory behind, to look at it after the run."""

    def __init__(self, path):
        self.path = str(path)
        os.makedirs(self.path)

    def __enter__(self):
        return self.path

    def __exit__(self, *exc):
        return False


def test_each_case_dumps_are_deleted_from_the_runs_own_scratch(tmp_path, monkeypatch):
    # the harness writes a directory per case (its inputs and outputs) into --output-directory: GBs over a family.
    # In the runner's own scratch they go after each case; a directory the caller names keeps them.
    scratch = tmp_path / "scratch"
    monkeypatch.setattr(nkilib.tempfile, "TemporaryDirectory", lambda prefix=None: _KeptScratch(scratch))
    args = ["-q", "-p", "no:doctest", "-k", "gather"]
    assert nkilib.run(str(FIXTURE), args, timeout=600) == 0
    left = sorted(os.listdir(scratch / "output"))
    assert left == ["session.txt"], left  # the per-case directories went, the harness's own file stayed
    mine = tmp_path / "mine"
    mine.mkdir()
    monkeypatch.setattr(nkilib.tempfile, "TemporaryDirectory", lambda prefix=None: _KeptScratch(tmp_path / "s2"))
    assert nkilib.run(str(FIXTURE), args + ["--output-directory", str(mine)], timeout=600) == 0
    assert sum(name.startswith("out-mini_case_") for name in os.listdir(mine)) == 3  # one per KernelArgs case


@pytest.mark.parametrize("args,selects", [
    (["-q"], False),
    (["-q", "test/integration/nkilib/core"], True),
    (["test/integration/nkilib/core/scale/test_scale.py::test_scale_rows"], True),
    (["-k", "test"], False),                    # the value of -k, though FIXTURE/test exists
    (["--output-directory", "test"], False),    # an option's value is no test selection
    (["--output-directory", "/tmp"], False),    # a path outside the checkout neither
    (["-p", "no:doctest", "test"], True),
])
def test_default_selection_only_without_a_test_path(args, selects):
    cmd = nkilib.pytest_command(str(FIXTURE), args, "/scratch")
    assert (cmd[-1] == "test/integration" and cmd.count("test/integration") == 1) is not selects, cmd
