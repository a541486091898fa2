"""``NkiTensor``: a view of one memory allocation (SBUF, PSUM or HBM) with NKI's indexing and view methods.

A view is a NumPy array over the allocation's bytes (any offset, strides, dtype): slicing, ``nl.ds``, the legacy
``nl.arange`` index expressions, ``.reshape``, ``.view(dtype)``, ``.ap(pattern, offset, dtype)``, ``.permute``,
``.broadcast`` and friends all produce such an array, so reads and writes go straight to the allocation. Which bytes
were written is tracked on the allocation (``Tensor.written``, one flag per element of the allocation's dtype);
:meth:`NkiTensor.read` raises :class:`~emulator.errors.UninitializedReadError` naming the tensor and the instruction.

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

import weakref
from enum import Enum

import numpy as np

from ..errors import ShapeError, UninitializedReadError
from ..config import get_settings
from . import _dtypes

__all__ = ["NkiTensor", "MemoryRegion", "DynSlice", "IndexRange", "buffer_kind"]


class MemoryRegion(str, Enum):
    """Where a tensor lives (``nl.sbuf``, ``nl.psum``, ``nl.private_hbm`` = ``nl.hbm``, ``nl.shared_hbm``)."""

    sbuf = "sbuf"
    psum = "psum"
    private_hbm = "private_hbm"
    shared_hbm = "shared_hbm"

    def __str__(self) -> str:
        return self.value


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


def _note_peak(memory, kind: str) -> None:
    peaks = PEAKS.setdefault(memory, {})
    peaks[kind] = max(peaks.get(kind, 0), memory.used(kind))


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


class NkiTensor:
    """A view of an allocation: ``arr`` (NumPy view of the bytes), ``base`` (the memory Tensor), ``buffer``."""

    __slots__ = ("base", "arr", "buffer", "name", "kind", "_bytes", "_owner", "_off", "_w")

    def __init__(self, base, arr: np.ndarray, buffer: str, name: str | None = None, owner=None):
        self.base, self.arr, self.buffer = base, arr, buffer
        self.name = name or base.name
        self.kind = base.kind  # "sbuf" | "psum" | "hbm"
        self._bytes = None
        self._owner = owner
        self._off = self._w = None

    # ---- construction ------------------------------------------------------------------------------------------
    @classmethod
    def allocate(cls, memory, shape, dtype, buffer: str = "sbuf", name: str | None = None, value=None) -> "NkiTensor":
        """Allocate ``shape`` of ``dtype`` in ``memory`` (kind from ``buffer``) and view the whole of it."""
        dt = _dtypes.as_dtype(dtype)
        shape = tuple(int(s) for s in (shape if isinstance(shape, (tuple, list)) else (shape,)))
        kind = buffer_kind(buffer)
        base = memory.allocate(kind, shape, dt, name or None, value=value)
        if base.data.dtype != dt:  # keep the NKI tag (tfloat32, x4) on the view's dtype
            base.data = base.data.view(dt)
        _note_peak(memory, kind)
        return cls(base, base.data, getattr(buffer, "value", buffer), owner=_Owner(memory, base))

    @property
    def shape(self) -> tuple:
        return self.arr.shape

    @property
    def dtype(self) -> np.dtype:
        return self.arr.dtype

    @property
    def ndim(self) -> int:
        return self.arr.ndim

    @property
    def size(self) -> int:
        return self.arr.size

    @property
    def itemsize(self) -> int:
        return self.arr.dtype.itemsize

    @property
    def strides(self) -> tuple:
        """Strides in elements of this view's dtype."""
        return tuple(s // self.itemsize for s in self.arr.strides)

    @property
    def offset(self) -> int:
        """Offset of the first element from the start of the allocation, in elements of this view's dtype."""
        return self.byte_offset // self.itemsize

    @property
    def byte_offset(self) -> int:
        if self._off is None:  # (reading a data pointer costs ~10 us: once per view)
            self._off = self.arr.__array_interface__["data"][0] - self.base.data.__array_interface__["data"][0]
        return self._off

    def _raw(self) -> np.ndarray:
        if self._bytes is None:
            self._bytes = self.base.data.reshape(-1).view(np.uint8)
        return self._bytes

    def _derive(self, arr: np.ndarray) -> "NkiTensor":
        out = NkiTensor(self.base, arr, self.buffer, self.name, self._owner)
        out._bytes = self._bytes
        return out

    def _strided(self, shape, byte_strides, byte_offset: int, dtype) -> "NkiTensor":
        raw = self._raw()
        dt = _dtypes.as_dtype(dtype)
        shape = tuple(int(s) for s in shape)
        lo = byte_offset + sum((n - 1) * s for n, s in zip(shape, byte_strides) if s < 0)
        hi = byte_offset + sum((n - 1) * s for n, s in zip(shape, byte_strides) if s > 0) + dt.itemsize
        if lo < 0 or hi > raw.size or any(n <= 0 for n in shape):
            raise ShapeError(f"{self.name}: access pattern shape {list(shape)} strides {list(byte_strides)} bytes "
                             f"from byte {byte_offset} leaves the {raw.size}-byte allocation {self.describe()}")
        arr = np.ndarray(shape, dt, buffer=raw, offset=byte_offset, strides=tuple(byte_strides))
        return self._derive(arr)

    def describe(self) -> str:
        return f"{self.buffer.upper()} tensor {self.name!r} {list(self.base.shape)} {_dtypes.nki_name(self.dtype)}"

    def __repr__(self) -> str:
        return f"NkiTensor({self.name!r}, shape={self.shape}, dtype={_dtypes.nki_name(self.dtype)}, {self.buffer})"

    # ---- indexing -----------------------------------------------------------------------------------------------
    def __getitem__(self, key) -> "NkiTensor":
        key = key if isinstance(key, tuple) else (key,)
        key = tuple(k.as_slice() if isinstance(k, (DynSlice, IndexRange)) else k for k in key)
        if self.kind != "hbm" and key and isinstance(key[0], (int, np.integer)):
            p = int(key[0]) + (self.shape[0] if key[0] < 0 else 0)
            key = (slice(p, p + 1),) + key[1:]
        for k in key:
            if not (k is Ellipsis or k is None or isinstance(k, (slice, int, np.integer))):
                raise ShapeError(f"{self.name}[...]: index {k!r} is not an int, a slice, nl.ds(...) or nl.arange(...)")
        try:
            self._check_bounds(key)
            arr = self.arr[key]
        except IndexError as exc:
            raise ShapeError(f"{self.name}{list(self.shape)}[{_fmt_key(key)}]: {exc}") from None
        if arr.ndim == 0:
            arr = arr.reshape(1)
        return self._derive(arr)

    def _check_bounds(self, key) -> None:
        dims = [k for k in key if k is not None]
        if Ellipsis in dims:
            i = dims.index(Ellipsis)
            dims = dims[:i] + [slice(None)] * (self.ndim - len(dims) + 1) + dims[i + 1:]
        for d, (k, n) in enumerate(zip(dims, self.shape)):
            if isinstance(k, slice) and k.step in (None, 1):
                start = 0 if k.start is None else k.start + (n if k.start < 0 else 0)
                stop = n if k.stop is None else k.stop + (n if k.stop < 0 else 0)
                if start < 0 or stop > n or start >= stop:
                    raise ShapeError(f"{self.name}{list(self.shape)}: dim {d} slice {start}:{stop} is outside 0:{n}"
                                     if start < stop else f"{self.name}{list(self.shape)}: dim {d} slice "
                                     f"{start}:{stop} is empty")

    def __setitem__(self, key, value) -> None:
        # kernels never assign into tiles with [...] = ...; an nl.* result assigned this way is a copy
        dst = self[key]
        src = value.read("tensor assignment") if isinstance(value, NkiTensor) else np.asarray(value)
        dst.write(np.broadcast_to(src.astype(np.float32).astype(dst.dtype) if src.dtype != dst.dtype else src,
                                  dst.shape))

    # ---- views --------------------------------------------------------------------------------------------------
    def reshape(self, *shape) -> "NkiTensor":
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)
        if self.kind != "hbm" and shape and shape[0] != self.shape[0] and -1 not in shape[:1]:
            raise ShapeError(f"{self.name}.reshape({list(shape)}): an on-chip tensor keeps its partition dim "
                             f"({self.shape[0]})")
        try:
            arr = self.arr.reshape(shape, copy=False)
        except (ValueError, TypeError) as exc:
            raise ShapeError(f"{self.name}{list(self.shape)}.reshape({list(shape)}): {exc} (the view's layout "
                             "does not allow it without a copy)") from None
        return self._derive(arr)

    def view(self, dtype) -> "NkiTensor":
        dt = _dtypes.as_dtype(dtype)
        if self.arr.strides[-1] != self.itemsize and self.shape[-1] != 1:
            raise ShapeError(f"{self.name}.view({_dtypes.nki_name(dt)}): the last dimension must be contiguous")
        if (self.shape[-1] * self.itemsize) % dt.itemsize:
            raise ShapeError(f"{self.name}.view({_dtypes.nki_name(dt)}): last dim {self.shape[-1]} x "
                             f"{self.itemsize} bytes is not a multiple of {dt.itemsize}")
        shape = self.shape[:-1] + (self.shape[-1] * self.itemsize // dt.itemsize,)
        return self._strided(shape, self.arr.strides[:-1] + (dt.itemsize,), self.byte_offset, dt)

    reinterpret_cast = view

    def ap(self, pattern, offset: int | None = None, scalar_offset=None, vector_offset=None, indirect_dim: int = 0,
           dtype=None) -> "NkiTensor":
        """An explicit access pattern ``[[stride, count], ...]`` (strides in elements) over the allocation."""
        dt = _dtypes.as_dtype(dtype) if dtype is not None else self.dtype
        try:
            strides, counts = zip(*[(int(s), int(c)) for s, c in pattern])
        except (TypeError, ValueError):
            raise ShapeError(f"{self.name}.ap: pattern {pattern!r} must be a list of [stride, count] pairs") from None
        base = self.byte_offset + (int(offset) if offset else 0) * dt.itemsize
        if scalar_offset is not None or vector_offset is not None:
            extra = _dynamic_value(scalar_offset if scalar_offset is not None else vector_offset, self.name)
            base += int(extra) * strides[indirect_dim] * dt.itemsize
        return self._strided(counts, [s * dt.itemsize for s in strides], base, dt)

    def get_pattern(self) -> list[list[int]]:
        return [[s, n] for s, n in zip(self.strides, self.shape)]

    def is_contiguous(self) -> bool:
        dims = list(zip(self.shape, self.arr.strides))[1 if self.kind != "hbm" else 0:]
        expect = self.itemsize
        for n, s in reversed(dims):
            if n != 1 and s != expect:
                return False
            expect *= n
        return True

    def is_indirect(self) -> bool:
        return False

    def permute(self, dims) -> "NkiTensor":
        if self.kind != "hbm" and dims[0] != 0:
            raise ShapeError(f"{self.name}.permute({list(dims)}): the partition dim of an on-chip tensor stays first")
        return self._derive(self.arr.transpose(dims))

    def broadcast(self, dim: int, size: int) -> "NkiTensor":
        if self.shape[dim] != 1:
            raise ShapeError(f"{self.name}.broadcast({dim}, {size}): dim {dim} has size {self.shape[dim]}, not 1")
        shape = self.shape[:dim] + (size,) + self.shape[dim + 1:]
        return self._derive(np.broadcast_to(self.arr, shape))

    def expand_dim(self, dim: int) -> "NkiTensor":
        return self._derive(np.expand_dims(self.arr, dim))

    def squeeze_dim(self, dim: int) -> "NkiTensor":
        return self._derive(np.squeeze(self.arr, dim))

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
        return out._derive(np.squeeze(out.arr, dim)) if self.kind == "hbm" or dim else out

    # ---- data ---------------------------------------------------------------------------------------------------
    def written_view(self):
        """The allocation's written flags under this view: an array of this view's shape (plus a trailing axis
        when one element of the view spans several of the allocation's elements), or flat indices."""
        if self._w is None:
            self._w = self._written_view()
        return self._w

    def _written_view(self):
        w = self.base.written
        bsz = self.base.data.dtype.itemsize
        off, strides, isz = self.byte_offset, self.arr.strides, self.itemsize
        if off % bsz == 0 and all(s % bsz == 0 for s in strides) and isz % bsz == 0:
            shape, wst = self.shape, tuple(s // bsz for s in strides)
            if isz > bsz:
                shape, wst = shape + (isz // bsz,), wst + (1,)
            return np.ndarray(shape, np.bool_, buffer=w.reshape(-1), offset=off // bsz, strides=wst)
        idx = off + sum(np.arange(n).reshape((-1,) + (1,) * (self.ndim - d - 1)) * s
                        for d, (n, s) in enumerate(zip(self.shape, strides)))
        return (np.asarray(idx) // bsz).reshape(-1)

    def check_initialized(self, instruction: str) -> None:
        policy = get_settings().uninitialized
        if policy == "ignore":
            return
        w = self.written_view()
        flags = self.base.written.reshape(-1)[w] if w.dtype != np.bool_ else w
        if flags.all():
            return
        first = np.argwhere(~flags.reshape(self.shape + flags.shape[len(self.shape):]) if w.dtype == np.bool_
                            else ~flags.reshape(self.shape))[0][:self.ndim]
        msg = (f"{instruction}: reads {self.describe()} at index {tuple(int(i) for i in first)} of the view "
               f"{list(self.shape)}, which nothing has written")
        if policy == "raise":
            raise UninitializedReadError(msg + " (setting uninitialized='raise'; 'warn' or 'ignore' to continue)")
        import warnings

        from ..engines.memory import UninitializedReadWarning

        warnings.warn(msg, UninitializedReadWarning, stacklevel=4)

    def read(self, instruction: str = "read") -> np.ndarray:
        """A copy of the values (after the uninitialised-read check)."""
        self.check_initialized(instruction)
        return np.array(self.arr)

    def write(self, values) -> None:
        """Store ``values`` (already of this view's dtype or castable bit-exactly) and mark them written."""
        self.arr[...] = values
        self.mark_written()

    def mark_written(self) -> None:
        w = self.written_view()
        if w.dtype == np.bool_:
            w[...] = True
        else:
            self.base.written.reshape(-1)[w] = True

    def __array__(self, dtype=None, copy=None):
        out = self.read("np.asarray")
        return out if dtype is None else out.astype(dtype)

    def __len__(self) -> int:
        return self.shape[0]

    def __bool__(self) -> bool:
        # `assert nl.equal(a, b)` in NKI's doc examples: true when every element is non-zero
        return bool(np.all(self.read("bool(tensor)").astype(np.float32) != 0))


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
