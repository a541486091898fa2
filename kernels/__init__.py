"""Kernels that run on the emulator, written instruction by instruction the way a Trainium3 kernel is.

``matmul`` (fp32, tf32, bf16, fp16, fp8, MXFP8, MXFP4) and ``sparse_matmul`` (M:N structured sparsity). Each kernel
moves tiles HBM -> SBUF (``dma_copy``), feeds the Tensor Engine (``nc_matmul``, ``nc_matmul_mx``,
``nc_matmul_sparse``, transpose mode), accumulates in PSUM banks and copies the result back (``tensor_copy``,
``dma_copy``), as instructions of one :class:`~emulator.engines.core.NeuronCore` (engine/buffer rules, capacity and
uninitialised-read checks, SR sites and statistics are the core's). They are the long-hand twin of the one-call
``emu.matmul``: the tests check that both give the same bits.

The layout in ``../shared/DESIGN.md`` has kernels written against the NKI front end (``emulator.nki``), which sits
on the same core: ``core.memory.sbuf`` becomes ``nl.ndarray(..., buffer=nl.sbuf)``, ``core.nc_matmul`` becomes
``nisa.nc_matmul``.
"""

from ._tiling import KernelStats
from .matmul import matmul
from .sparse import sparse_matmul

__all__ = ["matmul", "sparse_matmul", "KernelStats"]
