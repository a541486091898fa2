"""Scalar Engine activation against references written with Python's ``math`` module, exhaustively over all 2^16
bfloat16 inputs: with ``activation_accuracy="exact"`` every result must be the fp32 nearest to the float64 value
of the ideal function (0.5 ulp; a result on the other side is accepted only when the float64 value sits within
2^-40 relative of a rounding tie, where float64 evaluation itself cannot decide)."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

import emulator as emu
from emulator.engines import scalar
from emulator.engines.operands import ReduceRegisters
from emulator.errors import EmulatorError, ShapeError
from emulator.testing import assert_bitwise_equal, assert_within_ulps

BF16 = ml_dtypes.bfloat16
ALL_BF16 = np.arange(1 << 16, dtype=np.uint16).view(BF16).reshape(128, 512)
X64 = ALL_BF16.astype(np.float32).astype(np.float64).ravel().tolist()


def _exp(x):
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _sigmoid(x):
    return 1.0 / (1.0 + _exp(-x)) if x >= 0 else _exp(x) / (1.0 + _exp(x))


def _softplus(x):
    return x + math.log1p(_exp(-x)) if x > 0 else math.log1p(_exp(x))


def _guard(fn):
    def run(x):
        if math.isnan(x):
            return math.nan
        try:
            return fn(x)
        except ValueError:  # math domain error -> NaN, as IEEE gives
            return math.nan
        except ZeroDivisionError:
            return math.copysign(math.inf, x)
    return run


def _log(x):
    return -math.inf if x == 0 else math.log(x)


def _mul_inf(a, b):
    return a * b if not (a == 0 and math.isinf(b)) else math.nan


REFS = {
    "copy": lambda x: x,
    "exp": _exp,
    "log": _log,
    "tanh": math.tanh,
    "sigmoid": _sigmoid,
    "silu": lambda x: x * _sigmoid(x),
    # 1 + erf(z) = erfc(-z), 1 + tanh(y) = 2 / (1 + exp(-2y)): the float64 references must not cancel either
    "gelu": lambda x: 0.5 * x * math.erfc(-x / math.sqrt(2.0)),
    "gelu_apprx_tanh": lambda x: 0.5 * x * (2.0 * _sigmoid(2.0 * math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3))),
    "gelu_apprx_sigmoid": lambda x: x * _sigmoid(1.702 * x),
    "relu": lambda x: x if x > 0 else 0.0,  # NaN handled by _guard: relu propagates NaN
    "softplus": _softplus,
    "rsqrt": lambda x: (math.copysign(math.inf, x) if x == 0 else 1.0 / math.sqrt(x)),  # IEEE: rsqrt(-0) = -inf
    "sqrt": math.sqrt,
    "square": lambda x: x * x,
    "sin": math.sin,
    "cos": math.cos,
    "erf": math.erf,
    "reciprocal": lambda x: 1.0 / x,
    "abs": abs,
    "sign": lambda x: (x > 0) - (x < 0) if x != 0 else x,
    "arctan": math.atan,
    "erf_dx": lambda x: 2.0 / math.sqrt(math.pi) * _exp(-x * x),
    "silu_dx": lambda x: _sigmoid(x) * (1.0 + x * (1.0 - _sigmoid(x))),
    "mish": lambda x: x * math.tanh(_softplus(x)),
    "gelu_dx": lambda x: 0.5 * math.erfc(-x / math.sqrt(2.0)) + x * _exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi),
}


def _reference(name):
    fn = _guard(REFS[name])
    out = []
    for x in X64:
        try:
            out.append(fn(x))
        except OverflowError:
            out.append(math.nan)
    return np.array(out, np.float64)


@pytest.mark.parametrize("name", sorted(REFS))
def test_activation_correctly_rounded_over_all_bf16(name):
    dst = np.empty((128, 512), np.float32)
    scalar.activation(dst, name, ALL_BF16)
    got = dst.ravel()
    ref = _reference(name)
    with np.errstate(over="ignore"):
        nearest = ref.astype(np.float32)
    same = (got.view(np.uint32) == nearest.view(np.uint32)) | (np.isnan(got) & np.isnan(ref))
    # signed zero of an exact zero result is not part of the claim for composite formulas (x * sigmoid(x) at -0)
    same |= (got == 0) & (ref == 0)
    bad = np.nonzero(~same)[0]
    for i in bad:
        r, g, n = ref[i], float(got[i]), float(nearest[i])
        assert math.isfinite(r) and math.isfinite(g), (name, X64[i], g, r)
        mid = (g + n) / 2.0
        assert abs(r - mid) <= abs(r) * 2.0 ** -40, (name, X64[i], g, n, r)  # only a near-tie may differ
    assert len(bad) <= 4, (name, len(bad))


def test_exact_activations_bit_identical_with_numba_on_and_off():
    from emulator.engines import _activation_kernels

    for name in sorted(_activation_kernels.SCALAR):
        with emu.settings(numba=True):
            a = scalar.activation(np.empty((128, 512), np.float32), name, ALL_BF16)
        with emu.settings(numba=False):
            b = scalar.activation(np.empty((128, 512), np.float32), name, ALL_BF16)
        assert (a.view(np.uint32) == b.view(np.uint32)).all(), name


def test_scale_and_bias_are_fp32_operations():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 32)).astype(np.float32)
    scale = np.float32(1.37)
    bias = rng.standard_normal((4, 1)).astype(np.float32)
    dst = np.empty((4, 32), BF16)
    scalar.activation(dst, "tanh", x, bias=bias, scale=float(scale))
    t = (x.astype(np.float64) * float(scale)).astype(np.float32)  # x * scale rounded to fp32
    t = (t.astype(np.float64) + bias.astype(np.float64)).astype(np.float32)  # + bias rounded to fp32
    ref = np.array([math.tanh(v) for v in t.astype(np.float64).ravel()]).astype(np.float32).reshape(4, 32)
    assert_bitwise_equal(dst, ref.astype(BF16))
    per_lane = np.full((4, 1), 2.0, np.float32)
    out = scalar.activation(np.empty((4, 32), np.float32), "copy", x, scale=per_lane)
    assert_bitwise_equal(out, x * np.float32(2.0))


def test_reduce_commands_and_registers():
    regs = ReduceRegisters()
    x = np.array([[1.0, 2.0, 3.0], [0.5, 0.25, 0.125]], np.float32)
    res = np.empty((2, 1), np.float32)
    dst = np.empty_like(x)
    scalar.activation(dst, "copy", x, reduce_op="add", reduce_res=res, reduce_cmd="reset_reduce", regs=regs)
    assert res.ravel().tolist() == [6.0, 0.875]
    scalar.activation(dst, "square", x, reduce_op="add", reduce_cmd="reduce", regs=regs)  # no readout
    scalar.activation(dst, "copy", x, reduce_res=res, regs=regs)  # idle: regs unchanged, read out
    assert res.ravel().tolist() == [6.0 + 14.0, 0.875 + 0.328125]
    scalar.activation(dst, "copy", x, reduce_res=res, reduce_cmd="reset", regs=regs)
    assert res.ravel().tolist() == [0.0, 0.0]
    scalar.activation_reduce(dst, "exp", np.zeros((2, 3), np.float32), "add", res)
    assert res.ravel().tolist() == [3.0, 3.0]


def test_reduce_sum_is_sequential_fp32():
    x = np.array([[1.0, 2.0 ** -24, 2.0 ** -24, 2.0 ** -24, 2.0 ** -24]], np.float32)
    res = np.empty((1, 1), np.float32)
    scalar.activation(np.empty_like(x), "copy", x, reduce_op="add", reduce_res=res, reduce_cmd="reset_reduce")
    acc = np.float32(0.0)
    for v in x.ravel():
        acc = np.float32(acc + v)  # each add rounds: the 2^-24 terms vanish one by one
    assert res[0, 0] == acc == 1.0


def test_errors():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(EmulatorError, match="not an activation"):
        scalar.activation(np.empty_like(x), "frob", x)
    with pytest.raises(EmulatorError, match="reduce_op must be add"):
        scalar.activation(np.empty_like(x), "exp", x, reduce_op="maximum", reduce_cmd="reset_reduce")
    with pytest.raises(ShapeError, match=r"\[2, 1\]"):
        scalar.activation(np.empty_like(x), "exp", x, bias=np.ones((3, 1), np.float32))
    with pytest.raises(ShapeError, match="reduce_res"):
        scalar.activation_reduce(np.empty_like(x), "exp", x, "add", np.empty((2, 2), np.float32))
    with pytest.raises(EmulatorError, match="needs reduce_op"):
        scalar.activation(np.empty_like(x), "exp", x, reduce_cmd="reduce")


@pytest.mark.parametrize("name", ["exp", "tanh", "log", "sqrt", "sin"])
def test_float32_accuracy_setting_within_4_ulp(name):
    x = np.abs(ALL_BF16.astype(np.float32)) if name in ("log", "sqrt") else ALL_BF16.astype(np.float32)
    x = np.where(np.isfinite(x) & (np.abs(x) < 1e4), x, np.float32(1.0)).astype(np.float32)
    with emu.settings(activation_accuracy="float32"):
        got = scalar.activation(np.empty_like(x), name, x)
    with np.errstate(divide="ignore"):
        ref = np.array([_guard(REFS[name])(v) for v in x.astype(np.float64).ravel()]).reshape(x.shape)
    assert_within_ulps(got, ref.astype(np.float32), ulps=4)


# ---- activate2: against the docstring's Behavior block with Python floats ---------------------------------------

def _r32(v: float) -> float:
    return float(np.float32(v))


_A2_ALU = {"multiply": lambda a, b: _r32(a * b), "add": lambda a, b: _r32(a + b),
           "subtract": lambda a, b: _r32(a - b)}
_A2_ACT = {"copy": lambda x, a: x, "relu": lambda x, a: x if (x > 0 or x != x) else 0.0,
           "square": lambda x, a: _r32(x * x), "tanh": lambda x, a: _r32(math.tanh(x)),
           "prelu": lambda x, a: x if x > 0 else _r32(a * x)}


def _a2_fold(name, acc, x):
    if name == "add":
        return _r32(acc + x)
    if name == "abs_max":   # ops.py's rule: the operand of larger magnitude, x on a tie (a NaN compares false)
        return acc if abs(acc) > abs(x) else x
    if name == "abs_min":
        return acc if abs(acc) < abs(x) else x
    if x != x or acc != acc:   # maximum / minimum propagate NaN
        return math.nan
    if name == "maximum":
        return max(acc, x)
    return min(acc, x)


def activate2_ref(data, op, imm0, imm1, op0, op1, alpha, rev0, rev1, reduce_op, start):
    out, accs = [], []
    for p, row in enumerate(data.reshape(data.shape[0], -1).tolist()):
        acc, vals = start[p], []
        for v in row:
            if op0 != "bypass":
                v = _A2_ALU[op0](imm0[p], v) if rev0 else _A2_ALU[op0](v, imm0[p])
            if op1 != "bypass":
                v = _A2_ALU[op1](imm1[p], v) if rev1 else _A2_ALU[op1](v, imm1[p])
            v = _A2_ACT[op](v, alpha[p])
            vals.append(v)
            if reduce_op is not None:
                acc = _a2_fold(reduce_op, acc, v)
        out.append(vals)
        accs.append(acc)
    return np.array(out, np.float32), np.array(accs, np.float32)


_A2_START = {"add": 0.0, "maximum": -math.inf, "minimum": math.inf, "abs_max": 0.0, "abs_min": math.inf}


@pytest.mark.parametrize("pair", [("multiply", "add"), ("multiply", "subtract"), ("multiply", "bypass"),
                                  ("add", "bypass"), ("subtract", "bypass"), ("bypass", "bypass")])
@pytest.mark.parametrize("op", ["copy", "relu", "square", "tanh", "prelu"])
@pytest.mark.parametrize("reduce_op", [None, "add", "maximum", "minimum", "abs_max", "abs_min"])
def test_activate2_matches_reference(pair, op, reduce_op):
    rng = np.random.default_rng(abs(hash((pair, op, reduce_op))) % 2**32)
    rows = 6
    data = (rng.standard_normal((rows, 3, 5)) * 2).astype(np.float32)
    data[0, 0, :3] = [np.nan, -0.0, np.inf]
    imm0 = rng.standard_normal((rows, 1)).astype(np.float32)
    imm1 = np.float32(0.75)
    alpha = rng.standard_normal((rows, 1)).astype(np.float32)
    rev0, rev1 = pair[0] == "subtract", pair[1] == "subtract"
    regs = ReduceRegisters()
    regs.values[:] = 3.0
    cmd = "idle" if reduce_op is None else "reset_reduce"
    start = [3.0] * rows if reduce_op is None else [_A2_START[reduce_op]] * rows
    want, acc = activate2_ref(data, op, imm0[:, 0].tolist(), [0.75] * rows, pair[0], pair[1], alpha[:, 0].tolist(),
                              rev0, rev1, reduce_op, start)
    res = np.empty((rows, 1), np.float32)
    dst = np.empty((rows, 15), ml_dtypes.bfloat16)
    scalar.activate2(dst, op, data, imm0, imm1, pair[0], pair[1], relu_param=alpha, reverse0=rev0, reverse1=rev1,
                     reduce_op=reduce_op, reduce_res=res, reduce_cmd=cmd, regs=regs)
    assert_bitwise_equal(dst, want.reshape(rows, 15).astype(ml_dtypes.bfloat16))
    assert_bitwise_equal(res[:, 0], acc)
    assert_bitwise_equal(regs.values[:rows], acc)


def test_activate2_accumulator_commands():
    regs = ReduceRegisters()
    x = np.array([[1.0, 2.0]], np.float32)
    res = np.empty((1, 1), np.float32)
    a2 = scalar.activate2
    a2(np.empty((1, 2), np.float32), "copy", x, 0.0, 0.0, "bypass", "bypass", reduce_op="add", reduce_cmd="reset_reduce",
       regs=regs)
    a2(np.empty((1, 2), np.float32), "copy", x, 0.0, 0.0, "bypass", "bypass", reduce_op="add", reduce_cmd="reduce",
       reduce_res=res, regs=regs)
    assert res[0, 0] == 6.0
    a2(np.empty((1, 2), np.float32), "copy", x, 0.0, 0.0, "bypass", "bypass", reduce_res=res, regs=regs)  # idle
    assert res[0, 0] == 6.0
    a2(np.empty((1, 2), np.float32), "copy", x, 0.0, 0.0, "bypass", "bypass", reduce_op="minimum", reduce_cmd="reset",
       reduce_res=res, regs=regs)
    assert res[0, 0] == np.inf
    # the accumulators are the ones activation uses (shared per engine)
    scalar.activation(np.empty((1, 2), np.float32), "copy", x, reduce_op="add", reduce_cmd="reduce", reduce_res=res,
                      regs=regs)
    assert res[0, 0] == np.inf


def test_activate2_errors_change_nothing():
    regs = ReduceRegisters()
    regs.values[:] = 2.0
    dst = np.full((2, 2), 9.0, np.float32)
    x = np.ones((2, 2), np.float32)
    base = dict(op="copy", data=x, imm0=1.0, imm1=1.0, op0="multiply", op1="add")
    for kw, err, msg in [
        (dict(op0="add", op1="add"), EmulatorError, "\\(op0, op1\\) = \\(add, add\\) is not a supported pair"),
        (dict(op0="bypass", op1="bypass", reverse0=True), EmulatorError, "reverse0=True needs op0 to be set"),
        (dict(reduce_op="multiply", reduce_cmd="reset_reduce"), EmulatorError, "reduce_op 'multiply' is not one"),
        (dict(reduce_cmd="reduce"), EmulatorError, "reduce_cmd 'reduce' needs reduce_op"),
        (dict(reduce_op="add", reduce_cmd="load_reduce"), EmulatorError, "'load_reduce' is not supported"),
        (dict(reduce_op="add", reduce_cmd="reset_reduce", reduce_res=np.empty((1, 1), np.float32)), ShapeError,
         "reduce_res has shape \\(1, 1\\); it must be \\[2, 1\\]"),
        (dict(imm0=np.ones((2, 1), np.float32), imm1=np.ones((2, 1), ml_dtypes.bfloat16)), emu.errors.DtypeError,
         "tensor immediates must share a dtype"),
        (dict(relu_param=np.ones((3, 1), np.float32)), ShapeError, "relu_param has shape"),
        (dict(op="not_an_activation"), EmulatorError, "not an activation function"),
    ]:
        with pytest.raises(err, match=msg):
            scalar.activate2(dst, regs=regs, **(base | kw))
    assert (dst == 9.0).all() and (regs.values == 2.0).all()
