"""The one conversion every write into memory goes through: values -> the destination dtype, under the settings.

Float destinations (float32, bfloat16, float16, fp8, e8m0) are rounded by :func:`emulator.numerics.cast.cast` with
``rounding_for(path)``, so ``saturate``, ``rounding="sr"`` and ``sr_scope`` apply to every write path
(``engine``, ``dma``, ``psum``, ``mx``). Same-dtype writes copy the bits. Integer destinations take integers as they
are (wrapping to the width, as a register store does) and floats by rounding to nearest even and clamping to the
integer range (NaN -> 0): the hardware rule is undocumented (reference section 2.3); this choice is the setting-free
default the Vector helper's fp32->int path shares.

>>> import numpy as np, ml_dtypes, emulator as emu
>>> from emulator.engines.store import convert
>>> convert(np.float32([500.0]), ml_dtypes.float8_e4m3fn).astype(np.float32)
array([nan], dtype=float32)
>>> with emu.settings(saturate=True):
...     convert(np.float32([500.0]), ml_dtypes.float8_e4m3fn).astype(np.float32)
array([448.], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from ..errors import DtypeError
from ..numerics import formats as _formats
from ..numerics.cast import cast, rounding_for

__all__ = ["convert", "float_format", "to_int"]

_FMT_CACHE: dict = {}


def float_format(dtype: np.dtype):
    """The emulator :class:`Format` stored in arrays of ``dtype``, or None for integer/bool dtypes."""
    try:
        return _FMT_CACHE[dtype]
    except KeyError:
        pass
    fmt = None
    if dtype.kind in "fV":
        try:
            fmt = _formats.get(dtype)
        except (TypeError, ValueError):
            raise DtypeError(f"store: dtype {dtype} is not a format the emulator knows") from None
    _FMT_CACHE[dtype] = fmt
    return fmt


def to_int(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float values -> ``dtype`` integers: round to nearest even, clamp to the range, NaN -> 0."""
    info = np.iinfo(dtype)
    with np.errstate(invalid="ignore"):
        v = np.rint(np.asarray(values, np.float64))
        v = np.where(np.isnan(v), 0.0, np.clip(v, info.min, info.max))
    return v.astype(dtype)


def convert(values, dtype, path: str = "engine", site: int = 0) -> np.ndarray:
    """``values`` as an array of ``dtype``, rounded once per the settings for write path ``path``.

    ``site`` keys the stochastic-rounding stream (the core passes its SR site counter)."""
    arr = np.asarray(values)
    dtype = np.dtype(dtype)
    if arr.dtype.names is not None and arr.dtype.itemsize in (2, 4):
        # NKI x4 dtypes: structured dtypes over a packed word, stored as the words (not as numbers)
        arr = arr.view(np.dtype(f"u{arr.dtype.itemsize}"))
    if arr.dtype == dtype:
        return arr
    fmt = float_format(dtype)
    if fmt is None:  # integer or bool destination
        if dtype == np.bool_:
            return arr != 0
        if arr.dtype.kind in "biu":
            return arr.astype(dtype)  # wraps to the width
        return to_int(_as_float(arr), dtype)
    src = _as_float(arr)
    if fmt.name == "float32" and src.dtype == np.float32:
        return src
    codes = cast(src, fmt, rounding=rounding_for(path), site=site)
    return codes.view(dtype) if fmt.storage_bits == dtype.itemsize * 8 else codes.astype(dtype)


def _as_float(arr: np.ndarray) -> np.ndarray:
    kind = arr.dtype.kind
    if kind in "biu":
        return arr.astype(np.float64)  # exact up to 2^53; one rounding to the destination
    if kind == "f" and arr.dtype.itemsize < 4:
        return arr.astype(np.float32)
    if kind == "V":
        return arr.astype(np.float32)  # ml_dtypes floats widen exactly
    return arr
