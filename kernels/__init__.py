"""Kernels written against NKI that run on the emulator, the way a Trainium3 kernel is written.

``matmul`` (fp32, tf32, bf16, fp16, fp8, MXFP8, MXFP4) and ``sparse_matmul`` (M:N structured sparsity) are NKI
kernels (``@nki.jit``: ``nisa.dma_copy`` HBM -> SBUF, ``nisa.nc_transpose``, ``nisa.nc_matmul`` /
``nc_matmul_mx`` / ``nc_matmul_sparse`` accumulating in PSUM tiles, ``nisa.tensor_copy`` back) behind host wrappers
with ``emu.matmul``'s arguments: the tests check that both give the same bits. The launch's instruction counts, DMA
bytes and peak SBUF/PSUM are in ``emulator.nki.last_report()``. The other modules (rmsnorm, layernorm, softmax,
attention, MXFP8/MXFP4 matmuls, cumsum, all-reduce) are imported by name.
"""

from .matmul import matmul
from .sparse import sparse_matmul

__all__ = ["matmul", "sparse_matmul"]
