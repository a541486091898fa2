"""Vector Engine element-wise / reduce / scan / copy / memset instructions against independent references.

References: float64 arithmetic on the fp32 inputs rounded once to fp32 (exact for + - * / by the double-rounding
theorem for binary64 -> binary32), then ml_dtypes' RNE cast into the dst format; Python integers for bitvec and the
GpSimd integer path; scalar loops written from the NKI pseudo-code for scans and reductions.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.engines import ops, vector
from emulator.errors import DtypeError, EmulatorError, ShapeError
from emulator.testing import arrays, assert_bitwise_equal

BF16 = ml_dtypes.bfloat16
DST_DTYPES = [np.float32, BF16, np.float16, ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2]
F64_OPS = {
    "add": np.add, "subtract": np.subtract, "multiply": np.multiply, "divide": np.divide,
    "maximum": np.maximum, "minimum": np.minimum,
}
CMP_OPS = {"equal": np.equal, "not_equal": np.not_equal, "greater": np.greater, "greater_equal": np.greater_equal,
           "less": np.less, "less_equal": np.less_equal}


def ref_dst(values64, dtype):
    """float64 values -> one rounding to fp32 -> the dst dtype (ml_dtypes RNE)."""
    with np.errstate(all="ignore"):
        return np.asarray(values64, np.float64).astype(np.float32).astype(dtype)


def canon(x):
    """NaN payloads of ALU results are not modelled (host IEEE arithmetic): compare every NaN as the quiet NaN."""
    x = np.array(x)
    if x.dtype.kind == "f" or x.dtype == BF16 or x.dtype.name.startswith("float8"):  # fp8: ml_dtypes, kind 'V'
        wide = x.astype(np.float32)
        x[np.isnan(wide)] = np.float32(np.nan).astype(x.dtype)
    return x


def shapes(max_p=8, max_f=12):
    return st.tuples(st.integers(1, max_p), st.integers(1, max_f))


@settings(max_examples=40)
@given(shape=shapes(), data=st.data(), op=st.sampled_from(sorted(F64_OPS)), dtype=st.sampled_from(DST_DTYPES))
def test_tensor_tensor_arith_is_fp32_rounded_once(shape, data, op, dtype):
    a = data.draw(arrays("float32", shape))
    b16 = data.draw(arrays("bfloat16", shape))
    b = b16.astype(np.float32)
    dst = np.empty(shape, dtype)
    with np.errstate(all="ignore"):
        vector.tensor_tensor(dst, a, b16, op)
        expect = ref_dst(F64_OPS[op](a.astype(np.float64), b.astype(np.float64)), dtype)
    assert_bitwise_equal(canon(dst), canon(expect))


@settings(max_examples=40)
@given(shape=shapes(), data=st.data(), op=st.sampled_from(sorted(CMP_OPS)))
def test_comparisons_give_one_or_zero(shape, data, op):
    a = data.draw(arrays("bfloat16", shape, allow_nan=False)).astype(np.float32)
    b = data.draw(arrays("bfloat16", shape, allow_nan=False)).astype(np.float32)
    b[:, ::2] = a[:, ::2]  # plenty of equal pairs
    dst = np.empty(shape, np.float32)
    vector.tensor_tensor(dst, a, b, op)
    assert_bitwise_equal(dst, CMP_OPS[op](a.astype(np.float64), b.astype(np.float64)).astype(np.float32))


def test_abs_max_abs_min_power_logical():
    a = np.array([[-5.0, 1.0, 2.0, 0.0, 3.0]], np.float32)
    b = np.array([[3.0, -1.0, -2.5, 0.0, 2.0]], np.float32)
    out = np.empty_like(a)
    assert vector.tensor_tensor(out, a, b, "abs_max").tolist() == [[-5.0, -1.0, -2.5, 0.0, 3.0]]  # tie -> y
    assert vector.tensor_tensor(out, a, b, "abs_min").tolist() == [[3.0, -1.0, 2.0, 0.0, 2.0]]
    assert vector.tensor_tensor(out, a, b, "logical_and").tolist() == [[1.0, 1.0, 1.0, 0.0, 1.0]]
    assert vector.tensor_tensor(out, a, b, "logical_xor").tolist() == [[0.0, 0.0, 0.0, 0.0, 0.0]]
    x, y = np.array([[1.1, 2.0, 10.0]], np.float32), np.array([[2.5, 0.5, -3.0]], np.float32)
    got = vector.tensor_tensor(np.empty_like(x), x, y, "power")
    assert_bitwise_equal(got, np.power(x.astype(np.float64), y.astype(np.float64)).astype(np.float32))


INT_DTYPES = [np.int8, np.int16, np.int32, np.uint8, np.uint16, np.uint32]


def _u(v, dt):
    return int(np.array(v, dt).view({1: np.uint8, 2: np.uint16, 4: np.uint32}[np.dtype(dt).itemsize]))


@settings(max_examples=40)
@given(data=st.data(), dt=st.sampled_from(INT_DTYPES),
       op=st.sampled_from(["bitwise_and", "bitwise_or", "bitwise_xor", "left_shift", "right_shift"]))
def test_bitvec_ops_on_raw_bits(data, dt, op):
    info = np.iinfo(dt)
    a = np.array(data.draw(st.lists(st.integers(info.min, info.max), min_size=6, max_size=6)), dt).reshape(2, 3)
    if "shift" in op:
        b = np.array(data.draw(st.lists(st.integers(0, min(info.max, 40)), min_size=6, max_size=6)), dt)
    else:
        b = np.array(data.draw(st.lists(st.integers(info.min, info.max), min_size=6, max_size=6)), dt)
    b = b.reshape(2, 3)
    dst = np.empty((2, 3), dt)
    vector.tensor_tensor(dst, a, b, op)
    width = 8 * np.dtype(dt).itemsize
    for i, (x, y) in enumerate(zip(a.ravel().tolist(), b.ravel().tolist())):
        ux, uy = _u(x, dt), _u(y, dt)  # bit patterns, zero-extended
        r = {"bitwise_and": ux & uy, "bitwise_or": ux | uy, "bitwise_xor": ux ^ uy,
             "left_shift": (ux << uy) if uy < 32 else 0, "right_shift": (ux >> uy) if uy < 32 else 0}[op]
        assert _u(dst.ravel()[i], dt) == r % (1 << width), (x, y, op)


def test_right_shift_is_logical():
    dst = np.empty((1, 2), np.int8)
    vector.tensor_scalar(dst, np.array([[-128, -1]], np.int8), "right_shift", 1)
    assert dst.tolist() == [[64, 127]]
    vector.tensor_scalar(dst, np.array([[5, 6]], np.int8), "invert", None)
    assert dst.tolist() == [[-6, -7]]


@settings(max_examples=40)
@given(st.lists(st.integers(-2**31, 2**31 - 1), min_size=8, max_size=8),
       st.lists(st.integers(-2**31, 2**31 - 1), min_size=8, max_size=8),
       st.sampled_from(["add", "subtract", "multiply", "maximum", "minimum"]))
def test_gpsimd_int32_exact_and_vector_via_fp32(xs, ys, op):
    a, b = np.array(xs, np.int32).reshape(2, 4), np.array(ys, np.int32).reshape(2, 4)
    dst = np.empty((2, 4), np.int32)
    vector.tensor_tensor(dst, a, b, op)  # default: GpSimd, exact, wrapping
    py = {"add": lambda x, y: x + y, "subtract": lambda x, y: x - y, "multiply": lambda x, y: x * y,
          "maximum": max, "minimum": min}[op]
    expect = [((py(x, y) + 2**31) % 2**32) - 2**31 for x, y in zip(xs, ys)]
    assert dst.ravel().tolist() == expect
    vector.tensor_tensor(dst, a, b, op, engine="vector")  # fp32 path: round inputs and result, saturate
    for got, x, y in zip(dst.ravel().tolist(), xs, ys):
        fx, fy = float(np.float32(x)), float(np.float32(y))
        r = float(np.float32(py(fx, fy)))
        assert got == int(np.clip(np.rint(r), -2**31, 2**31 - 1))


@settings(max_examples=40)
@given(shape=shapes(), data=st.data(), dtype=st.sampled_from(DST_DTYPES), r0=st.booleans(), r1=st.booleans(),
       vec=st.booleans())
def test_tensor_scalar_two_ops_reverse(shape, data, dtype, r0, r1, vec):
    x = data.draw(arrays("bfloat16", shape, allow_nan=False, allow_infinity=False)).astype(np.float32)
    s0 = data.draw(st.floats(-4, 4, width=32))
    s1 = np.array([[data.draw(st.floats(-4, 4, width=32))] for _ in range(shape[0])], np.float32)
    dst = np.empty(shape, dtype)
    operand1 = s1 if vec else float(s1[0, 0])
    vector.tensor_scalar(dst, x, "subtract", s0, reverse0=r0, op1="multiply", operand1=operand1, reverse1=r1)
    x64 = x.astype(np.float64)
    t = (s0 - x64) if r0 else (x64 - s0)
    with np.errstate(over="ignore"):
        t = t.astype(np.float32).astype(np.float64)  # op0's fp32 rounding
    s1v = s1.astype(np.float64) if vec else float(s1[0, 0])
    assert_bitwise_equal(dst, ref_dst(t * s1v, dtype))


def test_tensor_scalar_unary_and_errors():
    x = np.array([[4.0, -9.0, 0.25]], np.float32)
    out = np.empty_like(x)
    assert vector.tensor_scalar(out, x, "abs", 0.0, op1="rsqrt", operand1=None).tolist() == [[0.5, 1 / 3, 2.0]] \
        or np.allclose(out, [[0.5, 1 / 3, 2.0]])
    assert_bitwise_equal(out, (1.0 / np.sqrt(np.abs(x.astype(np.float64)))).astype(np.float32))
    with pytest.raises(EmulatorError, match="unary"):
        vector.tensor_scalar(out, x, "abs", 2.0)
    with pytest.raises(EmulatorError, match="both be bitvec"):
        vector.tensor_scalar(np.empty((1, 3), np.int32), x.astype(np.int32), "bitwise_and", 1, op1="add",
                             operand1=1.0)
    with pytest.raises(ShapeError, match=r"\[P, 1\]"):
        vector.tensor_scalar(out, x, "add", np.ones((2, 1), np.float32))


@settings(max_examples=40)
@given(shape=shapes(), data=st.data(), dtype=st.sampled_from(DST_DTYPES))
def test_scalar_tensor_tensor(shape, data, dtype):
    x = data.draw(arrays("bfloat16", shape, allow_nan=False)).astype(np.float32)
    y = data.draw(arrays("float16", shape, allow_nan=False))
    dst = np.empty(shape, dtype)
    with np.errstate(all="ignore"):
        vector.scalar_tensor_tensor(dst, x, "multiply", 3.0, "subtract", y, reverse1=True)
        t = (x.astype(np.float64) * 3.0).astype(np.float32).astype(np.float64)
        expect = ref_dst(y.astype(np.float64) - t, dtype)
    assert_bitwise_equal(dst, expect)


def _seq(vals, fn, start=None):
    acc = np.float32(vals[0]) if start is None else np.float32(start)
    for v in (vals[1:] if start is None else vals):
        with np.errstate(over="ignore"):
            acc = np.float32(fn(np.float64(acc), np.float64(v)))
    return acc


@settings(max_examples=40)
@given(data=st.data(), op=st.sampled_from(["add", "multiply", "maximum", "minimum", "subtract"]),
       negate=st.booleans(), keepdims=st.booleans())
def test_tensor_reduce_sequential_fp32(data, op, negate, keepdims):
    p, a, b = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)), data.draw(st.integers(1, 40))
    x = data.draw(arrays("bfloat16", (p, a, b), allow_nan=False, allow_infinity=False)).astype(np.float32)
    if op == "multiply":
        x = np.clip(x, -2, 2)
    axis = data.draw(st.sampled_from([2, (1, 2), [2, 1], -1]))
    axes = (2,) if axis in (2, -1) else (1, 2)
    out_shape = (p, a, 1) if axes == (2,) else (p, 1, 1)
    if not keepdims:
        out_shape = (p, a) if axes == (2,) else (p,)
    if out_shape == (p,):
        out_shape = (p, 1)
    dst = np.empty(out_shape, np.float32)
    vector.tensor_reduce(dst, op, x, axis=axis, negate=negate, keepdims=keepdims)
    fn = {"add": np.add, "multiply": np.multiply, "maximum": np.maximum, "minimum": np.minimum,
          "subtract": np.subtract}[op]
    rows = x.reshape(p, a, b) if axes == (2,) else x.reshape(p, 1, a * b)
    expect = np.array([[_seq(list(r), fn) for r in part] for part in rows], np.float32)
    if negate:
        expect = -expect
    assert_bitwise_equal(dst.reshape(expect.shape), expect)


def test_tensor_reduce_bitwise_and_errors():
    x = np.array([[1, 2, 4], [7, 7, 1]], np.uint16)
    assert vector.tensor_reduce(np.empty((2, 1), np.uint16), "bitwise_or", x, 1).ravel().tolist() == [7, 7]
    assert vector.tensor_reduce(np.empty((2, 1), np.uint16), "bitwise_and", x, 1).ravel().tolist() == [0, 1]
    with pytest.raises(ShapeError, match="partition axis"):
        vector.tensor_reduce(np.empty((1, 3)), "add", np.ones((2, 3), np.float32), axis=0)
    with pytest.raises(ShapeError, match="last contiguous"):
        vector.tensor_reduce(np.empty((2, 3), np.float32), "add", np.ones((2, 4, 3), np.float32), axis=1)
    with pytest.raises(ShapeError, match="dst has shape"):
        vector.tensor_reduce(np.empty((2, 2), np.float32), "add", np.ones((2, 3), np.float32), axis=1)
    with pytest.raises(EmulatorError, match="not a legal reduction"):
        vector.tensor_reduce(np.empty((2, 1), np.float32), "divide", np.ones((2, 3), np.float32), axis=1)


@settings(max_examples=40)
@given(data=st.data(), r0=st.booleans(), r1=st.booleans(), vec_init=st.booleans())
def test_tensor_tensor_scan_matches_pseudocode(data, r0, r1, vec_init):
    p, f = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 20))
    d0 = data.draw(arrays("bfloat16", (p, f), allow_nan=False, allow_infinity=False)).astype(np.float32) / 4
    d1 = data.draw(arrays("float16", (p, f), allow_nan=False, allow_infinity=False))
    init = np.arange(p, dtype=np.float32).reshape(p, 1) if vec_init else 0.5
    dst = np.empty((p, f), BF16)
    with np.errstate(all="ignore"):
        vector.tensor_tensor_scan(dst, d0, d1, init, "multiply", "subtract", reverse0=r0, reverse1=r1)
        expect = np.empty((p, f), np.float32)
        for i in range(p):
            r = np.float32(init[i, 0] if vec_init else init)
            for j in range(f):
                a, b = np.float64(d0[i, j]), np.float64(r)
                t = np.float32(b * a if r0 else a * b)
                c = np.float64(d1[i, j])
                r = np.float32(c - np.float64(t) if r1 else np.float64(t) - c)
                expect[i, j] = r
    assert_bitwise_equal(dst, expect.astype(BF16))


def test_tensor_copy_bit_exact_and_converting():
    nan_payload = np.array([[0x7FC00001, 0xFF800000, 0x00000001, 0x80000000]], np.uint32).view(np.float32)
    dst = np.empty_like(nan_payload)
    vector.tensor_copy(dst, nan_payload)
    assert_bitwise_equal(dst.view(np.uint32), nan_payload.view(np.uint32), fmt="float32")
    big = np.array([[2**31 - 1, -2**31 + 1, 16777217]], np.int32)
    assert vector.tensor_copy(np.empty_like(big), big).tolist() == big.tolist()
    x = np.array([[1.0 + 2**-8, 1.0 + 3 * 2**-8, -1e30]], np.float32)
    assert_bitwise_equal(vector.tensor_copy(np.empty((3,), BF16).reshape(1, 3), x), x.astype(BF16))
    assert vector.tensor_copy(np.empty((1, 3), np.int8), np.array([[2.5, -300.0, np.nan]], np.float32)).tolist() \
        == [[2, -128, 0]]
    with pytest.raises(ShapeError, match="same partition count"):
        vector.tensor_copy(np.empty((2, 3), np.float32), np.ones((3, 2), np.float32))


def test_tensor_copy_reshapes_same_free_size():
    x = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    assert vector.tensor_copy(np.empty((2, 6), np.float32), x).tolist() == x.reshape(2, 6).tolist()


def test_memset():
    assert vector.memset(np.empty((2, 2), BF16), 1.0 + 2**-9).astype(np.float32).tolist() == [[1.0, 1.0]] * 2
    assert vector.memset(np.empty((1, 2), np.int32), 2**31 - 1).tolist() == [[2**31 - 1] * 2]
    assert vector.memset(np.empty((1, 2), np.uint32), 0, dtype="float8_e5m2_x4").tolist() == [[0, 0]]
    with pytest.raises(EmulatorError, match="x4"):
        vector.memset(np.empty((1, 2), np.uint32), 1, dtype="float8_e4m3fn_x4")
    with pytest.raises(EmulatorError, match="does not fit"):
        vector.memset(np.empty((1, 2), np.int8), 300)
    # one rounding from the constant (float64 0.1 -> bf16 directly)
    got = vector.memset(np.empty((1, 1), BF16), 0.1)
    assert_bitwise_equal(got, np.array([[0.1]]).astype(BF16))


def test_reciprocal_correctly_rounded():
    x = np.array([[3.0, 7.0, -0.0, 1e-40]], np.float32)
    with np.errstate(divide="ignore"):
        expect = (1.0 / x.astype(np.float64))
    with np.errstate(over="ignore"):
        expect = expect.astype(np.float32)
    assert_bitwise_equal(vector.reciprocal(np.empty_like(x), x), expect)


def test_error_paths():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(EmulatorError, match="not an ALU operator"):
        vector.tensor_tensor(np.empty_like(x), x, x, "frobnicate")
    with pytest.raises(ShapeError, match="128"):
        vector.tensor_tensor(np.empty((129, 1), np.float32), np.ones((129, 1), np.float32),
                             np.ones((129, 1), np.float32), "add")
    with pytest.raises(DtypeError, match="float64"):
        vector.tensor_tensor(np.empty_like(x), x.astype(np.float64), x, "add")
    with pytest.raises(EmulatorError, match="unary"):
        vector.tensor_tensor(np.empty_like(x), x, x, "abs")
    with pytest.raises(DtypeError, match="bitvec"):
        vector.tensor_tensor(np.empty_like(x), x, x, "bitwise_and")
    with pytest.raises(DtypeError, match="written in place"):
        vector.tensor_tensor([[0.0]], x, x, "add")


def test_op_resolution():
    class NlAdd:
        op_name = "add"

    assert ops.resolve(NlAdd()).name == "add"
    assert ops.resolve(np.maximum) is ops.resolve("max")
    assert ops.resolve("MULTIPLY").name == "multiply"
    with pytest.raises(ValueError, match="not an ALU operator"):
        ops.resolve(np.sinh)
    assert set(ops.REDUCIBLE) <= set(ops.op_names())
