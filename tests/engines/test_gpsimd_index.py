"""nonzero_with_count, local_gather and sequence_bounds against scalar references written from NKI's API
docstrings (nki/api/nki/isa/__init__.py and the NumPy semantics of nki/test/test_nki_isa_local_gather.py in
aws-neuron-sdk): plain Python loops over partitions and elements, Python ints."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from emulator import settings as emu_settings
from emulator.engines import NeuronCore, gpsimd_index as gi
from emulator.engines.instructions import ConnectivityError
from emulator.errors import ArgumentError, DtypeError, ShapeError, UninitializedReadError

RNG = np.random.default_rng(18)


# ---- nonzero_with_count ---------------------------------------------------------------------------------------

def nonzero_ref(row, offset, pad):
    """The docstring's Behavior block for one partition (Python ints; a float element is nonzero if != 0.0)."""
    found = [i + offset for i, v in enumerate(row) if v != 0]
    found = [((i + 2**31) % 2**32) - 2**31 for i in found]
    return found + [pad] * (len(row) - len(found)) + [len(found)]


def test_nonzero_docstring_example():
    src = np.array([[0, 1, 1, 0, 0, 1, 0, 0]], np.float32)
    out = gi.nonzero_with_count(np.zeros((1, 9), np.int32), src, index_offset=16, padding_val=-1)
    assert out.tolist() == [[17, 18, 21, -1, -1, -1, -1, -1, 3]]


@pytest.mark.parametrize("dtype", [np.float32, np.int32])
@pytest.mark.parametrize("rows", [1, 16, 17, 100, 128])
def test_nonzero_only_core_rows_written(dtype, rows):
    src = (RNG.integers(-2, 3, size=(rows, 3, 5)) * (RNG.random((rows, 3, 5)) < 0.4)).astype(dtype)
    sentinel = 1234567
    dst = np.full((rows, 16), sentinel, np.int32)
    gi.nonzero_with_count(dst, src, index_offset=5, padding_val=-7)
    for p in range(rows):
        want = nonzero_ref(src[p].reshape(-1).tolist(), 5, -7) if p % 16 == 0 else [sentinel] * 16
        assert dst[p].tolist() == want, p


def test_nonzero_float_edge_values():
    src = np.array([[0.0, -0.0, np.nan, np.inf, -np.inf, 1e-45, -1e-45, 0.0]], np.float32)
    out = gi.nonzero_with_count(np.zeros((1, 9), np.int32), src)
    assert out.tolist() == [[2, 3, 4, 5, 6, -1, -1, -1, 5]]
    assert out.tolist() == [nonzero_ref(src[0].tolist(), 0, -1)]


@pytest.mark.parametrize("fill", [0, 1])
def test_nonzero_all_zero_and_all_nonzero(fill):
    t = 2048
    src = np.full((128, t), fill, np.int32)
    dst = np.zeros((128, t + 1), np.int32)
    gi.nonzero_with_count(dst, src, index_offset=-3, padding_val=99)
    want = nonzero_ref([fill] * t, -3, 99)
    assert all(dst[p].tolist() == want for p in range(0, 128, 16))


def test_nonzero_offset_wraps_int32():
    src = np.ones((1, 4), np.int32)
    out = gi.nonzero_with_count(np.zeros((1, 5), np.int32), src, index_offset=2**31 - 2)
    assert out.tolist() == [nonzero_ref([1, 1, 1, 1], 2**31 - 2, -1)]
    assert out[0, 2] == -2**31


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-3, 3), min_size=1, max_size=40), st.integers(-2**31, 2**31 - 1),
       st.integers(-2**31, 2**31 - 1))
def test_nonzero_property(values, offset, pad):
    src = np.array([values], np.int32)
    out = gi.nonzero_with_count(np.zeros((1, len(values) + 1), np.int32), src, index_offset=offset,
                                padding_val=pad)
    assert out[0].tolist() == nonzero_ref(values, offset, pad)


def test_nonzero_errors_leave_dst_untouched():
    dst = np.full((16, 5), 3, np.int32)
    cases = [
        (dict(src=np.ones((16, 4), np.float16)), DtypeError, "src is float16; it must be float32 or int32"),
        (dict(src=np.ones((16, 5), np.float32)), ShapeError, "so dst needs 6"),
        (dict(src=np.ones((8, 4), np.float32)), ShapeError, "src has 8 partitions and dst 16"),
        (dict(src=np.ones((16, 4), np.int32), index_offset=2**31), ArgumentError, "index_offset=2147483648"),
        (dict(src=np.ones((16, 4), np.int32), padding_val=1.5), ArgumentError, "padding_val must be an int32"),
    ]
    for kw, err, msg in cases:
        with pytest.raises(err, match=msg):
            gi.nonzero_with_count(dst, **kw)
    with pytest.raises(DtypeError, match="dst is float32; it must be int32"):
        gi.nonzero_with_count(np.zeros((16, 5), np.float32), np.ones((16, 4), np.int32))
    assert (dst == 3).all()


def test_nonzero_core_reads_and_marks_only_core_rows():
    core = NeuronCore()
    src = core.memory.sbuf((32, 4), "float32")
    src[0:1].write(np.array([[0, 2, 0, 3]], np.float32))
    src[16:17].write(np.zeros((1, 4), np.float32))           # rows 1..15, 17..31 never written
    dst = core.memory.sbuf((32, 5), "int32")
    core.nonzero_with_count(dst, src, padding_val=-1)
    assert dst.written[[0, 16]].all() and not dst.written[1:16].any() and not dst.written[17:].any()
    assert dst.read("t", index=0).tolist() == [1, 3, -1, -1, 2]
    with pytest.raises(UninitializedReadError):
        dst.read("t")
    psum = core.memory.psum((16, 4), "float32")
    with pytest.raises(ConnectivityError, match="GpSimd reads and writes SBUF only"):
        core.nonzero_with_count(core.memory.sbuf((16, 5), "int32"), psum)
    # a core row computed from a partly unwritten src row is itself unwritten (setting uninitialized_copies)
    part = core.memory.sbuf((32, 4), "float32")
    part[0:1, 0:3].write(np.ones((1, 3), np.float32))
    part[16:17].write(np.ones((1, 4), np.float32))
    out = core.memory.sbuf((32, 5), "int32")
    core.nonzero_with_count(out, part)
    assert out.written[16].all() and not out.written[0].any()
    with emu_settings(uninitialized_copies="check"):
        with pytest.raises(UninitializedReadError, match="nonzero_with_count src: .* at index \\(0, 3\\)"):
            core.nonzero_with_count(core.memory.sbuf((32, 5), "int32"), part)


# ---- local_gather ---------------------------------------------------------------------------------------------

def local_gather_ref(src, index, elems, valid):
    """NKI's NumPy semantics, one element at a time: per core, the 16-partition index slice read partition first."""
    rows = src.shape[0]
    flat_src = src.reshape(rows, -1)
    flat_idx = index.reshape(rows, -1)
    out = []
    for p in range(rows):
        core = p // 16
        idx = [int(flat_idx[core * 16 + q, c]) for c in range(flat_idx.shape[1]) for q in range(16)][:valid]
        out.append([flat_src[p, i + e] for i in idx for e in range(elems)])
    return np.array(out, src.dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.uint16])
@pytest.mark.parametrize("elems", [1, 2, 4, 32])
def test_local_gather_matches_reference(dtype, elems):
    rows, free = 32, 64
    src = RNG.integers(-100, 100, size=(rows, free)).astype(dtype)
    index = RNG.integers(0, free - elems + 1, size=(rows, 3), dtype=np.uint16)
    valid = 40
    dst = np.empty((rows, valid * elems), dtype)
    gi.local_gather(dst, src, index, num_elem_per_idx=elems, num_valid_indices=valid)
    assert dst.tobytes() == local_gather_ref(src, index, elems, valid).tobytes()


def test_local_gather_sdk_example_shapes():
    """The SDK example: src [128, 512, 4], index [128, 4] (one core's indices x 8), 4 elements per index."""
    src = (RNG.random((128, 512, 4)) * 100).astype(np.float32)
    per_core = RNG.integers(0, 512, size=(16, 4), dtype=np.uint16)
    index = np.tile(per_core, (8, 1)) * 4
    dst = np.empty((128, 4, 16, 4), np.float32)
    gi.local_gather(dst, src, index, num_elem_per_idx=4, num_valid_indices=64)
    want = np.empty((128, 64, 4), np.float32)
    for c in range(8):
        want[c * 16:(c + 1) * 16] = np.take(src[c * 16:(c + 1) * 16], per_core.flatten(order="F"), axis=1)
    assert dst.tobytes() == want.reshape(dst.shape).tobytes()


def test_local_gather_nan_payloads_and_negative_zero_move_exactly():
    bits = np.array([0x7FC00001, 0xFFC12345, 0x80000000, 0x7F800000], np.uint32)
    src = np.tile(bits, (16, 1)).view(np.float32)
    index = np.zeros((16, 1), np.uint16); index[:4, 0] = [3, 2, 1, 0]
    dst = gi.local_gather(np.empty((16, 4), np.float32), src, index, num_valid_indices=4)
    assert dst.view(np.uint32)[5].tolist() == bits[::-1].tolist()


def test_local_gather_default_valid_is_whole_slice_and_limits():
    src = np.arange(16 * 300, dtype=np.float32).reshape(16, 300)
    index = RNG.integers(0, 300, size=(16, 256), dtype=np.uint16)   # 4096 indices per core: the limit
    dst = gi.local_gather(np.empty((16, 4096), np.float32), src, index)
    assert dst.tobytes() == local_gather_ref(src, index, 1, 4096).tobytes()
    with pytest.raises(ShapeError, match="4097 indices per GpSimd core; the limit is 4096"):
        big = np.zeros((16, 257), np.uint16)
        gi.local_gather(np.empty((16, 4097), np.float32), src, big, num_valid_indices=4097)


def test_local_gather_errors_leave_dst_untouched():
    src = np.zeros((16, 8), np.float32)
    dst = np.full((16, 4), 5.0, np.float32)
    idx = np.zeros((16, 1), np.uint16)
    cases = [
        (dict(src_buffer=np.zeros((16, 8), np.float32), index=idx.astype(np.int32)), DtypeError, "must be uint16"),
        (dict(src_buffer=np.zeros((16, 8), np.int32), index=idx), DtypeError, "dst must have src_buffer's dtype"),
        (dict(src_buffer=src, index=idx, num_elem_per_idx=3), ArgumentError, "num_elem_per_idx=3 must be one of"),
        (dict(src_buffer=src, index=idx, num_valid_indices=17), ArgumentError, "num_valid_indices=17"),
        (dict(src_buffer=src, index=idx, num_valid_indices=2), ShapeError, "dst has 4 elements per partition"),
        (dict(src_buffer=src, index=np.full((16, 1), 8, np.uint16), num_valid_indices=4), ShapeError,
         "element 0 is 8; with num_elem_per_idx 1 it reads past the 8 elements"),
    ]
    for kw, err, msg in cases:
        with pytest.raises(err, match=msg):
            gi.local_gather(dst, **kw)
    with pytest.raises(ShapeError, match="multiple of 16"):
        gi.local_gather(np.empty((8, 1), np.float32), np.zeros((8, 8), np.float32), np.zeros((8, 1), np.uint16))
    assert (dst == 5.0).all()


def test_local_gather_core_checks_only_what_it_reads():
    core = NeuronCore()
    src = core.memory.sbuf((16, 8), "float32")
    src[:, 2:4].write(np.ones((16, 2), np.float32))
    index = core.memory.sbuf((16, 2), "uint16")
    index[0:3, 0:1].write(np.array([[2], [3], [2]], np.uint16))   # the 3 valid indices: partition first
    dst = core.memory.sbuf((16, 3), "float32")
    core.local_gather(dst, src, index, num_valid_indices=3)
    assert dst.written.all() and (dst.data == 1.0).all()
    index[3:4, 0:1].write(np.array([[0]], np.uint16))
    # a gather is a move (setting uninitialized_copies): what it takes from unwritten src elements is unwritten in
    # dst, element for element, and a later use of it is the error; with "check" the gather itself is
    dst4 = core.memory.sbuf((16, 4), "float32")
    core.local_gather(dst4, src, index, num_valid_indices=4)
    assert dst4.written.tolist() == [[True, True, True, False]] * 16
    with pytest.raises(UninitializedReadError, match=r"use: .*at index \(0, 3\)"):
        dst4.read("use")
    src[0:5, 0:1].write(np.zeros((5, 1), np.float32))  # column 0 of partitions 0-4 only
    dst4 = core.memory.sbuf((16, 4), "float32")
    core.local_gather(dst4, src, index, num_valid_indices=4)
    assert dst4.written[:, 3].tolist() == [True] * 5 + [False] * 11 and dst4.written[:, :3].all()
    with emu_settings(uninitialized_copies="check"):
        with pytest.raises(UninitializedReadError, match="local_gather src_buffer"):
            core.local_gather(core.memory.sbuf((16, 4), "float32"), src, index, num_valid_indices=4)
    with pytest.raises(UninitializedReadError, match="local_gather index"):
        core.local_gather(core.memory.sbuf((16, 5), "float32"), src, index, num_valid_indices=5)


# ---- sequence_bounds ------------------------------------------------------------------------------------------

def bounds_ref(seq):
    """The SDK test's compute_sequence_bounds, as Python lists."""
    n = len(seq)
    lo, hi = [0] * n, [0] * n
    lo[0] = 0 if seq[0] != 0 else n
    for i in range(1, n):
        lo[i] = n if seq[i] == 0 else lo[i - 1] if seq[i] == seq[i - 1] else i
    hi[-1] = n if seq[-1] != 0 else -1
    for i in range(n - 2, -1, -1):
        hi[i] = -1 if seq[i] == 0 else hi[i + 1] if seq[i] == seq[i + 1] else i + 1
    return [lo, hi]


def test_sequence_bounds_docstring_example():
    ids = np.array([[0, 1, 1, 2, 2, 2, 0, 3, 3]], np.float32)
    out = gi.sequence_bounds(np.empty((1, 2, 9), np.float32), ids)
    assert out[0].tolist() == [[9, 1, 1, 3, 3, 3, 9, 7, 7], [-1, 3, 3, 6, 6, 6, -1, 9, 9]]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=64), st.sampled_from([np.float32, np.int32]),
       st.sampled_from([np.float32, np.int32]))
def test_sequence_bounds_property(seq, in_dtype, out_dtype):
    ids = np.array([seq], in_dtype)
    out = gi.sequence_bounds(np.empty((1, 2, len(seq)), out_dtype), ids)
    assert out[0].tolist() == bounds_ref(seq)


@pytest.mark.parametrize("seq", [[0] * 7, [5] * 7, [3, 3, 1, 1, 3, 3]])
def test_sequence_bounds_all_padding_one_run_and_repeated_id(seq):
    out = gi.sequence_bounds(np.empty((1, 2 * len(seq)), np.int32), np.array([seq], np.int32))
    assert out.reshape(2, -1).tolist() == bounds_ref(seq)


def test_sequence_bounds_errors():
    dst = np.full((1, 2, 3), 4, np.int32)
    for ids, err, msg in [
        (np.array([[1, -1, 2]], np.int32), ArgumentError, "element 1 is -1; segment ids must be non-negative"),
        (np.array([[1, 1.5, 2]], np.float32), ArgumentError, "element 1 is 1.5"),
        (np.array([[1, np.nan, 2]], np.float32), ArgumentError, "element 1 is nan"),
        (np.array([[1, 2, 3]], np.int16), DtypeError, "segment_ids is int16"),
        (np.array([[1, 2]], np.int32), ShapeError, "dst needs \\[1, 2, 2\\]"),
        (np.ones((2, 3), np.int32), ShapeError, "must have 1 partition"),
    ]:
        with pytest.raises(err, match=msg):
            gi.sequence_bounds(dst, ids)
    assert (dst == 4).all()


# ---- topk -------------------------------------------------------------------------------------------------------

def topk_ref(src, n, k):
    """Per 16-partition group: rank the snake's n elements (Python floats; NaN above +inf, -0 == +0, the lower
    position wins a tie), keep the k best in ascending order, lay them out in the same snake. None = untouched."""
    rows, cols = src.shape
    vals = [[None] * k for _ in range(rows)]
    idxs = [[None] * k for _ in range(rows)]
    f = src.astype(np.float32).astype(np.float64)
    for g in range(0, rows, 16):
        snake = [(float(f[g + i % 16, i // 16]), i) for i in range(n)]
        ranked = sorted(snake, key=lambda vi: (vi[0] != vi[0], 0.0 if vi[0] != vi[0] else vi[0], -vi[1]))
        for j, (v, i) in enumerate(ranked[n - k:]):
            vals[g + j % 16][j // 16] = src[g + i % 16, i // 16]
            idxs[g + j % 16][j // 16] = i
    return vals, idxs


def _check_topk(src, n, k):
    import ml_dtypes
    rows = src.shape[0]
    val = np.full((rows, k), 7, ml_dtypes.bfloat16)
    idx = np.full((rows, k), 99999, np.uint32)
    gi.topk(val, idx, src, n)
    want_v, want_i = topk_ref(src, n, k)
    for p in range(rows):
        for c in range(k):
            if want_v[p][c] is None:
                assert val[p, c] == 7 and idx[p, c] == 99999, (p, c)
            else:
                assert val[p, c].tobytes() == want_v[p][c].tobytes() and idx[p, c] == want_i[p][c], (p, c)


@pytest.mark.parametrize("n,k", [(8, 1), (8, 8), (42, 8), (100, 37), (256, 256)])
def test_topk_matches_reference(n, k):
    import ml_dtypes
    src = RNG.standard_normal((32, -(-n // 16) + 1)).astype(ml_dtypes.bfloat16)
    _check_topk(src, n, k)


def test_topk_ties_nan_signed_zero():
    import ml_dtypes
    src = np.zeros((16, 4), ml_dtypes.bfloat16)          # all +0: ties everywhere
    src[3, 0] = -0.0
    src[5, 1] = np.nan
    src[6, 1] = np.inf
    src[7, 2] = -np.inf
    _check_topk(src, 64, 20)
    _check_topk(np.ones((16, 2), ml_dtypes.bfloat16), 20, 20)


@settings(max_examples=40, deadline=None)
@given(st.integers(8, 120), st.data())
def test_topk_property(n, data):
    import ml_dtypes
    k = data.draw(st.integers(1, n))
    codes = data.draw(st.lists(st.sampled_from([0x0000, 0x8000, 0x3F80, 0xBF80, 0x4000, 0x7F80, 0xFF80, 0x7FC0, 0x3F81]),
                               min_size=16 * -(-n // 16), max_size=16 * -(-n // 16)))
    src = np.array(codes, np.uint16).reshape(16, -1).view(ml_dtypes.bfloat16)
    _check_topk(src, n, k)


def test_topk_limits_and_errors():
    import ml_dtypes
    bf = ml_dtypes.bfloat16
    src = RNG.standard_normal((16, 4096)).astype(bf)
    _check_topk(src, 65535, 5)                            # the largest n
    val, idx = np.zeros((16, 4), bf), np.zeros((16, 4), np.uint32)
    for kw, err, msg in [
        (dict(src=np.zeros((16, 1), np.float32), n=8), DtypeError, "src is float32; it must be bfloat16"),
        (dict(src=np.zeros((16, 1), bf), n=7), ArgumentError, "n=7 must be an int with 8 <= n < 65536"),
        (dict(src=np.zeros((16, 1), bf), n=65536), ArgumentError, "n=65536"),
        (dict(src=np.zeros((16, 1), bf), n=17), ShapeError, "src has 1 elements per partition; n = 17 needs at "
                                                             "least 2"),
        (dict(src=np.zeros((8, 1), bf), n=8), ShapeError, "multiple of 16"),
    ]:
        with pytest.raises(err, match=msg):
            gi.topk(val, idx, **kw)
    with pytest.raises(ShapeError, match="K = 9 \\(val_dst's free size\\) must satisfy 1 <= K < 32768 and K <= n = 8"):
        gi.topk(np.zeros((16, 9), bf), np.zeros((16, 9), np.uint32), np.zeros((16, 1), bf), 8)
    with pytest.raises(DtypeError, match="idx_dst is int32; it must be uint32"):
        gi.topk(val, np.zeros((16, 4), np.int32), np.zeros((16, 1), bf), 8)
    assert (val == 0).all() and (idx == 0).all()


def test_topk_core_tracks_snake_positions():
    import ml_dtypes
    core = NeuronCore()
    src = core.memory.sbuf((32, 4), "bfloat16")
    src[:, 0:2].write(RNG.standard_normal((32, 2)).astype(ml_dtypes.bfloat16))   # snake positions 0..31
    val, idx = core.memory.sbuf((32, 20), "bfloat16"), core.memory.sbuf((32, 20), "uint32")
    core.topk(val, idx, src, n=20)
    want = np.zeros((32, 20), bool)
    want[:, 0] = True
    want[[0, 1, 2, 3, 16, 17, 18, 19], 1] = True
    assert (val.written == want).all() and (idx.written == want).all()
    with pytest.raises(UninitializedReadError, match="topk src: .* at index \\(0, 2\\)"):
        core.topk(val, idx, src, n=33)


def test_topk_largest_k():
    import ml_dtypes
    bf = ml_dtypes.bfloat16
    src = RNG.standard_normal((16, 2048)).astype(bf)
    val, idx = np.zeros((16, 32767), bf), np.zeros((16, 32767), np.uint32)
    gi.topk(val, idx, src, 32768)
    f = src.astype(np.float64)
    snake = [(f[i % 16, i // 16], i) for i in range(32768)]
    ranked = sorted(snake, key=lambda vi: (vi[0], -vi[1]))[1:]   # no NaN here: drop the smallest
    j = np.arange(32767)
    assert idx[j % 16, j // 16].tolist() == [i for _, i in ranked]
    with pytest.raises(ShapeError, match="K = 32768"):
        gi.topk(np.zeros((16, 32768), bf), np.zeros((16, 32768), np.uint32), src, 32768)


def test_views_know_their_physical_start_partition():
    core = NeuronCore()
    t = core.memory.sbuf((64, 4), "float32")
    assert t.start_partition == 0 and t[16:48].start_partition == 16 and t[16:48][8:].start_partition == 24
    assert t[-8:].start_partition == 56 and t[5].start_partition == 5 and t[:, 1:3].start_partition == 0
    u = core.memory.allocate("sbuf", (32, 4), "float32", at=(64, 0))  # placed at partition 64
    assert u.start_partition == 64 and u[16:].start_partition == 80 and u[16:][2:3].start_partition == 82


def test_core_wise_operands_start_on_a_core_boundary():
    """A view from partition 16 is cores 1.. of the tile: its row 0 is core 1's first partition, computed as the
    reference of its own rows; a view from partition 8 would straddle two cores and is refused before any write."""
    core = NeuronCore()
    src = core.memory.sbuf((64, 6), "float32")
    vals = np.zeros((64, 6), np.float32)
    vals[16] = [0, 1, 0, 0, 5, 0]
    vals[32] = [7, 0, 0, 0, 0, 8]
    src.write(vals)
    dst = core.memory.sbuf((64, 7), "int32")
    core.memset(dst, 0)
    core.nonzero_with_count(dst[16:48], src[16:48], index_offset=0, padding_val=-1)
    got = dst.read("t")
    for row in (16, 32):
        assert got[row].tolist() == nonzero_ref(vals[row], 0, -1)
    assert (got[:16] == 0).all() and (got[48:] == 0).all()
    before = dst.read("t").copy()
    at = dst.start_partition  # 0 or 64: the allocator's choice (a multiple of 16 either way)
    with pytest.raises(ShapeError, match=rf"nonzero_with_count: dst starts at partition {at + 8}; each GpSimd core "
                                         "owns 16"):
        core.nonzero_with_count(dst[8:40], src[8:40])
    vals_out = core.memory.sbuf((64, 8), "float32")
    with pytest.raises(ShapeError, match=rf"topk: .* starts at partition {vals_out.start_partition + 40}"):
        core.topk(vals_out[40:56], core.memory.sbuf((64, 8), "uint32")[40:56], src[40:56], n=4)
    assert np.array_equal(dst.read("t"), before)
