"""``trn3emu run FILE.py [args...] [--report[=DIR]]``: run a script under the NKI aliases, optionally with a report.

``--report`` (anywhere after ``run``) prints :func:`emulator.nki.last_report` of the last kernel launch;
``--report=DIR`` (or ``--report DIR`` before FILE) also writes the HTML page (and PNG plots with matplotlib) of that
launch into DIR: per-engine instruction counts, estimated time, peak SBUF/PSUM use and the settings in force. The
command lives here, in the top layer, because the page is written by :mod:`emulator.report`; the running itself is
:func:`emulator.nki.run.run_script`.
"""

from __future__ import annotations

import argparse

__all__ = ["register"]


def _split_report(rest: list[str]) -> tuple[list[str], str | None]:
    """The script's own arguments and the report request found among them: None, "" (print) or a directory."""
    keep, want = [], None
    for arg in rest:
        if arg == "--report":
            want = want or ""
        elif arg.startswith("--report="):
            want = arg.split("=", 1)[1]
        else:
            keep.append(arg)
    return keep, want


def _cmd_run(args: argparse.Namespace) -> int:
    from ..nki import last_report
    from ..nki.run import run_script

    rest, want = _split_report(list(args.script_args))
    if args.report is not None:
        want = args.report
    status = run_script(args.file, rest, report=want is not None)
    if want:  # a directory: the page too
        rep = last_report()
        if rep is None:
            return status
        from .page import write

        files = write(None, None, want, title=f"trn3emu run {args.file}", kernel_report=rep)
        print("wrote " + ", ".join(str(p) for p in files.values()))
    return status


def register(subparsers) -> None:
    """Add the ``run`` subcommand to the ``trn3emu`` parser."""
    p = subparsers.add_parser("run", help="run a Python script with `import nki` resolving to the emulator")
    p.add_argument("--report", nargs="?", const="", default=None, metavar="DIR",
                   help="print the last kernel launch's report at the end; with DIR also write its HTML page there")
    p.add_argument("file", help="the script (e.g. a kernel file with a __main__ block)")
    p.add_argument("script_args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    p.set_defaults(func=_cmd_run)
