"""Kernel launch: ``@nki.jit``, ``nki.simulate``, ``nki.simulate_kernel``, SPMD grids and LNC=2.

A launch copies the NumPy / ml_dtypes (or torch) arguments into shared HBM, runs the kernel body once per program of
the grid, each program on its own :class:`~emulator.engines.core.NeuronCore` (private SBUF, PSUM and private HBM; one
shared HBM), and gives back the HBM tensors the kernel returns as NumPy arrays. With more than one program the
programs run as threads started under ``contextvars.copy_context().run``: everything a program needs (its core, its
ids, the grid) lives in a ``ContextVar``, so two programs never see each other's state.

>>> import numpy as np
>>> from emulator import nki
>>> from emulator.nki import language as nl, isa as nisa
>>> @nki.jit
... def double(a):
...     t = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
...     nisa.dma_copy(dst=t, src=a)
...     nisa.tensor_tensor(dst=t, data1=t, data2=t, op=nl.add)
...     out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
...     nisa.dma_copy(dst=out, src=t)
...     return out
>>> double(np.arange(8, dtype=np.float32).reshape(2, 4))[1].tolist()
[8.0, 10.0, 12.0, 14.0]
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import os
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .._jit import patient_wait
from ..config import get_settings, run_in_context
from ..errors import RankFailure, SettingsError, ShapeError
from . import _cores, _turns
from ._errors import kernel_errors

__all__ = ["Kernel", "jit", "simulate", "simulate_kernel", "baremetal", "benchmark", "trace", "program_id",
           "num_programs", "program_ndim", "current_program", "current_core", "Program", "target", "last_report"]

#: NEURON_PLATFORM_TARGET_OVERRIDE values and the generation they name
_TARGETS = {"trn3": "gen4", "gen4": "gen4", "trn2": "gen3", "gen3": "gen3", "trn1": "gen2", "inf2": "gen2",
            "gen2": "gen2"}


def target() -> str:
    """The platform in force: ``trn3`` (the only one modelled); another NEURON_PLATFORM_TARGET_OVERRIDE is an error."""
    raw = os.environ.get("NEURON_PLATFORM_TARGET_OVERRIDE", "").strip().lower()
    if raw in ("", "trn3", "gen4"):
        return "trn3"
    if raw in _TARGETS:
        raise SettingsError(f"NEURON_PLATFORM_TARGET_OVERRIDE={raw!r}: this emulator models Trainium3 (trn3/gen4) "
                            f"only; {raw} is a {_TARGETS[raw]} target with other limits and numerics. Unset it or "
                            "set it to trn3")
    raise SettingsError(f"NEURON_PLATFORM_TARGET_OVERRIDE={raw!r} is not a platform (trn1|inf2|gen2, trn2|gen3, "
                        "trn3|gen4); the emulator models trn3")


@dataclass
class Program:
    """One running program instance: its core, its position in the grid, and the launch it belongs to."""

    core: Any
    ids: tuple = ()
    grid: tuple = ()
    world: "_World | None" = None
    rank: int = 0
    dma_bytes: dict = field(default_factory=dict)

    @property
    def lnc_rank(self) -> int:
        return self.rank


#: (rank, rendezvous world) of the calling ``emu.nki.collectives.run_spmd`` rank; None outside run_spmd
spmd_rank: contextvars.ContextVar = contextvars.ContextVar("nki_collective_rank", default=None)
_program: contextvars.ContextVar[Program | None] = contextvars.ContextVar("nki_program", default=None)
_default: contextvars.ContextVar[Program | None] = contextvars.ContextVar("nki_default_program", default=None)


def current_program() -> Program:
    """The running program; outside a kernel, a per-context interactive program on a fresh core."""
    prog = _program.get()
    if prog is None:
        prog = _default.get()
        if prog is None:
            prog = Program(_cores.new_cores(1)[0])
            _default.set(prog)
    return prog


def current_core():
    """The NeuronCore the calling program runs on."""
    return current_program().core


def in_kernel() -> bool:
    return _program.get() is not None


def program_id(axis: int = 0) -> int:
    """Index of this program along ``axis`` of the launch grid (0 without a grid)."""
    prog = current_program()
    if not prog.grid:
        if axis not in (0, -1):
            raise ShapeError(f"nl.program_id: axis {axis} of a launch without a grid (only axis 0 -> 0)")
        return 0
    if not -len(prog.grid) <= axis < len(prog.grid):
        raise ShapeError(f"nl.program_id: axis {axis} is outside the launch grid {list(prog.grid)}")
    return prog.ids[axis]


def num_programs(axes=None) -> int:
    """Number of programs along ``axes`` (an int or a tuple; None: the whole grid). 1 without a grid."""
    grid = current_program().grid
    if not grid:
        return 1
    if axes is None:
        return int(np.prod(grid))
    if isinstance(axes, (tuple, list)):
        return int(np.prod([grid[a] for a in axes]))
    if not -len(grid) <= axes < len(grid):
        raise ShapeError(f"nl.num_programs: axis {axes} is outside the launch grid {list(grid)}")
    return grid[axes]


def program_ndim() -> int:
    """Number of dimensions of the launch grid (0 without a grid)."""
    return len(current_program().grid)


class _World:
    """Rendezvous of the programs of one launch: core_barrier and sendrecv mailboxes."""

    def __init__(self, size: int, cond: threading.Condition | None = None):
        self.size = size
        self.cond = cond or threading.Condition()
        self.arrived: dict = {}
        self.mail: dict = {}
        self.seq: dict = {}
        self.error: BaseException | None = None
        self.shared = _cores.SharedHBM()
        self.collectives = None  # the nki.collectives rendezvous, made on first use
        lockstep = size > 1 and get_settings().lnc_schedule == "lockstep"
        self.turns = _turns.Turns(size, self.cond) if lockstep else None

    def step(self, me: int) -> None:
        """Before program ``me`` issues a DMA or a rendezvous (setting ``lnc_schedule``)."""
        if self.turns is not None:
            self.turns.step(me)

    def wait(self, me: int, ready: Callable[[], bool], timeout: float) -> bool:
        """Wait (``cond`` held) until ``ready()`` or a program failed; False after ``timeout`` s without it."""
        if self.turns is not None:
            return self.turns.wait(me, lambda: ready() or self.error is not None, timeout)
        return self.cond.wait_for(lambda: ready() or self.error is not None, timeout)

    def _wait(self, me: int, what: str, ready: Callable[[], bool], missing: Callable[[], list]) -> None:
        timeout = get_settings().collective_timeout
        if not patient_wait(lambda t: self.wait(me, ready, t), timeout):
            gone = missing()
            self.error = RankFailure(f"{what}: core {gone[0]} did not arrive within {timeout:g} s (setting "
                                     "collective_timeout); both cores of an LNC launch must make the same calls",
                                     rank=gone[0])
            self.cond.notify_all()
        if self.error is not None:
            raise self.error

    def barrier(self, me: int, cores: tuple) -> None:
        with self.cond:
            n = self.seq[(me, "bar", cores)] = self.seq.get((me, "bar", cores), -1) + 1
            key = ("bar", cores, n)
            self.arrived.setdefault(key, set()).add(me)
            self.cond.notify_all()
            self._wait(me, f"core_barrier(cores={cores}) #{n}", lambda: self.arrived[key] >= set(cores),
                       lambda: sorted(set(cores) - self.arrived[key]))

    def exchange(self, me: int, to: int, frm: int, pipe, payload):
        """Post ``payload`` for core ``to``; return what core ``frm`` posted for this core on the same pipe."""
        with self.cond:
            n = self.seq[(me, "send", to, pipe)] = self.seq.get((me, "send", to, pipe), -1) + 1
            self.mail[(me, to, pipe, n)] = payload
            self.cond.notify_all()
            m = self.seq[(me, "recv", frm, pipe)] = self.seq.get((me, "recv", frm, pipe), -1) + 1
            key = (frm, me, pipe, m)
            self._wait(me, f"sendrecv(pipe_id={pipe}) #{m} on core {me}", lambda: key in self.mail, lambda: [frm])
            return self.mail.pop(key)

    def fail(self, exc: BaseException) -> None:
        for world in (self, self.collectives):
            if world is None:
                continue
            with world.cond:
                world.error = world.error or exc
                world.cond.notify_all()
        if self.turns is not None:
            with self.cond:
                self.turns.fail()


def _normalise_grid(grid) -> tuple:
    grid = grid if isinstance(grid, tuple) else (grid,)
    out = []
    for g in grid:
        if hasattr(g, "__nki_lnc__"):  # legacy nl.nc(2) * k spmd_dim objects
            g = g.__nki_lnc__
        if isinstance(g, bool) or not isinstance(g, (int, np.integer)) or g < 1:
            raise ShapeError(f"kernel[...]: launch grid {grid!r}: every dimension must be a positive int")
        out.append(int(g))
    return tuple(out)


class Kernel:
    """A kernel function plus its launch grid; calling it runs it on the emulator (nested calls run inline)."""

    def __init__(self, fn: Callable, grid: tuple = (), options: dict | None = None):
        if isinstance(fn, Kernel):
            fn, grid = fn.fn, grid or fn.grid
        self.fn = fn
        self.grid = grid
        self.options = dict(options or {})
        functools.update_wrapper(self, fn)

    def __getitem__(self, grid) -> "Kernel":
        return Kernel(self.fn, _normalise_grid(grid), self.options)

    def __call__(self, *args, **kwargs):
        if in_kernel():  # a kernel calling another kernel: plain function call on the same core
            return self.fn(*args, **kwargs)
        return launch(self.fn, self.grid, args, kwargs)

    def __repr__(self) -> str:
        grid = f"[{', '.join(map(str, self.grid))}]" if self.grid else ""
        return f"<nki kernel {self.fn.__qualname__}{grid} (trn3-emulator)>"


def jit(fn: Callable | None = None, **options) -> Kernel | Callable[[Callable], Kernel]:
    """``@nki.jit`` or ``@nki.jit(...)``: a :class:`Kernel` (options such as ``platform_target=``, ``mode=`` are
    accepted and recorded; the emulator always runs the body in Python)."""
    pt = options.get("platform_target")
    if pt is not None and str(pt).lower() not in ("trn3", "gen4"):
        # NKI 0.3 removed the argument; old doc tests still pass trn2: run them with trn3 semantics, and say so
        warnings.warn(f"nki.jit(platform_target={pt!r}): the emulator models trn3 (gen4) only; running with trn3 "
                      "limits and numerics", UserWarning, stacklevel=2)
    if fn is None:
        return lambda f: Kernel(f, options=options)
    return Kernel(fn, options=options)


baremetal = benchmark = trace = jit


def simulate(kernel: Callable) -> Kernel:
    """``nki.simulate(kernel)(*args)`` / ``nki.simulate(kernel[2])(*args)``: run on the emulator."""
    return kernel if isinstance(kernel, Kernel) else Kernel(kernel)


def simulate_kernel(kernel: Callable, *args, **kwargs):
    """Legacy ``nki.simulate_kernel(kernel, *args)``."""
    return simulate(kernel)(*args, **kwargs)


# ---- the launch itself -------------------------------------------------------------------------------------------

_reports: contextvars.ContextVar = contextvars.ContextVar("nki_last_report", default=None)
_last_report_global: list = [None]


def last_report():
    """The :class:`~emulator.nki.report.Report` of the most recent launch (None before the first)."""
    return _reports.get() or _last_report_global[0]


@kernel_errors
def launch(fn: Callable, grid: tuple, args: tuple, kwargs: dict):
    """Run ``fn`` once per program of ``grid`` on fresh cores; return its outputs as NumPy arrays."""
    target()
    from . import report as _report
    from ._convert import from_host, to_host

    grid = tuple(grid)
    programs = int(np.prod(grid)) if grid else 1
    cores = _cores.new_cores(programs)
    # a launch made by a run_spmd rank waits on the ranks' lock, so its programs can meet the other ranks' programs
    spmd = spmd_rank.get()
    world = _World(programs, None if spmd is None else spmd[1].cond)
    names = _param_names(fn, len(args))
    host, state = {}, {}
    dev_args = [from_host(a, cores[0], names[i], host, state) for i, a in enumerate(args)]
    dev_kwargs = {k: from_host(v, cores[0], k, host, state) for k, v in kwargs.items()}
    results: list = [None] * programs
    programs_of: list = []
    ids = list(np.ndindex(*grid)) if grid else [()]

    def body(rank: int) -> None:
        prog = Program(cores[rank], ids[rank], grid, world, rank)
        programs_of.append(prog)
        _program.set(prog)
        try:
            if world.turns is not None:
                world.turns.start(rank)
            results[rank] = fn(*dev_args, **dev_kwargs)
        except BaseException as exc:
            world.fail(exc)
            raise
        finally:
            if world.turns is not None:
                world.turns.finish(rank)

    errors = _run_programs(body, programs)
    rep = _report.build(fn, grid, cores, programs_of)
    _reports.set(rep)
    _last_report_global[0] = rep
    if errors:
        raise errors[0]
    _cores.check_leaving(results[0], [tensor for _, tensor in host.values()])
    for arr, tensor in host.values():
        _cores.write_back(arr, tensor)
    return to_host(results[0], state.get("torch", False))


def _run_programs(body: Callable[[int], None], programs: int) -> list:
    errors: list = []
    if programs == 1:
        try:
            contextvars.copy_context().run(body, 0)
        except BaseException as exc:
            errors.append(exc)
        return errors
    slots: list = [None] * programs

    def run(rank: int) -> None:
        try:
            body(rank)
        except BaseException as exc:
            slots[rank] = exc

    threads = [threading.Thread(target=run_in_context(run, r), daemon=True, name=f"nki-program-{r}")
               for r in range(programs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # the first failure that is not a peer giving up because another program failed
    first = [e for e in slots if e is not None and not isinstance(e, RankFailure)]
    return first or [e for e in slots if e is not None]


def _param_names(fn: Callable, n: int) -> list[str]:
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        params = []
    return [params[i] if i < len(params) else f"arg{i}" for i in range(n)]
