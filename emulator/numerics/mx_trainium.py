"""The Trainium3 MX path: ``quantize_mx`` / ``dequantize_mx`` and matmul operands in either K order.

See :mod:`emulator.numerics.mx` for the scale rules and edge behaviour.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..config import get_settings
from ..errors import ArgumentError, DtypeError, ShapeError
from .mx_core import (
    MXExtensionWarning, _bits, _codes_from_x4, _convention, _dequantize_core, _quantize_core, _scale_codes,
    _x4_from_codes, element_format,
)
from .mx_layout import from_interleaved, to_interleaved

__all__ = ["quantize_mx", "dequantize_mx", "quantize_operand", "dequantize_operand", "ORDERS"]

ORDERS = ("contiguous", "interleaved")


def _check_2d(arr: np.ndarray, name: str, operand: str) -> tuple[int, int]:
    if arr.ndim != 2:
        raise ShapeError(f"{name}: {operand} must be 2-D, got shape {arr.shape}")
    return arr.shape


def _fp4_gate(fmt) -> None:
    if fmt.bits != 4:
        return
    mode = get_settings().mx_fp4_quantize_mx
    msg = ("quantize_mx: float4_e2m1fn output is an emulator extension; the hardware instruction writes only "
           "float8_e4m3fn_x4 / float8_e5m2_x4 (setting mx_fp4_quantize_mx)")
    if mode == "raise":
        raise DtypeError(msg)
    if mode == "warn":
        warnings.warn(msg, MXExtensionWarning, stacklevel=3)


def quantize_mx(src, fmt, convention: str | None = None, rounding: str | None = None, *, seed: int | None = None,
                sr_bits: int | None = None, site: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The v4 Vector Engine ``quantize_mx``: a bf16/fp16 tile ``[P, F]`` -> (x4 data ``[P, F/4]``, scales ``[P/8, F/4]``).

    Every group of 8 partitions x 4 consecutive free elements shares one E8M0 scale; the 4 elements of a group row
    become the 4 sub-elements of one x4 word (uint32 for fp8, sub-element q in bits [8q, 8q+8); uint16 for fp4).
    Scales come back dense (row g covers partitions 8g..8g+7); :func:`to_hw_scale_layout` places them in quadrants.
    The layout is kept as given: build the interleaved K order with :func:`to_interleaved` first if needed.

    Parameters
    ----------
    src : bfloat16 or float16 array [P, F], P a multiple of 32, F a multiple of 4 (any number of tiles).
    fmt : ``float8_e4m3fn`` or ``float8_e5m2`` (``float4_e2m1fn`` as a flagged extension, see mx_fp4_quantize_mx).
    convention : ``"hw"`` (ISA: X = 2^(floor(log2 amax) - (Emax-1))) or ``"ocp"`` (X = 2^(floor(log2 amax) - Emax)
        with clip to max finite); default: setting ``mx_convention`` ("hw").
    rounding : ``rne``/``rtz``/``sr`` for the elements; default ``cast.rounding_for("mx")``.
    seed, sr_bits, site : stochastic rounding only (see :func:`emulator.cast`).

    Examples
    --------
    >>> import numpy as np, ml_dtypes, emulator as emu
    >>> src = np.full((32, 4), 3.0, ml_dtypes.bfloat16)
    >>> x4, scale = emu.mx.quantize_mx(src, "float8_e4m3fn", convention="hw")
    >>> hex(int(x4[0, 0])), int(scale[0, 0])      # 3 = 1.5 * 2^1: X = 2^(1-7), data 3 / X = 192 (e4m3fn 0x74)
    ('0x74747474', 121)
    >>> x4, scale = emu.mx.quantize_mx(src, "float8_e4m3fn", convention="ocp")
    >>> hex(int(x4[0, 0])), int(scale[0, 0])      # X = 2^(1-8), data 3 / X = 384 (e4m3fn 0x7c)
    ('0x7c7c7c7c', 120)
    """
    fmt = element_format(fmt)
    convention = _convention(convention)
    arr = np.asarray(src)
    bits, shift = _bits(arr, "quantize_mx: src", hw=True)
    P, F = _check_2d(arr, "quantize_mx", "src")
    if P % 32:
        raise ShapeError(f"quantize_mx: src has {P} partitions; it must be a multiple of 32")
    if F % 4:
        raise ShapeError(f"quantize_mx: src has free size {F}; it must be a multiple of 4 (one x4 word per 4)")
    _fp4_gate(fmt)
    codes, scales = _quantize_core(bits, shift, 8, 4, fmt, convention, rounding, seed, sr_bits, site)
    return _x4_from_codes(codes, fmt), scales


def dequantize_mx(data_x4, scale, fmt, dtype=np.float32) -> np.ndarray:
    """x4 data ``[P, W]`` and dense scales ``[P/8, W]`` -> values ``[P, 4W]`` (decode(code) * 2^(scale-127)).

    float32 products are exact except past fp32's range (they become +-inf; pass ``dtype=np.float64`` for the exact
    values). Scale code 0xFF follows setting ``mx_scale_ff`` (NaN by default).

    >>> import numpy as np, emulator as emu
    >>> x4 = np.full((8, 1), 0x38383838, np.uint32)          # four e4m3fn 1.0
    >>> emu.mx.dequantize_mx(x4, np.array([[130]], np.uint8), "float8_e4m3fn")[0]
    array([8., 8., 8., 8.], dtype=float32)
    """
    fmt = element_format(fmt)
    codes = _codes_from_x4(data_x4, fmt, "dequantize_mx")
    P, F = codes.shape
    if P % 8:
        raise ShapeError(f"dequantize_mx: data has {P} partitions; it must be a multiple of 8 (one scale row per 8)")
    sc = _scale_codes(scale, "dequantize_mx", (P // 8, F // 4))
    return _dequantize_core(codes, sc, 8, 4, fmt, dtype)


def _order(order: str) -> str:
    if order not in ORDERS:
        raise ArgumentError(f"order must be one of {', '.join(map(repr, ORDERS))}, got {order!r}")
    return order


def quantize_operand(a, fmt, *, order: str = "contiguous", convention: str | None = None,
                     rounding: str | None = None, seed: int | None = None, sr_bits: int | None = None,
                     site: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A matmul operand ``[K, F]`` (K the contraction dim) -> (x4 ``[K/4, F]``, scales uint8 ``[K/32, F]``).

    ``order="contiguous"``: x4 word (p, f) sub-element q holds k = 4p + q, so each scale covers 32 consecutive k
    (one OCP block). ``order="interleaved"``: the hardware's logical order k = q*Kp + p (Kp = K/4); a scale covers
    k in {q*Kp + 8g .. q*Kp + 8g+7}. Scale row g covers data partitions 8g..8g+7 in both. Inputs may be float32,
    bfloat16, float16 (or float64 holding float32 values). Convention defaults to setting ``mx_convention``.

    >>> import numpy as np, emulator as emu
    >>> a = np.ones((32, 2), np.float32)
    >>> x4, s = emu.mx.quantize_operand(a, "float8_e4m3fn")
    >>> x4.shape, s.shape, bool((emu.mx.dequantize_operand(x4, s, "float8_e4m3fn") == a).all())
    ((8, 2), (1, 2), True)
    """
    fmt = element_format(fmt)
    convention = _convention(convention)
    order = _order(order)
    arr = np.asarray(a)
    K, F = _check_2d(arr, "quantize_operand", "a")
    if K % 32:
        raise ShapeError(f"quantize_operand: a has K = {K} rows; K must be a multiple of 32 (one MX block)")
    bits, shift = _bits(arr, "quantize_operand: a", hw=False)
    if order == "interleaved":
        codes, scales = _quantize_core(to_interleaved(bits), shift, 8, 4, fmt, convention, rounding, seed,
                                       sr_bits, site)
        return _x4_from_codes(codes, fmt), scales
    codes, scales = _quantize_core(bits, shift, 32, 1, fmt, convention, rounding, seed, sr_bits, site)
    grouped = np.ascontiguousarray(codes.reshape(K // 4, 4, F).transpose(0, 2, 1)).reshape(K // 4, 4 * F)
    return _x4_from_codes(grouped, fmt), scales


def dequantize_operand(x4, scale, fmt, *, order: str = "contiguous", dtype=np.float32) -> np.ndarray:
    """The inverse of :func:`quantize_operand`: x4 ``[K/4, F]`` and scales ``[K/32, F]`` -> values ``[K, F]``.

    >>> import numpy as np, emulator as emu
    >>> a = (np.arange(32, dtype=np.float32) % 8).reshape(32, 1)   # 0..7: 3 significant bits, exact in e5m2
    >>> x4, s = emu.mx.quantize_operand(a, "float8_e5m2", order="interleaved", convention="hw")
    >>> int(s[0, 0]), bool((emu.mx.dequantize_operand(x4, s, "float8_e5m2", order="interleaved") == a).all())
    (115, True)
    """
    fmt = element_format(fmt)
    order = _order(order)
    codes = _codes_from_x4(x4, fmt, "dequantize_operand")
    Kp, F4 = codes.shape
    F = F4 // 4
    if Kp % 8:
        raise ShapeError(f"dequantize_operand: x4 has {Kp} partitions; it must be a multiple of 8 (K a multiple of 32)")
    sc = _scale_codes(scale, "dequantize_operand", (Kp // 8, F))
    if order == "interleaved":
        return from_interleaved(_dequantize_core(codes, sc, 8, 4, fmt, dtype))
    natural = np.ascontiguousarray(codes.reshape(Kp, F, 4).transpose(0, 2, 1)).reshape(4 * Kp, F)
    return _dequantize_core(natural, sc, 32, 1, fmt, dtype)
