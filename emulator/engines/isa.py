"""``emu.isa``: every NeuronCore instruction as a function on NumPy arrays, with NKI's names and keywords,
destination first (``dst`` is a NumPy / ml_dtypes array whose dtype is the output format, x4 types as their uint
words; it is written in place and returned).

Vector / Scalar / GpSimd compute instructions come from :mod:`~emulator.engines.vector`,
:mod:`~emulator.engines.vector_select`, :mod:`~emulator.engines.scalar`, :mod:`~emulator.engines.gpsimd` and
:mod:`~emulator.engines.rng` (RNG instructions take ``state=`` an :class:`~emulator.engines.rng.EngineRNG`); the
Tensor Engine and ``quantize_mx`` from :mod:`~emulator.engines.pe`; DMA from :mod:`~emulator.engines.dma`. To run
them on memory with engine/buffer checks and statistics, use :class:`emulator.engines.core.NeuronCore`.

>>> import numpy as np, ml_dtypes, emulator as emu
>>> dst = np.empty((1, 3), ml_dtypes.bfloat16)
>>> emu.isa.tensor_tensor(dst, np.array([[1., 2., 3.]], np.float32), np.array([[0.5, 0.5, 2**-9]], np.float32),
...                       "add").astype(np.float32)
array([[1.5, 2.5, 3. ]], dtype=float32)
>>> sorted(emu.isa.__all__)[:4]
['EngineRNG', 'activate2', 'activation', 'activation_reduce']
"""

from __future__ import annotations

from .compute import INSTRUCTIONS as _COMPUTE
from .dma import dma_copy, dma_transpose
from .pe import nc_matmul, nc_matmul_mx, nc_matmul_sparse, nc_transpose, quantize_mx
from .rng import EngineRNG

_TENSOR = {"nc_matmul": nc_matmul, "nc_matmul_mx": nc_matmul_mx, "nc_matmul_sparse": nc_matmul_sparse,
           "nc_transpose": nc_transpose, "quantize_mx": quantize_mx, "dma_copy": dma_copy,
           "dma_transpose": dma_transpose}

globals().update({name: entry.fn for name, entry in _COMPUTE.items() if name not in _TENSOR})

__all__ = sorted({*_COMPUTE, *_TENSOR, "EngineRNG"})
