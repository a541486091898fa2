"""``nki.isa``: each instruction is a thin wrapper over the current NeuronCore, with NKI's exact signature.

The wrappers are generated from :data:`SIGNATURES` (parameter lists as in NKI's API stubs, so
``inspect.signature(nisa.nc_matmul)`` shows NKI's names and defaults). A call binds the arguments, then runs the
instruction on the core of the calling program (:func:`emulator.nki._launch.current_core`) with ``NkiTensor``
operands; the LNC and register instructions (``sendrecv``, ``core_barrier``, ``register_*``) are the front end's own.

>>> import inspect, numpy as np
>>> from emulator.nki import isa as nisa, language as nl
>>> list(inspect.signature(nisa.nc_matmul).parameters)[:4]
['dst', 'stationary', 'moving', 'is_stationary_onezero']
>>> nisa.get_nc_version() == nisa.nc_version.gen4
True
"""

from __future__ import annotations

from ..errors import EmulatorError
from . import _dispatch
from . import constants
from .constants import dge_mode, dma_engine, engine, matmul_perf_mode, nc_version, oob_mode, reduce_cmd
from ._launch import current_program

__all__ = ["SIGNATURES", "engine", "reduce_cmd", "dge_mode", "oob_mode", "matmul_perf_mode", "nc_version",
           "dma_engine", "constants", "get_nc_version", "get_nc_sub_version", "NkiValidationError", "VirtualRegister",
           "tensor_engine", "vector_engine", "scalar_engine", "gpsimd_engine", "unknown_engine"]

tensor_engine, vector_engine, scalar_engine = engine.tensor, engine.vector, engine.scalar
gpsimd_engine, unknown_engine = engine.gpsimd, engine.unknown

#: instruction -> NKI parameter list (NKI 0.5/0.6 API stubs; annotations left out)
SIGNATURES: dict[str, str] = {
    "dma_copy": "dst, src, priority=None, oob_mode=oob_mode.error, dge_mode=dge_mode.unknown, engine=engine.unknown, "
                "name=None",
    "tensor_copy": "dst, src, engine=engine.unknown, name=None",
    "memset": "dst, value, engine=engine.unknown, name=None",
    "tensor_copy_predicated": "dst, src, predicate, reverse_pred=False, name=None",
    "nc_matmul": "dst, stationary, moving, is_stationary_onezero=False, is_moving_onezero=False, is_transpose=False, "
                 "accumulate=None, tile_position=(), tile_size=(), perf_mode=matmul_perf_mode.none, name=None",
    "nc_matmul_mx": "dst, stationary, moving, stationary_scale, moving_scale, tile_position=None, tile_size=None, "
                    "accumulate=None, name=None",
    # not in NKI's stubs: the emulator's structured-sparse Tensor Engine instruction (moving [Kc, n/m, N])
    "nc_matmul_sparse": "dst, values, tags, moving, m, n, accumulate=None, name=None",
    "nc_transpose": "dst, data, engine=engine.unknown, name=None",
    "dma_transpose": "dst, src, axes=None, priority=None, dge_mode=dge_mode.unknown, oob_mode=oob_mode.error, "
                     "name=None",
    "tensor_tensor": "dst, data1, data2, op, engine=engine.unknown, name=None",
    "tensor_scalar": "dst, data, op0, operand0, reverse0=False, op1=None, operand1=None, reverse1=False, "
                     "engine=engine.unknown, name=None",
    "tensor_reduce": "dst, op, data, axis, negate=False, keepdims=False, name=None",
    "tensor_partition_reduce": "dst, op, data, name=None",
    "tensor_scalar_cumulative": "dst, src, op0, op1, imm0, imm1=None, reduce_cmd=reduce_cmd.reset_reduce, name=None",
    "activation": "dst, op, data, bias=None, scale=1.0, reduce_op=None, reduce_res=None, reduce_cmd=reduce_cmd.idle, "
                  "name=None",
    "activation_reduce": "dst, op, data, reduce_op, reduce_res, bias=None, scale=1.0, name=None",
    "activate2": "dst, op, data, imm0, imm1, op0, op1, relu_param=0.0, reverse0=False, reverse1=False, "
                 "reduce_op=None, reduce_res=None, reduce_cmd=reduce_cmd.idle, name=None",
    "iota": "dst, pattern, offset=0, channel_multiplier=0, name=None",
    "affine_select": "dst, pattern, channel_multiplier, on_true_tile, on_false_value, cmp_op='equal', offset=0, "
                     "name=None",
    "local_gather": "dst, src_buffer, index, num_elem_per_idx=1, num_valid_indices=None, name=None",
    "nc_n_gather": "dst, data, indices, name=None",
    "bn_stats": "dst, data, name=None",
    "bn_aggr": "dst, data, name=None",
    "tensor_tensor_scan": "dst, data0, data1, initial, op0, op1, reverse0=False, reverse1=False, name=None",
    "nc_stream_shuffle": "dst, src, shuffle_mask, name=None",
    "rng": "dst, engine=engine.vector, name=None",
    "dropout": "dst, data, prob, name=None",
    "set_rng_seed": "src_seeds, name=None",
    "rand_set_state": "src_seeds, engine=engine.gpsimd, name=None",
    "rand_get_state": "dst, engine=engine.gpsimd, name=None",
    "rand2": "dst, min, max, name=None",
    "exponential": "dst, src, max_value=0.0, reduce_res=None, reduce_cmd=reduce_cmd.idle, reduce_init=0.0, "
                   "name=None",
    "reciprocal": "dst, data, name=None",
    "max8": "dst, src, name=None",
    "sequence_bounds": "dst, segment_ids, name=None",
    "scalar_tensor_tensor": "dst, data, op0, operand0, op1, operand1, reverse0=False, reverse1=False, name=None",
    "tensor_scalar_reduce": "dst, data, op0, operand0, reduce_op, reduce_res=None, reverse0=False, "
                            "reduce_cmd=reduce_cmd.reset_reduce, reduce_init=None, reduce_res_negate=False, "
                            "name=None",
    "core_barrier": "data, cores, engine=engine.gpsimd, name=None",
    "dma_compute": "dst, srcs, reduce_op, scales=None, unique_indices=True, oob_mode=oob_mode.error, name=None",
    "quantize_mx": "dst, src, dst_scale, name=None",
    "range_select": "dst, on_true_tile, comp_op0, comp_op1, bound0, bound1, reduce_cmd=reduce_cmd.reset_reduce, "
                    "reduce_res=None, reduce_op='maximum', range_start=0, on_false_value=-3.4028235e38, name=None",
    "select_reduce": "dst, predicate, on_true, on_false, reduce_res=None, reduce_cmd=reduce_cmd.idle, "
                     "reduce_op='maximum', reverse_pred=False, name=None",
    "sendrecv": "src, dst, send_to_rank, recv_from_rank, pipe_id, dma_engine=dma_engine.dma, name=None",
    "register_alloc": "x=None",
    "register_move": "dst, src",
    "register_load": "dst, src",
    "register_store": "dst, src",
    "nc_find_index8": "dst, data, vals, name=None",
    "nc_match_replace8": "dst, data, vals, imm, dst_idx=None, name=None",
    "nonzero_with_count": "dst, src, index_offset=0, padding_val=-1, name=None",
    "topk": "val_dst, idx_dst, src, n, name=None",
}

_NAMESPACE = {"engine": engine, "reduce_cmd": reduce_cmd, "dge_mode": dge_mode, "oob_mode": oob_mode,
              "matmul_perf_mode": matmul_perf_mode, "dma_engine": dma_engine}


class NkiValidationError(EmulatorError, ValueError):
    """Raised when an instruction's arguments break a hardware rule (NKI's name for it)."""


def get_nc_version() -> nc_version:
    """The NeuronCore generation emulated: always ``nc_version.gen4`` (Trainium3)."""
    current_program()
    return nc_version.gen4


def get_nc_sub_version() -> int:
    """Silicon revision within the generation (0: the first)."""
    return 0


def _make(name: str, params: str):
    """A function with NKI's parameter list (real Python binding: no per-call signature work)."""
    names = [p.split("=")[0].strip() for p in params.split(",") if p.strip()]
    source = (f"def {name}({params}):\n"
              f"    return _run({{{', '.join(f'{n!r}: {n}' for n in names)}}})\n")
    namespace = dict(_NAMESPACE, _run=_dispatch.runner(name))
    exec(compile(source, __file__, "exec"), namespace)  # noqa: S102 (our own table of NKI parameter lists)
    fn = namespace[name]
    fn.__module__ = __name__
    fn.__doc__ = f"nki.isa.{name}({params}) on the current NeuronCore (NKI semantics; see NKI's docs)."
    return fn


for _name, _params in SIGNATURES.items():
    globals()[_name] = _make(_name, _params)
    __all__.append(_name)
VirtualRegister = _dispatch.VirtualRegister
del _name, _params
