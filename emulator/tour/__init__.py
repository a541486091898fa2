"""The ``trn3emu demo`` tour and the ``trn3emu selftest`` checks, one module per section.

This package is the top layer, beside the CLI: it imports the library (numerics, engines, collectives, testing) and
the bundled ``kernels``, and no library module imports it. Each section module defines ``demo() -> str`` and
``selftest() -> list[(name, ok, detail)]``; a section whose optional dependencies are missing is skipped with a
one-line hint instead of failing (``pip install trn3-emulator && trn3emu demo`` has no hypothesis).

>>> [s.key for s in SECTIONS][:3]
['casts', 'sr', 'mx']
>>> missing(SECTIONS[0])
[]
"""

from __future__ import annotations

import importlib
from typing import NamedTuple

__all__ = ["Section", "SECTIONS", "get", "missing", "hint"]


class Section(NamedTuple):
    """One section of the tour: ``key`` (``trn3emu demo KEY``), ``title``, the module defining demo/selftest, and
    the optional packages it needs (beyond numpy, ml_dtypes and numba)."""

    key: str
    title: str
    module: str
    requires: tuple[str, ...] = ()
    extra: str = ""


SECTIONS: list[Section] = [
    Section("casts", "Formats and bit-exact casts", "emulator.tour.casts"),
    Section("sr", "Stochastic rounding and random numbers", "emulator.tour.sr"),
    Section("mx", "MX micro-scaling", "emulator.tour.mx"),
    Section("sparsity", "Structured sparsity", "emulator.tour.sparsity"),
    Section("matmul", "Tensor engine and tiled matmul", "emulator.tour.tensor_engine"),
    Section("collectives", "Collectives", "emulator.tour.collectives"),
    Section("testing", "Testing toolkit", "emulator.tour.testing_toolkit", ("hypothesis",), "test"),
    Section("kernels", "Bundled kernels", "emulator.tour.bundled_kernels"),
]


def get(key: str) -> Section:
    """The section named ``key``; ``KeyError`` lists the valid keys."""
    for s in SECTIONS:
        if s.key == key:
            return s
    raise KeyError(f"no tour section {key!r}; sections: {', '.join(s.key for s in SECTIONS)}")


def missing(section: Section) -> list[str]:
    """The optional packages ``section`` needs that cannot be imported here."""
    gone = []
    for name in section.requires:
        try:
            importlib.import_module(name)
        except ImportError:
            gone.append(name)
    return gone


def hint(section: Section) -> str:
    """The one line printed instead of a section whose dependencies are missing."""
    need = ", ".join(missing(section))
    return (f"(skipped: this section needs {need}, which the '{section.extra}' extra installs: "
            f"pip install 'trn3-emulator[{section.extra}]')")
