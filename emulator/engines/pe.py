"""The Tensor Engine and ``quantize_mx`` as destination-first instructions on NumPy arrays (NKI's signatures).

Thin wrappers over :mod:`emulator.engines.tensor` / :mod:`emulator.engines.sparse` (whose bodies do the work) and
:func:`emulator.numerics.mx_trainium.quantize_mx`: ``dst`` is the PSUM tile (float32 or bfloat16 array; in
transpose mode the input's dtype), written in place and returned. ``accumulate=True`` adds onto ``dst``;
``False`` or ``None`` overwrites it (an array carries no record of earlier matmuls; the NeuronCore resolves
NKI's ``None`` = "first write overwrites, later ones accumulate" from its memory's initialisation state).

>>> import numpy as np, ml_dtypes
>>> from emulator.engines.pe import nc_matmul
>>> dst = np.zeros((2, 4), np.float32)
>>> st = np.ones((3, 2), ml_dtypes.bfloat16); mv = np.full((3, 4), 0.5, ml_dtypes.bfloat16)
>>> nc_matmul(dst, st, mv); nc_matmul(dst, st, mv, accumulate=True)[0]
array([[1.5, 1.5, 1.5, 1.5],
       [1.5, 1.5, 1.5, 1.5]], dtype=float32)
array([3., 3., 3., 3.], dtype=float32)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DtypeError, ShapeError
from ..numerics import formats as _formats
from . import sparse as _sparse
from . import tensor as _tensor
from .limits import MX_GROUP_PARTITIONS, QUADRANT

__all__ = ["nc_matmul", "nc_matmul_mx", "nc_transpose", "nc_matmul_sparse", "quantize_mx", "mx_element_format"]


def _name(value: Any) -> Any:
    """An NKI enum member (``matmul_perf_mode.double_row``) or a plain value, as its name or the value."""
    name = getattr(value, "name", value)
    return None if name in ("none", "unknown") else name


def _tiling(tile_position, tile_size):
    return (tile_position or None), (tile_size or None)


def _dst(dst: Any, instr: str) -> np.ndarray:
    if not isinstance(dst, np.ndarray):
        raise DtypeError(f"{instr}: dst must be a NumPy array written in place, got {type(dst).__name__}")
    return dst


def nc_matmul(dst: np.ndarray, stationary: Any, moving: Any, is_stationary_onezero: bool = False,
              is_moving_onezero: bool = False, is_transpose: bool = False, accumulate: bool | None = None,
              tile_position: Any = (), tile_size: Any = (), perf_mode: Any = None, *, stationary_fmt: str | None = None,
              moving_fmt: str | None = None, site: int = 0) -> np.ndarray:
    """``dst[M, N] (+)= stationary[K, M].T @ moving[K, N]`` (see :func:`emulator.engines.tensor.nc_matmul`;
    ``*_fmt="tfloat32"`` reads a float32 operand as tf32)."""
    dst = _dst(dst, "nc_matmul")
    pos, size = _tiling(tile_position, tile_size)
    _tensor.nc_matmul(stationary, moving, psum=dst, accumulate=bool(accumulate), is_transpose=is_transpose,
                      tile_position=pos, tile_size=size, perf_mode=_name(perf_mode),
                      is_stationary_onezero=is_stationary_onezero, is_moving_onezero=is_moving_onezero,
                      stationary_fmt=stationary_fmt, moving_fmt=moving_fmt, site=site)
    return dst


def mx_element_format(words: np.ndarray, fmt: Any, role: str, instr: str) -> str:
    """The MX element format of x4 ``words``: ``fmt`` if given (an x4 or element name), else from the word dtype
    (uint16 = float4_e2m1fn; uint32 is ambiguous between e4m3fn and e5m2 and needs ``fmt``)."""
    if fmt is not None:
        fmt = str(getattr(fmt, "name", fmt))
        return _formats.x4_element(fmt).name if fmt.endswith("_x4") else _formats.get(fmt).name
    if np.asarray(words).dtype == np.uint16:
        return "float4_e2m1fn"
    raise DtypeError(f"{instr}: {role} holds uint32 x4 words; name their format ({role}_fmt='float8_e4m3fn_x4' or "
                     "'float8_e5m2_x4', or allocate the tensor with that dtype)")


def nc_matmul_mx(dst: np.ndarray, stationary: Any, moving: Any, stationary_scale: Any, moving_scale: Any,
                 tile_position: Any = None, tile_size: Any = None, accumulate: bool | None = None, *,
                 stationary_fmt: Any = None, moving_fmt: Any = None, site: int = 0) -> np.ndarray:
    """The v4 MX matmul into ``dst`` (see :func:`emulator.engines.tensor.nc_matmul_mx`); x4 formats from the
    ``*_fmt`` keywords or the word dtype."""
    instr = "nc_matmul_mx"
    dst = _dst(dst, instr)
    # NKI flattens free dims: a [P, 1, F] operand (nki-library's mlp_tkg) multiplies like [P, F]
    stationary, moving, stationary_scale, moving_scale = (
        _flat_free(x) for x in (stationary, moving, stationary_scale, moving_scale))
    sf = mx_element_format(stationary, stationary_fmt, "stationary", instr)
    mf = mx_element_format(moving, moving_fmt, "moving", instr)
    pos, size = _tiling(tile_position, tile_size)
    _tensor.nc_matmul_mx(stationary, moving, stationary_scale, moving_scale, sf, mf, psum=dst,
                         accumulate=bool(accumulate), tile_position=pos, tile_size=size, site=site)
    return dst


def _flat_free(x: Any) -> Any:
    """A tile with more than one free dim as [P, product of the free dims] (others unchanged)."""
    return x.reshape(x.shape[0], -1) if isinstance(x, np.ndarray) and x.ndim > 2 else x


def nc_transpose(dst: np.ndarray, data: Any, engine: Any = "tensor") -> np.ndarray:
    """``dst = data.T`` bit-exactly (Tensor Engine up to [128, 128]; Vector Engine up to [32, 32])."""
    instr = "nc_transpose"
    dst = _dst(dst, instr)
    eng = _name(engine) or "tensor"
    out = _tensor.nc_transpose(data, engine=eng)
    if out.dtype != dst.dtype:
        raise DtypeError(f"{instr}: data is {out.dtype} and dst is {dst.dtype}; a transpose keeps the dtype")
    if out.shape != dst.shape and out.size == dst.size and dst.shape[0] == out.shape[0]:
        out = out.reshape(dst.shape)
    if out.shape != dst.shape:
        raise ShapeError(f"{instr}: data transposes to {out.shape}; dst is {dst.shape}")
    np.copyto(dst, out)
    return dst


def nc_matmul_sparse(dst: np.ndarray, values: Any, tags: Any, moving: Any, m: int, n: int,
                     accumulate: bool | None = None, *, values_fmt: str | None = None, moving_fmt: str | None = None,
                     site: int = 0) -> np.ndarray:
    """``dst (+)= decompress(values, tags).T @ moving`` (see :func:`emulator.engines.sparse.nc_matmul_sparse`)."""
    dst = _dst(dst, "nc_matmul_sparse")
    _sparse.nc_matmul_sparse(values, tags, moving, m, n, psum=dst, accumulate=bool(accumulate),
                             values_fmt=values_fmt, moving_fmt=moving_fmt, site=site)
    return dst


def _last_scale_partition(groups: int, p_offset: int) -> int:
    """The partition holding the last of ``groups`` scale rows in the quadrant layout (row i at
    ``(i // 4) * 32 + i % 4 + p_offset``: 4 rows per quadrant, one per group of 8 data partitions)."""
    per_quadrant = QUADRANT // MX_GROUP_PARTITIONS
    last = groups - 1
    return (last // per_quadrant) * QUADRANT + last % per_quadrant + p_offset


def quantize_mx(dst: np.ndarray, src: Any, dst_scale: np.ndarray, *, fmt: Any = None, p_offset: int = 0,
                site: int = 0) -> np.ndarray:
    """The v4 Vector Engine ``quantize_mx``: bf16/fp16 ``src [P, F]`` -> x4 words ``dst [P, F/4]`` and E8M0
    scales ``dst_scale`` (dense ``[P/8, F/4]``, or the hardware quadrant layout at partition offset
    ``p_offset``), per :func:`emulator.numerics.mx_trainium.quantize_mx` (settings ``mx_convention``, SR on
    path ``mx``).

    >>> import numpy as np, ml_dtypes
    >>> dst = np.empty((32, 1), np.uint32); scale = np.empty((4, 1), np.uint8)
    >>> from emulator.config import settings
    >>> with settings(mx_convention="hw"):      # "ocp" gives ('0x7c7c7c7c', 120)
    ...     _ = quantize_mx(dst, np.full((32, 4), 3.0, ml_dtypes.bfloat16), scale, fmt="float8_e4m3fn_x4")
    >>> hex(int(dst[0, 0])), int(scale[0, 0])
    ('0x74747474', 121)
    """
    from ..numerics.mx_trainium import quantize_mx as _quantize

    instr = "quantize_mx"
    dst = _dst(dst, instr)
    efmt = mx_element_format(dst, fmt, "dst", instr)
    src = np.asarray(src)
    if src.ndim > 2:  # NKI flattens the free dims: [P, a, b, 4] quantizes like [P, a*b*4]
        src = src.reshape(src.shape[0], -1)
    words, scales = _quantize(src, efmt, site=site)
    if words.shape != (dst.shape[0], int(np.prod(dst.shape[1:]))) or words.dtype != dst.dtype:
        raise ShapeError(f"{instr}: src makes {words.dtype} x4 words {words.shape}; dst is {dst.dtype} {dst.shape}")
    words = words.reshape(dst.shape)
    sc = _dst(dst_scale, instr)
    if sc.dtype not in (np.uint8,) and sc.dtype.name != "float8_e8m0fnu":
        raise DtypeError(f"{instr}: dst_scale must be uint8 or float8_e8m0fnu, got {sc.dtype}")
    if sc.ndim > 2:  # free dims flattened as for src; written back below
        flat = sc.view(np.uint8).reshape(sc.shape[0], -1).copy()
        _quantize_scales(flat, scales, src.shape[0], p_offset, instr)
        np.copyto(sc.view(np.uint8), flat.reshape(sc.shape))
        np.copyto(dst, words)
        return dst
    _quantize_scales(sc.view(np.uint8), scales, src.shape[0], p_offset, instr)
    np.copyto(dst, words)
    return dst


def _quantize_scales(raw: np.ndarray, scales: np.ndarray, partitions: int, p_offset: int, instr: str) -> None:
    """Write the E8M0 ``scales`` [P/8, F/4] into ``raw``: dense, or the quadrant layout at ``p_offset``."""
    from ..numerics.mx_layout import to_hw_scale_layout

    groups = partitions // MX_GROUP_PARTITIONS
    if raw.shape == scales.shape and p_offset == 0:
        raw[...] = scales
    elif raw.ndim == 2 and raw.shape[1] == scales.shape[1] and raw.shape[0] > _last_scale_partition(groups, p_offset):
        to_hw_scale_layout(scales, p_offset=p_offset, out=raw)
    else:
        raise ShapeError(f"{instr}: dst_scale has shape {raw.shape}; it must be dense {scales.shape} or a "
                         f"quadrant-layout tile [>= {partitions}, {scales.shape[1]}]")
