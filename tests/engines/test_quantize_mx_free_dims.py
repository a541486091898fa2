"""quantize_mx with several free dims (as nki-library's rmsnorm_mx_quantize_tkg issues it) quantizes exactly as the
free dims flattened: [P, a, b, 4] -> words [P, a, b] and scales like the [P, a*b*4] call."""

import ml_dtypes
import numpy as np

from emulator.engines.pe import quantize_mx


def test_free_dims_flatten():
    rng = np.random.default_rng(3)
    src = rng.normal(0, 4, (32, 2, 8, 4)).astype(ml_dtypes.bfloat16)
    dst = np.zeros((32, 2, 8), np.uint32)
    sc = np.zeros((4, 2, 8), np.uint8)
    quantize_mx(dst, src, sc, fmt="float8_e4m3fn_x4")
    flat_dst = np.zeros((32, 16), np.uint32)
    flat_sc = np.zeros((4, 16), np.uint8)
    quantize_mx(flat_dst, src.reshape(32, 64), flat_sc, fmt="float8_e4m3fn_x4")
    assert np.array_equal(dst.reshape(32, 16), flat_dst) and np.array_equal(sc.reshape(4, 16), flat_sc)
    assert flat_dst.any() and flat_sc.any()


def test_nc_matmul_mx_flattens_free_dims():
    """[P, 1, F] operands and scales (nki-library's mlp_tkg gate_up projection) multiply as [P, F]. Reference: every
    element is e4m3fn 1.0 (0x38), so out[m, n] = 32 * sum_g 2^(s[g, m] - 127) * 2^(t[g, n] - 127), exact in fp32 for
    exponents in -2..2."""
    from emulator.engines.pe import nc_matmul_mx

    rng = np.random.default_rng(4)
    M, N = 16, 8
    st = np.full((128, 1, M), 0x38383838, np.uint32)
    mv = np.full((128, 1, N), 0x38383838, np.uint32)
    s = rng.integers(125, 130, (16, M)).astype(np.uint8)
    t = rng.integers(125, 130, (16, N)).astype(np.uint8)
    out = np.zeros((M, N), np.float32)
    nc_matmul_mx(out, st, mv, s.reshape(16, 1, M), t.reshape(16, 1, N), stationary_fmt="float8_e4m3fn_x4",
                 moving_fmt="float8_e4m3fn_x4")
    e, f = s.astype(np.float64) - 127, t.astype(np.float64) - 127
    want = 32 * sum(np.exp2(e[g][:, None] + f[g][None, :]) for g in range(16))
    assert np.array_equal(out, want.astype(np.float32))
