"""Collective engine: exact-order collectives over virtual ranks (in process) and over MPI, with a cost model.

In-process API (one array per rank in, one result per rank out)::

    emu.collectives.all_reduce(per_rank, op="add", algorithm="ring")
    emu.collectives.reduce_scatter / reduce / all_gather / all_gather_v / all_to_all / all_to_all_v /
    emu.collectives.collective_permute / collective_permute_implicit / broadcast

Under ``mpiexec``: ``emu.collectives.mpi.all_reduce(local_array, ...)`` (and the others) runs the same schedule
with point-to-point messages and returns this rank's result, bit-identical to the in-process backend.

``emu.collectives.explain(...)`` prints a schedule and its Trainium3 cost estimate; :mod:`.algorithms` documents
the reduction order of every algorithm.
"""

from __future__ import annotations

import importlib

from .algorithms import ALGORITHMS, Schedule, Step, build
from .cost import estimate
from .describe import explain
from .groups import ReplicaGroup
from .local import all_reduce, reduce, reduce_scatter
from .movement import (
    all_gather,
    all_gather_v,
    all_to_all,
    all_to_all_v,
    broadcast,
    collective_permute,
    collective_permute_implicit,
)
from .topology import Topology

__all__ = [
    "all_reduce", "reduce_scatter", "reduce", "all_gather", "all_gather_v", "all_to_all", "all_to_all_v",
    "collective_permute", "collective_permute_implicit", "broadcast", "ReplicaGroup", "rank_id",
    "ALGORITHMS", "Schedule", "Step", "build", "Topology", "estimate", "explain", "mpi",
]


def rank_id() -> int:
    """This process's rank under MPI (``COMM_WORLD``), or 0 when MPI is not running or not installed.

    >>> import emulator as emu
    >>> emu.collectives.rank_id()
    0
    """
    import sys

    if "mpi4py.MPI" not in sys.modules:
        return 0
    mpi = sys.modules["mpi4py.MPI"]
    return mpi.COMM_WORLD.Get_rank() if mpi.Is_initialized() and not mpi.Is_finalized() else 0


def __getattr__(name: str):
    if name == "mpi":  # imported on first use: mpi4py must not load (and init MPI) for in-process users
        return importlib.import_module(".mpi", __name__)
    raise AttributeError(f"module 'emulator.collectives' has no attribute {name!r}")
