"""Written-flags of pure moves with a non-element-wise pairing: a PE-array transpose (nc_matmul is_transpose) and
nc_stream_shuffle carry unwritten source elements to where they land (setting uninitialized_copies=propagate);
under uninitialized_copies=check they read only what they move. The expected flags are built by hand from the
instruction's definition (dst[m, k] = stationary[k, m]; dst[q*32 + i] = src[q*32 + mask[i]])."""

import numpy as np
import pytest

import emulator as emu

from emulator import settings as emu_settings
from emulator.engines import NeuronCore
from emulator.engines import vector_select as vs
from emulator.errors import ShapeError, UninitializedReadError


def test_transpose_carries_unwritten_columns_to_rows():
    core = NeuronCore()
    stat = core.memory.sbuf((128, 128), "float32")
    for c in range(0, 128, 16):   # find_nonzero_indices writes every 16th column only
        stat[:, c:c + 1].write(np.full((128, 1), float(c), np.float32))
    ident = core.memory.sbuf((128, 128), "float32", value=np.eye(128, dtype=np.float32))
    dst = core.memory.psum((128, 128), "float32")
    core.nc_matmul(dst, stat, ident, is_transpose=True)
    want = np.zeros((128, 128), bool)
    want[0::16, :] = True
    assert (dst.written == want).all()
    assert (dst.data[16] == 16.0).all()
    with pytest.raises(UninitializedReadError, match="at index \\(1, 0\\)"):
        dst.read("use")
    with emu_settings(uninitialized_copies="check"):
        with pytest.raises(UninitializedReadError, match="nc_matmul stationary"):
            core.nc_matmul(core.memory.psum((128, 128), "float32"), stat, ident, is_transpose=True)


def test_matmul_over_padding_leaves_the_padding_results_unwritten():
    # dst[m, n] = sum_k stationary[k, m] * moving[k, n]: written iff stationary column m and moving column n were
    core = NeuronCore()
    stat = core.memory.sbuf((4, 4), "float32")
    stat[:, 0:2].write(np.arange(8, dtype=np.float32).reshape(4, 2))  # columns 2, 3: padding
    mov = core.memory.sbuf((4, 5), "float32")
    mov[:, 1:5].write(np.ones((4, 4), np.float32))  # column 0: padding
    dst = core.memory.psum((4, 5), "float32")
    core.nc_matmul(dst, stat, mov)
    want = np.zeros((4, 5), bool)
    want[0:2, 1:5] = True
    assert (dst.written == want).all()
    assert dst[0:2, 1:5].read("use").tolist() == [[12.0] * 4, [16.0] * 4]  # column sums of the written part
    with pytest.raises(UninitializedReadError, match="at index \\(0, 0\\)"):
        dst.read("use")
    # the next matmul of the group accumulates (accumulate=None: dst counts as written) and keeps the padding's flags
    full = core.memory.sbuf((4, 4), "float32", value=np.ones((4, 4), np.float32))
    ones = core.memory.sbuf((4, 5), "float32", value=np.ones((4, 5), np.float32))
    core.nc_matmul(dst, full, ones)
    assert (dst.written == want).all()
    assert dst[0:2, 1:5].read("use").tolist() == [[16.0] * 4, [20.0] * 4]
    with emu_settings(uninitialized_copies="check"):
        with pytest.raises(UninitializedReadError, match="nc_matmul stationary"):
            core.nc_matmul(core.memory.psum((4, 5), "float32"), stat, mov)


def test_matmul_mx_scale_columns_carry_to_their_result_columns():
    # nki-library's moe_tkg down projection quantizes [128, T x 4] activations of which one token column is written:
    # the other columns' scales are unwritten (quantize_mx), and so are exactly the result columns they scale
    core = NeuronCore()
    ones = emu.pack_x4(np.full((32, 12), 0x38, np.uint8), "float8_e4m3fn")  # e4m3fn 1.0 words [32, 3]
    stat = core.memory.sbuf((32, 2), "float8_e4m3fn_x4", value=ones[:, 0:2])
    st_scale = core.memory.sbuf((32, 2), "uint8")
    st_scale[0:4].write(np.full((4, 2), 127, np.uint8))  # quadrant layout: groups 0-3 at rows 0-3
    mov = core.memory.sbuf((32, 3), "float8_e4m3fn_x4", value=ones)
    mv_scale = core.memory.sbuf((32, 3), "uint8")
    mv_scale[0:4, 0:1].write(np.full((4, 1), 127, np.uint8))
    mv_scale[0:3, 2:3].write(np.full((3, 1), 127, np.uint8))  # group 3 of column 2 unwritten
    mv_scale[4:32].write(np.zeros((28, 3), np.uint8))  # rows the instruction does not read
    dst = core.memory.psum((2, 3), "float32")
    core.nc_matmul_mx(dst, stat, mov, st_scale, mv_scale)
    assert dst.written.tolist() == [[True, False, False]] * 2
    assert dst[:, 0:1].read("use").tolist() == [[128.0], [128.0]]  # 32 partitions x 4 products of 1.0
    st_scale2 = core.memory.sbuf((32, 2), "uint8", value=np.full((32, 2), 127, np.uint8))
    st_scale2.mark_written()
    core.nc_matmul_mx(dst, stat, mov, st_scale2, mv_scale)  # accumulating: unwritten results stay so
    assert dst.written.tolist() == [[True, False, False]] * 2
    with emu_settings(uninitialized_copies="check"):
        with pytest.raises(UninitializedReadError, match="nc_matmul_mx moving_scale"):
            core.nc_matmul_mx(core.memory.psum((2, 3), "float32"), stat, mov, st_scale, mv_scale)


def test_nc_transpose_carries_flags_to_the_transposed_place():
    core = NeuronCore()
    src = core.memory.sbuf((32, 16), "bfloat16")
    src[0:20].write(np.ones((20, 16), np.float32))  # rows 20.. are padding
    dst = core.memory.sbuf((16, 32), "bfloat16")
    core.nc_transpose(dst, src, engine="vector")
    want = np.zeros((16, 32), bool)
    want[:, 0:20] = True
    assert (dst.written == want).all()


def test_quantize_mx_carries_whole_blocks():
    # an x4 word is the 4 elements of one partition in an 8-partition x 4-element MX block: it is written iff its
    # block was (the block's scale comes from all 32 elements)
    core = NeuronCore()
    src = core.memory.sbuf((32, 8), "bfloat16")
    src[0:32, 0:4].write(np.ones((32, 4), np.float32))
    src[0:8, 4:8].write(np.ones((8, 4), np.float32))
    src[8:15, 4:8].write(np.ones((7, 4), np.float32))  # partition 15, elements 4..7 unwritten: block (1, 1)
    src[16:32, 4:8].write(np.ones((16, 4), np.float32))
    dst = core.memory.sbuf((32, 2), "float8_e4m3fn_x4")
    scale = core.memory.sbuf((4, 2), "uint8")
    core.quantize_mx(dst, src, scale)
    want = np.ones((32, 2), bool)
    want[8:16, 1] = False
    assert (dst.written == want).all()
    # its scale was computed from what the tile held there: unwritten too (dense [4, 2] scales: row = block row)
    want_scale = np.ones((4, 2), bool)
    want_scale[1, 1] = False
    assert (scale.written == want_scale).all()
    # in the quadrant layout ([32, 2] scale tile: group g at row g) likewise
    qscale = core.memory.sbuf((32, 2), "uint8")
    core.quantize_mx(core.memory.sbuf((32, 2), "float8_e4m3fn_x4"), src, qscale)
    want_q = np.ones((32, 2), bool)
    want_q[1, 1] = False
    assert (qscale.written == want_q).all()


def test_quantize_mx_carries_whole_blocks_with_several_free_dims():
    # nki-library's all-expert MX moe_tkg quantizes a [128, 6, 16, 4 x 4] tile into [128, 6, 16] words and scales:
    # the flags follow the free dims flattened, as the values do (test_quantize_mx_free_dims.py)
    core = NeuronCore()
    holey = core.memory.sbuf((32, 2, 3, 4), "bfloat16")
    holey[0:8].write(np.ones((8, 2, 3, 4), np.float32))
    holey[8:32, 0:1].write(np.ones((24, 1, 3, 4), np.float32))
    holey[8:15, 1:2].write(np.ones((7, 1, 3, 4), np.float32))
    holey[16:32, 1:2].write(np.ones((16, 1, 3, 4), np.float32))   # partition 15 of [.., 1, :, :] unwritten
    dst = core.memory.sbuf((32, 2, 3), "float8_e4m3fn_x4")
    scale = core.memory.sbuf((4, 2, 3), "uint8")
    core.quantize_mx(dst, holey, scale)
    want = np.ones((32, 2, 3), bool)
    want[8:16, 1, :] = False       # the words of the 8 partitions of block row 1 in free slice 1
    assert (dst.written == want).all()
    want_scale = np.ones((4, 2, 3), bool)
    want_scale[1, 1, :] = False
    assert (scale.written == want_scale).all()
    qscale = core.memory.sbuf((32, 2, 3), "uint8")   # quadrant layout: group g at row g
    core.quantize_mx(core.memory.sbuf((32, 2, 3), "float8_e4m3fn_x4"), holey, qscale)
    want_q = np.ones((32, 2, 3), bool)
    want_q[1, 1, :] = False
    assert (qscale.written == want_q).all()


def test_shuffle_moves_rows_and_their_flags():
    core = NeuronCore()
    t = core.memory.sbuf((64, 3), "int32")
    for q in range(2):   # only rows 0 and 16 of each quadrant were written
        t[32 * q:32 * q + 1].write(np.full((1, 3), 10 * q, np.int32))
        t[32 * q + 16:32 * q + 17].write(np.full((1, 3), 10 * q + 1, np.int32))
    mask = [16] + [255] * 31
    core.nc_stream_shuffle(t, t, mask)   # in place: row 16 of each quadrant to row 0
    assert t.data[[0, 32], 0].tolist() == [1, 11]
    want = np.zeros(64, bool)
    want[[0, 16, 32, 48]] = True
    assert (t.written.all(axis=1) == want).all()
    u = core.memory.sbuf((32, 3), "int32")
    u[1:2].write(np.ones((1, 3), np.int32))
    core.nc_stream_shuffle(u, u, [1, 255, 5] + [255] * 29)   # row 2 reads unwritten row 5
    assert u.written.all(axis=1)[:3].tolist() == [True, True, False]
    with emu_settings(uninitialized_copies="check"):
        core.nc_stream_shuffle(u, u, [1] + [255] * 31)     # reads only row 1: fine
        with pytest.raises(UninitializedReadError, match="nc_stream_shuffle src: .* at index \\(5, 0\\)"):
            core.nc_stream_shuffle(u, u, [5] + [255] * 31)


def test_shuffle_bad_source_row_writes_nothing():
    dst = np.zeros((8, 2), np.float32)
    with pytest.raises(ShapeError, match="dst partition 1 reads src partition 9 but src has 8"):
        vs.nc_stream_shuffle(dst, np.ones((8, 2), np.float32), [0, 9] + [255] * 30)
    assert (dst == 0).all()


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float8_e4m3fn", "float64", "int16", "float8_e4m3fn_x4",
                                   "float4_e2m1fn_x4"])
def test_written_is_every_flag_byte_of_the_element(dtype):
    # Tensor.written reads an element's flag bytes as one integer where it can: it must agree with a byte-by-byte
    # all() on the allocation and on strided, stepped, pattern and reinterpreting views
    rng = np.random.default_rng(1)
    core = NeuronCore()
    t = core.memory.sbuf((16, 24), dtype)
    t.base._mask[...] = rng.random(t.base._mask.shape) < 0.8
    views = [t, t[1:9, 2:20:3], t[:, ::2], t.ap([[24, 4], [2, 6]], 1)]
    if dtype == "float32":
        views += [t.view("bfloat16"), t.view("uint8")[:, 1::3]]
    for view in views:
        want = np.array([[view.mask[i, j].all() for j in range(view.shape[1])] for i in range(view.shape[0])])
        assert np.array_equal(view.written, want), view


def test_tensor_reduce_carries_per_result():
    # a result is written iff every element it reduces was (nki-library attention_tkg takes the row maximum over a
    # [128, 2] view whose second column is written for the active rows only)
    core = NeuronCore()
    data = core.memory.sbuf((4, 3, 2), "float32")
    data[:, :, 0].write(np.ones((4, 3), np.float32))
    data[0:2, :, 1].write(np.full((2, 3), 2.0, np.float32))
    data[3:4, 0:2, 1].write(np.full((1, 2), 2.0, np.float32))  # row 3: one element left unwritten
    rows = core.memory.sbuf((4, 1), "float32")
    core.tensor_reduce(rows, "maximum", data, axis=(1, 2))
    assert rows.written[:, 0].tolist() == [True, True, False, False]
    assert rows[0:2].read("use").ravel().tolist() == [2.0, 2.0]
    pairs = core.memory.sbuf((4, 3), "float32")
    core.tensor_reduce(pairs, "maximum", data, axis=2)  # per (row, column) pair
    want = np.array([[1, 1, 1], [1, 1, 1], [0, 0, 0], [1, 1, 0]], bool)
    assert (pairs.written == want).all()


def test_matmul_rows_meeting_only_zeros_excuse_unwritten_elements():
    # setting uninitialized_times_zero: a contraction row (partition) where the other operand holds written exact
    # zeros contributes +0 whatever this operand holds there (nki-library zero-pads the weights and leaves the
    # activations' padding partitions unwritten); the expected values are the sums over the written rows only
    core = NeuronCore()
    rng = np.random.default_rng(5)
    a, b = rng.integers(-4, 5, (8, 3)).astype(np.float32), rng.integers(-4, 5, (8, 6)).astype(np.float32)
    stat = core.memory.sbuf((8, 3), "float32")
    stat[0:5].write(a[0:5])  # partitions 5..7: unwritten (NaN-filled)
    mov = core.memory.sbuf((8, 6), "float32", value=np.concatenate([b[0:5], np.zeros((3, 6), np.float32)]))
    want = a[0:5].astype(np.float64).T @ b[0:5].astype(np.float64)  # small integers: exact in fp32
    dst = core.memory.psum((3, 6), "float32")
    core.nc_matmul(dst, stat, mov)
    assert dst.read("use").tolist() == want.tolist()
    assert np.isnan(stat.data[5:]).all()  # the operand itself is not rewritten
    with emu_settings(uninitialized_times_zero="unwritten"):
        dst2 = core.memory.psum((3, 6), "float32")
        core.nc_matmul(dst2, stat, mov)
        assert not dst2.written.any()  # every stationary column holds unwritten elements
    # a row that is zero in one column only does not excuse it
    mov2 = core.memory.sbuf((8, 6), "float32", value=np.concatenate([b[0:5], np.zeros((3, 6), np.float32)]))
    mov2[6:7, 2:3].write(np.ones((1, 1), np.float32))
    dst3 = core.memory.psum((3, 6), "float32")
    core.nc_matmul(dst3, stat, mov2)
    assert not dst3.written.any()
    # unwritten zeros (a fresh integer tile starts at 0) are no zeros: padding of both operands stays unwritten
    w = core.memory.sbuf((32, 2), "float8_e4m3fn_x4")
    x = core.memory.sbuf((32, 2), "float8_e4m3fn_x4")
    ones = emu.pack_x4(np.full((16, 8), 0x38, np.uint8), "float8_e4m3fn")  # e4m3fn 1.0 words [16, 2]
    w[0:16].write(ones)
    x[0:16].write(ones)
    sc = core.memory.sbuf((4, 2), "uint8", value=np.full((4, 2), 127, np.uint8))
    sx = core.memory.sbuf((4, 2), "uint8", value=np.full((4, 2), 127, np.uint8))
    p = core.memory.psum((2, 2), "float32")
    core.nc_matmul_mx(p, w, x, sc, sx)
    assert not p.written.any()


def test_matmul_mx_padding_partitions_and_their_scales_meet_zero_weights():
    # nki-library moe_tkg's down projection: quantize_mx writes the activations' first 32 partitions (and their
    # scales); the weights are zero beyond them (memset, then loaded); the matmul runs over all 128 partitions
    core = NeuronCore()
    rng = np.random.default_rng(6)
    # (I = 24 activation rows, padded to 32 for quantize_mx: rows 24..31 of its source were never written)
    act_v = rng.integers(-3, 4, (32, 8)).astype(np.float32)
    w_v = rng.integers(-3, 4, (32, 12)).astype(np.float32)
    w_v[24:] = 0.0
    act, act_s = core.memory.sbuf((128, 2), "float8_e4m3fn_x4"), core.memory.sbuf((128, 2), "uint8")
    act_src = core.memory.sbuf((32, 8), "bfloat16")
    act_src[0:24].write(act_v[0:24])
    core.quantize_mx(act[0:32], act_src, act_s[0:32])
    assert not act_s.written[3].any() and act_s.written[0:3].all()  # group 3 (rows 24..31) read NaN-filled rows
    wt = core.memory.sbuf((128, 3), "float8_e4m3fn_x4", value=np.zeros((128, 3), np.uint32))
    wt_s = core.memory.sbuf((128, 3), "uint8", value=np.zeros((128, 3), np.uint8))
    core.quantize_mx(wt[0:32], core.memory.sbuf((32, 12), "bfloat16", value=w_v), wt_s[0:32])
    dst = core.memory.psum((2, 3), "float32")
    core.nc_matmul_mx(dst, act, wt, act_s, wt_s)
    # the reference: the same instruction on the 32 written partitions only (plain arrays, no memory model)
    # padding rows 24..31 given as zero words and a finite scale (the weights there are zero)
    ref = np.zeros((2, 3), np.float32)
    a_ref, s_ref = act.data[0:32].copy(), act_s.data[0:4].copy()
    a_ref[24:], s_ref[3] = 0, 127
    emu.isa.nc_matmul_mx(ref, a_ref, wt.data[0:32], s_ref, wt_s.data[0:4],
                         stationary_fmt="float8_e4m3fn", moving_fmt="float8_e4m3fn")
    assert np.isfinite(ref).all() and ref.any()
    assert dst.read("use").tobytes() == ref.tobytes()
    with emu_settings(uninitialized_times_zero="unwritten"):
        # without the excuse, group 3's unwritten scale serves every stationary column: every result is garbage
        free = core.memory.psum((2, 3), "float32")
        core.nc_matmul_mx(free, act, wt, act_s, wt_s)
        assert not free.written.any()
        with emu_settings(uninitialized_copies="check"):  # the padding words are read first
            with pytest.raises(UninitializedReadError, match="nc_matmul_mx stationary: .* at index \\(24, 0\\)"):
                core.nc_matmul_mx(core.memory.psum((2, 3), "float32"), act, wt, act_s, wt_s)
