"""Vector Engine instructions that fold their results into the Vector accumulator registers: ``exponential`` (v4)
and ``tensor_scalar_reduce``; and the GpSimd cross-partition ``tensor_partition_reduce``.

The accumulators are a :class:`~emulator.engines.operands.ReduceRegisters` passed as ``regs=`` (the NeuronCore keeps
one per engine), driven by ``reduce_cmd`` as NKI describes: ``reset_reduce`` starts from the reduce op's identity,
``reduce`` continues, ``load_reduce`` starts from ``reduce_init``, ``idle`` leaves them alone.

>>> import numpy as np
>>> from emulator.engines.vector_accumulate import exponential
>>> res = np.empty((1, 1), np.float32)
>>> exponential(np.empty((1, 2), np.float32), np.array([[1.0, 1.0]], np.float32), max_value=1.0, reduce_res=res,
...             reduce_cmd="reset_reduce")
array([[1., 1.]], dtype=float32)
>>> res
array([[2.]], dtype=float32)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DtypeError, EmulatorError, ShapeError
from . import operands as _o
from .operands import F32, Instruction, ReduceRegisters, check_dst, f32, like, per_partition, write
from .ops import resolve, resolve_activation
from .scalar import evaluate
from .vector import sequential_reduce

__all__ = ["exponential", "tensor_scalar_reduce", "tensor_partition_reduce", "tensor_scalar_cumulative",
           "INSTRUCTIONS"]

_EXP = resolve_activation("exp")


@_o.quiet
def exponential(dst: np.ndarray, src: Any, max_value: Any = 0.0, reduce_res: Any = None, reduce_cmd: Any = "idle",
                reduce_init: Any = 0.0, *, regs: ReduceRegisters | None = None) -> np.ndarray:
    """``dst = exp(src - max_value)`` (fp32 subtract, exp per ``activation_accuracy``, one rounding into dst), with
    the fp32 results optionally summed (element order) into the accumulators and read out into ``reduce_res``.
    ``max_value`` and ``reduce_init`` are scalars or [P, 1]."""
    instr = "exponential"
    check_dst(dst, instr)
    x = like(src, dst, "src", instr)
    rows = dst.shape[0]
    t = evaluate(_EXP, f32(x, "src", instr) - per_partition(max_value, rows, dst.ndim, "max_value", instr))
    cmd = _o.reduce_cmd(reduce_cmd, instr)
    if cmd == "reset":
        raise EmulatorError(f"{instr}: reduce_cmd must be idle, reduce, reset_reduce or load_reduce")
    if cmd != "idle" or reduce_res is not None:
        init = np.broadcast_to(per_partition(reduce_init, rows, 1, "reduce_init", instr), (rows,))
        partial = sequential_reduce(resolve("add"), t.reshape(rows, -1))
        (regs if regs is not None else ReduceRegisters()).readout(cmd, partial, 0.0, np.add, reduce_res, rows,
                                                                  instr, init)
    return write(dst, t, instr)


_REDUCE_OPS = ("add", "multiply", "maximum", "minimum")


@_o.quiet
def tensor_scalar_reduce(dst: np.ndarray, data: Any, op0: Any, operand0: Any, reduce_op: Any, reduce_res: Any = None,
                         reverse0: bool = False, reduce_cmd: Any = "reset_reduce", reduce_init: Any = None,
                         reduce_res_negate: bool = False, *, regs: ReduceRegisters | None = None) -> np.ndarray:
    """``dst = data <op0> operand0`` (fp32, one rounding) and ``reduce_op`` (add, multiply, maximum, minimum) of the
    fp32 results over all free dims into the accumulators per ``reduce_cmd``; ``reduce_res`` receives them
    (negated when ``reduce_res_negate``; the registers keep the un-negated value).

    >>> import numpy as np
    >>> res = np.empty((1, 1), np.float32)
    >>> tensor_scalar_reduce(np.empty((1, 3), np.float32), np.array([[1., 5., 3.]], np.float32), "multiply", 2.0,
    ...                      "maximum", res, reduce_res_negate=True)
    array([[ 2., 10.,  6.]], dtype=float32)
    >>> res
    array([[-10.]], dtype=float32)
    """
    instr = "tensor_scalar_reduce"
    check_dst(dst, instr)
    o0, ro = resolve(op0, instr), resolve(reduce_op, instr)
    if o0.is_bitvec:
        raise EmulatorError(f"{instr}: op0 {o0.name!r} is bitvec; only arithmetic operators are supported")
    if reverse0:
        raise EmulatorError(f"{instr}: reverse0 is not supported (NKI: 'not supported yet')")
    if ro.name not in _REDUCE_OPS:
        raise EmulatorError(f"{instr}: reduce_op {ro.name!r} is not one of {', '.join(_REDUCE_OPS)}")
    x = like(data, dst, "data", instr)
    rows = dst.shape[0]
    s0 = None if operand0 is None else per_partition(operand0, rows, dst.ndim, "operand0", instr)
    t = o0.f32(f32(x, "data", instr)) if o0.kind == "unary" else o0.f32(f32(x, "data", instr), s0)
    cmd = _o.reduce_cmd(reduce_cmd, instr)
    init = None if reduce_init is None else np.broadcast_to(
        per_partition(reduce_init, rows, 1, "reduce_init", instr), (rows,))
    if cmd == "load_reduce" and init is None:
        raise EmulatorError(f"{instr}: reduce_cmd load_reduce needs reduce_init")
    partial = sequential_reduce(ro, np.asarray(t, F32).reshape(rows, -1))
    (regs if regs is not None else ReduceRegisters()).readout(cmd, partial, ro.identity, ro.f32, reduce_res, rows,
                                                              instr, init, negate=reduce_res_negate)
    return write(dst, t, instr)


_CUMULATIVE_OPS = ("add", "subtract", "multiply", "maximum", "minimum")
_NO_INT32 = (np.dtype(np.int32), np.dtype(np.uint32))


def _fp32_imm(value: Any, rows: int, role: str, instr: str) -> np.ndarray:
    """An fp32 immediate: a scalar or a [P, 1] float32 tile, as [rows] fp32."""
    if isinstance(value, np.ndarray) and value.ndim and value.dtype != F32:
        raise DtypeError(f"{instr}: {role} is a {value.dtype} tile; it must be float32 (a scalar or [P, 1])")
    return np.broadcast_to(per_partition(value, rows, 1, role, instr), (rows,)).astype(F32)


def _running(o1, t: np.ndarray, start: np.ndarray) -> np.ndarray:
    """``reg = op1(t_i, reg)`` along each row from ``reg = start``, every step rounded to fp32; the running values."""
    if o1.name != "subtract":  # commutative: op1(t_i, reg) == op1(reg, t_i), NumPy's accumulate steps in order
        return o1.ufunc.accumulate(np.concatenate([start[:, None], t], axis=1), axis=1, dtype=F32)[:, 1:]
    out = np.empty_like(t)
    reg = start
    for i in range(t.shape[1]):
        reg = t[:, i] - reg
        out[:, i] = reg
    return out


@_o.quiet
def tensor_scalar_cumulative(dst: np.ndarray, src: Any, op0: Any, op1: Any, imm0: Any, imm1: Any = None,
                             reduce_cmd: Any = "reset_reduce", *, regs: ReduceRegisters | None = None) -> np.ndarray:
    """Per partition, along the flattened free dims: ``reg = op1(op0(src_i, imm0), reg)``, ``dst_i = reg`` (Vector
    Engine; fp32, each step rounded to fp32, one rounding into dst). The start value of ``reg`` (the Vector
    accumulators ``regs``, which keep the final value) follows ``reduce_cmd``: ``reset_reduce`` op1's identity (0
    for add and subtract, 1 multiply, -inf maximum, +inf minimum), ``reduce`` the registers as they are,
    ``load_reduce`` ``imm1``. ``imm1`` is read by load_reduce only. op0 is an arithmetic operator, op1 one of add,
    subtract, multiply, maximum, minimum (``subtract`` gives ``src_i' - reg``, the docs' operand order); ``imm0``
    / ``imm1`` are fp32 scalars or [P, 1] float32 tiles; ``src`` and ``dst`` are not int32/uint32 (NKI: an ISA
    limit).

    >>> import numpy as np
    >>> tensor_scalar_cumulative(np.empty((1, 4), np.float32), np.ones((1, 4), np.float32), "add", "add", 1.0,
    ...                          imm1=10.0, reduce_cmd="load_reduce")
    array([[12., 14., 16., 18.]], dtype=float32)
    """
    instr = "tensor_scalar_cumulative"
    check_dst(dst, instr)
    x = like(src, dst, "src", instr)
    for role, dt in (("src", x.dtype), ("dst", dst.dtype)):
        if dt in _NO_INT32:
            raise DtypeError(f"{instr}: {role} is {dt}; int32/uint32 are not supported (an ISA limit, NKI docs)")
    o0, o1 = resolve(op0, instr), resolve(op1, instr)
    if o0.kind != "arith":
        raise EmulatorError(f"{instr}: op0 {o0.name!r} must be a binary arithmetic operator")
    if o1.name not in _CUMULATIVE_OPS:
        raise EmulatorError(f"{instr}: op1 {o1.name!r} is not one of {', '.join(_CUMULATIVE_OPS)}")
    cmd = _o.reduce_cmd(reduce_cmd, instr)
    if cmd not in ("reset_reduce", "reduce", "load_reduce"):
        raise EmulatorError(f"{instr}: reduce_cmd {cmd!r} must be reset_reduce, reduce or load_reduce")
    rows = dst.shape[0]
    s0 = _fp32_imm(imm0, rows, "imm0", instr)
    if cmd == "load_reduce" and imm1 is None:
        raise EmulatorError(f"{instr}: reduce_cmd load_reduce needs imm1 (the accumulator's start value)")
    init = _fp32_imm(imm1, rows, "imm1", instr) if cmd == "load_reduce" else None
    regs = regs if regs is not None else ReduceRegisters()
    if rows > regs.values.shape[0]:
        raise ShapeError(f"{instr}: dst has {rows} partitions; the Vector Engine has {regs.values.shape[0]} lanes")
    start = {"reset_reduce": np.full(rows, o1.identity, F32), "reduce": regs.values[:rows].copy(),
             "load_reduce": init}[cmd]
    t = o0.f32(f32(x, "src", instr).reshape(rows, -1), s0[:, None])
    out = _running(o1, np.asarray(t, F32), start) if t.shape[1] else np.empty((rows, 0), F32)
    write(dst, out.reshape(dst.shape), instr)
    regs.values[:rows] = out[:, -1] if out.shape[1] else start
    return dst


_PARTITION_OPS = ("add", "average", "maximum", "bitwise_or", "bitwise_and")


@_o.quiet
def tensor_partition_reduce(dst: np.ndarray, op: Any, data: Any) -> np.ndarray:
    """Reduce ``data`` across its partitions (GpSimd): add (in partition order, fp32), average (that sum divided by
    P in fp32), maximum, or bitwise or/and on the raw bits; ``dst`` is [1, ...] with data's free shape.

    >>> import numpy as np
    >>> tensor_partition_reduce(np.empty((1, 2), np.float32), "average", np.array([[1., 2.], [3., 6.]], np.float32))
    array([[2., 4.]], dtype=float32)
    """
    instr = "tensor_partition_reduce"
    check_dst(dst, instr)
    name = op if isinstance(op, str) and op == "average" else resolve(op, instr).name
    if name not in _PARTITION_OPS:
        raise EmulatorError(f"{instr}: op {name!r} is not one of {', '.join(_PARTITION_OPS)}")
    x = _o.tile(data, "data", instr)
    if dst.shape[0] != 1 or dst.size != x[0].size:
        raise ShapeError(f"{instr}: dst has shape {dst.shape}; reducing {x.shape} across partitions gives "
                         f"[1, {x[0].size}]")
    flat = x.reshape(x.shape[0], -1)
    if name.startswith("bitwise"):
        uf = np.bitwise_or if name == "bitwise_or" else np.bitwise_and
        return _o.write_bits(dst, uf.reduce(_o.bits(flat, "data", instr), axis=0).reshape(dst.shape), instr)
    v = f32(flat, "data", instr).T  # partitions along the last axis: reduced in partition order
    r = sequential_reduce(resolve("maximum" if name == "maximum" else "add"), np.ascontiguousarray(v))
    if name == "average":
        r = r / F32(x.shape[0])
    return write(dst, r.reshape(dst.shape), instr)


INSTRUCTIONS: dict[str, Instruction] = {
    "exponential": Instruction(exponential, ("vector",), ("src", "max_value", "reduce_init"), ("dst", "reduce_res"),
                               "regs"),
    "tensor_scalar_reduce": Instruction(tensor_scalar_reduce, ("vector",), ("data", "operand0", "reduce_init"),
                                        ("dst", "reduce_res"), "regs"),
    "tensor_partition_reduce": Instruction(tensor_partition_reduce, ("gpsimd",), ("data",), ("dst",)),
    "tensor_scalar_cumulative": Instruction(tensor_scalar_cumulative, ("vector",), ("src", "imm0", "imm1"), ("dst",),
                                            "regs"),
}
