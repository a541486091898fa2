"""Cases shared by the MPI script and the test that checks it against the in-process backend."""

import ml_dtypes
import numpy as np

CASES = [
    ("ring_bf16", "all_reduce", dict(algorithm="ring"), ml_dtypes.bfloat16, 1003),
    ("ring_sr_bf16", "all_reduce", dict(algorithm="ring", rounding="sr", seed=7, site=3), ml_dtypes.bfloat16, 517),
    ("tree_fp16_2ch", "all_reduce", dict(algorithm="tree", channels=2), np.float16, 300),
    ("rd_fp8", "all_reduce", dict(algorithm="recursive_doubling"), ml_dtypes.float8_e4m3fn, 64),
    ("rh_max_f32", "all_reduce", dict(algorithm="recursive_halving", op="max"), np.float32, 96),
    ("mesh_rs_e5m2", "reduce_scatter", dict(algorithm="mesh", dma_inputs=3), ml_dtypes.float8_e5m2, 64),
    ("hier_bf16", "all_reduce", dict(algorithm="hierarchical", server_ranks=2), ml_dtypes.bfloat16, 200),
    ("reduce_root1", "reduce", dict(algorithm="ring", root=1), ml_dtypes.bfloat16, 40),
    ("gather", "all_gather", {}, ml_dtypes.bfloat16, 16),
    ("a2a", "all_to_all", {}, np.float32, 32),
    ("bcast", "broadcast", dict(root=1), np.float16, 10),
]


def case_data(rank, count, dtype):
    rng = np.random.default_rng([17, rank])
    lim = 30.0 if np.dtype(dtype).itemsize == 1 else 1e3
    return np.clip(rng.standard_normal(count) * 8, -lim, lim).astype(np.float32).astype(dtype)
