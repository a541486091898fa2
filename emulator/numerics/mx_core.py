"""Shared core of the MX modules: element formats, input bit patterns, the quantise/dequantise drivers.

The public API is :mod:`emulator.numerics.mx`; the rules are documented there.
"""

from __future__ import annotations

import numpy as np

from ..config import get_settings, settings
from ..errors import ArgumentError, DtypeError, ShapeError
from . import block_formats as _blocks
from . import formats as _formats
from ._cast_kernels import cast_params
from ._mx_kernels import dequantize_groups, fast_params, group_exponents, quantize_groups
from .block_formats import CONVENTIONS
from .cast import as_float_array, cast, rounding_for
from .packing import pack_x4, unpack_x4

__all__ = ["element_format", "scale_values", "MXExtensionWarning", "CONVENTIONS", "ELEMENT_FORMATS"]

#: The MX element formats, from the block-format descriptors.
ELEMENT_FORMATS = tuple(dict.fromkeys(b.element.name for b in _blocks.BLOCK_FORMATS.values()))


class MXExtensionWarning(UserWarning):
    """An MX feature the hardware does not have was used (fp4 output from quantize_mx)."""


def element_format(fmt) -> _formats.Format:
    """The MX element :class:`Format` for a name (``float8_e4m3fn``, ``e5m2``, ``mxfp4``, ``float8_e4m3fn_x4``...).

    >>> element_format("mxfp8_e4m3").name
    'float8_e4m3fn'
    """
    if _blocks.is_block_name(fmt):
        f = _blocks.get(fmt).element
    elif isinstance(fmt, str):
        f = _formats.x4_element(fmt)
    else:
        f = _formats.get(fmt)
    if f.name not in ELEMENT_FORMATS:
        raise ArgumentError(f"MX element format must be one of {', '.join(ELEMENT_FORMATS)}, got {f.name}"
                         + (" (the legacy e4m3 with max 240 is not an MX format; use float8_e4m3fn)"
                            if f.name == "float8_e4m3" else ""))
    return f


def _convention(convention: str | None) -> str:
    convention = get_settings().mx_convention if convention is None else convention
    if convention not in CONVENTIONS:
        raise ArgumentError(f"convention must be one of {', '.join(map(repr, CONVENTIONS))}, got {convention!r}")
    return convention


def _bits(x, name: str, hw: bool) -> tuple[np.ndarray, int]:
    """(fp32 bit patterns as uint32, or bf16 patterns as uint16 with shift 16) of a float array, C-contiguous."""
    arr = np.asarray(x)
    dt = arr.dtype
    bf16 = _formats.get("bfloat16").ml_dtype
    if hw and dt != bf16 and dt != np.float16:
        raise DtypeError(f"{name}: quantize_mx takes bfloat16 or float16 (the hardware's input dtypes), got {dt}; "
                         "convert first, or use emu.mx.quantize for float32 blocks")
    if dt == bf16:
        return np.ascontiguousarray(arr).view(np.uint16), 16
    if dt == np.float32:
        return np.ascontiguousarray(arr).view(np.uint32), 0
    if dt == np.float64:
        with np.errstate(over="ignore"):
            f32 = arr.astype(np.float32)
        same = (f32.astype(np.float64) == arr) | (np.isnan(arr) & np.isnan(f32))
        if not same.all():
            bad = arr.reshape(-1)[np.argmin(same.reshape(-1))]
            raise DtypeError(f"{name}: float64 input must hold float32 values exactly (MX reads fp32 exponent "
                             f"bits); {bad!r} is not a float32. Round it explicitly, e.g. x.astype(np.float32)")
        return np.ascontiguousarray(f32).view(np.uint32), 0
    try:
        wide = as_float_array(arr, name)
    except TypeError as exc:
        raise DtypeError(str(exc)) from None
    return np.ascontiguousarray(wide.astype(np.float32)).view(np.uint32), 0


def _quantize_core(bits: np.ndarray, shift: int, R: int, C: int, fmt, convention: str, rounding: str | None,
                   seed, sr_bits, site: int) -> tuple[np.ndarray, np.ndarray]:
    """codes uint8 [P, F] and scales uint8 [P//R, F//C] of every R x C group of the 2-D pattern array ``bits``."""
    s = get_settings()
    rounding = rounding_for("mx") if rounding is None else rounding
    if rounding not in ("rne", "rtz", "sr"):
        raise ArgumentError(f"rounding must be 'rne', 'rtz' or 'sr', got {rounding!r}")
    conv_off = fmt.emax - 1 if convention == "hw" else fmt.emax
    pol = 0 if s.mx_nonfinite == "nan" else 1
    underflow = 0 if s.mx_scale_underflow == "clamp" else 1
    saturate = convention == "ocp"  # OCP clips the quotient to +-max finite; hw never overflows
    nan_code = fmt.nan_code or 0
    P, F = bits.shape
    bits = np.ascontiguousarray(bits)  # the kernels' vector steps read rows as contiguous memory
    codes = np.empty((P, F), np.uint8)
    scales = np.empty((P // R, F // C), np.uint8)
    if pol == 1 and not fmt.has_nan and s.fp4_nan == "raise":
        a = (bits.astype(np.uint32) << shift) & 0x7FFFFFFF
        if (a > 0x7F800000).any():
            raise ArgumentError(f"MX quantize: the input holds NaN and {fmt.name} has no NaN code (settings "
                             "fp4_nan='raise', mx_nonfinite='propagate')")
    if rounding != "sr":
        p = cast_params(fmt, saturate=saturate, rtz=rounding == "rtz", fp4_nan=s.fp4_nan,
                        e8m0_rounding=s.e8m0_rounding)
        quantize_groups(bits, shift, R, C, conv_off, pol, underflow, p, fast_params(p), nan_code, codes, scales)
        return codes, scales
    se = np.empty(scales.shape, np.int64)
    nan_group = np.empty(scales.shape, np.uint8)
    group_exponents(bits, shift, R, C, conv_off, pol, underflow, scales, se, nan_group)
    v = ((bits.astype(np.uint32) << shift)).view(np.float32).astype(np.float64)
    shape4 = (P // R, R, F // C, C)
    q = (v.reshape(shape4) * np.ldexp(1.0, -se)[:, None, :, None]).reshape(P, F)  # exact in float64
    q = np.where(np.isfinite(v), q, v)
    with settings(wide_input="exact"):
        codes[...] = cast(q, fmt, rounding="sr", saturate=saturate, seed=seed, sr_bits=sr_bits, site=site)
    mask = np.broadcast_to(nan_group.astype(bool)[:, None, :, None], shape4).reshape(P, F)
    codes[mask] = nan_code
    return codes, scales


def _x4_from_codes(codes: np.ndarray, fmt) -> np.ndarray:
    """Pack natural codes [P, 4W] into x4 words [P, W] (sub-element q = element 4w+q)."""
    if fmt.bits == 8 and np.little_endian:
        return np.ascontiguousarray(codes).view(np.uint32)  # byte q of a little-endian uint32 is bits [8q, 8q+8)
    return pack_x4(codes, fmt)


def _codes_from_x4(words: np.ndarray, fmt, name: str) -> np.ndarray:
    arr = np.asarray(words)
    want = np.uint32 if fmt.bits == 8 else np.uint16
    if arr.dtype != want:
        raise DtypeError(f"{name}: {fmt.name} x4 words must be {np.dtype(want)}, got {arr.dtype}")
    if arr.ndim != 2:
        raise ShapeError(f"{name}: x4 data must be 2-D [P, F], got shape {arr.shape}")
    if fmt.bits == 8 and np.little_endian:
        return np.ascontiguousarray(arr).view(np.uint8)
    return unpack_x4(arr, fmt)


def _scale_codes(scale, name: str, shape: tuple) -> np.ndarray:
    arr = np.asarray(scale)
    e8m0 = _formats.get("float8_e8m0fnu").ml_dtype
    if arr.dtype == e8m0:
        arr = arr.view(np.uint8)
    if arr.dtype != np.uint8:
        raise DtypeError(f"{name}: scales must be uint8 or float8_e8m0fnu codes, got {arr.dtype}")
    if arr.shape != shape:
        raise ShapeError(f"{name}: scales must have shape {shape}, got {arr.shape}")
    return np.ascontiguousarray(arr)


def scale_values(dtype=np.float32, scale_ff: str | None = None) -> np.ndarray:
    """The multiplier of each of the 256 E8M0 scale codes: 2^(code-127), and code 0xFF per ``mx_scale_ff``.

    >>> v = scale_values()
    >>> float(v[127]), float(v[0]) == 2.0**-127, bool(np.isnan(v[255]))
    (1.0, True, True)
    """
    scale_ff = get_settings().mx_scale_ff if scale_ff is None else scale_ff
    if scale_ff not in ("nan", "clip", "inf"):
        raise ArgumentError(f"scale_ff must be 'nan', 'clip' or 'inf', got {scale_ff!r}")
    dtype = np.dtype(dtype)
    table = np.empty(256, dtype)
    table[:255] = np.ldexp(dtype.type(1), np.arange(255) - 127)
    table[255] = {"nan": np.nan, "clip": 2.0 ** 127, "inf": np.inf}[scale_ff]
    return table


def _dequantize_core(codes, scales, R, C, fmt, dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise DtypeError(f"dequantize: dtype must be float32 or float64, got {dtype}")
    if fmt.bits == 4 and codes.size and int(codes.max()) > 15:
        raise ArgumentError(f"dequantize: {fmt.name} codes are 4-bit; got code {int(codes.max())}")
    vtab = fmt.value_table.astype(dtype)
    out = np.empty(codes.shape, dtype)
    dequantize_groups(np.ascontiguousarray(codes), scales, R, C, vtab, scale_values(dtype), out)
    return out

