"""The operator registry for the ``op=`` arguments of the Vector / Scalar / GpSimd instructions.

:func:`resolve` turns what a kernel passes as ``op`` (a name such as ``"add"``, a NumPy ufunc such as ``np.add``, or
any object with a string attribute ``op_name``, which is how the NKI front end tags ``nl.add``) into an :class:`Op`:
the ALU operators of NKI's table (reference section 4.1, ``nki.api.shared`` "Supported Math Operators"):

* **bitvec** (``invert``, ``bitwise_and/or/xor``, ``left_shift``, ``right_shift``): integer dtypes only, computed
  on the raw bits with no cast. Each operand's bits are zero-extended to 32 bits, so ``right_shift`` is the
  documented *logical* shift within the operand's width; shifts by >= 32 give 0. The result's low bits are written.
* **arithmetic** (``add``, ``subtract``, ``multiply``, ``maximum``, ``minimum``, comparisons, ``logical_*``,
  ``power``, ``abs_max``, ``abs_min``, and the simulator-only ``divide``, ``fmod``, ``mod``): fp32 in, fp32 out,
  each result rounded once to fp32 (NumPy's float32 arithmetic is IEEE; ``power`` is evaluated in float64 and
  rounded once). Comparisons and logical ops give 1.0 / 0.0. ``maximum``/``minimum`` propagate NaN.
  ``abs_max``/``abs_min`` return the signed operand with the larger / smaller magnitude, ``y`` on a tie (NKI docs).
* **unary arithmetic** (``abs``, ``square``, ``relu``, ``rsqrt``, ``reciprocal``, ``negative``, ``logical_not``).

:func:`resolve_activation` does the same for the Scalar Engine's activation functions (``exp``, ``tanh``, ``silu``,
``gelu``, ...), each defined exactly by a float64 scalar function (``_activation_kernels.SCALAR``).

>>> import numpy as np
>>> from emulator.engines import ops
>>> ops.resolve(np.add).name, ops.resolve("max").name, ops.resolve("bitwise_and").kind
('add', 'maximum', 'bitvec')
>>> ops.resolve_activation("gelu_apprx_tanh").name
'gelu_apprx_tanh'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..errors import EmulatorError
from . import _activation_kernels as _act_kernels

__all__ = ["Op", "Activation", "resolve", "resolve_activation", "op_names", "activation_names", "REDUCIBLE"]

F32 = np.float32
_U32 = np.uint32
_MASK32 = np.uint64(0xFFFFFFFF)


class UnknownOpError(EmulatorError, ValueError):
    """An ``op`` argument that names no operator of the registry."""


@dataclass(frozen=True, eq=False)
class Op:
    """One ALU operator.

    ``kind`` is ``"bitvec"`` (integer bits), ``"arith"`` (binary, fp32) or ``"unary"`` (fp32, one operand).
    ``f32(a, b)`` computes on float32 arrays (``f32(a)`` for unary); ``bits(a, b)`` on uint64 arrays holding
    zero-extended 32-bit patterns. ``identity`` is the reduction start value (None: not a legal reduction op).
    """

    name: str
    kind: str
    f32: Callable | None = None
    bits: Callable | None = None
    identity: float | int | None = None
    ufunc: Any = None  # the NumPy ufunc whose .accumulate gives the sequential reduction (None: see vector.py)
    integer: Callable | None = None  # exact integer form (GpSimd int32/uint32 path), on int64 arrays

    @property
    def is_bitvec(self) -> bool:
        return self.kind == "bitvec"

    @property
    def arity(self) -> int:
        return 1 if self.kind == "unary" or self.name == "invert" else 2

    def __repr__(self) -> str:
        return f"Op({self.name!r}, {self.kind})"


def _f64(fn: Callable) -> Callable:
    """A float32 op evaluated in float64 and rounded once to float32."""
    def run(a, b=None):
        r = fn(np.asarray(a, np.float64)) if b is None else fn(np.asarray(a, np.float64), np.asarray(b, np.float64))
        return np.asarray(r).astype(F32)
    return run


def _cmp(ufunc) -> Callable:
    return lambda a, b: ufunc(a, b).astype(F32)


def _logical(ufunc) -> Callable:
    return lambda a, b: ufunc(a != 0, b != 0).astype(F32)


def _abs_max(a, b):
    return np.where(np.abs(a) > np.abs(b), a, b).astype(F32, copy=False)


def _abs_min(a, b):
    return np.where(np.abs(a) < np.abs(b), a, b).astype(F32, copy=False)


def _lshift(a, b):
    return np.where(b < 32, (a << np.minimum(b, 31)) & _MASK32, 0).astype(np.uint64)


def _rshift(a, b):
    return np.where(b < 32, a >> np.minimum(b, 31), 0).astype(np.uint64)


def _rsqrt(a):
    with np.errstate(divide="ignore", invalid="ignore"):
        return (1.0 / np.sqrt(np.asarray(a, np.float64))).astype(F32)


def _reciprocal(a):
    with np.errstate(divide="ignore"):
        return np.divide(F32(1.0), a, dtype=F32)


def _relu(a):
    return np.where(a > 0, a, np.where(np.isnan(a), a, F32(0.0))).astype(F32, copy=False)  # NaN propagates


_OPS: dict[str, Op] = {}


def _add(op: Op, *aliases: str) -> None:
    for name in (op.name, *aliases):
        _OPS[name] = op


# ---- bitvec -------------------------------------------------------------------------------------------------------
_add(Op("bitwise_and", "bitvec", bits=np.bitwise_and, identity=0xFFFFFFFF, ufunc=np.bitwise_and), "and")
_add(Op("bitwise_or", "bitvec", bits=np.bitwise_or, identity=0, ufunc=np.bitwise_or), "or")
_add(Op("bitwise_xor", "bitvec", bits=np.bitwise_xor, identity=0, ufunc=np.bitwise_xor), "xor")
_add(Op("invert", "bitvec", bits=lambda a, b=None: (~a) & _MASK32), "bitwise_not")
_add(Op("left_shift", "bitvec", bits=_lshift), "logical_shift_left", "arith_shift_left")
_add(Op("right_shift", "bitvec", bits=_rshift), "logical_shift_right")

# ---- binary arithmetic (fp32) -------------------------------------------------------------------------------------
_add(Op("add", "arith", np.add, identity=0.0, ufunc=np.add, integer=np.add), "plus")
_add(Op("subtract", "arith", np.subtract, identity=0.0, ufunc=np.subtract, integer=np.subtract), "sub", "minus")
_add(Op("multiply", "arith", np.multiply, identity=1.0, ufunc=np.multiply, integer=np.multiply), "mult", "mul")
_add(Op("maximum", "arith", np.maximum, identity=-np.inf, ufunc=np.maximum, integer=np.maximum), "max")
_add(Op("minimum", "arith", np.minimum, identity=np.inf, ufunc=np.minimum, integer=np.minimum), "min")
_add(Op("divide", "arith", np.divide), "true_divide", "div")
_add(Op("power", "arith", _f64(np.power)), "pow")
_add(Op("fmod", "arith", np.fmod))
_add(Op("mod", "arith", np.mod), "remainder")
_add(Op("abs_max", "arith", _abs_max))
_add(Op("abs_min", "arith", _abs_min))
for _name, _uf in (("equal", np.equal), ("not_equal", np.not_equal), ("greater", np.greater),
                   ("greater_equal", np.greater_equal), ("less", np.less), ("less_equal", np.less_equal)):
    _add(Op(_name, "arith", _cmp(_uf), integer=lambda a, b, _u=_uf: _u(a, b).astype(np.int64)))
_add(Op("logical_and", "arith", _logical(np.logical_and), identity=1.0), )
_add(Op("logical_or", "arith", _logical(np.logical_or), identity=0.0))
_add(Op("logical_xor", "arith", _logical(np.logical_xor), identity=0.0))

# ---- unary arithmetic (fp32) --------------------------------------------------------------------------------------
_add(Op("abs", "unary", np.abs), "absolute")
_add(Op("square", "unary", np.square))
_add(Op("relu", "unary", _relu))
_add(Op("rsqrt", "unary", _rsqrt))
_add(Op("reciprocal", "unary", _reciprocal))
_add(Op("negative", "unary", np.negative), "neg")
_add(Op("logical_not", "unary", lambda a: (a == 0).astype(F32)))
_add(Op("copy", "unary", lambda a: a), "identity", "bypass")

#: names of the ops that are legal reduction operators (NKI table column "Legal Reduction op")
REDUCIBLE = ("add", "subtract", "multiply", "maximum", "minimum", "bitwise_and", "bitwise_or", "bitwise_xor",
             "logical_and", "logical_or", "logical_xor")

_UFUNC_NAMES = {np.add: "add", np.subtract: "subtract", np.multiply: "multiply", np.maximum: "maximum",
                np.minimum: "minimum", np.divide: "divide", np.power: "power", np.fmod: "fmod", np.mod: "mod",
                np.equal: "equal", np.not_equal: "not_equal", np.greater: "greater",
                np.greater_equal: "greater_equal", np.less: "less", np.less_equal: "less_equal",
                np.logical_and: "logical_and", np.logical_or: "logical_or", np.logical_xor: "logical_xor",
                np.logical_not: "logical_not", np.bitwise_and: "bitwise_and", np.bitwise_or: "bitwise_or",
                np.bitwise_xor: "bitwise_xor", np.invert: "invert", np.left_shift: "left_shift",
                np.right_shift: "right_shift", np.abs: "abs", np.square: "square", np.reciprocal: "reciprocal",
                np.negative: "negative", np.exp: "exp", np.log: "log", np.tanh: "tanh", np.sqrt: "sqrt",
                np.sin: "sin", np.cos: "cos", np.tan: "tan", np.arctan: "arctan", np.sign: "sign"}


def _key(op: Any) -> str | None:
    """The registry name ``op`` stands for (lower-cased), or None."""
    if isinstance(op, str):
        return op.strip().lower()
    name = getattr(op, "op_name", None)
    if isinstance(name, str):
        return name.strip().lower()
    try:
        if op in _UFUNC_NAMES:
            return _UFUNC_NAMES[op]
    except TypeError:  # unhashable
        return None
    name = getattr(op, "name", None)  # enum members (e.g. an AluOpType-like enum)
    return name.strip().lower() if isinstance(name, str) else None


_CACHE: dict[Any, Op] = {}


def resolve(op: Any, instr: str = "op") -> Op:
    """The :class:`Op` for ``op`` (name, ufunc, :class:`Op`, or object with ``op_name``).

    Raises :class:`UnknownOpError` (an ``EmulatorError``/``ValueError``) naming the op and the known names.

    >>> resolve("add") is resolve(__import__("numpy").add)
    True
    """
    if isinstance(op, Op):
        return op
    return _lookup(op, _OPS, _CACHE, "an ALU operator", op_names, instr)


def _lookup(op: Any, table: dict, cache: dict, what: str, names: Callable, instr: str):
    """``table``'s entry for ``op`` (memoised per op object in ``cache``), or an UnknownOpError."""
    try:
        return cache[op]
    except (KeyError, TypeError):
        pass
    key = _key(op)
    found = table.get(key) if key is not None else None
    if found is None:
        raise UnknownOpError(f"{instr}: {op!r} is not {what}; known: {', '.join(names())}")
    try:
        cache[op] = found
    except TypeError:  # unhashable op objects are resolved every time
        pass
    return found


def op_names() -> list[str]:
    """Canonical names of every ALU operator."""
    return sorted({o.name for o in _OPS.values()})


# ==== activation functions (Scalar Engine) =========================================================================

@dataclass(frozen=True, eq=False)
class Activation:
    """An activation function. Its exact definition is the float64 scalar function of the same name in
    :mod:`emulator.engines._activation_kernels`; ``f32`` is NumPy's float32 routine for it where NumPy has one (used
    under ``activation_accuracy="float32"``), else None."""

    name: str
    f32: Callable | None = None

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


def _np_reciprocal(x):
    return np.divide(F32(1.0), x, dtype=F32)


def _np_rsqrt(x):
    return np.divide(F32(1.0), np.sqrt(x), dtype=F32)


# NumPy float32 routines: name -> (routine, aliases); the other activations have only their exact definition
_F32_ROUTINES = {
    "copy": (lambda x: x, ("identity", "bypass")), "exp": (np.exp, ("exponential",)), "log": (np.log, ()),
    "tanh": (np.tanh, ()), "sqrt": (np.sqrt, ()), "rsqrt": (_np_rsqrt, ()), "square": (np.square, ()),
    "reciprocal": (_np_reciprocal, ()), "sin": (np.sin, ()), "cos": (np.cos, ()), "tan": (np.tan, ()),
    "arctan": (np.arctan, ()), "sign": (np.sign, ()), "abs": (np.abs, ("absolute",)), "negative": (np.negative, ()),
}
_ALIASES = {"sigmoid": ("logistic",), "silu": ("swish",), "gelu": ("gelu_erf",), "gelu_apprx_tanh": ("gelu_tanh",)}

_ACTS: dict[str, Activation] = {}
for _name in _act_kernels.SCALAR:
    _routine, _aliases = _F32_ROUTINES.get(_name, (None, ()))
    _a = Activation(_name, _routine)
    for _n in (_name, *_aliases, *_ALIASES.get(_name, ())):
        _ACTS[_n] = _a

_ACT_CACHE: dict[Any, Activation] = {}


def resolve_activation(op: Any, instr: str = "activation") -> Activation:
    """The :class:`Activation` for ``op`` (name, ufunc such as ``np.exp``, or object with ``op_name``).

    >>> resolve_activation(__import__("numpy").tanh).name
    'tanh'
    """
    if isinstance(op, Activation):
        return op
    return _lookup(op, _ACTS, _ACT_CACHE, "an activation function", activation_names, instr)


def activation_names() -> list[str]:
    """Canonical names of every activation function."""
    return sorted({a.name for a in _ACTS.values()})
