"""The case description of nki-library's harness, reduced to what its simulation path and multi-rank cases use."""
from dataclasses import dataclass, field
from typing import Any, Callable

INF_ARTIFACT_DIR_NAME = "infer_result"


@dataclass
class PerRankLazyGenerator:
    generator: Callable
    cache: dict = field(default_factory=dict)

    def for_rank(self, rank_id: int) -> dict:
        if rank_id not in self.cache:
            self.cache[rank_id] = self.generator(rank_id=rank_id)
        return self.cache[rank_id]


class PerRankLazyInputGenerator(PerRankLazyGenerator):
    """Inputs per rank (a collectives case)."""


class PerRankLazyGoldenGenerator(PerRankLazyGenerator):
    """Goldens per rank (a collectives case)."""


@dataclass
class CompilerArgs:
    logical_nc_config: int = 1


@dataclass
class InferenceArgs:
    collective_ranks: int = 1


@dataclass
class ValidationArgs:
    golden_output: Any = None


@dataclass
class KernelArgs:
    kernel_func: Callable
    compiler_input: CompilerArgs = field(default_factory=CompilerArgs)
    kernel_input: Any = None
    inference_args: InferenceArgs = field(default_factory=InferenceArgs)
    validation_args: ValidationArgs = field(default_factory=ValidationArgs)


def normalize_golden_output(golden_output, rank_id: int = 0) -> dict:
    if isinstance(golden_output, PerRankLazyGoldenGenerator):
        return golden_output.for_rank(rank_id)
    return golden_output
