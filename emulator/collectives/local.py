"""In-process backend, reductions: all_reduce, reduce_scatter, reduce over virtual ranks.

Every rank's buffer is an array in this process; the schedule of the chosen algorithm runs over them (Numba kernel
or NumPy twin, bit-identical), and each rank gets the bits the hardware's DMA steps would leave in its buffer. The
data movements that do not change bits (all_gather, all_to_all, permute, broadcast) live in :mod:`.movement`.
"""

from __future__ import annotations

import numpy as np

from ..args import check_int
from ..config import get_settings
from ..errors import ArgumentTypeError, IntegerOverflowError, ShapeError
from ..numerics.cast import cast
from . import executor
from .groups import as_groups, check_buffers

__all__ = ["all_reduce", "reduce_scatter", "reduce", "resolve_options", "run_group", "to_dtype"]


_WHERE = "collective"


def resolve_options(algorithm=None, channels=None, dma_inputs=None, server_ranks=None) -> dict:
    """Schedule options, each ``None`` taken from the settings."""
    s = get_settings()
    opts = {
        "algorithm": s.collective_algorithm if algorithm is None else algorithm,
        "channels": s.collective_channels if channels is None else check_int("channels", channels, _WHERE, 1),
        "dma_inputs": s.collective_dma_inputs if dma_inputs is None else check_int("dma_inputs", dma_inputs, _WHERE),
        "server_ranks": s.collective_server_ranks if server_ranks is None else check_int(
            "server_ranks", server_ranks, _WHERE, 1),
    }
    return opts


def _flat_inputs(arrays, fmt, is_int: bool):
    """Flat per-rank arrays the kernel reads: float32 values, or the format's codes (decoded in the kernel).

    A C-contiguous stacked array ``[R, ...]`` stays one 2-D array (the kernel reads it without a list)."""
    if isinstance(arrays, np.ndarray):
        flat = arrays.reshape(arrays.shape[0], -1)
        if is_int:
            return flat.astype(np.float32)
        return flat if fmt.name == "float32" else flat.view(fmt.code_dtype)
    if is_int or fmt.name == "float32":
        return [np.ascontiguousarray(a, np.float32).reshape(-1) for a in arrays]
    return [np.ascontiguousarray(a).view(fmt.code_dtype).reshape(-1) for a in arrays]


def to_dtype(values: np.ndarray, dtype: np.dtype, fmt, is_int: bool) -> np.ndarray:
    """Float32 results (exact values of the buffer format) back to the buffer dtype."""
    if is_int:
        return _to_integer(values, dtype)
    if fmt.name == "float32":
        return values
    # the values are exact in the buffer format, so these conversions are exact (cheap paths for 16-bit formats)
    if fmt.name == "bfloat16":
        return (values.view(np.uint32) >> np.uint32(16)).astype(np.uint16).view(dtype)
    if fmt.name == "float16":
        return values.astype(np.float16)
    return cast(values, fmt, rounding="rne").view(dtype)


def _to_integer(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """fp32 results of an integer collective back to ``dtype``; overflow as setting ``collective_int_overflow``."""
    info = np.iinfo(dtype)
    exact = np.rint(values.astype(np.float64))
    bad = (exact < info.min) | (exact > info.max)
    if not bad.any():
        return exact.astype(dtype)
    policy = get_settings().collective_int_overflow
    if policy == "saturate":
        return np.clip(exact, info.min, info.max).astype(dtype)
    if policy == "wrap":  # two's complement: keep the low bits (exact: |sums| < 2^53 in float64)
        return exact.astype(np.int64).astype(dtype)
    first = int(np.flatnonzero(bad)[0])
    raise IntegerOverflowError(
        f"collective: the {np.dtype(dtype).name} result at flat index {first} is {exact.flat[first]:.0f}, outside "
        f"{info.min}..{info.max} ({int(bad.sum())} element(s) overflow); Neuron reduces integers in fp32 and does "
        "not document the conversion back, so set collective_int_overflow='saturate' or 'wrap' to choose one")


def run_group(collective: str, arrays: list, op: str, opts: dict, rc_kw: dict, root: int = 0, site: int = 0,
              full_state: bool = False):
    """Run one group's reduction; returns the flat result in the buffer dtype (and the state if asked)."""
    dtype = arrays.dtype if isinstance(arrays, np.ndarray) else arrays[0].dtype
    fmt, is_int = executor.buffer_format(dtype)
    rc = executor.round_ctx(fmt, op, **rc_kw)
    plan = executor.get_plan(collective, opts["algorithm"], len(arrays), opts["channels"], opts["dma_inputs"],
                             opts["server_ranks"], root, prune=not full_state)
    n = arrays[0].size
    res = executor.run(_flat_inputs(arrays, fmt, is_int), plan, rc, n, tag=site, full_state=full_state)
    if full_state:
        return to_dtype(res[0], dtype, fmt, is_int), res[1]
    return to_dtype(res, dtype, fmt, is_int)


def _readonly(a: np.ndarray) -> np.ndarray:
    v = a.view()
    v.flags.writeable = False
    return v


def _reduction(collective, per_rank, op, algorithm, replica_group, root, copy, rc_kw, opts_kw, site):
    arrays = check_buffers(per_rank, collective)
    nranks = len(arrays)
    groups = as_groups(replica_group, nranks)
    opts = resolve_options(algorithm, **opts_kw)
    shape = arrays[0].shape
    out: list = [None] * nranks
    stacked = isinstance(per_rank, np.ndarray) and per_rank.flags.c_contiguous and replica_group is None
    for g in groups.groups:
        sub = per_rank if stacked else [arrays[r] for r in g]
        if collective == "reduce_scatter":
            if not shape or shape[0] % len(g):
                raise ShapeError(f"reduce_scatter: dim 0 of {shape} does not split into {len(g)} equal blocks "
                                 f"(one per rank of group {list(g)})")
        if collective == "reduce" and root not in g:
            raise ShapeError(f"reduce: root {root} is not in group {list(g)}")
        local_root = g.index(root) if collective == "reduce" else 0
        flat = run_group(collective, sub, op, opts, rc_kw, local_root, site)
        if collective == "all_reduce":
            res = flat.reshape(shape)
            for r in g:
                out[r] = res.copy() if copy else _readonly(res)
        elif collective == "reduce_scatter":
            blocks = flat.reshape(shape).reshape((len(g), shape[0] // len(g)) + shape[1:])
            for i, r in enumerate(g):
                out[r] = blocks[i].copy()
        else:
            out[root] = flat.reshape(shape)
    return out


def all_reduce(per_rank, op: str = "add", algorithm: str | None = None, *, replica_group=None,
               channels: int | None = None, rounding: str | None = None, saturate: bool | None = None,
               seed: int | None = None, accumulation: str | None = None, dma_inputs: int | None = None,
               server_ranks: int | None = None, site: int = 0, copy: bool = False) -> list:
    """Element-wise reduction over the ranks; every rank receives the same bits.

    Parameters
    ----------
    per_rank : list of arrays (one per rank; same shape and dtype) or an array ``[ranks, ...]``. Dtypes: float32,
        bfloat16, float16, float8_e4m3fn, float8_e5m2, float8_e4m3 (ml_dtypes), integers up to 32 bits (reduced in
        fp32 as Neuron does, so exact only up to 2^24).
    op : ``"add"``, ``"max"``, ``"min"`` or ``"mul"``.
    algorithm : ``ring`` (default: setting ``collective_algorithm``), ``tree``, ``recursive_doubling``,
        ``recursive_halving``, ``hierarchical``, ``mesh``, ``rank_order``; see :mod:`.algorithms` for each order.
    replica_group : disjoint rank lists, each reducing on its own (ranks outside every group get ``None``).
    channels, dma_inputs, server_ranks, accumulation : schedule and datapath options (settings ``collective_*``).
    rounding, saturate, seed : each step's rounding to the buffer dtype (default ``rounding_for("collective")``).
    site : keys the stochastic-rounding stream (use a different one per collective call).
    copy : return independent writable arrays instead of read-only views of one result.

    Examples
    --------
    >>> import numpy as np, emulator as emu
    >>> out = emu.collectives.all_reduce([np.full(4, 1.0, np.float32), np.full(4, 2.0, np.float32)])
    >>> out[1]
    array([3., 3., 3., 3.], dtype=float32)
    """
    return _reduction("all_reduce", per_rank, op, algorithm, replica_group, 0, copy,
                      dict(rounding=rounding, saturate=saturate, seed=seed, accumulation=accumulation),
                      dict(channels=channels, dma_inputs=dma_inputs, server_ranks=server_ranks), site)


def reduce_scatter(per_rank, op: str = "add", algorithm: str | None = None, *, replica_group=None,
                   channels: int | None = None, rounding: str | None = None, saturate: bool | None = None,
                   seed: int | None = None, accumulation: str | None = None, dma_inputs: int | None = None,
                   server_ranks: int | None = None, site: int = 0) -> list:
    """Reduce, then rank ``r`` keeps block ``r`` of dim 0 (dim 0 must split into one equal block per rank).

    Arguments as :func:`all_reduce`. Ring, mesh and hierarchical schedules end with each block at its rank; the
    others reduce whole buffers and then deliver each block (a ``deliver`` round).

    >>> import numpy as np, emulator as emu
    >>> x = [np.arange(4, dtype=np.float32), np.ones(4, np.float32)]
    >>> [b.tolist() for b in emu.collectives.reduce_scatter(x)]
    [[1.0, 2.0], [3.0, 4.0]]
    """
    return _reduction("reduce_scatter", per_rank, op, algorithm, replica_group, 0, True,
                      dict(rounding=rounding, saturate=saturate, seed=seed, accumulation=accumulation),
                      dict(channels=channels, dma_inputs=dma_inputs, server_ranks=server_ranks), site)


def reduce(per_rank, op: str = "add", root: int = 0, algorithm: str | None = None, *, replica_group=None,
           channels: int | None = None, rounding: str | None = None, saturate: bool | None = None,
           seed: int | None = None, accumulation: str | None = None, dma_inputs: int | None = None,
           server_ranks: int | None = None, site: int = 0) -> list:
    """Reduce to ``root`` (a global rank): the list holds the result at ``root`` and ``None`` elsewhere.

    >>> import numpy as np, emulator as emu
    >>> emu.collectives.reduce([np.ones(2, np.float32)] * 3, root=2)[2]
    array([3., 3.], dtype=float32)
    """
    if isinstance(root, bool) or not isinstance(root, (int, np.integer)):
        raise ArgumentTypeError(f"reduce: root must be a rank number, got {root!r}")
    return _reduction("reduce", per_rank, op, algorithm, replica_group, int(root), True,
                      dict(rounding=rounding, saturate=saturate, seed=seed, accumulation=accumulation),
                      dict(channels=channels, dma_inputs=dma_inputs, server_ranks=server_ranks), site)
