"""Row softmax written against NKI: ``y = exp(x - max) / sum(exp(x - max))`` over the last axis of ``x [N, F]``.

Rows on the partitions (128 per tile), the softmax axis on the free dimension. Per row tile:

1. ``dma_copy`` the ``[rows, F]`` tile into SBUF;
2. ``tensor_reduce(op=maximum, negate=True)``: ``-max`` per row, on the Vector Engine;
3. ``activation(op=exp, bias=-max, reduce_op=add, reduce_cmd=reset_reduce)``: the exponentials and their row sums
   in one Scalar Engine instruction (fp32); or, with ``vector_exp``, NeuronCore-v4's ``exponential`` on the Vector
   Engine (``max_value=max``, same running sum);
4. ``reciprocal`` of the sums, then ``tensor_scalar`` multiply, rounded once into the output dtype;
5. ``dma_copy`` back to HBM.
Launched as ``kernel[2]`` (LNC=2) the two cores take alternate row tiles (:func:`kernels.rmsnorm.row_tiles`).

>>> import numpy as np
>>> from kernels.softmax import softmax
>>> softmax(np.array([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]], np.float32)).astype(float).round(3).tolist()
[[0.25, 0.25, 0.25, 0.25], [0.366, 0.366, 0.134, 0.134]]
"""

from __future__ import annotations

import numpy as np

try:  # the real NKI on a Trainium host (or the emulator after emulator.nki.install())
    import nki
    import nki.isa as nisa
    import nki.language as nl
except ImportError:  # anywhere else: the emulator's NKI front end under the same names
    from emulator import nki
    from emulator.nki import isa as nisa, language as nl

from .rmsnorm import load_rows, row_tiles

__all__ = ["softmax_kernel", "row_exp", "softmax"]


def row_exp(src, rows, exp_dtype, vector_exp=False):
    """``exp(src - rowmax)`` of the first ``rows`` partitions of the SBUF tile ``src [P, F]``.

    Returns the exponentials (an SBUF ``[P, F]`` tile in ``exp_dtype``) and the reciprocals of their fp32 row sums
    (``[P, 1]`` fp32), so the caller decides where the normalising multiply goes: straight after (softmax) or after
    the PV matmul (attention). ``vector_exp``: NeuronCore-v4's Vector Engine ``exponential`` (``exp(src -
    max_value)`` with its running sum) instead of the Scalar Engine's ``activation(exp, bias=-max)``.
    """
    P, F = src.shape
    row_max = nl.ndarray((P, 1), dtype=nl.float32, buffer=nl.sbuf)
    nisa.tensor_reduce(dst=row_max[0:rows, :], op=nl.maximum, data=src[0:rows, :], axis=1, negate=not vector_exp)
    exps = nl.ndarray((P, F), dtype=exp_dtype, buffer=nl.sbuf)
    sums = nl.ndarray((P, 1), dtype=nl.float32, buffer=nl.sbuf)
    if vector_exp:
        nisa.exponential(dst=exps[0:rows, :], src=src[0:rows, :], max_value=row_max[0:rows, :],
                         reduce_res=sums[0:rows, :], reduce_cmd=nisa.reduce_cmd.reset_reduce)
    else:  # row_max holds -max: the activation's bias
        nisa.activation(dst=exps[0:rows, :], op=nl.exp, data=src[0:rows, :], bias=row_max[0:rows, :],
                        reduce_op=nl.add, reduce_res=sums[0:rows, :], reduce_cmd=nisa.reduce_cmd.reset_reduce)
    inv = nl.ndarray((P, 1), dtype=nl.float32, buffer=nl.sbuf)
    nisa.reciprocal(dst=inv[0:rows, :], data=sums[0:rows, :])
    return exps, inv


@nki.jit
def softmax_kernel(x, vector_exp=False):
    """Softmax over the last axis of ``x [N, F]`` (HBM); returns ``[N, F]`` in ``x.dtype``. ``vector_exp``: the
    exponentials on the Vector Engine (``nisa.exponential``, v4) instead of the Scalar Engine."""
    N, F = x.shape
    P = nl.tile_size.pmax
    out = nl.ndarray((N, F), dtype=x.dtype, buffer=nl.shared_hbm)
    for t in row_tiles(N, P):
        r0 = t * P
        rows = min(P, N - r0)
        x_sb = load_rows(x, r0, rows, P)
        exps, inv = row_exp(x_sb, rows, nl.float32, vector_exp)
        y_sb = nl.ndarray((P, F), dtype=x.dtype, buffer=nl.sbuf)
        nisa.tensor_scalar(dst=y_sb[0:rows, :], data=exps[0:rows, :], op0=nl.multiply, operand0=inv[0:rows, :])
        nisa.dma_copy(dst=out[r0:r0 + rows, :], src=y_sb[0:rows, :])
    return out


def softmax(x: np.ndarray, lnc: int = 1, vector_exp: bool = False) -> np.ndarray:
    """Host wrapper: softmax over the last axis of ``x [N, F]``, result in ``x.dtype``; ``lnc=2``: two cores;
    ``vector_exp``: exponentials by the Vector Engine's ``exponential``."""
    kernel = softmax_kernel[lnc] if lnc > 1 else softmax_kernel
    return np.asarray(kernel(np.ascontiguousarray(x), bool(vector_exp)))
