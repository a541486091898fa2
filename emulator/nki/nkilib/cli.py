"""``trn3emu nkilib PATH [pytest args...]``: run an nki-library checkout's suite on the emulator."""

from __future__ import annotations

import argparse

from . import run

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
        elif a == "--dump-misses":
            args.dump_misses = next(it, None)
        elif a.startswith("--dump-misses="):
            args.dump_misses = a.split("=", 1)[1]
        else:
            extra.append(a)
    return extra


def _cmd(args: argparse.Namespace) -> int:
    extra = _own_options(args)
    return run(args.path, extra, all_shapes=args.all_shapes, summary_json=args.summary_json,
               dump_misses=args.dump_misses, fix_source_defects=args.fix_source_defects)


def register(subparsers) -> None:
    """Add the ``nkilib`` subcommand."""
    p = subparsers.add_parser(
        "nkilib", help="run AWS nki-library's test suite (a checkout at PATH) in simulation mode on the emulator",
        description="Runs `pytest` in the nki-library checkout at PATH with --test-mode simulation --platform-target "
                    "trn3 and the emulator standing in for the Neuron packages; prints a per-family summary. Extra "
                    "arguments go to pytest (test paths relative to PATH, -k, -x, ...; default test/integration).")
    p.add_argument("path", help="the nki-library checkout")
    p.add_argument("--all-shapes", action="store_true",
                   help="also run the large-shape cases the harness skips in simulation (NKILIB_SIMULATION_RUN_ALL=1)")
    p.add_argument("--fix-source-defects", action="store_true",
                   help="fix nki-library's known source defects (mlp.py's IndentationError, ...) in memory as their "
                        "files are imported, so that their kernels run; each fix applied is named in the summary")
    p.add_argument("--summary-json", help="also write the summary as JSON to this file")
    p.add_argument("--dump-misses", metavar="DIR",
                   help="write the output and the golden of every failed comparison to DIR (one .npz per comparison)")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="arguments for pytest")
    p.set_defaults(func=_cmd)
