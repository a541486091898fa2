"""The ``nl.*`` compute functions of older kernels, each one ``nki.isa`` instruction on a fresh SBUF/PSUM tile.

Every function object carries ``op_name`` (the ALU or activation op it names), so ``op=nl.add`` resolves in the
engines' ops registry while ``nl.add(a, b)`` computes.
"""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentTypeError, ShapeError
from ._alloc import ndarray
from .tensor import MemoryRegion, NkiTensor

_BINARY = ["add", "subtract", "multiply", "divide", "maximum", "minimum", "power", "abs_max", "abs_min", "equal",
           "not_equal", "less", "less_equal", "greater", "greater_equal", "bitwise_and", "bitwise_or", "bitwise_xor",
           "left_shift", "right_shift", "logical_and", "logical_or", "logical_xor", "fmod", "mod"]
_UNARY = ["exp", "log", "sqrt", "rsqrt", "tanh", "sigmoid", "relu", "gelu", "gelu_apprx_sigmoid", "gelu_apprx_tanh",
          "gelu_dx", "gelu_apprx_sigmoid_dx", "silu", "silu_dx", "softplus", "mish", "erf", "erf_dx", "reciprocal",
          "copy", "sin", "cos", "tan", "arctan", "ceil", "floor", "trunc", "negative", "sign", "abs", "square",
          "invert", "logical_not", "identity"]
_REDUCE = {"sum": "add", "max": "maximum", "min": "minimum", "prod": "multiply", "all": "logical_and"}
_MARKERS = ["bypass", "average", "prelu"]

__all__ = _BINARY + _UNARY + list(_REDUCE) + _MARKERS + ["mean", "var", "matmul", "transpose", "where",
                                                          "broadcast_to", "expand_dims", "softmax", "reduced_shape"]


def _isa():
    from . import isa

    return isa


def _is_tile(x) -> bool:
    return isinstance(x, NkiTensor)


class _Op:
    """An ``nl.*`` function that is also an op name for ``op=`` arguments."""

    def __init__(self, op_name: str, arity: int):
        self.op_name, self.arity = op_name, arity
        self.__name__ = self.__qualname__ = op_name

    def __repr__(self) -> str:
        return f"<nki.language.{self.op_name}>"

    def __call__(self, *args, dtype=None, **kwargs):
        if self.arity == 0:
            raise ArgumentTypeError(f"nl.{self.op_name} is an op marker for op= arguments, not a function")
        if len(args) != self.arity:
            raise ArgumentTypeError(f"nl.{self.op_name} takes {self.arity} operand(s), got {len(args)}")
        return (_binary if self.arity == 2 else _unary)(self, *args, dtype=dtype)


def _binary(op: _Op, x, y, dtype=None) -> NkiTensor:
    isa = _isa()
    if _is_tile(x) and _is_tile(y):
        if x.shape == y.shape:
            dst = ndarray(x.shape, dtype or x.dtype)
            isa.tensor_tensor(dst=dst, data1=x, data2=y, op=op)
            return dst
        column = [t for t in (y, x) if t.ndim == 2 and t.shape[1] == 1]
        other = x if column and column[0] is y else y
        if column and other.ndim == 2 and other.shape[0] == column[0].shape[0]:
            # a [P, 1] column: the per-partition scalar operand of tensor_scalar
            dst = ndarray(other.shape, dtype or x.dtype)
            isa.tensor_scalar(dst=dst, data=other, op0=op, operand0=column[0], reverse0=column[0] is x)
            return dst
        try:
            shape = np.broadcast_shapes(x.shape, y.shape)
        except ValueError:
            raise ShapeError(f"nl.{op.op_name}: shapes {list(x.shape)} and {list(y.shape)} do not broadcast") from None
        dst = ndarray(shape, dtype or x.dtype)
        isa.tensor_tensor(dst=dst, data1=_broadcast(x, shape), data2=_broadcast(y, shape), op=op)
        return dst
    if _is_tile(x):
        dst = ndarray(x.shape, dtype or x.dtype)
        isa.tensor_scalar(dst=dst, data=x, op0=op, operand0=float(y))
        return dst
    if _is_tile(y):
        dst = ndarray(y.shape, dtype or y.dtype)
        isa.tensor_scalar(dst=dst, data=y, op0=op, operand0=float(x), reverse0=True)
        return dst
    raise ShapeError(f"nl.{op.op_name}: at least one operand must be a tile, got {x!r} and {y!r}")


def _broadcast(t, shape):
    """A stride-0 view of ``t`` with ``shape`` (the compiler's broadcast of old nl.* calls)."""
    for d, (have, want) in enumerate(zip(t.shape, shape)):
        if have != want:
            t = t.broadcast(d, want)
    return t


def _unary(op: _Op, x, dtype=None) -> NkiTensor:
    if not _is_tile(x):
        raise ShapeError(f"nl.{op.op_name}: the operand must be a tile, got {x!r}")
    dst = ndarray(x.shape, dtype or x.dtype)
    _isa().activation(dst=dst, op=op, data=x)
    return dst


for _n in _BINARY:
    globals()[_n] = _Op(_n, 2)
for _n in _UNARY:
    globals()[_n] = _Op(_n, 1)
for _n in _MARKERS:
    globals()[_n] = _Op(_n, 0)


def reduced_shape(x, axis, keepdims):
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    axes = tuple(a % x.ndim for a in axes)
    if 0 in axes and x.kind != "hbm":
        raise ShapeError(f"reduction over axis {list(axes)}: the partition dim (0) cannot be reduced this way "
                         "(use nisa.tensor_partition_reduce or a matmul)")
    return axes, tuple(1 if d in axes else n for d, n in enumerate(x.shape) if keepdims or d not in axes)


class _Reduce:
    def __init__(self, name: str, alu: str):
        self.__name__ = self.__qualname__ = name
        self.op_name = alu

    def __call__(self, x, axis, dtype=None, keepdims=False) -> NkiTensor:
        axes, shape = reduced_shape(x, axis, keepdims)
        dst = ndarray(shape if len(shape) > 1 else shape + (1,), dtype or x.dtype)
        _isa().tensor_reduce(dst=dst, op=globals()[self.op_name], data=x, axis=axes, keepdims=keepdims)
        return dst


for _n, _alu in _REDUCE.items():
    globals()[_n] = _Reduce(_n, _alu)


def mean(x, axis, dtype=None, keepdims=False) -> NkiTensor:
    axes, _ = reduced_shape(x, axis, keepdims)
    total = globals()["sum"](x, axis, dtype=np.float32, keepdims=keepdims)
    count = int(np.prod([x.shape[a] for a in axes]))
    return multiply(total, 1.0 / count, dtype=dtype or x.dtype)  # noqa: F821


def var(x, axis, dtype=None, keepdims=False) -> NkiTensor:
    m = mean(x, axis, dtype=np.float32, keepdims=True)
    d = subtract(x, m, dtype=np.float32)  # noqa: F821
    return mean(multiply(d, d), axis, dtype=dtype or x.dtype, keepdims=keepdims)  # noqa: F821


def softmax(x, axis=-1, dtype=None) -> NkiTensor:
    m = globals()["max"](x, axis, dtype=np.float32, keepdims=True)
    e = exp(subtract(x, m, dtype=np.float32))  # noqa: F821
    s = globals()["sum"](e, axis, dtype=np.float32, keepdims=True)
    return divide(e, s, dtype=dtype or x.dtype)  # noqa: F821


def transpose(x, dtype=None) -> NkiTensor:
    """Partition <-> free transpose of a 2-D tile on the Tensor Engine: a PSUM tile."""
    dst = ndarray((x.shape[1], x.shape[0]), dtype or x.dtype, buffer=MemoryRegion.psum)
    _isa().nc_transpose(dst=dst, data=x)
    return dst


def matmul(x, y, transpose_x=False) -> NkiTensor:
    """``x @ y`` (or ``x.T @ y``) into a new fp32 PSUM tile, on the Tensor Engine."""
    isa = _isa()
    if not transpose_x:
        xt = transpose(x)
        x = ndarray(xt.shape, x.dtype)
        isa.tensor_copy(dst=x, src=xt)
    dst = ndarray((x.shape[1], y.shape[1]), np.float32, buffer=MemoryRegion.psum)
    isa.nc_matmul(dst=dst, stationary=x, moving=y)
    return dst


def where(condition, x, y, dtype=None) -> NkiTensor:
    """``x`` where ``condition`` is non-zero, else ``y`` (a predicated copy onto a copy of ``y``)."""
    isa = _isa()
    shape = condition.shape
    dst = ndarray(shape, dtype or (x.dtype if _is_tile(x) else y.dtype))
    if _is_tile(y):
        isa.tensor_copy(dst=dst, src=y)
    else:
        isa.memset(dst=dst, value=y)
    pred = ndarray(shape, np.uint8)
    isa.tensor_scalar(dst=pred, data=condition, op0=not_equal, operand0=0.0)  # noqa: F821
    isa.tensor_copy_predicated(dst=dst, src=x, predicate=pred)
    return dst


def broadcast_to(x, shape, dtype=None) -> NkiTensor:
    view = _broadcast(x, tuple(shape))
    if dtype is None or dtype == x.dtype:
        return view
    dst = ndarray(tuple(shape), dtype)
    _isa().tensor_copy(dst=dst, src=view)
    return dst


def expand_dims(x, axis) -> NkiTensor:
    return x.expand_dim(axis)
