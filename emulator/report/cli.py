"""``trn3emu compare | sweep | report``: the report subcommands (``register(subparsers)``, assembled by the CLI).

``compare A.npy B.npy [--fmt F]``  classified bitwise diff; exit 0 when identical, 1 when they differ
``sweep``                          a matmul under several settings, each run's error against float64 in a table
``report``                         HTML + PNG (+ text) error report of RESULT.npy against REFERENCE.npy, or of a
                                   matmul on random data (``--matmul M K N``)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..errors import ArgumentError

__all__ = ["register", "load_array", "load_function"]

_CODE_DTYPES = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def load_array(path: str, fmt: str | None, what: str) -> np.ndarray:
    """A ``.npy`` file as an array the comparators take; ml_dtypes arrays (saved as raw ``V<n>`` records) come back
    as their codes, which needs ``--fmt``."""
    if not Path(path).is_file():
        raise ArgumentError(f"{what}: no such file {path!r}")
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise ArgumentError(f"{what}: {path!r} is not a .npy array file ({exc})") from None
    if arr.dtype.kind == "V":
        if fmt is None:
            raise ArgumentError(f"{what}: {path!r} holds raw {arr.dtype.itemsize}-byte records (how np.save stores "
                                "ml_dtypes arrays); pass --fmt to say which format they encode, e.g. --fmt bfloat16")
        arr = arr.view(_CODE_DTYPES[arr.dtype.itemsize])
    return arr


def _cmd_compare(args: argparse.Namespace) -> int:
    from ..testing import compare

    a = load_array(args.a, args.fmt, "compare A")
    b = load_array(args.b, args.fmt, "compare B")
    if a.shape != b.shape:
        raise ArgumentError(f"compare: A has shape {a.shape} and B has shape {b.shape}; they must match")
    result = compare(a, b, args.fmt)
    print(result.summary(args.rows, names=(Path(args.a).name, Path(args.b).name)))
    return 0 if result.ok else 1


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _operands(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    if args.a or args.b:
        if not (args.a and args.b):
            raise ArgumentError("give both --a A.npy and --b B.npy (or neither, for random inputs of --shape)")
        return load_array(args.a, None, "--a").astype(np.float32), load_array(args.b, None, "--b").astype(np.float32)
    m, k, n = args.shape
    if min(m, k, n) < 1:
        raise ArgumentError(f"--shape: M, K and N must be >= 1, got {m} {k} {n}")
    rng = np.random.default_rng(args.data_seed)
    return (rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32))


def load_function(spec: str):
    """``FILE.py:NAME``: the function NAME defined by the Python file (run as a module, not as ``__main__``)."""
    import runpy

    path, _, name = spec.rpartition(":")
    if not path or not name:
        raise ArgumentError(f"--fn: expected FILE.py:NAME, got {spec!r}")
    if not Path(path).is_file():
        raise ArgumentError(f"--fn: no such file {path!r}")
    fn = runpy.run_path(path, run_name="trn3emu_sweep_fn").get(name)
    if not callable(fn):
        raise ArgumentError(f"--fn: {path!r} defines no function {name!r}")
    return fn


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .sweep import sweep

    a, b = _operands(args)
    fn = load_function(args.fn) if args.fn else None
    table = sweep(a, b, fmts=_csv(args.fmt), accumulations=_csv(args.accumulation), roundings=_csv(args.rounding),
                  seeds=args.seeds, mx_conventions=_csv(args.mx_convention), fn=fn)
    print(table)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .page import write

    if args.files:
        if len(args.files) != 2:
            raise ArgumentError(f"report: give RESULT.npy REFERENCE.npy (2 files), got {len(args.files)}")
        result = load_array(args.files[0], None, "report RESULT").astype(np.float64)
        reference = load_array(args.files[1], None, "report REFERENCE").astype(np.float64)
        title = f"{Path(args.files[0]).name} vs {Path(args.files[1]).name}"
    else:
        from ..engines.matmul import matmul

        args.shape = args.matmul
        a, b = _operands(args)
        result, reference = matmul(a, b, args.fmt), a.astype(np.float64) @ b.astype(np.float64)
        title = f"emu.matmul [{a.shape[0]}, {a.shape[1]}] @ [{b.shape[0]}, {b.shape[1]}] in {args.fmt}"
    files = write(result, reference, args.out, title=title, plots=False if args.no_plots else None)
    print((Path(files["text"])).read_text(), end="")
    print("\nwrote " + ", ".join(str(p) for p in files.values()))
    return 0


def _add_operand_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--a", help="A [M, K] as a .npy file (with --b; default: random normal data of --shape)")
    p.add_argument("--b", help="B [K, N] as a .npy file")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the random inputs (default 0)")


def register(subparsers) -> None:
    """Add ``compare``, ``sweep`` and ``report`` to the ``trn3emu`` parser."""
    p = subparsers.add_parser("compare", help="classified bitwise diff of two .npy arrays (exit 1 if they differ)")
    p.add_argument("a", metavar="A.npy")
    p.add_argument("b", metavar="B.npy")
    p.add_argument("--fmt", help="compare as codes of this format (needed for integer codes and ml_dtypes files)")
    p.add_argument("--rows", type=int, default=10, help="worst differences to list (default 10)")
    p.set_defaults(func=_cmd_compare)

    s = subparsers.add_parser("sweep", help="emu.matmul under several settings: error of each vs float64")
    s.add_argument("--shape", type=int, nargs=3, metavar=("M", "K", "N"), default=(256, 512, 256),
                   help="random inputs of this shape (default 256 512 256)")
    _add_operand_args(s)
    s.add_argument("--fmt", default="bfloat16,float8_e4m3fn,mxfp8_e4m3,mxfp4",
                   help="comma-separated input formats (default bfloat16,float8_e4m3fn,mxfp8_e4m3,mxfp4)")
    s.add_argument("--accumulation", default="sequential", help="comma-separated accumulation models")
    s.add_argument("--rounding", default="rne,sr", help="comma-separated roundings (rne, rtz, sr)")
    s.add_argument("--seeds", type=int, default=3, help="SR seeds 0..N-1 (default 3)")
    s.add_argument("--mx-convention", default="hw,ocp", help="comma-separated MX scale conventions (hw, ocp)")
    s.add_argument("--fn", metavar="FILE.py:NAME",
                   help="run NAME(a, b, fmt) from FILE.py instead of emu.matmul (e.g. a wrapper launching a kernel)")
    s.set_defaults(func=_cmd_sweep)

    r = subparsers.add_parser("report", help="HTML + PNG error report against a float64 reference")
    r.add_argument("files", nargs="*", metavar="FILE.npy", help="RESULT.npy REFERENCE.npy (or use --matmul)")
    r.add_argument("--matmul", type=int, nargs=3, metavar=("M", "K", "N"), default=(512, 1024, 1024),
                   help="without files: report emu.matmul on random data of this shape (default 512 1024 1024)")
    r.add_argument("--fmt", default="bfloat16", help="input format of --matmul (default bfloat16)")
    _add_operand_args(r)
    r.add_argument("--out", default="trn3emu-report", help="output folder (default ./trn3emu-report)")
    r.add_argument("--no-plots", action="store_true", help="text and HTML only, no PNGs")
    r.set_defaults(func=_cmd_report)
