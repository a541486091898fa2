"""MX golden of the mini harness, with the pre-Neuron-2.31 scale rule nki-library's goldens of that era use: the
shared exponent of an 8 partitions x 4 elements group is the largest element exponent minus the format's Emax."""
import neuron_dtypes as dt
import nki.language as nl
import numpy as np

EMAX = {nl.float8_e4m3fn_x4: 8, nl.float8_e5m2_x4: 15}


def quantize_mx_golden(in_tensor, out_x4_dtype):
    """(x4 words [P, F/4], E8M0 scales [P/8, F/4]) of a float32 [P, F] tile."""
    P, F = in_tensor.shape
    exps = (np.asarray(in_tensor, np.float32).view(np.uint32) >> 23 & 0xFF).astype(np.int32)
    shared = exps.reshape(P // 8, 8, F // 4, 4).max(axis=(1, 3)) - EMAX[out_x4_dtype]
    factor = np.exp2(shared.astype(np.float64) - 127).repeat(8, axis=0).repeat(4, axis=1)
    return dt.static_cast((in_tensor / factor).astype(np.float32), out_x4_dtype), shared.astype(np.uint8)


NL_TO_DT_DTYPE = {}  # the real harness maps front-end dtypes to neuron_dtypes ones; the stand-ins share them
MAX_FINITE = {nl.float8_e4m3fn_x4: 448.0, nl.float8_e5m2_x4: 57344.0, nl.float4_e2m1fn_x4: 6.0}
EMAX[nl.float4_e2m1fn_x4] = 2


def get_mx_fp_max(x4_dtype):
    return MAX_FINITE[x4_dtype]


def get_mx_max_exp(x4_dtype):
    return EMAX[x4_dtype]


def dequantize_mx_golden(words, scales):
    """float32 [P, 4 F] values of x4 words [P, F] with E8M0 scales [P/8, F] (one per 8 x 4 group)."""
    values = np.asarray(dt.static_cast(words, np.float32), np.float32)
    factor = np.exp2(scales.astype(np.float64) - 127).repeat(8, axis=0).repeat(4, axis=1)
    return (values * factor).astype(np.float32)
