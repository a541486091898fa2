"""The DMA engines' instructions on NumPy arrays: ``dma_copy``, ``dma_transpose`` and ``dma_compute`` (destination
first).

``dma_copy`` moves ``src``'s elements into ``dst`` in row-major order (the element counts must match). Same dtypes
copy the bits; different dtypes convert ``src -> fp32 -> dst`` (NKI docs): floats widen exactly, integers round
to nearest fp32, and the fp32 -> ``dst`` step goes through :func:`emulator.engines.store.convert` with
``rounding_for("dma")`` (so ``saturate`` and DMA-side SR per ``sr_scope`` apply).

>>> import numpy as np, ml_dtypes
>>> from emulator.engines.dma import dma_copy, dma_transpose
>>> dst = np.empty((2, 2), ml_dtypes.bfloat16)
>>> dma_copy(dst, np.array([1.0, 2.0, 3.0, 1.0 + 2**-9], np.float32)).astype(np.float32)
array([[1., 2.],
       [3., 1.]], dtype=float32)
>>> dma_transpose(np.empty((3, 2), np.int32), np.arange(6, dtype=np.int32).reshape(2, 3))
array([[0, 3],
       [1, 4],
       [2, 5]], dtype=int32)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DtypeError, EmulatorError, ShapeError
from .store import convert

__all__ = ["dma_copy", "dma_transpose", "dma_compute", "TRANSPOSE_AXES", "MAX_COMPUTE_SRCS", "oob_name"]

#: most source tensors one dma_compute takes (NKI docs)
MAX_COMPUTE_SRCS = 16

#: the permutation dma_transpose applies for each source rank (NKI docs)
TRANSPOSE_AXES = {2: (1, 0), 3: (2, 1, 0), 4: (3, 1, 2, 0)}
_OOB = ("error", "skip")


def oob_name(oob_mode: Any, instr: str) -> str:
    """``oob_mode`` (an nki.isa.oob_mode member or its name) as ``"error"`` or ``"skip"``."""
    name = getattr(oob_mode, "name", oob_mode)
    if name not in _OOB:
        raise EmulatorError(f"{instr}: oob_mode {oob_mode!r} is not one of {', '.join(_OOB)}")
    return name


def _array(x: Any, role: str, instr: str) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise DtypeError(f"{instr}: {role} must be a NumPy array, got {type(x).__name__}")
    return x


def _fp32(src: np.ndarray) -> np.ndarray:
    """``src`` as fp32 values: floats widen exactly (fp32 stays), integers round to nearest."""
    return src if src.dtype == np.float32 else src.astype(np.float32)


def dma_copy(dst: np.ndarray, src: Any, oob_mode: Any = "error", dge_mode: Any = None, priority: Any = None,
             engine: Any = None, *, site: int = 0) -> np.ndarray:
    """``dst = src`` (row-major element order), converting ``src -> fp32 -> dst.dtype`` when the dtypes differ.

    ``site`` keys DMA-side stochastic rounding (the NeuronCore passes its SR site counter)."""
    instr = "dma_copy"
    dst = _array(dst, "dst", instr)
    src = np.asarray(src)
    oob_name(oob_mode, instr)
    if src.size != dst.size:
        raise ShapeError(f"{instr}: src has {src.size} elements {src.shape} and dst has {dst.size} {dst.shape}; "
                         "they must match")
    if src.shape != dst.shape:
        src = src.reshape(dst.shape)
    if src.dtype == dst.dtype:
        np.copyto(dst, src)
    else:
        dst[...] = convert(_fp32(src), dst.dtype, "dma", site)
    return dst


def dma_transpose(dst: np.ndarray, src: Any, axes: Any = None, priority: Any = None, dge_mode: Any = None,
                  oob_mode: Any = "error", *, site: int = 0) -> np.ndarray:
    """``dst = src.transpose(axes)``: axes (1, 0) for 2-D, (2, 1, 0) for 3-D, (3, 1, 2, 0) for 4-D (NKI's only
    permutations); ``src.dtype`` must equal ``dst.dtype`` (a bit-exact move)."""
    instr = "dma_transpose"
    dst = _array(dst, "dst", instr)
    src = np.asarray(src)
    oob_name(oob_mode, instr)
    want = TRANSPOSE_AXES.get(src.ndim)
    if want is None:
        raise ShapeError(f"{instr}: src is {src.ndim}-D {src.shape}; dma_transpose takes 2-D, 3-D or 4-D tiles")
    if axes is not None and tuple(int(a) for a in axes) != want:
        raise ShapeError(f"{instr}: axes {tuple(axes)} for a {src.ndim}-D src; the DMA engine supports only {want}")
    if src.dtype != dst.dtype:
        raise DtypeError(f"{instr}: src is {src.dtype} and dst is {dst.dtype}; dma_transpose needs src.dtype == "
                         "dst.dtype")
    out = src.transpose(want)
    if out.shape != dst.shape:
        raise ShapeError(f"{instr}: src {src.shape} transposes to {out.shape}; dst is {dst.shape}")
    np.copyto(dst, out)
    return dst


def dma_compute(dst: np.ndarray, srcs: Any, reduce_op: Any, scales: Any = None, unique_indices: bool = True,
                oob_mode: Any = "error", *, site: int = 0) -> np.ndarray:
    """``dst = srcs[0] + srcs[1] + ...`` element-wise in fp32 (row-major element order), rounded once to ``dst``.

    NKI docs: the DMA engines cast every source to fp32, combine them with ``reduce_op`` (only ``add``), each scaled
    by ``scales[i]`` (only 1.0), and cast the fp32 result to ``dst``'s dtype. The sum is taken left to right, each
    step rounded to fp32 (the order is not documented; with the same sources in the same order it is deterministic).
    ``dst`` may alias a source (read-modify-write): every source is read before ``dst`` is written.

    >>> import numpy as np, ml_dtypes
    >>> a = np.array([[1.0, 2.0]], ml_dtypes.bfloat16); b = np.array([[2.0**-9, 3.0]], np.float32)
    >>> dma_compute(np.empty((1, 2), np.float32), [a, b], "add")
    array([[1.0019531, 5.       ]], dtype=float32)
    """
    instr = "dma_compute"
    dst = _array(dst, "dst", instr)
    oob_name(oob_mode, instr)
    op = getattr(reduce_op, "__name__", getattr(reduce_op, "name", reduce_op))
    if op != "add":
        raise EmulatorError(f"{instr}: reduce_op {reduce_op!r}; the DMA engines support only nl.add")
    if not isinstance(srcs, (list, tuple)) or not 1 <= len(srcs) <= MAX_COMPUTE_SRCS:
        raise ShapeError(f"{instr}: srcs must be a list of 1..{MAX_COMPUTE_SRCS} tensors, got {srcs!r:.80}")
    if scales is not None:
        scales = list(scales)
        if len(scales) != len(srcs) or any(float(s) != 1.0 for s in scales):
            raise EmulatorError(f"{instr}: scales {scales} must be one 1.0 per source (the only scale supported)")
    acc = None
    for i, src in enumerate(srcs):
        src = np.asarray(src)
        if src.size != dst.size:
            raise ShapeError(f"{instr}: srcs[{i}] has {src.size} elements {src.shape} and dst has {dst.size} "
                             f"{dst.shape}; they must match")
        v = _fp32(src).reshape(dst.shape)
        with np.errstate(over="ignore", invalid="ignore"):  # inf / NaN are results, as on the engine
            acc = v.copy() if acc is None else np.add(acc, v, dtype=np.float32)  # fp32 add, rounded each step
    if dst.dtype == np.float32:
        np.copyto(dst, acc)
    else:
        dst[...] = convert(acc, dst.dtype, "dma", site)
    return dst
