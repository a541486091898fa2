"""``nki.isa.constants``: the enums of the ISA (values as in NKI's API stubs).

>>> from emulator.nki.constants import nc_version, engine
>>> nc_version.gen4 > nc_version.gen3, engine.vector.value
(True, 5)
"""

from __future__ import annotations

from enum import Enum, IntEnum

__all__ = ["engine", "reduce_cmd", "dge_mode", "oob_mode", "matmul_perf_mode", "nc_version", "dma_engine"]


class engine(Enum):
    """The engine an instruction runs on (``unknown``: let the emulator pick, as the compiler would)."""

    unknown = 0
    tensor = 1
    scalar = 2
    gpsimd = 3
    dma = 4
    vector = 5
    sync = 6


class reduce_cmd(Enum):
    """What an instruction does with an engine's accumulator registers."""

    idle = 0
    reset = 1
    reduce = 2
    reset_reduce = 3
    load_reduce = 4


class dge_mode(Enum):
    unknown = 0
    swdge = 1
    hwdge = 2
    none = 3


class oob_mode(Enum):
    error = 0
    skip = 1


class matmul_perf_mode(Enum):
    none = "none"
    double_row = "double_row"


class nc_version(IntEnum):
    """NeuronCore generation: gen2 (trn1/inf2), gen3 (trn2), gen4 (trn3, the one emulated)."""

    gen2 = 2
    gen3 = 3
    gen4 = 4


class dma_engine(Enum):
    dma = 1
    gpsimd_dma = 2
