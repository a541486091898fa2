"""Memory tensor views (slices with steps, reshape, dtype views, NKI .ap access patterns) against NumPy indexing,
with the initialisation tracking following each view."""

from __future__ import annotations

import ml_dtypes
import numpy as np

import emulator as emu
import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.engines.core import NeuronCore
from emulator.engines.memory import Memory
from emulator.errors import ShapeError, UninitializedReadError


def _filled(shape=(8, 12), kind="sbuf", dtype="float32"):
    mem = Memory()
    ref = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    t = getattr(mem, kind)(shape, dtype, name="t", value=ref)
    return mem, t, ref.astype(t.dtype)


_slice = st.builds(slice, st.one_of(st.none(), st.integers(0, 7)), st.one_of(st.none(), st.integers(1, 12)),
                   st.one_of(st.none(), st.integers(1, 3)))


@given(_slice, _slice)
def test_slices_read_like_numpy(s0, s1):
    _, t, ref = _filled()
    want = ref[s0, s1]
    if want.size == 0:
        return
    v = t[s0, s1]
    assert v.shape == want.shape and v.buffer == "sbuf"
    np.testing.assert_array_equal(v.read(), want)


@given(_slice, _slice)
def test_writes_through_views_land_where_numpy_says(s0, s1):
    mem = Memory()
    t = mem.sbuf((8, 12), "float32", name="t")
    ref_written = np.zeros((8, 12), bool)
    ref_written[s0, s1] = True
    if not ref_written.any():
        return
    v = t[s0, s1]
    v.write(np.full(v.shape, 7.0, np.float32))
    np.testing.assert_array_equal(t.written, ref_written)
    np.testing.assert_array_equal(np.nan_to_num(t.data, nan=-1), np.where(ref_written, 7.0, -1.0))


def test_int_index_ellipsis_and_reshape():
    _, t, ref = _filled()
    np.testing.assert_array_equal(t[3].read(), ref[3])
    np.testing.assert_array_equal(t[..., 2].read(), ref[..., 2])
    r = t.reshape((8, 3, 4))
    np.testing.assert_array_equal(r.read(), ref.reshape(8, 3, 4))
    np.testing.assert_array_equal(r[:, 1, ::2].read(), ref.reshape(8, 3, 4)[:, 1, ::2])
    with pytest.raises(ShapeError, match="cannot be viewed as"):
        t[::2, :6].reshape((24,))
    with pytest.raises(TypeError, match="views only"):
        t[[0, 1]]


def test_dtype_view_shares_bytes_and_tracks_per_byte():
    mem = Memory()
    t = mem.sbuf((2, 4), "float32", name="t")
    b = t.view(ml_dtypes.bfloat16)  # [2, 8]
    assert b.shape == (2, 8)
    b[:, 1::2].write(np.ones((2, 4), np.float32))  # the high halves (little-endian) of every fp32 word
    with pytest.raises(UninitializedReadError, match="'t'"):
        t.read("probe")  # the low halves were never written
    b[:, 0::2].write(np.zeros((2, 4), np.float32))
    np.testing.assert_array_equal(t.read("probe"), np.ones((2, 4), np.float32))  # bf16 1.0 over zero low bits
    u = t.view(np.uint32)
    np.testing.assert_array_equal(u.read(), np.full((2, 4), 0x3F800000, np.uint32))


@pytest.mark.parametrize("kind", ["sbuf", "hbm"])
def test_ap_matches_numpy_on_the_flat_elements(kind):
    _, t, ref = _filled((8, 12), kind)
    flat = ref.reshape(-1)
    cases = [([[12, 8], [1, 12]], 0), ([[12, 4], [2, 6]], 1), ([[24, 4], [3, 4]], 12), ([[12, 8], [-1, 12]], 11)]
    for pattern, offset in cases:
        idx = offset + sum(np.arange(n).reshape((-1,) + (1,) * (len(pattern) - 1 - k)) * s
                           for k, (s, n) in enumerate(pattern))
        if kind == "sbuf" and pattern[0][0] != 12:
            with pytest.raises(ShapeError, match="partition step 24 must be one partition row"):
                t.ap(pattern, offset)
            continue
        np.testing.assert_array_equal(t.ap(pattern, offset).read(), flat[idx])


def test_ap_on_a_view_may_step_partitions_by_the_views_own_row():
    # nki-library's TensorView patterns a view [T, I] of a [T, 2I] tile from the view's shape: partition step I
    _, t, ref = _filled((4, 16), "sbuf")
    half = t[:, 8:16]
    got = half.ap([[8, 4], [2, 3]], 1).read()  # partitions 0-3, the view's columns 1, 3, 5
    np.testing.assert_array_equal(got, ref[:, [9, 11, 13]])
    np.testing.assert_array_equal(half.ap([[16, 4], [1, 8]], 0).read(), ref[:, 8:16])  # the memory's row: as before
    with pytest.raises(ShapeError, match=r"partition step 4 must be one partition row \(16 float32 elements, or 8 "
                                         r"as this view presents it\)"):
        half.ap([[4, 4], [1, 4]], 0)
    every_other = t[0:4:2, 8:16]  # a view's next partition is the view's, here two of the memory's
    np.testing.assert_array_equal(every_other.ap([[8, 2], [1, 8]], 0).read(), ref[0:4:2, 8:16])
    with pytest.raises(ShapeError, match=r"partition step 8 must be one partition row \(16 float32 elements\)"):
        t.ap([[8, 4], [1, 8]], 0)  # the tile itself has one row size


def test_ap_bounds_dtype_and_writes():
    mem = Memory()
    h = mem.hbm((4, 4), "float32", name="h")
    with pytest.raises(ShapeError, match="reaches element 16; the tensor holds 16"):
        h.ap([[4, 4], [1, 4]], 1)
    h.ap([[8, 2], [1, 4]], 0).write(np.ones((2, 4), np.float32))  # rows 0 and 2
    np.testing.assert_array_equal(h.written.all(axis=1), [True, False, True, False])
    words = h.ap([[2, 8]], 0, dtype=np.uint16)  # every other uint16: the low halves of the 16 words
    assert words.shape == (8,) and words.dtype == np.uint16


def test_instruction_in_place_on_strided_views():
    core = NeuronCore()
    x = np.arange(64, dtype=np.float32).reshape(8, 8)
    src = core.memory.sbuf((8, 8), "float32", value=x)
    dst = core.memory.sbuf((8, 8), "float32", name="dst")
    core.tensor_scalar(dst[1::2, ::2], src[::2, 1::2], "multiply", 2.0)
    want = np.full((8, 8), np.nan, np.float32)
    want[1::2, ::2] = x[::2, 1::2] * 2
    np.testing.assert_array_equal(dst.data, want)
    np.testing.assert_array_equal(dst.written, ~np.isnan(want))
    with pytest.raises(UninitializedReadError, match=r"max8 src: reads SBUF tensor 'dst'.*index \(0, 0\)"):
        core.max8(core.memory.sbuf((8, 8), "float32"), dst)
    # a copy carries the unwritten elements instead (setting uninitialized_copies); 'check' reads them
    core.tensor_copy(src, dst)
    np.testing.assert_array_equal(src.written, ~np.isnan(want))
    with emu.settings(uninitialized_copies="check"):
        with pytest.raises(UninitializedReadError, match=r"tensor_copy src: reads SBUF tensor 'dst'.*index \(0, 0\)"):
            core.tensor_copy(src, dst)
