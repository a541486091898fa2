"""Kernels that run on the emulator, written instruction by instruction the way a Trainium3 kernel is.

``matmul`` (fp32, tf32, bf16, fp16, fp8, MXFP8, MXFP4) and ``sparse_matmul`` (M:N structured sparsity). Each kernel
moves tiles HBM -> SBUF, feeds the Tensor Engine (``nc_matmul``, ``nc_matmul_mx``, transpose mode),
accumulates in PSUM banks and copies the result back, through the emulator's memory model (capacity and
uninitialised-read checks apply) and instruction API (``emulator.engines``). They are the long-hand twin of the
one-call ``emu.matmul``: the tests check that both give the same bits.

The layout in ``../shared/DESIGN.md`` has kernels written against the NKI front end (``emulator.nki``); that front
end is not built yet, so these use the engine API it will sit on. Porting them is mechanical: ``mem.sbuf`` becomes
``nl.ndarray(..., buffer=nl.sbuf)``, ``emu.nc_matmul`` becomes ``nisa.nc_matmul``.
"""

from ._tiling import KernelStats
from .matmul import matmul
from .sparse import sparse_matmul

__all__ = ["matmul", "sparse_matmul", "KernelStats"]
