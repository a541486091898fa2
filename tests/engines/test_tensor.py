"""nc_matmul / nc_matmul_mx / nc_transpose against independent references, and every error path."""

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, strategies as hs

import emulator as emu
from emulator.engines.memory import Memory
from emulator.testing import matmul_shapes
from engine_refs import seq_loop

F32 = np.float32
NARROW = [ml_dtypes.bfloat16, np.float16, ml_dtypes.float8_e5m2, ml_dtypes.float8_e4m3, ml_dtypes.float8_e4m3fn]


@pytest.fixture(params=["numba", "numpy"])
def path(request):
    with emu.settings(numba=request.param == "numba"):
        yield request.param


def bits(x):
    return np.asarray(x, F32).view(np.uint32)


@pytest.mark.parametrize("sdt", NARROW, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("mdt", NARROW, ids=lambda d: np.dtype(d).name)
def test_every_dtype_pair(path, sdt, mdt):
    if {np.dtype(sdt).name, np.dtype(mdt).name} == {"float8_e4m3", "float8_e4m3fn"}:
        with pytest.raises(emu.DtypeError, match="never meet"):
            emu.nc_matmul(np.zeros((4, 2), sdt), np.zeros((4, 3), mdt))
        return
    rng = np.random.default_rng(11)
    st = rng.standard_normal((128, 8)).astype(sdt)
    mv = rng.standard_normal((128, 16)).astype(mdt)
    got = emu.nc_matmul(st, mv)
    assert got.dtype == F32 and (bits(got) == bits(seq_loop(st, mv))).all()


def test_fp32_only_with_fp32():
    with pytest.raises(emu.DtypeError, match="fp32/tf32"):
        emu.nc_matmul(np.zeros((4, 2), F32), np.zeros((4, 3), ml_dtypes.bfloat16))
    with pytest.raises(emu.DtypeError, match="dtype"):
        emu.nc_matmul(np.zeros((4, 2), np.float64), np.zeros((4, 3), np.float64))
    x = np.full((2, 2), 1.0 + 2.0 ** -20, F32)
    with pytest.raises(emu.DtypeError, match="low 13"):
        emu.nc_matmul(x, x, stationary_fmt="tfloat32")
    t = emu.round_to(x, "tfloat32")
    assert emu.nc_matmul(t, t, stationary_fmt="tfloat32", moving_fmt="tfloat32")[0, 0] == 2.0


def test_shape_errors():
    z = lambda *s: np.zeros(s, ml_dtypes.bfloat16)  # noqa: E731
    with pytest.raises(emu.ShapeError, match="129 partitions"):
        emu.nc_matmul(z(129, 4), z(129, 4))
    with pytest.raises(emu.ShapeError, match="free size 129"):
        emu.nc_matmul(z(4, 129), z(4, 4))
    with pytest.raises(emu.ShapeError, match="must match"):
        emu.nc_matmul(z(4, 4), z(5, 4))
    with pytest.raises(emu.ShapeError, match="4096"):
        emu.nc_matmul(z(4, 4), z(4, 4097))
    emu.nc_matmul(z(4, 4), z(4, 8192), psum_dtype="bfloat16")
    with pytest.raises(emu.ShapeError, match="row tile"):
        emu.nc_matmul(z(33, 4), z(33, 4), tile_position=(32, 0), tile_size=(32, 128))
    with pytest.raises(emu.ShapeError, match="multiples"):
        emu.nc_matmul(z(8, 4), z(8, 4), tile_position=(16, 0), tile_size=(32, 128))
    with pytest.raises(emu.ShapeError, match="column tile"):
        emu.nc_matmul(z(8, 65), z(8, 4), tile_position=(0, 64), tile_size=(128, 64))
    with pytest.raises(emu.DtypeError):
        emu.nc_matmul(z(4, 4), z(4, 4), psum_dtype="float16")


def test_tile_position_does_not_change_the_result():
    rng = np.random.default_rng(2)
    st = rng.standard_normal((32, 32)).astype(ml_dtypes.bfloat16)
    mv = rng.standard_normal((32, 64)).astype(ml_dtypes.bfloat16)
    a = emu.nc_matmul(st, mv)
    b = emu.nc_matmul(st, mv, tile_position=(64, 32), tile_size=(32, 32))
    assert (bits(a) == bits(b)).all()


def test_psum_accumulate_fp32_and_bf16(path):
    rng = np.random.default_rng(3)
    st = rng.standard_normal((16, 4)).astype(ml_dtypes.bfloat16)
    mv = rng.standard_normal((16, 8)).astype(ml_dtypes.bfloat16)
    r = seq_loop(st, mv)
    p = np.full((4, 8), 0.25, F32)
    out = emu.nc_matmul(st, mv, psum=p)
    assert out is p and (bits(p) == bits((F32(0.25) + r).astype(F32))).all()
    pb = np.full((4, 8), 3.0, ml_dtypes.bfloat16)
    emu.nc_matmul(st, mv, psum=pb)
    want = ((F32(3.0) + r).astype(F32)).astype(ml_dtypes.bfloat16)  # ml_dtypes: RNE from fp32
    assert (pb.view(np.uint16) == want.view(np.uint16)).all()
    emu.nc_matmul(st, mv, psum=pb, accumulate=False)
    assert (pb.view(np.uint16) == r.astype(ml_dtypes.bfloat16).view(np.uint16)).all()
    with pytest.raises(ValueError, match="accumulate=True"):
        emu.nc_matmul(st, mv, accumulate=True)


@pytest.mark.parametrize("psum_dtype", ["float32", "bfloat16"])
def test_a_nan_made_by_the_psum_accumulation_is_canonical(psum_dtype):
    """+inf in PSUM plus a -inf result is a NaN the PSUM adder makes; with pe_nan='canonical' it is 0x7FC00000 (the
    host's default NaN is 0xFFC00000 on x86), so nc_matmul sequences agree with emu.matmul's fused kernel."""
    one = np.ones((1, 1), np.float32)
    with emu.settings(pe_nan="canonical"):
        psum = emu.nc_matmul(one, np.full((1, 2), np.inf, np.float32), psum_dtype=psum_dtype)
        emu.nc_matmul(one, np.array([[-np.inf, 1.0]], np.float32), psum)
    got = psum.astype(np.float32).view(np.uint32)
    assert got[0, 0] == 0x7FC00000 and got[0, 1] == 0x7F800000


def test_psum_tensor_and_uninitialised_reads():
    mem = Memory()
    st = mem.sbuf((8, 4), ml_dtypes.bfloat16, name="w")
    mv = mem.sbuf((8, 16), ml_dtypes.bfloat16, name="x", value=np.ones((8, 16), F32))
    acc = mem.psum((4, 16), "float32", name="acc")
    with pytest.raises(emu.UninitializedReadError, match=r"'w'.*\(0, 0\)"):
        emu.nc_matmul(st, mv, psum=acc, accumulate=False)
    st.write(np.ones((8, 4), F32))
    with pytest.raises(emu.UninitializedReadError, match="acc"):
        emu.nc_matmul(st, mv, psum=acc)  # accumulating onto PSUM nothing initialised is UB
    emu.nc_matmul(st, mv, psum=acc, accumulate=False)
    emu.nc_matmul(st, mv, psum=acc)
    assert (acc.read("test") == 16.0).all()
    with emu.settings(uninitialized="warn"):
        fresh = mem.sbuf((8, 4), ml_dtypes.bfloat16, name="fresh")
        with pytest.warns(UserWarning, match="fresh"):
            out = emu.nc_matmul(fresh, mv)
        assert np.isnan(out).all()  # fresh tensors hold NaN, as in the simulator
    with pytest.raises(emu.ShapeError, match="SBUF only"):
        emu.nc_matmul(acc, mv)


def test_transpose_is_bit_exact():
    for dt in (F32, ml_dtypes.bfloat16, np.float16, ml_dtypes.float8_e4m3fn):
        x = np.array([[np.nan, -0.0, 1.5], [np.inf, 2.0, -3.0]], F32).astype(dt)
        t = emu.nc_transpose(x)
        assert t.dtype == x.dtype and t.shape == (3, 2)
        assert (t.view(np.uint8) == np.ascontiguousarray(x.T).view(np.uint8)).all()
        via = emu.nc_matmul(x, np.eye(2, dtype=F32).astype(dt), is_transpose=True)
        assert (via.view(np.uint8) == t.view(np.uint8)).all()
    with pytest.raises(ValueError, match="identity"):
        emu.nc_matmul(np.ones((2, 2), F32), np.ones((2, 2), F32), is_transpose=True)
    with pytest.raises(emu.ShapeError, match="32, 32"):
        emu.nc_transpose(np.zeros((33, 4), F32), engine="vector")


def test_double_row(path):
    rng = np.random.default_rng(4)
    st = rng.standard_normal((64, 2, 8)).astype(ml_dtypes.float8_e4m3fn)
    mv = rng.standard_normal((64, 2, 16)).astype(ml_dtypes.float8_e5m2)
    got = emu.nc_matmul(st, mv, perf_mode="double_row")
    want = seq_loop(st.reshape(128, 8), mv.reshape(128, 16))  # PE p: t=0 then t=1
    assert (bits(got) == bits(want)).all()
    with pytest.raises(emu.DtypeError, match="fp8"):
        emu.nc_matmul(st.astype(ml_dtypes.bfloat16), mv.astype(ml_dtypes.bfloat16), perf_mode="double_row")
    with pytest.raises(emu.ShapeError, match="column tiling"):
        emu.nc_matmul(st, mv, perf_mode="double_row", tile_position=(0, 0), tile_size=(128, 64))


def test_onezero_hint():
    st = np.array([[0.0, 1.0]], F32)
    mv = np.array([[2.0]], F32)
    assert emu.nc_matmul(st, mv, is_stationary_onezero=True).tolist() == [[0.0], [2.0]]
    with pytest.raises(ValueError, match="onezero"):
        emu.nc_matmul(st, mv, is_moving_onezero=True)


def mx_reference(sx4, mx4, ss, ms, sf, mf):
    """Per-block exact reference: Fractions of decode x 2^(s-127), summed in (p, q) order with fp32 rounding."""
    def values(x4, sc, f):
        codes = emu.unpack_x4(x4, f)
        kp, F = x4.shape
        out = [[None] * F for _ in range(4 * kp)]
        for p in range(kp):
            for f_ in range(F):
                for q in range(4):
                    v = float(emu.decode(codes[p, 4 * f_ + q], f))
                    out[4 * p + q][f_] = Fraction(v) * Fraction(2) ** (int(sc[p // 8, f_]) - 127)
        return out
    S, V = values(sx4, ss, sf), values(mx4, ms, mf)
    K, M, N = len(S), len(S[0]), len(V[0])
    out = np.zeros((M, N), F32)
    for m in range(M):
        for n in range(N):
            acc = F32(0.0)
            for k in range(K):
                acc = F32(acc + F32(float(S[k][m] * V[k][n])))  # product exact, then one fp32 rounding
            out[m, n] = acc
    return out


def random_x4(rng, kp, F, fmt):
    bitsz = 4 if "e2m1" in fmt else 8
    codes = rng.integers(0, 2 ** bitsz, (kp, 4 * F)).astype(np.uint8)
    if fmt == "float8_e4m3fn":
        codes[(codes & 0x7F) == 0x7F] = 0x3F  # no NaN codes here
    if fmt == "float8_e5m2":
        codes[(codes & 0x7C) == 0x7C] = 0x3C
    return emu.pack_x4(codes, fmt)


@pytest.mark.parametrize("sf,mf", [("float8_e4m3fn", "float8_e4m3fn"), ("float8_e5m2", "float4_e2m1fn"),
                                   ("float4_e2m1fn", "float8_e4m3fn")])
def test_nc_matmul_mx_matches_exact_reference(path, sf, mf):
    rng = np.random.default_rng(5)
    kp, M, N = 32, 4, 3
    sx4, mx4 = random_x4(rng, kp, M, sf), random_x4(rng, kp, N, mf)
    ss = rng.integers(110, 140, (kp // 8, M)).astype(np.uint8)
    ms = rng.integers(110, 140, (kp // 8, N)).astype(np.uint8)
    got = emu.nc_matmul_mx(sx4, mx4, ss, ms, sf, mf)
    assert (bits(got) == bits(mx_reference(sx4, mx4, ss, ms, sf, mf))).all()
    hw = emu.mx.to_hw_scale_layout(ss, p_offset=4)
    got_hw = emu.nc_matmul_mx(sx4, mx4, hw, ms.view(ml_dtypes.float8_e8m0fnu), sf, mf, stationary_p_offset=4)
    assert (bits(got_hw) == bits(got)).all()


def test_nc_matmul_mx_tiny_scales_and_0xff():
    one = emu.pack_x4(np.full((32, 8), 0x38, np.uint8), "float8_e4m3fn")  # all 1.0
    s0 = np.zeros((4, 2), np.uint8)
    got = emu.nc_matmul_mx(one, one, s0, np.full((4, 2), 254, np.uint8), "float8_e4m3fn", "float8_e4m3fn")
    assert (got == F32(128 * 2.0 ** (0 + 254 - 254))).all()  # 2^-127 x 2^127 per product, exact
    sff = s0.copy()
    sff[0, 0] = 255
    got = emu.nc_matmul_mx(one, one, sff, s0 + 127, "float8_e4m3fn", "float8_e4m3fn")
    assert np.isnan(got[0]).all() and np.isfinite(got[1]).all()
    with emu.settings(mx_scale_ff="clip"):
        got = emu.nc_matmul_mx(one, one, sff, s0 + 127, "float8_e4m3fn", "float8_e4m3fn")
        assert (got[0] == np.inf).all()  # 32 products of 2^127 overflow fp32: inf, not NaN


def test_nc_matmul_mx_fp4_lut():
    codes = np.tile(np.arange(16, dtype=np.uint8), (32, 2))[:, :8]  # nibbles 0..7 in each row
    x4 = emu.pack_x4(codes, "float4_e2m1fn")
    ones = emu.pack_x4(np.full((32, 4), 0x38, np.uint8), "float8_e4m3fn")
    s = np.full((4, 2), 127, np.uint8)
    base = emu.nc_matmul_mx(x4, ones, s, s[:, :1], "float4_e2m1fn", "float8_e4m3fn")
    lut = [2.0 * float(v) for v in emu.formats.get("float4_e2m1fn").value_table[:16]]
    doubled = emu.nc_matmul_mx(x4, ones, s, s[:, :1], "float4_e2m1fn", "float8_e4m3fn", fp4_lut=lut)
    assert (doubled == 2 * base).all()
    with emu.settings(mx_fp4_lut=",".join(str(v) for v in lut)):
        assert (emu.nc_matmul_mx(x4, ones, s, s[:, :1], "float4_e2m1fn", "float8_e4m3fn") == doubled).all()


def test_nc_matmul_mx_errors():
    w = lambda kp, f: np.zeros((kp, f), np.uint32)  # noqa: E731
    s = lambda kp, f: np.full((kp // 8, f), 127, np.uint8)  # noqa: E731
    with pytest.raises(emu.ShapeError, match="multiple of 32"):
        emu.nc_matmul_mx(w(16, 2), w(16, 2), s(16, 2), s(16, 2), "float8_e4m3fn", "float8_e4m3fn")
    with pytest.raises(emu.ShapeError, match="even"):
        emu.nc_matmul_mx(w(32, 3), w(32, 2), s(32, 3), s(32, 2), "float8_e4m3fn", "float8_e4m3fn")
    with pytest.raises(emu.ShapeError, match="must match"):
        emu.nc_matmul_mx(w(32, 2), w(64, 2), s(32, 2), s(64, 2), "float8_e4m3fn", "float8_e4m3fn")
    with pytest.raises(emu.DtypeError, match="uint16"):
        emu.nc_matmul_mx(w(32, 2), w(32, 2), s(32, 2), s(32, 2), "float4_e2m1fn", "float8_e4m3fn")
    with pytest.raises(emu.DtypeError, match="MX data"):
        emu.nc_matmul_mx(w(32, 2), w(32, 2), s(32, 2), s(32, 2), "bfloat16", "float8_e4m3fn")
    with pytest.raises(emu.DtypeError, match="uint8"):
        emu.nc_matmul_mx(w(32, 2), w(32, 2), s(32, 2).astype(np.int16), s(32, 2), "float8_e4m3fn", "float8_e4m3fn")
    with pytest.raises(emu.ShapeError, match="row tiling"):
        emu.nc_matmul_mx(w(32, 2), w(32, 2), s(32, 2), s(32, 2), "float8_e4m3fn", "float8_e4m3fn",
                         tile_position=(0, 0), tile_size=(128, 64))
    with pytest.raises(ValueError, match="fp4_lut"):
        emu.nc_matmul_mx(np.zeros((32, 2), np.uint16), w(32, 2), s(32, 2), s(32, 2), "float4_e2m1fn",
                         "float8_e4m3fn", fp4_lut=[0.1] * 16)


@given(shape=matmul_shapes("nc_matmul", max_n=64), seed=hs.integers(0, 2 ** 31),
       sdt=hs.sampled_from(NARROW[:3]), mdt=hs.sampled_from(NARROW[:3]))
def test_shapes_and_dtypes_property(shape, seed, sdt, mdt):
    K, M, N = shape.k, shape.m, shape.n  # the testing toolkit draws the Tensor Engine limits themselves often
    rng = np.random.default_rng(seed)
    st = rng.standard_normal((K, M)).astype(sdt)
    mv = rng.standard_normal((K, N)).astype(mdt)
    got = emu.nc_matmul(st, mv)
    cols = rng.integers(0, M, 2), rng.integers(0, N, 2)
    sub = seq_loop(st[:, cols[0]], mv[:, cols[1]])
    assert (bits(got[np.ix_(cols[0], cols[1])]) == bits(sub)).all()
