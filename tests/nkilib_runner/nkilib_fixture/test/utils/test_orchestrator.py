"""Runs a kernel through simulation and validates it, with the published Orchestrator's two defects; ``run_case``
follows the published flow for a KernelArgs case (inference into an artifact directory, one output_worker_<rank>
directory per rank when collective_ranks > 1, validation read back from the files)."""
import os
import tempfile
import types

import numpy as np

from .common_dataclasses import INF_ARTIFACT_DIR_NAME, PerRankLazyGoldenGenerator, normalize_golden_output
from .output_validator import validate
from .perf_analysis_private import analyze_trace  # noqa: F401 - this module is missing, as in the published repo


#: the --output-directory option (set at configure); each KernelArgs case dumps its artifacts in a directory of its
#: own there, as the published harness does (and leaves it behind)
OUTPUT_DIRECTORY = None


class Orchestrator:
    def execute(self, kernel, inputs: dict, goldens: dict, lnc: int = 1) -> None:
        from .simulation_setup import infer_outputs

        outputs = infer_outputs(kernel, inputs, lnc, goldens)
        if self._compiled_kernel is not None:  # read although only a compile path would set it
            raise AssertionError("no compile path in simulation")
        assert len(outputs) == len(goldens), f"kernel returned {len(outputs)} outputs, expected {len(goldens)}"
        validate(dict(zip(goldens, outputs)), goldens)

    # ---- the published flow for KernelArgs cases ----------------------------------------------------------------

    def run_case(self, case) -> None:
        self.fs_config = types.SimpleNamespace(artifacts_output_directory_path=tempfile.mkdtemp(
            prefix="out-mini_case_", dir=OUTPUT_DIRECTORY))
        path = self._run_simulator_inference(case)
        ranks = case.inference_args.collective_ranks
        golden = case.validation_args.golden_output
        for rank in range(ranks if isinstance(golden, PerRankLazyGoldenGenerator) else 1):
            want = normalize_golden_output(golden, rank)
            where = os.path.join(path, f"output_worker_{rank}") if ranks > 1 else path
            assert os.path.isdir(where), f"No output files found for rank {rank}"
            got = {name: np.fromfile(os.path.join(where, name + ".bin"), dtype=w.dtype).reshape(w.shape)
                   for name, w in want.items()}
            validate(got, want)

    def _run_simulator_inference(self, case):
        from .simulation_setup import run_simulator_inference

        outputs = run_simulator_inference(case)
        path = os.path.join(self.fs_config.artifacts_output_directory_path, INF_ARTIFACT_DIR_NAME)
        self.__dump_tensors__(path, outputs, lambda name: name)
        return path

    def __dump_tensors__(self, target_directory, tensors, name_fn):
        os.makedirs(target_directory, exist_ok=True)
        for name, value in tensors.items():
            with open(os.path.join(target_directory, name_fn(name) + ".bin"), "wb") as f:
                f.write(np.ascontiguousarray(value).tobytes())
