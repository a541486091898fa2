"""Run a Python script with ``import nki`` resolving to the emulator (``trn3emu run``, registered by
:mod:`emulator.report.run`).

The script runs as ``__main__`` with ``sys.argv = [FILE, args...]`` after :func:`emulator.nki.install` and with
``NKI_SIMULATOR=1`` set (what the official simulator's users set). An emulator error prints its message (which names
the kernel's file and line) instead of a traceback through the emulator, and the exit status is 1; so does an
``assert`` that fails in the script or its kernel. ``--report``
(anywhere after ``run``) prints :func:`emulator.nki.last_report` at the end.
"""

from __future__ import annotations

import os
import runpy
import sys

__all__ = ["run_script"]


def run_script(path: str, args: list[str], report: bool = False) -> int:
    """Run ``path`` under the NKI aliases; 0 on success, 1 on an emulator error, the script's own SystemExit code."""
    from ..errors import EmulatorError
    from . import _compat, last_report
    from ._errors import kernel_location

    if not os.path.isfile(path):
        print(f"trn3emu run: no such file {path!r}", file=sys.stderr)
        return 2
    os.environ.setdefault("NKI_SIMULATOR", "1")
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = [path, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    _compat.install()
    status = 0
    try:
        runpy.run_path(path, run_name="__main__")
    except EmulatorError as exc:
        print(f"trn3emu run: {type(exc).__name__}: {exc}", file=sys.stderr)
        status = 1
    except AssertionError as exc:  # a kernel's own shape/dtype assert: its line, not a traceback
        where = kernel_location(exc.__traceback__) or path
        print(f"trn3emu run: AssertionError at {where}: {exc}", file=sys.stderr)
        status = 1
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
        _compat.uninstall()
    if report:
        rep = last_report()
        print(rep if rep is not None else "trn3emu run --report: the script launched no kernel")
    return status
