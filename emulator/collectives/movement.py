"""In-process backend, data movement: all_gather(_v), all_to_all(_v), collective_permute(_implicit), broadcast.

These collectives never combine values, so every algorithm gives the same bits (the algorithm only changes the
cost, see :mod:`.cost`). Results are fresh arrays; an all-gather or broadcast result is one array shared read-only
by every rank (pass ``copy=True`` for independent writable arrays).
"""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentTypeError, ShapeError
from .groups import as_groups, check_buffers

__all__ = ["all_gather", "all_gather_v", "all_to_all", "all_to_all_v", "collective_permute",
           "collective_permute_implicit", "broadcast"]


def _share(a: np.ndarray, copy: bool) -> np.ndarray:
    if copy:
        return a.copy()
    v = a.view()
    v.flags.writeable = False
    return v


def _axis(axis: int, ndim: int, who: str) -> int:
    if not -ndim <= axis < ndim:
        raise ShapeError(f"{who}: collective_dim {axis} is out of range for {ndim}-d buffers")
    return axis % ndim


def all_gather(per_rank, *, collective_dim: int = 0, replica_group=None, copy: bool = False) -> list:
    """Concatenate the ranks' buffers along ``collective_dim`` in group-rank order; every rank gets the result.

    >>> import numpy as np, emulator as emu
    >>> emu.collectives.all_gather([np.zeros(2), np.ones(2)])[0].tolist()
    [0.0, 0.0, 1.0, 1.0]
    """
    arrays = check_buffers(per_rank, "all_gather")
    if arrays[0].ndim == 0:
        raise ShapeError("all_gather: buffers must have at least one dimension")
    ax = _axis(collective_dim, arrays[0].ndim, "all_gather")
    out: list = [None] * len(arrays)
    for g in as_groups(replica_group, len(arrays)).groups:
        res = np.concatenate([arrays[r] for r in g], axis=ax)
        for r in g:
            out[r] = _share(res, copy)
    return out


def all_gather_v(per_rank, *, replica_group=None, copy: bool = False) -> list:
    """Every rank contributes a flat buffer of its own length; every rank gets the concatenation (rank order).

    >>> import numpy as np, emulator as emu
    >>> emu.collectives.all_gather_v([np.array([1.0]), np.array([2.0, 3.0])])[1].tolist()
    [1.0, 2.0, 3.0]
    """
    arrays = [a.reshape(-1) for a in check_buffers(per_rank, "all_gather_v", same_shape=False)]
    out: list = [None] * len(arrays)
    for g in as_groups(replica_group, len(arrays)).groups:
        res = np.concatenate([arrays[r] for r in g])
        for r in g:
            out[r] = _share(res, copy)
    return out


def all_to_all(per_rank, *, collective_dim: int = 0, replica_group=None) -> list:
    """Block ``j`` (along ``collective_dim``) of rank ``i`` goes to rank ``j``, landing in slot ``i``.

    >>> import numpy as np, emulator as emu
    >>> out = emu.collectives.all_to_all([np.array([0, 1.0]), np.array([10, 11.0])])
    >>> out[0].tolist(), out[1].tolist()
    ([0.0, 10.0], [1.0, 11.0])
    """
    arrays = check_buffers(per_rank, "all_to_all")
    if arrays[0].ndim == 0:
        raise ShapeError("all_to_all: buffers must have at least one dimension")
    ax = _axis(collective_dim, arrays[0].ndim, "all_to_all")
    out: list = [None] * len(arrays)
    for g in as_groups(replica_group, len(arrays)).groups:
        size = arrays[g[0]].shape[ax]
        if size % len(g):
            raise ShapeError(f"all_to_all: dim {ax} of {arrays[g[0]].shape} does not split into {len(g)} equal "
                             f"blocks (one per rank of group {list(g)})")
        blocks = [np.split(arrays[r], len(g), axis=ax) for r in g]
        for j, r in enumerate(g):
            out[r] = np.concatenate([blocks[i][j] for i in range(len(g))], axis=ax)
    return out


def all_to_all_v(per_rank, send_counts, send_displs=None, *, replica_group=None) -> list:
    """Variable all-to-all on flat buffers: rank ``i`` sends ``send_counts[i][j]`` elements to rank ``j``.

    ``send_displs[i][j]`` (default: the exclusive running sum of ``send_counts[i]``) is where that segment starts in
    rank ``i``'s buffer. Rank ``j`` receives the segments of ranks 0, 1, ... packed in rank order (receive
    displacements = running sum of what it receives). Counts index group-local ranks when a replica group is given.

    >>> import numpy as np, emulator as emu
    >>> out = emu.collectives.all_to_all_v([np.array([1.0, 2, 3]), np.array([4.0, 5])], [[1, 2], [0, 2]])
    >>> out[0].tolist(), out[1].tolist()
    ([1.0], [2.0, 3.0, 4.0, 5.0])
    """
    arrays = [a.reshape(-1) for a in check_buffers(per_rank, "all_to_all_v", same_shape=False)]
    out: list = [None] * len(arrays)
    for g in as_groups(replica_group, len(arrays)).groups:
        n = len(g)
        counts = np.asarray(send_counts, np.int64)
        if counts.shape != (n, n) or (counts < 0).any():
            raise ShapeError(f"all_to_all_v: send_counts must be a {n}x{n} array of non-negative counts, got shape "
                             f"{counts.shape}")
        displs = (np.concatenate([np.zeros((n, 1), np.int64), np.cumsum(counts, 1)[:, :-1]], 1)
                  if send_displs is None else np.asarray(send_displs, np.int64))
        if displs.shape != (n, n):
            raise ShapeError(f"all_to_all_v: send_displs must be {n}x{n}, got shape {displs.shape}")
        for i, r in enumerate(g):
            end = displs[i] + counts[i]
            if (displs[i] < 0).any() or (end > arrays[r].size).any():
                j = int(np.argmax((displs[i] < 0) | (end > arrays[r].size)))
                raise ShapeError(f"all_to_all_v: rank {r} sends [{displs[i, j]}, {end[j]}) to rank {g[j]}, outside "
                                 f"its {arrays[r].size}-element buffer")
        for j, r in enumerate(g):
            out[r] = np.concatenate([arrays[src][displs[i, j]:displs[i, j] + counts[i, j]] for i, src in enumerate(g)])
    return out


def collective_permute(per_rank, source_target_pairs) -> list:
    """Point-to-point shuffle: for each ``(src, dst)`` pair, rank ``dst`` receives rank ``src``'s buffer.

    Ranks that receive nothing get ``None`` (their destination is left untouched on hardware).

    >>> import numpy as np, emulator as emu
    >>> emu.collectives.collective_permute([np.array([1.0]), np.array([2.0])], [(0, 1), (1, 0)])[0].tolist()
    [2.0]
    """
    arrays = check_buffers(per_rank, "collective_permute")
    out: list = [None] * len(arrays)
    seen = set()
    for pair in source_target_pairs:
        try:
            src, dst = (int(v) for v in pair)
        except (TypeError, ValueError):
            raise ShapeError(f"collective_permute: each pair must be (source, target), got {pair!r}") from None
        for name, v in (("source", src), ("target", dst)):
            if not 0 <= v < len(arrays):
                raise ShapeError(f"collective_permute: {name} rank {v} is not one of the {len(arrays)} ranks")
        if dst in seen:
            raise ShapeError(f"collective_permute: rank {dst} is the target of two pairs")
        seen.add(dst)
        out[dst] = arrays[src].copy()
    return out


def collective_permute_implicit(per_rank, *, shift: int = 1, replica_group=None) -> list:
    """Ring shift within each group: group rank ``i`` receives from group rank ``i - shift`` (its predecessor).

    >>> import numpy as np, emulator as emu
    >>> [a.tolist() for a in emu.collectives.collective_permute_implicit([np.array([0.0]), np.array([1.0])])]
    [[1.0], [0.0]]
    """
    arrays = check_buffers(per_rank, "collective_permute_implicit")
    out: list = [None] * len(arrays)
    for g in as_groups(replica_group, len(arrays)).groups:
        for i, r in enumerate(g):
            out[r] = arrays[g[(i - shift) % len(g)]].copy()
    return out


def broadcast(per_rank, root: int = 0, *, replica_group=None, copy: bool = False) -> list:
    """Every rank of root's group receives ``per_rank[root]`` (other entries may be None or arrays of its shape).

    >>> import numpy as np, emulator as emu
    >>> emu.collectives.broadcast([np.array([5.0]), None], root=0)[1].tolist()
    [5.0]
    """
    if not isinstance(per_rank, (list, tuple)) or not per_rank:
        raise ArgumentTypeError("broadcast: per_rank must be a non-empty list with one entry per rank")
    if not 0 <= root < len(per_rank) or per_rank[root] is None:
        raise ShapeError(f"broadcast: root {root} must be a rank holding an array (ranks: {len(per_rank)})")
    src = np.asarray(per_rank[root])
    for r, a in enumerate(per_rank):
        if a is not None and (np.shape(a) != src.shape or np.asarray(a).dtype != src.dtype):
            raise ShapeError(f"broadcast: rank {r} passes {np.asarray(a).dtype}{np.shape(a)} but the root has "
                             f"{src.dtype}{src.shape}")
    groups = as_groups(replica_group, len(per_rank))
    found = groups.group_of(root)
    if found is None:
        raise ShapeError(f"broadcast: root {root} is in no replica group")
    out: list = [None] * len(per_rank)
    for r in groups.groups[found[0]]:
        out[r] = _share(src, copy)
    return out
