"""Per-engine statistics of a NeuronCore: instructions, elements, bytes and estimated cycles (reference 7.4).

>>> from emulator.engines.stats import Stats
>>> s = Stats(); s["vector"].instructions += 1; s["vector"].cycles += 1200
>>> s.estimated_us()
1.0
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from . import cost as _cost
from .instructions import READS

__all__ = ["EngineStats", "Stats", "COMPUTE_ENGINES", "instruction_cycles"]

COMPUTE_ENGINES = frozenset({"vector", "scalar", "gpsimd"})
_GHZ = {"tensor": _cost.PE_GHZ, "vector": _cost.VECTOR_GHZ, "scalar": _cost.VECTOR_GHZ,
        "gpsimd": _cost.VECTOR_GHZ, "dma": _cost.VECTOR_GHZ}


class EngineStats:
    """What one engine did: instructions, elements written, bytes read + written, estimated cycles."""

    __slots__ = ("instructions", "elements", "bytes", "cycles")

    def __init__(self) -> None:
        self.instructions = self.elements = self.bytes = self.cycles = 0

    def __repr__(self) -> str:
        return (f"EngineStats(instructions={self.instructions}, elements={self.elements}, bytes={self.bytes}, "
                f"cycles={self.cycles})")


class Stats:
    """Per-engine :class:`EngineStats`, instruction counts by name and DMA transfers per queue."""

    def __init__(self) -> None:
        self.engines = {name: EngineStats() for name in READS}
        self.instructions: dict[str, int] = {}
        self.dma_queues: Counter = Counter()

    def __getitem__(self, engine: str) -> EngineStats:
        return self.engines[engine]

    def estimated_us(self) -> float:
        """The busiest engine's estimated time (engines overlap)."""
        return max(s.cycles / _GHZ[e] / 1e3 for e, s in self.engines.items())

    def summary(self) -> str:
        rows = [f"{e:7s} {s.instructions:7d} instr {s.elements:12d} elem {s.bytes:14d} B {s.cycles:12d} cycles"
                for e, s in self.engines.items() if s.instructions]
        return "\n".join(rows) or "no instructions"


def instruction_cycles(engine: str, dst: np.ndarray, nbytes: int) -> int:
    """Estimated cycles (reference 7.4) of the Tensor Engine (max(N, 64) per matmul, N = the dst free size) and of
    DMA (1.3 us fixed / 16 queues + bytes at 33 B/ns per queue, in 1.2 GHz cycles). Vector/Scalar/GpSimd: ~N per
    input tile + 64 overhead, computed inline in the dispatch."""
    if engine == "dma":
        ns = _cost.DMA_FIXED_NS / _cost.DMA_QUEUES + nbytes / (_cost.DMA_BYTES_PER_NS / _cost.DMA_QUEUES)
        return int(ns * _cost.VECTOR_GHZ)
    free = dst.size // dst.shape[0] if dst.ndim else 1
    return _cost.matmul_instruction_cycles(free, "bfloat16")
