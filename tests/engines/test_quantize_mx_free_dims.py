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
