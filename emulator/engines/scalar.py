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
from ..errors import EmulatorError
from . import operands as _o
from ._activation_kernels import evaluate as exact_activation
from .operands import F32, Instruction, ReduceRegisters, check_dst, f32, like, per_partition, write
from .ops import Activation, resolve, resolve_activation
from .vector import sequential_reduce

__all__ = ["activation", "activation_reduce", "evaluate", "INSTRUCTIONS"]


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


INSTRUCTIONS: dict[str, Instruction] = {
    "activation": Instruction(activation, ("scalar",), ("data", "bias", "scale"), ("dst", "reduce_res"), "regs"),
    "activation_reduce": Instruction(activation_reduce, ("scalar",), ("data", "bias", "scale"),
                                     ("dst", "reduce_res"), "regs"),
}
