"""The XORWOW generators of the NKI RNG: engine state arrays, seeding, save/restore and raw 32-bit words.

The instructions that turn words into values (``rand2``, ``dropout``, ``nl.rand``) are in
:mod:`emulator.numerics.rng`, which re-exports everything here; this part imports no cast, so stochastic rounding's
``xorwow`` bit source can use it. The rules (word order, interleave, seed expansion) are documented in
:mod:`emulator.numerics.rng`.

>>> state = set_rng_seed(7, lanes=2, engine="gpsimd")
>>> rng(state, (2, 3)).shape
(2, 3)
"""

from __future__ import annotations

import numpy as np

from ..config import get_settings
from ..errors import ArgumentError, ArgumentTypeError, DtypeError, ShapeError
from ._rng_kernels import WEYL_STEP, xorwow_fill
from .keyed import keyed_bits, site_id

__all__ = [
    "ENGINES", "GENERATORS_PER_LANE", "MARSAGLIA_SEED", "WEYL_STEP", "xorwow_next", "set_rng_seed", "rand_set_state",
    "rand_get_state", "rng", "draw_words", "INT_DTYPES",
]

ENGINES = ("gpsimd", "vector")
#: XORWOW generators per lane (partition) of each engine.
GENERATORS_PER_LANE = {"gpsimd": 1, "vector": 4}
#: Marsaglia's example initial state (x, y, z, w, v, d) from "Xorshift RNGs" (2003).
MARSAGLIA_SEED = (123456789, 362436069, 521288629, 88675123, 5783321, 6615241)
INT_DTYPES = tuple(np.dtype(t) for t in (np.int8, np.int16, np.int32, np.uint8, np.uint16, np.uint32))


def _order() -> np.ndarray:
    """Positions of (x, y, z, w, v, d) in a generator's 6 words, from the ``rng_word_order`` setting."""
    if get_settings().rng_word_order == "dxyzwv":
        return np.array([1, 2, 3, 4, 5, 0], np.int64)
    return np.arange(6, dtype=np.int64)


def _engine(engine: str) -> str:
    if engine not in ENGINES:
        raise ArgumentError(f"engine: {engine!r} is not one of {', '.join(map(repr, ENGINES))}")
    return engine


def _as_state(state, who: str) -> tuple[np.ndarray, str]:
    """``state`` as a [lanes, G, 6] uint32 view (written in place) and its engine."""
    if not isinstance(state, np.ndarray):
        raise ArgumentTypeError(f"{who}: state must be a NumPy uint32 array ([lanes, 6] or [lanes, 4, 6]), got "
                        f"{type(state).__name__}")
    if state.dtype != np.uint32:
        raise DtypeError(f"{who}: state must be uint32, got {state.dtype}")
    if not (state.flags.c_contiguous and state.flags.writeable):
        raise ArgumentError(f"{who}: state must be a writeable C-contiguous array (it is advanced in place)")
    if state.ndim == 2 and state.shape[1] == 6:
        return state.reshape(state.shape[0], 1, 6), "gpsimd"
    if state.ndim == 3 and state.shape[1:] == (4, 6):
        return state, "vector"
    raise ShapeError(f"{who}: state has shape {state.shape}; GpSimd state is [lanes, 6], Vector state [lanes, 4, 6]")


def xorwow_next(state: np.ndarray) -> np.ndarray:
    """Advance every generator of ``state`` by one XORWOW step (in place); return their outputs.

    >>> import numpy as np
    >>> s = np.array([MARSAGLIA_SEED], np.uint32)  # one generator in (x, y, z, w, v, d) order
    >>> int(xorwow_next(s)[0])
    246875399
    """
    st, _ = _as_state(state, "xorwow_next")
    flat = st.reshape(-1, 1, 6)
    out = np.empty((flat.shape[0], 1), np.uint32)
    xorwow_fill(flat, _order(), out, False)
    return out.reshape(state.shape[:-1])


def _curand_init(seed: int) -> list[int]:
    """cuRAND's ``curand_init(seed, 0, 0)`` XORWOW state as (x, y, z, w, v, d)."""
    m = 0xFFFFFFFF
    t0 = (1099087573 * ((seed & m) ^ 0xAAD26B49)) & m
    t1 = (2591861531 * (((seed >> 32) & m) ^ 0xF7DCEFDD)) & m
    return [(123456789 + t0) & m, 362436069 ^ t0, (521288629 + t1) & m, 88675123 ^ t1, (5783321 + t0) & m,
            (6615241 + t1 + t0) & m]


def set_rng_seed(seed: int, lanes: int = 128, engine: str = "vector") -> np.ndarray:
    """A fresh state for ``lanes`` lanes of ``engine``, expanded from one 32-bit ``seed`` (taken mod 2^32).

    The expansion is the ``rng_seed_expansion`` setting (module docstring). Returns ``[lanes, 6]`` (GpSimd) or
    ``[lanes, 4, 6]`` (Vector) uint32, words in ``rng_word_order``.

    >>> set_rng_seed(1, lanes=128).shape
    (128, 4, 6)
    """
    engine = _engine(engine)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ArgumentTypeError(f"set_rng_seed: seed must be an integer, got {seed!r}")
    if isinstance(lanes, bool) or not isinstance(lanes, (int, np.integer)) or lanes < 1:
        raise ArgumentError(f"set_rng_seed: lanes must be a positive integer, got {lanes!r}")
    seed = int(seed) & 0xFFFFFFFF
    gens = GENERATORS_PER_LANE[engine]
    count = int(lanes) * gens
    if get_settings().rng_seed_expansion == "keyed":
        words = keyed_bits(seed, site_id("set_rng_seed"), 6 * count, 32).reshape(count, 6)
        dead = ~words[:, :5].any(axis=1)  # an all-zero xorshift part would stay zero forever
        words[dead, 0] = 1
    else:
        base = np.array(_curand_init(seed), np.uint64)
        offs = np.arange(count, dtype=np.uint64)[:, None] * np.uint64(0x9E3779)
        words = ((base[None, :] + offs) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    state = np.empty((count, 6), np.uint32)
    state[:, _order()] = words
    return state.reshape((int(lanes), 6) if gens == 1 else (int(lanes), gens, 6))


def rand_set_state(src, engine: str = "gpsimd") -> np.ndarray:
    """The state an engine holds after ``rand_set_state`` from the uint32 tile ``src``.

    ``src`` is ``[P, 6]`` for GpSimd or ``[P, 24]`` for Vector (partition p seeds lane p); returns a copy shaped as
    the engine's state (``[P, 6]`` or ``[P, 4, 6]``).
    """
    engine = _engine(engine)
    arr = np.asarray(src)
    if arr.dtype != np.uint32:
        raise DtypeError(f"rand_set_state: src must be uint32, got {arr.dtype}")
    width = 6 * GENERATORS_PER_LANE[engine]
    if arr.ndim != 2 or arr.shape[1] != width:
        raise ShapeError(f"rand_set_state: src has shape {arr.shape}; {engine} takes [P, {width}] uint32 "
                         f"({GENERATORS_PER_LANE[engine]} x 6 words per lane)")
    out = np.array(arr, dtype=np.uint32, order="C", copy=True)
    return out if engine == "gpsimd" else out.reshape(arr.shape[0], 4, 6)


def rand_get_state(state: np.ndarray) -> np.ndarray:
    """The ``[P, 6]`` (GpSimd) or ``[P, 24]`` (Vector) uint32 tile ``rand_get_state`` writes (a copy)."""
    st, _ = _as_state(state, "rand_get_state")
    return st.reshape(st.shape[0], -1).copy()


def draw_words(state, shape, who: str, vector_only: bool = False) -> tuple[np.ndarray, tuple]:
    """One uint32 per element of ``shape`` ([P, ...], P <= lanes), lane p filling partition p row-major."""
    st, engine = _as_state(state, who)
    if vector_only and engine != "vector":
        raise ArgumentError(f"{who}: runs on the Vector engine only; pass a Vector state [lanes, 4, 6]")
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    if len(shape) == 0 or any(s < 0 for s in shape):
        raise ShapeError(f"{who}: shape {shape} must be [P, ...] with non-negative sizes")
    rows = shape[0]
    if rows > st.shape[0]:
        raise ShapeError(f"{who}: {rows} partitions but the state has {st.shape[0]} lanes (one generator set per "
                         "partition)")
    cols = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    out = np.empty((rows, cols), np.uint32)
    blocked = engine == "vector" and get_settings().rng_vector_interleave == "blocked"
    xorwow_fill(st, _order(), out, blocked)
    return out, shape


def rng(state: np.ndarray, shape, dtype=np.uint32) -> np.ndarray:
    """``nki.isa.rng``: 32 random bits per element; narrower integer dtypes keep the least significant bits.

    >>> s = set_rng_seed(3, lanes=4, engine="gpsimd")
    >>> rng(s, (4, 8), np.uint8).dtype
    dtype('uint8')
    """
    dt = np.dtype(dtype)
    if dt not in INT_DTYPES:
        raise DtypeError(f"rng: dtype must be one of int8/16/32, uint8/16/32, got {dt}")
    words, shape = draw_words(state, shape, "rng")
    return words.astype(dt).reshape(shape)  # integer narrowing keeps the low bits
