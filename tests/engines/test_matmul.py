"""emu.matmul (tiled driver), the memory model, the cost model and explain."""

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as hs

import emulator as emu
from emulator.engines.memory import Memory

F32 = np.float32


@pytest.fixture(params=["numba", "numpy"])
def path(request):
    with emu.settings(numba=request.param == "numba"):
        yield request.param


def tiled_ref(st, mv, ktile):
    """Independent reference: per K tile a plain np.float32 loop from +0, tiles added in order."""
    out = None
    for k0 in range(0, st.shape[0], ktile):
        part = np.zeros((st.shape[1], mv.shape[1]), F32)
        for k in range(k0, min(st.shape[0], k0 + ktile)):
            part = (part + np.outer(st[k], mv[k]).astype(F32)).astype(F32)
        out = part if out is None else (out + part).astype(F32)
    return out


def bits(x):
    return np.asarray(x, F32).view(np.uint32)


@pytest.mark.parametrize("fmt,dt", [("bfloat16", ml_dtypes.bfloat16), ("float16", np.float16),
                                    ("float8_e4m3fn", ml_dtypes.float8_e4m3fn), ("float8_e5m2", ml_dtypes.float8_e5m2),
                                    ("float32", F32)])
def test_tiled_matches_reference(path, fmt, dt):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((130, 300)).astype(F32)
    b = rng.standard_normal((300, 515)).astype(F32)
    got = emu.matmul(a, b, fmt)
    want = tiled_ref(a.T.astype(dt).astype(F32), b.astype(dt).astype(F32), 128)
    assert got.shape == (130, 515) and (bits(got) == bits(want)).all()


@pytest.mark.parametrize("fmt", ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp4"])
def test_mx_matches_dequantized_reference(path, fmt):
    el = {"mxfp8_e4m3": "float8_e4m3fn", "mxfp8_e5m2": "float8_e5m2", "mxfp4": "float4_e2m1fn"}[fmt]
    rng = np.random.default_rng(2)
    a = rng.standard_normal((20, 1000)).astype(F32)
    b = rng.standard_normal((1000, 24)).astype(F32)
    got = emu.matmul(a, b, fmt)
    pad = -1000 % 32
    qa = emu.mx.quantize_operand(np.pad(a.T, ((0, pad), (0, 0))), el)
    qb = emu.mx.quantize_operand(np.pad(b, ((0, pad), (0, 0))), el)
    st = emu.mx.dequantize_operand(*qa, el)
    mv = emu.mx.dequantize_operand(*qb, el)
    assert (bits(got) == bits(tiled_ref(st, mv, 512))).all()


@pytest.mark.parametrize("fmt,el", [("mxfp8_e4m3", "float8_e4m3fn"), ("mxfp8_e5m2", "float8_e5m2"),
                                    ("mxfp4", "float4_e2m1fn")])
@pytest.mark.parametrize("convention", ["hw", "ocp"])
def test_mx_fast_path_panels_equal_the_packed_dequantised_operands(fmt, el, convention):
    """The Numba fast path decodes MX codes straight into the kernel's panels: they must be the panels of the
    Trainium operand layout decoded as nc_matmul_mx decodes it, bit for bit (specials, ragged M/N/K, NaN scales)."""
    from emulator.engines._matmul_kernels import MR, NR, _pack, code_panels
    from emulator.engines.matmul_operands import decode_operand, encode_operand
    from emulator.engines.tensor import _mx_operand
    from emulator.numerics.mx_core import scale_values

    rng = np.random.default_rng(4)
    a = (rng.standard_normal((66, 300)) * 2.0 ** rng.integers(-140, 120, (66, 300))).astype(F32)
    a[0, :5] = [0.0, -0.0, np.inf, np.nan, 1e-45]
    b = rng.standard_normal((300, 45)).astype(F32)
    b[7, 3], b[40, 44], b[100:132, 9] = np.nan, -np.inf, 2.0 ** -140
    pad = -300 % 32
    with emu.settings(mx_convention=convention):
        sto, mvo = encode_operand(a, fmt, "stationary"), encode_operand(b, fmt, "moving")
        ap, bp = decode_operand(sto, panel_width=MR), decode_operand(mvo, panel_width=NR)
        qa = emu.mx.quantize_operand(np.ascontiguousarray(np.pad(a.T, ((0, pad), (0, 0)))), el)
        qb = emu.mx.quantize_operand(np.ascontiguousarray(np.pad(b, ((0, pad), (0, 0)))), el)
    assert (sto.k, mvo.k) == (320, 320)
    st_ref = _mx_operand(qa[0], qa[1], el, "stationary", None, 0, "matmul")[0]
    mv_ref = _mx_operand(qb[0], qb[1], el, "moving", None, 0, "matmul")[0]
    np.testing.assert_array_equal(ap.view(np.uint32), _pack(st_ref, MR).view(np.uint32))
    np.testing.assert_array_equal(bp.view(np.uint32), _pack(mv_ref, NR).view(np.uint32))
    # the NumPy twin of the panel decoder agrees with the Numba kernel (a NaN scale code included)
    codes = rng.integers(0, 256 if el != "float4_e2m1fn" else 16, (64, 45)).astype(np.uint8)
    scales = rng.integers(100, 150, (2, 45)).astype(np.uint8)
    scales[1, 3] = 0xFF
    vtab, ftab = emu.formats.get(el).value_table, scale_values(np.float32)
    out = {}
    for numba in (True, False):
        out[numba] = np.empty((-(-45 // NR), 64 * NR), F32)
        with emu.settings(numba=numba):
            code_panels(codes, vtab, scales, 32, 1, ftab, NR, False, out[numba])
    np.testing.assert_array_equal(out[True].view(np.uint32), out[False].view(np.uint32))
    assert np.isnan(out[True][0, 3::NR][32:]).all()
    # the stationary side (codes [X, K] by rows, one scale per 32 k of a row, X = 45 not a multiple of MR)
    codes_t = np.ascontiguousarray(codes.T)
    scales_t = rng.integers(100, 150, (45, 2)).astype(np.uint8)
    scales_t[7, 1] = 0xFF
    for numba in (True, False):
        out[numba] = np.empty((-(-45 // MR), 64 * MR), F32)
        with emu.settings(numba=numba):
            code_panels(codes_t, vtab, scales_t, 1, 32, ftab, MR, True, out[numba])
    np.testing.assert_array_equal(out[True].view(np.uint32), out[False].view(np.uint32))
    first_pad = 45 % MR  # the last panel holds rows 45 - 45 % MR .. ; rows 45 and up are zero padding
    assert first_pad and (out[True][-1].reshape(64, MR)[:, first_pad:] == 0).all()


def test_register_block_follows_the_generated_vectors():
    # the block is chosen from the assembly Numba generates here (zmm or not, AVX-512 registers or not); every
    # choice must start emu.matmul's 128-row blocks on a panel
    from emulator._jit import simd_target
    from emulator.engines import _matmul_kernels as k

    lanes, wide = simd_target()
    assert lanes in (8, 16) and (lanes == 8 or wide)
    assert (k.MR, k.NR) == k._BLOCKS[(lanes, wide)] and 128 % k.MR == 0 and k.NR % lanes == 0


@pytest.mark.parametrize("fmt", ["bfloat16", "float16", "float8_e4m3fn", "float8_e5m2", "float8_e4m3"])
def test_narrow_fast_path_panels_equal_the_packed_rounded_operands(fmt):
    """bf16/fp16/fp8: the codes are decoded straight into panels; they must be the panels of the operands rounded
    by emu.round_to (NaN payloads, signed zeros, overflow and ragged M/N included), for both kernel twins."""
    from emulator.engines._matmul_kernels import MR, NR, _pack, code_panels
    from emulator.engines.matmul_operands import decode_operand, encode_operand

    rng = np.random.default_rng(8)
    a = (rng.standard_normal((67, 150)) * 2.0 ** rng.integers(-30, 20, (67, 150))).astype(F32)
    b = (rng.standard_normal((150, 45)) * 2.0 ** rng.integers(-30, 20, (150, 45))).astype(F32)
    a[0, :6] = [0.0, -0.0, np.inf, np.nan, 1e-45, 1e30]
    b[3, :3] = [np.float32(-np.nan), -np.inf, -0.0]
    sto, mvo = encode_operand(a, fmt, "stationary"), encode_operand(b, fmt, "moving")
    ap, bp = decode_operand(sto, panel_width=MR), decode_operand(mvo, panel_width=NR)
    assert (sto.k, mvo.k) == (150, 150)
    want_a = _pack(np.ascontiguousarray(emu.round_to(a, fmt).T), MR)
    want_b = _pack(emu.round_to(b, fmt), NR)
    np.testing.assert_array_equal(ap.view(np.uint32), want_a.view(np.uint32))
    np.testing.assert_array_equal(bp.view(np.uint32), want_b.view(np.uint32))
    codes = emu.cast(b, fmt)
    twin = np.empty_like(bp)
    with emu.settings(numba=False):
        code_panels(codes, emu.formats.get(fmt).value_table, np.zeros((0, 0), np.uint8), 32, 1,
                    np.ones(1, F32), NR, False, twin)
    np.testing.assert_array_equal(twin.view(np.uint32), want_b.view(np.uint32))
    with emu.settings(rounding="sr", seed=5):  # SR streams are keyed on the [K, M] order of the stationary operand
        sr_panels = decode_operand(encode_operand(a, fmt, "stationary"), panel_width=MR)
        want_sr = _pack(emu.round_to(np.ascontiguousarray(a.T), fmt, rounding="sr", site=1), MR)
    np.testing.assert_array_equal(sr_panels.view(np.uint32), want_sr.view(np.uint32))


def test_mx_fast_path_in_row_blocks_with_progress_and_canonical_nan(capsys):
    """Above the progress size the fast path runs in blocks of rows (each a slice of the stationary panels)."""
    rng = np.random.default_rng(6)
    a = rng.standard_normal((300, 96)).astype(F32)
    b = rng.standard_normal((96, 70)).astype(F32)
    a[5, 40] = np.nan
    qa = emu.mx.quantize_operand(np.ascontiguousarray(a.T), "float8_e4m3fn")
    qb = emu.mx.quantize_operand(b, "float8_e4m3fn")
    want = tiled_ref(emu.mx.dequantize_operand(*qa, "float8_e4m3fn"), emu.mx.dequantize_operand(*qb, "float8_e4m3fn"),
                     512)
    for pe_nan in ("ieee", "canonical"):
        with emu.settings(pe_nan=pe_nan):
            got = emu.matmul(a, b, "mxfp8_e4m3", progress=True)
        assert "300/300" in capsys.readouterr().err  # the bar reached every row
        finite = ~np.isnan(want)
        assert (bits(got)[finite] == bits(want)[finite]).all() and np.isnan(got[~finite]).all()
        if pe_nan == "canonical":
            assert (bits(got)[~finite] == 0x7FC00000).all()


@pytest.mark.parametrize("fmt", ["float32", "bfloat16", "float8_e4m3fn", "mxfp8_e4m3", "mxfp4"])
@pytest.mark.parametrize("m,k,n", [(0, 5, 3), (2, 0, 3), (2, 5, 0), (0, 0, 0)])
def test_empty_dimensions(path, fmt, m, k, n):
    """An empty M, K or N gives the [M, N] result of an empty sum: all +0 (K = 0), or an empty array."""
    got = emu.matmul(np.ones((m, k), F32), np.ones((k, n), F32), fmt)
    assert got.shape == (m, n) and got.dtype == F32
    assert (bits(got) == 0).all()


def test_fp32_error_bound_large():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((256, 2048)).astype(F32)
    b = rng.standard_normal((2048, 256)).astype(F32)
    got = emu.matmul(a, b, "float32")
    exact = a.astype(np.float64) @ b.astype(np.float64)
    # sequential fp32: |error| <= (K + 1) u sum |a||b| with u = 2^-24 (products and adds each round once)
    bound = (2048 + 1) * 2.0 ** -24 * (np.abs(a).astype(np.float64) @ np.abs(b))
    assert (np.abs(got - exact) <= bound).all()


def test_bf16_psum_rounds_each_k_tile(path):
    a = np.full((1, 384), 1.0, F32)
    b = np.full((384, 1), 2.0 ** -8, F32)
    b[:128] = 1.0  # first K tile sums to 128 (bf16 ulp 1 there); the next two tiles add 0.5 each
    assert emu.matmul(a, b, "bfloat16", psum_dtype="bfloat16")[0, 0] == 128.0  # 128.5 ties to even, twice
    assert emu.matmul(a, b, "bfloat16")[0, 0] == 129.0  # fp32 PSUM keeps both halves
    b[128:] = 2.0 ** -7
    assert emu.matmul(a, b, "bfloat16", psum_dtype="bfloat16")[0, 0] == 130.0


def test_other_models_go_through_the_instructions(path):
    rng = np.random.default_rng(4)
    a = rng.standard_normal((5, 200)).astype(F32)
    b = rng.standard_normal((200, 7)).astype(F32)
    st = a.T.astype(ml_dtypes.bfloat16)
    mv = b.astype(ml_dtypes.bfloat16)
    for model in ("pairwise", "exact", "blocked:16"):
        want = emu.nc_matmul(st[:128], mv[:128], accumulation=model)
        emu.nc_matmul(st[128:], mv[128:], psum=want, accumulation=model)
        assert (bits(emu.matmul(a, b, "bf16", accumulation=model)) == bits(want)).all()


def test_matmul_errors():
    with pytest.raises(emu.ShapeError, match="K = 3"):
        emu.matmul(np.ones((2, 3)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="fmt"):
        emu.matmul(np.ones((2, 3)), np.ones((3, 2)), "int8")
    with pytest.raises(emu.DtypeError):
        emu.matmul(np.ones((2, 3), np.int32), np.ones((3, 2)))


@hsettings(max_examples=25)
@given(M=hs.integers(1, 140), K=hs.integers(1, 300), N=hs.integers(1, 40), seed=hs.integers(0, 2 ** 31))
def test_shapes_property(M, K, N, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((M, K)).astype(F32)
    b = rng.standard_normal((K, N)).astype(F32)
    got = emu.matmul(a, b, "bfloat16")
    rows = rng.integers(0, M, 3)
    st = a[rows].T.astype(ml_dtypes.bfloat16).astype(F32)
    want = tiled_ref(st, b.astype(ml_dtypes.bfloat16).astype(F32), 128)
    assert (bits(got[rows]) == bits(want)).all()


def test_explain_and_cost(capsys):
    report = emu.explain.matmul(300, 1000, 700, "bf16")
    assert "3 stationary" in report and "2 moving" in report and "8 K tiles" in report
    assert "48 nc_matmul" in report
    emu.matmul(np.ones((4, 8), F32), np.ones((8, 4), F32), explain=True)
    assert "matmul [4 x 8] @ [8 x 4]" in capsys.readouterr().out
    from emulator.engines import cost
    p = cost.plan_matmul(128, 128, 512, "bfloat16")
    assert p.pe_cycles == 512 and p.instructions == 1
    assert cost.plan_matmul(128, 128, 512, "float32").pe_cycles == 4 * 512
    assert cost.plan_matmul(128, 512, 512, "mxfp8_e4m3").instructions == 1


def test_cli_explain(capsys):
    from emulator import cli
    assert cli.main(["explain", "matmul", "256", "256", "512", "--fmt", "mxfp4"]) == 0
    assert "nc_matmul_mx" in capsys.readouterr().out


def test_memory_capacity_errors():
    with emu.settings(onchip_lifetime="reference"):  # first-fit placement of every referenced tile
        _memory_capacity_errors()


def _memory_capacity_errors():
    mem = Memory()
    with pytest.raises(emu.ShapeError, match="129 partitions"):
        mem.sbuf((129, 2), F32)
    with pytest.raises(emu.CapacityError, match="245752"):
        mem.sbuf((128, 61439), F32, name="big")
    a = mem.sbuf((128, 61438), F32)  # 245752 bytes: exactly the usable SBUF
    with pytest.raises(emu.CapacityError, match="no room"):
        mem.sbuf((1, 1), ml_dtypes.bfloat16)
    a.free()
    mem.sbuf((1, 1), ml_dtypes.bfloat16)
    with pytest.raises(emu.CapacityError, match="2048"):
        mem.psum((128, 513), F32, name="acc")
    tiles = [mem.psum((128, 512), F32) for _ in range(8)]
    assert sorted(t.offset for t in tiles) == [2048 * i for i in range(8)]
    with pytest.raises(emu.CapacityError, match="PSUM"):
        mem.psum((128, 1), F32)
    mem2 = Memory()
    big = mem2.psum((128, 4096), F32, banks=8)
    assert big.bytes_per_partition == 16384
    with pytest.raises(emu.CapacityError):
        mem2.psum((2, 2), F32)
    small = [mem2.sbuf((32, 4), F32) for _ in range(4)]
    assert sorted(t.start_partition for t in small) == [0, 0, 0, 0]  # first fit: same partitions, next offsets


def test_memory_uninitialised_modes():
    mem = Memory()
    t = mem.sbuf((4, 4), F32, name="t")
    t.write(np.ones(4, F32), index=0)
    with pytest.raises(emu.UninitializedReadError, match=r"instr: .*'t'.*index \(1, 0\)"):
        t.read("instr")
    assert (t.read("instr", index=0) == 1).all()
    with emu.settings(uninitialized="ignore"):
        assert np.isnan(t.read("instr")[1:]).all()
    with emu.settings(uninitialized="warn"), pytest.warns(UserWarning, match="instr"):
        t.read("instr")



def test_underflowing_products_are_rounded_before_the_add():
    """bf16 products below 2^-126 are not exact in fp32: with acc = 2^-149 and a next product of 2^-150,
    multiply-then-add gives 2^-149 (the product rounds to 0), a fused multiply-add would give 2^-148."""
    a = np.array([[2.0**-75, 2.0**-75]], np.float32)  # [M=1, K=2], bf16-exact
    b = np.array([[2.0**-74], [2.0**-75]], np.float32)  # [K=2, N=1]
    out = emu.matmul(a, b, "bfloat16")
    acc = np.float32(0)
    for k in range(2):  # the declared model, written out: fp32 product, fp32 add
        acc = np.float32(acc + np.float32(np.float32(a[0, k]) * np.float32(b[k, 0])))
    assert acc == np.float32(2.0**-149)
    assert out.tolist() == [[2.0**-149]]


_MAGS = hs.sampled_from([0.0, 2.0**-149, 2.0**-140, 2.0**-126, 2.0**-75, 2.0**-64, 1.0, 3.0, 2.0**63, 2.0**64,
                         2.0**100, 3.4e38, float("inf"), float("nan")])


@hsettings(max_examples=300, deadline=None)
@given(hs.lists(hs.tuples(_MAGS, hs.integers(0, 2**23 - 1), hs.booleans()), min_size=1, max_size=6),
       hs.lists(hs.tuples(_MAGS, hs.integers(0, 2**23 - 1), hs.booleans()), min_size=1, max_size=6),
       hs.sampled_from([0x7FF000, 0x7FFFFF]))
def test_fma_is_chosen_only_when_every_product_is_exact_in_fp32(xs, ys, mask):
    """The fused micro-kernel may contract c + a*b into an FMA only if every product is exact in float32. Soundness
    against exact arithmetic: whenever the check says yes, each product a*b (exact in float64 for float32 inputs)
    is finite and equal to its float32 rounding."""
    from emulator.engines._matmul_kernels import _exact_products

    def values(spec):  # magnitude, random significand bits (a short (12-bit) or a full significand), sign
        out = []
        for mag, bits, neg in spec:
            v = np.float32(mag)
            if np.isfinite(v) and v != 0:
                v = (np.array([v], F32).view(np.uint32) | np.uint32(bits & mask)).view(F32)[0]
            out.append(-v if neg else v)
        return np.array(out, F32)

    a, b = values(xs).reshape(1, -1), values(ys).reshape(1, -1)
    if _exact_products(a, b):
        with np.errstate(all="ignore"):
            p = a.astype(np.float64).reshape(-1, 1) * b.astype(np.float64).reshape(1, -1)
            assert np.isfinite(p).all() and (p.astype(F32).astype(np.float64) == p).all()


def test_fma_check_counts_each_products_last_bit_not_the_magnitudes():
    """a = b = 1.5 * 2^-64 + 2^-75 (12 significand bits): a * b ~ 2^-126.8 is above 2^-127, but its last bit is
    2^-75 * 2^-75 = 2^-150, below fp32's smallest subnormal, so the product is not exact (a check on min * min alone
    said it was; hypothesis found such a case)."""
    from emulator.engines._matmul_kernels import _exact_products

    v = np.float32(1.5 * 2.0**-64 + 2.0**-75)
    p = np.float64(v) * np.float64(v)
    assert p >= 2.0**-127 and np.float64(np.float32(p)) != p  # the premise, in exact float64 arithmetic
    assert not _exact_products(np.array([[v]], F32), np.array([[v]], F32))
    w = np.float32(1.5 * 2.0**-63 + 2.0**-74)  # one binade up: last bit 2^-149, exact
    assert np.float64(np.float32(np.float64(w) * np.float64(v))) == np.float64(w) * np.float64(v)
    assert _exact_products(np.array([[w]], F32), np.array([[v]], F32))


def test_fused_kernel_picks_fma_only_where_it_gives_the_same_bits():
    """A sum whose third product (below 2^-148, not exact in fp32) decides a tie: multiply-then-add (the model)
    rounds the product to 2^-148 and the odd accumulator 2^-124 + 2^-147 up to 2^-124 + 2^-146; an FMA would keep
    2^-124 + 2^-147. The Numba kernel must give the model's bits (and the FMA kernel really differs, so the case
    discriminates); on ordinary bf16 data the FMA kernel is taken and agrees with the NumPy twin."""
    from emulator.engines import _matmul_kernels as k

    st = np.array([[1.0], [2.0**-20], [1.9921875 * 2.0**-75]], F32)  # [K=3, M=1], bf16 values
    mv = np.array([[2.0**-124], [2.0**-127], [2.0**-74]], F32)       # [K=3, N=1]
    acc = np.float32(0)
    for kk in range(3):
        acc = np.float32(acc + np.float32(st[kk, 0] * mv[kk, 0]))
    assert acc == np.float32(2.0**-124 + 2.0**-146)
    with emu.settings(numba=True):
        assert k.seq_tiled(st, mv, 128)[0, 0] == acc
    ap, bp = k._pack(st, k.MR), k._pack(mv, k.NR)
    assert not k._exact_products(ap, bp)
    out = np.empty((1, 1), F32)
    k._ensure_compiled()
    k._seq_panels(ap, bp, 3, 128, out, True)
    assert out[0, 0] == np.float32(2.0**-124 + 2.0**-147)  # the FMA kernel's (different) answer
    rng = np.random.default_rng(11)
    a = rng.standard_normal((300, 77)).astype(ml_dtypes.bfloat16).astype(F32)
    b = rng.standard_normal((300, 45)).astype(ml_dtypes.bfloat16).astype(F32)
    assert k._exact_products(k._pack(a, k.MR), k._pack(b, k.NR))
    with emu.settings(numba=True):
        fast = k.seq_tiled(a, b, 128)
    with emu.settings(numba=False):
        slow = k.seq_tiled(a, b, 128)
    np.testing.assert_array_equal(fast.view(np.uint32), slow.view(np.uint32))


@pytest.mark.parametrize("fmt,el", [("mxfp8_e4m3", "float8_e4m3fn"), ("mxfp8_e5m2", "float8_e5m2"),
                                    ("mxfp4", "float4_e2m1fn")])
@pytest.mark.parametrize("convention", ["hw", "ocp"])
def test_mx_operands_of_matmul_equal_the_nc_matmul_mx_decode(fmt, el, convention):
    """emu.matmul quantises a along its rows (no transpose); the values must be those of the Trainium operand
    layout decoded the way nc_matmul_mx decodes it, bit for bit, specials and extreme scales included."""
    from emulator.engines import matmul as mm
    from emulator.engines.tensor import _mx_operand

    rng = np.random.default_rng(3)
    a = (rng.standard_normal((64, 300)) * 2.0 ** rng.integers(-140, 120, (64, 300))).astype(np.float32)
    a[0, :5] = [0.0, -0.0, np.inf, np.nan, 1e-45]
    b = rng.standard_normal((300, 40)).astype(np.float32)
    pad = -300 % 32
    with emu.settings(mx_convention=convention):
        st, mv, _ = mm.quantize_inputs(a, b, fmt)
        qa = emu.mx.quantize_operand(np.ascontiguousarray(np.pad(a.T, ((0, pad), (0, 0)))), el)
        qb = emu.mx.quantize_operand(np.ascontiguousarray(np.pad(b, ((0, pad), (0, 0)))), el)
    st_ref = _mx_operand(qa[0], qa[1], el, "stationary", None, 0, "matmul")[0]
    mv_ref = _mx_operand(qb[0], qb[1], el, "moving", None, 0, "matmul")[0]
    np.testing.assert_array_equal(np.ascontiguousarray(st).view(np.uint32), st_ref.view(np.uint32))
    np.testing.assert_array_equal(np.ascontiguousarray(mv).view(np.uint32), mv_ref.view(np.uint32))


@pytest.mark.parametrize("fmt", ["bfloat16", "float8_e4m3fn", "mxfp8_e4m3", "mxfp4"])
@pytest.mark.parametrize("rounding", ["rne", "sr"])
def test_one_route_numba_numpy_and_sr_agree_with_the_reference(path, fmt, rounding):
    """Numba on, Numba off, RNE and SR all take one route; each equals a reference built from the public quantisers
    (SR keyed on the [K, M] stationary order: cast sites 1 and 2; MX: quantize_operand's contiguous blocks) and a
    plain float32 loop."""
    rng = np.random.default_rng(11)
    a = rng.standard_normal((40, 300)).astype(F32)
    b = rng.standard_normal((300, 70)).astype(F32)
    scope = "engine,psum,dma,collective,mx"
    with emu.settings(rounding=rounding, sr_scope=scope, seed=9):
        got = emu.matmul(a, b, fmt)
        if fmt.startswith("mx"):
            el = {"mxfp8_e4m3": "float8_e4m3fn", "mxfp4": "float4_e2m1fn"}[fmt]
            pad = -300 % 32
            qa = emu.mx.quantize_operand(np.ascontiguousarray(np.pad(a.T, ((0, pad), (0, 0)))), el)
            qb = emu.mx.quantize_operand(np.ascontiguousarray(np.pad(b, ((0, pad), (0, 0)))), el)
            want = tiled_ref(emu.mx.dequantize_operand(*qa, el), emu.mx.dequantize_operand(*qb, el), 512)
        else:
            st = emu.round_to(np.ascontiguousarray(a.T), fmt, site=1)
            mv = emu.round_to(b, fmt, site=2)
            want = tiled_ref(st, mv, 128)
    assert (bits(got) == bits(want)).all()
