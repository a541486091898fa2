"""One NeuronCore: its memory, engine state (RNG, accumulator registers), SR site counter, statistics and settings,
with every instruction as a method (NKI names and keywords, destination first).

All instructions go through one dispatch (:meth:`NeuronCore.issue`) driven by the instruction table
(:data:`INSTRUCTIONS`: array-level function, engines, operand roles). For each call it resolves the engine, checks
the engine <-> buffer connectivity of reference section 1.3 (Tensor Engine reads SBUF and writes PSUM only, GpSimd
never touches PSUM, DMA moves between HBM and SBUF, ...), reads the operands with the uninitialised-read check,
runs the array-level function on the memory views in place (so every write rounds once through ``cast`` with the
settings of its path), marks the destinations written and records statistics.

Two cores of one LNC=2 launch share one :class:`~emulator.engines.memory.HBM`; :func:`lnc_group` builds them with a
link for :meth:`NeuronCore.sendrecv` and :meth:`NeuronCore.core_barrier` (threads).

>>> import numpy as np, emulator as emu
>>> from emulator.engines.core import NeuronCore
>>> core = NeuronCore()
>>> x = core.memory.sbuf((2, 4), "float32", name="x", value=np.arange(8, dtype=np.float32).reshape(2, 4))
>>> y = core.memory.sbuf((2, 4), "bfloat16", name="y")
>>> core.tensor_scalar(y, x, "multiply", 0.5, op1="add", operand1=1.0)
>>> y.read().astype(np.float32)[1]
array([3. , 3.5, 4. , 4.5], dtype=float32)
>>> core.stats.engines["vector"].instructions
1
"""

from __future__ import annotations

import dataclasses
import itertools
import queue
import threading
from typing import Any, Callable

import numpy as np

from ..config import Settings, get_settings, settings as _settings_context
from ..errors import EmulatorError, ShapeError
from . import cost as _cost
from . import dma as _dma
from . import gpsimd_index as _gi
from .instructions import INSTRUCTIONS, READS, WRITES, ConnectivityError, Spec, bind, buffer_message  # noqa: F401
from .instructions import MATMULS, matmul_zero_rows, mx_scale_rows, scale_tile_rows, zero_partner_rows
from .limits import MX_GROUP_PARTITIONS
from .memory import HBM, IndirectAP, Memory, Tensor
from .operands import ReduceRegisters, engine_name, sr_site
from .rng import EngineRNG
from .stats import COMPUTE_ENGINES, EngineStats, Stats, instruction_cycles  # noqa: F401 (re-exported)

_STATE = {"regs": ("regs", "regs"), "rng": ("state", "rng_states")}  # state kind -> (fn keyword, core attribute)

__all__ = ["NeuronCore", "EngineStats", "Stats", "Spec", "INSTRUCTIONS", "READS", "WRITES", "ConnectivityError",
           "lnc_group"]

class _Link:
    """The rendezvous of the cores of one LNC group: message queues per (from, to, pipe) and barriers."""

    def __init__(self, n: int, timeout: float) -> None:
        self.n, self.timeout = n, timeout
        self.queues: dict[tuple, queue.Queue] = {}
        self.barriers: dict[tuple, threading.Barrier] = {}
        self.lock = threading.Lock()

    def pipe(self, key: tuple) -> queue.Queue:
        with self.lock:
            return self.queues.setdefault(key, queue.Queue())

    def barrier(self, cores: tuple) -> threading.Barrier:
        with self.lock:
            return self.barriers.setdefault(cores, threading.Barrier(len(cores)))


class NeuronCore:
    """One NeuronCore-v4: ``.memory`` (SBUF/PSUM of its own, HBM possibly shared), RNG states
    (``.rng_states["vector"]``, ``["gpsimd"]``), accumulator registers (``.regs["scalar"]``, ``["vector"]``), the SR
    site counter, ``.stats`` and its settings.

    Parameters
    ----------
    hbm : a shared :class:`~emulator.engines.memory.HBM` (LNC=2), default a new one.
    settings : a :class:`~emulator.config.Settings` every instruction runs under; None = the settings in force at
        each instruction (``with emu.settings(...)`` around the calls).
    rank, num_cores : position in an LNC group (see :func:`lnc_group`).
    memory_kwargs : ``sbuf_partition_bytes``, ``psum_banks``, ``hbm_bytes`` to shrink the memories in tests.
    """

    def __init__(self, hbm: HBM | None = None, settings: Settings | None = None, *, rank: int = 0,
                 num_cores: int = 1, seed: int = 0, **memory_kwargs: Any) -> None:
        self.rank, self.num_cores = int(rank), int(num_cores)
        self._pinned = settings
        self._site = itertools.count(1)
        self.memory = Memory(hbm=hbm, next_site=self.next_site, **memory_kwargs)
        self.rng_states = {"vector": EngineRNG("vector", seed=seed), "gpsimd": EngineRNG("gpsimd", seed=seed)}
        self.regs = {"vector": ReduceRegisters(), "scalar": ReduceRegisters(), "gpsimd": ReduceRegisters()}
        self.stats = Stats()
        self.link: _Link | None = None
        self._moved: list = []  # sources of the element-wise instruction being dispatched that carry unwritten bytes

    # ---- state ---------------------------------------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        """The settings this core's instructions run under."""
        return self._pinned if self._pinned is not None else get_settings()

    def next_site(self) -> int:
        """A fresh stochastic-rounding site id (one per write of an instruction)."""
        return next(self._site)

    def __repr__(self) -> str:
        return f"<NeuronCore rank {self.rank}/{self.num_cores}: {sum(self.stats.instructions.values())} instructions>"

    # ---- the one dispatch ----------------------------------------------------------------------------------------
    def issue(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Run instruction ``name`` with NKI arguments (what every instruction method calls)."""
        try:
            spec = INSTRUCTIONS[name]
        except KeyError:
            raise EmulatorError(f"NeuronCore: no instruction {name!r}") from None
        return self._issue(spec, args, kwargs)

    def _issue(self, spec: Spec, args: tuple, kwargs: dict) -> Any:
        pinned = self._pinned
        if pinned is not None:
            current = get_settings()
            if current is not pinned and current != pinned:
                with _settings_context(**_diff(current, pinned)):
                    return self._dispatch(spec, args, kwargs)
        return self._dispatch(spec, args, kwargs)

    def _dispatch(self, spec: Spec, args: tuple, kwargs: dict) -> Any:
        bound = bind(spec, args, kwargs)
        if self._moved:
            self._moved = []
        if spec.name == "dma_copy" and (type(bound.get("src")) is IndirectAP or type(bound.get("dst")) is IndirectAP):
            return self._dma_indirect(spec, bound)
        if spec.name == "dma_transpose" and type(bound.get("src")) is IndirectAP:
            return self._dma_transpose_indirect(spec, bound)
        engine = self._engine(spec, bound)
        if spec.name in _gi.CORE_WISE:
            _gi.check_core_start(spec.name, bound)
        if spec.name in MATMULS:
            with matmul_zero_rows(bound):
                return self._run(spec, engine, bound)
        return self._run(spec, engine, bound)

    def _run(self, spec: Spec, engine: str, bound: dict) -> Any:
        dsts = self._dst_operands(spec, engine, bound)
        nbytes, nreads = self._read_operands(spec, engine, bound)
        if spec.state is not None:
            keyword, attr = _STATE[spec.state]
            bound[keyword] = getattr(self, attr)[engine]
        if spec.prepare is not None:
            spec.prepare(bound, dsts, engine)
        site = next(self._site)
        if spec.takes_site:
            out = spec.fn(site=site, **bound)
        elif self.settings.rounding == "sr":
            with sr_site(site):
                out = spec.fn(**bound)
        else:
            out = spec.fn(**bound)
        self._record(spec, engine, dsts, nbytes, nreads, bound)
        return None if dsts else out

    def _engine(self, spec: Spec, bound: dict) -> str:
        raw = bound.get("engine") if spec.takes_engine else bound.pop("engine", None)
        if raw is None:
            return spec.default_engine(bound) if spec.default_engine is not None else spec.engines[0]
        engine = engine_name(raw)
        if engine is None:
            return spec.default_engine(bound) if spec.default_engine is not None else spec.engines[0]
        if engine not in spec.engines:
            raise EmulatorError(f"{spec.name}: engine {engine!r} cannot run it; it runs on {', '.join(spec.engines)}")
        return engine

    def _read_operands(self, spec: Spec, engine: str, bound: dict) -> tuple[int, int]:
        ok_by_role = spec.read_ok[engine]
        nbytes = nreads = in_psum = 0
        padded = None  # matmul operands holding unwritten elements (see _zero_unwritten)
        for role in spec.reads:
            t = bound.get(role)
            if type(t) is not Tensor:
                if type(t) in (list, tuple) and t and type(t[0]) is Tensor:  # a list operand (dma_compute srcs)
                    data = bound[role] = [self._read_one(spec, engine, f"{role}[{i}]", x, ok_by_role[role])
                                          for i, x in enumerate(t)]
                    nbytes += sum(d.nbytes for d in data)
                    nreads += len(data)
                continue
            kind = t.kind
            if kind not in ok_by_role[role]:
                raise ConnectivityError(buffer_message(spec.name, role, t, engine, "read", ok_by_role[role]))
            if kind != "hbm" and t.memory is not None:
                t.memory.touch(t, spec.name, role)
            if kind == "psum" and role in spec.one_psum:
                in_psum += 1
                if in_psum > 1:
                    raise ConnectivityError(f"{spec.name}: {' and '.join(spec.one_psum)} are both in PSUM; at most "
                                            "one input of this instruction may sit in PSUM")
            if not t.base._all:
                if role in spec.moves and self.settings.uninitialized_copies == "propagate" and _carries(spec, bound,
                                                                                                         role):
                    self._moved.append((role, t))  # its unwritten elements make unwritten results (_record)
                else:
                    part = spec.parts.get(role)
                    t.check_initialized(f"{spec.name} {role}", ... if part is None else part(bound, t))
            if t.x4 is not None and spec.name == "nc_matmul_mx" and bound.get(f"{role}_fmt") is None:
                bound[f"{role}_fmt"] = t.x4
            if not t.base._all and spec.name in MATMULS:
                padded = (padded or []) + [(role, t)]
            data = bound[role] = t.data
            nbytes += data.nbytes
            nreads += 1
        if padded:
            _zero_unwritten(bound, padded)
        return nbytes, nreads

    def _read_one(self, spec: Spec, engine: str, role: str, t: Any, ok: frozenset):
        """One element of a list operand: a memory tensor its engine may read, initialised."""
        if type(t) is not Tensor:
            raise EmulatorError(f"{spec.name}: {role} must be a memory tensor (a view of core.memory), got "
                                f"{type(t).__name__}")
        if t.kind not in ok:
            raise ConnectivityError(buffer_message(spec.name, role, t, engine, "read", ok))
        if t.kind != "hbm" and t.memory is not None:
            t.memory.touch(t, spec.name, role)
        if not t.base._all:
            t.check_initialized(f"{spec.name} {role}")
        return t.data

    def _dst_operands(self, spec: Spec, engine: str, bound: dict) -> list[Tensor]:
        ok_by_role = spec.write_ok[engine]
        dsts = []
        for role in spec.writes:
            t = bound.get(role)
            if t is None:
                continue
            if type(t) is not Tensor:
                raise EmulatorError(f"{spec.name}: {role} must be a memory tensor (a view of core.memory), got "
                                    f"{type(t).__name__}")
            if t.kind not in ok_by_role[role]:
                raise ConnectivityError(buffer_message(spec.name, role, t, engine, "write", ok_by_role[role]))
            if t.kind != "hbm" and t.memory is not None:
                t.memory.touch(t, spec.name, role)
            bound[role] = t.data
            dsts.append(t)
        return dsts

    def _record(self, spec: Spec, engine: str, dsts: list, nbytes: int, nreads: int, bound: dict) -> None:
        carry = None
        if self._moved:  # read the sources' flags before dst's are set (dst may be a source)
            carry = _carried_written(self._moved, dsts[0], spec.name,
                                     None if spec.carry is None else spec.carry(bound))
            self._moved = []
        first = None
        roles = [r for r in spec.writes if bound.get(r) is not None] if spec.parts else ()
        # a matmul accumulating into dst adds to what is there: elements left unwritten (a padded tile's results)
        # stay so
        keep = spec.name in MATMULS and bound.get("accumulate") is True
        for i, t in enumerate(dsts):
            if not t.base._all and not keep:
                part = spec.parts.get(roles[i]) if spec.parts else None
                t.mark_written(... if part is None else part(bound, t))
            nbytes += t.data.nbytes
            if first is None:
                first = t.data
        st = self.stats.engines[engine]
        st.instructions += 1
        st.bytes += nbytes
        if first is not None:
            st.elements += first.size
            if engine in COMPUTE_ENGINES:  # inline the common case of _cycles
                st.cycles += _cost.EVAC_OVERHEAD + (first.size // first.shape[0] if first.ndim else 1) * (nreads or 1)
            else:
                st.cycles += instruction_cycles(engine, first, nbytes)
        if carry is not None:
            dsts[0].base._all = False
            dsts[0].base.carried = spec.name
            dsts[0].mask[...] = carry[..., None]
            if spec.name == "quantize_mx" and len(dsts) > 1:
                _unwritten_scales(dsts[1], carry, bound)
        counts = self.stats.instructions
        counts[spec.name] = counts.get(spec.name, 0) + 1
        if engine == "dma":
            self.stats.dma_queues[st.instructions % _cost.DMA_QUEUES] += 1

    def _dma_indirect(self, spec: Spec, bound: dict) -> None:
        """dma_copy with a ``vector_offset`` access pattern on one side: one row transfer per index (gather from /
        scatter into the indexed tensor), rows out of bounds raising or skipped per ``oob_mode``."""
        src, dst = bound.pop("src"), bound.pop("dst")
        oob = _dma.oob_name(bound.pop("oob_mode", "error"), spec.name)
        if type(src) is IndirectAP and type(dst) is IndirectAP:
            raise EmulatorError("dma_copy: only one of src and dst may use vector_offset")
        ind, role = (src, "src") if type(src) is IndirectAP else (dst, "dst")
        other = dst if ind is src else src
        if type(other) is not Tensor or other.shape[0] != ind.shape[0]:
            raise ShapeError(f"dma_copy: {role} gathers {ind.shape[0]} rows; the other side must be a tensor with "
                             f"{ind.shape[0]} rows, got {getattr(other, 'shape', type(other).__name__)}")
        for i, view in enumerate(self._indirect_rows("dma_copy", ind, role, oob)):
            if view is not None:
                pair = (view, other[i]) if ind is dst else (other[i], view)
                self._dispatch(spec, pair, dict(bound))

    def _dma_transpose_indirect(self, spec: Spec, bound: dict) -> None:
        """dma_transpose from a ``vector_offset`` pattern: the indexed rows are gathered, in index order, into the
        source tile, which is then transposed whole (nki-library attention_tkg gathers a batch's KV-cache blocks
        this way). Every row must be in bounds: with rows skipped the transposed tile would be partial, which NKI
        does not define."""
        src = bound.pop("src")
        rows = self._indirect_rows(spec.name, src, "src", _dma.oob_name(bound.get("oob_mode") or "error", spec.name))
        if any(view is None for view in rows):
            raise ShapeError(f"{spec.name}: vector_offset row {[v is None for v in rows].index(True)} is out of bounds "
                             "and oob_mode=skip; a transpose of a tile with skipped rows is not defined by NKI")
        gathered = np.stack([view.data for view in rows])
        for i, view in enumerate(rows):
            if not view.base._all:
                view.check_initialized(f"{spec.name} src (row {i} of the gather)")
        tile = Tensor(f"{src.tensor.base.name}[gathered]", src.tensor.kind, gathered, written=True)
        return self._dispatch(spec, (), dict(bound, src=tile))

    def _indirect_rows(self, instr: str, ind: IndirectAP, role: str, oob: str) -> list:
        """The row views an indirect pattern selects (None where out of bounds and ``oob`` is skip); its index
        tile is read from SBUF."""
        if ind.index.kind != "sbuf":
            raise ConnectivityError(f"{instr}: the vector_offset of {role} is {ind.index.kind.upper()} tensor "
                                    f"{ind.index.base.name!r}; indices are read from SBUF")
        return ind.rows(ind.index.read(f"{instr} {role} vector_offset"), instr, oob)

    # ---- LNC=2: between the cores of one group -------------------------------------------------------------------
    def sendrecv(self, src: Tensor, dst: Tensor, send_to_rank: int, recv_from_rank: int, pipe_id: int = 0,
                 dma_engine: Any = None) -> None:
        """Send ``src`` (SBUF) to core ``send_to_rank`` and receive ``dst`` (SBUF, same shape and dtype) from core
        ``recv_from_rank`` of this LNC group, on pipe ``pipe_id``."""
        instr = "sendrecv"
        for role, t in (("src", src), ("dst", dst)):
            if type(t) is not Tensor or t.kind != "sbuf":
                raise ConnectivityError(f"{instr}: {role} must be an SBUF tensor, got "
                                        f"{getattr(t, 'kind', type(t).__name__)}; sendrecv moves SBUF to SBUF")
        if src.shape != dst.shape or src.dtype != dst.dtype:
            raise ShapeError(f"{instr}: src is {src.dtype} {src.shape} and dst is {dst.dtype} {dst.shape}; they must "
                             "match")
        for role, r in (("send_to_rank", send_to_rank), ("recv_from_rank", recv_from_rank)):
            if not 0 <= int(r) < self.num_cores:
                raise EmulatorError(f"{instr}: {role}={r} but this LNC group has {self.num_cores} core(s)")
        payload = src.read(f"{instr} src")
        if self.link is None:  # a lone core talks to itself
            dst.write(payload)
        else:
            self.link.pipe((self.rank, int(send_to_rank), pipe_id)).put(payload)
            try:
                got = self.link.pipe((int(recv_from_rank), self.rank, pipe_id)).get(timeout=self.link.timeout)
            except queue.Empty:
                raise EmulatorError(f"{instr}: core {self.rank} waited {self.link.timeout} s for core "
                                    f"{recv_from_rank} on pipe {pipe_id}; it never sent") from None
            dst.write(got)
        st = self.stats.engines["dma"]
        st.instructions += 1
        st.bytes += 2 * src.nbytes
        self.stats.instructions[instr] = self.stats.instructions.get(instr, 0) + 1

    def core_barrier(self, data: Any = None, cores: tuple = (0, 1), engine: Any = None) -> None:
        """Wait until every core in ``cores`` of this LNC group reaches the barrier."""
        cores = tuple(sorted(int(c) for c in cores))
        if self.rank not in cores:
            raise EmulatorError(f"core_barrier: core {self.rank} is not one of cores {cores}")
        if self.link is None or len(cores) == 1:
            return
        try:
            self.link.barrier(cores).wait(timeout=self.link.timeout)
        except threading.BrokenBarrierError:
            raise EmulatorError(f"core_barrier: cores {cores} did not all arrive within {self.link.timeout} s "
                                f"(core {self.rank} waited)") from None
        self.stats.instructions["core_barrier"] = self.stats.instructions.get("core_barrier", 0) + 1


def _zero_unwritten(bound: dict, padded: list) -> None:
    """Setting ``uninitialized_times_zero='zero'``: in the partitions where the other operand of a matmul holds only
    zeros, this operand's unwritten elements (and an MX operand's unwritten scales of the groups all of whose
    partitions are such) are given to the instruction as zeros (scale code 127, 2^0) in a copy, so that the
    products there are +0 as the rule says, not the NaN the emulator fills fresh tiles with."""
    for role, t in padded:
        data_role = role.removesuffix("_scale")
        zero = zero_partner_rows(bound, data_role)
        if zero is None or zero.shape[0] != bound[data_role].shape[0]:
            continue
        if role == data_role:
            rows = zero[:, None] & ~t.written.reshape(t.shape[0], -1)
            fill = 0
        else:
            sel = np.zeros(t.shape[0], bool)
            sel[mx_scale_rows(bound, data_role, t.shape[0], met_zeros=True)] = True
            rows = sel[:, None] & ~t.written.reshape(t.shape[0], -1)
            fill = 127
        if rows.any():
            data = np.array(bound[role], copy=True)
            data.reshape(t.shape[0], -1)[rows] = fill
            bound[role] = data


def _unwritten_scales(scale: Tensor, carry: np.ndarray, bound: dict) -> None:
    """quantize_mx: the scale of an MX block whose source held an unwritten element is unwritten too (its x4 words
    are, by the carry): it was computed from whatever the tile held, and a matmul that meets only zeros there
    (``uninitialized_times_zero``) must not read it as a value."""
    groups = carry.shape[0] // MX_GROUP_PARTITIONS
    blocks = carry[:groups * MX_GROUP_PARTITIONS].reshape(groups, MX_GROUP_PARTITIONS, -1).all(axis=1)
    rows = scale_tile_rows(np.arange(groups), scale.shape[0], groups)
    free = int(np.prod(scale.shape[1:], dtype=np.int64))  # a scale tile's free dims, flattened as the words' are
    blocks = blocks[:rows.size, :free]
    if blocks.all():
        return
    keep = np.ones(scale.shape, bool)
    keep.reshape(scale.shape[0], -1)[rows, :blocks.shape[1]] = blocks
    scale.base._all = False
    mask = scale.mask
    mask[...] = mask & keep[..., None]


def _carries(spec: Spec, bound: dict, role: str) -> bool:
    """Whether operand ``role`` is moved (its unwritten elements carried) in this call: the instruction's ``carry``
    gives None (no move), one mapping for every moved operand, or a mapping per operand role."""
    if spec.carry is None:
        return True
    move = spec.carry(bound)
    return move is not None and (not isinstance(move, dict) or role in move)


def _carried_written(srcs: list, dst: Tensor, instr: str, move: Callable | dict | None = None):
    """For a move: which of dst's elements will be written, or None when all are. ``srcs``: (role, tensor) pairs.
    Element-wise instructions pair elements in row-major order (a dst element is written when every source element
    it comes from was); ``move`` (from the instruction's ``carry``, one or one per role) maps a source's
    written-flags and dst's current ones to dst's new ones."""
    written = None
    before = dst.written if move is not None else None
    for role, src in srcs:
        fn = move.get(role) if isinstance(move, dict) else move
        if fn is not None:
            w = fn(src.written, before)
        else:
            w = src.written
            if w.size != dst.data.size:  # no element-wise correspondence to carry
                src.check_initialized(f"{instr} (source)")
                continue
            w = w.reshape(dst.shape)
        written = w if written is None else written & w
    return None if written is None or written.all() else written


def _diff(current: Settings, pinned: Settings) -> dict:
    return {f.name: getattr(pinned, f.name) for f in dataclasses.fields(Settings)
            if getattr(pinned, f.name) != getattr(current, f.name)}


def _method(spec: Spec) -> Callable:
    def method(self: NeuronCore, *args: Any, **kwargs: Any) -> Any:
        return self._issue(spec, args, kwargs)

    method.__name__ = method.__qualname__ = spec.name
    method.__doc__ = (f"``{spec.name}`` on the {' or '.join(spec.engines)} engine (memory tensors as operands); "
                      f"see :func:`{spec.fn.__module__}.{spec.fn.__name__}`.")
    return method


for _name, _s in INSTRUCTIONS.items():
    setattr(NeuronCore, _name, _method(_s))


def lnc_group(n: int = 2, settings: Settings | None = None, *, timeout: float = 60.0,
              **memory_kwargs: Any) -> list[NeuronCore]:
    """``n`` NeuronCores of one logical core (LNC=n) sharing one HBM, linked for sendrecv / core_barrier.

    >>> import threading, numpy as np
    >>> a, b = lnc_group(2)
    >>> sa = a.memory.sbuf((1, 2), "float32", value=[[1.0, 2.0]]); ra = a.memory.sbuf((1, 2), "float32")
    >>> sb = b.memory.sbuf((1, 2), "float32", value=[[3.0, 4.0]]); rb = b.memory.sbuf((1, 2), "float32")
    >>> t = threading.Thread(target=b.sendrecv, args=(sb, rb, 0, 0)); t.start(); a.sendrecv(sa, ra, 1, 1); t.join()
    >>> ra.read(), rb.read()
    (array([[3., 4.]], dtype=float32), array([[1., 2.]], dtype=float32))
    """
    hbm = HBM(memory_kwargs.pop("hbm_bytes")) if "hbm_bytes" in memory_kwargs else HBM()
    link = _Link(n, timeout)
    cores = [NeuronCore(hbm, settings, rank=r, num_cores=n, **memory_kwargs) for r in range(n)]
    for c in cores:
        c.link = link
    return cores
