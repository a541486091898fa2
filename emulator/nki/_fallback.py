"""Array-level stand-ins for the few instructions the front end needs before the engines provide them.

Used only when ``emulator.engines.isa`` lacks the instruction (see the report). Same contract as the engines':
``dst`` is a NumPy array of the output dtype, written in place; compute in fp32; one rounding on the write through
``emulator.numerics.cast.cast`` with ``rounding_for(path)``.
"""

from __future__ import annotations

import numpy as np

from ..errors import EmulatorError, ShapeError
from ..numerics import formats as _formats
from ..numerics.cast import cast, rounding_for

__all__ = ["store", "dma_copy", "tensor_copy", "tensor_tensor", "memset", "HAVE"]

_BINARY = {
    "add": np.add, "subtract": np.subtract, "multiply": np.multiply, "divide": np.divide,
    "maximum": np.maximum, "minimum": np.minimum, "power": np.power,
    "equal": np.equal, "not_equal": np.not_equal, "greater": np.greater, "greater_equal": np.greater_equal,
    "less": np.less, "less_equal": np.less_equal,
}


def _op_name(op) -> str:
    name = getattr(op, "op_name", None) or getattr(op, "__name__", None) or op
    if name not in _BINARY:
        raise EmulatorError(f"op: {op!r} is not supported by the front end's stand-in tensor_tensor")
    return name


def store(dst: np.ndarray, values, path: str = "engine") -> np.ndarray:
    """Write float ``values`` into ``dst`` rounding once to ``dst``'s format."""
    values = np.asarray(values)
    if values.dtype == dst.dtype:
        dst[...] = values
        return dst
    kind = dst.dtype.kind
    if kind in "iub":
        info = np.iinfo(dst.dtype) if kind != "b" else None
        v = np.rint(values.astype(np.float64))
        v = np.nan_to_num(v, nan=0.0)
        if info is not None:
            v = np.clip(v, info.min, info.max)
        dst[...] = v.astype(dst.dtype)
        return dst
    if dst.dtype == np.float32 or (dst.dtype.metadata or {}).get("nki") == "tfloat32":
        dst[...] = values.astype(np.float32)
        return dst
    fmt = _formats.get(dst.dtype)
    codes = cast(values.astype(np.float32), fmt, rounding=rounding_for(path))
    dst[...] = codes.view(dst.dtype)
    return dst


def dma_copy(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    if src.size != dst.size:
        raise ShapeError(f"dma_copy: src has {src.size} elements {list(src.shape)}, dst {dst.size} {list(dst.shape)}")
    src = src.reshape(dst.shape)
    return store(dst, src if src.dtype == dst.dtype else src.astype(np.float32), "dma")


def tensor_copy(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    return store(dst, src if src.dtype == dst.dtype else src.astype(np.float32))


def tensor_tensor(dst: np.ndarray, data1: np.ndarray, data2: np.ndarray, op) -> np.ndarray:
    fn = _BINARY[_op_name(op)]
    a, b = np.asarray(data1, np.float32), np.asarray(data2, np.float32)
    with np.errstate(all="ignore"):
        return store(dst, fn(a, b).astype(np.float32))


def memset(dst: np.ndarray, value) -> np.ndarray:
    return store(dst, np.full(dst.shape, value, np.float32))


HAVE = set(__all__) - {"store", "HAVE"}
