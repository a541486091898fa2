"""All-reduce written against NKI's ``nki.collectives``: every rank ends with the element-wise reduction of all ranks'
inputs (sum, max or min), written the way the AWS kernel library's collective tests write it.

A collective cannot read or write a kernel's I/O tensors directly, so the kernel stages its input in a named
``shared_hbm`` tensor with ``dma_copy``, calls ``ncc.all_reduce(srcs=[src], dsts=[dst], replica_group=...,
op=...)``, and copies ``dst`` to its output. How the ranks combine (ring by default, fp32 accumulation, one rounding
per step to the buffer dtype) is the collective engine's setting, not the kernel's.

The host wrapper :func:`all_reduce` runs the kernel once per virtual rank (one thread and one NeuronCore each) with
:func:`emulator.nki.collectives.run_spmd`; on Trainium the same kernel runs once per device of the replica group.

>>> import numpy as np
>>> from kernels.all_reduce import all_reduce
>>> outs = all_reduce([np.full((2, 3), r + 1.0, np.float32) for r in range(4)])
>>> outs[3].tolist()
[[10.0, 10.0, 10.0], [10.0, 10.0, 10.0]]
"""

from __future__ import annotations

import numpy as np

try:  # the real NKI on a Trainium host (or the emulator after emulator.nki.install())
    import nki
    import nki.collectives as ncc
    import nki.isa as nisa
    import nki.language as nl
except ImportError:  # anywhere else: the emulator's NKI front end under the same names
    from emulator import nki
    from emulator.nki import collectives as ncc, isa as nisa, language as nl

__all__ = ["all_reduce_kernel", "all_reduce"]


@nki.jit
def all_reduce_kernel(x, replica_group, op):
    """``op``-reduce ``x`` (HBM, any shape) over the ranks of ``replica_group``; returns this rank's copy."""
    src = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm, name="all_reduce_src")
    dst = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm, name="all_reduce_dst")
    out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=src, src=x)
    ncc.all_reduce(srcs=[src], dsts=[dst], replica_group=replica_group, op=op)
    nisa.dma_copy(dst=out, src=dst)
    return out


def all_reduce(per_rank: list, op: str = "add") -> list:
    """Host wrapper: one array per rank (same shape and dtype) -> each rank's reduced array. ``op``: add, maximum
    or minimum."""
    from emulator.nki.collectives import run_spmd

    if op not in ("add", "maximum", "minimum"):
        raise ValueError(f"op: {op!r} is not add, maximum or minimum (the all-reduce operators of nki.collectives)")
    ranks = len(per_rank)
    inputs = [np.ascontiguousarray(a) for a in per_rank]
    group = ncc.ReplicaGroup([list(range(ranks))])
    outs: list = [None] * ranks

    def rank_body():
        r = ncc.rank_id()
        outs[r] = np.asarray(all_reduce_kernel(inputs[r], group, getattr(nl, op)))

    run_spmd(rank_body, ranks)
    return outs
