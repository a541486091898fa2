"""The DMA engines' instructions on NumPy arrays: ``dma_copy`` and ``dma_transpose`` (destination first).

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

__all__ = ["dma_copy", "dma_transpose", "TRANSPOSE_AXES", "oob_name"]

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
