"""Cases shared by the MPI script and the test that checks it against the in-process backend."""

import hashlib

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
    # Movement with per-rank routing: pairs and groups cross process boundaries in both layouts (4x1, 2x2), stay
    # inside a process in 2x2, and leave a rank with nothing to receive (None). A tuple count gives rank r
    # count[r] elements (zero included).
    ("permute", "collective_permute", dict(source_target_pairs=[(3, 0), (0, 2), (2, 3)]), np.float16, 12),
    ("permute_ring", "collective_permute_implicit", dict(shift=3), ml_dtypes.bfloat16, 9),
    ("permute_ring_groups", "collective_permute_implicit", dict(replica_group=[[0, 3], [2, 1]]), np.float32, 5),
    ("gather_v", "all_gather_v", {}, ml_dtypes.bfloat16, (5, 0, 9, 3)),
    ("gather_v_groups", "all_gather_v", dict(replica_group=[[1, 2], [3, 0]]), ml_dtypes.float8_e4m3fn, (4, 7, 1, 2)),
    ("a2a_v", "all_to_all_v", dict(send_counts=[[1, 2, 0, 3], [2, 2, 2, 2], [0, 0, 5, 1], [4, 0, 1, 0]]),
     np.float32, (6, 8, 7, 5)),
    ("a2a_v_displs_groups", "all_to_all_v", dict(send_counts=[[1, 1], [2, 0]], send_displs=[[3, 0], [1, 0]],
                                                  replica_group=[[0, 2], [3, 1]]), np.float16, 4),
]

# Invalid calls: every process must raise the in-process backend's ShapeError (same text) before any data moves,
# including processes that do not host the offending rank.
ERROR_CASES = [
    ("a2a_v_overflow", "all_to_all_v", dict(send_counts=[[0] * 4] * 3 + [[0, 0, 1, 5]]), np.float32, (6, 8, 7, 5)),
    ("permute_twice", "collective_permute", dict(source_target_pairs=[(0, 1), (2, 1)]), np.float16, 4),
    ("permute_range", "collective_permute", dict(source_target_pairs=[(0, 4)]), np.float16, 4),
]


def case_data(rank, count, dtype):
    count = count[rank] if isinstance(count, tuple) else count
    rng = np.random.default_rng([17, rank])
    lim = 30.0 if np.dtype(dtype).itemsize == 1 else 1e3
    return np.clip(rng.standard_normal(count) * 8, -lim, lim).astype(np.float32).astype(dtype)


def digest(results):
    """SHA-256 over every rank's result in rank order: dtype, shape and bytes, and a marker for a ``None``."""
    h = hashlib.sha256()
    for r in results:
        if r is None:
            h.update(b"None;")
        else:
            r = np.ascontiguousarray(r)
            h.update(f"{r.dtype}{r.shape};".encode())
            h.update(r.tobytes())
    return h.hexdigest()
