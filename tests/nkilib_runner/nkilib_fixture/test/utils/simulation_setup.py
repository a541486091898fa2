"""Aliases nki to the CPU simulator's modules, as nki-library's test/utils/simulation_setup.py does."""
import builtins
import sys

import numpy as np

import nki_cpu_simulator.nki.builtin as sim_builtin
import nki_cpu_simulator.nki.compiler as sim_ncc
import nki_cpu_simulator.nki.isa as sim_nisa
import nki_cpu_simulator.nki.isa.constants as sim_nisa_constants
import nki_cpu_simulator.nki.language as sim_nl
import nki_cpu_simulator.nki.language.dtypes as sim_dtypes
import nki_cpu_simulator.nki.tensor as sim_ntensor
import nki_cpu_simulator.nki.typing as sim_nt
from nki_cpu_simulator import nki as sim_nki


def setup_simulation_mode():
    builtins.builtin = sim_builtin
    sys.modules["nki"] = sim_nki
    sys.modules["nki.language"] = sim_nl
    sys.modules["nki.isa"] = sim_nisa
    sys.modules["nki.isa.constants"] = sim_nisa_constants
    sys.modules["nki.typing"] = sim_nt
    sys.modules["nki.compiler"] = sim_ncc
    sys.modules["nki.dtype"] = sim_dtypes
    sys.modules["nki.tensor"] = sim_ntensor


def simulate_kernel(kernel_func, kernel_input: dict, lnc_count: int) -> list:
    import nki

    result = nki.cpu_simulate(kernel_func)[lnc_count](**kernel_input)
    if result is None:
        return []
    return list(result) if isinstance(result, (list, tuple)) else [result]


def infer_outputs(kernel_func, kernel_input: dict, lnc_count: int, goldens: dict) -> list:
    """The outputs converted to their goldens' dtypes with np.asarray, as nki-library's run_simulator_inference
    does (a golden that is the float32 view of packed x4 words asks for the words' bits)."""
    outputs = simulate_kernel(kernel_func, kernel_input, lnc_count)
    return [out if want is None else np.asarray(out, dtype=want.dtype) for out, want in zip(outputs, goldens.values())]


def run_simulator_inference(kernel_under_test) -> dict:
    """nki-library's shape of it: one rank, kernel_input as keyword arguments (a per-rank generator is not a mapping,
    which is the published harness's gap for multi-rank cases), outputs named and typed after the rank-0 golden."""
    from .common_dataclasses import normalize_golden_output

    cleaned = {k.removesuffix(".must_alias_input"): v for k, v in (kernel_under_test.kernel_input or {}).items()}
    outputs = simulate_kernel(kernel_under_test.kernel_func, cleaned,
                              kernel_under_test.compiler_input.logical_nc_config)
    goldens = normalize_golden_output(kernel_under_test.validation_args.golden_output)
    return {name: np.asarray(out, dtype=want.dtype) for (name, want), out in zip(goldens.items(), outputs)}
