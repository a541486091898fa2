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
from .cast import cast, rounding_for
from .keyed import site_id
from .xorwow import (
    INT_DTYPES, ENGINES, GENERATORS_PER_LANE, MARSAGLIA_SEED, WEYL_STEP, _engine, draw_words, rand_get_state,
    rand_set_state, rng, set_rng_seed, xorwow_next,
)

__all__ = [
    "ENGINES", "GENERATORS_PER_LANE", "MARSAGLIA_SEED", "WEYL_STEP", "xorwow_next", "set_rng_seed", "rand_set_state",
    "rand_get_state", "rng", "rand2", "dropout", "unit_float", "random_seed", "rand", "engine_state",
]

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
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is not None and dt in INT_DTYPES:
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
    words, shape = draw_words(state, shape, "rand2", vector_only=True)
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
    words, shape = draw_words(state, arr.shape, "dropout", vector_only=True)
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
