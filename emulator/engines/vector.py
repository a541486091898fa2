"""Vector Engine (and GpSimd) element-wise, reduction, scan, copy and fill instructions on NumPy arrays.

Every function follows NKI's ``nki.isa`` signature, destination first: ``dst`` is a NumPy / ml_dtypes array whose
dtype is the output format; it is written in place and returned. Arithmetic runs in fp32 (each operator's result
rounded to fp32, so ``tensor_scalar``'s ``a * b + c`` is two fp32 roundings, not fused) and the result is rounded
ONCE into ``dst`` (see :mod:`emulator.engines.operands`). Bitvec operators work on the raw integer bits.
Reductions and scans run in element order, one fp32 rounding per step (the hardware streams one element per lane
per cycle; the order is undocumented, reference section 10 question 12).

>>> import numpy as np
>>> from emulator.engines import vector
>>> dst = np.empty((2, 3), np.float32)
>>> vector.tensor_scalar(dst, np.ones((2, 3), np.float32), "multiply", 3.0, op1="subtract", operand1=1.0)
array([[2., 2., 2.],
       [2., 2., 2.]], dtype=float32)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DtypeError, EmulatorError, ShapeError
from . import operands as _o
from ._vector_kernels import row_sum
from .operands import F32, Instruction, check_dst, f32, like, per_partition, write
from .ops import Op, resolve

__all__ = ["tensor_tensor", "tensor_scalar", "scalar_tensor_tensor", "tensor_reduce", "tensor_tensor_scan",
           "tensor_copy", "memset", "reciprocal", "INSTRUCTIONS"]

_INT32 = (np.dtype(np.int32), np.dtype(np.uint32))


def _binary(o: Op, a, b, instr: str) -> np.ndarray:
    if o.kind == "unary":
        raise EmulatorError(f"{instr}: op {o.name!r} is unary; this operand position needs a binary operator")
    return o.f32(a, b)


def _apply(o: Op, data, operand, reverse: bool, instr: str, role: str):
    """``data <op> operand`` (or reversed) in fp32; a unary op ignores ``operand`` (which must be None or 0)."""
    if o.kind == "unary":
        if operand is not None and not (np.ndim(operand) == 0 and float(operand) == 0.0):
            raise EmulatorError(f"{instr}: op {o.name!r} is unary; {role} must be None or 0, got {operand!r}")
        return o.f32(data)
    if operand is None:
        raise EmulatorError(f"{instr}: op {o.name!r} is binary but {role} is None")
    return o.f32(operand, data) if reverse else o.f32(data, operand)


def _exact_int(o: Op, a: np.ndarray, b: np.ndarray, dst: np.ndarray, engine: str | None) -> bool:
    """True when the GpSimd exact int32/uint32 path applies (all tiles 32-bit integers, engine gpsimd/default)."""
    return (engine in (None, "gpsimd") and o.integer is not None and a.dtype in _INT32 and b.dtype in _INT32
            and dst.dtype in _INT32)


@_o.quiet
def tensor_tensor(dst: np.ndarray, data1: Any, data2: Any, op: Any, engine: Any = None) -> np.ndarray:
    """``dst = data1 <op> data2`` element-wise (Vector or GpSimd).

    Arithmetic ops compute in fp32. When data1, data2 and dst are all int32/uint32 and the engine is GpSimd or
    unspecified, the op runs in exact integer arithmetic (wrapping to 32 bits), as the NKI docs describe;
    ``engine="vector"`` forces the fp32 path. Bitvec ops need integer tiles.

    >>> import numpy as np
    >>> tensor_tensor(np.empty((1, 2), np.int32), np.array([[2**30 + 1, 7]], np.int32), np.array([[1, 2]], np.int32),
    ...               "add")
    array([[1073741826,          9]], dtype=int32)
    """
    instr = "tensor_tensor"
    check_dst(dst, instr)
    o = resolve(op, instr)
    a = like(data1, dst, "data1", instr)
    b = like(data2, dst, "data2", instr)
    if o.is_bitvec:
        return _o.write_bits(dst, o.bits(_o.bits(a, "data1", instr), _o.bits(b, "data2", instr)), instr)
    if _exact_int(o, a, b, dst, _o.engine_name(engine)):
        r = o.integer(a.astype(np.int64), b.astype(np.int64))
        return _o.write_bits(dst, r.astype(np.uint64), instr)
    if dst.dtype == F32 and o.ufunc is not None and a.dtype == F32 and b.dtype == F32:
        return o.ufunc(a, b, out=dst)  # fp32 in, fp32 out: the ufunc's own IEEE rounding is the one rounding
    return write(dst, _binary(o, f32(a, "data1", instr), f32(b, "data2", instr), instr), instr)


def _bitvec_scalar(dst, data, o0: Op, s0, reverse0, o1: Op | None, s1, reverse1, instr: str) -> np.ndarray:
    rows, nd = data.shape[0], data.ndim

    def operand(x, role):
        if x is None:
            return None
        arr = np.asarray(x)
        if arr.ndim and (arr.shape[0] != rows or arr.size != rows):
            raise ShapeError(f"{instr}: {role} has shape {arr.shape}; it must be a scalar or [{rows}, 1]")
        v = _o.bits(x, role, instr)
        return v.reshape((rows,) + (1,) * (nd - 1)) if np.ndim(v) else v

    def step(o, val, s, rev):
        if o.arity == 1:
            return o.bits(val)
        return o.bits(s, val) if rev else o.bits(val, s)

    t = step(o0, _o.bits(data, "data", instr), operand(s0, "operand0"), reverse0)
    if o1 is not None:
        t = step(o1, t & np.uint64(0xFFFFFFFF), operand(s1, "operand1"), reverse1)
    return _o.write_bits(dst, t, instr)


@_o.quiet
def tensor_scalar(dst: np.ndarray, data: Any, op0: Any, operand0: Any, reverse0: bool = False, op1: Any = None,
                  operand1: Any = None, reverse1: bool = False, engine: Any = None) -> np.ndarray:
    """``dst = (data <op0> operand0) <op1> operand1`` with scalar or [P, 1] operands (Vector, Scalar or GpSimd).

    ``reverse0``/``reverse1`` swap the operands of each op (``operand0 <op0> data``). Both ops must be bitvec or both
    arithmetic. Arithmetic: fp32, each op rounded to fp32, one rounding into dst.

    >>> import numpy as np
    >>> tensor_scalar(np.empty((1, 2), np.float32), np.array([[1., 4.]], np.float32), "subtract", 10.0, reverse0=True)
    array([[9., 6.]], dtype=float32)
    """
    instr = "tensor_scalar"
    check_dst(dst, instr)
    o0 = resolve(op0, instr)
    o1 = None if op1 is None else resolve(op1, instr)
    x = like(data, dst, "data", instr)
    if o0.is_bitvec or (o1 is not None and o1.is_bitvec):
        if o1 is not None and o0.is_bitvec != o1.is_bitvec:
            raise EmulatorError(f"{instr}: op0 {o0.name!r} and op1 {o1.name!r} must both be bitvec or both "
                                "arithmetic")
        return _bitvec_scalar(dst, x, o0, operand0, reverse0, o1, operand1, reverse1, instr)
    rows, nd = x.shape[0], x.ndim
    s0 = None if operand0 is None else per_partition(operand0, rows, nd, "operand0", instr)
    t = _apply(o0, f32(x, "data", instr), s0, reverse0, instr, "operand0")
    if o1 is not None:
        s1 = None if operand1 is None else per_partition(operand1, rows, nd, "operand1", instr)
        t = _apply(o1, t, s1, reverse1, instr, "operand1")
    elif operand1 is not None:
        raise EmulatorError(f"{instr}: operand1 is given but op1 is None")
    return write(dst, t, instr)


@_o.quiet
def scalar_tensor_tensor(dst: np.ndarray, data: Any, op0: Any, operand0: Any, op1: Any, operand1: Any,
                         reverse0: bool = False, reverse1: bool = False) -> np.ndarray:
    """``dst = (data <op0> operand0) <op1> operand1``: operand0 scalar or [P, 1], operand1 a full tile (Vector).

    >>> import numpy as np
    >>> x = np.array([[1., 2.]], np.float32)
    >>> scalar_tensor_tensor(np.empty((1, 2), np.float32), x, "multiply", 2.0, "add", x)
    array([[3., 6.]], dtype=float32)
    """
    instr = "scalar_tensor_tensor"
    check_dst(dst, instr)
    o0, o1 = resolve(op0, instr), resolve(op1, instr)
    if o0.is_bitvec or o1.is_bitvec:
        raise EmulatorError(f"{instr}: bitvec operators are not supported (op0 {o0.name!r}, op1 {o1.name!r})")
    x = like(data, dst, "data", instr)
    y = f32(like(operand1, dst, "operand1", instr), "operand1", instr)
    s0 = per_partition(operand0, x.shape[0], x.ndim, "operand0", instr)
    t = _apply(o0, f32(x, "data", instr), s0, reverse0, instr, "operand0")
    t = _binary(o1, y, t, instr) if reverse1 else _binary(o1, t, y, instr)
    return write(dst, t, instr)


def _axes(axis: Any, ndim: int, instr: str) -> tuple[int, ...]:
    ax = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    ax = tuple(sorted(int(a) % ndim if -ndim <= int(a) < ndim else -1 for a in ax))
    if not ax or ax[0] <= 0 or ax != tuple(range(ax[0], ndim)):
        raise ShapeError(f"{instr}: axis {axis!r} must be the last contiguous free axes of a {ndim}-d tile, ending "
                         f"at axis {ndim - 1} (axis 0, the partition axis, cannot be reduced)")
    return ax


def sequential_reduce(o: Op, x: np.ndarray) -> np.ndarray:
    """Reduce fp32 ``x`` over its last axis in element order (one fp32 rounding per step)."""
    if o.name == "add":
        flat = x.reshape(-1, x.shape[-1])
        return row_sum(flat if flat.flags.c_contiguous else np.ascontiguousarray(flat)).reshape(x.shape[:-1])
    if o.name in ("subtract", "multiply"):
        return o.ufunc.accumulate(x, axis=-1)[..., -1]
    if o.name in ("maximum", "minimum"):
        return o.ufunc.reduce(x, axis=-1)
    if o.name.startswith("logical_"):
        uf = {"logical_and": np.logical_and, "logical_or": np.logical_or, "logical_xor": np.logical_xor}[o.name]
        return uf.reduce(x != 0, axis=-1).astype(F32)
    raise EmulatorError(f"reduction: op {o.name!r} is not a legal reduction operator")


@_o.quiet
def tensor_reduce(dst: np.ndarray, op: Any, data: Any, axis: Any, negate: bool = False,
                  keepdims: bool = False) -> np.ndarray:
    """Reduce ``data`` over its trailing free axes ``axis`` with ``op`` (add, multiply, maximum, minimum, subtract,
    logical_*, or bitwise and/or/xor on the raw bits); ``negate`` multiplies an arithmetic result by -1.

    >>> import numpy as np
    >>> tensor_reduce(np.empty((2, 1), np.float32), "add", np.arange(8, dtype=np.float32).reshape(2, 4), axis=1,
    ...               negate=True, keepdims=True)
    array([[ -6.],
           [-22.]], dtype=float32)
    """
    instr = "tensor_reduce"
    check_dst(dst, instr)
    o = resolve(op, instr)
    x = _o.tile(data, "data", instr)
    ax = _axes(axis, x.ndim, instr)
    kept = x.shape[:ax[0]]
    out_shape = kept + (1,) * len(ax) if keepdims else kept
    if dst.shape[0] != x.shape[0] or dst.size != int(np.prod(out_shape)):
        raise ShapeError(f"{instr}: dst has shape {dst.shape}; reducing {x.shape} over axes {ax} gives "
                         f"{out_shape}")
    flat = x.reshape(kept + (-1,))
    if flat.shape[-1] == 0:
        raise ShapeError(f"{instr}: data {x.shape} has no elements along the reduced axes")
    if o.is_bitvec:
        if negate or o.ufunc is None:
            raise EmulatorError(f"{instr}: bitvec op {o.name!r} " + ("cannot negate" if negate else
                                                                     "is not a reduction operator"))
        r = o.ufunc.reduce(_o.bits(flat, "data", instr), axis=-1)
        return _o.write_bits(dst, r.reshape(dst.shape), instr)
    r = sequential_reduce(o, f32(flat, "data", instr))
    if negate:
        r = -r
    return write(dst, r.reshape(dst.shape), instr)


@_o.quiet
def tensor_tensor_scan(dst: np.ndarray, data0: Any, data1: Any, initial: Any, op0: Any, op1: Any,
                       reverse0: bool = False, reverse1: bool = False) -> np.ndarray:
    """Per partition along the flattened free dim: ``r_i = op1(op0(d0_i, r_{i-1}), d1_i)``, ``r_{-1} = initial``.

    ``reverse0`` makes ``data0`` the rhs of op0; ``reverse1`` makes ``data1`` the lhs of op1. fp32 throughout.

    >>> import numpy as np
    >>> d0 = np.full((1, 3), 2.0, np.float32); d1 = np.ones((1, 3), np.float32)
    >>> tensor_tensor_scan(np.empty((1, 3), np.float32), d0, d1, 0.0, "multiply", "add")  # r = 2r + 1
    array([[1., 3., 7.]], dtype=float32)
    """
    instr = "tensor_tensor_scan"
    check_dst(dst, instr)
    o0, o1 = resolve(op0, instr), resolve(op1, instr)
    rows = dst.shape[0]
    a = f32(like(data0, dst, "data0", instr), "data0", instr).reshape(rows, -1)
    b = f32(like(data1, dst, "data1", instr), "data1", instr).reshape(rows, -1)
    r = np.broadcast_to(per_partition(initial, rows, 1, "initial", instr), (rows,)).astype(F32)
    out = np.empty(a.shape, F32)
    for i in range(a.shape[1]):
        t = _binary(o0, r, a[:, i], instr) if reverse0 else _binary(o0, a[:, i], r, instr)
        r = _binary(o1, b[:, i], t, instr) if reverse1 else _binary(o1, t, b[:, i], instr)
        out[:, i] = r
    return write(dst, out.reshape(dst.shape), instr)


@_o.quiet
def tensor_copy(dst: np.ndarray, src: Any, engine: Any = None) -> np.ndarray:
    """Copy ``src`` into ``dst``: bit-exact when the dtypes match, else through fp32 with one rounding.

    >>> import numpy as np
    >>> tensor_copy(np.empty((1, 2), np.int32), np.array([[2**31 - 1, -5]], np.int32))
    array([[2147483647,         -5]], dtype=int32)
    """
    instr = "tensor_copy"
    check_dst(dst, instr)
    return _o.write_values(dst, like(src, dst, "src", instr), instr)


@_o.quiet
def memset(dst: np.ndarray, value: Any, engine: Any = None, *, dtype: Any = None) -> np.ndarray:
    """Fill ``dst`` with the constant ``value`` (rounded once to the dst format; exact for integer dst).

    ``dtype`` names dst's NKI dtype where the array's dtype cannot tell it: the x4 types (``float8_e4m3fn_x4``,
    ``float8_e5m2_x4``, ``float4_e2m1fn_x4``), held as uint words, accept only ``value=0``.

    >>> import numpy as np
    >>> memset(np.empty((1, 2), np.uint32), 0, dtype="float8_e4m3fn_x4")
    array([[0, 0]], dtype=uint32)
    """
    instr = "memset"
    check_dst(dst, instr)
    name = None if dtype is None else str(getattr(dtype, "name", dtype)).lower()
    if name is not None and name.endswith("_x4"):
        if value != 0:
            raise EmulatorError(f"{instr}: dst is {name}; packed x4 types can only be memset to 0, got {value!r}")
        dst[...] = 0
        return dst
    if _o.is_int(dst.dtype):
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            info = np.iinfo(dst.dtype) if dst.dtype != np.bool_ else None
            if info is not None and not info.min <= int(value) <= info.max:
                raise EmulatorError(f"{instr}: value {value} does not fit dst dtype {dst.dtype}")
            dst[...] = value
            return dst
        return write(dst, np.float32(value), instr)
    if dst.dtype == F32:
        dst[...] = np.float32(value)  # one rounding from the given constant
        return dst
    return write(dst, np.float64(value), instr)  # cast rounds float64 once (wide_input=exact)


@_o.quiet
def reciprocal(dst: np.ndarray, data: Any) -> np.ndarray:
    """``dst = 1 / data`` in fp32 (correctly rounded; the Vector Engine's precise reciprocal).

    >>> import numpy as np
    >>> reciprocal(np.empty((1, 2), np.float32), np.array([[4., 0.]], np.float32))
    array([[0.25,  inf]], dtype=float32)
    """
    instr = "reciprocal"
    check_dst(dst, instr)
    x = f32(like(data, dst, "data", instr), "data", instr)
    with np.errstate(divide="ignore"):
        return write(dst, np.divide(F32(1.0), x, dtype=F32), instr)


_VG = ("vector", "gpsimd")
INSTRUCTIONS: dict[str, Instruction] = {
    "tensor_tensor": Instruction(tensor_tensor, _VG, ("data1", "data2"), ("dst",)),
    "tensor_scalar": Instruction(tensor_scalar, ("vector", "scalar", "gpsimd"), ("data", "operand0", "operand1"),
                                 ("dst",)),
    "scalar_tensor_tensor": Instruction(scalar_tensor_tensor, ("vector",), ("data", "operand0", "operand1"),
                                        ("dst",)),
    "tensor_reduce": Instruction(tensor_reduce, ("vector",), ("data",), ("dst",)),
    "tensor_tensor_scan": Instruction(tensor_tensor_scan, ("vector",), ("data0", "data1", "initial"), ("dst",)),
    "tensor_copy": Instruction(tensor_copy, ("vector", "scalar", "gpsimd"), ("src",), ("dst",)),
    "memset": Instruction(memset, _VG, (), ("dst",)),
    "reciprocal": Instruction(reciprocal, ("vector",), ("data",), ("dst",)),
}
