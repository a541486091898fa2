"""Where inputs are normalised: any float array the emulator accepts, as float32 or float64 with the same values.

Every module that takes user values (casts, stochastic rounding, MX, matmul) calls :func:`as_float_array` first, so
the rules for which dtypes are values live in one place, below all of them.

>>> import numpy as np, ml_dtypes
>>> as_float_array(np.ones(2, ml_dtypes.bfloat16)).dtype
dtype('float32')
"""

from __future__ import annotations

import numpy as np

from ..errors import DtypeError
from . import formats as _formats

__all__ = ["as_float_array"]


def as_float_array(x, name: str = "x") -> np.ndarray:
    """``x`` as a float32 or float64 ndarray holding the exact same values.

    float16 and every ml_dtypes float (bfloat16, fp8, fp4, e8m0) widen exactly to float32; Python floats and lists
    become float64. Integers, booleans and complex numbers are rejected with a ``DtypeError`` (a ``TypeError``).
    """
    arr = np.asarray(x)
    dt = arr.dtype
    if dt == np.float32 or dt == np.float64:
        return arr
    if dt.kind == "f" and dt.itemsize < 4:  # float16
        return arr.astype(np.float32)
    if dt.kind == "V" or dt.kind not in "biucfSUOMm":  # ml_dtypes floats register as kind 'V'
        try:
            _formats.get(dt)
        except (ValueError, TypeError):
            raise DtypeError(f"{name}: dtype {dt} is not a float dtype the emulator knows") from None
        return arr.astype(np.float32)
    if dt.kind == "f":  # longdouble and friends
        raise DtypeError(f"{name}: dtype {dt} is wider than float64; convert it to float64 first")
    raise DtypeError(
        f"{name}: expected a float array (float16/32/64 or an ml_dtypes float), got dtype {dt}; integer arrays "
        "are not values (to decode raw codes use emu.decode)"
    )
