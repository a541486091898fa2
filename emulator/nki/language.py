"""``nki.language``: dtypes, buffers, tensor creation, indexing helpers, loops, SPMD ids and the ``nl.*`` functions.

Tensors are allocated on the current program's NeuronCore (:func:`ndarray`). The element-wise and reduction
functions of older kernels (``nl.add``, ``nl.exp``, ``nl.sum``, ``nl.matmul``...) allocate an SBUF (or PSUM) result
and run the matching ``nki.isa`` instruction, so they round, count and check exactly as the instruction does. Each
of them carries ``op_name``, so ``op=nl.add`` names the ALU/activation op for the engines' ops registry.

>>> import numpy as np
>>> from emulator.nki import language as nl
>>> a = nl.full((2, 4), 1.5, dtype=nl.float32)
>>> b = nl.multiply(a, 2.0)
>>> np.asarray(b).tolist()[0], nl.add.op_name, nl.tile_size.pmax
([3.0, 3.0, 3.0, 3.0], 'add', 128)
"""

from __future__ import annotations

import builtins
import contextlib

import numpy as np

from . import _dtypes
from ._launch import current_program, num_programs, program_id, program_ndim
from ._alloc import ndarray
from .tensor import DynSlice, IndexRange, MemoryRegion, NkiTensor, buffer_kind

_DT = _dtypes.DTYPES
bool_, int8, int16, int32 = _DT["bool_"], _DT["int8"], _DT["int16"], _DT["int32"]
uint8, uint16, uint32 = _DT["uint8"], _DT["uint16"], _DT["uint32"]
float16, float32, bfloat16, tfloat32 = _DT["float16"], _DT["float32"], _DT["bfloat16"], _DT["tfloat32"]
float8_e4m3, float8_e4m3fn, float8_e5m2 = _DT["float8_e4m3"], _DT["float8_e4m3fn"], _DT["float8_e5m2"]
float8_e8m0fnu, float4_e2m1fn = _DT["float8_e8m0fnu"], _DT["float4_e2m1fn"]
float8_e5m2_x4, float8_e4m3fn_x4, float4_e2m1fn_x4 = (_DT["float8_e5m2_x4"], _DT["float8_e4m3fn_x4"],
                                                      _DT["float4_e2m1fn_x4"])

fp32 = np.finfo(np.float32)  # legacy NKI: nl.fp32.min etc.

sbuf, psum = MemoryRegion.sbuf, MemoryRegion.psum
private_hbm = hbm = MemoryRegion.private_hbm
shared_hbm = MemoryRegion.shared_hbm

from ..engines.limits import tile_size  # noqa: E402 (NKI's nl.tile_size, re-exported)


class NKIObject:
    """Base class of NKI kernel dataclasses and configuration objects.

    A subclass's plain class attributes count as fields: ``@dataclass class P(NKIObject): idx = None`` takes
    ``P(idx=3)`` (nki-library's attention_cte builds its SectionParams so; a bare ``@dataclass`` would only see
    annotated names). Without ``@dataclass`` any keyword sets the attribute of that name.

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Section(NKIObject):
    ...     idx = None
    ...     offset: int = 0
    >>> Section(idx=2, offset=128)   # annotated fields first, then the plain ones
    Section(offset=128, idx=2)
    """

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        notes = cls.__dict__.get("__annotations__")
        if notes is None:
            notes = {}
            cls.__annotations__ = notes
        fields = {k: "typing.Any" for k, v in cls.__dict__.items()
                  if not k.startswith("_") and k not in notes and not callable(v)
                  and not isinstance(v, (property, classmethod, staticmethod, list, dict, set))}
        if fields:  # after the annotated ones: all have defaults, so any annotated field without one stays legal
            cls.__annotations__ = {**notes, **fields}

    def __init__(self, **kwargs) -> None:
        for key, value in kwargs.items():
            setattr(self, key, value)


def is_hbm(buffer) -> bool:
    return buffer_kind(buffer) == "hbm"


def is_on_chip(buffer) -> bool:
    return buffer_kind(buffer) != "hbm"


def is_psum(buffer) -> bool:
    return buffer_kind(buffer) == "psum"


def is_sbuf(buffer) -> bool:
    return buffer_kind(buffer) == "sbuf"


# ---- tensor creation --------------------------------------------------------------------------------------------

def _filled(shape, value, dtype, buffer, name) -> NkiTensor:
    t = ndarray(shape, dtype, buffer=buffer, name=name)
    if t.kind == "hbm":  # no engine writes HBM: the constant is loaded with the kernel
        t.write(np.full(t.shape, value, np.float32 if t.dtype.kind in "fV" else t.dtype), path="dma")
    else:
        from . import isa

        isa.memset(t, value)
    return t


def zeros(shape, dtype, buffer=sbuf, name: str = "") -> NkiTensor:
    return _filled(shape, 0, dtype, buffer, name)


def ones(shape, dtype, buffer=sbuf, name: str = "") -> NkiTensor:
    return _filled(shape, 1, dtype, buffer, name)


def full(shape, fill_value, dtype, buffer=sbuf, name: str = "") -> NkiTensor:
    return _filled(shape, fill_value, dtype, buffer, name)


def zeros_like(x, dtype=None, buffer=None, name: str = "") -> NkiTensor:
    return zeros(x.shape, dtype or x.dtype, buffer or x.buffer, name)


def ones_like(x, dtype=None, buffer=None, name: str = "") -> NkiTensor:
    return ones(x.shape, dtype or x.dtype, buffer or x.buffer, name)


def empty_like(x, dtype=None, buffer=None, name: str = "") -> NkiTensor:
    return ndarray(x.shape, dtype or x.dtype, buffer or x.buffer, name)


def rand(shape, dtype=float32, buffer=sbuf, name: str = "") -> NkiTensor:
    """Uniform [0, 1) values (from NumPy's generator seeded by the ``seed`` setting; not an engine RNG)."""
    from ..config import get_settings

    t = ndarray(shape, dtype, buffer, name)
    t.write(np.random.default_rng(get_settings().seed).random(t.shape, np.float32))
    return t


def shared_constant(constant) -> NkiTensor:
    """A shared HBM tensor holding ``constant`` (an array or a ``.npy`` path)."""
    arr = np.load(constant) if isinstance(constant, str) else np.asarray(constant)
    t = ndarray(arr.shape, arr.dtype, buffer=shared_hbm)
    t.write(arr, path="dma")
    return t


def shared_identity_matrix(n, dtype=uint8, dst=None) -> NkiTensor:
    """An ``n`` x ``n`` identity matrix in SBUF (a constant loaded with the kernel)."""
    t = dst if dst is not None else ndarray((n, n), dtype, buffer=sbuf)
    t.write(np.eye(n, dtype=np.float32), path="dma")
    return t


# ---- indexing helpers, loops ------------------------------------------------------------------------------------

def ds(start, size) -> DynSlice:
    """``nl.ds(start, size)``: the slice ``start:start+size``."""
    return DynSlice(int(start), int(size))


def arange(*args) -> IndexRange:
    """Legacy index expression ``nl.arange(n)`` / ``nl.arange(start, stop)``."""
    r = builtins.range(*[int(a) for a in args])
    return IndexRange(r.start, r.step, len(r))


class _Grid(tuple):
    @property
    def p(self):
        return self[0]

    @property
    def x(self):
        return self[1]

    @property
    def y(self):
        return self[2]


class _MGrid:
    """Legacy ``nl.mgrid[0:128, 0:512]``: one index expression per dim (``.p``, ``.x``)."""

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        return _Grid(arange(k.start or 0, k.stop, k.step or 1) for k in key)


mgrid = _MGrid()


class _GridDim:
    """A legacy launch-grid dimension (``nl.nc(2)``, ``nl.spmd_dim(...)``): programs along it = the product."""

    def __init__(self, size: int):
        self.__nki_lnc__ = int(size)

    def __mul__(self, other):
        return _GridDim(self.__nki_lnc__ * int(getattr(other, "__nki_lnc__", other)))

    __rmul__ = __mul__


def nc(n: int) -> _GridDim:
    """Legacy ``nl.nc(n)``: n physical NeuronCores along a grid dimension."""
    return _GridDim(n)


def spmd_dim(*sizes) -> _GridDim:
    """Legacy ``nl.spmd_dim(nl.nc(2), 2)``: one grid dimension of the product of its parts."""
    out = _GridDim(1)
    for s in sizes:
        out = out * s
    return out


def par_dim(n):
    """Legacy partition-dim marker in shapes: the size itself."""
    return n


def _ints(start, stop, step):
    return (int(start),) if stop is None else (int(start), int(stop), int(step))


def affine_range(start, stop=None, step=1):
    return builtins.range(*_ints(start, stop, step))


sequential_range = static_range = dynamic_range = affine_range
range = affine_range  # noqa: A001 (NKI's name)


def fori_loop(lower, upper, body_fun, step=1) -> None:
    """``for i in range(lower, upper, step): body_fun(i)`` with ``i`` a register."""
    from ._dispatch import VirtualRegister

    for i in builtins.range(int(lower), int(upper), int(step)):
        body_fun(VirtualRegister(i))


def while_loop(init, body_fun) -> None:
    """``r = init; while r != 0: r = body_fun(r)``."""
    r = init
    while int(r) != 0:
        r = body_fun(r)


@contextlib.contextmanager
def no_reorder():
    yield


def device_print(print_prefix, tensor) -> None:
    """Print a tensor's values now (as the CPU simulator does)."""
    print(print_prefix, np.asarray(tensor.arr) if isinstance(tensor, NkiTensor) else tensor)


# ---- nl.* computation (older kernels): each is one nki.isa instruction --------------------------------------------

def load(src, dtype=None) -> NkiTensor:
    """A new SBUF tile holding ``src`` (one ``dma_copy``; ``dtype`` casts on the way)."""
    from . import isa

    t = ndarray(src.shape, dtype or src.dtype, buffer=sbuf)
    isa.dma_copy(dst=t, src=src)
    return t


def store(dst, value) -> None:
    """Copy an SBUF tile to ``dst`` (one ``dma_copy``; a PSUM tile first goes to SBUF with a ``tensor_copy``, as the
    compiler does for older kernels: DMA cannot read PSUM)."""
    from . import isa

    if isinstance(value, NkiTensor) and value.kind == "psum":
        staged = ndarray(value.shape, value.dtype, buffer=sbuf)
        isa.tensor_copy(dst=staged, src=value)
        value = staged
    isa.dma_copy(dst=dst, src=value)


def load_transpose2d(src, dtype=None) -> NkiTensor:
    from . import isa

    t = ndarray(src.shape[::-1], dtype or src.dtype, buffer=sbuf)
    isa.dma_transpose(dst=t, src=src)
    return t


from ._nlops import *  # noqa: E402,F401,F403  (the element-wise / reduction / matmul functions)
from ._nlops import __all__ as _ops_all  # noqa: E402

__all__ = ["bool_", "int8", "int16", "int32", "uint8", "uint16", "uint32", "float16", "float32", "bfloat16",
           "tfloat32", "float8_e4m3", "float8_e4m3fn", "float8_e5m2", "float8_e8m0fnu", "float4_e2m1fn",
           "float8_e5m2_x4", "float8_e4m3fn_x4", "float4_e2m1fn_x4", "fp32", "sbuf", "psum", "hbm", "private_hbm",
           "shared_hbm", "MemoryRegion", "NkiTensor", "NKIObject", "tile_size", "is_hbm", "is_on_chip", "is_psum",
           "is_sbuf", "ndarray", "zeros", "ones", "full", "zeros_like", "ones_like", "empty_like", "rand",
           "shared_constant", "shared_identity_matrix", "ds", "arange", "mgrid", "par_dim", "nc", "spmd_dim",
           "affine_range", "sequential_range", "static_range", "dynamic_range", "range", "fori_loop", "while_loop",
           "no_reorder", "device_print", "load", "store", "load_transpose2d", "program_id", "num_programs",
           "program_ndim",
           *_ops_all]
