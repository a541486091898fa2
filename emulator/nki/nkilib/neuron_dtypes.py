"""Stand-in for AWS's ``neuron_dtypes`` host package (also ``neuronxcc.starfish.support.dtype``), written for the
nki-library runner: dtype objects, :func:`static_cast`, :func:`is_float_type`, :func:`sizeinbytes`, :func:`finfo`.

Dtypes are the front end's own (``nl.bfloat16 is neuron_dtypes.bfloat16``, the x4 formats are the same tagged uint
words), so dicts keyed by either agree. :func:`static_cast` is a host-side conversion, not a device instruction:
it always rounds to nearest even (stochastic rounding never applies on the host) and saturates exactly when the
emulator's ``saturate`` setting says so (True in ``trn3emu nkilib`` runs; default False: overflow goes to inf, or NaN
for e4m3fn, as the format has). x4 targets pack four consecutive elements of the last axis into one word (element
4j+q in sub-element q), x4 sources unpack the same way.

>>> import numpy as np
>>> from emulator.nki.nkilib import neuron_dtypes as dt
>>> words = dt.static_cast(np.array([[1.0, 2.0, 0.5, -1.0]], np.float32), dt.float8_e4m3fn_x4)
>>> words.shape, dt.static_cast(words, np.float32).tolist()
((1, 1), [[1.0, 2.0, 0.5, -1.0]])
>>> dt.is_float_type(dt.bfloat16), dt.is_float_type(np.int32), dt.sizeinbytes(dt.float8_e4m3fn_x4)
(True, False, 4)
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

from ...errors import DtypeError
from ...numerics import cast as _cast
from ...numerics import formats as _formats
from ...numerics import packing as _packing
from .. import _dtypes

__all__ = ["static_cast", "is_float_type", "sizeinbytes", "finfo", "bfloat16", "float8_e4m3fn", "float8_e5m2",
           "float8_e4m3fn_x4", "float8_e5m2_x4", "float4_e2m1fn_x4", "float4_e2m1fn", "tfloat32"]

bfloat16 = _dtypes.DTYPES["bfloat16"]
float8_e4m3fn = _dtypes.DTYPES["float8_e4m3fn"]
float8_e5m2 = _dtypes.DTYPES["float8_e5m2"]
float4_e2m1fn = _dtypes.DTYPES["float4_e2m1fn"]
float8_e4m3fn_x4 = _dtypes.DTYPES["float8_e4m3fn_x4"]
float8_e5m2_x4 = _dtypes.DTYPES["float8_e5m2_x4"]
float4_e2m1fn_x4 = _dtypes.DTYPES["float4_e2m1fn_x4"]
tfloat32 = _dtypes.DTYPES["tfloat32"]


def _dtype(dtype) -> np.dtype:
    try:
        return _dtypes.as_dtype(dtype)
    except Exception:  # noqa: BLE001 - a plain NumPy/ml_dtypes dtype the front end does not name
        return np.dtype(dtype)


def _x4_fmt(dtype):
    return _formats.x4_element(_dtypes.nki_name(dtype)) if _dtypes.is_x4(dtype) else None


def _named_format(dtype):
    """The emulator number format of a float dtype that needs rounding (bf16, fp8, fp4), else None."""
    try:
        return _formats.get(np.dtype(dtype).name)
    except Exception:  # noqa: BLE001 - float32/float64/ints: NumPy's own conversion is exact or defined
        return None


def static_cast(array, dtype) -> np.ndarray:
    """``array`` converted to ``dtype`` (round to nearest even; saturation from the ``saturate`` setting)."""
    src = np.asarray(array)
    dst = _dtype(dtype)
    src_fmt = _x4_fmt(src.dtype)
    if src_fmt is not None:  # unpack x4 words to float32 values, then convert
        src = np.asarray(_cast.decode(_packing.unpack_x4(src.view(_packing.x4_word_dtype(src_fmt)), src_fmt), src_fmt),
                         np.float32)
    dst_fmt = _x4_fmt(dst)
    if dst_fmt is not None:
        if src.ndim == 0 or src.shape[-1] % 4:
            raise DtypeError(f"neuron_dtypes.static_cast: packing to {_dtypes.nki_name(dst)} needs a last dimension "
                             f"that is a multiple of 4; got shape {src.shape}")
        codes = _cast.cast(src.astype(np.float32), dst_fmt, rounding="rne")
        return _packing.pack_x4(codes, dst_fmt).view(dst)
    fmt = _named_format(dst) if dst.name == "bfloat16" or dst.name.startswith(("float8", "float4")) else None
    if fmt is not None:
        codes = _cast.cast(src.astype(np.float32), fmt, rounding="rne")
        return np.asarray(codes).view(dst)
    return src.astype(dst)


def is_float_type(dtype) -> bool:
    """True for every floating-point dtype, the ml_dtypes ones and the packed x4 formats included."""
    dt = _dtype(dtype)
    if _dtypes.is_x4(dt):
        return True
    return np.issubdtype(dt, np.floating) or dt.name in ("bfloat16",) or dt.name.startswith(("float8", "float4"))


def sizeinbytes(dtype) -> int:
    """Bytes per element (an x4 word counts as one element)."""
    return _dtype(dtype).itemsize


def finfo(dtype):
    """``ml_dtypes.finfo`` of the dtype (of the element format for x4 dtypes)."""
    dt = _dtype(dtype)
    if _dtypes.is_x4(dt):
        dt = np.dtype(getattr(ml_dtypes, _dtypes.nki_name(dt)[:-3]))
    return ml_dtypes.finfo(dt)


def __getattr__(name: str):
    if name in _dtypes.DTYPES:
        return _dtypes.DTYPES[name]
    raise AttributeError(f"neuron_dtypes (trn3-emulator stand-in) has no attribute {name!r}")
