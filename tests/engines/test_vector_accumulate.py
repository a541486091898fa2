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
