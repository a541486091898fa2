"""The NKI random number generators (``nki.isa.rng``, ``rand2``, ``dropout``, ``rand_set_state``/``rand_get_state``,
``set_rng_seed``; ``nki.language.rand``/``random_seed``) on plain NumPy state arrays.

What AWS documents (reference section 4.5): each lane (partition) of an engine is an independent XORWOW generator
with 6 uint32 words of state; GpSimd has one generator per lane (``[lanes, 6]``), the NC-v4 Vector engine four
(``[lanes, 4, 6]``, 24 words, 4 values per lane per cycle). ``rng`` gives 32 random bits per element (narrow integer
types keep the low bits); ``rand2`` (v4 Vector) gives uniform fp32 in ``[min, max]``; ``dropout`` zeroes elements
with probability ``prob`` (no rescaling). Everything else is a declared setting (``docs/numerics.md``):

* ``rng_word_order``: the word order of a state tile (default x, y, z, w, v, d: Marsaglia's five xorshift words, then
  the Weyl counter). One XORWOW step (Marsaglia 2003; cuRAND's ``curand()``)::

      t = x ^ (x >> 2); x, y, z, w = y, z, w, v; v = (v ^ (v << 4)) ^ (t ^ (t << 1)); d += 362437; out = v + d

* ``rng_vector_interleave``: which of a lane's 4 Vector generators makes which element (default round robin).
  Each lane fills its partition's elements in row-major order.
* ``rand_mapping``: uint32 -> [0, 1) (default ``(u >> 8) * 2^-24``), then ``min + unit * (max - min)`` in fp32
  (each operation rounded), clamped to ``max``.
* ``dropout_rule``: default drop iff ``u < round(prob * 2^32)``; dropout and rand2 draw from the Vector generators.
* ``rng_seed_expansion``: how one 32-bit seed fills every generator (default: the keyed stream of
  :mod:`emulator.numerics.stochastic`, ``word j of generator i = keyed_bits(seed, site_id("set_rng_seed"),
  6 * i + j, 32)`` with ``i = lane * G + g``).

The functions take the state array and advance it **in place** (like the engine's internal state). Bit-exactness
with the hardware's stream is not possible from the documentation; determinism and the documented statistics are.

>>> import numpy as np
>>> from emulator.numerics import rng
>>> state = rng.set_rng_seed(7, lanes=2, engine="gpsimd")
>>> saved = rng.rand_get_state(state)
>>> a = rng.rng(state, (2, 3))
>>> b = rng.rng(rng.rand_set_state(saved), (2, 3))  # restoring the state replays the stream
>>> bool((a == b).all())
True
"""

from __future__ import annotations

import numpy as np

from ..config import get_settings
from ..errors import ArgumentError, ArgumentTypeError, DtypeError, ShapeError
from . import formats as _formats
from ._rng_kernels import WEYL_STEP, xorwow_fill

__all__ = [
    "ENGINES", "GENERATORS_PER_LANE", "MARSAGLIA_SEED", "WEYL_STEP", "xorwow_next", "set_rng_seed", "rand_set_state",
    "rand_get_state", "rng", "rand2", "dropout", "unit_float", "random_seed", "rand", "engine_state",
]

ENGINES = ("gpsimd", "vector")
#: XORWOW generators per lane (partition) of each engine.
GENERATORS_PER_LANE = {"gpsimd": 1, "vector": 4}
#: Marsaglia's example initial state (x, y, z, w, v, d) from "Xorshift RNGs" (2003).
MARSAGLIA_SEED = (123456789, 362436069, 521288629, 88675123, 5783321, 6615241)
_INT_DTYPES = tuple(np.dtype(t) for t in (np.int8, np.int16, np.int32, np.uint8, np.uint16, np.uint32))


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
    from .stochastic import keyed_bits, site_id

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


def _words(state, shape, who: str, vector_only: bool = False) -> tuple[np.ndarray, tuple]:
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
    if dt not in _INT_DTYPES:
        raise DtypeError(f"rng: dtype must be one of int8/16/32, uint8/16/32, got {dt}")
    words, shape = _words(state, shape, "rng")
    return words.astype(dt).reshape(shape)  # integer narrowing keeps the low bits


def unit_float(u: np.ndarray, mapping: str | None = None) -> np.ndarray:
    """uint32 words -> float32 in [0, 1) (``mul32`` can give 1.0) by the ``rand_mapping`` rule.

    >>> unit_float(np.array([0, 0xFFFFFFFF], np.uint32)).tolist()
    [0.0, 0.9999999403953552]
    """
    mapping = get_settings().rand_mapping if mapping is None else mapping
    u = np.asarray(u, np.uint32)
    if mapping == "mul24":
        return (u >> np.uint32(8)).astype(np.float32) * np.float32(2.0 ** -24)
    if mapping == "mul32":
        return (u.astype(np.float64) * 2.0 ** -32).astype(np.float32)
    if mapping == "mantissa23":
        return (np.uint32(0x3F800000) | (u >> np.uint32(9))).view(np.float32) - np.float32(1.0)
    raise ArgumentError(f"unit_float: mapping {mapping!r} is not one of 'mul24', 'mul32', 'mantissa23'")


def _per_partition(value, rows: int, name: str, who: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim == 0:
        return np.full((rows, 1), arr, np.float32)
    if arr.shape != (rows, 1):
        raise ShapeError(f"{who}: {name} must be a scalar or [P, 1] = [{rows}, 1], got shape {arr.shape}")
    return arr


def _write(values: np.ndarray, dtype, who: str) -> np.ndarray:
    """fp32 engine result written as ``dtype`` (a format name/dtype, or an integer dtype)."""
    from .cast import cast, rounding_for
    from .stochastic import site_id

    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is not None and dt in _INT_DTYPES:
        info = np.iinfo(dt)  # float -> int: round to nearest even, saturate (undocumented on hardware)
        return np.clip(np.rint(values.astype(np.float64)), info.min, info.max).astype(dt)
    fmt = _formats.get(dtype)
    if fmt.name == "float32":
        return values.astype(np.float32)
    codes = cast(values, fmt, rounding=rounding_for("engine"), site=site_id(who))
    if fmt.ml_dtype is None:  # tfloat32: fp32 container
        return codes.view(np.float32)
    return codes.view(fmt.ml_dtype)


def rand2(state: np.ndarray, shape, min=0.0, max=1.0, dtype=np.float32) -> np.ndarray:  # noqa: A002
    """``nki.isa.rand2`` (v4 Vector): uniform values in ``[min, max]`` from the Vector generators.

    ``min``/``max`` are fp32 scalars or ``[P, 1]`` arrays with ``min < max``. The fp32 value is
    ``min + unit * (max - min)`` in fp32 (``unit`` from :func:`unit_float`), clamped to ``max``, then written as
    ``dtype`` (fp8/fp16/bf16/tf32 by the engine cast; integer dtypes round to nearest even and saturate).

    >>> s = set_rng_seed(0, lanes=2)
    >>> v = rand2(s, (2, 1000), -1.0, 1.0)
    >>> bool((v >= -1).all() and (v <= 1).all())
    True
    """
    words, shape = _words(state, shape, "rand2", vector_only=True)
    lo = _per_partition(min, shape[0], "min", "rand2")
    hi = _per_partition(max, shape[0], "max", "rand2")
    if not np.all(lo < hi):
        raise ArgumentError(f"rand2: min must be < max in every partition (got min {lo.ravel()[:4]}, max "
                         f"{hi.ravel()[:4]})")
    span = hi - lo
    val = np.minimum(lo + unit_float(words) * span, hi)
    return _write(val.astype(np.float32), dtype, "rand2").reshape(shape)


def dropout(state: np.ndarray, data, prob) -> np.ndarray:
    """``nki.isa.dropout`` (Vector): each element of ``data`` ([P, ...]) becomes 0 with probability ``prob``.

    ``prob`` (the *drop* probability, 0..1) is a scalar or ``[P, 1]``. Kept elements are unchanged (no
    1/(1 - prob) rescaling, as documented); dropped ones are +0 of ``data``'s dtype. The drop test is the
    ``dropout_rule`` setting; one Vector generator word per element.

    >>> s = set_rng_seed(0, lanes=1)
    >>> kept = dropout(s, np.ones((1, 10000), np.float32), 0.25)
    >>> bool(0.73 < kept.mean() < 0.77)
    True
    """
    arr = np.asarray(data)
    if arr.ndim == 0:
        raise ShapeError("dropout: data must be a tile [P, ...], got a scalar")
    words, shape = _words(state, arr.shape, "dropout", vector_only=True)
    p = _per_partition(prob, shape[0], "prob", "dropout")
    if not np.all((p >= 0) & (p <= 1)):
        raise ArgumentError(f"dropout: prob must lie in [0, 1], got values in [{p.min()}, {p.max()}]")
    if get_settings().dropout_rule == "u32_lt":
        threshold = np.rint(p.astype(np.float64) * 2.0 ** 32)
        drop = words.astype(np.float64) < threshold
    else:
        drop = unit_float(words) < p
    out = np.array(arr, copy=True)
    out.reshape(shape[0], -1)[drop] = np.zeros((), arr.dtype)
    return out


# ----------------------------------------------------------------------------------------------------------------
# nki.language style: the generators live "inside the engine" (process-wide), as on the device
# ----------------------------------------------------------------------------------------------------------------

_LANES = 128
_engine_states: dict[str, np.ndarray] = {}


def engine_state(engine: str = "vector") -> np.ndarray:
    """The live state of ``engine``'s generators (128 lanes; seeded with 0 until :func:`random_seed`)."""
    engine = _engine(engine)
    if engine not in _engine_states:
        _engine_states[engine] = set_rng_seed(0, _LANES, engine)
    return _engine_states[engine]


def random_seed(seed: int) -> None:
    """``nl.random_seed``: re-seed the Vector engine's generators (``set_rng_seed`` expansion, 128 lanes)."""
    _engine_states["vector"] = set_rng_seed(seed, _LANES, "vector")


def rand(shape, dtype=np.float32) -> np.ndarray:
    """``nl.rand``: uniform values in [0, 1) of ``shape`` ([P, ...], P <= 128); on trn3 it is ``rand2(0, 1)``.

    With the default ``mul24`` mapping the fp32 values lie in [0, 1 - 2^-24]; a narrower ``dtype`` can round the
    largest up to 1.0.

    >>> random_seed(5); a = rand((2, 4)); random_seed(5)
    >>> bool((rand((2, 4)) == a).all())
    True
    """
    return rand2(engine_state("vector"), shape, 0.0, 1.0, dtype)
