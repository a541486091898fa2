"""Every Vector / Scalar / GpSimd compute instruction in one table, for the NeuronCore's generic dispatch.

``INSTRUCTIONS[name]`` is an :class:`~emulator.engines.operands.Instruction`: the array-level function, the
engines allowed (first = default), the parameter names read / written, and the engine state the call needs
(``regs=`` a :class:`~emulator.engines.operands.ReduceRegisters`, ``state=`` an
:class:`~emulator.engines.rng.EngineRNG`).

>>> from emulator.engines.compute import INSTRUCTIONS
>>> INSTRUCTIONS["activation"].engines, INSTRUCTIONS["iota"].engines
(('scalar',), ('gpsimd',))
"""

from __future__ import annotations

from . import gpsimd, gpsimd_index, rng, scalar, vector, vector_accumulate, vector_select
from .operands import Instruction

__all__ = ["INSTRUCTIONS", "Instruction"]

INSTRUCTIONS: dict[str, Instruction] = {
    **vector.INSTRUCTIONS, **vector_select.INSTRUCTIONS, **gpsimd.INSTRUCTIONS, **gpsimd_index.INSTRUCTIONS, **scalar.INSTRUCTIONS,
    **rng.INSTRUCTIONS, **vector_accumulate.INSTRUCTIONS,
}
