"""All-reduce written against NKI's ``nki.collectives``: every rank ends with the element-wise reduction of all ranks'
inputs (sum, max or min), written the way the AWS kernel library's collective tests write it.

Each rank stages its input in a private HBM tensor with ``dma_copy`` (a collective cannot read or write a kernel's
I/O tensors directly), calls ``ncc.all_reduce(srcs=[src], dsts=[dst], replica_group=..., op=...)`` and copies
``dst`` out. How the ranks combine (ring by default, fp32 accumulation, one rounding per step to the buffer dtype) is
the collective engine's setting, not the kernel's.

Launch: the emulator runs R ranks as the R programs of one launch, ``all_reduce_kernel[R](xs, ...)``, sharing HBM;
the ranks' inputs arrive stacked, ``xs [R, ...]``, each rank reads its own ``xs[rank_id()]`` and writes its result to
``out[rank_id()]`` (on Trainium each device holds its own slice; the ``rank_id`` indexing is the same).

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
def all_reduce_kernel(xs, replica_group, op):
    """``op``-reduce over the ranks of ``replica_group``: rank r contributes ``xs[r]`` and receives ``out[r]``."""
    shape = tuple(xs.shape[1:])
    r = ncc.rank_id()
    out = nl.ndarray(xs.shape, dtype=xs.dtype, buffer=nl.shared_hbm)
    src = nl.ndarray(shape, dtype=xs.dtype, buffer=nl.private_hbm, name="all_reduce_src")
    dst = nl.ndarray(shape, dtype=xs.dtype, buffer=nl.private_hbm, name="all_reduce_dst")
    nisa.dma_copy(dst=src, src=xs[r])
    ncc.all_reduce(srcs=[src], dsts=[dst], replica_group=replica_group, op=op)
    nisa.dma_copy(dst=out[r], src=dst)
    return out


def all_reduce(per_rank: list, op: str = "add") -> list:
    """Host wrapper: one array per rank (same shape and dtype) -> each rank's reduced array. ``op``: add, maximum
    or minimum."""
    if op not in ("add", "maximum", "minimum"):
        raise ValueError(f"op: {op!r} is not add, maximum or minimum (the all-reduce operators of nki.collectives)")
    ranks = len(per_rank)
    xs = np.ascontiguousarray(np.stack(per_rank))
    out = np.asarray(all_reduce_kernel[ranks](xs, ncc.ReplicaGroup([list(range(ranks))]), getattr(nl, op)))
    return list(out)
