"""Shared by the areas' ``selftest()`` functions (``trn3emu selftest``)."""

from __future__ import annotations

from typing import Callable


def check(name: str, fn: Callable[[], tuple[bool, str]]) -> tuple[str, bool, str]:
    """Run one self-check ``fn() -> (ok, detail)``; a check that raises counts as failed, with the error as detail."""
    try:
        ok, detail = fn()
    except Exception as exc:  # a crashing check is a failed one
        return name, False, f"raised {type(exc).__name__}: {exc}"
    return name, bool(ok), detail
