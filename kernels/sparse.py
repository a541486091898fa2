"""Structured-sparse matmul kernel: ``a [M, K] @ b [K, N]`` with ``a`` M:N-sparse along K, on the sparse datapath.

The kernel runs the dense kernel's loop (:mod:`kernels.matmul`) with two changes:

* the stationary operand of each K tile is the transposed ``[k, m]`` tile of ``a`` (cast on load, transposed on
  the Tensor Engine), compressed along k (``emu.sparsity.compress``: ``m`` values of every ``n`` plus 4-bit tags)
  and kept in SBUF as values ``[Kc, m]`` and tag words ``[Kc, m/4]``;
* each ``nc_matmul_sparse`` takes 128 compressed partitions, which stand for ``128 * n / m`` logical rows of k, so
  a K tile is ``n / m`` times longer than the dense kernel's and a 2:4 operand needs half the instructions. The
  moving rows of one instruction are loaded as ``n / m`` SBUF tiles of 128 partitions (the device layout of a
  sparse moving operand is undocumented; the emulated instruction takes them in logical k order).

Pruned positions never meet the moving data, so NaN or inf in rows of ``b`` that only pruned positions select do
not reach the result (a dense matmul of the pruned operand gives NaN there). A group with fewer than ``m`` non-zeros
is compressed with some of its own zeros as kept values, and those positions do meet their rows of ``b``. For finite
data the result equals the dense kernel's on the pruned operand with the same K tiling, apart from the sign of an
exactly-zero sum.
"""

from __future__ import annotations

import numpy as np

import emulator as emu
from emulator.engines.matmul import matmul_format, matmul_operands
from emulator.numerics.block_formats import BlockFormat
from emulator.engines.core import NeuronCore
from emulator.engines.memory import Tensor

from ._tiling import TILE_K, KernelStats, Run, tiled, transposed_tile

__all__ = ["sparse_matmul"]


def sparse_matmul(a, b, m: int, n: int, fmt: str = "bfloat16", *, prune: bool = False, psum_dtype: str = "float32",
                  core: NeuronCore | None = None, stats: KernelStats | None = None) -> np.ndarray:
    """``a [M, K] @ b [K, N]`` with ``a`` m:n-sparse along K, run as ``nc_matmul_sparse`` instructions.

    Parameters
    ----------
    a, b : float arrays; ``a`` must hold at most ``m`` non-zeros in every ``n`` consecutive k of each row (an error
        names the first group that does not), unless ``prune=True`` prunes it first (``emu.sparsity.prune``: the
        ``m`` largest magnitudes of each group, in fp32, before the cast). A K that is not a multiple of ``n`` is
        padded with zero columns (rows of ``b``).
    m, n : the pattern: 4:16, 4:12, 4:8, 2:8, 2:4, 1:4 or 1:2.
    fmt : an ``nc_matmul`` input format (float32, tfloat32, bfloat16, float16, float8_e4m3fn, float8_e5m2,
        float8_e4m3); the sparse datapath has no MX form.
    psum_dtype, core, stats : as :func:`kernels.matmul`.

    Returns float32 ``[M, N]``.

    >>> import numpy as np, kernels
    >>> a = np.array([[0.0, 2.0, 0.0, -1.0]], np.float32); b = np.array([[np.nan], [1.0], [np.inf], [3.0]], np.float32)
    >>> kernels.sparse_matmul(a, b, 2, 4, "bfloat16")     # NaN and inf sit only in rows that pruned positions select
    array([[-1.]], dtype=float32)
    """
    desc = matmul_format(fmt)
    fmt = desc.name
    if isinstance(desc, BlockFormat):
        raise emu.ArgumentError(f"kernels.sparse_matmul: fmt {fmt!r} is an MX format; the sparse datapath takes the "
                         "nc_matmul formats (float32, tfloat32, bfloat16, float16, float8_*)")
    if psum_dtype not in ("float32", "bfloat16"):
        raise emu.ArgumentError(f"kernels.sparse_matmul: psum_dtype must be 'float32' or 'bfloat16', got {psum_dtype!r}")
    m, n = emu.sparsity.check_pattern(m, n)
    a, b = matmul_operands(a, b)
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    pad = -a.shape[1] % n
    if pad:
        a = np.concatenate([a, np.zeros((a.shape[0], pad), np.float32)], axis=1)
        b = np.concatenate([b, np.zeros((pad, b.shape[1]), np.float32)], axis=0)
    if prune:
        a = emu.sparsity.prune(a, m, n, axis=1)
    emu.sparsity.validate_m_n(a, m, n, axis=1, name="kernels.sparse_matmul: a")
    run = Run(core if core is not None else NeuronCore(), fmt, stats if stats is not None else KernelStats())
    tf32 = "tfloat32" if fmt == "tfloat32" else None

    def load_stationary(run: Run, a_h: Tensor, m0: int, m1: int, k0: int, k1: int, ident: Tensor):
        values, tags = emu.sparsity.compress(transposed_tile(run, a_h, m0, m1, k0, k1, ident), m, n, axis=0)
        run.stats.instructions["compress"] += 1
        return run.sbuf(values, f"st_values[{m0},{k0}]"), run.sbuf(tags, f"st_tags[{m0},{k0}]")

    def load_moving(run: Run, b_h: Tensor, k0: int, k1: int, n0: int, n1: int):
        return tuple(run.dma_in(b_h, (slice(j, min(k1, j + TILE_K)), slice(n0, n1)), f"b[{j},{n0}]")
                     for j in range(k0, k1, TILE_K))

    def issue(st, mv, acc, i):
        # the n/m moving tiles of one instruction stand for n/m * 128 logical rows: one operand of the datapath
        moving = np.concatenate([t.read("nc_matmul_sparse moving") for t in mv])
        run.core.nc_matmul_sparse(acc, st[0], st[1], moving, m, n, accumulate=i > 0, values_fmt=tf32,
                                  moving_fmt=tf32)

    return tiled(run, a, b, TILE_K * n // m, psum_dtype, load_stationary, load_moving, issue)
