"""How an ``nki.isa`` call reaches the engines.

In order of preference: the current core's method of the same name (it checks the engine/buffer rules, reads and
writes memory with initialisation tracking, and records statistics); else the array-level instruction of
``emulator.engines.isa`` run on the operands' values (read with the uninitialised check) and written back to the
destination views; else the front end's stand-in (:mod:`emulator.nki._fallback`). The LNC instructions
(``sendrecv``, ``core_barrier``) and the scalar registers belong to the launch, so they live here.
"""

from __future__ import annotations

import inspect
from enum import Enum

import numpy as np

from ..errors import EmulatorError, ShapeError
from . import _fallback
from ._launch import current_program
from ._adapters import ADAPTERS as _ADAPTERS
from .tensor import NkiTensor

__all__ = ["runner", "VirtualRegister", "OUTPUT_ROLES"]

#: argument names an instruction writes
OUTPUT_ROLES = frozenset({"dst", "val_dst", "idx_dst", "reduce_res", "dst_scale", "dst_idx"})


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


_TABLE: list = []


def _table() -> dict:
    if not _TABLE:
        try:
            from ..engines.compute import INSTRUCTIONS
        except ImportError:
            return {}
        _TABLE.append(INSTRUCTIONS)
    return _TABLE[0]


_PSUM_FREE = ("gpsimd",)


def _check_buffers(name: str, engine: str, inst, args: dict) -> None:
    """Section 1.3 of the datapath reference for the compute engines: no HBM operands, GpSimd never touches PSUM,
    at most one PSUM input."""
    psum_inputs = []
    for role in inst.reads + inst.writes:
        t = args.get(role)
        if not isinstance(t, NkiTensor):
            continue
        if t.kind == "hbm":
            raise ShapeError(f"nisa.{name}: {role} is an {t.describe()}; the {engine} engine reads and writes "
                             "SBUF/PSUM only (move HBM data with nisa.dma_copy)")
        if t.kind == "psum" and engine in _PSUM_FREE:
            raise ShapeError(f"nisa.{name}: {role} is a {t.describe()}; the GpSimd engine cannot access PSUM")
        if t.kind == "psum" and role in inst.reads:
            psum_inputs.append(role)
    if len(psum_inputs) > 1 and name in ("tensor_tensor", "tensor_tensor_scan", "scalar_tensor_tensor",
                                         "select_reduce"):
        raise ShapeError(f"nisa.{name}: {' and '.join(psum_inputs)} are both in PSUM; at most one input of "
                         f"{name} may be in PSUM")


def _run_on_arrays(name: str, args: dict):
    inst = _table().get(name)
    if inst is None:
        if name in _fallback.HAVE:
            from ..engines.operands import Instruction

            fn = getattr(_fallback, name)
            inst = Instruction(fn, ("vector",), tuple(p for p in ("src", "data1", "data2") if p in args), ("dst",))
        else:
            raise EmulatorError(f"nisa.{name}: this emulator build has no implementation of the instruction yet")
    engine = getattr(args.get("engine"), "name", args.get("engine"))
    engine = inst.engines[0] if engine in (None, "unknown") else str(engine)
    if engine not in inst.engines:
        raise EmulatorError(f"nisa.{name}: engine={engine} cannot run it; it runs on {', '.join(inst.engines)}")
    _check_buffers(name, engine, inst, args)
    accepted = _params(inst.fn)
    outputs, call = {}, {}
    for role, value in args.items():
        if role not in accepted:
            continue
        if isinstance(value, NkiTensor):
            if role in inst.writes:
                outputs[role] = value
                call[role] = np.array(value.arr)
            else:
                call[role] = value.read(f"nisa.{name} {role}")
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, NkiTensor) for v in value):
            call[role] = [v.read(f"nisa.{name} {role}[{i}]") for i, v in enumerate(value)]
        else:
            call[role] = value
    if "engine" in accepted:
        call["engine"] = engine
    if inst.state is not None:
        core = current_program().core
        pool = getattr(core, inst.state, None) or {}
        call[inst.state] = pool.get(engine)
    result = inst.fn(**call)
    for role, tensor in outputs.items():
        tensor.write(call[role])
    return result


_PARAMS: dict = {}


def _params(fn) -> set:
    if fn not in _PARAMS:
        _PARAMS[fn] = set(inspect.signature(fn).parameters)
    return _PARAMS[fn]


def runner(name: str):
    """The function that runs instruction ``name`` on bound NKI arguments."""
    special = _SPECIAL.get(name)
    if special is not None:
        return special

    def run(args: dict):
        prog = current_program()
        prog.counts[name] = prog.counts.get(name, 0) + 1
        method = getattr(prog.core, name, None)
        if method is not None and getattr(prog.core, "accepts_nki_tensors", False):
            return method(**args)
        adapter = _ADAPTERS.get(name)
        if adapter is not None:
            return adapter(args)
        return _run_on_arrays(name, args)

    return run


# ---- the launch's own instructions ------------------------------------------------------------------------------

def _sendrecv(args: dict) -> None:
    src, dst = args["src"], args["dst"]
    for role, t in (("src", src), ("dst", dst)):
        if not isinstance(t, NkiTensor) or t.kind != "sbuf":
            raise ShapeError(f"nisa.sendrecv: {role} must be an SBUF tile, got {getattr(t, 'describe', lambda: t)()}")
    if src.shape != dst.shape or src.dtype != dst.dtype:
        raise ShapeError(f"nisa.sendrecv: src {list(src.shape)} {src.dtype} and dst {list(dst.shape)} {dst.dtype} "
                         "must have the same shape and dtype")
    prog = current_program()
    prog.counts["sendrecv"] = prog.counts.get("sendrecv", 0) + 1
    to, frm = int(args["send_to_rank"]), int(args["recv_from_rank"])
    payload = src.read("nisa.sendrecv src")
    world = prog.world
    if world is None or world.size == 1:
        if to != prog.rank or frm != prog.rank:
            raise ShapeError(f"nisa.sendrecv: send_to_rank={to}, recv_from_rank={frm} in a launch of one program; "
                             "launch the kernel as kernel[2](...) (LNC=2)")
        dst.write(payload)
        return
    for role, r in (("send_to_rank", to), ("recv_from_rank", frm)):
        if not 0 <= r < world.size:
            raise ShapeError(f"nisa.sendrecv: {role}={r}; the launch has programs 0..{world.size - 1}")
    dst.write(world.exchange(prog.rank, to, frm, args["pipe_id"], payload))


def _core_barrier(args: dict) -> None:
    prog = current_program()
    prog.counts["core_barrier"] = prog.counts.get("core_barrier", 0) + 1
    cores = tuple(int(c) for c in args["cores"])
    if prog.world is None or prog.world.size == 1:
        if set(cores) - {prog.rank}:
            raise ShapeError(f"nisa.core_barrier: cores={cores} in a launch of one program; launch with kernel[2]")
        return
    if prog.rank not in cores or any(not 0 <= c < prog.world.size for c in cores):
        raise ShapeError(f"nisa.core_barrier: cores={cores} must include this core ({prog.rank}) and lie in "
                         f"0..{prog.world.size - 1}")
    prog.world.barrier(prog.rank, cores)


def _register_alloc(args: dict) -> VirtualRegister:
    return VirtualRegister(0 if args["x"] is None else int(args["x"]))


def _register_move(args: dict) -> None:
    args["dst"].value = int(args["src"])


def _register_load(args: dict) -> None:
    src = args["src"]
    values = src.read("nisa.register_load")
    if values.size != 1:
        raise ShapeError(f"nisa.register_load: src {src.name} {list(src.shape)} must hold one value")
    args["dst"].value = int(values.reshape(-1)[0])


def _register_store(args: dict) -> None:
    dst = args["dst"]
    dst.write(np.full(dst.shape, int(args["src"])).astype(dst.dtype))


_SPECIAL = {"sendrecv": _sendrecv, "core_barrier": _core_barrier, "register_alloc": _register_alloc,
            "register_move": _register_move, "register_load": _register_load, "register_store": _register_store}
