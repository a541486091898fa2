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
``gelu``, ...), each an exact float64 formula whose result the Scalar Engine rounds once to fp32.

>>> import numpy as np
>>> from emulator.engines import ops
>>> ops.resolve(np.add).name, ops.resolve("max").name, ops.resolve("bitwise_and").kind
('add', 'maximum', 'bitvec')
>>> ops.resolve_activation("gelu_apprx_tanh").name
'gelu_apprx_tanh'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..errors import EmulatorError

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
    try:
        return _CACHE[op]
    except (KeyError, TypeError):
        pass
    key = _key(op)
    found = _OPS.get(key) if key is not None else None
    if found is None:
        raise UnknownOpError(f"{instr}: {op!r} is not an ALU operator; known: {', '.join(op_names())}")
    try:
        _CACHE[op] = found
    except TypeError:
        pass
    return found


def op_names() -> list[str]:
    """Canonical names of every ALU operator."""
    return sorted({o.name for o in _OPS.values()})


# ==== activation functions (Scalar Engine) =========================================================================

@dataclass(frozen=True, eq=False)
class Activation:
    """An activation function: ``f64(x)`` evaluates it exactly (to float64 precision) on a float64 array."""

    name: str
    f64: Callable

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


_SQRT2 = math.sqrt(2.0)
_SQRT_2_PI = math.sqrt(2.0 / math.pi)


def _sigmoid(x):
    # exp(-|x|) never overflows; both branches are the exact logistic function
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softplus(x):
    return np.logaddexp(0.0, x)


def _erf(x):
    # NumPy has no erf ufunc: math.erf (correctly rounded to ~1 ulp of float64) over the array
    flat = np.asarray(x, np.float64).ravel()
    return np.fromiter(map(math.erf, flat.tolist()), np.float64, flat.size).reshape(np.shape(x))


def _erfc(x):
    flat = np.asarray(x, np.float64).ravel()
    return np.fromiter(map(math.erfc, flat.tolist()), np.float64, flat.size).reshape(np.shape(x))


# 1 + erf(z) = erfc(-z) and 1 + tanh(y) = 2 sigmoid(2y): the same functions without cancellation for x << 0
def _gelu(x):
    return 0.5 * x * _erfc(-x / _SQRT2)


def _gelu_dx(x):
    return 0.5 * _erfc(-x / _SQRT2) + x * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _gelu_tanh(x):
    return x * _sigmoid(2.0 * _SQRT_2_PI * (x + 0.044715 * x * x * x))


def _relu64(x):
    return np.where(x > 0, x, np.where(np.isnan(x), x, 0.0))


def _gelu_sigmoid(x):
    return x * _sigmoid(1.702 * x)


def _gelu_sigmoid_dx(x):
    s = _sigmoid(1.702 * x)
    return s + 1.702 * x * s * (1.0 - s)


def _silu_dx(x):
    s = _sigmoid(x)
    return s * (1.0 + x * (1.0 - s))


def _with_errstate(fn):
    def run(x):
        with np.errstate(all="ignore"):
            return fn(x)
    return run


_ACTS: dict[str, Activation] = {}


def _act(name: str, fn: Callable, *aliases: str) -> None:
    a = Activation(name, _with_errstate(fn))
    for n in (name, *aliases):
        _ACTS[n] = a


_act("copy", lambda x: x, "identity", "bypass")
_act("exp", np.exp, "exponential")
_act("log", np.log)
_act("tanh", np.tanh)
_act("sigmoid", _sigmoid, "logistic")
_act("silu", lambda x: x * _sigmoid(x), "swish")
_act("silu_dx", _silu_dx)
_act("gelu", _gelu, "gelu_erf")
_act("gelu_dx", _gelu_dx)
_act("gelu_apprx_tanh", _gelu_tanh, "gelu_tanh")
_act("gelu_apprx_sigmoid", _gelu_sigmoid)
_act("gelu_apprx_sigmoid_dx", _gelu_sigmoid_dx)
_act("relu", _relu64)
_act("softplus", _softplus)
_act("mish", lambda x: x * np.tanh(_softplus(x)))
_act("rsqrt", lambda x: 1.0 / np.sqrt(x))
_act("sqrt", np.sqrt)
_act("square", np.square)
_act("reciprocal", lambda x: 1.0 / x)
_act("sin", np.sin)
_act("cos", np.cos)
_act("tan", np.tan)
_act("arctan", np.arctan)
_act("erf", _erf)
_act("erf_dx", lambda x: (2.0 / math.sqrt(math.pi)) * np.exp(-x * x))
_act("sign", np.sign)
_act("abs", np.abs, "absolute")
_act("negative", np.negative)

_ACT_CACHE: dict[Any, Activation] = {}


def resolve_activation(op: Any, instr: str = "activation") -> Activation:
    """The :class:`Activation` for ``op`` (name, ufunc such as ``np.exp``, or object with ``op_name``).

    >>> resolve_activation(__import__("numpy").tanh).name
    'tanh'
    """
    if isinstance(op, Activation):
        return op
    try:
        return _ACT_CACHE[op]
    except (KeyError, TypeError):
        pass
    key = _key(op)
    found = _ACTS.get(key) if key is not None else None
    if found is None:
        raise UnknownOpError(f"{instr}: {op!r} is not an activation function; known: "
                             f"{', '.join(activation_names())}")
    try:
        _ACT_CACHE[op] = found
    except TypeError:
        pass
    return found


def activation_names() -> list[str]:
    """Canonical names of every activation function."""
    return sorted({a.name for a in _ACTS.values()})
