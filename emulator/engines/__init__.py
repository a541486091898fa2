"""The NeuronCore engines: memory and views, the Vector/Scalar/GpSimd/Tensor/DMA instructions, the core that runs
them, hardware limits, accumulation models and cost estimates.

``NeuronCore`` and ``lnc_group`` are imported on first use (``emu.engines.NeuronCore()``).
"""

from __future__ import annotations

import importlib

__all__ = ["NeuronCore", "lnc_group", "limits"]


def __getattr__(name: str):
    if name in ("NeuronCore", "lnc_group"):
        return getattr(importlib.import_module("emulator.engines.core"), name)
    if name == "limits":
        return importlib.import_module("emulator.engines.limits")
    raise AttributeError(f"module 'emulator.engines' has no attribute {name!r}")
