"""``trn3emu``: info | demo | selftest | bench | explain | collective.

Each area of the emulator contributes its own demo and self-check through a module listed in :data:`AREAS`
(``demo() -> str`` and ``selftest() -> list[(name, ok, detail)]``), and its own subcommands through
:data:`SUBCOMMANDS` (``register(subparsers)``). The CLI only assembles them; no emulator module imports the CLI.
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

#: (title, module) of each area; the module defines demo() and selftest().
AREAS: list[tuple[str, str]] = [
    ("Formats and bit-exact casts", "emulator.numerics.demo_casts"),
    ("Stochastic rounding and random numbers", "emulator.numerics.demo_sr"),
    ("MX micro-scaling", "emulator.numerics.demo_mx"),
    ("Structured sparsity", "emulator.numerics.demo_sparsity"),
    ("Tensor engine and tiled matmul", "emulator.engines.demo"),
    ("Collectives", "emulator.collectives.demo"),
    ("Testing toolkit", "emulator.testing.demo"),
    ("Bundled kernels", "kernels.demo"),
]

#: name -> module defining register(subparsers) for extra subcommands.
SUBCOMMANDS: dict[str, str] = {
    "explain": "emulator.explain",
    "collective": "emulator.collectives.cli",
}


def _load(module: str):
    """Import an area module; None if that module itself is not part of this build."""
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


def _cmd_demo(args: argparse.Namespace) -> int:
    print("trn3-emulator demo: the Trainium3 datapath, emulated bit for bit.\n")
    failures = 0
    for title, module_name in AREAS:
        module = _load(module_name)
        if module is None:
            continue
        print("=" * 100)
        print(title)
        print("=" * 100)
        start = time.perf_counter()
        try:
            print(module.demo())
        except Exception:
            failures += 1
            traceback.print_exc()
        print(f"({time.perf_counter() - start:.2f} s)\n")
    return 1 if failures else 0


def _cmd_selftest(args: argparse.Namespace) -> int:
    failed = 0
    total = 0
    for title, module_name in AREAS:
        module = _load(module_name)
        if module is None or not hasattr(module, "selftest"):
            continue
        print(f"[{title}]")
        try:
            checks = module.selftest()
        except Exception as exc:  # a crashing self-check is a failed one
            checks = [(f"{module_name}.selftest", False, f"raised {type(exc).__name__}: {exc}")]
        for name, ok, detail in checks:
            total += 1
            failed += not ok
            print(f"  {'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""))
    print(f"\nselftest: {total - failed} passed, {failed} failed")
    return 1 if failed else 0


def _cmd_bench(args: argparse.Namespace) -> int:
    root = Path(__file__).resolve().parent.parent / "benchmarks"
    if not root.is_dir():
        print(f"trn3emu bench: no benchmarks/ folder beside the package (looked in {root}); the benchmarks ship "
              "with the source checkout", file=sys.stderr)
        return 2
    scripts = sorted(root.glob("bench_*.py"))
    if args.names:
        wanted = {n if n.startswith("bench_") else f"bench_{n}" for n in args.names}
        unknown = wanted - {s.stem for s in scripts}
        if unknown:
            print(f"trn3emu bench: unknown benchmark(s) {', '.join(sorted(unknown))}; available: "
                  f"{', '.join(s.stem[6:] for s in scripts)}", file=sys.stderr)
            return 2
        scripts = [s for s in scripts if s.stem in wanted]
    status = 0
    for script in scripts:
        print(f"--- {script.name}", flush=True)
        cmd = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
        status |= subprocess.call(cmd, env=os.environ.copy())
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trn3emu", description="Bit-accurate functional emulator of the AWS Trainium3 (NeuronCore-v4) datapath."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="version, Numba status, formats and every declared setting").set_defaults(
        func=_cmd_info)
    sub.add_parser("demo", help="run a tour of everything the emulator does, with a readable report").set_defaults(
        func=_cmd_demo)
    sub.add_parser("selftest", help="fast built-in consistency checks (exit 1 on any failure)").set_defaults(
        func=_cmd_selftest)
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
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # e.g. `trn3emu info | head`
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
