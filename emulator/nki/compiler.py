"""``nki.compiler``: scheduling and compiler directives. The emulator runs in program order, so they do nothing.

>>> from emulator.nki import compiler
>>> with compiler.no_reorder():
...     pass
"""

from __future__ import annotations

import contextlib

__all__ = ["no_reorder", "skip_middle_end_transformations", "enable_stack_allocator", "force_auto_alloc"]


@contextlib.contextmanager
def no_reorder():
    """Program order is the only order the emulator knows."""
    yield


def _passthrough(fn=None, **_options):
    return fn if fn is not None else (lambda f: f)


skip_middle_end_transformations = enable_stack_allocator = force_auto_alloc = _passthrough
