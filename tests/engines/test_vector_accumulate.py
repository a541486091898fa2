"""exponential, tensor_scalar_reduce and tensor_partition_reduce against scalar loops of the NKI pseudo-code."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

from emulator.engines.operands import ReduceRegisters
from emulator.engines.vector_accumulate import exponential, tensor_partition_reduce, tensor_scalar_reduce
from emulator.errors import EmulatorError, ShapeError
from emulator.testing import assert_bitwise_equal

BF16 = ml_dtypes.bfloat16


def _rows(seed, shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_exponential_values_and_running_sum():
    x = _rows(0, (3, 17))
    mx = x.max(axis=1, keepdims=True)
    regs, res = ReduceRegisters(), np.empty((3, 1), np.float32)
    dst = exponential(np.empty((3, 17), BF16), x, max_value=mx, reduce_res=res, reduce_cmd="load_reduce",
                      reduce_init=np.float32(0.5), regs=regs)
    for p in range(3):
        e = [np.float32(math.exp(float(np.float32(x[p, j] - mx[p, 0])))) for j in range(17)]
        assert_bitwise_equal(dst[p], np.array(e, np.float32).astype(BF16))
        acc = np.float32(0.5)
        s = e[0]
        for v in e[1:]:
            s = np.float32(s + v)  # the row sum in element order, then added to the loaded value
        assert res[p, 0] == np.float32(acc + s)
    exponential(np.empty((3, 17), np.float32), x, max_value=mx, reduce_cmd="reduce", regs=regs)
    exponential(np.empty((3, 17), np.float32), x, max_value=mx, reduce_res=res, regs=regs)  # idle: read out
    assert res[0, 0] > 2.0
    with pytest.raises(EmulatorError, match="reduce_cmd"):
        exponential(np.empty((3, 17), np.float32), x, reduce_cmd="reset")


@pytest.mark.parametrize("reduce_op,identity", [("add", 0.0), ("multiply", 1.0), ("maximum", -np.inf),
                                                ("minimum", np.inf)])
def test_tensor_scalar_reduce(reduce_op, identity):
    x = _rows(1, (2, 3, 4))
    regs, res = ReduceRegisters(), np.empty((2, 1), np.float32)
    dst = tensor_scalar_reduce(np.empty((2, 3, 4), np.float32), x, "subtract", 0.25, reduce_op, res, regs=regs)
    fn = {"add": np.add, "multiply": np.multiply, "maximum": np.maximum, "minimum": np.minimum}[reduce_op]
    for p in range(2):
        t = [np.float32(float(v) - 0.25) for v in x[p].ravel()]
        assert dst[p].ravel().tolist() == [float(v) for v in t]
        acc = t[0]
        for v in t[1:]:
            acc = np.float32(fn(np.float64(acc), np.float64(v)))
        assert res[p, 0] == np.float32(fn(np.float64(identity), np.float64(acc)))
    neg, back = np.empty((2, 1), np.float32), np.empty((2, 1), np.float32)
    tensor_scalar_reduce(np.empty((2, 3, 4), np.float32), x, "subtract", 0.25, reduce_op, neg, regs=regs,
                         reduce_res_negate=True)
    assert_bitwise_equal(neg, -res)
    tensor_scalar_reduce(np.empty((2, 3, 4), np.float32), x, "subtract", 0.25, reduce_op, back, regs=regs,
                         reduce_cmd="idle")  # the registers kept the un-negated value
    assert_bitwise_equal(back, res)


def test_tensor_scalar_reduce_errors():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(EmulatorError, match="reverse0"):
        tensor_scalar_reduce(np.empty_like(x), x, "add", 1.0, "add", reverse0=True)
    with pytest.raises(EmulatorError, match="reduce_op"):
        tensor_scalar_reduce(np.empty_like(x), x, "add", 1.0, "divide")
    with pytest.raises(EmulatorError, match="reduce_init"):
        tensor_scalar_reduce(np.empty_like(x), x, "add", 1.0, "add", reduce_cmd="load_reduce")
    with pytest.raises(ShapeError, match="reduce_res"):
        tensor_scalar_reduce(np.empty_like(x), x, "add", 1.0, "add", np.empty((2, 2), np.float32))


def test_tensor_partition_reduce():
    x = _rows(2, (5, 6))
    out = tensor_partition_reduce(np.empty((1, 6), np.float32), "add", x)
    for j in range(6):
        acc = x[0, j]
        for p in range(1, 5):
            acc = np.float32(acc + x[p, j])
        assert out[0, j] == acc
    avg = tensor_partition_reduce(np.empty((1, 6), np.float32), "average", x)
    assert_bitwise_equal(avg, out / np.float32(5))
    assert (tensor_partition_reduce(np.empty((1, 6), np.float32), "maximum", x) == x.max(axis=0)).all()
    bits = np.array([[1, 2], [4, 2]], np.uint8)
    assert tensor_partition_reduce(np.empty((1, 2), np.uint8), "bitwise_or", bits).tolist() == [[5, 2]]
    with pytest.raises(ShapeError, match=r"\[1, 6\]"):
        tensor_partition_reduce(np.empty((2, 6), np.float32), "add", x)
    with pytest.raises(EmulatorError, match="not one of"):
        tensor_partition_reduce(np.empty((1, 6), np.float32), "multiply", x)


# ---- tensor_scalar_cumulative: against the docstring's pseudocode with Python floats ----------------------------

def _f32(v: float) -> float:
    """Round a Python float (exact result of one fp32 op, or within float64's double-rounding-safe margin) to fp32."""
    return float(np.float32(v))


_PY_OPS = {"add": lambda a, b: _f32(a + b), "subtract": lambda a, b: _f32(a - b),
           "multiply": lambda a, b: _f32(a * b),
           "maximum": lambda a, b: a if math.isnan(a) else b if math.isnan(b) else max(a, b),
           "minimum": lambda a, b: a if math.isnan(a) else b if math.isnan(b) else min(a, b)}
_PY_IDENTITY = {"add": 0.0, "subtract": 0.0, "multiply": 1.0, "maximum": -math.inf, "minimum": math.inf}


def cumulative_ref(src, op0, op1, imm0, start):
    """reg = op1(op0(x_i, imm0), reg); out_i = reg; per partition (Python floats, each op rounded to fp32)."""
    out, final = [], []
    for p, row in enumerate(src.reshape(src.shape[0], -1).tolist()):
        reg, vals = start[p], []
        for x in row:
            reg = _PY_OPS[op1](_PY_OPS[op0](x, imm0[p]), reg)
            vals.append(reg)
        out.append(vals)
        final.append(reg)
    return np.array(out, np.float32), np.array(final, np.float32)


@pytest.mark.parametrize("op0", ["add", "subtract", "multiply", "maximum"])
@pytest.mark.parametrize("op1", ["add", "subtract", "multiply", "maximum", "minimum"])
@pytest.mark.parametrize("cmd", ["reset_reduce", "reduce", "load_reduce"])
def test_tensor_scalar_cumulative_matches_reference(op0, op1, cmd):
    rng = np.random.default_rng(abs(hash((op0, op1, cmd))) % 2**32)
    rows, free = 5, 24
    src = (rng.standard_normal((rows, 4, 6)) * 3).astype(np.float32)
    imm0 = (rng.standard_normal((rows, 1))).astype(np.float32)
    imm1 = (rng.standard_normal((rows, 1))).astype(np.float32)
    regs = ReduceRegisters()
    regs.values[:rows] = rng.standard_normal(rows).astype(np.float32)
    start = {"reset_reduce": [_PY_IDENTITY[op1]] * rows, "reduce": regs.values[:rows].tolist(),
             "load_reduce": imm1[:, 0].tolist()}[cmd]
    want, final = cumulative_ref(src, op0, op1, imm0[:, 0].tolist(), start)
    from emulator.engines.vector_accumulate import tensor_scalar_cumulative
    dst = np.empty((rows, free), np.float32)
    tensor_scalar_cumulative(dst, src, op0, op1, imm0, imm1=imm1, reduce_cmd=cmd, regs=regs)
    assert_bitwise_equal(dst, want)
    assert_bitwise_equal(regs.values[:rows], final)


def test_tensor_scalar_cumulative_sdk_cases_and_bf16_dst():
    from emulator.engines.vector_accumulate import tensor_scalar_cumulative as tsc
    src = np.ones((128, 64), np.float32)
    regs = ReduceRegisters()
    dst = np.empty((128, 64), np.float32)
    tsc(dst, src, "add", "add", np.float32(0.0), regs=regs)
    tsc(dst, src, "add", "add", np.float32(0.0), imm1=np.float32(1.0), reduce_cmd="reduce", regs=regs)  # imm1 unused
    assert (dst == np.arange(1, 65, dtype=np.float32) + 64).all()
    tsc(dst, src, "add", "minimum", np.ones((128, 1), np.float32), imm1=np.zeros((128, 1), np.float32),
        reduce_cmd="load_reduce", regs=regs)
    assert (dst == 0).all() and (regs.values == 0).all()
    x = np.array([[1.0, 2.0**-9, 2.0**-9, 2.0**-9]], np.float32)   # running sums need fp32, dst rounds once
    out = tsc(np.empty((1, 4), ml_dtypes.bfloat16), x, "add", "add", 0.0)
    want = np.array([[1.0, 1.0 + 2**-9, 1.0 + 2**-8, 1.0 + 3 * 2**-9]], np.float32).astype(ml_dtypes.bfloat16)
    assert_bitwise_equal(out, want)


def test_tensor_scalar_cumulative_nan_and_signed_zero():
    from emulator.engines.vector_accumulate import tensor_scalar_cumulative as tsc
    x = np.array([[-0.0, 1.0, np.nan, 2.0]], np.float32)
    out = tsc(np.empty((1, 4), np.float32), x, "multiply", "maximum", 1.0)
    assert np.signbit(out[0, 0]) and out[0, 1] == 1.0 and np.isnan(out[0, 2:]).all()
    out = tsc(np.empty((1, 2), np.float32), np.array([[-0.0, -0.0]], np.float32), "add", "add", -0.0)
    assert_bitwise_equal(out, cumulative_ref(np.array([[-0.0, -0.0]], np.float32), "add", "add", [-0.0], [0.0])[0])


def test_tensor_scalar_cumulative_errors_change_nothing():
    from emulator.engines.vector_accumulate import tensor_scalar_cumulative as tsc
    from emulator.errors import DtypeError
    regs = ReduceRegisters()
    regs.values[:] = 7.0
    dst = np.full((2, 3), 5.0, np.float32)
    x = np.ones((2, 3), np.float32)
    for kw, err, msg in [
        (dict(src=np.ones((2, 3), np.int32)), DtypeError, "src is int32; int32/uint32 are not supported"),
        (dict(op1="divide"), EmulatorError, "op1 'divide' is not one of add, subtract"),
        (dict(op0="bitwise_and"), EmulatorError, "op0 'bitwise_and' must be a binary arithmetic"),
        (dict(reduce_cmd="idle"), EmulatorError, "reduce_cmd 'idle' must be reset_reduce, reduce or load_reduce"),
        (dict(reduce_cmd="load_reduce"), EmulatorError, "load_reduce needs imm1"),
        (dict(imm0=np.ones((2, 1), ml_dtypes.bfloat16)), DtypeError, "imm0 is a bfloat16 tile; it must be float32"),
        (dict(imm0=np.ones((3, 1), np.float32)), ShapeError, "imm0 has shape \\(3, 1\\)"),
    ]:
        args = dict(src=x, op0="add", op1="add", imm0=1.0) | kw
        with pytest.raises(err, match=msg):
            tsc(dst, regs=regs, **args)
    with pytest.raises(DtypeError, match="dst is uint32"):
        tsc(np.zeros((2, 3), np.uint32), x, "add", "add", 1.0, regs=regs)
    assert (dst == 5.0).all() and (regs.values == 7.0).all()
