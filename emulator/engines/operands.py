"""Operand plumbing shared by the Vector, Scalar and GpSimd instructions: reading operands as fp32 or raw bits,
checking tile shapes, and writing an fp32 result into ``dst`` with ONE rounding through
:func:`emulator.numerics.cast.cast` (``rounding_for("engine")``, so the ``rounding``/``saturate``/SR settings apply).

Conversions (reference section 2.3):

* any float input (float16, bfloat16, fp8, ...) widens exactly to fp32; integer inputs convert to fp32 with RNE (the
  documented Vector path, lossy above 2^24); float64 is not an NKI dtype and is refused;
* fp32 -> float ``dst``: :func:`~emulator.numerics.cast.cast` to the dst format (RNE by default);
* fp32 -> integer ``dst``: round to nearest even, saturate to the integer range, NaN -> 0 (the hardware rule is
  undocumented; this is the rule ``numerics.rng`` already uses for ``rand2``).

Stochastic rounding keys its random stream by a call-site id: the instruction's name, or the value set with
:func:`sr_site` (the NeuronCore sets a fresh site per instruction so repeated instructions draw fresh bits).
"""

from __future__ import annotations

import contextlib
import functools
import contextvars
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np

from ..config import get_settings
from ..errors import DtypeError, EmulatorError, ShapeError
from ..numerics import formats as _formats
from ..numerics.cast import cast, rounding_for

from .limits import PMAX

__all__ = ["PMAX", "F32", "INT_DTYPES", "f32", "tile", "like", "per_partition", "write", "write_values", "bits",
           "write_bits", "is_int", "sr_site", "engine_name", "Instruction", "quiet", "ReduceRegisters", "reduce_cmd", "REDUCE_CMDS", "check_dst"]

F32 = np.float32
INT_DTYPES = frozenset(np.dtype(t) for t in (np.int8, np.int16, np.int32, np.uint8, np.uint16, np.uint32, np.bool_))
_BF16 = np.dtype(_formats.get("bfloat16").ml_dtype)
_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32}

_site: contextvars.ContextVar[int | None] = contextvars.ContextVar("trn3emu_engine_sr_site", default=None)


@contextlib.contextmanager
def sr_site(site: int) -> Iterator[None]:
    """Key the stochastic rounding of the writes inside the block by ``site`` (the core's per-instruction id)."""
    token = _site.set(int(site))
    try:
        yield
    finally:
        _site.reset(token)


def quiet(fn: Callable) -> Callable:
    """Run an instruction with floating-point warnings off: overflow to inf, 0/0 -> NaN are engine results."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        with np.errstate(all="ignore"):
            return fn(*args, **kwargs)
    return run


def is_int(dt: np.dtype) -> bool:
    """True for the integer (and bool) dtypes the engines accept."""
    return dt in INT_DTYPES


def check_dst(dst: Any, instr: str) -> np.ndarray:
    """``dst`` as a writeable ndarray with a partition dim <= PMAX (else a clear error)."""
    if not isinstance(dst, np.ndarray):
        raise DtypeError(f"{instr}: dst must be a NumPy array written in place, got {type(dst).__name__}")
    if dst.ndim == 0 or dst.shape[0] > PMAX:
        raise ShapeError(f"{instr}: dst has shape {dst.shape}; a tile is [P <= {PMAX}, ...]")
    if not dst.flags.writeable:
        raise ValueError(f"{instr}: dst is read-only")
    return dst


def tile(x: Any, role: str, instr: str) -> np.ndarray:
    """``x`` as an ndarray tile [P <= PMAX, ...]."""
    arr = x if isinstance(x, np.ndarray) else np.asarray(x)
    if arr.ndim == 0 or arr.shape[0] > PMAX:
        raise ShapeError(f"{instr}: {role} has shape {arr.shape}; a tile is [P <= {PMAX}, ...]")
    return arr


def _free(shape: tuple) -> int:
    n = 1
    for s in shape[1:]:
        n *= s
    return n


def like(x: Any, dst: np.ndarray, role: str, instr: str) -> np.ndarray:
    """Tile ``x`` viewed in ``dst``'s shape: same partitions and same elements per partition (NKI's rule)."""
    arr = tile(x, role, instr)
    if arr.shape == dst.shape:
        return arr
    if arr.shape[0] != dst.shape[0] or _free(arr.shape) != _free(dst.shape):
        raise ShapeError(f"{instr}: {role} has shape {arr.shape} but dst has {dst.shape}; they need the same "
                         "partition count and the same number of elements per partition")
    return arr.reshape(dst.shape)


_CONVERT: dict[np.dtype, str] = {}


def _kind(dt: np.dtype, role: str, instr: str) -> str:
    kind = _CONVERT.get(dt)
    if kind is None:
        if dt == F32:
            kind = "f32"
        elif dt in INT_DTYPES or dt.kind in "f" and dt.itemsize <= 2:
            kind = "astype"
        elif dt.kind == "V" or dt.kind not in "biufcSUOMm":
            try:
                _formats.get(dt)
                kind = "astype"
            except (TypeError, ValueError):
                kind = "bad"
        else:
            kind = "bad"
        _CONVERT[dt] = kind
    if kind == "bad":
        raise DtypeError(f"{instr}: {role} has dtype {dt}, which is not an NKI dtype (float32, bfloat16, float16, "
                         "fp8, int8/16/32, uint8/16/32)")
    return kind


def f32(x: Any, role: str, instr: str) -> np.ndarray:
    """``x`` (array of any NKI dtype) as float32 values (no copy when already float32)."""
    arr = x if isinstance(x, np.ndarray) else np.asarray(x)
    if arr.dtype == F32:
        return arr
    if arr.dtype == _BF16:  # bf16 is the top half of an fp32 pattern: a shift is exact and beats astype
        out = np.empty(arr.shape, np.uint32)
        np.left_shift(arr.view(np.uint16), 16, out=out, dtype=np.uint32)
        return out.view(F32)
    _kind(arr.dtype, role, instr)
    return arr.astype(F32)


def per_partition(x: Any, rows: int, ndim: int, role: str, instr: str) -> np.ndarray | np.float32:
    """A scalar operand (fp32) or a [P, 1] operand broadcast along the free dims (shape [P, 1, ...])."""
    if isinstance(x, (float, int, np.floating, np.integer)) and not isinstance(x, bool):
        return np.float32(x)
    arr = x if isinstance(x, np.ndarray) else np.asarray(x)
    if arr.ndim == 0:
        return f32(arr, role, instr)[()]
    if arr.shape[0] != rows or _free(arr.shape) != 1:
        raise ShapeError(f"{instr}: {role} has shape {arr.shape}; it must be a scalar or a [P, 1] = [{rows}, 1] "
                         "vector (one value per partition)")
    return f32(arr, role, instr).reshape((rows,) + (1,) * (ndim - 1))


def _int_write(dst: np.ndarray, val: np.ndarray) -> None:
    info = np.iinfo(dst.dtype) if dst.dtype != np.bool_ else None
    v = np.rint(val.astype(np.float64))
    v[np.isnan(v)] = 0.0
    if info is None:
        dst[...] = v != 0
    else:
        np.copyto(dst, np.clip(v, info.min, info.max), casting="unsafe")


_FMT: dict[np.dtype, Any] = {}


def _ml_dtypes_agree() -> bool:
    """True when the settings make an RNE cast coincide with ml_dtypes (no saturation, ml_dtypes NaN/e8m0 rules)."""
    s = get_settings()
    return not s.saturate and s.fp4_nan == "ml_dtypes" and s.e8m0_rounding == "ml_dtypes"


def write(dst: np.ndarray, val: Any, instr: str) -> np.ndarray:
    """Write fp32 values ``val`` (broadcastable to ``dst``) into ``dst`` with one rounding; return ``dst``."""
    dt = dst.dtype
    if dt == F32:
        np.copyto(dst, val, casting="unsafe")
        return dst
    if dt in INT_DTYPES:
        _int_write(dst, np.broadcast_to(np.asarray(val, F32), dst.shape))
        return dst
    fmt = _FMT.get(dt)
    if fmt is None:
        try:
            fmt = _formats.get(dt)
        except (TypeError, ValueError):
            raise DtypeError(f"{instr}: dst has dtype {dt}, which is not an NKI dtype") from None
        _FMT[dt] = fmt
    arr = np.asarray(val, F32)
    if arr.shape != dst.shape:
        arr = np.broadcast_to(arr, dst.shape)
    rounding = rounding_for("engine")
    if rounding == "rne" and fmt.ml_dtype is not None and fmt.signed and _ml_dtypes_agree():
        # cast() is bit-identical to ml_dtypes' RNE astype for fp32 input under these settings for the signed
        # formats (its documented contract, checked by tests/engines/test_operands.py; e8m0fnu's negative inputs
        # differ); astype is the fast route to the same codes
        with np.errstate(all="ignore"):  # overflow to inf / NaN are cast results, not warnings
            dst[...] = arr.astype(fmt.ml_dtype)
        return dst
    if rounding == "sr":
        from ..numerics.stochastic import site_id

        site = _site.get()
        codes = cast(arr, fmt, rounding="sr", site=site_id(instr) if site is None else site)
    else:
        codes = cast(arr, fmt, rounding=rounding)
    dst.view(fmt.code_dtype)[...] = codes
    return dst


def write_values(dst: np.ndarray, src: np.ndarray, instr: str) -> np.ndarray:
    """Copy ``src`` into ``dst``: bit-exact when the dtypes match, else through fp32 (one rounding)."""
    if src.dtype == dst.dtype:
        np.copyto(dst, src)
        return dst
    return write(dst, f32(src, "src", instr), instr)


def bits(x: Any, role: str, instr: str) -> np.ndarray:
    """The raw bit patterns of an integer operand, zero-extended to uint64 (Python ints: taken mod 2^32)."""
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return np.uint64(int(x) & 0xFFFFFFFF)
    arr = x if isinstance(x, np.ndarray) else np.asarray(x)
    if arr.dtype not in INT_DTYPES:
        if arr.ndim == 0 and arr.dtype.kind == "f" and float(arr) == int(arr):
            return np.uint64(int(arr) & 0xFFFFFFFF)
        raise DtypeError(f"{instr}: {role} has dtype {arr.dtype}; bitvec operators take integer dtypes only "
                         "(int8/16/32, uint8/16/32)")
    return arr.view(_UNSIGNED[arr.dtype.itemsize]).astype(np.uint64) if arr.dtype != np.bool_ \
        else arr.astype(np.uint64)


def write_bits(dst: np.ndarray, val: np.ndarray, instr: str) -> np.ndarray:
    """Write the low bits of ``val`` (uint64) into integer ``dst``."""
    if dst.dtype not in INT_DTYPES:
        raise DtypeError(f"{instr}: dst has dtype {dst.dtype}; bitvec operators write integer dtypes only")
    if dst.dtype == np.bool_:
        dst[...] = (val & np.uint64(1)) != 0
        return dst
    dst.view(_UNSIGNED[dst.dtype.itemsize])[...] = np.broadcast_to(val, dst.shape)  # same-kind truncation
    return dst


def engine_name(engine: Any) -> str | None:
    """``engine`` (an nki.isa.engine member, a name, or None/'unknown') as a lower-case name or None."""
    name = getattr(engine, "name", engine)
    if name is None:
        return None
    name = str(name).lower()
    return None if name == "unknown" else name


class Instruction(NamedTuple):
    """One entry of an engine module's ``INSTRUCTIONS`` table, for the NeuronCore's generic dispatch.

    ``fn`` is the array-level function; ``engines`` the engines that may run it (first = default); ``reads`` /
    ``writes`` the parameter names that are tensor inputs / outputs (``writes`` that may be None are optional);
    ``state`` names the engine state the call needs as a keyword (``"regs"``: a :class:`ReduceRegisters`, ``"rng"``:
    an :class:`emulator.engines.rng.EngineRNG`), or None.
    """

    fn: Callable
    engines: tuple[str, ...]
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    state: str | None = None


# ---- accumulator registers (Scalar reduce_regs, Vector accumulators) -----------------------------------------------

REDUCE_CMDS = ("idle", "reset", "reduce", "reset_reduce", "load_reduce")


def reduce_cmd(cmd: Any, instr: str) -> str:
    """``cmd`` (an nki.isa.reduce_cmd member, its name or its value 0..4) as a name."""
    name = getattr(cmd, "name", cmd)
    if isinstance(name, (int, np.integer)) and not isinstance(name, bool) and 0 <= int(name) < len(REDUCE_CMDS):
        return REDUCE_CMDS[int(name)]
    if isinstance(name, str) and name in REDUCE_CMDS:
        return name
    raise EmulatorError(f"{instr}: reduce_cmd {cmd!r} is not one of {', '.join(REDUCE_CMDS)}")


class ReduceRegisters:
    """One fp32 accumulator register per lane (ScalarE ``reduce_regs``, or the Vector Engine accumulators).

    A NeuronCore holds one per engine; the array-level instructions take it as ``regs=`` (a fresh, zeroed one is
    used when omitted).
    """

    def __init__(self, lanes: int = PMAX) -> None:
        self.values = np.zeros(lanes, np.float32)

    def apply(self, cmd: str, partial: np.ndarray | None, identity: float, combine, init=None) -> np.ndarray:
        """Run ``cmd`` with this instruction's per-lane partial results ``partial`` ([P] fp32); return regs[:P]."""
        rows = self.values.shape[0] if partial is None else partial.shape[0]
        regs = self.values[:rows]
        if cmd in ("reset", "reset_reduce"):
            regs[...] = identity
        elif cmd == "load_reduce":
            regs[...] = init
        if cmd in ("reduce", "reset_reduce", "load_reduce") and partial is not None:
            regs[...] = combine(regs, partial).astype(np.float32)
        return regs

    def readout(self, cmd: str, partial: np.ndarray | None, identity: float, combine, reduce_res: Any, rows: int,
                instr: str, init=None, negate: bool = False) -> None:
        """:meth:`apply`, then write regs[:rows] (negated if asked) into ``reduce_res`` ([rows, 1]) when given."""
        vals = self.apply(cmd, partial, identity, combine, init)
        if reduce_res is not None:
            res = check_dst(reduce_res, instr)
            if res.shape[0] != rows or res.size != rows:
                raise ShapeError(f"{instr}: reduce_res has shape {res.shape}; it must be [{rows}, 1]")
            write(res, (-vals[:rows] if negate else vals[:rows]).reshape(res.shape), instr)
