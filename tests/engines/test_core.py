"""The NeuronCore: dispatch, engine/buffer rules, error paths, Tensor Engine and DMA instructions on memory,
statistics, pinned settings, LNC=2. References: float64 NumPy, ml_dtypes where its rounding coincides (RNE),
the formulas of the NKI docs written out here."""

from __future__ import annotations

import threading

import ml_dtypes
import numpy as np
import pytest

import emulator as emu
from emulator.config import get_settings
from emulator.engines.core import ConnectivityError, NeuronCore, lnc_group
from emulator.errors import CapacityError, DtypeError, EmulatorError, ShapeError, UninitializedReadError

BF16 = ml_dtypes.bfloat16


def _core_with(shape=(4, 8), dtype="float32", values=None, buffer="sbuf"):
    core = NeuronCore()
    alloc = getattr(core.memory, buffer)
    vals = np.arange(np.prod(shape), dtype=np.float32).reshape(shape) if values is None else values
    return core, alloc(shape, dtype, name="x", value=vals) if buffer != "psum" else alloc(shape, dtype, name="x")


# ---- engine <-> buffer connectivity (reference section 1.3) ----------------------------------------------------

def test_tensor_engine_writes_psum_only():
    core = NeuronCore()
    st = core.memory.sbuf((4, 2), "bfloat16", value=1.0)
    mv = core.memory.sbuf((4, 3), "bfloat16", value=1.0)
    out = core.memory.sbuf((2, 3), "float32", name="out")
    with pytest.raises(ConnectivityError, match=r"nc_matmul: dst is SBUF tensor 'out'.*Tensor Engine.*PSUM only"):
        core.nc_matmul(out, st, mv)


def test_tensor_engine_reads_sbuf_only():
    core = NeuronCore()
    st = core.memory.hbm((4, 2), "bfloat16", name="w", value=1.0)
    mv = core.memory.sbuf((4, 3), "bfloat16", value=1.0)
    out = core.memory.psum((2, 3), "float32")
    with pytest.raises(ConnectivityError, match=r"nc_matmul: stationary is HBM tensor 'w'.*read"):
        core.nc_matmul(out, st, mv)


def test_gpsimd_cannot_read_or_write_psum():
    core = NeuronCore()
    p = core.memory.psum((4, 8), "float32", name="acc")
    core.memset(p, 0.0)
    s = core.memory.sbuf((4, 8), "float32", name="s")
    with pytest.raises(ConnectivityError, match=r"tensor_copy: src is PSUM tensor 'acc'.*gpsimd.*no PSUM"):
        core.tensor_copy(s, p, engine="gpsimd")
    with pytest.raises(ConnectivityError, match=r"iota: dst is PSUM tensor 'acc'"):
        core.iota(p, [[1, 8]])
    core.tensor_copy(s, p, engine="vector")  # Vector may
    assert (s.read() == 0).all()


def test_dma_moves_hbm_and_sbuf_but_not_psum():
    core = NeuronCore()
    p = core.memory.psum((4, 8), "float32", name="acc")
    h = core.memory.hbm((4, 8), "float32", name="out")
    core.memset(p, 1.0)
    with pytest.raises(ConnectivityError, match=r"dma_copy: src is PSUM tensor 'acc'.*DMA.*no PSUM"):
        core.dma_copy(h, p)
    with pytest.raises(ConnectivityError, match=r"dma_copy: dst is PSUM tensor 'acc'"):
        core.dma_copy(p, h)


def test_at_most_one_psum_input():
    core = NeuronCore()
    a, b = core.memory.psum((4, 8), "float32", name="a"), core.memory.psum((4, 8), "float32", name="b")
    core.memset(a, 1.0)
    core.memset(b, 2.0)
    dst = core.memory.sbuf((4, 8), "float32")
    with pytest.raises(ConnectivityError, match="data1 and data2 are both in PSUM"):
        core.tensor_tensor(dst, a, b, "add")
    s = core.memory.sbuf((4, 8), "float32", value=3.0)
    core.tensor_tensor(dst, a, s, "add")
    assert (dst.read() == 4.0).all()


def test_engine_not_allowed_for_instruction():
    core, x = _core_with()
    with pytest.raises(EmulatorError, match="activation: engine 'vector' cannot run it; it runs on scalar"):
        core.activation(x, "exp", x, engine="vector")


def test_quantize_mx_source_must_be_sbuf():
    core = NeuronCore()
    src = core.memory.psum((32, 4), "bfloat16", name="p")
    core.memset(src, 1.0)
    dst = core.memory.sbuf((32, 1), "float8_e4m3fn_x4")
    sc = core.memory.sbuf((4, 1), "uint8")
    with pytest.raises(ConnectivityError, match=r"quantize_mx: src is PSUM tensor 'p'"):
        core.quantize_mx(dst, src, sc)


# ---- other error paths ---------------------------------------------------------------------------------------

def test_too_many_partitions():
    core = NeuronCore()
    with pytest.raises(ShapeError, match="129 partitions; the limit is 128"):
        core.memory.sbuf((129, 4), "float32", name="big")
    with pytest.raises(ShapeError, match="129 partitions"):
        emu.isa.nc_matmul(np.zeros((2, 3), np.float32), np.ones((129, 2), BF16), np.ones((129, 3), BF16))


def test_dtype_not_accepted_by_tensor_engine():
    core = NeuronCore()
    st = core.memory.sbuf((4, 2), "int32", value=1)
    mv = core.memory.sbuf((4, 3), "bfloat16", value=1.0)
    with pytest.raises(DtypeError, match="nc_matmul: stationary has dtype int32; the Tensor Engine takes"):
        core.nc_matmul(core.memory.psum((2, 3), "float32"), st, mv)


def test_x4_memset_only_to_zero():
    core = NeuronCore()
    t = core.memory.sbuf((4, 2), "float8_e4m3fn_x4", name="w4")
    with pytest.raises(EmulatorError, match="memset.*x4 types can only be memset to 0"):
        core.memset(t, 1.0)
    core.memset(t, 0)
    assert t.dtype == np.uint32 and (t.read() == 0).all()


def test_uninitialised_read_names_tensor_and_instruction():
    core = NeuronCore()
    a = core.memory.sbuf((4, 8), "float32", name="acts")
    dst = core.memory.sbuf((4, 8), "float32")
    core.memset(a[:, :4], 1.0)
    sums = core.memory.sbuf((4, 1), "float32")
    top = core.memory.sbuf((4, 8), "float32")
    # max8 reads its whole row (element-wise instructions and reductions carry unwritten elements instead)
    with pytest.raises(UninitializedReadError, match=r"max8 src: reads SBUF tensor 'acts'.*index \(0, 4\)"):
        core.max8(top, a)
    core.tensor_reduce(sums, "add", a[:, :4], axis=1)  # the written half reads fine
    assert sums.written.all()
    core.tensor_reduce(sums, "add", a, axis=1)  # every row holds unwritten elements: every sum is unwritten
    assert not sums.written.any()
    with emu.settings(uninitialized="ignore"):
        core.max8(top, a)
    with emu.settings(uninitialized_copies="check"):  # element-wise instructions read, too, under check
        with pytest.raises(UninitializedReadError, match=r"activation data: reads SBUF tensor 'acts'"):
            core.activation(dst, "exp", a)
        with pytest.raises(UninitializedReadError, match=r"tensor_reduce data: reads SBUF tensor 'acts'"):
            core.tensor_reduce(sums, "add", a, axis=1)


def test_dst_must_be_memory_tensor():
    core, x = _core_with()
    with pytest.raises(EmulatorError, match="tensor_copy: dst must be a memory tensor"):
        core.tensor_copy(np.empty((4, 8), np.float32), x)


def test_capacity_error():
    core = NeuronCore(sbuf_partition_bytes=64)
    with emu.settings(onchip_lifetime="reference"):
        core.memory.sbuf((128, 8), "float32")
        with pytest.raises(CapacityError, match="SBUF: no room for tensor 'more'"):
            core.memory.sbuf((128, 16), "float32", name="more")
    with pytest.raises(CapacityError, match="SBUF: tensor 'big' .* needs 68 bytes per partition; the limit is 64"):
        core.memory.sbuf((128, 17), "float32", name="big")


# ---- Tensor Engine on memory ----------------------------------------------------------------------------------

def test_nc_matmul_on_core_exact_and_accumulate_none():
    rng = np.random.default_rng(1)
    core = NeuronCore()
    a = rng.integers(-4, 5, (96, 64)).astype(np.float32)
    b = rng.integers(-4, 5, (96, 200)).astype(np.float32)
    st = core.memory.sbuf((96, 64), "bfloat16", value=a)
    mv = core.memory.sbuf((96, 200), "bfloat16", value=b)
    p = core.memory.psum((64, 200), "float32")
    core.nc_matmul(p, st, mv)  # accumulate=None on a fresh tile: overwrite
    ref = a.astype(np.float64).T @ b.astype(np.float64)  # small integers: exact in fp32
    np.testing.assert_array_equal(p.read(), ref)
    core.nc_matmul(p, st, mv)  # second write of the group: accumulate
    np.testing.assert_array_equal(p.read(), 2 * ref)
    core.nc_matmul(p, st, mv, accumulate=False)
    np.testing.assert_array_equal(p.read(), ref)


def test_nc_matmul_accumulate_true_on_unwritten_psum_raises():
    core = NeuronCore()
    st = core.memory.sbuf((4, 2), "bfloat16", value=1.0)
    mv = core.memory.sbuf((4, 3), "bfloat16", value=1.0)
    p = core.memory.psum((2, 3), "float32", name="acc")
    with pytest.raises(UninitializedReadError, match="'acc'"):
        core.nc_matmul(p, st, mv, accumulate=True)


def test_nc_matmul_into_psum_view():
    core = NeuronCore()
    st = core.memory.sbuf((8, 4), "float32", value=np.eye(8, 4, dtype=np.float32))
    mv = core.memory.sbuf((8, 16), "float32", value=np.arange(128, dtype=np.float32).reshape(8, 16))
    p = core.memory.psum((4, 64), "float32")
    core.nc_matmul(p[:, 16:32], st, mv)
    np.testing.assert_array_equal(p.read("t", (slice(None), slice(16, 32))), np.arange(64).reshape(4, 16))
    assert p.written[:, 16:32].all() and not p.written[:, :16].any()


def test_nc_transpose_engines():
    core = NeuronCore()
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    src = core.memory.sbuf((3, 4), "float32", value=x)
    p = core.memory.psum((4, 3), "float32")
    core.nc_transpose(p, src)  # PSUM dst: Tensor Engine
    np.testing.assert_array_equal(p.read(), x.T)
    s = core.memory.sbuf((4, 3), "float32")
    core.nc_transpose(s, src)  # SBUF dst: Vector Engine
    np.testing.assert_array_equal(s.read(), x.T)
    assert core.stats["tensor"].instructions == 1 and core.stats["vector"].instructions == 1


def test_nc_matmul_mx_on_core_against_float64():
    rng = np.random.default_rng(2)
    core = NeuronCore()
    kp, m, n = 32, 4, 6
    # e4m3fn codes of +-1, +-2, +-0.5 (exact products and sums in fp32)
    choices = np.array([0x38, 0xB8, 0x40, 0xC0, 0x30, 0xB0], np.uint8)
    sc, mc = rng.choice(choices, (kp, 4 * m)), rng.choice(choices, (kp, 4 * n))
    s_scale, m_scale = rng.integers(125, 130, (kp // 8, m)).astype(np.uint8), \
        rng.integers(125, 130, (kp // 8, n)).astype(np.uint8)
    st = core.memory.sbuf((kp, m), "float8_e4m3fn_x4", value=emu.pack_x4(sc, "float8_e4m3fn"))
    mv = core.memory.sbuf((kp, n), "float8_e4m3fn_x4", value=emu.pack_x4(mc, "float8_e4m3fn"))
    ss = core.memory.sbuf((kp // 8, m), "uint8", value=s_scale)
    ms = core.memory.sbuf((kp // 8, n), "uint8", value=m_scale)
    p = core.memory.psum((m, n), "float32")
    core.nc_matmul_mx(p, st, mv, ss, ms)
    sv = sc.view(ml_dtypes.float8_e4m3fn).astype(np.float64).reshape(kp, m, 4)
    vv = mc.view(ml_dtypes.float8_e4m3fn).astype(np.float64).reshape(kp, n, 4)
    sv *= 2.0 ** (np.repeat(s_scale, 8, axis=0).astype(np.float64) - 127)[:, :, None]
    vv *= 2.0 ** (np.repeat(m_scale, 8, axis=0).astype(np.float64) - 127)[:, :, None]
    ref = np.einsum("pmq,pnq->mn", sv, vv)
    np.testing.assert_array_equal(p.read(), ref)


@pytest.mark.parametrize("convention, offset", [("hw", 8 - 1), ("ocp", 8)])  # Emax(e4m3fn) = 8
def test_quantize_mx_on_core_against_the_scale_formula(convention, offset):
    """hw: X = 2^(floor(log2 amax) - (Emax - 1)) (the ISA text); ocp: X = 2^(floor(log2 amax) - Emax) and the
    quotient clipped to 448 (OCP MX; nki-library's golden)."""
    rng = np.random.default_rng(3)
    core = NeuronCore()
    vals = (rng.standard_normal((32, 8)) * 4).astype(BF16)
    src = core.memory.sbuf((32, 8), "bfloat16", value=vals)
    dst = core.memory.sbuf((32, 2), "float8_e4m3fn_x4")
    scale = core.memory.sbuf((4, 2), "uint8")
    with emu.settings(mx_convention=convention):
        core.quantize_mx(dst, src, scale)
    v = vals.astype(np.float64)
    clipped = 0
    for g in range(4):
        for j in range(2):
            block = v[8 * g:8 * g + 8, 4 * j:4 * j + 4]
            e = int(np.floor(np.log2(np.abs(block).max())))
            x = 2.0 ** (e - offset)
            assert int(scale.read()[g, j]) == e - offset + 127
            clipped += int((np.abs(block / x) > 448).sum())
            want = np.clip(block / x, -448, 448).astype(ml_dtypes.float8_e4m3fn).view(np.uint8)
            got = emu.unpack_x4(dst.read()[8 * g:8 * g + 8, j:j + 1], "float8_e4m3fn")
            np.testing.assert_array_equal(got, want)
    assert clipped > 0 or convention == "hw"  # the data reach the ocp clip (a property of the input alone)


# ---- DMA -----------------------------------------------------------------------------------------------------

def test_dma_copy_converts_through_fp32_rne():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((8, 16)).astype(np.float32) * 100
    core = NeuronCore()
    h = core.memory.hbm((8, 16), "float32", value=x)
    s = core.memory.sbuf((8, 16), "bfloat16")
    core.dma_copy(s, h)
    np.testing.assert_array_equal(s.read().view(np.uint16), x.astype(BF16).view(np.uint16))
    back = core.memory.hbm((8, 16), "float32")
    core.dma_copy(back, s)
    np.testing.assert_array_equal(back.read(), x.astype(BF16).astype(np.float32))
    ints = core.memory.hbm((8, 16), "int32", value=(x * 1e5).astype(np.int32))
    f = core.memory.sbuf((8, 16), "float32")
    core.dma_copy(f, ints)
    np.testing.assert_array_equal(f.read(), (x * 1e5).astype(np.int32).astype(np.float32))


def test_dma_copy_saturate_and_shape_rules():
    core = NeuronCore()
    h = core.memory.hbm((1, 4), "float32", value=np.array([[500.0, -500.0, 1.0, 464.0]], np.float32))
    s = core.memory.sbuf((1, 4), "float8_e4m3fn")
    core.dma_copy(s, h)
    assert np.isnan(s.read().astype(np.float32)[0, :2]).all()
    with emu.settings(saturate=True):
        core.dma_copy(s, h)
    np.testing.assert_array_equal(s.read().astype(np.float32), [[448.0, -448.0, 1.0, 448.0]])
    with pytest.raises(ShapeError, match="dma_copy: src has 4 elements"):
        core.dma_copy(core.memory.sbuf((1, 3), "float32"), h)


def test_dma_copy_with_access_patterns_and_stats():
    core = NeuronCore()
    x = np.arange(64, dtype=np.float32).reshape(8, 8)
    h = core.memory.hbm((8, 8), "float32", value=x)
    s = core.memory.sbuf((4, 8), "float32")
    # rows 0, 2, 4, 6 of the HBM tensor: [[16, 4], [1, 8]] in elements
    core.dma_copy(s, h.ap([[16, 4], [1, 8]]))
    np.testing.assert_array_equal(s.read(), x[::2])
    st = core.stats["dma"]
    assert st.instructions == 1 and st.bytes == 2 * 4 * 8 * 4 and sum(core.stats.dma_queues.values()) == 1


def test_dma_transpose():
    core = NeuronCore()
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    h = core.memory.hbm((2, 3, 4), "float32", value=x)
    s = core.memory.sbuf((4, 3, 2), "float32")
    core.dma_transpose(s, h)
    np.testing.assert_array_equal(s.read(), x.transpose(2, 1, 0))
    with pytest.raises(ConnectivityError, match="dma_transpose: dst is HBM"):
        core.dma_transpose(core.memory.hbm((4, 3, 2), "float32"), h)


# ---- statistics, settings, SR sites --------------------------------------------------------------------------

def test_stats_per_engine():
    core, x = _core_with()
    y = core.memory.sbuf((4, 8), "float32")
    core.tensor_tensor(y, x, x, "add")
    core.activation(y, "exp", x)
    core.iota(core.memory.sbuf((4, 8), "int32"), [[1, 8]])
    s = core.stats
    assert (s["vector"].instructions, s["scalar"].instructions, s["gpsimd"].instructions) == (1, 1, 1)
    assert s["vector"].elements == 32 and s["vector"].bytes == 3 * 128
    assert s["vector"].cycles == 64 + 8 * 2  # ~N per input tile + 64 (reference 7.4)
    assert s.instructions == {"tensor_tensor": 1, "activation": 1, "iota": 1}


def test_pinned_settings_apply_whatever_the_ambient():
    pinned = get_settings().replace(saturate=True)
    core = NeuronCore(settings=pinned)
    x = core.memory.sbuf((1, 2), "float32", value=np.array([[500.0, 1.0]], np.float32))
    y = core.memory.sbuf((1, 2), "float8_e4m3fn")
    core.tensor_copy(y, x)
    np.testing.assert_array_equal(y.read().astype(np.float32), [[448.0, 1.0]])
    ambient = NeuronCore()
    x2 = ambient.memory.sbuf((1, 2), "float32", value=np.array([[500.0, 1.0]], np.float32))
    y2 = ambient.memory.sbuf((1, 2), "float8_e4m3fn")
    ambient.tensor_copy(y2, x2)
    assert np.isnan(float(y2.read().astype(np.float32)[0, 0]))


def test_sr_sites_differ_between_instructions():
    x = np.full((128, 64), 1.0 + 2 ** -9, np.float32)  # a quarter of the way from 1 to the next bf16 (1 + 2^-7)
    core = NeuronCore()
    src = core.memory.sbuf((128, 64), "float32", value=x)
    a, b = core.memory.sbuf((128, 64), "bfloat16"), core.memory.sbuf((128, 64), "bfloat16")
    with emu.settings(rounding="sr"):
        core.tensor_copy(a, src)
        core.tensor_copy(b, src)
    ra, rb = a.read().astype(np.float32), b.read().astype(np.float32)
    assert set(np.unique(ra)) <= {1.0, 1.0 + 2 ** -7} and set(np.unique(rb)) <= {1.0, 1.0 + 2 ** -7}
    assert 0.2 < (ra > 1).mean() < 0.3  # P(up) = 1/4 (8192 draws: 10 standard deviations either side)
    assert (ra != rb).any()  # each instruction draws its own bits


# ---- LNC=2 -----------------------------------------------------------------------------------------------------

def test_lnc2_sendrecv_swap_and_shared_hbm():
    c0, c1 = lnc_group(2, timeout=10)
    assert c0.memory.hbm_memory is c1.memory.hbm_memory
    shared = c0.memory.hbm((2, 4), "float32", name="shared", value=0.0)
    used = c1.memory.used("hbm")
    assert used == shared.nbytes
    results = {}

    def run(core, value):
        s = core.memory.sbuf((2, 4), "float32", value=np.full((2, 4), value, np.float32))
        r = core.memory.sbuf((2, 4), "float32")
        other = 1 - core.rank
        core.sendrecv(s, r, other, other)
        core.core_barrier()
        core.dma_copy(shared[core.rank:core.rank + 1], r[0:1])
        results[core.rank] = r.read()

    threads = [threading.Thread(target=run, args=(c, 10.0 * (c.rank + 1))) for c in (c0, c1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (results[0] == 20.0).all() and (results[1] == 10.0).all()
    np.testing.assert_array_equal(shared.read(), [[20.0] * 4, [10.0] * 4])


def test_sendrecv_errors():
    core = NeuronCore()
    s = core.memory.sbuf((2, 4), "float32", value=1.0)
    with pytest.raises(ShapeError, match="sendrecv: src is float32 \\(2, 4\\) and dst is float32 \\(2, 2\\)"):
        core.sendrecv(s, core.memory.sbuf((2, 2), "float32"), 0, 0)
    with pytest.raises(EmulatorError, match="send_to_rank=1 but this LNC group has 1 core"):
        core.sendrecv(s, core.memory.sbuf((2, 4), "float32"), 1, 0)
    c0, _ = lnc_group(2, timeout=0.2)
    r = c0.memory.sbuf((2, 4), "float32")
    with pytest.raises(EmulatorError, match="waited 0.2 s for core 1"):
        c0.sendrecv(c0.memory.sbuf((2, 4), "float32", value=1.0), r, 1, 1)


# ---- engine state held by the core -----------------------------------------------------------------------------

def test_rng_state_lives_on_the_core_per_engine():
    from emulator.engines.rng import EngineRNG, rng as rng_fn, set_rng_seed

    core = NeuronCore()
    seed = core.memory.sbuf((1, 1), "uint32", value=np.array([[7]], np.uint32))
    a, b = core.memory.sbuf((4, 8), "uint32"), core.memory.sbuf((4, 8), "uint32")
    core.set_rng_seed(seed)
    core.rng(a, engine="vector")
    core.set_rng_seed(seed)
    core.rng(b, engine="vector")
    np.testing.assert_array_equal(a.read(), b.read())  # same seed, same sequence
    ref = EngineRNG("vector")  # an independent generator object driven through the array-level functions
    set_rng_seed(np.array([[7]], np.uint32), state=ref)
    np.testing.assert_array_equal(rng_fn(np.empty((4, 8), np.uint32), state=ref), a.read())
    core.rng(b, engine="gpsimd")  # the GpSimd generator is a separate state
    assert not (b.read() == a.read()).all()
    other = NeuronCore()
    c = other.memory.sbuf((4, 8), "uint32")
    other.rng(c, engine="vector")
    core.rng(b, engine="vector")  # the cores' states are independent objects
    assert core.rng_states["vector"] is not other.rng_states["vector"]
    assert not (c.read() == b.read()).all()


def test_scalar_reduce_registers_on_the_core():
    core = NeuronCore()
    x = core.memory.sbuf((2, 4), "float32", value=np.array([[1, 2, 3, 4], [5, 6, 7, 8]], np.float32))
    y = core.memory.sbuf((2, 4), "float32")
    res = core.memory.sbuf((2, 1), "float32")
    core.activation(y, "square", x, reduce_op="add", reduce_res=res, reduce_cmd="reset_reduce")
    np.testing.assert_array_equal(res.read(), [[30.0], [174.0]])
    core.activation(y, "copy", x, reduce_op="add", reduce_res=res, reduce_cmd="reduce")  # keeps accumulating
    np.testing.assert_array_equal(res.read(), [[40.0], [200.0]])
    np.testing.assert_array_equal(core.regs["scalar"].values[:2], [40.0, 200.0])


def test_dma_gather_and_scatter_with_vector_offset_and_oob_modes():
    core = NeuronCore()
    table = np.arange(40, dtype=np.float32).reshape(10, 4)
    h = core.memory.hbm((10, 4), "float32", name="table", value=table)
    idx = core.memory.sbuf((3, 1), "uint32", name="idx", value=np.array([[7], [2], [7]], np.uint32))
    g = core.memory.sbuf((3, 4), "float32")
    core.dma_copy(g, h.ap([[4, 3], [1, 4]], vector_offset=idx))
    np.testing.assert_array_equal(g.read(), table[[7, 2, 7]])
    out = core.memory.hbm((10, 4), "float32", name="out", value=0.0)
    core.dma_copy(out.ap([[4, 3], [1, 4]], vector_offset=idx), g)  # scatter rows into 7, 2, 7
    want = np.zeros((10, 4), np.float32)
    want[[7, 2]] = table[[7, 2]]
    np.testing.assert_array_equal(out.read(), want)
    bad = core.memory.sbuf((3, 1), "uint32", value=np.array([[1], [12], [3]], np.uint32))
    with pytest.raises(ShapeError, match=r"vector_offset\[1\] = 12 reaches outside HBM tensor 'table'"):
        core.dma_copy(g, h.ap([[4, 3], [1, 4]], vector_offset=bad))
    core.memset(g, -1.0)
    core.dma_copy(g, h.ap([[4, 3], [1, 4]], vector_offset=bad), oob_mode="skip")
    np.testing.assert_array_equal(g.read(), [table[1], [-1.0] * 4, table[3]])
