"""Tiles an instruction uses only in part: MX scale tiles in the hardware quadrant layout (scale group g of a Kp-row
operand at partition (g // 4) * 32 + g % 4, the other 28 of every 32 partitions unused) and sendrecv of a partly
written tile. The uninitialised-read check must cover what the instruction reads, no more and no less.
References: exact float64 sums of values chosen so every step is exact."""

import numpy as np
import pytest

import emulator as emu
import emulator.nki as nki
from emulator.errors import UninitializedReadError

nl, nisa = nki.language, nki.isa
P, M = 128, 32  # partitions, x4 columns


def quadrant_rows(groups):
    g = np.arange(groups)
    return (g // 4) * 32 + g % 4


def mx_kernel(rows_to_load):
    """nc_matmul_mx of an e4m3 x4 tile with itself, scales DMA-loaded into the given partitions of a [128, M] tile
    (as nki-library's mlp gate_up_projection_mx_shard_H loads 4 partitions per quadrant)."""
    @nki.jit
    def kernel(words, scales):
        out = nl.ndarray((M, M), nl.float32, buffer=nl.shared_hbm)
        w = nl.ndarray((P, M), nl.float8_e4m3fn_x4, buffer=nl.sbuf)
        nisa.dma_copy(dst=w, src=words)
        sc = nl.ndarray((P, M), nl.uint8, buffer=nl.sbuf)
        for dense_row, part in enumerate(rows_to_load):
            nisa.dma_copy(dst=sc[part:part + 1, :], src=scales[dense_row:dense_row + 1, :])
        ps = nl.ndarray((M, M), nl.float32, buffer=nl.psum)
        nisa.nc_matmul_mx(dst=ps, stationary=w, moving=w, stationary_scale=sc, moving_scale=sc)
        sb = nl.ndarray((M, M), nl.float32, buffer=nl.sbuf)
        nisa.tensor_copy(dst=sb, src=ps)
        nisa.dma_copy(dst=out, src=sb)
        return out
    return kernel


def test_nc_matmul_mx_reads_only_the_quadrant_scale_rows():
    words = np.full((P, M), 0x38383838, np.uint32)  # four e4m3fn 1.0 per word
    # exponents -2..2: every product and partial sum is a multiple of 2^-4 below 2^14, exact in fp32
    codes = np.random.default_rng(3).integers(125, 130, size=(16, M)).astype(np.uint8)
    out = nki.simulate(mx_kernel(quadrant_rows(16)))(words, codes)
    # out[m, n] = sum over 16 groups x 8 partitions x 4 sub-elements of 2^(s[g, m] - 127) * 2^(s[g, n] - 127)
    e = codes.astype(np.float64) - 127
    want = 32 * sum(np.exp2(e[g][:, None] + e[g][None, :]) for g in range(16))
    assert np.array_equal(out, want.astype(np.float32))
    # scale row 35 (group 11) left out: column 0's scale there is unwritten, and so are the results it scales (row
    # 0 as the stationary's scale, column 0 as the moving's): the kernel's output holds them
    missing = mx_kernel([r for r in quadrant_rows(16) if r != 35])
    with pytest.raises(UninitializedReadError, match=r"kernel output .* at index \(0, 0\)"):
        nki.simulate(missing)(words, codes)
    with emu.settings(uninitialized_copies="check"):  # the instruction itself names the scale it read
        with pytest.raises(UninitializedReadError, match=r"stationary_scale.*at index \(35, 0\)"):
            nki.simulate(missing)(words, codes)


def swap_partial(probe_unwritten: bool):
    """LNC=2: each program writes rows 0..3 of an [8, 4] tile, sends the whole tile to the other, and reads rows
    0..3 of what it received (and, if asked, row 5, which nothing wrote)."""
    @nki.jit
    def kernel(x):
        out = nl.ndarray((4, 4), x.dtype, buffer=nl.shared_hbm)
        me = nl.program_id(0)
        t = nl.ndarray((8, 4), x.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t[0:4, :], src=x[me * 4:me * 4 + 4, :])
        got = nl.ndarray((8, 4), x.dtype, buffer=nl.sbuf)
        nisa.sendrecv(src=t, dst=got, send_to_rank=1 - me, recv_from_rank=1 - me, pipe_id=0)
        rows = nl.ndarray((4, 4), x.dtype, buffer=nl.sbuf)
        nisa.tensor_copy(dst=rows, src=got[0:4, :])
        if me == 0:
            nisa.dma_copy(dst=out, src=rows)
        if probe_unwritten:  # max8 reads its whole row
            probe = nl.ndarray((1, 8), x.dtype, buffer=nl.sbuf)
            nisa.max8(dst=probe, src=got[5:6, :].ap([[4, 1], [0, 2], [1, 4]], 0))
        return out
    return kernel


def test_sendrecv_moves_unwritten_rows_as_unwritten():
    x = np.arange(32, dtype=np.float32).reshape(8, 4)
    out = nki.simulate(swap_partial(False))[2](x)
    assert np.array_equal(out, x[4:8])  # program 0 received program 1's rows
    # row 5 of got, read twice over (max8 wants 8 elements per partition): unwritten from its first element
    with pytest.raises(UninitializedReadError, match=r"max8 src: reads SBUF tensor .*\(1, 2, 4\) at index \(0, 0, 0\)"):
        nki.simulate(swap_partial(True))[2](x)


def copy_then_use(rows_used: int):
    """qkv_cte's NO_NORM path: a [128, 8] PSUM tile of which 96 rows were written is copied whole to SBUF ("some
    garbage, masked later"); then rows 0..rows_used-1 are used."""
    @nki.jit
    def kernel(x):
        out = nl.ndarray((rows_used, 8), nl.float32, buffer=nl.shared_hbm)
        s = nl.ndarray((96, 8), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=s, src=x)
        p = nl.ndarray((128, 8), nl.float32, buffer=nl.psum)
        nisa.tensor_copy(dst=p[0:96, :], src=s)
        whole = nl.ndarray((128, 8), nl.bfloat16, buffer=nl.sbuf)
        nisa.tensor_copy(dst=whole, src=p)
        used = nl.ndarray((rows_used, 8), nl.float32, buffer=nl.sbuf)
        nisa.tensor_scalar(dst=used, data=whole[0:rows_used, :], op0=nl.add, operand0=1.0)
        nisa.dma_copy(dst=out, src=used)
        return out
    return kernel


def test_tensor_copy_carries_unwritten_rows_and_the_use_is_checked():
    import emulator as emu

    x = (np.arange(96 * 8) % 200).astype(np.float32).reshape(96, 8)  # integers below 256: exact in bf16
    out = nki.simulate(copy_then_use(96))(x)
    assert np.array_equal(out, x + 1)
    # tensor_scalar and the DMA move rows 96..99 as unwritten: the output leaving the device is the use
    with pytest.raises(UninitializedReadError, match=r"kernel output \(.*by dma_copy.*HBM tensor.*at index \(96, 0\)"):
        nki.simulate(copy_then_use(100))(x)
    with emu.settings(uninitialized_copies="check"):
        with pytest.raises(UninitializedReadError, match=r"tensor_copy src.*at index \(96, 0\)"):
            nki.simulate(copy_then_use(96))(x)


def add_partial(rows_used: int):
    """mlp_tkg's LNC reduction: out_sb (rows 0..47 written) += the other program's out_sb, whole tile; then rows
    0..rows_used-1 go to HBM."""
    @nki.jit
    def kernel(x):
        out = nl.ndarray((rows_used, 4), nl.float32, buffer=nl.shared_hbm)
        t = nl.ndarray((128, 4), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=t[0:48, :], src=x)
        nisa.tensor_tensor(dst=t, data1=t, data2=t, op=nl.add)
        nisa.dma_copy(dst=out, src=t[0:rows_used, :])
        return out
    return kernel


def test_tensor_tensor_carries_unwritten_elements_in_place():
    x = np.arange(48 * 4, dtype=np.float32).reshape(48, 4)
    assert np.array_equal(nki.simulate(add_partial(48))(x), x + x)
    with pytest.raises(UninitializedReadError, match=r"kernel output \(.*by dma_copy.*at index \(48, 0\)"):
        nki.simulate(add_partial(49))(x)


def half_then_fill(operand_rows: int):
    """attention_tkg's RoPE helper: rows 0..3 of an [8, 4] tile are written, an element-wise tensor_scalar runs over
    the whole tile (x + 1 on every row), then rows 4..7 are filled from rows 0..3 and the whole tile is used. The
    per-partition operand is an [8, 1] tile of which ``operand_rows`` rows were written."""
    @nki.jit
    def kernel(x):
        out = nl.ndarray((8, 4), nl.float32, buffer=nl.shared_hbm)
        t = nl.ndarray((8, 4), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=t[0:4, :], src=x)
        one = nl.ndarray((8, 1), nl.float32, buffer=nl.sbuf)
        nisa.memset(dst=one[0:operand_rows, :], value=1.0)
        nisa.tensor_scalar(dst=t, data=t, op0=nl.add, operand0=one)
        nisa.tensor_copy(dst=t[4:8, :], src=t[0:4, :])
        nisa.tensor_scalar(dst=t, data=t, op0=nl.multiply, operand0=2.0)
        nisa.dma_copy(dst=out, src=t)
        return out
    return kernel


def test_tensor_scalar_carries_unwritten_data_and_operand_rows():
    import emulator as emu

    x = np.arange(16, dtype=np.float32).reshape(4, 4)
    want = np.concatenate([(x + 1) * 2, (x + 1) * 2])  # small integers: exact in fp32
    assert np.array_equal(nki.simulate(half_then_fill(8))(x), want)
    # operand rows 5..7 unwritten: only result rows 5..7 are, and the kernel overwrites them from rows 1..3
    assert np.array_equal(nki.simulate(half_then_fill(5))(x), want)
    # operand row 3 unwritten: result row 3 is, it is copied to row 7, and the output is checked as it leaves
    with pytest.raises(UninitializedReadError):
        nki.simulate(half_then_fill(3))(x)
    with emu.settings(uninitialized_copies="check"):
        with pytest.raises(UninitializedReadError, match=r"tensor_scalar data.*at index \(4, 0\)"):
            nki.simulate(half_then_fill(8))(x)


def store_then_patch(patch: bool):
    """mlp_proj_mxfp4's pattern: a [8, 4] SBUF tile of which rows 0..5 were written is DMA'd whole to the output,
    then rows 6..7 of the output are written from elsewhere before the kernel returns (or, if not ``patch``, not)."""
    @nki.jit
    def kernel(x, y):
        out = nl.ndarray((8, 4), nl.float32, buffer=nl.shared_hbm, name="out")
        t = nl.ndarray((8, 4), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=t[0:6, :], src=x)
        nisa.dma_copy(dst=out, src=t)
        if patch:
            nisa.dma_copy(dst=out[6:8, :], src=y)
        return out
    return kernel


def test_dma_carries_unwritten_bytes_and_the_output_is_checked_when_it_leaves():
    import emulator as emu

    x = np.arange(24, dtype=np.float32).reshape(6, 4)
    y = -np.arange(8, dtype=np.float32).reshape(2, 4)
    assert np.array_equal(nki.simulate(store_then_patch(True))(x, y), np.concatenate([x, y]))
    with pytest.raises(UninitializedReadError, match=r"kernel output \(.*by dma_copy.*'out'.*at index \(6, 0\)"):
        nki.simulate(store_then_patch(False))(x, y)
    with emu.settings(uninitialized_copies="check"):
        with pytest.raises(UninitializedReadError, match=r"dma_copy src.*at index \(6, 0\)"):
            nki.simulate(store_then_patch(True))(x, y)


def running_max_update(reduce: bool, store_rows: int):
    """attention_tkg's flash-attention update (nki-library _fa_update_correction_factor): of [8, 2] running-max
    tiles only rows 0..3 are written, an activation exp(scale * prev + bias) with a [8, 1] bias column runs over
    all 8 rows, and only rows 0..``store_rows`` of the result are used. ``reduce``: the activation also sums each
    row into reduce_res, which makes its operands plain reads."""
    @nki.jit
    def kernel(prev_in, cur_in):
        out = nl.ndarray((store_rows, 2), nl.float32, buffer=nl.shared_hbm)
        prev = nl.ndarray((8, 2), nl.float32, buffer=nl.sbuf)
        cur = nl.ndarray((8, 2), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=prev[0:4, :], src=prev_in)
        nisa.dma_copy(dst=cur[0:4, :], src=cur_in)
        fac = nl.ndarray((8, 2), nl.float32, buffer=nl.sbuf)
        extra = {"reduce_op": nl.add, "reduce_res": nl.ndarray((8, 1), nl.float32, buffer=nl.sbuf)} if reduce else {}
        for i in range(2):
            nisa.activation(fac[:, i:i + 1], nl.exp, cur[:, i:i + 1], bias=prev[:, i:i + 1], scale=-1.0, **extra)
        nisa.dma_copy(dst=out, src=fac[0:store_rows, :])
        return out
    return kernel


def test_activation_carries_unwritten_rows_of_data_and_bias():
    prev = np.array([[1.0, 2.0], [0.0, 3.0], [4.0, 4.0], [2.0, 0.5]], np.float32)
    cur = np.array([[2.0, 2.0], [1.0, 3.0], [4.0, 5.0], [2.0, 1.5]], np.float32)
    want = np.exp(prev.astype(np.float64) - cur).astype(np.float32)  # exact exp rounded once (the default)
    assert np.array_equal(nki.simulate(running_max_update(False, 4))(prev, cur), want)
    # the rows the kernel never wrote reach its output: checked when the output leaves the device
    with pytest.raises(UninitializedReadError):
        nki.simulate(running_max_update(False, 6))(prev, cur)
    # with a row reduction the operands are reads: the unwritten row 4 of data is a use
    with pytest.raises(UninitializedReadError, match=r"activation data.*at index \(4,? 0?\)?"):
        nki.simulate(running_max_update(True, 4))(prev, cur)


@pytest.mark.parametrize("instr", ["reciprocal", "scalar_tensor_tensor"])
def test_reciprocal_and_scalar_tensor_tensor_carry_unwritten_rows(instr):
    """Rows 0..3 of [8, 2] tiles written, the instruction over all 8 rows, rows 0..``rows`` stored."""
    def kernel_for(rows):
        @nki.jit
        def kernel(x):
            out = nl.ndarray((rows, 2), nl.float32, buffer=nl.shared_hbm)
            t = nl.ndarray((8, 2), nl.float32, buffer=nl.sbuf)
            nisa.dma_copy(dst=t[0:4, :], src=x)
            col = nl.ndarray((8, 1), nl.float32, buffer=nl.sbuf)
            nisa.memset(dst=col[0:4, :], value=3.0)
            r = nl.ndarray((8, 2), nl.float32, buffer=nl.sbuf)
            if instr == "reciprocal":
                nisa.reciprocal(dst=r, data=t)
            else:  # (t * col) + t
                nisa.scalar_tensor_tensor(dst=r, data=t, op0=nl.multiply, operand0=col, op1=nl.add, operand1=t)
            nisa.dma_copy(dst=out, src=r[0:rows, :])
            return out
        return kernel

    x = np.array([[1.0, 2.0], [4.0, 0.5], [8.0, 0.25], [2.0, 16.0]], np.float32)  # powers of two: exact results
    want = 1 / x if instr == "reciprocal" else x * 3 + x
    assert np.array_equal(nki.simulate(kernel_for(4))(x), want)
    with pytest.raises(UninitializedReadError):
        nki.simulate(kernel_for(5))(x)
