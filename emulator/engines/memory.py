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

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..config import get_settings
from ..errors import CapacityError, ShapeError, UninitializedReadError
from .limits import HBM_BYTES, PMAX, PSUM_BANK_BYTES, PSUM_BANKS, SBUF_PARTITION_BYTES

__all__ = ["Memory", "Tensor", "UninitializedReadWarning", "PMAX", "SBUF_PARTITION_BYTES", "PSUM_BANK_BYTES",
           "PSUM_BANKS", "HBM_BYTES", "as_dtype"]



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


@dataclass(eq=False)
class Tensor:
    """One allocation: ``data`` (the contents), ``written`` (bool, same shape) and where it lives."""

    name: str
    kind: str
    data: np.ndarray
    written: np.ndarray
    start_partition: int = 0
    offset: int = 0  # byte offset inside each partition (SBUF/PSUM) or in HBM
    memory: "Memory | None" = field(default=None, repr=False)

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def bytes_per_partition(self) -> int:
        return int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize if self.kind != "hbm" else 0

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)

    def check_initialized(self, instruction: str, index=...) -> None:
        """Apply the ``uninitialized`` setting to a read of ``self[index]`` by ``instruction``."""
        policy = get_settings().uninitialized
        if policy == "ignore":
            return
        region = self.written[index]
        if np.all(region):
            return
        full = np.zeros(self.shape, bool)
        full[index] = True
        first = tuple(int(i) for i in np.argwhere(full & ~self.written)[0])
        msg = (f"{instruction}: reads {self.kind.upper()} tensor {self.name!r} {self.shape} at index {first}, "
               "which nothing has written")
        if policy == "raise":
            raise UninitializedReadError(msg + " (setting uninitialized='raise'; 'warn' or 'ignore' to continue)")
        warnings.warn(msg, UninitializedReadWarning, stacklevel=3)

    def read(self, instruction: str = "read", index=...) -> np.ndarray:
        """A copy of ``self[index]``, after the uninitialised-read check."""
        self.check_initialized(instruction, index)
        return np.array(self.data[index])

    def write(self, value, index=...) -> None:
        """Store ``value`` (converted to the tensor's dtype) into ``self[index]`` and mark it written."""
        value = np.asarray(value)
        if value.dtype != self.dtype:
            value = value.astype(np.float32).astype(self.dtype) if value.dtype.kind == "V" else value.astype(self.dtype)
        self.data[index] = value
        self.written[index] = True

    def free(self) -> None:
        """Give the space back to its memory."""
        if self.memory is not None:
            self.memory.free(self)

    def __array__(self, dtype=None, copy=None):
        out = self.read("np.asarray")
        return out if dtype is None else out.astype(dtype)


class Memory:
    """HBM, SBUF and PSUM of one NeuronCore, with first-fit allocation per partition range.

    Parameters let tests shrink the memories; defaults are NC-v4's.
    """

    def __init__(self, sbuf_partition_bytes: int = SBUF_PARTITION_BYTES, psum_banks: int = PSUM_BANKS,
                 hbm_bytes: int = HBM_BYTES):
        self.limits = {"sbuf": int(sbuf_partition_bytes), "psum": int(psum_banks) * PSUM_BANK_BYTES,
                       "hbm": int(hbm_bytes)}
        self.tensors: list[Tensor] = []
        self._count = 0

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
                 banks: int | None = None) -> Tensor:
        """Allocate a tensor in ``kind`` (hbm | sbuf | psum); see the typed helpers."""
        if kind not in self.limits:
            raise ValueError(f"allocate: kind {kind!r} is not one of 'hbm', 'sbuf', 'psum'")
        dt = as_dtype(dtype)
        shape = tuple(int(s) for s in (shape if isinstance(shape, (tuple, list)) else (shape,)))
        if not shape or any(s <= 0 for s in shape):
            raise ShapeError(f"allocate: {kind.upper()} tensor shape {shape} must have positive dims")
        self._count += 1
        name = name or f"{kind}{self._count}"
        if kind == "hbm":
            start, offset = 0, self._place_hbm(int(np.prod(shape, dtype=np.int64)) * dt.itemsize, name)
        else:
            start, offset = self._place_onchip(kind, shape, dt, name, banks)
        data = np.full(shape, np.nan, np.float32).astype(dt) if dt.kind in "fV" else np.zeros(shape, dt)
        t = Tensor(name, kind, data, np.zeros(shape, bool), start, offset, self)
        if value is not None:
            t.write(np.broadcast_to(np.asarray(value), shape))
        self.tensors.append(t)
        return t

    def free(self, tensor: Tensor) -> None:
        """Release ``tensor``'s space (its data stays readable on the object)."""
        if tensor in self.tensors:
            self.tensors.remove(tensor)

    def _place_hbm(self, size: int, name: str) -> int:
        used = sum(t.nbytes for t in self.tensors if t.kind == "hbm")
        if used + size > self.limits["hbm"]:
            raise CapacityError(f"HBM: tensor {name!r} needs {size} bytes; {used} of {self.limits['hbm']} are in use")
        return used

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
        for start in starts:
            if start + nparts > PMAX:
                continue
            offset = self._first_fit(kind, start, nparts, size, limit, step)
            if offset is not None:
                return start, offset
        raise CapacityError(f"{kind.upper()}: no room for tensor {name!r} ({size} bytes per partition x {nparts} "
                            f"partitions); {self.used(kind)} of {limit} bytes per partition are in use")

    def _first_fit(self, kind, start, nparts, size, limit, step) -> int | None:
        busy = sorted((t.offset, t.offset + max(t.bytes_per_partition, 1) if kind == "sbuf" else
                       t.offset + self._psum_span(t)) for t in self.tensors if t.kind == kind
                      and t.start_partition < start + nparts and start < t.start_partition + t.shape[0])
        candidates = [0] + [end for _, end in busy]
        for off in sorted(candidates):
            if kind == "psum":
                off = -(-off // step) * step
                if step == 1 and off // PSUM_BANK_BYTES != (off + size - 1) // PSUM_BANK_BYTES:
                    off = -(-off // PSUM_BANK_BYTES) * PSUM_BANK_BYTES  # a one-bank tile never straddles banks
            if off + size <= limit and all(off + size <= b or e <= off for b, e in busy):
                return off
        return None

    @staticmethod
    def _psum_span(t: Tensor) -> int:
        size = t.bytes_per_partition
        return -(-size // PSUM_BANK_BYTES) * PSUM_BANK_BYTES if size > PSUM_BANK_BYTES else size

    # ---- accounting ------------------------------------------------------------------------------------------
    def used(self, kind: str) -> int:
        """Bytes in use: per partition (highest) for SBUF/PSUM, in total for HBM."""
        if kind == "hbm":
            return sum(t.nbytes for t in self.tensors if t.kind == "hbm")
        return max((t.offset + t.bytes_per_partition for t in self.tensors if t.kind == kind), default=0)

    def report(self) -> str:
        """One line per memory: bytes in use and the limit, and the tensors living there."""
        lines = []
        for kind in ("hbm", "sbuf", "psum"):
            names = ", ".join(f"{t.name}{list(t.shape)}" for t in self.tensors if t.kind == kind) or "-"
            unit = "bytes" if kind == "hbm" else "bytes/partition"
            lines.append(f"{kind.upper():5s} {self.used(kind):>12d} / {self.limits[kind]} {unit}: {names}")
        return "\n".join(lines)
