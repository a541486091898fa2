"""Codes -> exact values, computed from a format's fields: the value tables behind ``emu.decode``.

This module sits below :mod:`~emulator.numerics.formats` (it reads a descriptor's fields and imports nothing of the
package), so ``Format.value_table`` can be built here and :mod:`~emulator.numerics.cast` can decode through it
without an import cycle.

>>> import numpy as np
>>> from emulator.numerics import formats
>>> decode_table(np.array([0x38, 0x7E, 0x7F], np.uint8), formats.get("float8_e4m3fn")).tolist()
[1.0, 448.0, nan]
"""

from __future__ import annotations

import numpy as np

__all__ = ["decode_table"]


def decode_table(codes: np.ndarray, fmt) -> np.ndarray:
    """Exact float32 value of each code, computed from the fields of the :class:`~emulator.numerics.formats.Format`.

    NaN codes become the canonical quiet NaN with the code's sign, except that bf16 and fp16 NaNs keep their payload
    (bf16 is the top half of an fp32 pattern; fp16 widens as IEEE does): exactly what ml_dtypes/NumPy give.
    """
    if fmt.name == "bfloat16":
        return np.asarray(codes.astype(np.uint32) << np.uint32(16)).view(np.float32)  # a 0-d input stays an array
    if fmt.name == "float16":
        return codes.view(np.float16).astype(np.float32)
    c = codes.astype(np.int64) >> fmt.pad_bits
    mbits = fmt.mantissa_bits
    mant = c & ((1 << mbits) - 1)
    expf = (c >> mbits) & ((1 << fmt.exponent_bits) - 1)
    neg = ((c >> (fmt.exponent_bits + mbits)) & 1).astype(bool) if fmt.signed else np.zeros(c.shape, bool)
    if fmt.has_subnormals:
        val = np.where(
            expf == 0,
            np.ldexp(mant.astype(np.float64), fmt.emin - mbits),
            np.ldexp((mant + (1 << mbits)).astype(np.float64), (expf - fmt.bias - mbits).astype(np.int32)),
        )
    else:
        val = np.ldexp(1.0, (expf - fmt.bias).astype(np.int32))
    full_exp = expf == (1 << fmt.exponent_bits) - 1
    if fmt.nan_kind == "ieee":
        val = np.where(full_exp & (mant == 0), np.inf, val)
        val = np.where(full_exp & (mant != 0), np.nan, val)
    elif fmt.nan_kind == "all_ones":
        mag_mask = fmt.magnitude_mask >> fmt.pad_bits
        val = np.where((c & mag_mask) == mag_mask, np.nan, val)
    val = np.where(neg, -val, val)
    return val.astype(np.float32)
