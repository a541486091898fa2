"""On-chip and device memory of one NeuronCore-v4: HBM, SBUF and PSUM buffers with capacity and initialisation tracking.

SBUF and PSUM are 2-D memories of 128 partitions; a tensor's dim 0 is its partition dim and it occupies the same
byte range in a contiguous run of partitions. Capacities (reference section 1.1): SBUF 128 x 256 KiB of which
245 752 bytes per partition are usable, PSUM 128 x 8 banks x 2 KiB, HBM 144 GiB per device. Allocations that do not
fit raise :class:`~emulator.errors.CapacityError` naming the buffer, the request and the limit.

Every tensor remembers which elements were written. Reading one that never was raises
:class:`~emulator.errors.UninitializedReadError` naming the tensor, the instruction and the first such index (setting
``uninitialized``: raise | warn | ignore). Fresh float tensors hold NaN, as in the official simulator, so an
ignored uninitialised read still shows.

>>> import numpy as np, emulator as emu
>>> from emulator.engines.memory import Memory
>>> mem = Memory()
>>> t = mem.sbuf((128, 512), "bfloat16", name="x")
>>> t.bytes_per_partition, mem.used("sbuf")
(1024, 1024)
>>> t.write(np.ones((128, 512), np.float32))
>>> float(t.read("demo").astype(np.float32).sum())
65536.0
"""

from __future__ import annotations

import itertools
import math
import threading
import warnings
import numpy as np

from ..config import get_settings
from ..errors import ArgumentError, ArgumentTypeError, CapacityError, ShapeError, UninitializedReadError
from .store import convert
from .limits import HBM_BYTES, PMAX, PSUM_BANK_BYTES, PSUM_BANKS, SBUF_PARTITION_BYTES

__all__ = ["Memory", "HBM", "Tensor", "IndirectAP", "ReachError", "UninitializedReadWarning", "PMAX", "SBUF_PARTITION_BYTES", "PSUM_BANK_BYTES",
           "PSUM_BANKS", "HBM_BYTES", "as_dtype"]



class ReachError(ShapeError):
    """An access pattern (``Tensor.ap``) reaching outside its tensor's memory."""


#: an element's written-flag bytes all set, read as one little-endian integer of the element's size
_ALL_SET = {2: 0x0101, 4: 0x01010101, 8: 0x0101010101010101}


class _Life:
    """An on-chip allocation's uses (setting ``onchip_lifetime``), kept apart from its data: the memory remembers
    freed tiles' lives while a later use may reach back over them, and must not keep their arrays for that."""

    __slots__ = ("name", "start", "stop", "held", "born", "last", "pinned", "offset", "freed")

    def __init__(self, name: str, start: int, stop: int, held: int, clock: int, pinned: bool, offset: int):
        self.name, self.start, self.stop, self.held = name, start, stop, held  # partitions [start, stop), bytes each
        self.born: int | None = None  # the clock at the first use (nothing is live before it is written)
        self.last = clock  # the clock at the last use (at allocation until the first)
        self.pinned, self.offset, self.freed = pinned, offset, False  # placed by the kernel (address=) at offset

    def overlaps(self, start: int, stop: int) -> bool:
        return self.start < stop and start < self.stop


class UninitializedReadWarning(UserWarning):
    """An instruction read memory that nothing had written (setting ``uninitialized="warn"``)."""


def as_dtype(dtype) -> np.dtype:
    """A NumPy dtype from a dtype or a format name (``"bfloat16"``, ``"float8_e4m3fn"``; x4 names give uint32/16)."""
    if isinstance(dtype, str):
        from ..numerics import formats
        from ..numerics.packing import x4_word_dtype

        if dtype.endswith("_x4"):
            return x4_word_dtype(dtype)
        try:
            return np.dtype(dtype)
        except TypeError:
            fmt = formats.get(dtype)
            return fmt.ml_dtype if fmt.ml_dtype is not None else fmt.code_dtype
    return np.dtype(dtype)


class Tensor:
    """A memory tensor or a view of one: ``data`` (a NumPy view into the allocation) and where it lives.

    ``t[idx]`` (ints, slices with steps, Ellipsis; partition dim first), ``t.reshape(shape)``, ``t.view(dtype)`` and
    ``t.ap(pattern, offset, dtype)`` give views that read and write the same bytes. Initialisation is tracked per
    byte of the allocation, so it follows any view (a bfloat16 view of half an fp32 word is half written).
    """

    __slots__ = ("name", "kind", "data", "_base", "start_partition", "offset", "memory", "x4", "_mask", "_all",
                 "carried", "life", "_since", "_bpp", "__weakref__")

    def __init__(self, name: str, kind: str, data: np.ndarray, base: "Tensor | None" = None, start_partition: int = 0,
                 offset: int = 0, memory: "Memory | None" = None, x4: str | None = None, written: bool = False) -> None:
        self.name, self.kind, self.data, self.x4 = name, kind, data, x4  # x4: packed format name of uint words
        # bytes per partition, fixed with the data's shape: the allocator's scans over all live tiles read it often
        self._bpp = math.prod(data.shape[1:]) * data.dtype.itemsize if kind != "hbm" else 0
        # a view's allocation; None for the allocation itself (a reference to itself would be a cycle: the tensor,
        # and its data, would wait for the cyclic garbage collector instead of going with its last reference)
        self._base = base
        self.start_partition, self.offset, self.memory = start_partition, offset, memory
        # (base only) the written-flags per byte, made on first need when the tensor starts fully ``written`` (kernel
        # inputs: a base's _mask is None only while every byte is written); every byte written: reads skip the mask
        self._mask = np.zeros(data.shape + (data.dtype.itemsize,), bool) if base is None and not written else None
        self._all = written
        self._since = 0  # (base only) bytes marked written since the last look at the whole mask
        self.carried: str | None = None  # (base only) the move that last carried unwritten elements in, if any
        self.life: "_Life | None" = None  # (base only, on chip) its uses, for liveness by last use

    @property
    def base(self) -> "Tensor":
        """The allocation this tensor views (itself for an allocation)."""
        return self if self._base is None else self._base

    # ---- description -----------------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def buffer(self) -> str:
        """``"sbuf"``, ``"psum"`` or ``"hbm"``."""
        return self.kind

    @property
    def bytes_per_partition(self) -> int:
        return self._bpp

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)

    @property
    def is_view(self) -> bool:
        return self._base is not None

    def __repr__(self) -> str:
        what = "view of " + repr(self.base.name) if self.is_view else repr(self.name)
        return f"<{self.kind.upper()} tensor {what} {list(self.shape)} {self.dtype}>"

    # ---- views -----------------------------------------------------------------------------------------------
    def _view(self, data: np.ndarray, what: str, x4: str | None = "same") -> "Tensor":
        return Tensor(f"{self.base.name}{what}", self.kind, data, self.base, self.start_partition, self.offset,
                      self.memory, self.x4 if x4 == "same" else x4)

    def __getitem__(self, index) -> "Tensor":
        items = index if isinstance(index, tuple) else (index,)
        for it in items:
            if not (it is Ellipsis or isinstance(it, (slice, int, np.integer))):
                raise ArgumentTypeError(f"{self.name}[...]: index {it!r} is not an int, a slice or Ellipsis (views only)")
        try:
            data = self.data[index]
        except IndexError as exc:
            raise ShapeError(f"{self.name}{list(self.shape)}[{_fmt_index(items)}]: {exc}") from None
        view = self._view(data, f"[{_fmt_index(items)}]")
        first = items[0] if items else Ellipsis
        if self.kind != "hbm" and first is not Ellipsis and self.shape:  # the view's first physical partition
            n = self.shape[0]
            row = first.indices(n)[0] if isinstance(first, slice) else int(first) % n
            view.start_partition = self.start_partition + row
        return view

    def reshape(self, shape) -> "Tensor":
        """The same elements in ``shape`` (must be expressible without a copy)."""
        shape = tuple(int(s) for s in (shape if isinstance(shape, (tuple, list)) else (shape,)))
        view = self.data.view()
        try:
            view.shape = shape  # raises instead of copying
        except (AttributeError, ValueError) as exc:
            raise ShapeError(f"{self.name}.reshape({shape}): {list(self.shape)} cannot be viewed as {shape} "
                             f"without a copy ({exc})") from None
        return self._view(view, f".reshape({shape})")

    def view(self, dtype) -> "Tensor":
        """The same bytes as ``dtype`` (the last dim scales by the itemsize ratio)."""
        dt = as_dtype(dtype)
        try:
            data = self.data.view(dt)
        except ValueError as exc:
            raise ShapeError(f"{self.name}.view({dt}): {exc}") from None
        return self._view(data, f".view({dt})", _x4_name(dtype))

    def ap(self, pattern, offset: int = 0, dtype=None, *, vector_offset: "Tensor | None" = None,
           indirect_dim: int = 0) -> "Tensor | IndirectAP":
        """An access pattern over this tensor's elements, as NKI's ``.ap``: element ``[i0, i1, ...]`` is
        ``flat[offset + sum(i_k * stride_k)]`` with ``pattern = [[stride_0, count_0], ...]`` (strides and offset in
        elements of ``dtype``, default the tensor's; ``flat`` is the tensor's memory from its first element on).
        On SBUF/PSUM the first pair is the partition step and count; the step must be one partition row: of the
        memory (the base tensor's row), or, on a view, of the view as it presents itself (the product of its free
        sizes: nki-library's TensorView builds patterns over a view from the view's shape), which steps to the
        view's next partition.

        ``vector_offset`` (a ``[P, 1]`` integer SBUF tensor) makes it indirect, for ``dma_copy`` gather/scatter:
        index ``i0`` of dim 0 becomes ``vector_offset[i0]`` (``indirect_dim`` must be 0), checked against the
        tensor's bounds when the DMA runs (``oob_mode``)."""
        if vector_offset is not None:
            if indirect_dim != 0:
                raise ShapeError(f"{self.name}.ap: indirect_dim={indirect_dim}; only dim 0 (per-partition row "
                                 "indices) is modelled")
            return IndirectAP(self, [[int(s), int(n)] for s, n in pattern], int(offset), dtype, vector_offset)
        dt = self.dtype if dtype is None else as_dtype(dtype)
        base = self.base.data
        flat = base.reshape(-1).view(np.uint8)
        start = self.data.__array_interface__["data"][0] - base.__array_interface__["data"][0]
        pairs = [(int(s), int(n)) for s, n in pattern]
        if not pairs or any(n <= 0 for _, n in pairs):
            raise ShapeError(f"{self.name}.ap: pattern {pattern!r} needs [stride, count] pairs with count >= 1")
        size = (flat.size - start) // dt.itemsize
        if self.kind != "hbm" and len(pairs) > 1:
            row = base[0].nbytes // dt.itemsize
            if pairs[0][0] != row and pairs[0][1] > 1:
                own = self.data[0].nbytes // dt.itemsize if self.data.ndim > 1 else row
                if pairs[0][0] != own or (self.data[0].nbytes | self.data.strides[0]) % dt.itemsize:
                    raise ShapeError(f"{self.name}.ap: partition step {pairs[0][0]} must be one partition row "
                                     f"({row} {dt} elements" + (f", or {own} as this view presents it)"
                                                                if own != row else ")"))
                pairs[0] = (self.data.strides[0] // dt.itemsize, pairs[0][1])  # the view's next partition
        lo = offset + sum(s * (n - 1) for s, n in pairs if s < 0)
        hi = offset + sum(s * (n - 1) for s, n in pairs if s > 0)
        if lo < 0 or hi >= size:
            raise ReachError(f"{self.name}.ap: pattern {pairs} at offset {offset} reaches element "
                             f"{lo if lo < 0 else hi}; the tensor holds {size} {dt} elements from its start")
        first = start + offset * dt.itemsize
        data = np.lib.stride_tricks.as_strided(flat[first:first + dt.itemsize].view(dt),
                                               shape=tuple(n for _, n in pairs),
                                               strides=tuple(s * dt.itemsize for s, _ in pairs))
        return self._view(data, f".ap({pairs}, {offset})", "same" if dtype is None else _x4_name(dtype))

    # ---- initialisation tracking -----------------------------------------------------------------------------
    @property
    def mask(self) -> np.ndarray:
        """The written-flags of this view's bytes (shape ``self.shape + (itemsize,)``), a view of the base's."""
        if self._mask is None:
            base = self.base
            if base._mask is None:
                base._mask = np.ones(base.data.shape + (base.data.dtype.itemsize,), bool)
                if base is self:
                    return self._mask
            off = self.data.__array_interface__["data"][0] - base.data.__array_interface__["data"][0]
            flat = base._mask.reshape(-1)
            self._mask = np.lib.stride_tricks.as_strided(flat[off:], shape=self.shape + (self.dtype.itemsize,),
                                                         strides=self.data.strides + (1,))
        return self._mask

    @property
    def written(self) -> np.ndarray:
        """Which elements were fully written (bool, ``self.shape``)."""
        mask = self.mask
        size = mask.shape[-1]
        if size in _ALL_SET and mask.strides[-1] == 1:
            # an element's flags are adjacent bytes of 0 or 1: compare them as one integer (all(axis=-1) over a
            # last axis of 2 or 4 is ~100x slower, and matmuls over padded tiles ask for it per operand)
            try:
                return mask.view(f"<u{size}")[..., 0] == _ALL_SET[size]
            except ValueError:  # a view NumPy cannot reinterpret
                pass
        return mask.all(axis=-1)

    def check_initialized(self, instruction: str, index=...) -> None:
        """Apply the ``uninitialized`` setting to a read of ``self[index]`` by ``instruction``."""
        if self.base._all:
            return
        policy = get_settings().uninitialized
        if policy == "ignore":
            return
        region = self.mask if index is Ellipsis else self.mask[index]
        if region.all():
            return
        full = np.zeros(self.shape, bool)
        full[index] = True
        first = tuple(int(i) for i in np.argwhere(full & ~self.written)[0])
        what = f"{self.base.name!r}" + (f" (view {self.name!r})" if self.is_view else "")
        msg = (f"{instruction}: reads {self.kind.upper()} tensor {what} {self.shape} at index {first}, "
               "which nothing has written")
        if policy == "raise":
            raise UninitializedReadError(msg + " (setting uninitialized='raise'; 'warn' or 'ignore' to continue)")
        warnings.warn(msg, UninitializedReadWarning, stacklevel=3)

    def read(self, instruction: str = "read", index=...) -> np.ndarray:
        """A copy of ``self[index]``, after the uninitialised-read check."""
        if self.memory is not None:
            self.memory.touch(self, instruction)
        self.check_initialized(instruction, index)
        return np.array(self.data[index])

    def write(self, value, index=..., path: str = "engine", site: int | None = None) -> None:
        """Store ``value`` into ``self[index]`` through :func:`~emulator.engines.store.convert` (rounding per the
        settings for write ``path``; ``site`` keys SR, default the memory's next site) and mark it written."""
        value = np.asarray(value)
        if self.memory is not None:
            self.memory.touch(self, "write")
        if value.dtype != self.dtype:
            if site is None:
                site = self.memory.next_site() if self.memory is not None else 0
            value = convert(value, self.dtype, path, site)
        self.data[index] = value
        self.mark_written(index)

    def mark_written(self, index=...) -> None:
        """Flag ``self[index]`` as written (after an instruction stored into ``data`` directly)."""
        base = self.base
        if base._all:
            return
        if index is Ellipsis:
            self.mask[...] = True
            # see whether the allocation is now full after a large write, or once the writes since the last look
            # add up to its size (a tile written a row at a time): amortised, one look per allocation's worth
            nbytes = self.data.nbytes
            base._since += nbytes
            if nbytes * 8 >= base.data.nbytes or base._since >= base.data.nbytes:
                base._since = 0
                base._all = bool(base._mask.all())
        else:
            self.mask[index] = True

    def free(self) -> None:
        """Give the space back to its memory."""
        if self.memory is not None:
            self.memory.free(self.base)

    def __array__(self, dtype=None, copy=None):
        out = self.read("np.asarray")
        return out if dtype is None else out.astype(dtype)


class IndirectAP:
    """An access pattern whose dim-0 index comes from a tensor of row indices (NKI ``.ap(vector_offset=...)``)."""

    def __init__(self, tensor: Tensor, pattern: list, offset: int, dtype, index: Tensor) -> None:
        self.tensor, self.pattern, self.offset, self.dtype, self.index = tensor, pattern, offset, dtype, index
        self.kind = tensor.kind
        self.shape = tuple(n for _, n in pattern)

    def rows(self, indices: np.ndarray, instruction: str, oob: str) -> list:
        """One view per dim-0 position (row ``indices[i]``), or None where it is out of bounds and ``oob`` is
        ``"skip"`` (``"error"`` raises, naming the index)."""
        # the index counts rows of the tensor's own dim 0 (indirect_dim=0), so it is scaled by that dim's stride;
        # the pattern's dim-0 stride only says how many rows there are (nki-library's router_topk scatters into a
        # 1-D tensor with flat indices under a pattern stride of k*tiles)
        (_, count), rest = self.pattern[0], self.pattern[1:] or [[1, 1]]
        step = self.tensor.data.strides[0] // self.tensor.data.itemsize if self.tensor.data.ndim else 1
        idx = np.asarray(indices).reshape(-1)
        if idx.size < count:
            raise ShapeError(f"{instruction}: vector_offset has {idx.size} indices; the pattern needs {count}")
        views = []
        for i in range(count):
            try:
                views.append(self.tensor.ap(rest, self.offset + int(idx[i]) * step, self.dtype))
            except ShapeError:
                if oob != "skip":
                    raise ShapeError(f"{instruction}: vector_offset[{i}] = {int(idx[i])} reaches outside "
                                     f"{self.kind.upper()} tensor {self.tensor.base.name!r} {self.tensor.shape} "
                                     "(oob_mode=error; oob_mode=skip skips such rows)") from None
                views.append(None)
        return views


def _x4_name(dtype) -> str | None:
    name = dtype if isinstance(dtype, str) else getattr(dtype, "name", None)
    return name if isinstance(name, str) and name.endswith("_x4") else None


def _fmt_index(items) -> str:
    def one(it):
        if it is Ellipsis:
            return "..."
        if isinstance(it, slice):
            return ":".join("" if v is None else str(v) for v in (it.start, it.stop)) + \
                ("" if it.step is None else f":{it.step}")
        return str(int(it))
    return ", ".join(one(it) for it in items)


class HBM:
    """Device memory shared by the NeuronCores of one device (LNC=2: both cores allocate here); thread-safe."""

    def __init__(self, hbm_bytes: int = HBM_BYTES) -> None:
        self.limit = int(hbm_bytes)
        self.used = 0
        self._lock = threading.Lock()

    def reserve(self, size: int, name: str) -> int:
        """Byte offset of ``size`` new bytes for tensor ``name`` (a bump allocator: HBM is linear)."""
        with self._lock:
            if self.used + size > self.limit:
                raise CapacityError(f"HBM: tensor {name!r} needs {size} bytes; {self.used} of {self.limit} are in "
                                    "use")
            offset, self.used = self.used, self.used + size
            return offset

    def release(self, size: int) -> None:
        with self._lock:
            self.used -= size


class Memory:
    """HBM, SBUF and PSUM of one NeuronCore, with first-fit allocation per partition range.

    Parameters let tests shrink the memories; defaults are NC-v4's. ``hbm`` is a shared :class:`HBM` (LNC=2);
    ``next_site`` gives the stochastic-rounding site of each write (the owning core's counter).
    """

    def __init__(self, sbuf_partition_bytes: int = SBUF_PARTITION_BYTES, psum_banks: int = PSUM_BANKS,
                 hbm_bytes: int = HBM_BYTES, hbm: HBM | None = None, next_site=None):
        self.hbm_memory = hbm if hbm is not None else HBM(hbm_bytes)
        self.limits = {"sbuf": int(sbuf_partition_bytes), "psum": int(psum_banks) * PSUM_BANK_BYTES,
                       "hbm": self.hbm_memory.limit}
        self.tensors: list[Tensor] = []
        self._count = 0
        # liveness by last use (setting onchip_lifetime): a clock ticking at every allocation and use, and per kind
        # the tiles by recency (freed ones stay while a later use may reach back over them) with their bytes' sum
        self.clock = 0
        self._recent: dict[str, dict] = {"sbuf": {}, "psum": {}}
        self._held = {"sbuf": 0, "psum": 0}
        self._pinned = {"sbuf": 0, "psum": 0}  # an upper bound of the placed tiles' highest byte
        self.next_site = next_site if next_site is not None else itertools.count(1).__next__

    # ---- allocation ------------------------------------------------------------------------------------------
    def hbm(self, shape, dtype, name: str | None = None, value=None) -> Tensor:
        """A device-memory tensor (linear; no partition limit). ``value`` initialises it (then fully written)."""
        return self.allocate("hbm", shape, dtype, name, value=value)

    def sbuf(self, shape, dtype, name: str | None = None, value=None) -> Tensor:
        """An SBUF tensor: dim 0 is the partition dim (<= 128)."""
        return self.allocate("sbuf", shape, dtype, name, value=value)

    def psum(self, shape, dtype="float32", name: str | None = None, banks: int | None = None) -> Tensor:
        """A PSUM tile: at most one bank (2 KiB per partition) unless ``banks`` (v4 multi-bank matmul output)."""
        return self.allocate("psum", shape, dtype, name, banks=banks)

    def allocate(self, kind: str, shape, dtype, name: str | None = None, *, value=None,
                 banks: int | None = None, at: tuple | None = None) -> Tensor:
        """Allocate a tensor in ``kind`` (hbm | sbuf | psum); see the typed helpers. ``at=(start partition, byte
        offset)`` places an on-chip tile where the kernel says (NKI's ``address=``): bounds are checked, overlap is
        not (the kernel owns explicitly placed tiles; one placed again at the same address is the same buffer
        reused, e.g. per loop iteration), and the automatic placements go around it."""
        if kind not in self.limits:
            raise ArgumentError(f"allocate: kind {kind!r} is not one of 'hbm', 'sbuf', 'psum'")
        dt = as_dtype(dtype)
        shape = tuple(int(s) for s in (shape if isinstance(shape, (tuple, list)) else (shape,)))
        if not shape or any(s <= 0 for s in shape):
            raise ShapeError(f"allocate: {kind.upper()} tensor shape {shape} must have positive dims")
        self._count += 1
        self.clock += 1  # an allocation is an event of the liveness clock
        name = name or f"{kind}{self._count}"
        if kind == "hbm":
            start, offset = 0, self.hbm_memory.reserve(int(np.prod(shape, dtype=np.int64)) * dt.itemsize, name)
        elif at is not None:
            start, offset = self._place_at(kind, shape, dt, name, banks, at)
        else:
            start, offset = self._place_onchip(kind, shape, dt, name, banks)
        if value is not None:  # written whole below: no fill, and no written-flags until a write leaves some out
            data = np.empty(shape, dt)
        elif dt.kind in "fV":  # NaN where the format has one (one scalar: no float32 temporary of the whole)
            data = np.full(shape, np.array(np.nan, np.float32).astype(dt), dt)
        else:
            data = np.zeros(shape, dt)
        t = Tensor(name, kind, data, None, start, offset, self, _x4_name(dtype), written=value is not None)
        if kind != "hbm":
            life = t.life = _Life(name, start, start + shape[0], self._footprint(t), self.clock, at is not None, offset)
            if life.pinned:  # the kernel's own placement: it occupies its address range while it exists
                self._pinned[kind] += offset + life.held
            else:
                self._recent[kind][life] = None
                self._held[kind] += life.held
        if value is not None:
            t.write(np.broadcast_to(np.asarray(value), shape), path="dma")
        self.tensors.append(t)
        return t

    def free(self, tensor: Tensor) -> None:
        """Release ``tensor``'s space (its data stays readable on the object)."""
        tensor = tensor.base
        if tensor in self.tensors:
            self.tensors.remove(tensor)
            if tensor.kind == "hbm":
                self.hbm_memory.release(tensor.nbytes)
            elif tensor.life.pinned:
                self._pinned[tensor.kind] -= tensor.offset + tensor.life.held
            else:
                tensor.life.freed = True
                self._forget_old(tensor.kind)

    def _place_onchip(self, kind: str, shape: tuple, dt: np.dtype, name: str, banks: int | None) -> tuple[int, int]:
        nparts = shape[0]
        if nparts > PMAX:
            raise ShapeError(f"{kind.upper()}: tensor {name!r} {shape} has {nparts} partitions; the limit is {PMAX}")
        size = int(np.prod(shape[1:], dtype=np.int64)) * dt.itemsize
        limit = self.limits[kind]
        step = 1
        if kind == "psum":
            if banks is None and size > PSUM_BANK_BYTES:
                raise CapacityError(f"PSUM: tile {name!r} {shape} {dt} needs {size} bytes per partition; one bank "
                                    f"holds {PSUM_BANK_BYTES} (pass banks=k for a multi-bank v4 matmul output)")
            if banks is not None:
                if not 1 <= banks <= limit // PSUM_BANK_BYTES or size > banks * PSUM_BANK_BYTES:
                    raise CapacityError(f"PSUM: tile {name!r} needs {size} bytes per partition in {banks} bank(s); "
                                        f"a bank holds {PSUM_BANK_BYTES} and there are {limit // PSUM_BANK_BYTES}")
                size, step = banks * PSUM_BANK_BYTES, PSUM_BANK_BYTES
        if size > limit:
            raise CapacityError(f"{kind.upper()}: tensor {name!r} {shape} {dt} needs {size} bytes per partition; "
                                f"the limit is {limit}")
        # start-partition rule of the allocator: >64 partitions at 0, >32 at 0/64, else at a quadrant start
        starts = [0] if nparts > 64 else [0, 64] if nparts > 32 else [0, 32, 64, 96]
        starts = [s for s in starts if s + nparts <= PMAX]
        if get_settings().onchip_lifetime == "last_use":
            # space is checked by liveness when the tile is used (touch); the placement picks the partitions the
            # referenced tiles fill least (the first on a tie), so tiles of a few partitions spread as the compiler
            # spreads them, and an offset there if one is free (the offset is informative only)
            def load(start):
                return sum(t.life.held for t in self.tensors if t.kind == kind and t.life.overlaps(start,
                                                                                                 start + nparts))
            start = min(starts, key=load) if len(starts) > 1 else starts[0]
            offset = self._first_fit(kind, start, nparts, size, limit, step)
            return start, 0 if offset is None else offset
        for start in starts:
            offset = self._first_fit(kind, start, nparts, size, limit, step)
            if offset is not None:
                return start, offset
        raise CapacityError(f"{kind.upper()}: no room for tensor {name!r} ({size} bytes per partition x {nparts} "
                            f"partitions); {self.used(kind)} of {limit} bytes per partition are in use")

    def _place_at(self, kind: str, shape: tuple, dt: np.dtype, name: str, banks: int | None, at) -> tuple[int, int]:
        try:
            start, offset = (int(a) for a in at)
        except (TypeError, ValueError):
            raise ArgumentError(f"{kind.upper()}: tensor {name!r} address={at!r} must be (start partition, byte "
                                "offset)") from None
        size = int(np.prod(shape[1:], dtype=np.int64)) * dt.itemsize
        span = -(-size // PSUM_BANK_BYTES) * PSUM_BANK_BYTES if kind == "psum" and banks else size
        limit = self.limits[kind]
        if not 0 <= start <= PMAX - shape[0] or not 0 <= offset <= limit - size:
            raise CapacityError(f"{kind.upper()}: tensor {name!r} {shape} {dt} at address ({start}, {offset}) "
                                f"reaches partition {start + shape[0] - 1} / byte {offset + size - 1}; the "
                                f"{kind.upper()} has {PMAX} partitions of {limit} bytes")
        if kind == "psum" and span <= PSUM_BANK_BYTES and offset // PSUM_BANK_BYTES != (offset + size - 1) // \
                PSUM_BANK_BYTES:
            raise CapacityError(f"PSUM: tensor {name!r} at byte offset {offset} ({size} bytes per partition) "
                                f"straddles a {PSUM_BANK_BYTES}-byte bank boundary")
        return start, offset

    def _first_fit(self, kind, start, nparts, size, limit, step) -> int | None:
        """The lowest byte offset where ``size`` bytes fit beside the tiles in partitions [start, start + nparts):
        one sweep over their byte ranges in order of start (a PSUM offset rounded up to ``step``, and a one-bank
        tile kept inside one bank). None if it does not fit under ``limit``."""
        busy = sorted((t.offset, t.offset + max(t.bytes_per_partition, 1) if kind == "sbuf" else
                       t.offset + self._psum_span(t)) for t in self.tensors if t.kind == kind
                      and t.start_partition < start + nparts and start < t.start_partition + t.shape[0])

        def aligned(off):
            if kind == "psum":
                off = -(-off // step) * step
                if step == 1 and off // PSUM_BANK_BYTES != (off + size - 1) // PSUM_BANK_BYTES:
                    off = -(-off // PSUM_BANK_BYTES) * PSUM_BANK_BYTES  # a one-bank tile never straddles banks
            return off

        off = aligned(0)
        for b, e in busy:  # every range starting before ``off + size`` ends at or below the offset that follows it
            if off + size <= b:
                break
            if e > off:
                off = aligned(e)
        return off if off + size <= limit else None

    # ---- liveness by last use (setting onchip_lifetime) -------------------------------------------------------
    @staticmethod
    def _footprint(t: Tensor) -> int:
        """Bytes per partition a tile counts for: its own in SBUF; in PSUM whole banks above one bank, and within a
        bank the share of the most tiles of its size that fit side by side (no tile straddles a bank boundary)."""
        size = t.bytes_per_partition
        if t.kind != "psum":
            return size
        if size > PSUM_BANK_BYTES:
            return Memory._psum_span(t)
        return PSUM_BANK_BYTES // (PSUM_BANK_BYTES // size)

    def touch(self, t: Tensor, instruction: str, role: str = "") -> None:
        """Note a use of ``t`` (operand ``role`` of ``instruction``): its allocation is live from its previous use
        to now. Under ``onchip_lifetime='last_use'``, if the tiles live meanwhile then need more bytes in one of its
        partitions than the memory has, raise :class:`CapacityError` (before the instruction writes anything)."""
        base = t.base
        self.clock += 1
        life = base.life
        if life is None or life.pinned:  # HBM, or a tile the kernel placed itself
            return
        kind = base.kind
        if life.born is None:  # live from its first use
            life.born = self.clock
        elif self._held[kind] + self._pinned[kind] > self.limits[kind] and \
                get_settings().onchip_lifetime == "last_use":
            self._check_live(base, f"{instruction} {role}".rstrip())
        life.last = self.clock
        recent = self._recent[kind]
        if life in recent:  # most recent last (a plain dict keeps insertion order)
            del recent[life]
            recent[life] = None

    def _check_live(self, x: Tensor, instruction: str) -> None:
        """Raise if ``x``, live over (its last use, now], and the tiles live at some moment of that span need more
        bytes in a partition than there are. Tiles are live from first to last use; the ones used since x was are
        the recent end of ``_recent``. Placed tiles (address=) hold their address range while they exist."""
        kind, me = x.kind, x.life
        lo, x0, x1 = me.last, me.start, me.stop
        tiles = []
        for life in reversed(self._recent[kind]):
            if life.last <= lo:
                break
            if life is not me and life.born is not None and life.overlaps(x0, x1):
                tiles.append(life)
        pinned = [t.life for t in self.tensors if t.kind == kind and t.life.pinned and t.life.overlaps(x0, x1)]
        width = x1 - x0
        placed = np.zeros(width, np.int64)  # the placed tiles' highest byte per partition
        for life in pinned:
            rows = slice(max(life.start, x0) - x0, min(life.stop, x1) - x0)
            placed[rows] = np.maximum(placed[rows], life.offset + life.held)
        weight = np.zeros((len(tiles), width), np.int64)  # bytes per partition of x's range
        for i, life in enumerate(tiles):
            weight[i, max(life.start, x0) - x0:min(life.stop, x1) - x0] = life.held
        begins = np.array([max(life.born, lo + 1) for life in tiles], np.int64)
        ends = np.array([life.last for life in tiles], np.int64)
        moments = np.unique(np.append(begins, lo + 1))  # the load only rises where an interval begins
        live = (begins[None, :] <= moments[:, None]) & (moments[:, None] <= ends[None, :])
        load = live.astype(np.int64) @ weight + me.held + placed  # (moments, partitions)
        worst = np.unravel_index(int(np.argmax(load)), load.shape)
        if load[worst] <= self.limits[kind]:
            return
        others = [life for i, life in enumerate(tiles) if live[worst[0], i] and weight[i, worst[1]]]
        others += [life for life in pinned if life.start <= x0 + worst[1] < life.stop]
        names = ", ".join(f"{t.name!r} ({t.held})" for t in others[:8]) + (" ..." if len(others) > 8 else "")
        raise CapacityError(
            f"{instruction}: {kind.upper()} tile {x.name!r} {list(x.shape)} {x.dtype} ({me.held} bytes per partition) is "
            f"used again, so it was live since its previous use together with {names}: {int(load[worst])} bytes in "
            f"partition {x0 + worst[1]}, more than the {self.limits[kind]} there are (setting onchip_lifetime="
            f"'last_use': a tile is live from its first to its last use, as the compiler allocates)")

    def _forget_old(self, kind: str) -> None:
        """Drop freed tiles from the old end of ``_recent``: no later use can reach back over them."""
        recent = self._recent[kind]
        while recent:
            life = next(iter(recent))
            if not life.freed:
                break
            del recent[life]
            self._held[kind] -= life.held

    @staticmethod
    def _psum_span(t: Tensor) -> int:
        size = t.bytes_per_partition
        return -(-size // PSUM_BANK_BYTES) * PSUM_BANK_BYTES if size > PSUM_BANK_BYTES else size

    # ---- accounting ------------------------------------------------------------------------------------------
    def used(self, kind: str) -> int:
        """Bytes in use: per partition (highest) for SBUF/PSUM, in total for HBM."""
        if kind == "hbm":
            return self.hbm_memory.used
        return max((t.offset + t.bytes_per_partition for t in self.tensors if t.kind == kind), default=0)

    def report(self) -> str:
        """One line per memory: bytes in use and the limit, and the tensors living there."""
        lines = []
        for kind in ("hbm", "sbuf", "psum"):
            names = ", ".join(f"{t.name}{list(t.shape)}" for t in self.tensors if t.kind == kind) or "-"
            unit = "bytes" if kind == "hbm" else "bytes/partition"
            lines.append(f"{kind.upper():5s} {self.used(kind):>12d} / {self.limits[kind]} {unit}: {names}")
        return "\n".join(lines)
