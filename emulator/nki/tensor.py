"""``NkiTensor``: a view of one memory allocation (SBUF, PSUM or HBM) with NKI's indexing and view methods.

An ``NkiTensor`` wraps a view of the NeuronCore's memory (:class:`emulator.engines.memory.Tensor`, which tracks
which bytes were written): slicing, ``nl.ds``, the legacy ``nl.arange`` index expressions, ``.reshape``,
``.view(dtype)``, ``.ap(pattern, offset, dtype)``, ``.permute``, ``.broadcast`` and friends give new views of the
same bytes. Reading bytes that nothing wrote raises :class:`~emulator.errors.UninitializedReadError` naming the
tensor and the instruction. An allocation is freed when its last view goes away.

On-chip tensors keep their partition dim: an integer on dim 0 gives a 1-partition view. HBM tensors drop an
integer-indexed dim, as in NKI.

>>> import numpy as np
>>> from emulator.engines.memory import Memory
>>> from emulator.nki.tensor import NkiTensor
>>> t = NkiTensor.allocate(Memory(), (4, 8), np.float32, "sbuf", "x")
>>> t[1, 2:6].shape, t[1:3].ap([[8, 2], [2, 2]], offset=1).shape
((1, 4), (2, 2))
"""

from __future__ import annotations

import math
import weakref
from enum import Enum

import numpy as np

from ..errors import ShapeError
from ..engines.memory import ReachError
from ..engines.limits import PSUM_BANK_BYTES
from . import _dtypes

__all__ = ["NkiTensor", "IndirectView", "OutOfBoundsView", "MemoryRegion", "DynSlice", "IndexRange", "KernelArgumentHBM",
           "buffer_kind"]


class MemoryRegion(str, Enum):
    """Where a tensor lives (``nl.sbuf``, ``nl.psum``, ``nl.private_hbm`` = ``nl.hbm``, ``nl.shared_hbm``)."""

    sbuf = "sbuf"
    psum = "psum"
    private_hbm = "private_hbm"
    shared_hbm = "shared_hbm"

    def __str__(self) -> str:
        return self.value


class KernelArgumentHBM(str):
    """The buffer of a kernel's input tensors: HBM that compares equal to ``nl.hbm``, ``nl.private_hbm`` and
    ``nl.shared_hbm`` alike (kernels assert ``x.buffer == nl.hbm``; inputs are visible to every program)."""

    def __new__(cls):
        return super().__new__(cls, "shared_hbm")

    def __eq__(self, other) -> bool:
        return getattr(other, "value", other) in ("hbm", "private_hbm", "shared_hbm")

    def __ne__(self, other) -> bool:
        return not self == other

    __hash__ = str.__hash__


def buffer_kind(buffer) -> str:
    """The memory kind ("sbuf" | "psum" | "hbm") of an NKI buffer argument."""
    value = getattr(buffer, "value", buffer)
    if value in ("sbuf", "psum"):
        return value
    if value in ("hbm", "private_hbm", "shared_hbm"):
        return "hbm"
    raise ShapeError(f"buffer: {buffer!r} is not nl.sbuf, nl.psum, nl.hbm, nl.private_hbm or nl.shared_hbm")


class DynSlice:
    """``nl.ds(start, size)``: ``size`` elements from ``start``."""

    __slots__ = ("start", "size", "step")

    def __init__(self, start, size, step: int = 1):
        self.start, self.size, self.step = int(start), int(size), int(step)

    def as_slice(self) -> slice:
        return slice(self.start, self.start + self.size * self.step, self.step)

    def __repr__(self) -> str:
        return f"ds({self.start}, {self.size})"


class IndexRange:
    """A legacy ``nl.arange(n)`` / ``nl.mgrid`` index expression: ``start + step * i`` for ``i < size``.

    ``[:, None]`` / ``[None, :]`` only say which dim it indexes (the position in the key says the same), ``+ k``
    and ``* k`` move and scale it.
    """

    __slots__ = ("start", "step", "size")

    def __init__(self, start: int, step: int, size: int):
        self.start, self.step, self.size = int(start), int(step), int(size)

    def __getitem__(self, key) -> "IndexRange":
        return self

    def __add__(self, k):
        return IndexRange(self.start + int(k), self.step, self.size)

    __radd__ = __add__

    def __sub__(self, k):
        return IndexRange(self.start - int(k), self.step, self.size)

    def __mul__(self, k):
        return IndexRange(self.start * int(k), self.step * int(k), self.size)

    __rmul__ = __mul__

    def as_slice(self) -> slice:
        stop = self.start + self.step * self.size
        return slice(self.start, stop if stop >= 0 else None, self.step)

    def __array__(self, dtype=None, copy=None):
        return np.arange(self.start, self.start + self.step * self.size, self.step, dtype=dtype or np.int64)


#: peak bytes in use per memory and kind ("sbuf"/"psum": per partition; "hbm": total)
PEAKS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _note_peak(memory, kind: str, new) -> None:
    """Raise the peak of ``kind`` after allocating ``new``. On chip the bytes in use are the highest end (offset +
    bytes per partition) of the live tiles, and every tile is live when it is allocated, so the peak over a run is
    the highest end of any tile allocated: no scan of the live tiles (a kernel holding thousands of tiles, such as
    nki-library's attention_cte at 9216 tokens, allocated 7,700 of them, each scan over thousands)."""
    peaks = PEAKS.setdefault(memory, {})
    now = memory.used(kind) if kind == "hbm" else new.offset + new.bytes_per_partition
    peaks[kind] = max(peaks.get(kind, 0), now)


class _Owner:
    """Frees an allocation when the last view of it goes away: a tile allocated in a loop body lives for one
    iteration, as the NKI allocator would place it, so SBUF/PSUM capacity errors mean "too much live at once"."""

    __slots__ = ("memory", "base", "__weakref__")

    def __init__(self, memory, base):
        self.memory, self.base = memory, base

    def __del__(self):
        try:
            self.memory.free(self.base)
        except Exception:  # interpreter shutdown
            pass


def _storage_dtype(dt: np.dtype):
    """What the core's memory is given: the format name for the x4 types (so the tensor knows its format)."""
    name = _dtypes.nki_name(dt)
    return name if name.endswith("_x4") else np.dtype(dt.str) if dt.metadata else dt


class NkiTensor:
    """An NKI tensor: a view ``t`` of the core's memory (:class:`emulator.engines.memory.Tensor`) plus its NKI
    buffer name. View methods return new NkiTensors over new core views of the same bytes."""

    __slots__ = ("t", "buffer", "_owner")

    def __init__(self, t, buffer: str, owner=None):
        self.t, self.buffer, self._owner = t, buffer, owner

    # ---- construction ------------------------------------------------------------------------------------------
    @classmethod
    def allocate(cls, memory, shape, dtype, buffer: str = "sbuf", name: str | None = None, value=None,
                 address=None) -> "NkiTensor":
        """Allocate ``shape`` of ``dtype`` in ``memory`` (kind from ``buffer``; on chip at ``address=(start
        partition, byte offset)`` if given) and view the whole of it."""
        dt = _dtypes.as_dtype(dtype)
        shape = tuple(int(s) for s in (shape if isinstance(shape, (tuple, list)) else (shape,)))
        kind = buffer_kind(buffer)
        banks = None
        if kind == "psum":  # v4: a PSUM tile may span banks (a matmul output up to all 8)
            row = math.prod(shape[1:]) * dt.itemsize
            banks = -(-row // PSUM_BANK_BYTES) if row > PSUM_BANK_BYTES else None
        at = address if kind != "hbm" else None
        base = memory.allocate(kind, shape, _storage_dtype(dt), name or None, value=value, banks=banks, at=at)
        _note_peak(memory, kind, base)
        return cls(base, buffer if isinstance(buffer, KernelArgumentHBM) else getattr(buffer, "value", buffer),
                   _Owner(memory, base))

    def _derive(self, t) -> "NkiTensor":
        return NkiTensor(t, self.buffer, self._owner)

    def _from_data(self, data: np.ndarray, what: str) -> "NkiTensor":
        t = self.t
        return self._derive(type(t)(f"{t.base.name}{what}", t.kind, data, t.base, t.start_partition, t.offset,
                                    t.memory, t.x4))

    @property
    def arr(self) -> np.ndarray:
        return self.t.data

    @property
    def base(self):
        return self.t.base

    @property
    def base_tensor(self) -> "NkiTensor":
        """The whole tensor this one views (itself when it is not a view): nki-library reads it from kernel
        arguments and views (``weight.base_tensor.dtype``, ``TensorView(w.base_tensor)``) as it does from its own
        ``TensorView``. Not in NKI's API reference; the official simulator's tensors evidently have it."""
        return self._derive(self.t.base)

    @property
    def name(self) -> str:
        return self.t.base.name

    @property
    def kind(self) -> str:
        return self.t.kind

    @property
    def shape(self) -> tuple:
        return self.t.data.shape

    @property
    def dtype(self) -> np.dtype:
        x4 = self.t.x4
        return _dtypes.DTYPES[x4] if x4 else self.t.data.dtype

    @property
    def ndim(self) -> int:
        return self.t.data.ndim

    @property
    def size(self) -> int:
        return self.t.data.size

    @property
    def itemsize(self) -> int:
        return self.t.data.dtype.itemsize

    @property
    def strides(self) -> tuple:
        """Strides in elements of this view's dtype."""
        return tuple(s // self.itemsize for s in self.t.data.strides)

    @property
    def byte_offset(self) -> int:
        return self.t.data.__array_interface__["data"][0] - self.t.base.data.__array_interface__["data"][0]

    @property
    def offset(self) -> int:
        """Offset of the first element from the start of the allocation, in elements of this view's dtype."""
        return self.byte_offset // self.itemsize

    def describe(self) -> str:
        return f"{self.buffer.upper()} tensor {self.name!r} {list(self.t.base.shape)} {_dtypes.nki_name(self.dtype)}"

    def __repr__(self) -> str:
        return f"NkiTensor({self.name!r}, shape={self.shape}, dtype={_dtypes.nki_name(self.dtype)}, {self.buffer})"

    # ---- indexing -----------------------------------------------------------------------------------------------
    def __getitem__(self, key) -> "NkiTensor":
        key = key if isinstance(key, tuple) else (key,)
        key = tuple(k.as_slice() if isinstance(k, (DynSlice, IndexRange)) else
                    int(k) if isinstance(k, np.integer) else k for k in key)
        if self.kind != "hbm" and key and isinstance(key[0], int):
            p = key[0] + (self.shape[0] if key[0] < 0 else 0)
            key = (slice(p, p + 1),) + key[1:]
        for k in key:
            if not (k is Ellipsis or isinstance(k, (slice, int))):
                raise ShapeError(f"{self.name}[...]: index {k!r} is not an int, a slice, nl.ds(...) or nl.arange(...)")
        self._check_bounds(key)
        view = self.t[key]
        if view.data.ndim == 0:
            return self._from_data(view.data.reshape(1), "")
        if view.data.ndim == 1 and self.kind != "hbm":
            # an on-chip view is at least 2D (NKI's NkiTensor.__getitem__): t[:, i] of a [P, F] tile is [P, 1]
            view = view.reshape((view.shape[0], 1))
        return self._derive(view)

    def _check_bounds(self, key) -> None:
        dims = list(key)
        if Ellipsis in dims:
            i = dims.index(Ellipsis)
            dims = dims[:i] + [slice(None)] * (self.ndim - len(dims) + 1) + dims[i + 1:]
        if len(dims) > self.ndim:
            raise ShapeError(f"{self.name}{list(self.shape)}: {len(dims)} indices for {self.ndim} dims")
        for d, (k, n) in enumerate(zip(dims, self.shape)):
            if isinstance(k, int) and not -n <= k < n:
                raise ShapeError(f"{self.name}{list(self.shape)}: index {k} of dim {d} is outside 0:{n}")
            if isinstance(k, slice) and k.step in (None, 1):
                start = 0 if k.start is None else k.start + (n if k.start < 0 else 0)
                stop = n if k.stop is None else k.stop + (n if k.stop < 0 else 0)
                # an empty slice (nl.ds(i, 0)) is a view like NumPy's: kernels make one for a core with no share
                # of the work and never use it; an instruction given an empty operand is refused (_dispatch)
                if start < 0 or stop > n or start > stop:
                    raise ShapeError(f"{self.name}{list(self.shape)}: dim {d} slice {start}:{stop} is "
                                     + (f"outside 0:{n}" if start <= stop else "backwards"))

    # ---- views --------------------------------------------------------------------------------------------------
    def reshape(self, *shape) -> "NkiTensor":
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)
        if -1 in shape:
            known = int(np.prod([s for s in shape if s != -1]))
            shape = tuple(self.size // known if s == -1 else s for s in shape)
        if self.kind != "hbm" and shape and shape[0] != self.shape[0]:
            raise ShapeError(f"{self.name}.reshape({list(shape)}): an on-chip tensor keeps its partition dim "
                             f"({self.shape[0]})")
        return self._derive(self.t.reshape(shape))

    def view(self, dtype) -> "NkiTensor":
        dt = _dtypes.as_dtype(dtype)
        if self.t.data.strides[-1] != self.itemsize and self.shape[-1] != 1:
            raise ShapeError(f"{self.name}.view({_dtypes.nki_name(dt)}): the last dimension must be contiguous")
        return self._derive(self.t.view(_storage_dtype(dt)))

    reinterpret_cast = view

    def ap(self, pattern, offset: int | None = None, scalar_offset=None, vector_offset=None, indirect_dim: int = 0,
           dtype=None) -> "NkiTensor":
        """An explicit access pattern ``[[stride, count], ...]`` (strides in elements) from this view's start."""
        off = int(offset) if offset else 0
        dt = None if dtype is None else _storage_dtype(_dtypes.as_dtype(dtype))
        if vector_offset is not None:  # per-row indices: a gather/scatter pattern for dma_copy
            index = vector_offset.t if isinstance(vector_offset, NkiTensor) else vector_offset
            return IndirectView(self.t.ap(pattern, offset=off, dtype=dt, vector_offset=index,
                                          indirect_dim=indirect_dim), self)
        if scalar_offset is not None:  # indirect_dim names a dim of this tensor (the pattern has dropped it)
            off += _dynamic_value(scalar_offset, self.name) * int(self.strides[indirect_dim])
            try:
                return self._derive(self.t.ap(pattern, offset=off, dtype=dt))
            except ShapeError as exc:  # a dynamic address: the DMA checks it when it runs (oob_mode decides)
                return OutOfBoundsView(self, pattern, dtype, str(exc))
        try:
            return self._derive(self.t.ap(pattern, offset=off, dtype=dt))
        except ReachError as exc:  # making the pattern is no access: the instruction that uses it is refused
            return OutOfBoundsView(self, pattern, dtype, str(exc), static=True)

    def get_pattern(self) -> list[list[int]]:
        return [[s, n] for s, n in zip(self.strides, self.shape)]

    def is_contiguous(self) -> bool:
        dims = list(zip(self.shape, self.t.data.strides))[1 if self.kind != "hbm" else 0:]
        expect = self.itemsize
        for n, st in reversed(dims):
            if n != 1 and st != expect:
                return False
            expect *= n
        return True

    def is_indirect(self) -> bool:
        return False

    def permute(self, dims) -> "NkiTensor":
        if self.kind != "hbm" and dims[0] != 0:
            raise ShapeError(f"{self.name}.permute({list(dims)}): the partition dim of an on-chip tensor stays first")
        return self._from_data(self.arr.transpose(dims), f".permute({list(dims)})")

    def broadcast(self, dim: int, size: int) -> "NkiTensor":
        if self.shape[dim] != 1:
            raise ShapeError(f"{self.name}.broadcast({dim}, {size}): dim {dim} has size {self.shape[dim]}, not 1")
        shape = self.shape[:dim] + (size,) + self.shape[dim + 1:]
        return self._from_data(np.broadcast_to(self.arr, shape), f".broadcast({dim}, {size})")

    def expand_dim(self, dim: int) -> "NkiTensor":
        return self._from_data(np.expand_dims(self.arr, dim), f".expand_dim({dim})")

    def squeeze_dim(self, dim: int) -> "NkiTensor":
        return self._from_data(np.squeeze(self.arr, dim), f".squeeze_dim({dim})")

    def reshape_dim(self, dim: int, shape) -> "NkiTensor":
        return self.reshape(self.shape[:dim] + tuple(shape) + self.shape[dim + 1:])

    def flatten_dims(self, start_dim: int, end_dim: int) -> "NkiTensor":
        merged = int(np.prod(self.shape[start_dim:end_dim + 1]))
        return self.reshape(self.shape[:start_dim] + (merged,) + self.shape[end_dim + 1:])

    def slice(self, dim: int, start: int, end: int, step: int = 1) -> "NkiTensor":
        return self[(slice(None),) * dim + (slice(start, end, step),)]

    def select(self, dim: int, index) -> "NkiTensor":
        index = _dynamic_value(index, self.name) if isinstance(index, NkiTensor) else int(index)
        out = self[(slice(None),) * dim + (slice(index, index + 1),)]
        if self.kind == "hbm" or dim:
            return out._from_data(np.squeeze(out.arr, dim), f".select({dim}, {index})")
        return out

    # ---- data ---------------------------------------------------------------------------------------------------
    def check_initialized(self, instruction: str) -> None:
        self.t.check_initialized(instruction)

    def read(self, instruction: str = "read") -> np.ndarray:
        """A copy of the values (after the uninitialised-read check)."""
        return self.t.read(instruction)

    def write(self, values, path: str = "engine") -> None:
        """Store ``values`` (converted to this view's dtype through the settings' rounding) and mark them written."""
        self.t.write(np.broadcast_to(np.asarray(values), self.shape), path=path)

    def mark_written(self) -> None:
        self.t.mark_written()

    def __array__(self, dtype=None, copy=None):
        out = self.read("np.asarray")
        return out if dtype is None else out.astype(dtype)

    def __len__(self) -> int:
        return self.shape[0]

    def __bool__(self) -> bool:
        # A kernel's Python runs when NKI traces it, before any data exists: a tensor in an `if` is a handle, and
        # kernels test optional arguments that way (`if params.expert_index:`, nki-library's moe_tkg); its values
        # would decide nothing on the device, so they decide nothing here either
        return True

    def __setitem__(self, key, value) -> None:
        # legacy `tile[...] = nl.add(...)`: a copy of the values into the view
        dst = self[key]
        dst.write(value.read("tensor assignment") if isinstance(value, NkiTensor) else value)


class IndirectView:
    """``t.ap(pattern, vector_offset=idx)``: an access pattern whose dim-0 rows come from an index tensor (a
    ``dma_copy`` gather/scatter operand; the core resolves the rows when the DMA runs)."""

    __slots__ = ("t", "source")

    def __init__(self, indirect, source: NkiTensor):
        self.t, self.source = indirect, source

    shape = property(lambda self: self.t.shape)
    kind = property(lambda self: self.t.kind)
    name = property(lambda self: self.source.name)
    buffer = property(lambda self: self.source.buffer)
    dtype = property(lambda self: self.source.dtype if self.t.dtype is None else _dtypes.as_dtype(self.t.dtype))

    def is_indirect(self) -> bool:
        return True

    def describe(self) -> str:
        return f"indirect view of {self.source.describe()}"


class OutOfBoundsView:
    """``t.ap(pattern, scalar_offset=r)`` whose dynamic offset puts part of the pattern outside ``t``. NKI checks a
    dynamic address when the DMA runs: ``dma_copy(..., oob_mode=skip)`` skips the transfer, ``oob_mode=error``
    (and any other use) raises, naming the reach (:meth:`error`).

    ``static``: a pattern with a fixed offset reaching past its tile (nki-library's output_proj_tkg builds the
    stationary pattern of a loop step past its last and only uses it under ``if h_2_idx < h_2_size``). Building
    it touches nothing; an instruction given it is refused (on hardware it would read or write whatever lies
    beyond the tile in the same partitions, which the emulator does not model)."""

    __slots__ = ("source", "shape", "dtype", "reason", "static")

    def __init__(self, source: NkiTensor, pattern, dtype, reason: str, static: bool = False):
        self.source, self.reason, self.static = source, reason, static
        self.shape = tuple(int(n) for _, n in pattern)
        self.dtype = source.dtype if dtype is None else _dtypes.as_dtype(dtype)

    name = property(lambda self: self.source.name)
    buffer = property(lambda self: self.source.buffer)
    kind = property(lambda self: self.source.kind)

    def error(self, instruction: str) -> ShapeError:
        if self.static:
            return ShapeError(f"{instruction}: an operand's access pattern reaches outside its tile: {self.reason} "
                              "(the hardware would access whatever lies beyond it; the emulator does not model "
                              "that)")
        return ShapeError(f"{instruction}: the dynamic (scalar_offset) access pattern is out of bounds: "
                          f"{self.reason} (oob_mode=error; a DMA with oob_mode=skip skips the transfer)")

    def describe(self) -> str:
        return f"out-of-bounds view of {self.source.describe()}"


def _dynamic_value(x, name: str) -> int:
    """The integer held by a register or a one-element tensor used as a dynamic offset."""
    if isinstance(x, NkiTensor):
        values = x.read(f"{name}: dynamic offset")
        if values.size != 1:
            raise ShapeError(f"{name}: a dynamic offset tensor must hold one value, {x.name} has {values.size}")
        return int(values.reshape(-1)[0])
    return int(getattr(x, "value", x))


def _fmt_key(key) -> str:
    def one(k):
        if isinstance(k, slice):
            return f"{'' if k.start is None else k.start}:{'' if k.stop is None else k.stop}" + (
                f":{k.step}" if k.step not in (None, 1) else "")
        return "..." if k is Ellipsis else str(k)
    return ", ".join(one(k) for k in key)
