"""Kernel arguments in and results out: NumPy / ml_dtypes / torch arrays <-> HBM tensors."""

from __future__ import annotations

import numpy as np

from .tensor import KernelArgumentHBM, NkiTensor

__all__ = ["from_host", "to_host"]

_TORCH_VIEWS = {"torch.bfloat16": ("int16", "bfloat16"), "torch.float8_e4m3fn": ("uint8", "float8_e4m3fn"),
                "torch.float8_e5m2": ("uint8", "float8_e5m2")}


def _torch_to_numpy(t) -> np.ndarray:
    from ._dtypes import as_dtype

    t = t.detach().cpu().contiguous()
    key = str(t.dtype)
    if key in _TORCH_VIEWS:
        import torch

        raw, fmt = _TORCH_VIEWS[key]
        return t.view(getattr(torch, raw)).numpy().view(as_dtype(fmt))
    return t.numpy()


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def from_host(x, core, name: str, host: dict, state: dict):
    """An HBM tensor holding ``x`` when ``x`` is an array (recursively through lists/tuples); else ``x``."""
    if isinstance(x, (list, tuple)):
        return type(x)(from_host(v, core, f"{name}[{i}]", host, state) for i, v in enumerate(x))
    if _is_torch(x):
        state["torch"] = True
        arr = _torch_to_numpy(x)
    elif isinstance(x, np.ndarray):
        arr = x
    else:
        return x
    if arr.ndim == 0:
        arr = arr.reshape(1)
    t = NkiTensor.allocate(core.memory, arr.shape, arr.dtype, KernelArgumentHBM(), name, value=arr)
    if isinstance(x, np.ndarray):
        host[id(x)] = (x, t)
    return t


def to_host(result, torch_out: bool = False):
    """NumPy copies of the HBM tensors in a kernel's result (tuples, lists and dicts kept)."""
    if isinstance(result, NkiTensor):
        if result.kind != "hbm":
            from ..errors import ShapeError

            raise ShapeError(f"the kernel returned {result.describe()}; a kernel's outputs are HBM tensors "
                             "(nl.ndarray(..., buffer=nl.shared_hbm)) written with nisa.dma_copy / nl.store")
        arr = np.array(result.arr)
        if torch_out:
            import torch

            name = str(arr.dtype)
            back = {"bfloat16": torch.bfloat16, "float8_e4m3fn": torch.float8_e4m3fn, "float8_e5m2": torch.float8_e5m2}
            if name in back:
                raw = np.int16 if name == "bfloat16" else np.uint8
                return torch.from_numpy(arr.view(raw)).view(back[name])
            return torch.from_numpy(arr)  # x4 words stay words (torch has no x4 dtypes)
        if result.t.x4:  # packed words come back in their x4 dtype, as the Neuron simulator returns them
            arr = arr.view(result.dtype)
        return arr
    if isinstance(result, (list, tuple)):
        return type(result)(to_host(r, torch_out) for r in result)
    if isinstance(result, dict):
        return {k: to_host(v, torch_out) for k, v in result.items()}
    return result
