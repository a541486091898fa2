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


def run_simulator_inference(kernel_func, kernel_input: dict, lnc_count: int, goldens: dict) -> list:
    """The outputs converted to their goldens' dtypes with np.asarray, as nki-library's run_simulator_inference
    does (a golden that is the float32 view of packed x4 words asks for the words' bits)."""
    outputs = simulate_kernel(kernel_func, kernel_input, lnc_count)
    return [out if want is None else np.asarray(out, dtype=want.dtype) for out, want in zip(outputs, goldens.values())]
