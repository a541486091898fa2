"""``nl.ndarray``: allocation on the current program's NeuronCore, below both ``language`` and the ``nl.*``
functions of ``_nlops`` (which allocate their results with it)."""

from __future__ import annotations

from . import _dtypes
from ._launch import current_program
from .tensor import MemoryRegion, NkiTensor, buffer_kind

__all__ = ["ndarray"]


def ndarray(shape, dtype, buffer=MemoryRegion.sbuf, name: str = "", address=None) -> NkiTensor:
    """A new (uninitialised) tensor on the current core: SBUF/PSUM (partition dim first, <= 128) or HBM;
    ``address=(start partition, byte offset)`` places an on-chip tile there (NKI's manual allocation)."""
    prog = current_program()
    shape = tuple(int(s) for s in (shape if isinstance(shape, (tuple, list)) else (shape,)))
    dt = _dtypes.as_dtype(dtype, "nl.ndarray dtype")
    region = getattr(buffer, "value", buffer)
    buffer_kind(buffer)

    def make():
        return NkiTensor.allocate(prog.core.memory, shape, dt, region if region != "hbm" else "private_hbm",
                                  name or None, address=address)

    if region == "shared_hbm" and prog.world is not None:
        return prog.world.shared.get_or_allocate(prog.rank, shape, dt, make)
    return make()
