"""The emulator's exception hierarchy.

Every error names the operand, the rule and the offending value, so a person can act on it without reading the
emulator's source. All of them derive from :class:`EmulatorError`; the shape/dtype ones also derive from the builtin
``ValueError``/``TypeError`` so callers that catch those keep working.
"""

from __future__ import annotations

__all__ = [
    "EmulatorError",
    "ShapeError",
    "DtypeError",
    "CapacityError",
    "UninitializedReadError",
    "RankFailure",
    "SettingsError",
    "ArgumentError",
    "ArgumentTypeError",
    "IntegerOverflowError",
    "UsageError",
]


class EmulatorError(Exception):
    """Base class of every error the emulator raises on purpose."""


class ShapeError(EmulatorError, ValueError):
    """An operand's shape breaks a hardware or API limit (e.g. more than 128 partitions)."""


class DtypeError(EmulatorError, TypeError):
    """An operand's dtype is not accepted by the operation (or a dtype mix is illegal)."""


class CapacityError(EmulatorError, ValueError):
    """An allocation does not fit in SBUF, PSUM or HBM."""


class UninitializedReadError(EmulatorError, RuntimeError):
    """An instruction read on-chip memory that nothing had written."""


class RankFailure(EmulatorError, RuntimeError):
    """A collective could not finish because a rank died, hung or disagreed."""

    def __init__(self, message: str, rank: int | None = None, step: int | None = None):
        super().__init__(message)
        self.rank = rank
        self.step = step


class ArgumentError(EmulatorError, ValueError):
    """An argument's value breaks the function's rule (unknown name, out of range, not one of the choices)."""


class ArgumentTypeError(EmulatorError, TypeError):
    """An argument has the wrong Python type (e.g. ``saturate="banana"``, ``seed=1.5``, ``fmt=None``)."""


class SettingsError(ArgumentError):
    """An unknown setting name or a value outside a setting's allowed choices."""


class IntegerOverflowError(EmulatorError, OverflowError):
    """An integer result does not fit its dtype and the settings say to refuse it (``collective_int_overflow``)."""


class UsageError(EmulatorError, RuntimeError):
    """A call made where it cannot run (e.g. an ``nki.collectives`` call outside ``run_spmd``)."""
