"""Replica groups and per-rank input validation shared by the in-process and MPI backends."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ArgumentTypeError, DtypeError, ShapeError

__all__ = ["ReplicaGroup", "as_groups", "check_buffers"]


@dataclass(frozen=True)
class ReplicaGroup:
    """Disjoint lists of ranks; each list runs its own collective (``nki.collectives.ReplicaGroup``).

    Rank ``groups[g][i]`` is rank ``i`` of group ``g`` (its group-local rank: the position that decides chunk
    ownership and reduction order).

    >>> ReplicaGroup([[0, 2], [1, 3]]).group_of(3)
    (1, 1)
    """

    groups: tuple

    def __init__(self, groups) -> None:
        try:
            norm = tuple(tuple(int(r) for r in g) for g in groups)
        except TypeError:
            raise ArgumentTypeError(f"ReplicaGroup: expected a list of rank lists, got {groups!r}") from None
        seen: dict[int, int] = {}
        for gi, g in enumerate(norm):
            if not g:
                raise ShapeError(f"ReplicaGroup: group {gi} is empty")
            for r in g:
                if r < 0:
                    raise ShapeError(f"ReplicaGroup: rank {r} in group {gi} is negative")
                if r in seen:
                    raise ShapeError(f"ReplicaGroup: rank {r} is in group {seen[r]} and group {gi}; groups must not "
                                     "overlap")
                seen[r] = gi
        object.__setattr__(self, "groups", norm)

    def group_of(self, rank: int) -> tuple[int, int] | None:
        """``(group index, group-local rank)`` of a global rank, or None when no group holds it."""
        for gi, g in enumerate(self.groups):
            if rank in g:
                return gi, g.index(rank)
        return None

    @property
    def ranks(self) -> int:
        return max(max(g) for g in self.groups) + 1


def as_groups(replica_group, nranks: int) -> ReplicaGroup:
    """``replica_group`` (None = every rank in one group, a ReplicaGroup, or a list of rank lists), checked."""
    if replica_group is None:
        return ReplicaGroup([list(range(nranks))])
    rg = replica_group if isinstance(replica_group, ReplicaGroup) else ReplicaGroup(replica_group)
    top = rg.ranks
    if top > nranks:
        raise ShapeError(f"replica_group: names rank {top - 1}, but only {nranks} ranks take part")
    return rg


def check_buffers(per_rank, who: str, same_shape: bool = True) -> list[np.ndarray]:
    """The per-rank buffers as a list of arrays; every rank must agree on dtype (and on shape if asked)."""
    if isinstance(per_rank, np.ndarray):
        if per_rank.ndim < 1:
            raise ShapeError(f"{who}: per_rank must be a list of arrays (one per rank) or an array [ranks, ...]")
        arrays = list(per_rank)
    elif isinstance(per_rank, (list, tuple)):
        arrays = [np.asarray(a) for a in per_rank]
    else:
        raise ArgumentTypeError(f"{who}: per_rank must be a list of arrays (one per rank), got "
                                f"{type(per_rank).__name__}")
    if not arrays:
        raise ShapeError(f"{who}: per_rank is empty; a collective needs at least one rank")
    first = arrays[0]
    for r, a in enumerate(arrays[1:], 1):
        if a.dtype != first.dtype:
            raise DtypeError(f"{who}: rank {r} holds {a.dtype} but rank 0 holds {first.dtype}; every rank must use "
                             "the same dtype")
        if same_shape and a.shape != first.shape:
            raise ShapeError(f"{who}: rank {r} has shape {a.shape} but rank 0 has {first.shape}; every rank must "
                             "pass the same shape")
    return arrays
