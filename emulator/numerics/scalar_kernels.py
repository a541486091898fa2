"""The scalar Numba routines of the numerics that other packages' kernels call from their own ``@njit`` loops.

A collective's fused reduce-and-round kernel (:mod:`emulator.collectives._kernels`) must round each element exactly
as :func:`emulator.cast` does, so it calls the cast encoder and the stochastic-rounding step directly instead of
writing a second encoder. This module is their public name; the implementations stay in the numerics' private
``_kernels`` modules.

* ``cast_params(fmt, saturate, rtz, fp4_nan, e8m0_rounding)``: the encoder's parameter tuple, built once per call;
* ``encode_f32(bits, p)``: code of one fp32 bit pattern (int64) under ``p`` (RNE or RTZ);
* ``sr_f32(bits, r, n, p, thr)``: stochastically rounded code of one fp32 pattern with ``n`` random bits ``r``
  (``p`` built with ``rtz=True``; ``thr`` from :func:`emulator.numerics.stochastic.overflow_threshold`);
* ``keyed_word(key, index)``: word ``index`` of the keyed stream with key ``key`` (both uint64).

>>> import numpy as np
>>> from emulator.numerics import formats
>>> int(encode_f32(np.int64(0x3FC00000), cast_params(formats.get("float8_e4m3fn"))))  # 1.5
60
"""

from __future__ import annotations

from ._cast_kernels import cast_params, encode_f32
from ._sr_kernels import _sr_f32 as sr_f32
from ._sr_kernels import keyed_word

__all__ = ["cast_params", "encode_f32", "sr_f32", "keyed_word"]
