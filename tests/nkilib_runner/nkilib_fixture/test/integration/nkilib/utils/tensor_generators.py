"""MX test data of the mini harness, drawn the way nki-library's harness draws it (per 8 x 4 scaling group, from
NumPy's global generator, in a Python loop): the reference for emulator/nki/nkilib/harness_speedups.py."""
from test.utils.mx_utils import NL_TO_DT_DTYPE, dequantize_mx_golden, get_mx_fp_max, get_mx_max_exp

import numpy as np
from neuron_dtypes import static_cast


def generate_stabilized_mx_data(mx_dtype, shape, val_range=1.0):
    """(float data, x4 words, E8M0 scales) of a [P, F] tile: uniform data over the format's range with one element
    of every 8 x 4 group at the format's largest exponent, so the group's scale survives a round trip."""
    assert shape[0] % 8 == 0 and shape[1] % 4 == 0, f"shape {shape} is not made of 8 x 4 groups"
    if val_range == 0:
        words, scales = static_cast(np.zeros(shape, np.float32), mx_dtype), np.zeros((shape[0] // 8, shape[1] // 4),
                                                                                      np.uint8)
        return np.zeros(shape), words, scales
    top, emax = get_mx_fp_max(mx_dtype), get_mx_max_exp(mx_dtype)
    data = (np.random.random(shape) * 2 - 1) * top
    for r0 in range(0, shape[0], 8):
        for c0 in range(0, shape[1], 4):
            dr = np.random.randint(0, 8 - 1)
            dc = np.random.randint(0, 4 - 1)
            sign = np.random.choice([-1, 1])
            frac = 1.0 + np.random.random() * 0.5
            data[r0 + dr, c0 + dc] = sign * frac * (2 ** emax)
    words = static_cast(data.astype(np.float32), NL_TO_DT_DTYPE.get(mx_dtype, mx_dtype))
    hi = min(255, int(np.log2(val_range / top) + 127))
    scales = np.random.randint(max(0, hi - 10), hi + 1, size=(shape[0] // 8, shape[1] // 4), dtype=np.uint8)
    return dequantize_mx_golden(words, scales), words, scales
