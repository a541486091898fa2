"""The instruction table of the NeuronCore: for each instruction its array-level function (destination first),
the engines that may run it, the operands it reads and writes, the engine state it needs, and the buffers each
engine may read and write (reference section 1.3). :class:`~emulator.engines.core.NeuronCore` runs every entry
through one dispatch.

>>> from emulator.engines.instructions import INSTRUCTIONS, READS
>>> INSTRUCTIONS["nc_matmul"].engines, INSTRUCTIONS["nc_matmul"].reads, sorted(READS["gpsimd"])
(('tensor',), ('stationary', 'moving'), ['sbuf'])
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
from typing import Callable, Iterator, NamedTuple

import numpy as np

from ..config import get_settings
from ..errors import ArgumentTypeError, EmulatorError
from . import dma as _dma
from . import gpsimd_index as _gi
from . import pe as _pe
from . import vector as _vector
from . import vector_select as _vs
from .compute import INSTRUCTIONS as _COMPUTE
from .limits import MX_GROUP_PARTITIONS, QUADRANT
from .memory import Tensor

__all__ = ["zero_partner_rows", "mx_scale_rows", "scale_tile_rows", "matmul_zero_rows", "Spec", "INSTRUCTIONS",
           "READS", "WRITES", "MATMULS", "ConnectivityError", "bind", "buffer_message"]

#: buffers each engine reads / writes (reference section 1.3)
READS = {"tensor": frozenset({"sbuf"}), "vector": frozenset({"sbuf", "psum"}), "scalar": frozenset({"sbuf", "psum"}),
         "gpsimd": frozenset({"sbuf"}), "dma": frozenset({"hbm", "sbuf"})}
WRITES = {"tensor": frozenset({"psum"}), "vector": frozenset({"sbuf", "psum"}), "scalar": frozenset({"sbuf", "psum"}),
          "gpsimd": frozenset({"sbuf"}), "dma": frozenset({"hbm", "sbuf"})}
_RULE = {"tensor": "the Tensor Engine reads SBUF only and writes PSUM only",
         "vector": "the Vector Engine reads and writes SBUF and PSUM",
         "scalar": "the Scalar Engine reads and writes SBUF and PSUM",
         "gpsimd": "GpSimd reads and writes SBUF only (no PSUM)",
         "dma": "DMA moves data between HBM and SBUF (no PSUM)"}
#: instructions of which at most one of these inputs may sit in PSUM (reference section 1.3)
_ONE_PSUM = {"tensor_tensor": ("data1", "data2"), "tensor_tensor_scan": ("data0", "data1"),
             "scalar_tensor_tensor": ("data", "operand1"), "select_reduce": ("on_true", "on_false"),
             "tensor_copy_predicated": ("src", "predicate")}

class ConnectivityError(EmulatorError, ValueError):
    """An instruction's operand lives in a buffer its engine cannot read or write."""


class Spec(NamedTuple):
    """One instruction: array-level ``fn`` (destination first), engines (first = default), tensor operands read /
    written, the engine state it needs (``"regs"`` / ``"rng"``), its parameter names in order, whether ``fn`` takes
    ``engine=`` and ``site=``, and roles held to fewer buffers than the engine's rule (``narrow``)."""

    name: str
    fn: Callable
    engines: tuple[str, ...]
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    state: str | None
    params: tuple[str, ...]
    takes_engine: bool
    takes_site: bool
    read_ok: dict      # engine -> role -> buffers it may read
    write_ok: dict     # engine -> role -> buffers it may write
    one_psum: tuple    # inputs of which at most one may sit in PSUM
    prepare: Callable | None         # (bound, dst tensors, engine) -> None: instruction-specific arguments
    default_engine: Callable | None  # bound -> engine when the caller names none
    parts: dict      # role -> (bound, tensor) -> index of the part of that operand the instruction reads / writes
    moves: tuple     # source roles of an element-wise instruction whose unwritten elements give unwritten results
    carry: Callable | None = None  # bound -> None (no move) or (source written, dst written before) -> dst written


def _spec(name: str, fn: Callable, engines, reads, writes, state=None, narrow=None, prepare=None,
          default_engine=None, parts=None, moves=()) -> Spec:
    sig = inspect.signature(fn)
    params = tuple(p for p, v in sig.parameters.items() if v.kind is v.POSITIONAL_OR_KEYWORD)
    narrow = narrow or {}
    read_ok = {e: {r: narrow.get(r, READS[e]) & READS[e] for r in reads} for e in engines}
    write_ok = {e: {r: narrow.get(r, WRITES[e]) & WRITES[e] for r in writes} for e in engines}
    return Spec(name, fn, tuple(engines), tuple(reads), tuple(writes), state, params, "engine" in sig.parameters,
                "site" in sig.parameters, read_ok, write_ok, _ONE_PSUM.get(name, ()), prepare, default_engine,
                parts or {}, tuple(moves))


MATMULS = ("nc_matmul", "nc_matmul_mx")


def _accumulate(bound: dict, dsts: list, engine: str) -> None:
    """NKI ``accumulate=None``: the first write overwrites, later ones add (on what is already in PSUM)."""
    dst = dsts[0]
    acc = bound.get("accumulate")
    # a matmul over a padded tile leaves the padding's results unwritten (setting uninitialized_copies): its dst
    # still counts as written for the next matmul of the group, which accumulates and keeps those unwritten
    carried = dst.base.carried in MATMULS
    if acc is None:
        bound["accumulate"] = bool(dst.base._all or dst.mask.all() or (carried and dst.mask.any()))
    elif acc and not dst.base._all and not carried:
        dst.check_initialized("matmul accumulate (dst)")


_PARTNER = {"stationary": "moving", "moving": "stationary"}
#: (bound, {role: rows}) of the matmul a NeuronCore is running (:func:`matmul_zero_rows`)
_ZERO_ROWS: contextvars.ContextVar = contextvars.ContextVar("trn3emu_matmul_zero_rows", default=None)


def _zero_rows(bound: dict, role: str) -> np.ndarray | None:
    other = bound.get(_PARTNER[role])
    arr = getattr(other, "data", other)
    if not isinstance(arr, np.ndarray) or arr.ndim < 2 or arr.shape[0] == 0:
        return None
    rows = ~(arr.reshape(arr.shape[0], -1) != 0).any(axis=1)
    if isinstance(other, Tensor) and not other.base._all:  # only zeros that were written (integer tiles start 0)
        rows &= other.written.reshape(arr.shape[0], -1).all(axis=1)
    return rows if rows.any() else None


def zero_partner_rows(bound: dict, role: str) -> np.ndarray | None:
    """Partitions ``p`` of a matmul operand (``stationary`` / ``moving``) whose row in the other operand is all
    written exact zeros (+0 or -0; x4 words of 0), under setting ``uninitialized_times_zero='zero'``: what the
    operand holds there only meets zeros, so its unwritten elements there contribute +0. None when the setting is
    off or no row is. Inside a NeuronCore's matmul, the rows found from its operand tensors before they were read
    (:func:`matmul_zero_rows`)."""
    if get_settings().uninitialized_times_zero != "zero" or bound.get("is_transpose"):
        return None
    current = _ZERO_ROWS.get()
    if current is not None and current[0] is bound:
        return current[1].get(role)
    return _zero_rows(bound, role)


@contextlib.contextmanager
def matmul_zero_rows(bound: dict) -> Iterator[None]:
    """While a NeuronCore runs the matmul ``bound`` (operands still memory tensors on entry): the zero rows of each
    operand's partner, found once with their written-flags, for the parts, the carry and the core's read."""
    partial = any(isinstance(t, Tensor) and not t.base._all for t in bound.values())
    rows = {role: zero_partner_rows(bound, role) for role in _PARTNER} if partial else {}  # else nothing to excuse
    token = _ZERO_ROWS.set((bound, rows))
    try:
        yield
    finally:
        _ZERO_ROWS.reset(token)


def mx_scale_rows(bound: dict, data_role: str, nrows: int, met_zeros: bool = False) -> np.ndarray:
    """Rows of an MX scale tile of ``nrows`` rows for the 8-partition groups of operand ``data_role``: all of a dense
    ``[Kp/8, F]`` tile, else the quadrant layout's rows ``(g // 4) * 32 + g % 4``. ``met_zeros``: only the groups
    whose partitions all meet zeros in the other operand (:func:`zero_partner_rows`), else only the others."""
    groups = bound[data_role].shape[0] // MX_GROUP_PARTITIONS
    zero = zero_partner_rows(bound, data_role)
    g = np.arange(groups)
    if zero is not None or met_zeros:
        full = np.zeros(groups, bool) if zero is None else zero[:groups * MX_GROUP_PARTITIONS].reshape(
            groups, MX_GROUP_PARTITIONS).all(axis=1)
        g = g[full if met_zeros else ~full]
    return scale_tile_rows(g, nrows, groups)


def scale_tile_rows(g: np.ndarray, nrows: int, groups: int) -> np.ndarray:
    """The rows of an MX scale tile of ``nrows`` rows that hold groups ``g`` (increasing) of an operand with
    ``groups`` groups: ``g`` itself in a dense ``[groups, F]`` tile, else the quadrant layout's rows
    ``(g // 4) * 32 + g % 4`` that lie in the tile (a prefix of ``g``'s)."""
    if nrows == groups:
        return g
    rows = (g // 4) * QUADRANT + g % 4
    return rows[rows < nrows]


def _scale_rows(data_role: str) -> Callable:
    """The rows of an MX scale tile that nc_matmul_mx reads (:func:`mx_scale_rows`; kernels load only the quadrant
    layout's rows, e.g. nki-library's mlp gate_up_projection_mx_shard_H, and a group whose partitions meet only
    zeros in the other operand is not read under ``uninitialized_times_zero='zero'``). quantize_mx marks its whole
    dst_scale view written, padding rows included (nki-library's quantize_to_mx golden, "matching nisa.quantize_mx
    hardware behavior", compares them as zeros), except the scales of blocks whose source held an unwritten
    element (the core's ``_unwritten_scales``)."""
    def index(bound: dict, t: Tensor):
        groups = bound[data_role].shape[0] // MX_GROUP_PARTITIONS
        if t.shape[0] == groups and zero_partner_rows(bound, data_role) is None:
            return ...
        return mx_scale_rows(bound, data_role, t.shape[0])
    return index


def _core_rows(bound: dict, t: Tensor):
    """Rows 0, 16, ..., of an operand: the first partition of each GpSimd core (nonzero_with_count)."""
    return _gi.core_rows(t.shape[0])


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _topk_written(bound: dict, t: Tensor):
    """topk writes snake positions 0..K-1 of each 16-partition group (K = val_dst's free size)."""
    return _gi.snake_mask(t.shape, int(np.prod(bound["val_dst"].shape[1:], dtype=np.int64)))


def _gather_index(bound: dict) -> np.ndarray:
    """local_gather's index operand as an array (a memory tensor's data before the read, the array after)."""
    idx = bound["index"]
    return idx.data if type(idx) is Tensor else np.asarray(idx)


def _gathered(which: int) -> Callable:
    """local_gather's read of ``index`` (which=0: the valid indices) or ``src_buffer`` (1: the gathered elements)."""
    def index(bound: dict, t: Tensor):
        with np.errstate(all="ignore"):
            return _gi.gather_read(_gather_index(bound), tuple(getattr(bound["src_buffer"], "shape", ())),
                                   bound.get("num_elem_per_idx", 1), bound.get("num_valid_indices"))[which]
    return index


def _gather_carry(bound: dict) -> dict:
    """local_gather moves src_buffer's elements (each partition reads its own row at the gathered columns): a dst
    element is written when the src element it was gathered from was. A kernel gathering over a partly loaded tile
    (nki-library's moe_tkg: the token rows past T) leaves the rows it never uses unwritten, as on hardware they hold
    whatever SBUF held; the index is read for addresses and stays a checked read."""
    def move(written, before):
        return _gi.gathered_flags(written, _gather_index(bound), int(bound.get("num_elem_per_idx", 1)),
                                  bound.get("num_valid_indices")).reshape(before.shape)
    return {"src_buffer": move}


def _matmul_carry(bound: dict) -> dict | None:
    """nc_matmul / nc_matmul_mx: ``dst[m, n]`` comes from column ``m`` of stationary and column ``n`` of moving (and
    of their MX scales, in the scale rows the instruction reads), so it stays unwritten if either column holds an
    unwritten element (a kernel multiplying a padded tile: the padding rows or token columns of the result are
    garbage it never stores), except in rows the other operand holds only zeros in
    (:func:`zero_partner_rows`); accumulating keeps dst's unwritten elements unwritten. A
    transpose (is_transpose) moves stationary's elements to dst.T. None (operands read-checked) when dst is not the
    plain ``[M, N]`` product (tile_position sub-arrays)."""
    if bound.get("is_transpose"):
        move = _transposed(bound)
        return None if move is None else {"stationary": move}
    st, mv, dst = bound.get("stationary"), bound.get("moving"), bound.get("dst")
    if st is None or mv is None or dst is None:
        return None
    m, n = int(np.prod(st.shape[1:], dtype=np.int64)), int(np.prod(mv.shape[1:], dtype=np.int64))
    if int(np.prod(dst.shape, dtype=np.int64)) != m * n:
        return None
    acc = bool(bound.get("accumulate"))

    def lay(cols, which: int, before):  # column flags of an operand -> dst's rows (stationary) or columns
        flags = np.broadcast_to(cols[:, None] if which == 0 else cols[None, :], (m, n)).reshape(before.shape)
        return flags & before if acc else flags

    def columns(which: int):
        def move(written, before):
            rows = written.reshape(written.shape[0], -1)
            zero = zero_partner_rows(bound, ("stationary", "moving")[which])
            return lay((rows | zero[:, None]).all(axis=0) if zero is not None else rows.all(axis=0), which, before)
        return move

    def scale_columns(which: int):  # nc_matmul_mx: a scale column serves its data column only
        def move(written, before):
            rows = written.reshape(written.shape[0], -1)
            return lay(rows[mx_scale_rows(bound, ("stationary", "moving")[which], rows.shape[0])].all(axis=0),
                       which, before)
        return move

    moves = {"stationary": columns(0), "moving": columns(1)}
    if bound.get("moving_scale") is not None and bound.get("stationary_scale") is not None:
        moves.update(stationary_scale=scale_columns(0), moving_scale=scale_columns(1))
    return moves


def _quantize_carry(bound: dict) -> Callable | None:
    """quantize_mx: a dst word is unwritten if its MX block (8 partitions x 4 elements of src) holds an unwritten
    element (the block's scale comes from its maximum)."""
    src = bound.get("src")
    if src is None or len(src.shape) < 2:
        return None
    p, f = src.shape[0], int(np.prod(src.shape[1:], dtype=np.int64))
    if p % MX_GROUP_PARTITIONS or f % 4:
        return None

    def move(written, before):
        blocks = written.reshape(p // MX_GROUP_PARTITIONS, MX_GROUP_PARTITIONS, f // 4, 4).all(axis=(1, 3))
        return np.repeat(blocks, MX_GROUP_PARTITIONS, axis=0).reshape(before.shape)
    return move


def _transposed(bound: dict) -> Callable | None:
    """nc_matmul is_transpose: dst[m, k] is stationary[k, m]."""
    st, dst = bound.get("stationary"), bound.get("dst")
    k, m = st.shape[0], int(np.prod(st.shape[1:], dtype=np.int64))
    if dst is None or dst.shape[0] != m or int(np.prod(dst.shape[1:], dtype=np.int64)) != k:
        return None  # not a plain [K, M] -> [M, K] transpose (tile_position...): stationary is checked as a read
    return lambda written, before: written.reshape(k, m).T.reshape(before.shape)


def _reduce_carry(bound: dict) -> Callable | None:
    """tensor_reduce over trailing free axes: a result is unwritten if the elements it reduces hold an unwritten one
    (the maximum of a row with garbage in it is garbage)."""
    data, dst, axis = bound.get("data"), bound.get("dst"), bound.get("axis")
    if data is None or dst is None or axis is None:
        return None
    try:
        ax = _vector._axes(axis, len(data.shape), "tensor_reduce")
    except EmulatorError:
        return None  # the instruction raises on it
    kept = tuple(data.shape[:ax[0]])
    if int(np.prod(kept, dtype=np.int64)) != int(np.prod(dst.shape, dtype=np.int64)):
        return None
    return lambda written, before: written.reshape(kept + (-1,)).all(axis=-1).reshape(before.shape)


def _transpose_carry(bound: dict) -> Callable | None:
    """nc_transpose: dst is data [P, F] transposed (the flags follow their elements)."""
    data, dst = bound.get("data"), bound.get("dst")
    if data is None or dst is None:
        return None
    k, size = data.shape[0], int(np.prod(data.shape, dtype=np.int64))
    if size != int(np.prod(dst.shape, dtype=np.int64)):
        return None
    return lambda written, before: written.reshape(k, size // k).T.reshape(before.shape)


def _per_element_flags(written, before):
    """A source's written-flags laid onto dst: element for element, or a per-partition [P, 1] operand (a bias)
    broadcast along each row."""
    if written.size == before.size:
        return written.reshape(before.shape)
    return np.broadcast_to(written.reshape((before.shape[0],) + (1,) * (before.ndim - 1)), before.shape)


def _activation_carry(bound: dict) -> Callable | None:
    """activation is element-wise in data and per partition in bias/scale; with reduce_res, each row's sum depends
    on the whole row, so the operands are plain reads then (None: not a move)."""
    return None if bound.get("reduce_res") is not None else _per_element_flags


def _shuffle_carry(bound: dict) -> Callable:
    """nc_stream_shuffle moves whole rows: a dst row it writes takes its src row's flags, the others keep theirs."""
    def move(written, before):
        out_rows, in_rows = _vs.shuffle_rows(bound["shuffle_mask"], before.shape[0])
        flags = before.reshape(before.shape[0], -1).copy()
        flags[out_rows] = written.reshape(written.shape[0], -1)[in_rows]
        return flags.reshape(before.shape)
    return move


def _nonzero_carry(bound: dict) -> Callable:
    """nonzero_with_count: a core row of dst is written when its whole src row was (each result row depends on
    its whole src row); rows it does not write keep their flags."""
    def move(written, before):
        rows = _gi.core_rows(before.shape[0])
        flags = before.reshape(before.shape[0], -1).copy()
        flags[rows] = written.reshape(written.shape[0], -1)[rows].all(axis=1, keepdims=True)
        return flags.reshape(before.shape)
    return move


def _shuffled(which: int) -> Callable:
    """nc_stream_shuffle's rows: which=0 the dst rows it writes, 1 the src rows it reads (mask entries 255 skip)."""
    def index(bound: dict, t: Tensor):
        try:
            rows = _vs.shuffle_rows(bound["shuffle_mask"], bound["dst"].shape[0])[which]
        except (TypeError, ValueError, IndexError):
            return ...  # a malformed mask: the instruction raises on it
        return np.unique(rows[(rows >= 0) & (rows < t.shape[0])])
    return index


def _quantize_fmt(bound: dict, dsts: list, engine: str) -> None:
    if bound.get("fmt") is None:
        bound["fmt"] = dsts[0].x4


def _x4_dtype(bound: dict, dsts: list, engine: str) -> None:
    """memset: tell the array function a uint-word dst holds an x4 type (only 0 is legal)."""
    if dsts[0].x4 is not None and bound.get("dtype") is None:
        bound["dtype"] = dsts[0].x4


def _transpose_engine(bound: dict, dsts: list, engine: str) -> None:
    bound["engine"] = engine


def _transpose_default(bound: dict) -> str:
    """No engine named: the Tensor Engine for a PSUM dst, the Vector Engine for an SBUF one."""
    dst = bound.get("dst")
    return "vector" if type(dst) is Tensor and dst.kind == "sbuf" else "tensor"


_SBUF = frozenset({"sbuf"})
INSTRUCTIONS: dict[str, Spec] = {name: _spec(name, *entry) for name, entry in _COMPUTE.items()}
INSTRUCTIONS.update({
    "nc_matmul": _spec("nc_matmul", _pe.nc_matmul, ("tensor",), ("stationary", "moving"), ("dst",),
                       prepare=_accumulate),
    "nc_matmul_mx": _spec("nc_matmul_mx", _pe.nc_matmul_mx, ("tensor",),
                          ("stationary", "moving", "stationary_scale", "moving_scale"), ("dst",), prepare=_accumulate,
                          parts={"stationary_scale": _scale_rows("stationary"),
                                      "moving_scale": _scale_rows("moving")}),
    "nc_matmul_sparse": _spec("nc_matmul_sparse", _pe.nc_matmul_sparse, ("tensor",), ("values", "tags", "moving"),
                              ("dst",), prepare=_accumulate),
    "nc_transpose": _spec("nc_transpose", _pe.nc_transpose, ("tensor", "vector"), ("data",), ("dst",),
                          prepare=_transpose_engine, default_engine=_transpose_default),
    "quantize_mx": _spec("quantize_mx", _pe.quantize_mx, ("vector",), ("src",), ("dst", "dst_scale"),
                         narrow={"src": _SBUF}, prepare=_quantize_fmt),
    "dma_copy": _spec("dma_copy", _dma.dma_copy, ("dma",), ("src",), ("dst",)),
    "dma_compute": _spec("dma_compute", _dma.dma_compute, ("dma",), ("srcs",), ("dst",)),
    "dma_transpose": _spec("dma_transpose", _dma.dma_transpose, ("dma",), ("src",), ("dst",),
                           narrow={"dst": _SBUF}),
})


INSTRUCTIONS["memset"] = INSTRUCTIONS["memset"]._replace(prepare=_x4_dtype)
# GpSimd instructions that read / write only some elements of an operand (the rest keep their written-flags)
_CORE_ROWS = {"src": _core_rows, "dst": _core_rows}
INSTRUCTIONS["nonzero_with_count"] = INSTRUCTIONS["nonzero_with_count"]._replace(parts=_CORE_ROWS, moves=("src",),
                                                                                carry=_nonzero_carry)
INSTRUCTIONS["topk"] = INSTRUCTIONS["topk"]._replace(parts={
    "src": lambda bound, t: _gi.snake_mask(t.shape, int(bound["n"]) if _is_int(bound.get("n")) else 0),
    "val_dst": _topk_written, "idx_dst": _topk_written})
INSTRUCTIONS["local_gather"] = INSTRUCTIONS["local_gather"]._replace(
    parts={"index": _gathered(0), "src_buffer": _gathered(1)}, moves=("src_buffer",), carry=_gather_carry)
# element-wise instructions that carry unwritten elements to their result (setting uninitialized_copies)
INSTRUCTIONS["tensor_copy"] = INSTRUCTIONS["tensor_copy"]._replace(moves=("src",))
INSTRUCTIONS["tensor_tensor"] = INSTRUCTIONS["tensor_tensor"]._replace(moves=("data1", "data2"))
# element-wise in data, per partition in a [P, 1] operand tile (its flags broadcast along the row)
INSTRUCTIONS["tensor_scalar"] = INSTRUCTIONS["tensor_scalar"]._replace(moves=("data", "operand0", "operand1"),
                                                                        carry=lambda bound: _per_element_flags)
INSTRUCTIONS["scalar_tensor_tensor"] = INSTRUCTIONS["scalar_tensor_tensor"]._replace(
    moves=("data", "operand0", "operand1"), carry=lambda bound: _per_element_flags)
INSTRUCTIONS["reciprocal"] = INSTRUCTIONS["reciprocal"]._replace(moves=("data",))
# dst = op(data * scale + bias): element-wise in data, per partition in a [P, 1] bias or scale tile
INSTRUCTIONS["activation"] = INSTRUCTIONS["activation"]._replace(moves=("data", "bias", "scale"),
                                                                  carry=_activation_carry)
# a DMA moves bytes; unwritten ones reaching a kernel output are checked when the output leaves the device
INSTRUCTIONS["dma_copy"] = INSTRUCTIONS["dma_copy"]._replace(moves=("src",))
# a transpose through the PE array (is_transpose=True, moving = identity) moves stationary's elements to dst.T
INSTRUCTIONS["nc_matmul"] = INSTRUCTIONS["nc_matmul"]._replace(moves=("stationary", "moving"), carry=_matmul_carry)
INSTRUCTIONS["nc_matmul_mx"] = INSTRUCTIONS["nc_matmul_mx"]._replace(
    moves=("stationary", "moving", "stationary_scale", "moving_scale"), carry=_matmul_carry)
INSTRUCTIONS["quantize_mx"] = INSTRUCTIONS["quantize_mx"]._replace(moves=("src",), carry=_quantize_carry)
INSTRUCTIONS["nc_transpose"] = INSTRUCTIONS["nc_transpose"]._replace(moves=("data",), carry=_transpose_carry)
# a reduction along the free axes: per result, over the elements it reduces
INSTRUCTIONS["tensor_reduce"] = INSTRUCTIONS["tensor_reduce"]._replace(moves=("data",), carry=_reduce_carry)
INSTRUCTIONS["nc_stream_shuffle"] = INSTRUCTIONS["nc_stream_shuffle"]._replace(
    parts={"src": _shuffled(1), "dst": _shuffled(0)}, moves=("src",), carry=_shuffle_carry)


def bind(spec: Spec, args: tuple, kwargs: dict) -> dict:
    params = spec.params
    if len(args) > len(params):
        raise ArgumentTypeError(f"{spec.name}() takes {len(params)} positional arguments ({', '.join(params)}) but "
                        f"{len(args)} were given")
    bound = dict(zip(params, args))
    if kwargs:
        for key in kwargs:
            if key in bound:
                raise ArgumentTypeError(f"{spec.name}() got multiple values for argument {key!r}")
        bound.update(kwargs)
        bound.pop("name", None)  # NKI's instruction name label
    return bound


def buffer_message(instr: str, role: str, t: Tensor, engine: str, verb: str, ok) -> str:
    return (f"{instr}: {role} is {t.kind.upper()} tensor {t.base.name!r}; the {engine} engine cannot {verb} "
            f"{t.kind.upper()} here (it may {verb} {', '.join(sorted(k.upper() for k in ok))}: {_RULE[engine]})")
