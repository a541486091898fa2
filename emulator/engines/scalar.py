"""Scalar Engine (Activation) instructions on NumPy arrays: ``activation`` and ``activation_reduce``.

``out = op(data * scale + bias)`` per element: the input widens to fp32, ``data * scale`` and ``+ bias`` are fp32
operations (two roundings; the docs do not say whether they fuse, reference section 10 question 11), the activation
function is evaluated per the ``activation_accuracy`` setting (default ``exact``: float64 evaluation rounded once to
fp32, so a kernel's error budget is measured against the ideal function) and the fp32 result is rounded once into
``dst``. ``reduce_op`` (add) sums the fp32 outputs of each partition in element order into the Scalar Engine's
``reduce_regs`` (one fp32 register per lane, passed as ``regs=``; the NeuronCore keeps one) per ``reduce_cmd``:

    if cmd in (reset, reset_reduce): regs = 0
    if cmd in (reduce, reset_reduce): regs += sum(out)
    if reduce_res is given: reduce_res = regs

>>> import numpy as np
>>> from emulator.engines import scalar
>>> res = np.empty((1, 1), np.float32)
>>> scalar.activation(np.empty((1, 3), np.float32), "exp", np.zeros((1, 3), np.float32), reduce_op="add",
...                   reduce_res=res, reduce_cmd="reset_reduce")
array([[1., 1., 1.]], dtype=float32)
>>> res
array([[3.]], dtype=float32)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import get_settings
from ..errors import DtypeError, EmulatorError, ShapeError
from . import operands as _o
from ._activation_kernels import evaluate as exact_activation
from .operands import F32, Instruction, ReduceRegisters, check_dst, f32, like, per_partition, write
from .ops import Activation, resolve, resolve_activation
from .vector import sequential_reduce

__all__ = ["activation", "activation_reduce", "activate2", "ACTIVATE2_PAIRS", "evaluate", "INSTRUCTIONS"]


def evaluate(act: Activation, x: np.ndarray) -> np.ndarray:
    """The activation of fp32 ``x`` as fp32, per the ``activation_accuracy`` setting: ``exact`` evaluates the
    float64 scalar definition (:mod:`emulator.engines._activation_kernels`) and rounds once; ``float32`` runs
    NumPy's float32 routine where NumPy has one (exp, log, tanh, sqrt, sin, ...), the exact definition otherwise."""
    if act.f32 is not None and get_settings().activation_accuracy == "float32":
        return np.asarray(act.f32(x)).astype(F32, copy=False)
    return exact_activation(act.name, x)


def _pre(x: np.ndarray, scale: Any, bias: Any, rows: int, nd: int, instr: str) -> np.ndarray:
    """``x * scale + bias`` in fp32 (each operation rounded to fp32)."""
    s = per_partition(scale, rows, nd, "scale", instr)
    if not (np.ndim(s) == 0 and s == 1.0):
        x = x * s
    if bias is not None:
        x = x + per_partition(bias, rows, nd, "bias", instr)
    return x


@_o.quiet
def activation(dst: np.ndarray, op: Any, data: Any, bias: Any = None, scale: Any = 1.0, reduce_op: Any = None,
               reduce_res: Any = None, reduce_cmd: Any = "idle", *, regs: ReduceRegisters | None = None) -> np.ndarray:
    """``dst = op(data * scale + bias)``; ``scale``/``bias`` are scalars or [P, 1]; optional add-reduction into
    ``regs`` (the Scalar Engine's ``reduce_regs``; a fresh zeroed set when omitted) and ``reduce_res`` ([P, 1]).

    >>> import numpy as np
    >>> activation(np.empty((2, 2), np.float32), "relu", np.array([[-1., 2.], [3., -4.]], np.float32),
    ...            bias=np.array([[1.], [0.]], np.float32), scale=2.0)
    array([[0., 5.],
           [6., 0.]], dtype=float32)
    """
    instr = "activation"
    check_dst(dst, instr)
    act = resolve_activation(op, instr)
    x = like(data, dst, "data", instr)
    t = evaluate(act, _pre(f32(x, "data", instr), scale, bias, x.shape[0], x.ndim, instr))
    cmd = _o.reduce_cmd(reduce_cmd, instr)
    if reduce_op is not None or reduce_res is not None or cmd != "idle":
        partial = None
        if reduce_op is not None:
            ro = resolve(reduce_op, instr)
            if ro.name != "add":
                raise EmulatorError(f"{instr}: reduce_op must be add (nl.add), got {ro.name!r}")
            partial = sequential_reduce(ro, t.reshape(t.shape[0], -1))
        elif cmd in ("reduce", "reset_reduce"):
            raise EmulatorError(f"{instr}: reduce_cmd {cmd!r} needs reduce_op=add")
        regs = regs if regs is not None else ReduceRegisters()
        regs.readout(cmd, partial, 0.0, np.add, reduce_res, dst.shape[0], instr)
    return write(dst, t, instr)


@_o.quiet
def activation_reduce(dst: np.ndarray, op: Any, data: Any, reduce_op: Any, reduce_res: Any, bias: Any = None,
                      scale: Any = 1.0, *, regs: ReduceRegisters | None = None) -> np.ndarray:
    """:func:`activation` with ``reduce_cmd=reset_reduce``: ``reduce_res = sum(op(data * scale + bias))`` per
    partition.

    >>> import numpy as np
    >>> res = np.empty((1, 1), np.float32)
    >>> _ = activation_reduce(np.empty((1, 2), np.float32), "square", np.array([[3., 4.]], np.float32), "add", res)
    >>> res
    array([[25.]], dtype=float32)
    """
    if reduce_res is None:
        raise EmulatorError("activation_reduce: reduce_res is required (use activation to keep the sum in regs)")
    return activation(dst, op, data, bias=bias, scale=scale, reduce_op=reduce_op, reduce_res=reduce_res,
                      reduce_cmd="reset_reduce", regs=regs)


#: activate2's tensor-scalar stage: the (op0, op1) pairs NKI lists ("copy" is nl.bypass)
ACTIVATE2_PAIRS = (("multiply", "add"), ("multiply", "subtract"), ("multiply", "copy"), ("add", "copy"),
                   ("subtract", "copy"), ("copy", "copy"))
#: activate2's reduce ops and the accumulator value reset / reset_reduce start from
_ACTIVATE2_REDUCE = {"add": 0.0, "maximum": -np.inf, "minimum": np.inf, "abs_max": 0.0, "abs_min": np.inf}


def _activate2_act(op: Any, x: np.ndarray, relu_param: Any, instr: str) -> np.ndarray:
    """The activation stage: ``prelu`` is ``x if x > 0 else relu_param * x`` (one fp32 multiply; NaN stays NaN);
    every other function ignores relu_param."""
    name = getattr(op, "op_name", op)
    alpha = per_partition(relu_param, x.shape[0], x.ndim, "relu_param", instr)
    if isinstance(name, str) and name.strip().lower() == "prelu":
        return np.where(x > 0, x, x * alpha).astype(F32, copy=False)
    return evaluate(resolve_activation(op, instr), x)


def _fold(name: str, start: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``acc = reduce_op(acc, t_i)`` along each row of fp32 ``t`` from ``start``, each step rounded to fp32."""
    if name in ("add", "maximum", "minimum"):
        uf = {"add": np.add, "maximum": np.maximum, "minimum": np.minimum}[name]
        return uf.accumulate(np.concatenate([start[:, None], t], axis=1), axis=1, dtype=F32)[:, -1]
    o = resolve(name)
    acc = start
    for i in range(t.shape[1]):
        acc = o.f32(acc, t[:, i])
    return acc


@_o.quiet
def activate2(dst: np.ndarray, op: Any, data: Any, imm0: Any, imm1: Any, op0: Any, op1: Any, relu_param: Any = 0.0,
              reverse0: bool = False, reverse1: bool = False, reduce_op: Any = None, reduce_res: Any = None,
              reduce_cmd: Any = "idle", *, regs: ReduceRegisters | None = None) -> np.ndarray:
    """Scalar Engine, per element in fp32: ``v = (data <op0> imm0) <op1> imm1`` (``reverse0``/``reverse1`` swap
    the operands; ``nl.bypass`` skips a step; the (op0, op1) pairs of :data:`ACTIVATE2_PAIRS` only), then
    ``op(v)`` (per ``activation_accuracy``; ``prelu`` uses ``relu_param``), rounded once into ``dst``.
    ``imm0``, ``imm1``, ``relu_param`` are scalars or [P, 1]. ``reduce_op`` (add, maximum, minimum, abs_max, abs_min)
    folds the fp32 results of each partition, in element order, into the Scalar Engine's accumulators ``regs``:
    ``reset`` sets them to the op's start value (0, -inf, +inf, 0, +inf), ``reset_reduce`` resets then folds,
    ``reduce`` folds, ``idle`` leaves them; ``reduce_res`` ([P, 1]) receives them when given.

    >>> import numpy as np
    >>> res = np.empty((1, 1), np.float32)
    >>> activate2(np.empty((1, 3), np.float32), "relu", np.array([[1., -2., 3.]], np.float32), 2.0, 1.0,
    ...           "multiply", "subtract", reduce_op="maximum", reduce_res=res, reduce_cmd="reset_reduce")
    array([[1., 0., 5.]], dtype=float32)
    >>> res
    array([[5.]], dtype=float32)
    """
    instr = "activate2"
    check_dst(dst, instr)
    x = like(data, dst, "data", instr)
    rows, nd = x.shape[0], x.ndim
    o0, o1 = resolve(op0, instr), resolve(op1, instr)
    if (o0.name, o1.name) not in ACTIVATE2_PAIRS:
        pairs = ", ".join(f"({a}, {b})" for a, b in ACTIVATE2_PAIRS)
        raise EmulatorError(f"{instr}: (op0, op1) = ({o0.name}, {o1.name}) is not a supported pair ({pairs}; copy is "
                            "nl.bypass)")
    for flag, o, role in ((reverse0, o0, "op0"), (reverse1, o1, "op1")):
        if flag and o.name == "copy":
            raise EmulatorError(f"{instr}: reverse{role[-1]}=True needs {role} to be set (it is nl.bypass)")
    if all(isinstance(v, np.ndarray) and v.ndim for v in (imm0, imm1)) and imm0.dtype != imm1.dtype:
        raise DtypeError(f"{instr}: imm0 is {imm0.dtype} and imm1 {imm1.dtype}; tensor immediates must share a dtype")
    v = f32(x, "data", instr)
    for o, imm, rev, role in ((o0, imm0, reverse0, "imm0"), (o1, imm1, reverse1, "imm1")):
        s = per_partition(imm, rows, nd, role, instr)
        if o.name != "copy":
            v = o.f32(s, v) if rev else o.f32(v, s)
    t = np.asarray(_activate2_act(op, np.asarray(v, F32), relu_param, instr), F32)
    cmd = _o.reduce_cmd(reduce_cmd, instr)
    name = None if reduce_op is None else resolve(reduce_op, instr).name
    if name is not None and name not in _ACTIVATE2_REDUCE:
        raise EmulatorError(f"{instr}: reduce_op {name!r} is not one of {', '.join(_ACTIVATE2_REDUCE)}")
    if cmd == "load_reduce" or (cmd in ("reduce", "reset_reduce", "reset") and name is None):
        raise EmulatorError(f"{instr}: reduce_cmd {cmd!r} " + ("is not supported (idle, reset, reduce, "
                            "reset_reduce)" if cmd == "load_reduce" else "needs reduce_op"))
    if reduce_res is not None:
        res = check_dst(reduce_res, instr)
        if res.shape[0] != rows or res.size != rows:
            raise ShapeError(f"{instr}: reduce_res has shape {res.shape}; it must be [{rows}, 1]")
    write(dst, t, instr)
    regs = regs if regs is not None else ReduceRegisters()
    acc = regs.values[:rows]
    if cmd in ("reset", "reset_reduce"):
        acc[...] = _ACTIVATE2_REDUCE[name]
    if cmd in ("reduce", "reset_reduce"):
        acc[...] = _fold(name, acc.copy(), t.reshape(rows, -1))
    if reduce_res is not None:
        write(reduce_res, acc.reshape(reduce_res.shape), instr)
    return dst


INSTRUCTIONS: dict[str, Instruction] = {
    "activate2": Instruction(activate2, ("scalar",), ("data", "imm0", "imm1", "relu_param"), ("dst", "reduce_res"),
                             "regs"),
    "activation": Instruction(activation, ("scalar",), ("data", "bias", "scale"), ("dst", "reduce_res"), "regs"),
    "activation_reduce": Instruction(activation_reduce, ("scalar",), ("data", "bias", "scale"),
                                     ("dst", "reduce_res"), "regs"),
}
