"""The one executor of reduction schedules: compiled plans, the rounding context, SR sites, the run.

:func:`get_plan` turns a :class:`~.algorithms.Schedule` into flat integer arrays (cached); :func:`round_ctx` fixes
how a step rounds for one call; :func:`run` executes the plan over virtual ranks with the Numba kernel or its NumPy
twin. The MPI backend runs the same plan round by round with :func:`~._kernels.fold_rows` and messages.

Stochastic rounding is keyed by ``(seed, site)`` with ``site = (site_id("collective", tag) + round * 2**24 +
chunk) mod 2**64`` and the element's index in the buffer, so a step's random bits do not depend on which rank or
process computes it, on tiling, or on the backend.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .._jit import numba_active
from ..args import check_bool, check_seed
from ..config import get_settings
from ..errors import ArgumentError, DtypeError
from ..numerics import formats as _formats
from ..numerics.keyed import site_id, stream_keys
from ..numerics.scalar_kernels import cast_params
from ..numerics.stochastic import overflow_threshold
from . import _kernels
from .algorithms import build

__all__ = ["Plan", "RoundCtx", "get_plan", "round_ctx", "step_sites", "step_keys", "run", "buffer_format", "OPS"]

OPS = {"add": 0, "max": 1, "min": 2, "mul": 3}


@dataclass(frozen=True)
class Plan:
    """A schedule as arrays. Steps are sorted by (chunk, round); ``by_round`` lists step indices per round."""

    schedule: object
    st_chunk: np.ndarray
    st_round: np.ndarray
    st_dst: np.ndarray
    st_kind: np.ndarray
    st_ptr: np.ndarray
    st_in: np.ndarray
    chunk_ptr: np.ndarray
    staged: np.ndarray
    holder: np.ndarray
    by_round: tuple
    st_reuse: np.ndarray = None
    st_chain: np.ndarray = None


@functools.lru_cache(maxsize=64)
def get_plan(collective: str, algorithm: str, ranks: int, channels: int = 1, dma_inputs: int = 16,
             server_ranks: int = 16, root: int = 0, prune: bool = True) -> Plan:
    """The compiled plan of :func:`~.algorithms.build` (same arguments); ``prune=False`` keeps every step."""
    sch = build(collective, algorithm, ranks, channels, dma_inputs, server_ranks, root)
    rows, holder = _live_steps(sch, prune)
    nsteps = len(rows)
    st_chunk = np.array([t[0] for t in rows], np.int64).reshape(nsteps)
    st_round = np.array([t[1] for t in rows], np.int64).reshape(nsteps)
    lens = np.array([len(t[4]) for t in rows], np.int64).reshape(nsteps)
    st_ptr = np.zeros(nsteps + 1, np.int64)
    np.cumsum(lens, out=st_ptr[1:])
    st_in = np.array([i for t in rows for i in t[4]], np.int64).reshape(int(st_ptr[-1]))
    nchunks = sch.layout.chunks
    chunk_ptr = np.searchsorted(st_chunk, np.arange(nchunks + 1)).astype(np.int64)
    order = np.argsort(st_round, kind="stable")
    splits = np.searchsorted(st_round[order], np.arange(1, len(sch.rounds)))
    by_round = tuple(np.split(order, splits)) if nsteps else ()
    holder = np.array(holder, np.int64)
    reuse = _dead_after(rows, holder, sch.staged)
    chain = _chains(rows, reuse, sch.staged)
    return Plan(sch, st_chunk, st_round, np.array([t[2] for t in rows], np.int64).reshape(nsteps),
                np.array([t[3] for t in rows], np.int64).reshape(nsteps), st_ptr, st_in, chunk_ptr,
                np.array(sch.staged + (False,), np.bool_), holder, by_round, reuse, chain)


def _live_steps(sch, prune: bool = True) -> tuple[list, list]:
    """Steps (sorted by chunk, round) that the result copy of each chunk depends on, and that copy's rank.

    The result of chunk c is read from the rank that finished it last in a ``reduce`` step (for an all-reduce every
    later write of the chunk is a bit-preserving copy of that value, so the rest of the all-gather is dead code
    here; the NumPy twin with ``full_state=True`` still runs it, and the tests check that every rank ends equal).
    """
    per_chunk: dict[int, list] = {}
    for i, rnd in enumerate(sch.rounds):
        for st in rnd:
            per_chunk.setdefault(st.chunk, []).append((i, st))
    rows, holder = [], []
    for c in range(sch.layout.chunks):
        steps = per_chunk.get(c, [])
        reduces = [st.dst for _, st in steps if st.kind == "reduce"]
        final = min(sch.holders[c])
        h = reduces[-1] if reduces and reduces[-1] in sch.holders[c] else final
        holder.append(h)
        if not prune:
            rows.extend((c, i, st.dst, 0 if st.kind == "reduce" else 1, st.inputs) for i, st in steps)
            continue
        needed = {h}
        live = []
        k = len(steps)
        while k > 0:  # one round at a time, backwards: a round reads before it writes
            j = k
            while j > 0 and steps[j - 1][0] == steps[k - 1][0]:
                j -= 1
            hit = [(i, st) for i, st in steps[j:k] if st.dst in needed]
            needed -= {st.dst for _, st in hit}
            for _, st in hit:
                needed |= set(st.inputs)
            live.extend(reversed(hit))
            k = j
        rows.extend((c, i, st.dst, 0 if st.kind == "reduce" else 1, st.inputs) for i, st in reversed(live))
    return rows, holder


def _chunk_runs(rows: list):
    """(chunk, start, stop) of each run of consecutive plan rows that belong to one chunk."""
    start = 0
    while start < len(rows):
        stop = start
        while stop < len(rows) and rows[stop][0] == rows[start][0]:
            stop += 1
        yield rows[start][0], start, stop
        start = stop


def _dead_after(rows: list, holder, staged) -> np.ndarray:
    """Per step of the form ``d <- a + d``: 1 when ``a``'s copy is never read again (before being rewritten) and is
    not the chunk's result, so the kernel may add into ``a``'s row and hand it to ``d`` (the ring's running sum
    then stays in one cache-hot row)."""
    reuse = np.zeros(len(rows), np.bool_)
    for c, start, stop in _chunk_runs(rows):
        alive = {int(holder[c])}  # copies read later (walking backwards)
        for q in range(stop - 1, start - 1, -1):
            _, rnd, dst, kind, ins = rows[q]
            if (kind == 0 and len(ins) == 2 and ins[1] == dst and ins[0] != dst and not staged[rnd]
                    and ins[0] not in alive):
                reuse[q] = True
            alive.discard(dst)
            alive.update(ins)
    return reuse


def _chains(rows: list, reuse: np.ndarray, staged) -> np.ndarray:
    """Runs of steps ``d1 <- a + d1; d2 <- d1 + d2; ...`` (each alone in its round, each ``d`` touched for the first
    time, each intermediate partial dead afterwards): ``chain[q] = k`` at the first of k such steps. The kernel runs
    a chain as one running sum over the ranks' inputs, which is what the steps compute, without per-step overhead."""
    chain = np.zeros(len(rows), np.int64)
    for _, start, stop in _chunk_runs(rows):
        per_round: dict = {}
        for q in range(start, stop):
            per_round[rows[q][1]] = per_round.get(rows[q][1], 0) + 1
        touched: set = set()

        def eligible(q):
            _, rnd, dst, kind, ins = rows[q]
            return (kind == 0 and len(ins) == 2 and ins[1] == dst and ins[0] != dst and not staged[rnd]
                    and per_round[rnd] == 1 and dst not in touched)

        q = start
        while q < stop:
            if eligible(q):
                k = 1
                touched.update(rows[q][4])
                while (q + k < stop and eligible(q + k) and rows[q + k][4][0] == rows[q + k - 1][2]
                       and reuse[q + k]):
                    touched.update(rows[q + k][4])
                    k += 1
                chain[q] = k
                q += k
            else:
                touched.update(rows[q][4])
                touched.add(rows[q][2])
                q += 1
    return chain


@dataclass(frozen=True)
class RoundCtx:
    """How one step combines and rounds: op, buffer format, rounding mode and its parameters."""

    fmt: object
    op: int
    mode: int  # 0 none, 1 bf16 RNE, 2 encoder RNE/RTZ, 3 SR
    rounding: str
    saturate: bool
    seed: int
    sr_bits: int
    acc_mode: int  # 0 fp32 per DMA op, 1 round after every binary op
    params: tuple
    thr: int


def buffer_format(dtype: np.dtype):
    """``(format, is_integer)``: the format whose codes the buffer holds (float32 for integer buffers)."""
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        if dt.itemsize > 4:
            raise DtypeError(f"per_rank: {dt} buffers are not supported; the collective datapath is fp32, exact only "
                             "up to 2^24 (use int32 or narrower)")
        return _formats.get("float32"), True
    if dt.kind == "b":
        raise DtypeError("per_rank: bool buffers have no collective datapath; use uint8")
    try:
        fmt = _formats.get(dt)
    except (TypeError, ValueError):
        raise DtypeError(f"per_rank: dtype {dt} is not a format the emulator knows (float32, bfloat16, float16, "
                         "float8_e4m3fn, float8_e5m2, float8_e4m3, integers)") from None
    if fmt.name in ("float8_e8m0fnu", "float4_e2m1fn", "tfloat32") or fmt.storage_bits > 32:
        raise DtypeError(f"per_rank: {fmt.name} buffers have no collective datapath")
    return fmt, False


def round_ctx(fmt, op: str, rounding: str | None = None, saturate: bool | None = None, seed: int | None = None,
              accumulation: str | None = None) -> RoundCtx:
    """The rounding context of a call; ``None`` arguments come from the settings (``rounding_for('collective')``)."""
    from ..numerics.cast import rounding_for

    if op not in OPS:
        raise ArgumentError(f"op: {op!r} is not one of {', '.join(map(repr, OPS))}")
    s = get_settings()
    rounding = rounding_for("collective") if rounding is None else rounding
    if rounding not in ("rne", "rtz", "sr"):
        raise ArgumentError(f"rounding: {rounding!r} is not one of 'rne', 'rtz', 'sr'")
    accumulation = s.collective_accumulation if accumulation is None else accumulation
    if accumulation not in ("float32", "dtype"):
        raise ArgumentError(f"accumulation: {accumulation!r} is not one of 'float32', 'dtype'")
    saturate = s.saturate if saturate is None else check_bool("saturate", saturate, "collective")
    seed = s.seed if seed is None else check_seed("seed", seed, "collective")
    if fmt.name == "float32":
        mode = 0
    elif rounding == "sr":
        mode = 3
    elif fmt.name == "bfloat16" and rounding == "rne" and not saturate:
        mode = 1
    else:
        mode = 2
    params = cast_params(fmt, saturate=saturate, rtz=rounding in ("rtz", "sr"), fp4_nan=s.fp4_nan,
                         e8m0_rounding=s.e8m0_rounding)
    return RoundCtx(fmt, OPS[op], mode, rounding, saturate, seed, int(s.sr_bits),
                    0 if accumulation == "float32" else 1, params, int(overflow_threshold(fmt, np.dtype(np.float32))))


def step_sites(plan: Plan, tag: int = 0) -> np.ndarray:
    """The SR site of every step (uint64, plan order)."""
    base = np.uint64(site_id("collective", int(tag)))
    return base + (plan.st_round.astype(np.uint64) << np.uint64(24)) + plan.st_chunk.astype(np.uint64)


def step_keys(sites: np.ndarray, seed: int) -> np.ndarray:
    """``stream_key(seed, site)`` of every site, vectorised (equal to :func:`~..numerics.stochastic.stream_key`)."""
    return stream_keys(seed, sites)


def _tiles(plan: Plan, bounds: np.ndarray, ranks: int) -> np.ndarray:
    """(chunk, start, stop) tiles of at most ~64K values of state (R x tile) each."""
    width = max(256, (1 << 16) // max(ranks, 1))
    out = []
    for c, (s, e) in enumerate(bounds):
        for t in range(int(s), int(e), width):
            out.append((c, t, min(t + width, int(e))))
    return np.array(out, np.int64).reshape(len(out), 3)


def run(values: list, plan: Plan, rc: RoundCtx, n: int, tag: int = 0, full_state: bool = False):
    """Execute ``plan`` on the ranks' buffers; returns the flat float32 result (chunk c from its holder).

    ``values``: one flat array per rank, float32 values or the format's codes (decoded on the fly), or a 2-D
    array [R, n]. ``full_state=True`` (NumPy twin only) also returns every rank's final buffer [R, n].
    """
    sch = plan.schedule
    bounds = sch.layout.bounds(n)
    sites = step_sites(plan, tag)
    codes_in = values[0].dtype != np.float32
    # how the kernel reads an input element: 0 float32, 1 a code's table value, 2 a bfloat16 code's shift
    decode_in = 0 if not codes_in else 2 if rc.fmt.name == "bfloat16" else 1
    table = rc.fmt.value_table if rc.fmt.storage_bits <= 16 else np.zeros(1, np.float32)
    if numba_active() and not full_state:
        if isinstance(values, np.ndarray):
            values = np.ascontiguousarray(values)
        else:
            values = [np.ascontiguousarray(v) for v in values]
        addrs, like = _kernels.input_addresses(values)
        out = np.empty(n, np.float32)
        keys = step_keys(sites, rc.seed) if rc.mode == 3 else np.zeros(sites.size, np.uint64)
        import numba

        threads = numba.get_num_threads()
        if sch.ranks * n < (1 << 20):  # small: waking worker threads costs more than it saves on a busy machine
            numba.set_num_threads(1)
        try:
            _kernels.run_tiles(addrs, like, table, decode_in, out, _tiles(plan, bounds, sch.ranks), plan.chunk_ptr,
                               plan.st_round, plan.st_dst, plan.st_kind, plan.st_ptr, plan.st_in, plan.st_reuse,
                               plan.st_chain, plan.staged, plan.holder, keys, sch.ranks, rc.op, rc.mode,
                               rc.acc_mode, rc.params, table, rc.thr, rc.sr_bits)
        finally:
            numba.set_num_threads(threads)
        return out
    state = np.stack([table[v] if codes_in else v for v in values]).astype(np.float32, copy=False)
    if not codes_in and state is values:
        state = state.copy()
    _kernels.run_rounds(state, plan, bounds, rc, [int(x) for x in sites])
    out = np.empty(n, np.float32)
    for c, (s, e) in enumerate(bounds):
        out[s:e] = state[plan.holder[c], s:e]
    return (out, state) if full_state else out
