"""Kernels written the way the SDK examples and nki-library write them run unmodified; references are NumPy
float64 / ml_dtypes (independent of the emulator)."""

import ml_dtypes
import numpy as np
import pytest

import emulator as emu
import emulator.nki as front
from emulator.errors import CapacityError, ShapeError, UninitializedReadError

nki = front
nl = front.language
nisa = front.isa


@nki.jit
def nki_tensor_add(a_input, b_input):  # the SDK tensor_addition tutorial kernel, unchanged apart from spacing
    c_output = nl.ndarray(a_input.shape, dtype=a_input.dtype, buffer=nl.shared_hbm)
    M, N = a_input.shape
    TILE_M, TILE_N = 128, 512
    for m in nl.affine_range(M // TILE_M):
        for n in nl.affine_range(N // TILE_N):
            a_tile = nl.ndarray(shape=(TILE_M, TILE_N), dtype=a_input.dtype, buffer=nl.sbuf)
            b_tile = nl.ndarray(shape=(TILE_M, TILE_N), dtype=b_input.dtype, buffer=nl.sbuf)
            nisa.dma_copy(dst=a_tile, src=a_input[m * TILE_M:(m + 1) * TILE_M, n * TILE_N:(n + 1) * TILE_N])
            nisa.dma_copy(dst=b_tile, src=b_input[m * TILE_M:(m + 1) * TILE_M, n * TILE_N:(n + 1) * TILE_N])
            c_tile = nl.ndarray(shape=(TILE_M, TILE_N), dtype=a_input.dtype, buffer=nl.sbuf)
            nisa.tensor_tensor(dst=c_tile, data1=a_tile, data2=b_tile, op=nl.add)
            nisa.dma_copy(dst=c_output[m * TILE_M:(m + 1) * TILE_M, n * TILE_N:(n + 1) * TILE_N], src=c_tile)
    return c_output


def test_tensor_add_bf16_matches_one_rounding():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((256, 1024)).astype(ml_dtypes.bfloat16)
    b = rng.standard_normal((256, 1024)).astype(ml_dtypes.bfloat16)
    out = nki.simulate(nki_tensor_add)(a, b)
    want = (a.astype(np.float64) + b.astype(np.float64)).astype(np.float32).astype(ml_dtypes.bfloat16)
    assert out.dtype == ml_dtypes.bfloat16 and out.tobytes() == want.tobytes()
    rep = nki.last_report()
    assert rep.instructions == {"dma_copy": 12, "tensor_tensor": 4}
    # three tiles per iteration, plus the previous a_tile that is still bound while its successor is allocated;
    # without freeing on the last reference this would be 16 tiles
    assert rep.peak_sbuf == 4 * 512 * 2


@nki.jit
def matmul_tiled(lhsT, rhs):  # the SDK matmul tutorial's shape: K-tiled accumulation into one PSUM tile
    K, M = lhsT.shape
    _, N = rhs.shape
    result = nl.ndarray((M, N), dtype=nl.float32, buffer=nl.shared_hbm)
    TK, TM, TN = nl.tile_size.pmax, nl.tile_size.gemm_stationary_fmax, nl.tile_size.gemm_moving_fmax
    for m in nl.affine_range(M // TM):
        for n in nl.affine_range(N // TN):
            res_psum = nl.ndarray((TM, TN), nl.float32, buffer=nl.psum)
            for k in nl.affine_range(K // TK):
                lt = nl.ndarray((TK, TM), dtype=lhsT.dtype, buffer=nl.sbuf)
                rt = nl.ndarray((TK, TN), dtype=rhs.dtype, buffer=nl.sbuf)
                nisa.dma_copy(dst=lt, src=lhsT[k * TK:(k + 1) * TK, m * TM:(m + 1) * TM])
                nisa.dma_copy(dst=rt, src=rhs[k * TK:(k + 1) * TK, n * TN:(n + 1) * TN])
                nisa.nc_matmul(dst=res_psum, stationary=lt, moving=rt)
            res_sb = nl.ndarray(res_psum.shape, dtype=result.dtype, buffer=nl.sbuf)
            nisa.tensor_copy(dst=res_sb, src=res_psum)
            nisa.dma_copy(dst=result[m * TM:(m + 1) * TM, n * TN:(n + 1) * TN], src=res_sb)
    return result


def test_matmul_accumulates_over_k_in_partition_order():
    rng = np.random.default_rng(2)
    lhsT = rng.integers(-8, 8, (256, 128)).astype(ml_dtypes.bfloat16)  # small ints: the fp32 sums are exact
    rhs = rng.integers(-8, 8, (256, 512)).astype(ml_dtypes.bfloat16)
    out = matmul_tiled(lhsT, rhs)
    want = lhsT.astype(np.float64).T @ rhs.astype(np.float64)
    assert np.array_equal(out, want.astype(np.float32))
    rep = nki.last_report()
    assert rep.instructions["nc_matmul"] == 2 and rep.engines == {"dma": 5, "tensor": 2, "vector": 1}
    # bytes moved: two k-steps of a [128, 128] and a [128, 512] bf16 load, one [128, 512] fp32 store
    assert sum(rep.dma_bytes.values()) == 2 * (128 * 128 + 128 * 512) * 2 + 128 * 512 * 4
    assert rep.peak_psum == 512 * 4 and rep.estimated_us > 0 and rep.settings["rounding"] == "rne"


def test_report_shows_the_settings_in_force():
    import emulator as emu

    a = np.zeros((128, 512), np.float32)
    with emu.settings(rounding="rtz", saturate=True):
        nki_tensor_add(a, a)
    rep = nki.last_report()
    assert rep.settings["rounding"] == "rtz" and rep.settings["saturate"] is True
    assert "rounding='rtz'" in str(rep) and "estimated time" in str(rep)


def test_lnc2_shared_output_sendrecv_and_barrier():
    @nki.jit
    def swap(x):
        out = nl.ndarray((2, 128, 4), nl.float32, buffer=nl.shared_hbm)
        me = nl.program_id(0)
        mine = nl.ndarray((128, 4), nl.float32, buffer=nl.sbuf)
        got = nl.ndarray((128, 4), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=mine, src=x[me])
        nisa.sendrecv(src=mine, dst=got, send_to_rank=1 - me, recv_from_rank=1 - me, pipe_id=0)
        nisa.dma_copy(dst=out[me], src=got)
        nisa.core_barrier(data=out, cores=(0, 1))
        assert nl.num_programs() == 2 and nl.program_ndim() == 1
        return out

    x = np.stack([np.full((128, 4), 1.0, np.float32), np.full((128, 4), 2.0, np.float32)])
    out = swap[2](x)
    assert out[0, 0, 0] == 2.0 and out[1, 0, 0] == 1.0


def test_lnc2_missing_peer_is_named():
    @nki.jit
    def lonely(x):
        t = nl.ndarray((1, 1), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=x)
        if nl.program_id(0) == 0:
            nisa.core_barrier(data=x, cores=(0, 1))
        return x

    from emulator import settings
    from emulator.errors import RankFailure

    with settings(collective_timeout=0.3):
        with pytest.raises(RankFailure, match="core 1 did not arrive"):
            lonely[2](np.ones((1, 1), np.float32))


def test_legacy_neuronxcc_style_kernel_with_grid():
    front.install()
    try:
        import neuronxcc.nki as lnki
        import neuronxcc.nki.language as lnl

        @lnki.jit
        def add_kernel(a, b, c):  # the SPMD tensor-add tutorial's form: arange indices, load/store, program_id
            offset = lnl.program_id(0) * 128
            ix = lnl.arange(128)[:, None]
            iy = lnl.arange(512)[None, :]
            at = lnl.load(a[offset + ix, iy])
            bt = lnl.load(b[offset + ix, iy])
            lnl.store(c[offset + ix, iy], value=lnl.add(at, bt))

        a = np.arange(256 * 512, dtype=np.float32).reshape(256, 512)
        c = np.zeros_like(a)
        lnki.simulate_kernel(add_kernel[2], a, a, c)
        assert np.array_equal(c, 2 * a)  # inputs written by the kernel come back, as in NKI's simulator
        c[...] = 0
        add_kernel[lnl.spmd_dim(lnl.nc(2), 1)](a, a, c)
        assert np.array_equal(c, 2 * a)
    finally:
        front.uninstall()


def test_legacy_tile_returning_isa_calls():
    front.install()
    try:
        import neuronxcc.nki as lnki
        import neuronxcc.nki.isa as lisa
        import neuronxcc.nki.language as lnl

        @lnki.jit(mode="simulation")
        def kernel(a_tensor, b_tensor):  # the SDK's nki/test doc-test form
            c_tensor = lnl.ndarray(a_tensor.shape, dtype=a_tensor.dtype, buffer=lnl.shared_hbm)
            a = lnl.load(a_tensor)
            b = lnl.load(b_tensor)
            c = lisa.tensor_tensor(a, b, op=lnl.add)
            t = lisa.nc_transpose(c)  # PSUM; nl.store stages it through SBUF
            lnl.store(c_tensor, lisa.nc_transpose(lisa.tensor_copy(t)))
            return c_tensor

        a = np.random.default_rng(3).random((64, 32), np.float32)
        assert np.array_equal(kernel(a, a), a + a)
        assert lisa.tensor_tensor is not front.isa.tensor_tensor and lnki.isa is lisa
    finally:
        front.uninstall()


def test_nl_functions_compute_through_instructions():
    x = nl.ndarray((4, 6), nl.float32)
    vals = np.linspace(-2, 2, 24, dtype=np.float32).reshape(4, 6)
    x.write(vals)
    assert np.array_equal(np.asarray(nl.add(x, 1.0)), vals + np.float32(1))
    assert np.array_equal(np.asarray(nl.maximum(x, x)), vals)
    assert np.array_equal(np.asarray(nl.sum(x, axis=1)), vals.sum(axis=1, dtype=np.float64).astype(np.float32)
                          .reshape(4, 1)) or np.allclose(np.asarray(nl.sum(x, axis=1)).ravel(), vals.sum(axis=1))
    assert np.asarray(nl.exp(x)).dtype == np.float32
    from emulator.engines import ops

    assert ops.resolve(nl.add).name == "add" and ops.resolve(nl.maximum).name == "maximum"


def test_views_ap_reshape_and_view_dtype():
    t = nl.ndarray((4, 8), nl.float32)
    t.write(np.arange(32, dtype=np.float32).reshape(4, 8))
    assert np.asarray(t.ap([[8, 2], [2, 3]], offset=1)).tolist() == [[1, 3, 5], [9, 11, 13]]
    assert np.asarray(t[1:3].reshape((2, 2, 4)))[1, 1].tolist() == [20, 21, 22, 23]
    u = t.view(nl.uint8)
    assert u.shape == (4, 32) and np.asarray(u)[0, 4:8].tolist() == list(np.float32(1).tobytes())
    assert np.asarray(t[nl.ds(2, 1), nl.ds(3, 2)]).tolist() == [[19, 20]]


def test_base_tensor_is_the_whole_tensor_a_view_shares():
    # nki-library's moe_tkg MX path: `weight.base_tensor` on a kernel argument, then views of it
    t = nl.ndarray((4, 6, 2), nl.bfloat16, buffer=nl.shared_hbm)
    v = t[1:3, 2]
    assert v.shape == (2, 2)
    for whole in (t.base_tensor, v.base_tensor, v.base_tensor.base_tensor):
        assert whole.shape == (4, 6, 2) and whole.dtype == t.dtype and whole.buffer == t.buffer
        assert whole.name == t.name
    vals = np.arange(48, dtype=np.float32).reshape(4, 6, 2).astype(ml_dtypes.bfloat16)
    v.base_tensor.write(vals)  # writes through the same storage: the view sees them
    assert np.asarray(v).astype(np.float32).tolist() == vals[1:3, 2].astype(np.float32).tolist()


def test_on_chip_views_stay_at_least_2d_and_hbm_views_drop_integer_dims():
    # NKI's NkiTensor.__getitem__: on chip an integer on dim 0 keeps a size-1 partition dim and the result is at
    # least 2D; in HBM an integer removes its dim (nki-library attention_cte indexes t[:n, g] and then [:n, :1])
    t = nl.ndarray((8, 5), nl.float32, buffer=nl.sbuf)
    t.write(np.arange(40, dtype=np.float32).reshape(8, 5))
    col = t[:6, 3]
    assert col.shape == (6, 1) and np.asarray(col[:4, :1]).ravel().tolist() == [3.0, 8.0, 13.0, 18.0]
    assert t[2].shape == (1, 5) and t[2, 4].shape == (1, 1)
    h = nl.ndarray((8, 5), nl.float32, buffer=nl.shared_hbm)
    assert h[:, 3].shape == (8,) and h[2].shape == (5,)


# ---- errors a person can act on -----------------------------------------------------------------------------------

def test_partition_dim_over_128():
    with pytest.raises(ShapeError, match="129 partitions"):
        nl.ndarray((129, 4), nl.float32)


def test_psum_capacity():
    import emulator as emu

    with emu.settings(onchip_lifetime="reference"):  # space freed with the last Python reference only
        live = [nl.ndarray((128, 512), nl.float32, buffer=nl.psum) for _ in range(8)]
        with pytest.raises(CapacityError, match="PSUM"):
            nl.ndarray((128, 512), nl.float32, buffer=nl.psum)
        del live
    # by last use (the default): nine tiles all used again after the ninth is written do not fit
    tiles = [nl.ndarray((128, 512), nl.float32, buffer=nl.psum) for _ in range(9)]
    for t in tiles:
        nisa.memset(dst=t, value=1.0)
    with pytest.raises(CapacityError, match="PSUM tile .* used again"):
        for t in tiles:
            nisa.tensor_scalar(dst=t, data=t, op0=nl.multiply, operand0=2.0)


def test_uninitialised_read_names_tensor_instruction_and_kernel_line():
    @nki.jit
    def bad(a):
        t = nl.ndarray((128, 8), nl.float32, buffer=nl.sbuf, name="never_written")
        o = nl.ndarray((128, 8), nl.float32, buffer=nl.sbuf)
        nisa.max8(dst=o, src=t)  # a use (element-wise ops and reductions would carry the flags)
        return a

    with pytest.raises(UninitializedReadError) as info:
        bad(np.zeros((1, 1), np.float32))
    msg = str(info.value)
    assert "never_written" in msg and "max8" in msg and "test_kernels.py" in msg


@pytest.mark.parametrize("case", ["gpsimd_psum", "dma_psum", "matmul_to_sbuf", "hbm_operand"])
def test_engine_buffer_rules(case):
    sb = nl.ndarray((4, 4), nl.float32)
    sb.write(np.ones((4, 4), np.float32))
    ps = nl.ndarray((4, 4), nl.float32, buffer=nl.psum)
    hb = nl.ndarray((4, 4), nl.float32, buffer=nl.hbm)
    from emulator.engines.core import ConnectivityError

    with pytest.raises(ConnectivityError, match="engine cannot"):
        if case == "gpsimd_psum":
            nisa.tensor_copy(dst=ps, src=sb, engine=nisa.engine.gpsimd)
        elif case == "dma_psum":
            nisa.dma_copy(dst=ps, src=sb)
        elif case == "matmul_to_sbuf":
            nisa.nc_matmul(dst=sb, stationary=sb, moving=sb)
        else:
            nisa.tensor_tensor(dst=sb, data1=hb, data2=sb, op=nl.add)


def test_isa_signatures_follow_nki():
    import inspect

    assert list(inspect.signature(nisa.activation).parameters) == [
        "dst", "op", "data", "bias", "scale", "reduce_op", "reduce_res", "reduce_cmd", "name"]
    assert inspect.signature(nisa.tensor_copy).parameters["engine"].default is nisa.engine.unknown
    with pytest.raises(TypeError, match="tensor_tensor.*missing 2 required positional arguments: 'data2' and 'op'"):
        nisa.tensor_tensor(dst=None, data1=None)


def test_platform_target_override(monkeypatch):
    monkeypatch.setenv("NEURON_PLATFORM_TARGET_OVERRIDE", "trn2")
    from emulator.errors import SettingsError

    with pytest.raises(SettingsError, match="trn3"):
        nki_tensor_add(np.zeros((128, 512), np.float32), np.zeros((128, 512), np.float32))


def test_collectives_inside_a_launch_match_the_engine():
    import emulator as emu

    ncc = front.collectives

    @nki.jit
    def allreduce(x):
        out = nl.ndarray((4, 64), nl.bfloat16, buffer=nl.shared_hbm)
        r = ncc.rank_id()
        src = nl.ndarray((1, 64), nl.bfloat16, buffer=nl.private_hbm)
        nisa.dma_copy(dst=src, src=x[r:r + 1])
        ncc.all_reduce(srcs=[src], dsts=[out[r:r + 1]], replica_group=ncc.ReplicaGroup([[0, 1, 2, 3]]), op=nl.add)
        return out

    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 64)).astype(ml_dtypes.bfloat16)
    out = allreduce[4](x)
    want = emu.collectives.all_reduce([x[r:r + 1] for r in range(4)])[0]
    assert all(out[r:r + 1].tobytes() == want.tobytes() for r in range(4))


def test_on_device_quantize_mx_then_matmul_mx_is_exact_on_stabilised_data():
    # every 8x4 group holds a 3.0 (amax 3 -> scale 2^-6 under the hw convention), the rest from {+-1, +-1.5, +-2}:
    # each value / scale is an e4m3fn value, so quantise -> matmul is exact and the fp32 PSUM sum is exact
    rng = np.random.default_rng(7)
    P, M, N = 128, 32, 64

    def stabilised(cols):
        x = rng.choice(np.array([-2, -1.5, -1, 1, 1.5, 2], np.float32), size=(P, cols))
        x[::8, ::4] = 3.0
        return x.astype(ml_dtypes.bfloat16)

    st, mv = stabilised(4 * M), stabilised(4 * N)

    @nki.jit
    def qmm(st_hbm, mv_hbm):
        out = nl.ndarray((M, N), nl.float32, buffer=nl.shared_hbm)
        tiles = []
        for src in (st_hbm, mv_hbm):
            raw = nl.ndarray(src.shape, nl.bfloat16, buffer=nl.sbuf)
            nisa.dma_copy(dst=raw, src=src)
            q = nl.ndarray((P, src.shape[1] // 4), nl.float8_e4m3fn_x4, buffer=nl.sbuf)
            scale = nl.ndarray((P, src.shape[1] // 4), nl.uint8, buffer=nl.sbuf)
            nisa.memset(dst=scale, value=0)
            nisa.quantize_mx(dst=q, src=raw, dst_scale=scale)
            tiles.append((q, scale))
        ps = nl.ndarray((M, N), nl.float32, buffer=nl.psum)
        nisa.nc_matmul_mx(dst=ps, stationary=tiles[0][0], moving=tiles[1][0], stationary_scale=tiles[0][1],
                          moving_scale=tiles[1][1])
        sb = nl.ndarray((M, N), nl.float32, buffer=nl.sbuf)
        nisa.tensor_copy(dst=sb, src=ps)
        nisa.dma_copy(dst=out, src=sb)
        return out

    out = qmm(st, mv)
    s64 = st.astype(np.float64).reshape(P, M, 4)
    m64 = mv.astype(np.float64).reshape(P, N, 4)
    want = np.einsum("pmq,pnq->mn", s64, m64)
    assert np.array_equal(out, want.astype(np.float32))
    assert nki.last_report().engines["tensor"] == 1


def test_sbuf_capacity_names_the_tensor_and_the_limit():
    with pytest.raises(CapacityError, match="SBUF.*'big'.*245752"):
        nl.ndarray((128, 64 * 1024), nl.float32, name="big")


def test_matmul_dtype_mix_is_refused_with_the_kernel_line():
    from emulator.errors import DtypeError

    @nki.jit
    def mixed(a):
        st = nl.ndarray((8, 8), nl.float32)
        mv = nl.ndarray((8, 8), nl.bfloat16)
        nisa.memset(dst=st, value=1.0)
        nisa.memset(dst=mv, value=1.0)
        ps = nl.ndarray((8, 8), nl.float32, buffer=nl.psum)
        nisa.nc_matmul(dst=ps, stationary=st, moving=mv)
        return a

    with pytest.raises(DtypeError, match=r"(?s)float32.*bfloat16.*test_kernels.py:\d+ \(in mixed\)"):
        mixed(np.zeros((1, 1), np.float32))


def test_psum_tiles_may_span_up_to_the_eight_banks():
    ps = nl.ndarray((128, 4096), nl.float32, buffer=nl.psum)  # v4: a matmul output may span all 8 banks
    assert ps.shape == (128, 4096)
    with pytest.raises(CapacityError, match="PSUM"):
        nl.ndarray((128, 4097), nl.float32, buffer=nl.psum)


def test_one_program_launches_inside_run_spmd_meet_in_collectives():
    ncc = front.collectives

    @nki.jit
    def per_rank(x):
        out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
        ncc.all_reduce(srcs=[x], dsts=[out], replica_group=ncc.ReplicaGroup([[0, 1, 2]]), op=nl.add)
        return out

    results = [None] * 3

    def rank_body():
        r = ncc.rank_id()
        results[r] = per_rank(np.full((2, 4), float(r + 1), np.float32))

    ncc.run_spmd(rank_body, 3)
    assert all(res.tolist() == [[6.0] * 4] * 2 for res in results)


def test_dma_gather_with_vector_offset_rows():
    @nki.jit
    def gather(table, idx):
        rows = nl.ndarray((4, 1), nl.int32, buffer=nl.sbuf)
        nisa.dma_copy(dst=rows, src=idx)
        got = nl.ndarray((4, 8), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=got, src=table.ap([[8, 4], [1, 8]], vector_offset=rows))
        out = nl.ndarray((4, 8), nl.float32, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=out, src=got)
        return out

    table = np.arange(16 * 8, dtype=np.float32).reshape(16, 8)
    idx = np.array([[5], [0], [15], [5]], np.int32)
    assert np.array_equal(gather(table, idx), table[idx[:, 0]])


def test_returning_an_sbuf_tile_is_an_error():
    @nki.jit
    def leaky(a):
        t = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=a)
        return t

    with pytest.raises(ShapeError, match="returned SBUF tensor.*shared_hbm"):
        leaky(np.zeros((2, 2), np.float32))


def test_fori_loop_and_while_loop_with_registers():
    @nki.jit
    def count(data, n):
        acc = nl.zeros((1, 1), nl.float32, buffer=nl.sbuf)
        val = nl.ndarray((1, 1), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=val, src=data)
        n_sb = nl.ndarray((1, 1), nl.int32, buffer=nl.sbuf)
        nisa.dma_copy(dst=n_sb, src=n)
        reg = nisa.register_alloc()
        nisa.register_load(reg, n_sb)
        nl.fori_loop(0, reg, lambda i: nisa.tensor_tensor(dst=acc, data1=acc, data2=val, op=nl.add))
        one = nl.full((1, 1), 1, nl.int32)

        def body(r):  # counts n_sb down to 0, adding val each time
            nisa.tensor_tensor(dst=acc, data1=acc, data2=val, op=nl.add)
            nisa.tensor_tensor(dst=n_sb, data1=n_sb, data2=one, op=nl.subtract)
            nisa.register_load(r, n_sb)
            return r

        nl.while_loop(reg, body)
        out = nl.ndarray((1, 1), nl.float32, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=out, src=acc)
        return out

    got = count(np.full((1, 1), 2.5, np.float32), np.full((1, 1), 3, np.int32))
    assert got[0, 0] == 2.5 * 6


def test_output_elements_never_written_come_back_per_setting():
    # NKI leaves a new HBM tensor's contents undefined; the emulator fills floats with NaN (ints with 0), or with
    # output_unwritten='zero' gives zero bits: nki-library's all-expert MX moe_tkg scatters only routed rows
    @nki.jit
    def half(a):
        out = nl.ndarray((4, 3), a.dtype, buffer=nl.shared_hbm)
        idx = nl.ndarray((4, 3), nl.int32, buffer=nl.shared_hbm)
        t = nl.ndarray((2, 3), a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=a[0:2, :])
        nisa.dma_copy(dst=out[1:3, :], src=t)
        n = nl.full((1, 3), 7, nl.int32)
        nisa.dma_copy(dst=idx[3:4, :], src=n)
        return out, idx

    a = np.arange(12, dtype=np.float32).reshape(4, 3) - 2.5
    out, idx = half(a)
    assert np.isnan(out[[0, 3]]).all() and (out[1:3] == a[0:2]).all()
    assert (idx[:3] == 0).all() and (idx[3] == 7).all()
    with emu.settings(output_unwritten="zero"):
        out, idx = half(a)
    assert (out[[0, 3]].view(np.uint32) == 0).all() and (out[1:3] == a[0:2]).all()
    assert (idx[:3] == 0).all() and (idx[3] == 7).all()
    b = a.astype(ml_dtypes.bfloat16)
    with emu.settings(output_unwritten="zero"):
        out, _ = half(b)
    assert out.dtype == ml_dtypes.bfloat16 and (out[[0, 3]].view(np.uint16) == 0).all()
    assert (out[1:3].astype(np.float32) == a[0:2]).all()


def test_register_alloc_takes_its_first_value_from_a_one_element_tensor():
    # nki-library's all-expert MX moe_tkg kernel: register_alloc(decision_sb[0, 0]) then `while reg:` (NKI's API
    # reference names None and an int; the tensor's value is read as register_load reads it)
    @nki.jit
    def countdown(n):
        n_sb = nl.ndarray((1, 2), nl.int32, buffer=nl.sbuf)
        nisa.dma_copy(dst=n_sb, src=n)
        acc = nl.zeros((1, 1), nl.float32, buffer=nl.sbuf)
        one = nl.full((1, 1), 1, nl.int32)
        reg = nisa.register_alloc(n_sb[0, 1])
        while reg:
            nisa.tensor_scalar(dst=acc, data=acc, op0=nl.add, operand0=1.0)
            nisa.tensor_tensor(dst=n_sb[0:1, 1:2], data1=n_sb[0:1, 1:2], data2=one, op=nl.subtract)
            nisa.register_load(reg, n_sb[0:1, 1:2])
        out = nl.ndarray((1, 1), nl.float32, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=out, src=acc)
        return out

    assert countdown(np.array([[9, 4]], np.int32))[0, 0] == 4.0
    assert countdown(np.array([[9, 0]], np.int32))[0, 0] == 0.0

    @nki.jit
    def unwritten():
        t = nl.ndarray((1, 1), nl.int32, buffer=nl.sbuf)
        nisa.register_alloc(t)
        out = nl.ndarray((1, 1), nl.float32, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=out, src=nl.zeros((1, 1), nl.float32, buffer=nl.sbuf))
        return out

    with pytest.raises(Exception, match="register_alloc"):
        unwritten()

    @nki.jit
    def two_values(n):
        t = nl.ndarray((1, 2), nl.int32, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=n)
        nisa.register_alloc(t)
        out = nl.ndarray((1, 1), nl.float32, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=out, src=nl.zeros((1, 1), nl.float32, buffer=nl.sbuf))
        return out

    with pytest.raises(ShapeError, match=r"nisa.register_alloc: x .* must hold one value"):
        two_values(np.array([[1, 2]], np.int32))


def test_a_tensor_in_an_if_is_a_handle_whatever_it_holds():
    # nki-library's moe_tkg tests an optional argument with `if expert_index:`; its values are expert ids (zeros
    # here, and never written in the tile case): the branch must be taken as when NKI traces the kernel
    seen = []

    @nki.jit
    def optional(x, idx=None):
        tile = nl.ndarray((4, 4), nl.float32, buffer=nl.sbuf)  # never written: no read may happen
        seen.extend([bool(idx), bool(tile), idx is not None and len(idx) == 2])
        out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
        t = nl.ndarray(x.shape, x.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=x)
        nisa.dma_copy(dst=out, src=t)
        return out

    optional(np.ones((2, 2), np.float32), np.zeros((2, 1), np.int32))
    assert seen == [True, True, True]
