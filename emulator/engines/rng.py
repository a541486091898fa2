"""The engines' random number generators as instructions: ``rng``, ``rand2``, ``dropout``, ``set_rng_seed``,
``rand_set_state``, ``rand_get_state``, on an explicit :class:`EngineRNG` (one per engine; a NeuronCore holds one
for the Vector Engine and one for GpSimd).

The generator itself (XORWOW per lane, word order, Vector interleave, uint32 -> float mapping, dropout rule, seed
expansion) is :mod:`emulator.numerics.rng` with its declared settings (``rng_*``, ``rand_mapping``,
``dropout_rule``); this module adds the destination-first signatures and the engine rules of reference
section 4.5: ``rng`` on Vector or GpSimd, ``rand2``/``dropout``/``set_rng_seed`` on Vector only, state tiles of
6 (GpSimd) or 24 (Vector) uint32 words per lane.

>>> import numpy as np
>>> from emulator.engines.rng import EngineRNG, rng, set_rng_seed
>>> vec = EngineRNG("vector")
>>> set_rng_seed(np.array([[7]], np.uint32), state=vec)
>>> a = rng(np.empty((2, 4), np.uint32), state=vec)
>>> set_rng_seed(np.array([[7]], np.uint32), state=vec)
>>> bool((rng(np.empty((2, 4), np.uint32), state=vec) == a).all())
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DtypeError, EmulatorError, ShapeError
from ..numerics import rng as _rng
from . import operands as _o
from .operands import PMAX, Instruction, check_dst, write

__all__ = ["EngineRNG", "rng", "rand2", "dropout", "set_rng_seed", "rand_set_state", "rand_get_state",
           "INSTRUCTIONS"]


_RNG_DTYPES = tuple(np.dtype(t) for t in (np.int8, np.int16, np.int32, np.uint8, np.uint16, np.uint32))


class EngineRNG:
    """The XORWOW generators of one engine: ``lanes`` lanes, 1 generator per lane (GpSimd) or 4 (Vector).

    ``state`` is the live uint32 array ([lanes, 6] or [lanes, 4, 6]), advanced in place by every draw. A new
    object is seeded as by ``set_rng_seed(seed)``.
    """

    def __init__(self, engine: str = "vector", lanes: int = PMAX, seed: int = 0) -> None:
        if engine not in _rng.ENGINES:
            raise EmulatorError(f"EngineRNG: engine {engine!r} has no random number generator; use one of "
                                f"{', '.join(_rng.ENGINES)}")
        self.engine = engine
        self.lanes = int(lanes)
        self.state = _rng.set_rng_seed(seed, self.lanes, engine)

    @property
    def words_per_lane(self) -> int:
        return 6 * _rng.GENERATORS_PER_LANE[self.engine]

    def __repr__(self) -> str:
        return f"EngineRNG({self.engine!r}, lanes={self.lanes})"


def _state(state: Any, engine: Any, instr: str, allowed: tuple[str, ...]) -> EngineRNG:
    """The :class:`EngineRNG` to use: ``state`` itself, or ``state[engine]`` when it maps engines to states."""
    name = _o.engine_name(engine)
    if isinstance(state, EngineRNG):
        st = state
    elif state is not None and hasattr(state, "__getitem__"):
        st = state[name or allowed[0]]
    else:
        raise EmulatorError(f"{instr}: state= must be an EngineRNG (the engine's generators), got {state!r}")
    if name is not None and name != st.engine:
        raise EmulatorError(f"{instr}: engine {name!r} but state holds the {st.engine} generators")
    if st.engine not in allowed:
        raise EmulatorError(f"{instr}: runs on {' or '.join(allowed)}, not on {st.engine}")
    return st


def _rows(dst: np.ndarray, st: EngineRNG, instr: str) -> None:
    if dst.shape[0] > st.lanes:
        raise ShapeError(f"{instr}: dst has {dst.shape[0]} partitions but the engine has {st.lanes} lanes")


@_o.quiet
def rng(dst: np.ndarray, engine: Any = None, *, state: Any) -> np.ndarray:
    """32 random bits per element of integer ``dst`` (narrower types keep the least significant bits).

    >>> import numpy as np
    >>> rng(np.empty((1, 3), np.uint8), state=EngineRNG("gpsimd", seed=1)).dtype
    dtype('uint8')
    """
    instr = "rng"
    check_dst(dst, instr)
    st = _state(state, engine, instr, ("vector", "gpsimd"))
    if dst.dtype not in _RNG_DTYPES:
        raise DtypeError(f"{instr}: dst has dtype {dst.dtype}; it must be int8/16/32 or uint8/16/32")
    _rows(dst, st, instr)
    dst[...] = _rng.rng(st.state, dst.shape, dst.dtype)
    return dst


@_o.quiet
def rand2(dst: np.ndarray, min: Any, max: Any, *, state: Any) -> np.ndarray:  # noqa: A002 - NKI's names
    """Uniform values in ``[min, max]`` (fp32 scalars or [P, 1]) from the Vector generators, rounded once to dst.

    >>> import numpy as np
    >>> v = rand2(np.empty((2, 100), np.float32), -1.0, 1.0, state=EngineRNG("vector"))
    >>> bool((v >= -1).all() and (v <= 1).all())
    True
    """
    instr = "rand2"
    check_dst(dst, instr)
    st = _state(state, None, instr, ("vector",))
    _rows(dst, st, instr)
    lo = _o.per_partition(min, dst.shape[0], 2, "min", instr)
    hi = _o.per_partition(max, dst.shape[0], 2, "max", instr)
    if not np.all(lo < hi):
        raise EmulatorError(f"{instr}: min must be < max in every partition (min {min!r}, max {max!r})")
    rows = dst.shape[0]
    val = _rng.rand2(st.state, dst.shape, np.broadcast_to(lo, (rows, 1)), np.broadcast_to(hi, (rows, 1)), np.float32)
    return write(dst, val, instr)  # rand2's fp32 values, rounded once into dst


@_o.quiet
def dropout(dst: np.ndarray, data: Any, prob: Any, *, state: Any) -> np.ndarray:
    """``dst = data`` with each element replaced by 0 with probability ``prob`` (scalar or [P, 1]; no rescaling).
    dst's dtype must equal data's.

    >>> import numpy as np
    >>> out = dropout(np.empty((1, 4), np.float32), np.ones((1, 4), np.float32), 1.0, state=EngineRNG("vector"))
    >>> out.tolist()
    [[0.0, 0.0, 0.0, 0.0]]
    """
    instr = "dropout"
    check_dst(dst, instr)
    st = _state(state, None, instr, ("vector",))
    x = _o.like(data, dst, "data", instr)
    if x.dtype != dst.dtype:
        raise DtypeError(f"{instr}: dst dtype {dst.dtype} must equal data dtype {x.dtype}")
    _rows(dst, st, instr)
    p = _o.per_partition(prob, dst.shape[0], 2, "prob", instr)
    dst[...] = _rng.dropout(st.state, np.ascontiguousarray(x), np.broadcast_to(p, (dst.shape[0], 1)))
    return dst


@_o.quiet
def set_rng_seed(src_seeds: Any, *, state: Any) -> None:
    """Seed the Vector Engine's generators from one 32-bit value (a [1, 1] tile), per ``rng_seed_expansion``."""
    instr = "set_rng_seed"
    st = _state(state, None, instr, ("vector",))
    arr = np.asarray(src_seeds)
    if arr.size != 1 or arr.dtype.itemsize != 4 or arr.dtype.kind not in "iuf":
        raise DtypeError(f"{instr}: src_seeds must be a [1, 1] tile of a 32-bit dtype, got {arr.shape} {arr.dtype}")
    seed = int(arr.reshape(-1).view(np.uint32)[0])
    st.state[...] = _rng.set_rng_seed(seed, st.lanes, "vector")


@_o.quiet
def rand_set_state(src_seeds: Any, engine: Any = "gpsimd", *, state: Any) -> None:
    """Load lane p's XORWOW state from partition p of a uint32 tile: [P, 6] (GpSimd) or [P, 24] (Vector).
    Lanes beyond P keep their state."""
    instr = "rand_set_state"
    st = _state(state, engine, instr, ("gpsimd", "vector"))
    arr = _o.tile(src_seeds, "src_seeds", instr)
    if arr.dtype != np.uint32:
        raise DtypeError(f"{instr}: src_seeds must be uint32, got {arr.dtype}")
    flat = arr.reshape(arr.shape[0], -1)
    if flat.shape[1] != st.words_per_lane or flat.shape[0] > st.lanes:
        raise ShapeError(f"{instr}: src_seeds has shape {arr.shape}; the {st.engine} engine takes [P <= {st.lanes}, "
                         f"{st.words_per_lane}] uint32")
    st.state.reshape(st.lanes, -1)[: flat.shape[0]] = flat


@_o.quiet
def rand_get_state(dst: np.ndarray, engine: Any = "gpsimd", *, state: Any) -> np.ndarray:
    """Store lane p's XORWOW state into partition p of uint32 ``dst`` ([P, 6] GpSimd, [P, 24] Vector)."""
    instr = "rand_get_state"
    check_dst(dst, instr)
    st = _state(state, engine, instr, ("gpsimd", "vector"))
    if dst.dtype != np.uint32 or dst[0].size != st.words_per_lane or dst.shape[0] > st.lanes:
        raise ShapeError(f"{instr}: dst is {dst.shape} {dst.dtype}; the {st.engine} engine writes [P <= {st.lanes}, "
                         f"{st.words_per_lane}] uint32")
    dst[...] = st.state.reshape(st.lanes, -1)[: dst.shape[0]].reshape(dst.shape)
    return dst


INSTRUCTIONS: dict[str, Instruction] = {
    "rng": Instruction(rng, ("vector", "gpsimd"), (), ("dst",), "rng"),
    "rand2": Instruction(rand2, ("vector",), ("min", "max"), ("dst",), "rng"),
    "dropout": Instruction(dropout, ("vector",), ("data", "prob"), ("dst",), "rng"),
    "set_rng_seed": Instruction(set_rng_seed, ("vector",), ("src_seeds",), (), "rng"),
    "rand_set_state": Instruction(rand_set_state, ("gpsimd", "vector"), ("src_seeds",), (), "rng"),
    "rand_get_state": Instruction(rand_get_state, ("gpsimd", "vector"), (), ("dst",), "rng"),
}
