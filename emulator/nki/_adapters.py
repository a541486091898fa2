"""Tensor Engine and DMA instructions on NkiTensor views, over the array-level engine functions.

Adapter for the period before the NeuronCore's own ``dma_copy`` / ``nc_matmul`` / ``nc_transpose`` methods exist
(see the report): buffer rules of the datapath reference section 1.3 checked here, operands read with the
uninitialised check, results written back through the views.
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..engines import tensor as _te
from ._fallback import store
from .tensor import NkiTensor

__all__ = ["ADAPTERS"]


def _need(t, role: str, instr: str, kinds: tuple, engine: str) -> NkiTensor:
    if not isinstance(t, NkiTensor):
        raise ShapeError(f"nisa.{instr}: {role} must be a tensor (nl.ndarray), got {type(t).__name__}")
    if t.kind not in kinds:
        raise ShapeError(f"nisa.{instr}: {role} is a {t.describe()}; the {engine} "
                         f"{'reads' if role != 'dst' else 'writes'} {' or '.join(k.upper() for k in kinds)} only")
    return t


def dma_copy(args: dict) -> None:
    dst = _need(args["dst"], "dst", "dma_copy", ("sbuf", "hbm"), "DMA")
    src = args["src"]
    if not isinstance(src, NkiTensor):  # a constant source (rare): broadcast it
        store(dst.arr, np.broadcast_to(np.float32(src), dst.shape), "dma")
        dst.mark_written()
        return
    _need(src, "src", "dma_copy", ("sbuf", "hbm"), "DMA")
    if src.size != dst.size:
        raise ShapeError(f"nisa.dma_copy: src {src.name}{list(src.shape)} has {src.size} elements, dst "
                         f"{dst.name}{list(dst.shape)} has {dst.size}")
    values = src.read("nisa.dma_copy src").reshape(dst.shape)
    out = np.empty(dst.shape, dst.dtype)
    store(out, values if values.dtype == dst.dtype else values.astype(np.float32), "dma")
    dst.write(out)


def dma_transpose(args: dict) -> None:
    dst = _need(args["dst"], "dst", "dma_transpose", ("sbuf", "hbm"), "DMA")
    src = _need(args["src"], "src", "dma_transpose", ("sbuf", "hbm"), "DMA")
    axes = args.get("axes") or tuple(reversed(range(src.ndim)))
    values = np.transpose(src.read("nisa.dma_transpose src"), axes)
    if values.shape != dst.shape:
        raise ShapeError(f"nisa.dma_transpose: the transposed src is {list(values.shape)}, dst is {list(dst.shape)}")
    out = np.empty(dst.shape, dst.dtype)
    dst.write(store(out, values if values.dtype == dst.dtype else values.astype(np.float32), "dma"))


def nc_matmul(args: dict) -> None:
    dst = _need(args["dst"], "dst", "nc_matmul", ("psum",), "Tensor Engine")
    st = _need(args["stationary"], "stationary", "nc_matmul", ("sbuf",), "Tensor Engine")
    mv = _need(args["moving"], "moving", "nc_matmul", ("sbuf",), "Tensor Engine")
    acc = args["accumulate"]
    if acc is None:  # NKI: the first write to a PSUM location overwrites, later ones accumulate
        w = dst.written_view()
        acc = bool(w.all()) if w.dtype == np.bool_ else bool(dst.base.written.reshape(-1)[w].all())
    perf = getattr(args["perf_mode"], "value", args["perf_mode"])
    res = _te.nc_matmul(
        st.read("nisa.nc_matmul stationary"), mv.read("nisa.nc_matmul moving"),
        psum=np.array(dst.arr) if acc else None, psum_dtype="bfloat16" if dst.dtype.name == "bfloat16" else
        "float32", accumulate=acc, is_transpose=bool(args["is_transpose"]),
        tile_position=args["tile_position"] or None, tile_size=args["tile_size"] or None,
        perf_mode=None if perf in (None, "none") else perf,
        is_stationary_onezero=bool(args["is_stationary_onezero"]), is_moving_onezero=bool(args["is_moving_onezero"]))
    if res.shape != dst.shape:
        raise ShapeError(f"nisa.nc_matmul: the product is {list(res.shape)} but dst {dst.name} is {list(dst.shape)}")
    dst.write(res if res.dtype == dst.dtype else store(np.empty(dst.shape, dst.dtype), res, "psum"))


def nc_transpose(args: dict) -> None:
    engine = getattr(args["engine"], "name", args["engine"]) or "unknown"
    engine = "tensor" if engine in ("unknown", None) else engine
    data = args["data"]
    dst = args["dst"]
    if engine == "tensor":
        _need(dst, "dst", "nc_transpose", ("psum",), "Tensor Engine")
        _need(data, "data", "nc_transpose", ("sbuf",), "Tensor Engine")
    res = _te.nc_transpose(data.read("nisa.nc_transpose data"), engine=engine)
    if res.shape != tuple(dst.shape):
        res = res.reshape(dst.shape) if res.size == dst.size else res
    if res.shape != dst.shape:
        raise ShapeError(f"nisa.nc_transpose: the transpose is {list(res.shape)}, dst is {list(dst.shape)}")
    dst.write(res if res.dtype == dst.dtype else store(np.empty(dst.shape, dst.dtype), res.astype(np.float32)))


ADAPTERS = {"dma_copy": dma_copy, "dma_transpose": dma_transpose, "nc_matmul": nc_matmul,
            "nc_transpose": nc_transpose}
