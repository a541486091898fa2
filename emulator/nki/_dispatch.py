"""How an ``nki.isa`` call reaches the engines: the current core's method of the same name, with each NkiTensor
replaced by its memory view (the core checks the engine/buffer rules, reads and writes memory with initialisation
tracking, and records statistics). The LNC instructions (``sendrecv``, ``core_barrier``: a rendezvous of the
launch's programs that fails fast, naming the missing core) and the scalar registers belong to the launch.
"""

from __future__ import annotations

import math

import numpy as np

from ..engines.dma import oob_name
from ..errors import DtypeError, EmulatorError, ShapeError
from ._launch import current_program
from .constants import engine
from .tensor import IndirectView, NkiTensor, OutOfBoundsView

__all__ = ["runner", "VirtualRegister"]

_UNKNOWN_ENGINE = engine.unknown

class VirtualRegister:
    """An engine scalar register (``nisa.register_alloc``): an int usable as a loop bound or dynamic offset."""

    __slots__ = ("value",)

    def __init__(self, value: int = 0):
        self.value = int(value)

    def __index__(self) -> int:
        return self.value

    __int__ = __index__

    def __bool__(self) -> bool:
        return self.value != 0

    def __repr__(self) -> str:
        return f"VirtualRegister({self.value})"


class _OutOfBounds(Exception):
    """An operand is an out-of-bounds dynamic view (raised out of :func:`_unwrap`; rare, so kept off the fast
    path)."""

    def __init__(self, view: OutOfBoundsView):
        super().__init__(view.reason)
        self.view = view


_DMA = ("dma_copy", "dma_transpose", "dma_compute")


def _unwrap(value):
    if isinstance(value, (NkiTensor, IndirectView)):
        return value.t
    if type(value) is OutOfBoundsView:
        raise _OutOfBounds(value)
    if value is _UNKNOWN_ENGINE:  # the core's default engine choice
        return None
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (NkiTensor, OutOfBoundsView)):
        return [_unwrap(v) for v in value]
    return value


def _dma_bytes(prog, args: dict) -> None:
    """Bytes moved per DMA queue (the core spreads DMA instructions over its queues round-robin)."""
    from ..engines.limits import DMA_QUEUES

    queue = prog.core.stats.engines["dma"].instructions % DMA_QUEUES
    dst = args.get("dst")
    nbytes = math.prod(dst.shape) * dst.dtype.itemsize if isinstance(dst, (NkiTensor, IndirectView)) else 0
    prog.dma_bytes[queue] = prog.dma_bytes.get(queue, 0) + nbytes


def _check_memset(args: dict) -> None:
    dst, value = args["dst"], args["value"]
    if isinstance(dst, NkiTensor) and dst.t.x4 and float(value) != 0.0:
        raise DtypeError(f"nisa.memset: dst {dst.name} is {dst.t.x4}; a packed x4 tile can only be set to 0, "
                         f"got value={value!r}")


def _refuse_empty(name: str, args: dict) -> None:
    """An empty view (``t[i:i]``) is a valid value, but no instruction takes one: NKI does not say what a
    zero-element access does on the hardware, so the emulator refuses it rather than do nothing."""
    for key, value in args.items():
        if isinstance(value, NkiTensor) and 0 in value.shape:
            raise ShapeError(f"nisa.{name}: {key} {value.name}{list(value.shape)} is empty; an instruction's operand "
                             "needs at least one element")


#: rules the front end checks before the core runs an instruction (they need the NKI dtype of a view)
_CHECKS = {"memset": _check_memset}


def runner(name: str):
    """The function that runs instruction ``name`` on bound NKI arguments."""
    special = _SPECIAL.get(name)
    if special is not None:
        def run_special(args: dict):
            prog = current_program()
            if prog.world is not None:
                prog.world.step(prog.rank)  # the launch's turn order (setting lnc_schedule)
            return special(args)

        return run_special

    check = _CHECKS.get(name)
    # only a DMA touches memory another program sees (HBM); compute works on the core's own SBUF/PSUM, so the turn
    # passes at DMAs and rendezvous alone: the same results as a turn per instruction, far fewer thread hand-offs
    shared = name in _DMA

    def run(args: dict):
        prog = current_program()
        if shared and prog.world is not None:
            prog.world.step(prog.rank)
        if check is not None:
            check(args)
        _refuse_empty(name, args)
        method = getattr(prog.core, name, None)
        if method is None:
            raise EmulatorError(f"nisa.{name}: this emulator build does not implement the instruction yet")
        try:
            kwargs = {k: _unwrap(v) for k, v in args.items()}
        except _OutOfBounds as oob:
            if name in _DMA and not oob.view.static and oob_name(args.get("oob_mode") or "error",
                                                                 f"nisa.{name}") == "skip":
                _count(prog.core, name, "dma", 0)  # issued, moved nothing
                return None
            raise oob.view.error(f"nisa.{name}") from None
        out = method(**kwargs)
        if name in _DMA:
            _dma_bytes(prog, args)
        return out

    return run


# ---- the launch's own instructions ------------------------------------------------------------------------------

def _count(core, name: str, engine: str, nbytes: int) -> None:
    """Record an instruction the launch runs itself in the core's statistics."""
    stats = core.stats
    stats.instructions[name] = stats.instructions.get(name, 0) + 1
    stats.engines[engine].instructions += 1
    stats.engines[engine].bytes += nbytes


def _sendrecv(args: dict) -> None:
    src, dst = args["src"], args["dst"]
    for role, t in (("src", src), ("dst", dst)):
        if not isinstance(t, NkiTensor) or t.kind != "sbuf":
            raise ShapeError(f"nisa.sendrecv: {role} must be an SBUF tile, got {getattr(t, 'describe', lambda: t)()}")
    if src.shape != dst.shape or src.dtype != dst.dtype:
        raise ShapeError(f"nisa.sendrecv: src {list(src.shape)} {src.dtype} and dst {list(dst.shape)} {dst.dtype} "
                         "must have the same shape and dtype")
    prog = current_program()
    for t in (src.t, dst.t):
        t.memory.touch(t, "nisa.sendrecv")
    _count(prog.core, "sendrecv", "dma", 2 * src.arr.nbytes)
    to, frm = int(args["send_to_rank"]), int(args["recv_from_rank"])
    # a move, not a use (setting uninitialized_copies): unwritten bytes travel as unwritten (the receiver's reads of
    # them are checked), so a partly written tile (MX scales in the quadrant layout: 4 rows of 32) can be sent whole
    check = src.t.base._all or prog.core.settings.uninitialized_copies == "check"
    if check:
        src.t.check_initialized("nisa.sendrecv src")
    payload = (np.array(src.arr), None if check else src.t.mask.copy())
    world = prog.world
    if world is None or world.size == 1:
        if to != prog.rank or frm != prog.rank:
            raise ShapeError(f"nisa.sendrecv: send_to_rank={to}, recv_from_rank={frm} in a launch of one program; "
                             "launch the kernel as kernel[2](...) (LNC=2)")
        _receive(dst, payload)
        return
    for role, r in (("send_to_rank", to), ("recv_from_rank", frm)):
        if not 0 <= r < world.size:
            raise ShapeError(f"nisa.sendrecv: {role}={r}; the launch has programs 0..{world.size - 1}")
    _receive(dst, world.exchange(prog.rank, to, frm, args["pipe_id"], payload))


def _receive(dst: NkiTensor, payload: tuple) -> None:
    """Store a sendrecv payload (values, written-flags or None = all written) into ``dst``, flags included."""
    values, mask = payload
    t = dst.t
    t.data[...] = values
    if mask is None or mask.all():
        t.mark_written()
    else:
        t.base._all = False
        t.mask[...] = mask


def _core_barrier(args: dict) -> None:
    prog = current_program()
    _count(prog.core, "core_barrier", "gpsimd", 0)
    cores = tuple(int(c) for c in args["cores"])
    if prog.world is None or prog.world.size == 1:
        if set(cores) - {prog.rank}:
            raise ShapeError(f"nisa.core_barrier: cores={cores} in a launch of one program; launch with kernel[2]")
        return
    if prog.rank not in cores or any(not 0 <= c < prog.world.size for c in cores):
        raise ShapeError(f"nisa.core_barrier: cores={cores} must include this core ({prog.rank}) and lie in "
                         f"0..{prog.world.size - 1}")
    prog.world.barrier(prog.rank, cores)


def _one_value(t, role: str, instr: str) -> int:
    """The value of the one-element tensor ``t`` (operand ``role`` of ``instr``), read under the uninitialised
    check."""
    values = t.read(instr)
    if values.size != 1:
        raise ShapeError(f"{instr}: {role} {t.name} {list(t.shape)} must hold one value")
    return int(values.reshape(-1)[0])


def _register_alloc(args: dict) -> VirtualRegister:
    x = args["x"]
    if x is None or not hasattr(x, "read"):
        return VirtualRegister(0 if x is None else int(x))
    # beyond the documented None / int: a one-element tensor gives its value, read as register_load reads it
    # (nki-library's all-expert MX moe_tkg kernel starts its dynamic loop with register_alloc(decision[0, 0]))
    return VirtualRegister(_one_value(x, "x", "nisa.register_alloc"))


def _register_move(args: dict) -> None:
    args["dst"].value = int(args["src"])


def _register_load(args: dict) -> None:
    args["dst"].value = _one_value(args["src"], "src", "nisa.register_load")


def _register_store(args: dict) -> None:
    dst = args["dst"]
    dst.write(np.full(dst.shape, int(args["src"])).astype(dst.dtype))


_SPECIAL = {"sendrecv": _sendrecv, "core_barrier": _core_barrier, "register_alloc": _register_alloc,
            "register_move": _register_move, "register_load": _register_load, "register_store": _register_store}
