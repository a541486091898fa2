"""Argument validators shared by every public entry point and by the settings.

One place decides what a boolean, an integer, a seed or a choice among names is, so ``saturate="banana"`` is refused
the same way by ``emu.cast``, ``emu.settings``, ``nc_matmul`` and the collectives, and the environment variables
are parsed by the same rules. Every check returns the normalised value (a Python ``bool``/``int``/``float``/``str``)
or raises an :class:`~emulator.errors.EmulatorError` whose message names the function, the argument and the value:

* wrong Python type (a string for a flag, a float for a seed): :class:`~emulator.errors.ArgumentTypeError`
  (a ``TypeError``);
* right type, value outside the rule: :class:`~emulator.errors.ArgumentError` (a ``ValueError``).

The ``parse_*`` functions read the same values from text (environment variables, ``--set name=value``).

Example
-------
>>> from emulator.args import check_bool, check_choice
>>> check_bool("saturate", True, "cast")
True
>>> check_choice("rounding", "rtz", ("rne", "rtz", "sr"), "cast")
'rtz'
>>> check_bool("saturate", "banana", "cast")
Traceback (most recent call last):
...
emulator.errors.ArgumentTypeError: cast: saturate must be True or False, got 'banana'
"""

from __future__ import annotations

import numbers
from typing import Any, Iterable

import numpy as np

from .errors import ArgumentError, ArgumentTypeError, DtypeError, ShapeError

__all__ = [
    "check_bool", "check_int", "check_seed", "check_number", "check_choice", "check_str", "check_out",
    "parse_bool", "parse_int", "parse_number", "TRUE_WORDS", "FALSE_WORDS",
]

#: the words :func:`parse_bool` accepts (case-insensitive)
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_bool(name: str, value: Any, where: str) -> bool:
    """``value`` as a ``bool``: ``True``/``False``, a NumPy bool, or the integers 0 and 1; anything else raises.

    A string is refused even when it reads like a flag (``"false"`` is truthy in Python, so accepting it would
    invert the meaning); text goes through :func:`parse_bool`.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if _is_int(value) and int(value) in (0, 1):
        return bool(value)
    raise ArgumentTypeError(f"{where}: {name} must be True or False, got {value!r}")


def check_int(name: str, value: Any, where: str, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as an ``int`` (Python or NumPy integer, not bool, not float, not str) within ``lo..hi``."""
    if not _is_int(value):
        raise ArgumentTypeError(f"{where}: {name} must be an integer, got {value!r}")
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        rule = f"{lo}..{hi}" if lo is not None and hi is not None else (f">= {lo}" if lo is not None else f"<= {hi}")
        raise ArgumentError(f"{where}: {name} must be {rule}, got {v}")
    return v


def check_seed(name: str, value: Any, where: str) -> int:
    """A random-stream seed: an integer in ``-2^63 .. 2^64 - 1`` (``1.5`` or ``"7"`` are refused, not truncated)."""
    return check_int(name, value, where, -(1 << 63), (1 << 64) - 1)


def check_number(name: str, value: Any, where: str, lo: float | None = None) -> float:
    """``value`` as a finite-or-inf ``float`` (not bool, not str, not NaN), at least ``lo`` if given."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise ArgumentTypeError(f"{where}: {name} must be a number, got {value!r}")
    v = float(value)
    if v != v or (lo is not None and v < lo):
        raise ArgumentError(f"{where}: {name} must be a number >= {lo}, got {value!r}" if lo is not None
                            else f"{where}: {name} must be a number, got {value!r}")
    return v


def check_str(name: str, value: Any, where: str) -> str:
    """``value`` if it is a ``str``; anything else raises :class:`ArgumentTypeError`."""
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{where}: {name} must be a string, got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[str], where: str) -> str:
    """``value`` if it is one of ``choices`` (exact, case-sensitive strings)."""
    choices = tuple(choices)
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{where}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    if value not in choices:
        raise ArgumentError(f"{where}: {name}: {value!r} is not one of {', '.join(map(repr, choices))}")
    return value


def parse_bool(name: str, text: str, where: str) -> bool:
    """A flag from text: 1/true/yes/on or 0/false/no/off (any case); anything else raises :class:`ArgumentError`."""
    low = text.strip().lower()
    if low in TRUE_WORDS:
        return True
    if low in FALSE_WORDS:
        return False
    raise ArgumentError(f"{where}: {name}={text!r} is not a boolean (use one of "
                        f"{'/'.join(TRUE_WORDS)} or {'/'.join(FALSE_WORDS)})")


def parse_int(name: str, text: str, where: str) -> int:
    """An integer from text (decimal, or 0x-prefixed hex); ``"1.5"`` raises :class:`ArgumentError`."""
    t = text.strip()
    try:
        return int(t, 16) if t.lower().startswith(("0x", "-0x")) else int(t)
    except ValueError:
        raise ArgumentError(f"{where}: {name}={text!r} is not an integer") from None


def parse_number(name: str, text: str, where: str) -> float:
    """A float from text; anything ``float()`` cannot read, or NaN, raises :class:`ArgumentError`."""
    try:
        v = float(text.strip())
    except ValueError:
        v = float("nan")
    if v != v:
        raise ArgumentError(f"{where}: {name}={text!r} is not a number")
    return v


def check_out(out: Any, shape: tuple, dtype: np.dtype, source: np.ndarray, where: str) -> np.ndarray:
    """An ``out=`` array a result can be written into: a C-contiguous, writeable NumPy array of exactly ``shape`` and
    ``dtype`` that does not overlap ``source`` (the kernels read and write in chunks, in parallel). Returns it.

    >>> import numpy as np
    >>> out = np.empty(3, np.uint8)
    >>> check_out(out, (3,), np.dtype(np.uint8), np.zeros(3, np.float32), "cast") is out
    True
    >>> check_out(np.empty(4, np.uint8), (3,), np.dtype(np.uint8), np.zeros(3, np.float32), "cast")
    Traceback (most recent call last):
    ...
    emulator.errors.ShapeError: cast: out has shape (4,); the result has shape (3,)
    """
    if not isinstance(out, np.ndarray):
        raise ArgumentTypeError(f"{where}: out must be a NumPy array, got {type(out).__name__}")
    if out.dtype != dtype:
        raise DtypeError(f"{where}: out must be {dtype}, got {out.dtype}")
    if out.shape != tuple(shape):
        raise ShapeError(f"{where}: out has shape {out.shape}; the result has shape {tuple(shape)}")
    if not (out.flags.c_contiguous and out.flags.writeable):
        raise ArgumentError(f"{where}: out must be C-contiguous and writeable")
    if np.may_share_memory(out, source):
        raise ArgumentError(f"{where}: out overlaps the input; give a separate array")
    return out
