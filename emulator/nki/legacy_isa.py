"""``neuronxcc.nki.isa``: the ISA of NKI 0.1-0.2, where an instruction *returns* its result tile.

Every ``nki.isa`` instruction is here. The ones that had a tile-returning form also accept it: a call that does
not bind to the destination-first signature (no ``dst``) is bound to the old parameter list, a result tile is
allocated (SBUF, or PSUM for the Tensor Engine) with the old ``dtype=`` or the input's dtype, the current
instruction runs into it, and the tile is returned. ``mask=`` (old predicated execution) is accepted only as None.

>>> import numpy as np
>>> from emulator.nki import legacy_isa as nisa, language as nl
>>> a = nl.full((2, 4), 3.0, nl.float32)
>>> np.asarray(nisa.tensor_scalar(a, nl.multiply, 2.0)).tolist()[0]
[6.0, 6.0, 6.0, 6.0]
"""

from __future__ import annotations

import inspect

from ..errors import ShapeError
from . import isa as _isa
from .isa import *  # noqa: F401,F403 (every current instruction and enum)
from .isa import __all__ as _isa_all

__all__ = list(_isa_all)

#: instruction -> (old parameter list, result (shape, dtype, buffer) from the bound old arguments)
_SAME = (lambda a, k: (a[k].shape, a.get("dtype") or a[k].dtype, "sbuf"))
_LEGACY = {
    "tensor_tensor": ("data1, data2, op, dtype=None, mask=None, engine=None", _SAME, "data1"),
    "tensor_scalar": ("data, op0, operand0, reverse0=False, op1=None, operand1=None, reverse1=False, dtype=None, "
                      "mask=None, engine=None", _SAME, "data"),
    "activation": ("op, data, bias=None, scale=1.0, reduce_op=None, reduce_res=None, reduce_cmd=None, dtype=None, "
                   "mask=None", _SAME, "data"),
    "tensor_copy": ("src, dtype=None, mask=None, engine=None", _SAME, "src"),
    "reciprocal": ("data, dtype=None, mask=None", _SAME, "data"),
    "dropout": ("data, prob, dtype=None, mask=None", _SAME, "data"),
    "tensor_tensor_scan": ("data0, data1, initial, op0, op1, reverse0=False, reverse1=False, dtype=None, mask=None",
                           _SAME, "data0"),
    "tensor_reduce": ("op, data, axis, dtype=None, negate=False, keepdims=False, mask=None",
                      lambda a, k: (_reduced(a), a.get("dtype") or a["data"].dtype, "sbuf"), "data"),
    "nc_matmul": ("stationary, moving, is_stationary_onezero=False, is_moving_onezero=False, is_transpose=False, "
                  "tile_position=(), tile_size=(), mask=None, perf_mode=None",
                  lambda a, k: ((a["stationary"].shape[1], a["moving"].shape[1]),
                                a["stationary"].dtype if a["is_transpose"] else "float32", "psum"), "stationary"),
    "nc_transpose": ("data, engine=None, dtype=None, mask=None",
                     lambda a, k: ((a["data"].shape[1], a["data"].shape[0]), a.get("dtype") or a["data"].dtype,
                                   "sbuf" if getattr(a["engine"], "name", a["engine"]) == "vector" else "psum"),
                     "data"),
    "dma_transpose": ("src, axes=None, dtype=None, mask=None",
                      lambda a, k: (a["src"].shape[::-1], a.get("dtype") or a["src"].dtype, "sbuf"), "src"),
    "bn_stats": ("data, dtype=None, mask=None", lambda a, k: ((a["data"].shape[0], 6), a.get("dtype") or "float32",
                                                              "sbuf"), "data"),
    "bn_aggr": ("data, dtype=None, mask=None", lambda a, k: ((a["data"].shape[0], 2), a.get("dtype") or "float32",
                                                             "sbuf"), "data"),
    "max8": ("src, dtype=None, mask=None", lambda a, k: ((a["src"].shape[0], 8), a.get("dtype") or a["src"].dtype,
                                                         "sbuf"), "src"),
    "tensor_partition_reduce": ("op, data, dtype=None, mask=None",
                                lambda a, k: ((1,) + a["data"].shape[1:], a.get("dtype") or a["data"].dtype, "sbuf"),
                                "data"),
    "nc_find_index8": ("data, vals, dtype=None, mask=None",
                       lambda a, k: ((a["data"].shape[0], 8), a.get("dtype") or "uint32", "sbuf"), "data"),
    "nc_match_replace8": ("data, vals, imm, dst_idx=None, dtype=None, mask=None", _SAME, "data"),
    "local_gather": ("src_buffer, index, num_elem_per_idx=1, num_valid_indices=None, mask=None",
                     lambda a, k: ((a["src_buffer"].shape[0], _valid_indices(a), a["num_elem_per_idx"]),
                                   a["src_buffer"].dtype, "sbuf"), "src_buffer"),
    "sequence_bounds": ("segment_ids, dtype=None, mask=None",
                        lambda a, k: ((a["segment_ids"].shape[0], 2, a["segment_ids"].shape[-1]),
                                      a.get("dtype") or a["segment_ids"].dtype, "sbuf"), "segment_ids"),
    "memset": ("shape, value, dtype, mask=None, engine=None", lambda a, k: (tuple(a["shape"]), a["dtype"], "sbuf"),
               None),
}


#: calls whose old positional form also binds to the new signature: new only when this argument is a tensor
_TENSOR_ARG = {"local_gather": "index"}


def _valid_indices(args) -> int:
    """local_gather's default ``num_valid_indices``: all indices of one GpSimd core's 16-partition slice."""
    if args["num_valid_indices"] is not None:
        return int(args["num_valid_indices"])
    index = args["index"]
    size = 1
    for d in index.shape[1:]:
        size *= d
    return size * 16


def _reduced(args) -> tuple:
    from ._nlops import reduced_shape

    _, shape = reduced_shape(args["data"], args["axis"], args["keepdims"])
    return shape if len(shape) > 1 else shape + (1,)


def _make(name: str, params: str, rule, key):
    current = getattr(_isa, name)
    new_sig = inspect.signature(current)
    tensor_arg = _TENSOR_ARG.get(name)
    old_sig = inspect.signature(eval(f"lambda {params}: None"))  # noqa: S307 (our own table)

    def instruction(*args, **kwargs):
        try:
            new = new_sig.bind(*args, **kwargs)
        except TypeError:
            pass
        else:
            if tensor_arg is None or hasattr(new.arguments.get(tensor_arg), "shape"):
                return current(*args, **kwargs)
        bound = old_sig.bind(*args, **kwargs)
        bound.apply_defaults()
        old = dict(bound.arguments)
        if old.pop("mask", None) is not None:
            raise ShapeError(f"nisa.{name}(mask=...): predicated (masked) execution of NKI 0.1 is not emulated")
        shape, dtype, buffer = rule(old, key)
        from . import language as nl

        dst = nl.ndarray(shape, dtype, buffer=getattr(nl, buffer))
        call = {k: v for k, v in old.items() if k in new_sig.parameters and k not in ("dtype", "shape")
                and not (k == "engine" and v is None) and not (k == "reduce_cmd" and v is None)
                and not (k == "perf_mode" and v is None)}
        current(dst, **call)
        return dst

    instruction.__name__ = instruction.__qualname__ = name
    instruction.__doc__ = (f"nki.isa.{name}: destination-first {new_sig}, or the NKI 0.1 form ({params}) "
                           "returning a new tile.")
    return instruction


for _name, (_params, _rule, _key) in _LEGACY.items():
    globals()[_name] = _make(_name, _params, _rule, _key)
del _name, _params, _rule, _key
