"""OCP MX v1.0 blocks along any axis: :func:`quantize` and :func:`dequantize`.

See :mod:`emulator.numerics.mx` for the scale rules and edge behaviour.
"""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentError, DtypeError, ShapeError
from .cast import rounding_for
from .mx_core import _bits, _convention, _dequantize_core, _quantize_core, _scale_codes, element_format

__all__ = ["quantize", "dequantize"]


def _block_size(block_size) -> int:
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise ArgumentError(f"block_size must be a positive integer, got {block_size!r}")
    return int(block_size)


def _axis(axis, ndim: int, name: str) -> int:
    if ndim == 0:
        raise ShapeError(f"{name}: x must have at least one dimension, got a scalar")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
        raise ShapeError(f"{name}: axis {axis!r} is out of range for an array of {ndim} dimensions")
    return int(axis) % ndim


def _blocks(n: int, bs: int, pad: bool, name: str) -> int:
    if n % bs and not pad:
        raise ShapeError(f"{name}: the blocked axis has length {n}, not a multiple of block_size {bs}; the last "
                         "block would be ragged (pass pad=True to pad it with zeros)")
    return -(-n // bs)


def _padded(flat: np.ndarray, width: int) -> np.ndarray:
    """``flat`` [rows, n] C-contiguous, zero-padded on the right to ``width`` columns (a copy only when needed)."""
    if flat.shape[1] == width:
        return np.ascontiguousarray(flat)
    out = np.zeros((flat.shape[0], width), flat.dtype)
    out[:, :flat.shape[1]] = flat
    return out


def quantize(x, fmt, block_size: int = 32, axis: int = -1, convention: str = "ocp", rounding: str | None = None,
             pad: bool = False, *, seed: int | None = None, sr_bits: int | None = None,
             site: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """OCP MX quantisation: one E8M0 scale per ``block_size`` consecutive elements along ``axis``.

    Parameters
    ----------
    x : float32 array of any shape (bfloat16, float16, narrower ml_dtypes floats, and float64 holding float32
        values are accepted too).
    fmt : element format: ``float8_e4m3fn``, ``float8_e5m2`` or ``float4_e2m1fn`` (aliases ``mxfp8_e4m3``,
        ``mxfp8_e5m2``, ``mxfp4``).
    block_size, axis : the blocks (32 in MX v1.0; any positive size is allowed).
    convention : ``"ocp"`` (default here: X = 2^(floor(log2 amax) - Emax), clip to max finite) or ``"hw"``.
    rounding : element rounding ``rne``/``rtz``/``sr``; default ``cast.rounding_for("mx")``.
    pad : allow a ragged last block (it is quantised as if padded with zeros); otherwise a ragged axis is an error.
    seed, sr_bits, site : stochastic rounding only.

    Returns
    -------
    codes : uint8, the shape of ``x`` (one element code per value, fp4 in the low nibble).
    scales : uint8 E8M0 codes, the shape of ``x`` with ``axis`` reduced to the number of blocks.

    Examples
    --------
    >>> import numpy as np, emulator as emu
    >>> x = np.array([[960.0] + [1.0] * 31], np.float32)   # the microxcaling "957 -> 896" case: X = 2^(9-8)
    >>> codes, scales = emu.mx.quantize(x, "float8_e4m3fn")
    >>> int(scales[0, 0]), float(emu.mx.dequantize(codes, scales, "float8_e4m3fn")[0, 0])
    (128, 896.0)
    """
    fmt = element_format(fmt)
    convention = _convention(convention)
    bs = _block_size(block_size)
    arr = np.asarray(x)
    ax = _axis(axis, arr.ndim, "quantize")
    bits, shift = _bits(arr, "quantize: x", hw=False)
    if ax == 0 and arr.ndim == 2 and arr.shape[0] % bs == 0 and (rounding_for("mx") if rounding is None else rounding) != "sr":
        # blocks down the columns of a matrix: quantised in place (no transposes); RNE/RTZ act element by element,
        # so the codes are those of the moved layout (SR streams are keyed on the moved layout: it takes that path)
        return _quantize_core(bits, shift, bs, 1, fmt, convention, rounding, seed, sr_bits, site)
    moved = np.moveaxis(bits, ax, -1)
    lead, n = moved.shape[:-1], moved.shape[-1]
    nb = _blocks(n, bs, pad, "quantize")
    rows = int(np.prod(lead, dtype=np.int64))
    flat = _padded(moved.reshape(rows, n), nb * bs)
    codes, scales = _quantize_core(flat, shift, 1, bs, fmt, convention, rounding, seed, sr_bits, site)
    codes = np.moveaxis((codes if n == nb * bs else codes[:, :n]).reshape(lead + (n,)), -1, ax)
    scales = np.moveaxis(scales.reshape(lead + (nb,)), -1, ax)
    return np.ascontiguousarray(codes), np.ascontiguousarray(scales)


def dequantize(codes, scales, fmt, block_size: int = 32, axis: int = -1, pad: bool = False,
               dtype=np.float32) -> np.ndarray:
    """The values of OCP MX blocks: ``decode(code) * 2^(scale - 127)``, as float32 (or float64).

    ``codes`` are uint8 element codes of any shape; ``scales`` uint8 (or float8_e8m0fnu) with ``axis`` holding one
    scale per block. float32 products beyond fp32's range become +-inf (``dtype=np.float64`` keeps them exact);
    scale code 0xFF follows setting ``mx_scale_ff`` (NaN by default).

    >>> import numpy as np, emulator as emu
    >>> emu.mx.dequantize(np.array([0x38, 0xB8], np.uint8), np.array([125], np.uint8), "float8_e4m3fn", block_size=2)
    array([ 0.25, -0.25], dtype=float32)
    """
    fmt = element_format(fmt)
    bs = _block_size(block_size)
    c = np.asarray(codes)
    if c.dtype != np.uint8:
        raise DtypeError(f"dequantize: codes must be uint8 element codes, got {c.dtype}")
    ax = _axis(axis, c.ndim, "dequantize")
    moved = np.moveaxis(c, ax, -1)
    lead, n = moved.shape[:-1], moved.shape[-1]
    nb = _blocks(n, bs, pad, "dequantize")
    s = np.asarray(scales)
    want = c.shape[:ax] + (nb,) + c.shape[ax + 1:]
    if s.shape != want:
        raise ShapeError(f"dequantize: scales must have shape {want} (one per block of {bs} along axis {ax}), "
                         f"got {s.shape}")
    rows = int(np.prod(lead, dtype=np.int64))
    flat = _padded(moved.reshape(rows, n), nb * bs)
    sc = _scale_codes(np.moveaxis(s, ax, -1).reshape(rows, nb), "dequantize", (rows, nb))
    out = _dequantize_core(flat, sc, 1, bs, fmt, dtype)
    return np.ascontiguousarray(np.moveaxis(out[:, :n].reshape(lead + (n,)), -1, ax))
