"""Errors that point at the kernel: the file and line of the first frame outside the emulator."""

from __future__ import annotations

import functools
import os
import traceback

from ..errors import EmulatorError

__all__ = ["kernel_errors", "kernel_location"]

_EMULATOR_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def kernel_location(tb) -> str | None:
    """``file:line (function)`` of the innermost frame of ``tb`` outside the emulator package (the kernel's)."""
    found = None
    for frame in traceback.extract_tb(tb):
        path = os.path.abspath(frame.filename)
        if not path.startswith(_EMULATOR_DIR + os.sep):
            found = f"{frame.filename}:{frame.lineno} (in {frame.name})"
    return found


def kernel_errors(fn):
    """Decorate a launch: an EmulatorError raised inside the kernel gets the kernel's file and line appended,
    and the traceback is cut at the kernel's frame so that the emulator's internals do not bury it."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except EmulatorError as exc:
            where = kernel_location(exc.__traceback__)
            if where and "\n  at " not in str(exc):
                msg = f"{exc}\n  at {where}"
                exc.args = (msg,) + exc.args[1:]
            raise exc.with_traceback(_trim(exc.__traceback__)) from None

    return wrapper


def _trim(tb):
    """Drop the emulator's frames after the kernel's last frame."""
    frames, last_user = [], None
    t = tb
    while t is not None:
        frames.append(t)
        if not os.path.abspath(t.tb_frame.f_code.co_filename).startswith(_EMULATOR_DIR + os.sep):
            last_user = t
        t = t.tb_next
    if last_user is None:
        return tb
    last_user.tb_next = None
    return tb
