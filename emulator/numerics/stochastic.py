"""Stochastic rounding (SR), defined exactly, and the keyed counter-based random stream behind it.

Trainium rounds fp32 to narrower formats stochastically when the runtime sets ``NEURON_RT_STOCHASTIC_ROUNDING_EN=1``
(seed ``NEURON_RT_STOCHASTIC_ROUNDING_SEED``); AWS documents the behaviour ("round up or down with probability
proportional to the distance to the two neighbours") but not the random source or the number of random bits. The
emulator's definition (``docs/numerics.md``, "Stochastic rounding and random numbers"):

**Rounding.** For a finite ``x`` whose magnitude lies between two neighbouring representable magnitudes
``lo <= |x| < hi = lo + ulp``, write the dropped part ``(|x| - lo) / ulp`` as a ``d``-bit integer ``R`` (``d`` = the
bits the cast drops; exact for fp32 and for fp64 input), reduce it to ``n`` bits, ``F = floor(R * 2^n / 2^d)``, and
draw ``n`` random bits ``r``. The result is ``lo`` (the round-toward-zero code) when ``F + r < 2^n`` and ``hi`` (one
magnitude step up, sign kept) when ``F + r >= 2^n``. This is ``trunc_toward_zero(x + sign(x) * u * ulp)`` with
``u = r / 2^n``, gfloat's ``StochasticFastest`` and the "add random bits to the dropped tail, truncate" of
hardware. ``n = sr_bits``; ``sr_bits = 0`` means all dropped bits (up to 64), so ``P(hi) = (|x| - lo) / ulp`` exactly.
With fewer bits the fraction is truncated first (``P(hi) = F / 2^n``, slightly biased toward zero).

* Exactly representable values (including zeros) never change, whatever the random bits.
* The step past max finite overflows as the RNE cast does: inf (IEEE formats), NaN (e4m3fn, e8m0fnu), +-max
  (float4_e2m1fn, which saturates, and every format with ``saturate=True``). Values at or above
  ``max_finite + ulp(max_finite)`` always overflow. inf follows the same ``saturate`` rule; NaN stays NaN (the NaN
  codes of the RNE cast; for e2m1fn the ``fp4_nan`` policy).
* float8_e8m0fnu (powers of two, no zero): ``lo = 2^e``, ``hi = 2^(e+1)``, ``P(hi) = (x - 2^e) / 2^e``; values below
  2^-127 have no lower neighbour and become 2^-127; negatives are NaN as in every cast.
* float64 input is rounded once from its exact value (``R`` has up to 1075 bits; with ``n`` = 64 bits ``F`` keeps
  its top 64). Set ``wide_input="via_fp32"`` to round to fp32 first, as other tools do.

**Random bits: the keyed stream** (``sr_generator="keyed"``, the default). Element ``i`` (flat C-order index plus
``offset``, below 2^64) of a call with seed ``s`` and site ``t`` uses the top ``n`` bits of the 64-bit word
``word(key(s, t), i)`` defined in :mod:`emulator.numerics.keyed`: SplitMix64 (``mix64``) makes a key from
``(s, t)`` and one 64-bit block key per half word and per 2^32 elements; a three-round 32-bit multiply-xorshift hash of
``i mod 2^32`` under that block key gives each half. With ``n <= 32`` only the top half is made (one 32-bit hash
per element, 8 lanes per AVX2 instruction). The bits of element ``i`` depend on nothing else, so any chunking,
thread count or MPI split gives the same result; different seeds or sites give unrelated streams. Callers key their own
write paths with :func:`site_id` (e.g. ``site_id("collective", step, hop)``) and pass ``offset`` when they round
a slice of a larger logical array. :func:`keyed_bits` exposes the stream itself.

``sr_generator="xorwow"`` takes the bits instead from 128 per-lane XORWOW generators (the NKI RNG of
:mod:`emulator.numerics.rng`, seeded with ``seed``): lane ``p % 128`` draws one 32-bit word per element of
partition (axis-0 index) ``p`` in row-major order, and the generators keep their state across calls like a
hardware engine (``reset_xorwow_stream()`` restarts them); ``site`` and ``offset`` are ignored, ``n <= 32``.

>>> import numpy as np, emulator as emu
>>> codes = emu.cast(np.full(8, 1.0 + 2**-9, np.float32), "bfloat16", rounding="sr", seed=1)
>>> sorted(set(emu.decode(codes, "bfloat16").tolist()))  # each value rounds down (p=3/4) or up (p=1/4)
[1.0, 1.0078125]
"""

from __future__ import annotations

import numpy as np

from ..args import check_bool, check_out
from ..config import get_settings
from ..errors import ArgumentError, ArgumentTypeError, DtypeError, ShapeError
from . import formats as _formats
from . import xorwow
from ._cast_kernels import cast_params
from ._sr_kernels import sr_keyed, sr_with_bits
from .formats import Format
from .inputs import as_float_array
from .keyed import WORD_BITS, keyed_bits, mix64, site_id, stream_key

__all__ = [
    "cast_sr", "cast_sr_with_bits", "keyed_bits", "stream_key", "site_id", "mix64", "reset_xorwow_stream",
    "MAX_SR_BITS", "overflow_threshold",
]

#: The most random bits one rounding can use (the keyed stream's word size).
MAX_SR_BITS = WORD_BITS


# ----------------------------------------------------------------------------------------------------------------
# stochastic rounding
# ----------------------------------------------------------------------------------------------------------------

def _check_bits(name: str, value: int, limit: int, allow_zero: bool) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ArgumentTypeError(f"{name} must be an integer, got {value!r}")
    lo = 0 if allow_zero else 1
    if not lo <= int(value) <= limit:
        what = "0 (all dropped bits) or " if allow_zero else ""
        raise ArgumentError(f"{name} must be {what}1..{limit}, got {value}")
    return int(value)


def _input(x, who: str) -> np.ndarray:
    return np.ascontiguousarray(as_float_array(x, name=f"{who}: x"))


def overflow_threshold(fmt: Format, dtype: np.dtype) -> int:
    """Bit pattern (of the input's float type) of max_finite + ulp(max_finite), capped at +inf's pattern."""
    limit = fmt.max_finite + 2.0 ** (fmt.emax - fmt.mantissa_bits)  # exact in float64
    if dtype == np.float32:
        return 0x7F800000 if limit >= 2.0 ** 128 else int(np.float32(limit).view(np.uint32))
    return int(np.float64(limit).view(np.int64))


def _params(fmt: Format, saturate: bool) -> tuple:
    s = get_settings()
    return cast_params(fmt, saturate=saturate, rtz=True, fp4_nan=s.fp4_nan, e8m0_rounding=s.e8m0_rounding)


def cast_sr(x, fmt, *, saturate: bool | None = None, seed: int | None = None, sr_bits: int | None = None,
            site: int = 0, offset: int = 0, out: np.ndarray | None = None) -> np.ndarray:
    """Stochastically round ``x`` to format ``fmt``; returns the codes (``fmt.code_dtype``, same shape).

    ``emu.cast(x, fmt, rounding="sr", ...)`` calls this. The definition and the random stream are in the module
    docstring.

    Parameters
    ----------
    x : float32 or float64 array (other floats are widened exactly to float32).
    fmt : target format (every format; float32 only makes sense for float64 input).
    saturate : overflow clamps to +-max finite (default: the ``saturate`` setting).
    seed : stream seed (default: the ``seed`` setting).
    sr_bits : random bits per rounding, 1..64, or 0 = all dropped bits (default: the ``sr_bits`` setting).
    site : call-site id keying the stream (see :func:`site_id`); different sites give unrelated bits.
    offset : flat index of ``x``'s first element in the logical array it belongs to (for chunked callers).
    out : an array to write the codes into and return (as :func:`emulator.cast`'s ``out``).

    Examples
    --------
    >>> import numpy as np, emulator as emu
    >>> x = np.full(100000, 1.0 + 2**-9, np.float32)  # 1/4 of a bf16 ulp above 1.0
    >>> up = emu.decode(cast_sr(x, "bfloat16", seed=0), "bfloat16") > 1.0
    >>> bool(0.24 < up.mean() < 0.26)
    True
    """
    fmt = _formats.get(fmt)
    s = get_settings()
    saturate = s.saturate if saturate is None else check_bool("saturate", saturate, "cast_sr")
    seed = s.seed if seed is None else seed
    sr_bits = _check_bits("cast_sr: sr_bits", s.sr_bits if sr_bits is None else sr_bits, MAX_SR_BITS, True)
    for name, v in (("seed", seed), ("site", site), ("offset", offset)):
        if isinstance(v, (bool, float)) or not isinstance(v, (int, np.integer)):
            raise ArgumentTypeError(f"cast_sr: {name} must be an integer, got {v!r}")
    if offset < 0:
        raise ArgumentError(f"cast_sr: offset must be >= 0, got {offset}")
    arr = _input(x, "cast_sr")
    if int(offset) + arr.size > 1 << 64:
        raise ArgumentError(f"cast_sr: offset {offset} + {arr.size} elements passes the keyed stream's last element "
                            f"index 2^64 - 1")
    if out is not None:
        out = check_out(out, arr.shape, np.dtype(fmt.code_dtype), arr, "cast_sr")
    if s.sr_generator == "xorwow":
        n = _check_bits("cast_sr: sr_bits (xorwow source, 32-bit words)", sr_bits, 32, True) or 32
        words = _xorwow_words(arr.shape, int(seed))
        codes = cast_sr_with_bits(arr, fmt, words >> np.uint32(32 - n), n, saturate=saturate)
        if out is None:
            return codes
        out[...] = codes
        return out
    if out is None:
        out = np.empty(arr.shape, fmt.code_dtype)
    minnorm = max((fmt.emin + 127) << 23, 0)
    sr_keyed(arr, out, stream_key(int(seed), int(site)), int(offset), sr_bits, _params(fmt, saturate),
             overflow_threshold(fmt, arr.dtype), minnorm)
    return out


def cast_sr_with_bits(x, fmt, random_bits, nbits: int, *, saturate: bool | None = None) -> np.ndarray:
    """Stochastic rounding with caller-supplied random bits (the gfloat ``srbits``/``srnumbits`` interface).

    ``random_bits`` holds one integer in ``[0, 2^nbits)`` per element of ``x`` (same shape, or broadcastable to it);
    the value rounds up when ``F + random_bits >= 2^nbits`` (module docstring). Useful to enumerate every random
    value, or to drive SR from another generator.

    >>> import numpy as np, emulator as emu
    >>> x = np.full(8, 1.0 + 3 * 2**-10, np.float32)  # 3/8 of a bf16 ulp above 1.0
    >>> codes = cast_sr_with_bits(x, "bfloat16", np.arange(8), 3)
    >>> (emu.decode(codes, "bfloat16") > 1).tolist()  # up for r in {5, 6, 7}: 3 of 8
    [False, False, False, False, False, True, True, True]
    """
    fmt = _formats.get(fmt)
    nbits = _check_bits("cast_sr_with_bits: nbits", nbits, MAX_SR_BITS, False)
    saturate = get_settings().saturate if saturate is None else check_bool("saturate", saturate, "cast_sr_with_bits")
    arr = _input(x, "cast_sr_with_bits")
    rb = np.asarray(random_bits)
    if rb.dtype.kind not in "iu":
        raise DtypeError(f"cast_sr_with_bits: random_bits must be integers, got dtype {rb.dtype}")
    try:
        rb = np.broadcast_to(rb, arr.shape)
    except ValueError:
        raise ShapeError(f"cast_sr_with_bits: random_bits of shape {rb.shape} does not broadcast to x's shape "
                         f"{arr.shape}") from None
    if rb.size and (rb.min() < 0 or (nbits < 64 and int(rb.max()) >> nbits)):
        raise ArgumentError(f"cast_sr_with_bits: random_bits must lie in [0, 2^{nbits}); got values in "
                         f"[{int(rb.min())}, {int(rb.max())}]")
    rb = np.ascontiguousarray(rb, dtype=np.uint64)
    out = np.empty(arr.shape, fmt.code_dtype)
    sr_with_bits(arr, rb, out, nbits, _params(fmt, saturate), overflow_threshold(fmt, arr.dtype))
    return out


# ----------------------------------------------------------------------------------------------------------------
# the XORWOW source (sr_generator="xorwow")
# ----------------------------------------------------------------------------------------------------------------

_XORWOW_LANES = 128
_xorwow_streams: dict[int, np.ndarray] = {}


def reset_xorwow_stream() -> None:
    """Forget the state of the SR XORWOW generators: the next SR cast starts every seed's stream afresh."""
    _xorwow_streams.clear()


def _xorwow_words(shape: tuple, seed: int) -> np.ndarray:
    """One 32-bit word per element: partition p (axis 0) draws from lane p % 128, in row-major order."""
    state = _xorwow_streams.get(seed)
    if state is None:
        state = _xorwow_streams[seed] = xorwow.set_rng_seed(seed, lanes=_XORWOW_LANES, engine="gpsimd")
    rows = shape[0] if len(shape) else 1
    cols = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    words = np.empty((rows, cols), np.uint32)
    for start in range(0, rows, _XORWOW_LANES):
        stop = min(start + _XORWOW_LANES, rows)
        words[start:stop] = xorwow.rng(state[: stop - start], (stop - start, cols), np.uint32)
    return words.reshape(shape)
