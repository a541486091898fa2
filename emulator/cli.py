"""``trn3emu``: info | demo | selftest | bench | explain | collective | compare | sweep | report.

``demo`` and ``selftest`` run the sections of :mod:`emulator.tour`; ``explain`` and ``collective`` come from the
modules in :data:`SUBCOMMANDS` (``register(subparsers)``). The CLI only assembles them; no emulator module imports
the CLI. Every error in the arguments is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

from .errors import ArgumentError, EmulatorError

#: name -> module defining register(subparsers) for extra subcommands.
SUBCOMMANDS: dict[str, str] = {
    "explain": "emulator.explain",
    "collective": "emulator.collectives.cli",
    "run": "emulator.report.run",
    "compare/sweep/report": "emulator.report.cli",
    "nkilib": "emulator.nki.nkilib.cli",
}

#: Errors a command reports as one line (exit 2): bad arguments the library or the CLI rejected. Anything else is a
#: bug and keeps its traceback.
USER_ERRORS = (EmulatorError, ValueError, TypeError, KeyError)


class CliError(Exception):
    """A command-line mistake, reported as ``trn3emu <command>: <message>`` and exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``trn3emu explain matmul: argument M: invalid int value: 'x' (see --help)``."""

    def error(self, message: str):  # type: ignore[override]
        print(f"{self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def _load(module: str):
    """Import a CLI plug-in module; None if that module itself is not part of this build."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise


def _cmd_info(args: argparse.Namespace) -> int:
    import ml_dtypes
    import numpy as np

    from . import __version__
    from ._jit import HAVE_NUMBA, numba_active
    from .config import describe, get_settings
    from .numerics import block_formats, formats

    numba_version = "not installed"
    if HAVE_NUMBA:
        import numba

        numba_version = numba.__version__
    print(f"trn3-emulator {__version__}  (target: {get_settings().target}, NeuronCore-v4)")
    print(f"python {platform.python_version()}  numpy {np.__version__}  ml_dtypes {ml_dtypes.__version__}  "
          f"numba {numba_version} ({'active' if numba_active() else 'inactive: NumPy fallbacks in use'})")
    print("\nFormats:")
    for fmt in formats.FORMATS.values():
        print("  " + fmt.summary())
    for block in block_formats.BLOCK_FORMATS.values():
        print("  " + block.summary())
    print("\nSettings (value [default]; env var; meaning). Change with emu.settings(...), emu.configure(...) or the "
          "env var.")
    area = None
    for row in describe():
        if row["area"] != area:
            area = row["area"]
            print(f"\n  [{area}]")
        default = "" if row["value"] == row["default"] else f" [default {row['default']!r}]"
        choices = f" (one of: {', '.join(map(str, row['choices']))})" if row["choices"] else ""
        print(f"  {row['name']} = {row['value']!r}{default}   {row['env']}")
        print(f"      {row['doc']}{choices}")
    return 0


def _sections(names: list[str]) -> list:
    from . import tour

    try:
        return [tour.get(n) for n in names] if names else list(tour.SECTIONS)
    except ArgumentError as exc:
        raise CliError(str(exc)) from None


def _cmd_demo(args: argparse.Namespace) -> int:
    from . import tour
    from .config import settings
    from .tour.warmup import CompileWatch

    sections = _sections(args.sections)
    print("trn3-emulator demo: the Trainium3 datapath, emulated bit for bit.")
    if args.timings:
        print("--timings: the Numba kernels run, compiled on first use (cached on disk); each speed line is measured "
              "after a warm-up call.\n")
    else:
        print("The examples are small, so they run on the NumPy twins of the Numba kernels (bit-identical, and tested "
              "so): no compile wait. --timings runs the Numba kernels and times them on big arrays.\n")
    # Compiling the tour's kernels costs 1-2 minutes of CPU on first use; on its small inputs the twins take less
    # time than that, so the default tour leaves Numba alone (your own code compiles what it uses, once).
    overrides = {} if args.timings else {"numba": False}
    failures = 0
    for section in sections:
        print("=" * 100)
        print(section.title)
        print("=" * 100, flush=True)
        if tour.missing(section):
            print(tour.hint(section) + "\n")
            continue
        start = time.perf_counter()
        with settings(**overrides), CompileWatch() as watch:
            try:
                text = importlib.import_module(section.module).demo(timings=args.timings)
            except Exception:
                failures += 1
                traceback.print_exc()
                text = ""
        total = time.perf_counter() - start
        print(text)
        note = f", of which {watch.seconds:.1f} s compiling Numba kernels" if watch.seconds >= 0.05 else ""
        print(f"({total:.2f} s{note})\n", flush=True)
        if args.compile_report:
            print("\n".join(f"  compiled {c}" for c in watch.compiled) or "  compiled nothing", file=sys.stderr)
    return 1 if failures else 0


def _cmd_selftest(args: argparse.Namespace) -> int:
    from . import tour
    from .tour.warmup import CompileWatch

    failed = total = 0
    for section in _sections(args.sections):
        print(f"[{section.title}]")
        if tour.missing(section):
            print("  " + tour.hint(section))
            continue
        try:
            with CompileWatch():  # says so on stderr when Numba compiles on first use
                checks = importlib.import_module(section.module).selftest()
        except Exception as exc:  # a crashing self-check is a failed one
            checks = [(f"{section.module}.selftest", False, f"raised {type(exc).__name__}: {exc}")]
        for name, ok, detail in checks:
            total += 1
            failed += not ok
            print(f"  {'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""))
    print(f"\nselftest: {total - failed} passed, {failed} failed")
    return 1 if failed else 0


def _cmd_bench(args: argparse.Namespace) -> int:
    root = Path(__file__).resolve().parent.parent / "benchmarks"
    if not root.is_dir():
        raise CliError(f"no benchmarks/ folder beside the package (looked in {root}); the benchmarks ship with the "
                       "source checkout")
    scripts = sorted(root.glob("bench_*.py"))
    if args.names:
        wanted = {n if n.startswith("bench_") else f"bench_{n}" for n in args.names}
        unknown = wanted - {s.stem for s in scripts}
        if unknown:
            raise CliError(f"unknown benchmark(s) {', '.join(sorted(unknown))}; available: "
                           f"{', '.join(s.stem[6:] for s in scripts)}")
        scripts = [s for s in scripts if s.stem in wanted]
    status = 0
    for script in scripts:
        print(f"--- {script.name}", flush=True)
        cmd = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
        status |= subprocess.call(cmd, env=os.environ.copy())
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="trn3emu", description="Bit-accurate functional emulator of the AWS Trainium3 (NeuronCore-v4) datapath."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="version, Numba status, formats and every declared setting").set_defaults(
        func=_cmd_info)
    from .tour import SECTIONS

    keys = ", ".join(s.key for s in SECTIONS)
    demo = sub.add_parser("demo", help="run a tour of everything the emulator does, with a readable report")
    demo.add_argument("sections", nargs="*", help=f"sections to run (default: all): {keys}")
    demo.add_argument("--timings", action="store_true",
                      help="run the Numba kernels and add speed lines (big arrays, each timed after a warm-up call; "
                           "`trn3emu bench` has more)")
    demo.add_argument("--compile-report", action="store_true",
                      help="list on stderr every Numba kernel specialisation each section compiles")
    demo.set_defaults(func=_cmd_demo)
    check = sub.add_parser("selftest", help="fast built-in consistency checks (exit 1 on any failure)")
    check.add_argument("sections", nargs="*", help=f"sections to check (default: all): {keys}")
    check.set_defaults(func=_cmd_selftest)
    bench = sub.add_parser("bench", help="run the benchmarks in benchmarks/ (ratios against named baselines)")
    bench.add_argument("names", nargs="*", help="benchmarks to run (default: all), e.g. cast mx matmul")
    bench.add_argument("--quick", action="store_true", help="smaller sizes")
    bench.set_defaults(func=_cmd_bench)
    for module_name in SUBCOMMANDS.values():
        module = _load(module_name)
        if module is not None:
            module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``trn3emu`` with ``argv``; every mistake in the arguments is one line on stderr and exit status 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # e.g. `trn3emu info | head`
        return 0
    except (CliError, *USER_ERRORS) as exc:
        text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"trn3emu {args.command}: {' '.join(str(text).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
