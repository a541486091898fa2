"""``trn3emu nkilib PATH [pytest args...]``: run an nki-library checkout's suite on the emulator."""

from __future__ import annotations

import argparse

from . import report, run

__all__ = ["register"]


def _own_options(args: argparse.Namespace) -> list[str]:
    """The runner's own options may also come after the pytest arguments: take them out of those."""
    extra, it = [], iter(a for a in args.pytest_args if a != "--")
    for a in it:
        if a == "--all-shapes":
            args.all_shapes = True
        elif a == "--fix-source-defects":
            args.fix_source_defects = True
        elif a == "--summary-json":
            args.summary_json = next(it, None)
        elif a.startswith("--summary-json="):
            args.summary_json = a.split("=", 1)[1]
        elif a == "--resume":
            args.resume = True
        elif a == "--rerun-failed":
            args.rerun_failed = True
        elif a in ("--dump-misses", "--results", "--shard"):
            setattr(args, a[2:].replace("-", "_"), next(it, None))
        elif a.split("=", 1)[0] in ("--dump-misses", "--results", "--shard"):
            name, value = a.split("=", 1)
            setattr(args, name[2:].replace("-", "_"), value)
        else:
            extra.append(a)
    return extra


def _cmd(args: argparse.Namespace) -> int:
    if args.report:  # PATH and anything after it are more ledgers
        print(report(*args.report, *([args.path] if args.path else []), *args.pytest_args,
                     summary_json=args.summary_json))
        return 0
    extra = _own_options(args)
    if not args.path:
        raise SystemExit("trn3emu nkilib: name the nki-library checkout (or --report LEDGER to read a ledger)")
    return run(args.path, extra, all_shapes=args.all_shapes, summary_json=args.summary_json,
               dump_misses=args.dump_misses, fix_source_defects=args.fix_source_defects, results=args.results,
               resume=args.resume, shard=args.shard, rerun_failed=args.rerun_failed)


def register(subparsers) -> None:
    """Add the ``nkilib`` subcommand."""
    p = subparsers.add_parser(
        "nkilib", help="run AWS nki-library's test suite (a checkout at PATH) in simulation mode on the emulator",
        description="Runs `pytest` in the nki-library checkout at PATH with --test-mode simulation --platform-target "
                    "trn3 and the emulator standing in for the Neuron packages; prints a per-family summary. Extra "
                    "arguments go to pytest (test paths relative to PATH, -k, -x, ...; default test/integration).")
    p.add_argument("path", nargs="?", help="the nki-library checkout")
    p.add_argument("--all-shapes", action="store_true",
                   help="also run the large-shape cases the harness skips in simulation (NKILIB_SIMULATION_RUN_ALL=1)")
    p.add_argument("--fix-source-defects", action="store_true",
                   help="fix nki-library's known source defects (mlp.py's IndentationError, ...) in memory as their "
                        "files are imported, so that their kernels run; each fix applied is named in the summary")
    p.add_argument("--summary-json", help="also write the summary as JSON to this file")
    p.add_argument("--dump-misses", metavar="DIR",
                   help="write the output and the golden of every failed comparison to DIR (one .npz per comparison)")
    p.add_argument("--results", metavar="LEDGER",
                   help="append every case's start and outcome to this file (JSON lines) as the run goes: a run "
                        "stopped from outside keeps what it reached; --report reads it")
    p.add_argument("--resume", action="store_true",
                   help="with --results: leave out the cases the ledger already has an outcome for")
    p.add_argument("--rerun-failed", action="store_true",
                   help="with --resume: also run again the cases whose last outcome in the ledger is a failure")
    p.add_argument("--shard", metavar="K/N",
                   help="run every N-th collected case from the K-th only (split the suite over machines)")
    p.add_argument("--report", nargs="+", metavar="LEDGER",
                   help="print the per-family summary of one or more ledgers (each case's last outcome) and exit; "
                        "no checkout needed")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="arguments for pytest")
    p.set_defaults(func=_cmd)
