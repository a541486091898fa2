"""Bit-exact casts between float arrays and format codes.

* :func:`cast` rounds float32/float64 (or any narrower ml_dtypes/NumPy float) values to a format's codes;
* :func:`decode` turns codes back into their exact float32 values;
* :func:`round_to` is ``decode(cast(x))``;
* :func:`rounding_for` tells an emulator write path (engine output, PSUM, DMA, collective, MX) which rounding the
  settings give it.

Edge behaviour (defaults; each is a setting, see ``docs/numerics.md``):

* RNE, bit-identical to ``ml_dtypes`` ``astype`` for every fp32 input (NumPy's own cast for float16), including
  NaN, inf, signed zero, subnormals, ties and overflow; for e8m0fnu that holds with ml_dtypes >= 0.7 (0.6 sends
  every value strictly between 2^-127 and 2^-126 up to 2^-126: ``e8m0_rounding="ml_dtypes_0.6"``).
* e8m0fnu (``e8m0_rounding``): round to the nearest power of two, ties (1.5 * 2^k) up as ml_dtypes and torch do
  (``"nearest_up"``, the default); ``"nearest_even"`` sends them to the even code, as gfloat does.
* Overflow (``saturate=False``): +-inf where the format has inf; NaN for e4m3fn (>= 464) and e8m0fnu; e2m1fn
  clamps to +-6. ``saturate=True`` clamps finite overflow and inf to +-max finite; NaN stays NaN.
* NaN: the canonical quiet NaN with the input's sign (fp16 and tf32 keep the payload's top bits, as NumPy does for
  fp16). e2m1fn has no NaN: ``fp4_nan`` decides (ml_dtypes default: +NaN -> -0, -NaN -> +0).
* float64 input is rounded once from its exact value (``wide_input="exact"``, as ml_dtypes >= 0.7 does);
  ``"via_fp32"`` rounds to fp32 first, as ml_dtypes <= 0.6 and torch do.
* RTZ never rounds up; finite overflow becomes +-max finite, inf stays inf.
"""

from __future__ import annotations

import numpy as np

from ..args import check_bool, check_choice, check_int, check_out, check_seed
from ..config import MAX_SR_BITS, SR_PATHS, get_settings
from ..errors import ArgumentError, DtypeError
from . import formats as _formats
from . import stochastic
from ._cast_kernels import cast_params, decode8, encode_array
from .decode import decode_table
from .formats import Format
from .inputs import as_float_array

__all__ = ["cast", "decode", "round_to", "rounding_for", "ROUNDINGS", "as_float_array"]

ROUNDINGS = ("rne", "rtz", "sr")


def _resolve(rounding: str | None, saturate: bool | None, where: str = "cast"):
    s = get_settings()
    rounding = s.rounding if rounding is None else check_choice("rounding", rounding, ROUNDINGS, where)
    return s, rounding, s.saturate if saturate is None else check_bool("saturate", saturate, where)


def cast(x, fmt, rounding: str | None = None, saturate: bool | None = None, seed: int | None = None,
         sr_bits: int | None = None, site: int = 0, out: np.ndarray | None = None) -> np.ndarray:
    """Round ``x`` to format ``fmt`` and return the codes (``fmt.code_dtype``, same shape as ``x``).

    Parameters
    ----------
    x : array_like of float32/float64, float16 or an ml_dtypes float.
    fmt : format name, alias, dtype or :class:`Format`.
    rounding : ``"rne"``, ``"rtz"`` or ``"sr"`` (default: the ``rounding`` setting, ``"rne"`` unless changed).
    saturate : clamp overflow to +-max finite (default: the ``saturate`` setting, False).
    seed, sr_bits, site : stochastic rounding only: stream seed (default: setting ``seed``), random bits per
        rounding (0 = all dropped bits; default: setting ``sr_bits``) and a call-site id that keys the stream.
    out : an array to write the codes into (``fmt.code_dtype``, ``x``'s shape, C-contiguous, not overlapping ``x``)
        and return; reusing one saves a fresh allocation per call (above 32 MB, fresh pages from the OS).

    Examples
    --------
    >>> import numpy as np, emulator as emu
    >>> emu.cast(np.array([1.0, 464.0, 465.0, -0.0], np.float32), "float8_e4m3fn")
    array([ 56, 126, 127, 128], dtype=uint8)
    >>> emu.cast(np.float32(465.0), "float8_e4m3fn", saturate=True)
    array(126, dtype=uint8)
    """
    fmt = _formats.get(fmt, name="cast: fmt")
    s, rounding, saturate = _resolve(rounding, saturate)
    # checked whatever the rounding, so a bad value is never silently ignored
    seed = s.seed if seed is None else check_seed("seed", seed, "cast")
    sr_bits = s.sr_bits if sr_bits is None else check_int("sr_bits", sr_bits, "cast", 0, MAX_SR_BITS)
    site = check_int("site", site, "cast")
    arr = as_float_array(x)
    if arr.dtype == np.float64 and s.wide_input == "via_fp32":
        with np.errstate(over="ignore", invalid="ignore"):  # past fp32's range is +-inf; NaN stays NaN
            arr = arr.astype(np.float32)
    if not arr.flags.c_contiguous:  # (np.ascontiguousarray would turn a 0-d array into 1-d)
        arr = arr.copy(order="C")
    if not fmt.has_nan and s.fp4_nan == "raise" and np.isnan(arr).any():
        first = tuple(int(i) for i in np.argwhere(np.isnan(arr))[0])
        raise ArgumentError(f"cast: x holds NaN at index {first}; {fmt.name} has no NaN code (setting fp4_nan='raise')")
    if out is not None:
        out = check_out(out, arr.shape, np.dtype(fmt.code_dtype), arr, "cast")
    if rounding == "sr":
        return stochastic.cast_sr(
            arr, fmt, saturate=saturate, seed=seed, sr_bits=sr_bits, site=site, out=out,
        )
    if out is None:
        out = np.empty(arr.shape, fmt.code_dtype)
    params = cast_params(fmt, saturate=saturate, rtz=rounding == "rtz", fp4_nan=s.fp4_nan,
                         e8m0_rounding=s.e8m0_rounding)
    encode_array(arr, out, params)
    return out


def decode(codes, fmt, out: np.ndarray | None = None) -> np.ndarray:
    """The exact float32 value of each code of format ``fmt`` (same shape).

    ``codes`` must hold ``fmt.code_dtype`` integers (uint8 for 8-bit and fp4 formats, uint16 for bf16/fp16, uint32
    for fp32/tf32), or be an ml_dtypes array of that format (its bit patterns are read). NaN codes decode to a NaN
    of the code's sign; fp32 NaN payloads are kept. ``out``: a float32 array of the codes' shape to write the values
    into and return (C-contiguous, not overlapping ``codes``).

    >>> import numpy as np, emulator as emu
    >>> emu.decode(np.array([0x38, 0x7E, 0x7F, 0x80], np.uint8), "float8_e4m3fn")
    array([  1., 448.,  nan,  -0.], dtype=float32)
    """
    fmt = _formats.get(fmt)
    arr = np.asarray(codes)
    if fmt.ml_dtype is not None and arr.dtype == fmt.ml_dtype and fmt.ml_dtype != np.float32:
        arr = arr.view(fmt.code_dtype)
    if arr.dtype != fmt.code_dtype:
        raise DtypeError(f"decode: codes of {fmt.name} must be {fmt.code_dtype} (raw bit patterns), got {arr.dtype}")
    if out is not None:
        out = check_out(out, arr.shape, np.dtype(np.float32), arr, "decode")
    if fmt.storage_bits == 32:
        if fmt.pad_bits:
            low = arr & np.uint32((1 << fmt.pad_bits) - 1)
            if low.any():
                raise ArgumentError(f"decode: {fmt.name} codes must have their {fmt.pad_bits} low bits zero")
        return arr.view(np.float32).copy() if out is None else _into(out, arr.view(np.float32))
    if fmt.name in ("bfloat16", "float16"):  # direct widening beats the table gather
        values = decode_table(arr, fmt)
        return values if out is None else _into(out, values)
    if fmt.bits < fmt.storage_bits and (arr >> fmt.bits).any():
        bad = arr.reshape(-1)[np.argmax((arr >> fmt.bits).reshape(-1) != 0)]
        raise ArgumentError(f"decode: {fmt.name} codes are {fmt.bits}-bit; got code {int(bad)}")
    if out is None:
        out = np.empty(arr.shape, np.float32)
    decode8(fmt.value_table, np.ascontiguousarray(arr), out)
    return out


def _into(out: np.ndarray, values: np.ndarray) -> np.ndarray:
    out[...] = values
    return out


def round_to(x, fmt, **kwargs) -> np.ndarray:
    """``decode(cast(x, fmt, **kwargs), fmt)``: ``x`` rounded to ``fmt``, as exact float32 values.

    >>> import numpy as np, emulator as emu
    >>> emu.round_to(np.float32(1.0 + 2**-9), "bfloat16")
    array(1., dtype=float32)
    """
    fmt = _formats.get(fmt)
    return decode(cast(x, fmt, **kwargs), fmt)


def rounding_for(path: str) -> str:
    """The rounding an emulator write path uses under the current settings.

    ``path`` is one of ``engine``, ``psum``, ``dma``, ``collective``, ``mx``. The answer is the ``rounding``
    setting, except that ``sr`` only applies to the paths listed in ``sr_scope`` (others round to nearest even).
    """
    s = get_settings()
    if path not in SR_PATHS:
        raise ArgumentError(f"rounding_for: path {path!r} is not one of {', '.join(SR_PATHS)}")
    if s.rounding == "sr" and path not in {p.strip() for p in s.sr_scope.split(",")}:
        return "rne"
    return s.rounding
