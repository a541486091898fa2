"""Layouts (x4 packing, interleaved K, scale quadrants), matmul operands, and bad input."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import emulator as emu
from test_mx_reference import ref_block, ref_dequant

E4, E5, E2 = "float8_e4m3fn", "float8_e5m2", "float4_e2m1fn"
FMTS = [E4, E5, E2]


def _data(shape, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * np.exp2(rng.integers(-12, 12, shape))
    x[rng.random(shape) < 0.1] = 0.0
    return x.astype(dtype)


def _codes(x4, fmt):
    """Element codes [P, 4W] from x4 words, by explicit shifts (sub-element q in bits [q*w, (q+1)*w))."""
    w = 8 if fmt != E2 else 4
    x = x4.astype(np.uint64)
    parts = [(x >> np.uint64(q * w)) & np.uint64((1 << w) - 1) for q in range(4)]
    return np.stack(parts, axis=-1).reshape(x4.shape[0], -1).astype(np.uint8)


@pytest.mark.parametrize("shape", [(3, 1000, 132), (262_144 + 4,), (2, 4)])
def test_fp4_nibble_packing_on_large_and_small_arrays(shape):
    """pack_x4 / unpack_x4 of 4-bit codes (the nibble kernels, threaded above 2^18 codes) against the words built
    by explicit shifts (sub-element q in bits [4q, 4q + 4)), and the NumPy twins."""
    from emulator.numerics import _layout_kernels as L

    codes = np.random.default_rng(len(shape)).integers(0, 16, shape, dtype=np.uint8)
    words = emu.pack_x4(codes, E2)
    q4 = codes.reshape(shape[:-1] + (shape[-1] // 4, 4)).astype(np.uint16)
    want = q4[..., 0] | (q4[..., 1] << 4) | (q4[..., 2] << 8) | (q4[..., 3] << 12)
    assert words.dtype == np.uint16 and (words == want).all()
    assert (emu.unpack_x4(words, E2) == codes).all()
    assert (_codes(words.reshape(-1, shape[-1] // 4), E2) == codes.reshape(-1, shape[-1])).all()
    if np.little_endian:
        assert (L._pack_nibbles_np(codes) == words.view(np.uint8)).all()
        assert (L._unpack_nibbles_np(words.view(np.uint8)) == codes).all()
    with pytest.raises(emu.errors.ArgumentError, match="4-bit; got code 16"):
        emu.pack_x4(np.where(codes == codes.flat[0], np.uint8(16), codes), E2)


# ---- interleave and scale quadrants ------------------------------------------------------------------------------

def test_interleave_formula_and_inverse():
    a = np.arange(64 * 3, dtype=np.float32).reshape(64, 3)
    t = emu.mx.to_interleaved(a)
    kp = 16
    for p in range(kp):
        for m in range(3):
            for q in range(4):
                assert t[p, 4 * m + q] == a[q * kp + p, m]
    assert (emu.mx.from_interleaved(t) == a).all()


@pytest.mark.parametrize("dtype", [np.uint8, ml_dtypes.bfloat16, np.float32, np.float64, ml_dtypes.float8_e4m3fn])
def test_interleave_kernels_on_large_arrays(dtype):
    """Above the serial threshold the Numba kernels run threaded: both directions, every element against the
    definition out[p, 4m+q] = a[q*Kp + p, m] evaluated by fancy indexing, and the NumPy twins."""
    from emulator.numerics import _layout_kernels as L

    K, M = 1024, 300  # 307,200 elements, over SERIAL_BELOW
    assert K * M >= L.SERIAL_BELOW
    u = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[np.dtype(dtype).itemsize]
    bits = np.random.default_rng(7).integers(0, np.iinfo(u).max, (K, M), dtype=u, endpoint=True)
    a = bits.view(dtype)
    kp = K // 4
    p, m, q = np.ogrid[:kp, :M, :4]
    want = bits[q * kp + p, m].reshape(kp, 4 * M)
    t = emu.mx.to_interleaved(a)
    assert t.dtype == a.dtype and t.shape == (kp, 4 * M)
    assert (t.view(u) == want).all()
    back = emu.mx.from_interleaved(t)
    assert back.dtype == a.dtype and (back.view(u) == bits).all()
    assert (L._interleave_np(a).view(u) == want).all()
    assert (L._deinterleave_np(t).view(u) == bits).all()


@pytest.mark.parametrize("groups", [1, 3, 4, 5, 16])
@pytest.mark.parametrize("off", [0, 4, 8, 12])
def test_hw_scale_layout_formula_and_inverse(groups, off):
    dense = np.random.default_rng(groups).integers(1, 255, (groups, 5)).astype(np.uint8)
    hw = emu.mx.to_hw_scale_layout(dense, p_offset=off)
    assert hw.shape == (32 * -(-groups // 4), 5)
    used = set()
    for i in range(groups):
        part = (i // 4) * 32 + i % 4 + off
        assert (hw[part] == dense[i]).all()
        used.add(part)
    assert not hw[[p for p in range(hw.shape[0]) if p not in used]].any()
    assert (emu.mx.from_hw_scale_layout(hw, kp=8 * groups, p_offset=off) == dense).all()


def test_four_scale_tensors_share_one_tile():
    tile = np.zeros((128, 2), np.uint8)
    dense = [np.full((16, 2), 10 * (k + 1), np.uint8) for k in range(4)]
    for k, off in enumerate(emu.mx.P_OFFSETS):
        emu.mx.to_hw_scale_layout(dense[k], p_offset=off, out=tile)
    for k, off in enumerate(emu.mx.P_OFFSETS):
        assert (emu.mx.from_hw_scale_layout(tile, kp=128, p_offset=off) == dense[k]).all()
    for j in range(4):  # the first 16 partitions of each quadrant, nothing else
        assert tile[32 * j:32 * j + 16].all() and not tile[32 * j + 16:32 * j + 32].any()


def test_e8m0_scale_dtype_is_accepted():
    dense = np.array([[127, 128]], np.uint8)
    hw = emu.mx.to_hw_scale_layout(dense.view(ml_dtypes.float8_e8m0fnu))
    assert hw.dtype == ml_dtypes.float8_e8m0fnu
    x4 = np.full((8, 2), 0x38383838, np.uint32)
    out = emu.mx.dequantize_mx(x4, dense.view(ml_dtypes.float8_e8m0fnu), E4)
    assert (out[:, :4] == 1.0).all() and (out[:, 4:] == 2.0).all()


# ---- quantize_mx x4 words, operands --------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, np.float16])
def test_quantize_mx_words_hold_group_codes_in_order(fmt, dtype):
    src = _data((64, 16), 3, dtype)
    with emu.settings(mx_fp4_quantize_mx="allow"):
        x4, scale = emu.mx.quantize_mx(src, fmt, "hw")
    assert x4.dtype == (np.uint32 if fmt != E2 else np.uint16) and x4.shape == (64, 4) and scale.shape == (8, 4)
    codes = _codes(x4, fmt)
    vals = src.astype(np.float32)
    for g in range(8):
        for j in range(4):
            want_scale, want = ref_block([float(v) for v in vals[8 * g:8 * g + 8, 4 * j:4 * j + 4].reshape(-1)],
                                         fmt, "hw")
            assert int(scale[g, j]) == want_scale
            assert codes[8 * g:8 * g + 8, 4 * j:4 * j + 4].reshape(-1).tolist() == want
    back = emu.mx.dequantize_mx(x4, scale, fmt, dtype=np.float64)
    ref = [ref_dequant(codes[p, 4 * j:4 * j + 4].tolist(), int(scale[p // 8, j]), fmt)
           for p in range(64) for j in range(4)]
    assert np.array_equal(back.reshape(-1), np.array(ref).reshape(-1), equal_nan=True)


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("order", ["contiguous", "interleaved"])
def test_operand_blocks_follow_the_declared_k_order(fmt, order):
    K, F = 64, 3
    a = _data((K, F), 5)
    x4, scale = emu.mx.quantize_operand(a, fmt, order=order, convention="hw")
    assert x4.shape == (K // 4, F) and scale.shape == (K // 32, F)
    codes = _codes(x4, fmt).reshape(K // 4, F, 4)  # [p, f, q]
    kp = K // 4

    def k_of(p, q):
        return 4 * p + q if order == "contiguous" else q * kp + p

    for g in range(K // 32):
        for f in range(F):
            members = [(p, q) for p in range(8 * g, 8 * g + 8) for q in range(4)]
            want_scale, want = ref_block([float(a[k_of(p, q), f]) for p, q in members], fmt, "hw")
            assert int(scale[g, f]) == want_scale
            assert [int(codes[p, f, q]) for p, q in members] == want
    back = emu.mx.dequantize_operand(x4, scale, fmt, order=order)
    for p in range(kp):
        for q in range(4):
            for f in range(F):
                want = ref_dequant([int(codes[p, f, q])], int(scale[p // 8, f]), fmt)[0]
                assert back[k_of(p, q), f] == np.float32(want)


def test_contiguous_operand_is_ocp_blocks_along_k():
    a = _data((96, 7), 9)
    for conv in ("hw", "ocp"):
        x4, scale = emu.mx.quantize_operand(a, E4, convention=conv)
        codes, scales = emu.mx.quantize(a, E4, axis=0, convention=conv)
        assert (scale == scales).all()
        assert (emu.mx.dequantize_operand(x4, scale, E4) == emu.mx.dequantize(codes, scales, E4, axis=0)).all()


def test_interleaved_operand_equals_quantize_mx_of_the_interleaved_source():
    a = _data((128, 8), 11, ml_dtypes.bfloat16)
    x4, scale = emu.mx.quantize_operand(a, E5, order="interleaved")
    x4b, scaleb = emu.mx.quantize_mx(emu.mx.to_interleaved(a), E5)
    assert (x4 == x4b).all() and (scale == scaleb).all()


def test_operand_convention_follows_the_setting():
    a = np.full((32, 1), 3.0, np.float32)
    with emu.settings(mx_convention="ocp"):
        assert int(emu.mx.quantize_operand(a, E4)[1][0, 0]) == 1 - 8 + 127
    with emu.settings(mx_convention="hw"):
        assert int(emu.mx.quantize_operand(a, E4)[1][0, 0]) == 1 - 7 + 127


@pytest.mark.parametrize("fmt", FMTS)
def test_round_trip_of_representable_data(fmt):
    """Data built as element x 2^(s-127) with the block max in the top binade the convention maps it to."""
    rng = np.random.default_rng(4)
    f = emu.formats.get(fmt)
    for conv, top_exp in (("ocp", f.emax), ("hw", f.emax - 1)):
        finite = np.array([c for c in range(1 << f.bits) if np.isfinite(f.value_table[c])], np.uint8)
        vals = f.value_table[finite].astype(np.float64)
        small = vals[np.abs(vals) < 2.0 ** (top_exp + 1)]
        top = vals[(np.abs(vals) >= 2.0 ** top_exp) & (np.abs(vals) < 2.0 ** (top_exp + 1))]
        blocks = rng.choice(small, (64, 32))
        blocks[:, 0] = rng.choice(top, 64)
        s = rng.integers(1, 230, (64, 1))
        x = (blocks * np.exp2(s - 127.0)).astype(np.float32)
        codes, scales = emu.mx.quantize(x, fmt, convention=conv)
        assert (scales[:, 0] == s[:, 0]).all()
        assert (emu.mx.dequantize(codes, scales, fmt) == x).all()


def test_ocp_quantize_any_axis_and_padding():
    x = _data((3, 70, 5), 2)
    codes, scales = emu.mx.quantize(x, E5, axis=1, pad=True)
    assert codes.shape == x.shape and scales.shape == (3, 3, 5)
    for i in range(3):
        for j in range(5):
            col = [float(v) for v in x[i, :, j]]
            for b in range(3):
                blk = col[32 * b:32 * b + 32]
                want_scale, want = ref_block(blk, E5, "ocp")
                assert int(scales[i, b, j]) == want_scale
                assert codes[i, 32 * b:32 * b + len(blk), j].tolist() == want
    back = emu.mx.dequantize(codes, scales, E5, axis=1, pad=True)
    assert back.shape == x.shape


# ---- bad input --------------------------------------------------------------------------------------------------------

def test_errors_name_the_rule_and_the_value():
    bf = np.zeros((32, 8), ml_dtypes.bfloat16)
    with pytest.raises(ValueError, match="40 partitions.*multiple of 32"):
        emu.mx.quantize_mx(np.zeros((40, 8), ml_dtypes.bfloat16), E4)
    with pytest.raises(ValueError, match="free size 6.*multiple of 4"):
        emu.mx.quantize_mx(np.zeros((32, 6), ml_dtypes.bfloat16), E4)
    with pytest.raises(TypeError, match="bfloat16 or float16.*float32"):
        emu.mx.quantize_mx(np.zeros((32, 8), np.float32), E4)
    with pytest.raises(ValueError, match="convention.*'hwx'"):
        emu.mx.quantize_mx(bf, E4, "hwx")
    with pytest.raises(ValueError, match="legacy e4m3"):
        emu.mx.quantize_mx(bf, "float8_e4m3")
    with pytest.raises(ValueError, match="length 33.*block_size 32.*pad=True"):
        emu.mx.quantize(np.zeros((2, 33), np.float32), E4)
    with pytest.raises(ValueError, match="12 partitions.*multiple of 8"):
        emu.mx.dequantize_mx(np.zeros((12, 2), np.uint32), np.zeros((1, 2), np.uint8), E4)
    with pytest.raises(ValueError, match=r"shape \(1, 2\)"):
        emu.mx.dequantize_mx(np.zeros((8, 2), np.uint32), np.zeros((2, 2), np.uint8), E4)
    with pytest.raises(TypeError, match="uint32"):
        emu.mx.dequantize_mx(np.zeros((8, 2), np.uint16), np.zeros((1, 2), np.uint8), E4)
    with pytest.raises(ValueError, match="K = 48.*multiple of 32"):
        emu.mx.quantize_operand(np.zeros((48, 2), np.float32), E4)
    with pytest.raises(ValueError, match="order.*'natural'"):
        emu.mx.quantize_operand(np.zeros((32, 2), np.float32), E4, order="natural")
    with pytest.raises(ValueError, match="p_offset.*3"):
        emu.mx.to_hw_scale_layout(np.zeros((4, 2), np.uint8), p_offset=3)
    with pytest.raises(ValueError, match="hw_scale has 8 partitions.*row 7.*partition 35"):
        emu.mx.from_hw_scale_layout(np.zeros((8, 2), np.uint8), kp=64)
    with pytest.raises(ValueError, match="rounding"):
        emu.mx.quantize(np.zeros((1, 32), np.float32), E4, rounding="nearest")
    with pytest.raises(TypeError, match="int32"):
        emu.mx.quantize(np.zeros((1, 32), np.int32), E4)


def test_nothing_is_written_to_a_shared_tile_on_error():
    tile = np.zeros((32, 2), np.uint8)
    with pytest.raises(ValueError):
        emu.mx.to_hw_scale_layout(np.ones((8, 2), np.uint8), out=tile)
    assert not tile.any()


def test_fp4_from_quantize_mx_is_a_flagged_extension():
    bf = np.ones((32, 4), ml_dtypes.bfloat16)
    with pytest.warns(emu.mx.MXExtensionWarning, match="extension"):
        emu.mx.quantize_mx(bf, E2)
    with emu.settings(mx_fp4_quantize_mx="raise"), pytest.raises(TypeError, match="float4_e2m1fn"):
        emu.mx.quantize_mx(bf, E2)
