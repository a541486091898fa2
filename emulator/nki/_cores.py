"""The NeuronCores a launch runs on, and the few places where the front end meets the core's API.

Every program of a launch gets its own core (private SBUF, PSUM and private HBM). ``shared_hbm`` tensors are shared
by the front end itself: the k-th ``shared_hbm`` allocation of every program is the same tensor (the kernel body is
one program traced once on hardware, so both cores of an LNC=2 pair address the same buffer).
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["new_cores", "write_back", "check_leaving", "SharedHBM"]


def new_cores(n: int) -> list:
    """``n`` fresh cores; more than one form an LNC group sharing one HBM."""
    from ..config import get_settings
    from ..engines.core import NeuronCore, lnc_group

    if n == 1:
        return [NeuronCore()]
    return lnc_group(n, timeout=get_settings().collective_timeout)


class SharedHBM:
    """The launch's shared HBM allocations, in allocation order, shared by every program."""

    def __init__(self):
        self.lock = threading.Lock()
        self.tensors: list = []
        self.counters: dict = {}

    def get_or_allocate(self, rank: int, shape, dtype, make):
        with self.lock:
            k = self.counters.get(rank, 0)
            self.counters[rank] = k + 1
            if k < len(self.tensors):
                t = self.tensors[k]
                if t.shape != tuple(shape) or t.dtype != dtype:
                    from ..errors import ShapeError

                    raise ShapeError(f"nl.ndarray(buffer=nl.shared_hbm): allocation #{k} is {list(shape)} "
                                     f"{dtype} on program {rank} but {list(t.shape)} {t.dtype} on another program; "
                                     "every program must allocate the same shared HBM tensors in the same order")
                return t
            t = make()
            self.tensors.append(t)
            return t


def check_leaving(result, inputs: list) -> None:
    """Outputs leave the device: elements a move (a DMA, a copy) carried in unwritten are a read by the host, under
    the ``uninitialized`` setting. Elements of a returned output the kernel never wrote at all come back as the
    setting ``output_unwritten`` says (NaN-filled, or zero bits)."""
    from ..config import get_settings

    tensors = list(inputs)
    outputs = []
    stack = [result]
    while stack:
        r = stack.pop()
        if isinstance(r, (list, tuple)):
            stack.extend(r)
        elif isinstance(r, dict):
            stack.extend(r.values())
        elif hasattr(r, "t") and getattr(r, "kind", None) == "hbm":
            outputs.append(r)
    for t in tensors + outputs:
        base = t.t.base
        if base.carried is not None and not base._all:
            t.t.check_initialized(f"kernel output (unwritten elements carried in by {base.carried}; setting "
                                  "uninitialized_copies)")
    if get_settings().output_unwritten == "zero":
        for t in outputs:
            base = t.t.base
            if not base._all:
                never = ~base.written
                if never.any():
                    base.data.view(np.uint8).reshape(base.data.shape + (-1,))[never] = 0


def write_back(host: np.ndarray, tensor) -> None:
    """Copy an input's HBM contents back to the caller's array when the kernel changed them (as NKI does)."""
    data = tensor.arr
    if host.flags.writeable and data.tobytes() != host.tobytes():
        host[...] = data.view(host.dtype) if data.dtype.itemsize == host.dtype.itemsize else data
