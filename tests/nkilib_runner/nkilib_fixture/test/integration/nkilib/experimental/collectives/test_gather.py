"""Multi-rank cases shaped like nki-library's experimental/collectives tests: per-rank inputs and goldens, an LNC=2
launch per rank, and a shared input dict whose golden is checked on rank 0 only."""
import numpy as np
import pytest
from nki.collectives import ReplicaGroup

from nkilib_src.mini.gather import gather_columns, reduce_hbm
from test.utils.common_dataclasses import (CompilerArgs, InferenceArgs, KernelArgs, PerRankLazyGoldenGenerator,
                                           PerRankLazyInputGenerator, ValidationArgs)
from test.utils.test_orchestrator import Orchestrator


@pytest.mark.parametrize("ranks,lnc,rows", [(4, 1, 128), (2, 2, 256)])
def test_gather_columns(ranks, lnc, rows):
    x = np.random.default_rng(ranks).standard_normal((ranks, rows, 32)).astype(np.float32)
    group = ReplicaGroup([list(range(ranks))])
    Orchestrator().run_case(KernelArgs(
        kernel_func=gather_columns,
        compiler_input=CompilerArgs(logical_nc_config=lnc),
        kernel_input=PerRankLazyInputGenerator(lambda rank_id: {"inp": x[rank_id], "replica_group": group,
                                                                "ranks": ranks}),
        inference_args=InferenceArgs(collective_ranks=ranks),
        validation_args=ValidationArgs(golden_output=PerRankLazyGoldenGenerator(
            lambda rank_id: {"out": np.concatenate(list(x), axis=1)})),
    ))


def test_reduce_hbm_shared_inputs():
    x = np.arange(64 * 8, dtype=np.float32).reshape(64, 8)
    Orchestrator().run_case(KernelArgs(
        kernel_func=reduce_hbm,
        compiler_input=CompilerArgs(logical_nc_config=2),
        kernel_input={"inp": x, "replica_group": ReplicaGroup([[0, 1]])},
        inference_args=InferenceArgs(collective_ranks=2),
        validation_args=ValidationArgs(golden_output={"out": x * 2}),
    ))
