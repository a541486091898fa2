"""The exact activation functions (``activation_accuracy="exact"``): a float64 scalar formula per function, built on
Python's ``math`` (the C library's double functions), evaluated per element and rounded once to fp32.

The same scalar function runs in both routes of :func:`evaluate`: compiled by Numba in a per-function loop kernel,
or mapped over the elements by the NumPy-side twin. Numba lowers ``math.exp``/``math.tanh``/``math.erfc``... to the
same C library calls CPython's ``math`` makes, so the two routes are bit-identical (checked over every bf16 input by
tests/engines/test_scalar.py). The functions avoid every Python exception (overflow, domain, division by zero) by
testing for those cases first, so both routes see the same IEEE results (inf, signed zeros); every NaN result
becomes the positive quiet NaN 0x7FC00000 (the C library and compiled arithmetic choose different NaN signs).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .._jit import dispatch, njit

__all__ = ["SCALAR", "evaluate"]

_EXP_MAX = 709.782712893384  # largest double whose exp is finite
_SQRT2 = math.sqrt(2.0)
_SQRT_2_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TWO_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _exp(x):
    return math.inf if x > _EXP_MAX else math.exp(x)


def _log(x):
    if x != x or x < 0.0:
        return math.nan
    if x == 0.0:
        return -math.inf
    return math.log(x)


def _sigmoid(x):
    e = math.exp(-abs(x)) if x == x else math.nan
    return 1.0 / (1.0 + e) if x >= 0.0 else e / (1.0 + e)


def _softplus(x):
    return x + math.log1p(math.exp(-x)) if x > 0.0 else math.log1p(_exp(x))


def _periodic(fn):
    def run(x):
        return math.nan if math.isinf(x) else fn(x)
    return run


def _silu(x):
    return x * _sigmoid(x)


def _silu_dx(x):
    s = _sigmoid(x)
    return s * (1.0 + x * (1.0 - s))


def _gelu(x):  # 1 + erf(z) = erfc(-z): no cancellation for x << 0
    return 0.5 * x * math.erfc(-x / _SQRT2)


def _gelu_dx(x):
    return 0.5 * math.erfc(-x / _SQRT2) + x * math.exp(-0.5 * x * x) * _INV_SQRT_2PI


def _gelu_tanh(x):  # 0.5 (1 + tanh(y)) = sigmoid(2y)
    return x * _sigmoid(2.0 * _SQRT_2_PI * (x + 0.044715 * x * x * x))


def _gelu_sigmoid(x):
    return x * _sigmoid(1.702 * x)


def _gelu_sigmoid_dx(x):
    s = _sigmoid(1.702 * x)
    return s + 1.702 * x * s * (1.0 - s)


def _rsqrt(x):
    if x != x or x < 0.0:
        return math.nan
    if x == 0.0:
        return math.copysign(math.inf, x)
    return 1.0 / math.sqrt(x)


def _sqrt(x):
    return math.nan if x < 0.0 else math.sqrt(x)


def _reciprocal(x):
    return math.copysign(math.inf, x) if x == 0.0 else 1.0 / x


def _relu(x):
    return x if (x > 0.0 or x != x) else 0.0


def _sign(x):
    if x > 0.0:
        return 1.0
    if x < 0.0:
        return -1.0
    return x  # +-0 and NaN unchanged


#: activation name -> float64 scalar function (the exact definition of each activation)
SCALAR: dict[str, Callable[[float], float]] = {
    "copy": lambda x: x, "exp": _exp, "log": _log, "tanh": math.tanh, "sigmoid": _sigmoid, "silu": _silu,
    "silu_dx": _silu_dx, "gelu": _gelu, "gelu_dx": _gelu_dx, "gelu_apprx_tanh": _gelu_tanh,
    "gelu_apprx_sigmoid": _gelu_sigmoid, "gelu_apprx_sigmoid_dx": _gelu_sigmoid_dx, "relu": _relu,
    "softplus": _softplus, "mish": lambda x: x * math.tanh(_softplus(x)), "rsqrt": _rsqrt, "sqrt": _sqrt,
    "square": lambda x: x * x, "reciprocal": _reciprocal, "sin": _periodic(math.sin), "cos": _periodic(math.cos),
    "tan": _periodic(math.tan), "arctan": math.atan, "erf": math.erf,
    "erf_dx": lambda x: _TWO_SQRT_PI * math.exp(-x * x), "sign": _sign, "abs": abs, "negative": lambda x: -x,
}

# Numba compiles helper functions that the scalar functions call by name: register them as jitted globals first.
_HELPERS = ("_exp", "_log", "_sigmoid", "_softplus")


def _numpy_kernel(fn):
    def run(x: np.ndarray) -> np.ndarray:
        flat = x.ravel().astype(np.float64).tolist()
        return np.fromiter(map(fn, flat), np.float64, len(flat)).astype(np.float32).reshape(x.shape)
    return run


_KERNELS: dict[str, Callable] = {}


def _numba_kernel(name: str):
    scalar = _jitted(name)

    @njit(cache=False)
    def loop(x, out):
        for i in range(x.size):
            out[i] = np.float32(scalar(np.float64(x[i])))

    def run(x: np.ndarray) -> np.ndarray:
        out = np.empty(x.size, np.float32)
        loop(np.ascontiguousarray(x).reshape(-1), out)
        return out.reshape(x.shape)
    return run


_JITTED: dict[str, Callable] = {}


def _jitted(name: str):
    if not _JITTED:
        g = globals()
        for helper in _HELPERS:  # in dependency order; each sees the helpers jitted before it
            _JITTED[helper] = njit(cache=False)(_rebind(g[helper]))
    if name not in _JITTED:
        fn = SCALAR[name]
        if fn in (math.tanh, math.atan, math.erf, abs):
            fn = SCALAR[name] = _wrap(fn)
        _JITTED[name] = njit(cache=False)(_rebind(fn))
    return _JITTED[name]


def _wrap(fn):
    return lambda x: fn(x)


def _rebind(fn):
    """``fn`` with the module's helper names resolved to their jitted versions (for Numba's global lookup)."""
    import types

    glb = dict(fn.__globals__)
    glb.update({h: _JITTED[h] for h in _HELPERS if h in _JITTED})
    closure = fn.__closure__
    if closure:  # _periodic's inner function: rebuild its cell contents as constants Numba can see
        return types.FunctionType(fn.__code__, glb, fn.__name__, fn.__defaults__, closure)
    return types.FunctionType(fn.__code__, glb, fn.__name__, fn.__defaults__)


def evaluate(name: str, x: np.ndarray) -> np.ndarray:
    """The exact activation ``name`` of fp32 array ``x``: float64 evaluation, one rounding to fp32."""
    kernel = _KERNELS.get(name)
    if kernel is None:
        kernel = _KERNELS[name] = dispatch(_numba_kernel(name), _numpy_kernel(SCALAR[name]))
    with np.errstate(all="ignore"):
        out = kernel(x)
    # NaN payload and sign are undocumented and differ between C-library and compiled IEEE operations: every NaN
    # result is the canonical quiet NaN
    nan = np.isnan(out)
    if nan.any():
        out[nan] = np.float32(np.nan)
    return out
