"""``emu.isa``: the instruction set on NumPy arrays, destination first, against float64 / formula references."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import emulator as emu
from emulator.engines.compute import INSTRUCTIONS
from emulator.errors import DtypeError, ShapeError

BF16 = ml_dtypes.bfloat16


def test_namespace_has_every_instruction():
    names = set(emu.isa.__all__)
    assert set(INSTRUCTIONS) <= names
    assert {"nc_matmul", "nc_matmul_mx", "nc_matmul_sparse", "nc_transpose", "quantize_mx", "dma_copy",
            "dma_transpose"} <= names
    for name in names - {"EngineRNG"}:
        assert callable(getattr(emu.isa, name))


def test_nc_matmul_destination_first():
    rng = np.random.default_rng(0)
    st = rng.integers(-3, 4, (64, 32)).astype(BF16)
    mv = rng.integers(-3, 4, (64, 100)).astype(BF16)
    dst = np.full((32, 100), np.nan, np.float32)
    out = emu.isa.nc_matmul(dst, st, mv)
    ref = st.astype(np.float64).T @ mv.astype(np.float64)
    assert out is dst
    np.testing.assert_array_equal(dst, ref)
    emu.isa.nc_matmul(dst, st, mv, accumulate=True)
    np.testing.assert_array_equal(dst, 2 * ref)
    with pytest.raises(ShapeError, match="psum has shape"):
        emu.isa.nc_matmul(np.zeros((3, 100), np.float32), st, mv)


def test_nc_transpose_and_dtype_rule():
    x = np.arange(12, dtype=np.float32).reshape(3, 4).astype(BF16)
    dst = np.empty((4, 3), BF16)
    emu.isa.nc_transpose(dst, x)
    np.testing.assert_array_equal(dst.view(np.uint16), x.T.view(np.uint16))
    with pytest.raises(DtypeError, match="a transpose keeps the dtype"):
        emu.isa.nc_transpose(np.empty((4, 3), np.float32), x)


def test_dma_copy_on_arrays():
    x = np.array([[1.0, 1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8, 70000.0]], np.float32)
    dst = np.empty((2, 2), np.float16)
    emu.isa.dma_copy(dst, x)
    np.testing.assert_array_equal(dst.reshape(-1), x.reshape(-1).astype(np.float16))  # NumPy's fp16 cast is RNE


@pytest.mark.parametrize("convention, offset", [("hw", 15 - 1), ("ocp", 15)])  # Emax(e5m2) = 15
def test_quantize_mx_array_and_public_mx_route_agree_with_the_formula(convention, offset):
    """hw: X = 2^(floor(log2 amax) - (Emax - 1)); ocp: X = 2^(floor(log2 amax) - Emax), quotient clipped to 57344."""
    rng = np.random.default_rng(5)
    src = (rng.standard_normal((32, 4)) * 10).astype(BF16)
    dst, scale = np.empty((32, 1), np.uint32), np.empty((4, 1), np.uint8)
    with emu.settings(mx_convention=convention):
        emu.isa.quantize_mx(dst, src, scale, fmt="float8_e5m2_x4")
        x4, sc = emu.mx.quantize_mx(src, "float8_e5m2")  # the numerics route stays
    v = src.astype(np.float64)
    for g in range(4):
        block = v[8 * g:8 * g + 8]
        e = int(np.floor(np.log2(np.abs(block).max())))
        assert int(scale[g, 0]) == e - offset + 127
        want = np.clip(block / 2.0 ** (e - offset), -57344, 57344).astype(ml_dtypes.float8_e5m2).view(np.uint8)
        np.testing.assert_array_equal(emu.unpack_x4(dst[8 * g:8 * g + 8], "float8_e5m2"), want)
    np.testing.assert_array_equal(x4, dst)
    np.testing.assert_array_equal(sc, scale)


@pytest.mark.parametrize("convention, code", [("hw", 1 - 7 + 127), ("ocp", 1 - 8 + 127)])
def test_quantize_mx_hw_scale_layout(convention, code):
    src = np.full((64, 4), 3.0, BF16)
    dst, hw = np.empty((64, 1), np.uint32), np.zeros((64, 1), np.uint8)
    with emu.settings(mx_convention=convention):
        emu.isa.quantize_mx(dst, src, hw, fmt="float8_e4m3fn", p_offset=4)
    # 8 scale rows: row i on partition (i // 4) * 32 + i % 4 + 4
    assert [int(p) for p in np.flatnonzero(hw[:, 0])] == [4, 5, 6, 7, 36, 37, 38, 39]
    assert (hw[hw != 0] == code).all()  # 3 = 1.5 * 2^1: X = 2^(1 - 7) (hw) or 2^(1 - 8) (ocp)
    with pytest.raises(DtypeError, match="name their format"):
        emu.isa.quantize_mx(dst, src, hw)
