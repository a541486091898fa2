"""Selection, search, statistics and data-movement instructions against scalar references written from the NKI
docstrings (tie rules quoted in vector_select.py), plus the GpSimd pattern instructions (iota, affine_select)."""

from __future__ import annotations

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.engines import gpsimd, vector_select as vs
from emulator.engines.operands import ReduceRegisters
from emulator.errors import DtypeError, EmulatorError, ShapeError
from emulator.testing import arrays, assert_bitwise_equal

BF16 = ml_dtypes.bfloat16


@settings(max_examples=40)
@given(data=st.data(), reverse=st.booleans())
def test_tensor_copy_predicated(data, reverse):
    src = data.draw(arrays("bfloat16", (3, 5)))
    old = data.draw(arrays("bfloat16", (3, 5)))
    pred = np.array(data.draw(st.lists(st.integers(0, 3), min_size=15, max_size=15)), np.uint16).reshape(3, 5)
    dst = old.copy()
    vs.tensor_copy_predicated(dst, src, pred, reverse_pred=reverse)
    for i in range(3):
        for j in range(5):
            take = (pred[i, j] != 0) != reverse
            want = src[i, j] if take else old[i, j]
            assert dst[i:i + 1, j].view(np.uint16)[0] == np.array([want]).view(np.uint16)[0]
    with pytest.raises(DtypeError, match="must match"):
        vs.tensor_copy_predicated(dst, src.astype(np.float32), pred)
    with pytest.raises(DtypeError, match="integer"):
        vs.tensor_copy_predicated(dst, src, pred.astype(np.float32))


def test_select_reduce_accumulates_across_calls():
    regs = ReduceRegisters()
    res = np.empty((2, 1), np.float32)
    pred = np.array([[1, 0, 1], [0, 0, 1]], np.int8)
    on_true = np.array([[1.0, 50.0, 3.0], [7.0, 8.0, -2.0]], np.float32)
    on_false = np.array([[-1.0], [-5.0]], np.float32)
    dst = np.empty((2, 3), BF16)
    vs.select_reduce(dst, pred, on_true, on_false, reduce_res=res, reduce_cmd="reset_reduce", regs=regs)
    assert dst.astype(np.float32).tolist() == [[1.0, -1.0, 3.0], [-5.0, -5.0, -2.0]]
    assert res.ravel().tolist() == [3.0, -2.0]
    vs.select_reduce(dst, pred, on_true + 1, 0.0, reduce_cmd="reduce", regs=regs, reverse_pred=True)
    vs.select_reduce(dst, pred, on_true, -9.0, reduce_res=res, reduce_cmd="idle", regs=regs)
    assert res.ravel().tolist() == [51.0, 9.0]  # max(3, 51) and max(-2, 9): the reversed predicate's picks
    with pytest.raises(EmulatorError, match="maximum"):
        vs.select_reduce(dst, pred, on_true, 0.0, reduce_op="add")


@settings(max_examples=40)
@given(data=st.data(), ops=st.tuples(st.sampled_from(["equal", "less", "less_equal", "greater", "greater_equal"]),
                                     st.sampled_from(["equal", "less", "less_equal", "greater", "greater_equal"])),
       start=st.integers(-5, 5), dtype=st.sampled_from([np.float32, BF16]))
def test_range_select(data, ops, start, dtype):
    p, f = 3, 9
    x = data.draw(arrays("float16", (p, f), allow_nan=False))
    b0 = np.array(data.draw(st.lists(st.integers(-6, 14), min_size=p, max_size=p)), np.float32).reshape(p, 1)
    b1 = np.array(data.draw(st.lists(st.integers(-6, 14), min_size=p, max_size=p)), np.float32).reshape(p, 1)
    dst, res = np.empty((p, f), dtype), np.empty((p, 1), np.float32)
    vs.range_select(dst, x, ops[0], ops[1], b0, b1, reduce_res=res, range_start=start)
    cmp = {"equal": lambda a, b: a == b, "less": lambda a, b: a < b, "less_equal": lambda a, b: a <= b,
           "greater": lambda a, b: a > b, "greater_equal": lambda a, b: a >= b}
    fmin = float(np.finfo(np.float32).min)
    for i in range(p):
        row = [float(x[i, j]) if cmp[ops[0]](j + start, b0[i, 0]) and cmp[ops[1]](j + start, b1[i, 0]) else fmin
               for j in range(f)]
        assert_bitwise_equal(dst[i], np.array(row, np.float32).astype(dtype))  # FP32_MIN -> -inf in bf16
        assert res[i, 0] == max(row)
    with pytest.raises(EmulatorError, match="FP32_MIN"):
        vs.range_select(dst, x, "less", "less", b0, b1, on_false_value=0.0)
    with pytest.raises(EmulatorError, match="FP32_MIN"):  # the next float32 up is another immediate
        vs.range_select(dst, x, "less", "less", b0, b1, on_false_value=float(np.nextafter(np.float32(fmin), 0)))
    # the decimal kernels write (nki-library attention_bwd: -3.4028235e38) is FP32_MIN once rounded to fp32
    again = np.empty((p, f), dtype)
    vs.range_select(again, x, ops[0], ops[1], b0, b1, range_start=start, on_false_value=-3.4028235e38)
    assert_bitwise_equal(again, dst)


def _key(v: float):
    return (1, 0.0) if np.isnan(v) else (0, v)


@settings(max_examples=60)
@given(data=st.data(), n=st.integers(8, 40))
def test_max8_descending_lowest_index_first(data, n):
    x = data.draw(arrays("float8_e4m3fn", (2, n))).astype(np.float32)  # few distinct values: many ties
    dst = np.empty((2, 8), np.float32)
    vs.max8(dst, x)
    for i in range(2):
        order = sorted(range(n), key=lambda j: (_key(float(x[i, j]))[0], _key(float(x[i, j]))[1], -j),
                       reverse=True)  # descending value; among equals the lowest index first
        assert_bitwise_equal(dst[i], x[i, order[:8]])


def _find_ref(row, vals, reverse):
    """Scalar reference: slots processed in order (reverse: 7..0), each taking the first unused match."""
    used, out = set(), [None] * 8
    for s in (range(7, -1, -1) if reverse else range(8)):
        for j, v in enumerate(row):
            if j not in used and v == vals[s]:
                used.add(j)
                out[s] = j
                break
    return out


@settings(max_examples=60)
@given(data=st.data(), n=st.integers(8, 30), idx_dtype=st.sampled_from([np.uint16, np.uint32]))
def test_find_index8_and_match_replace8(data, n, idx_dtype):
    x = np.array(data.draw(st.lists(st.integers(0, 5), min_size=2 * n, max_size=2 * n)), np.float32).reshape(2, n)
    vals = np.array(data.draw(st.lists(st.integers(0, 7), min_size=16, max_size=16)), np.float32).reshape(2, 8)
    ones = np.iinfo(idx_dtype).max
    got = vs.nc_find_index8(np.empty((2, 8), idx_dtype), x, vals)
    dst, idx = np.empty_like(x), np.empty((2, 8), idx_dtype)
    vs.nc_match_replace8(dst, x, vals, -1.0, dst_idx=idx)
    for i in range(2):
        row = x[i].tolist()
        ref = _find_ref(row, vals[i].tolist(), reverse=False)
        assert got[i].tolist() == [ones if r is None else r for r in ref]
        ref = _find_ref(row, vals[i].tolist(), reverse=True)
        assert idx[i].tolist() == [ones if r is None else r for r in ref]
        want = list(row)
        for r in ref:
            if r is not None:
                want[r] = -1.0
        assert dst[i].tolist() == want


def test_match_replace8_doc_example_and_errors():
    d = np.array([[1, 2, 3, 4, 8, 8, 8, 8, 8, 8, 8]], np.float32)
    idx = np.empty((1, 8), np.uint32)
    vs.nc_match_replace8(np.empty_like(d), d, np.array([[3, 8, 8, 8, 8, 8, 8, 8]], np.float32), 0.0, idx)
    assert idx.tolist() == [[2, 10, 9, 8, 7, 6, 5, 4]]  # the NKI docstring's example
    with pytest.raises(ShapeError, match="8..16384"):
        vs.max8(np.empty((1, 8), np.float32), np.ones((1, 7), np.float32))
    with pytest.raises(DtypeError, match="uint16 or uint32"):
        vs.nc_find_index8(np.empty((1, 8), np.int32), d, np.zeros((1, 8), np.float32))


@settings(max_examples=40)
@given(data=st.data(), n=st.integers(1, 40))
def test_bn_stats_and_aggr_exact_then_rounded(data, n):
    x = data.draw(arrays("bfloat16", (2, n), allow_nan=False, allow_infinity=False)).astype(np.float32)
    x = np.clip(x, -1e6, 1e6)
    stats = vs.bn_stats(np.empty((2, 6), np.float32), x)
    agg = vs.bn_aggr(np.empty((2, 2), np.float32), stats)
    for i in range(2):
        for k, half in enumerate((x[i, 0::2], x[i, 1::2])):
            vals = [Fraction(float(v)) for v in half]
            assert stats[i, 3 * k] == len(vals)
            if vals:
                mean = sum(vals) / len(vals)
                m2 = sum((v - mean) ** 2 for v in vals)
                assert abs(Fraction(float(stats[i, 3 * k + 1])) - mean) <= abs(mean) * Fraction(1, 2**23) + \
                    Fraction(1, 2**149)
                assert abs(Fraction(float(stats[i, 3 * k + 2])) - m2) <= m2 * Fraction(1, 2**22) + Fraction(1, 2**140)
        # bn_aggr merges the rounded stats; compare with the merge of those stats computed exactly
        t = [[Fraction(float(v)) for v in stats[i, 3 * k:3 * k + 3]] for k in range(2)]
        tot = sum(c for c, _, _ in t)
        mu = sum(c * m for c, m, _ in t) / tot
        var = (sum(m2 for _, _, m2 in t) + sum(c * (m - mu) ** 2 for c, m, _ in t)) / tot
        assert abs(Fraction(float(agg[i, 0])) - mu) <= abs(mu) * Fraction(1, 2**23) + Fraction(1, 2**149)
        assert abs(Fraction(float(agg[i, 1])) - var) <= var * Fraction(1, 2**22) + Fraction(1, 2**140)
    with pytest.raises(ShapeError, match="512"):
        vs.bn_stats(np.empty((1, 6), np.float32), np.ones((1, 513), np.float32))
    with pytest.raises(ShapeError, match="multiple of 3"):
        vs.bn_aggr(np.empty((1, 2), np.float32), np.ones((1, 4), np.float32))


def test_nc_stream_shuffle_quadrants_and_in_place():
    src = np.arange(64 * 2, dtype=np.int32).reshape(64, 2)
    mask = [(i + 1) % 32 for i in range(32)]
    mask[5] = 255
    dst = np.full((64, 2), -7, np.int32)
    vs.nc_stream_shuffle(dst, src, mask)
    for p in range(64):
        q = p // 32 * 32
        want = [-7, -7] if p % 32 == 5 else src[q + mask[p % 32]].tolist()
        assert dst[p].tolist() == want
    inplace = src.copy()
    vs.nc_stream_shuffle(inplace, inplace, mask)
    assert inplace[0].tolist() == src[1].tolist() and inplace[31].tolist() == src[0].tolist()
    with pytest.raises(EmulatorError, match="32 entries"):
        vs.nc_stream_shuffle(dst, src, [0] * 31)
    with pytest.raises(ShapeError, match="same dtype"):
        vs.nc_stream_shuffle(dst, src.astype(np.float32), mask)


def test_vector_transpose_bit_exact_and_limits():
    x = np.array([[0x7FC00001, 1, 2], [3, 4, 0xFF800000]], np.uint32).view(np.float32)
    out = vs.nc_transpose(np.empty((3, 2), np.float32), x)
    assert out.view(np.uint32).tolist() == x.view(np.uint32).T.tolist()
    with pytest.raises(ShapeError, match="32 x 32"):
        vs.nc_transpose(np.empty((33, 2), np.float32), np.ones((2, 33), np.float32))
    with pytest.raises(DtypeError, match="must equal"):
        vs.nc_transpose(np.empty((3, 2), BF16), x)


def _pattern_values(rows, pattern, offset, cm):
    pat = list(pattern) + [[0, 1]] * (4 - len(pattern))
    (sw, nw), (sz, nz), (sy, ny), (sx, nx) = pat
    out = []
    for c in range(rows):
        row = []
        for w in range(nw):
            for z in range(nz):
                for y in range(ny):
                    for x in range(nx):
                        v = offset + c * cm + w * sw + z * sz + y * sy + x * sx
                        row.append(((v + 2**31) % 2**32) - 2**31)
        out.append(row)
    return out


@settings(max_examples=60)
@given(data=st.data(), dtype=st.sampled_from([np.int32, np.float32, BF16, np.int16, np.uint8]))
def test_iota_matches_pseudocode(data, dtype):
    dims = data.draw(st.integers(1, 4))
    pattern = [[data.draw(st.integers(-2**20, 2**20)), data.draw(st.integers(1, 3))] for _ in range(dims)]
    offset, cm, rows = data.draw(st.integers(-2**31, 2**31 - 1)), data.draw(st.integers(-2**20, 2**20)), 3
    free = int(np.prod([n for _, n in pattern]))
    dst = np.empty((rows, free), dtype)
    gpsimd.iota(dst, pattern, offset=offset, channel_multiplier=cm)
    ref = np.array(_pattern_values(rows, pattern, offset, cm), np.int64)
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        assert dst.tolist() == np.clip(ref, info.min, info.max).tolist()
    else:  # one rounding from the exact integer (float64 holds it exactly)
        assert_bitwise_equal(dst, ref.astype(np.float64).astype(dtype))


def test_affine_select_causal_mask_and_errors():
    x = np.arange(12, dtype=np.float32).reshape(3, 4).astype(BF16)
    dst = np.empty((3, 4), BF16)
    gpsimd.affine_select(dst, [[-1, 4]], 1, x, -3.4028235e38, cmp_op="greater_equal", offset=0)
    for p in range(3):
        for j in range(4):
            want = float(x[p, j]) if p - j >= 0 else -np.inf  # FP32_MIN overflows bf16 to -inf under RNE
            assert float(dst[p, j]) == want
    i32 = np.array([[2**31 - 1, 5]], np.int32)
    out = gpsimd.affine_select(np.empty((1, 2), np.int32), [[1, 2]], 0, i32, 0.0, cmp_op="equal")
    assert out.tolist() == [[2**31 - 1, 0]]  # selected values copied bit-exactly
    with pytest.raises(ShapeError, match="describes 3 elements"):
        gpsimd.iota(np.empty((1, 4), np.int32), [[1, 3]])
    with pytest.raises(EmulatorError, match="comparison"):
        gpsimd.affine_select(dst, [[1, 4]], 0, x, 0.0, cmp_op="add")
