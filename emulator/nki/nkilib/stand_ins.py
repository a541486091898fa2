"""The modules nki-library's harness imports, written by us and put in ``sys.modules`` only for a run.

:func:`install` adds, on top of :func:`emulator.nki.install` (``nki``, ``nki.language``, ``nki.isa``, ...):

* ``nki_cpu_simulator`` and ``nki_cpu_simulator.nki.{builtin, compiler, isa, isa.constants, language,
  language.dtypes, tensor, typing}``: the emulator's front end, with ``nki.cpu_simulate(kernel)[lnc](**inputs)``
  returning NumPy arrays (a tuple for several outputs);
* ``nki.dtype`` / ``nki.tensor``, ``neuron_dtypes`` (:mod:`emulator.nki.nkilib.neuron_dtypes`),
  ``neuronxcc.starfish.support.dtype`` (its ``static_cast``) and ``neuronxcc.nki.typing.mutable_tensor``;
* inert stand-ins for packages the harness imports but never uses in simulation (``fabric2``, ``paramiko``,
  ``boto3``, ``botocore``, ``aws_embedded_metrics``), only where the real package is absent.

:func:`uninstall` removes all of it again.

>>> from emulator.nki.nkilib import stand_ins
>>> stand_ins.install()
>>> import nki_cpu_simulator.nki as sim, neuron_dtypes, nki.language as nl
>>> import numpy as np
>>> @sim.jit
... def twice(x):
...     out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
...     t = nl.load(x)
...     nl.store(out, nl.add(t, t))
...     return out
>>> sim.cpu_simulate(twice)[1](x=np.ones((2, 2), np.float32)).tolist()
[[2.0, 2.0], [2.0, 2.0]]
>>> stand_ins.uninstall()
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types

from .. import _compat, _dtypes
from .._launch import Kernel
from . import neuron_dtypes as _neuron_dtypes

__all__ = ["install", "uninstall", "cpu_simulate", "inert_packages", "InertModule", "INERT_PACKAGES"]

#: packages the harness imports but does not use in simulation mode; stood in for only when absent
INERT_PACKAGES = ("fabric2", "paramiko", "boto3", "botocore", "aws_embedded_metrics")

_MISSING = _compat.MISSING
_saved: dict[str, object] = {}
_inert_used: list[str] = []


class _Simulated:
    """``cpu_simulate(kernel)``: index with the LNC count, call with the kernel's keyword inputs."""

    def __init__(self, kernel):
        self.kernel = kernel if isinstance(kernel, Kernel) else Kernel(getattr(kernel, "fn", kernel))

    def __getitem__(self, lnc):
        lnc = int(lnc)
        return self.kernel[lnc] if lnc > 1 else self.kernel

    def __call__(self, *args, **kwargs):
        return self.kernel(*args, **kwargs)


def cpu_simulate(kernel) -> _Simulated:
    """``nki.cpu_simulate(kernel)[lnc](**inputs)``: run ``kernel`` on ``lnc`` emulated cores, NumPy results."""
    return _Simulated(kernel)


class _Inert(Exception):
    """Any attribute of an inert package: a class that can be called, subclassed, raised and caught."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Inert()

    def __call__(self, *args, **kwargs):
        return _Inert()


class InertModule(types.ModuleType):
    """A module whose every attribute is an :class:`_Inert` class (made on first use)."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        cls = type(name, (_Inert,), {"__module__": self.__name__})
        setattr(self, name, cls)
        return cls


class _InertFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves ``fabric2``, ``botocore.exceptions``, ... to inert modules (installed only for absent packages)."""

    def __init__(self, roots):
        self.roots = tuple(roots)

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.roots:
            return importlib.util.spec_from_loader(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = InertModule(spec.name, "inert stand-in (trn3-emulator nki-library runner): unused in simulation")
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


def _module(name: str, doc: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name, doc)
    module.__dict__.update(attrs)
    return module


def _simulator_modules() -> dict[str, types.ModuleType]:
    import emulator.nki as front

    from .. import compiler, constants, isa, language, tensor, typing

    dtypes = _module("nki_cpu_simulator.nki.language.dtypes", "NKI dtypes", **dict(_dtypes.DTYPES))
    builtin = _module("nki_cpu_simulator.nki.builtin", "builtins the official simulator exposes (none needed)")
    nki = _module("nki_cpu_simulator.nki", front.__doc__, **{k: v for k, v in vars(front).items()
                                                             if not k.startswith("__")})
    nki.__path__ = []
    nki.cpu_simulate = cpu_simulate
    nki.builtin, nki.dtype, nki.tensor = builtin, dtypes, tensor
    root = _module("nki_cpu_simulator", "trn3-emulator stand-in for AWS's NKI CPU simulator", nki=nki)
    root.__path__ = []
    return {"nki_cpu_simulator": root, "nki_cpu_simulator.nki": nki, "nki_cpu_simulator.nki.builtin": builtin,
            "nki_cpu_simulator.nki.compiler": compiler, "nki_cpu_simulator.nki.isa": isa,
            "nki_cpu_simulator.nki.isa.constants": constants, "nki_cpu_simulator.nki.language": language,
            "nki_cpu_simulator.nki.language.dtypes": dtypes, "nki_cpu_simulator.nki.tensor": tensor,
            "nki_cpu_simulator.nki.typing": typing, "nki.dtype": dtypes, "nki.tensor": tensor,
            "neuron_dtypes": _neuron_dtypes}


def _neuronxcc_modules() -> dict[str, types.ModuleType]:
    names = ("neuronxcc.starfish", "neuronxcc.starfish.support")
    mods = {n: _module(n, "trn3-emulator stand-in package") for n in names}
    for m in mods.values():
        m.__path__ = []
    dtype = _module("neuronxcc.starfish.support.dtype", "static_cast of neuron_dtypes",
                    static_cast=_neuron_dtypes.static_cast, is_float_type=_neuron_dtypes.is_float_type)
    mods["neuronxcc.starfish.support.dtype"] = dtype
    mods["neuronxcc.starfish"].support = mods["neuronxcc.starfish.support"]
    mods["neuronxcc.starfish.support"].dtype = dtype
    return mods


def _absent(name: str) -> bool:
    if name in sys.modules:
        return False
    try:
        return importlib.util.find_spec(name) is None
    except (ImportError, ValueError):
        return True


_inert_finder: _InertFinder | None = None


def install() -> None:
    """Put every stand-in in ``sys.modules`` (inert packages only where absent). Idempotent."""
    global _inert_finder
    if _saved:
        return
    _compat.install()
    mods = {**_simulator_modules(), **_neuronxcc_modules()}
    for name, module in mods.items():
        _saved[name] = sys.modules.get(name, _MISSING)
        sys.modules[name] = module
    sys.modules["neuronxcc"].starfish = mods["neuronxcc.starfish"]
    sys.modules["nki"].cpu_simulate = cpu_simulate
    # ``import nki_cpu_simulator.nki.language.dtypes as d`` reads the attribute off the language module
    importlib.import_module("emulator.nki.language").dtypes = mods["nki.dtype"]
    _inert_used[:] = [n for n in INERT_PACKAGES if _absent(n)]
    _inert_finder = _InertFinder(_inert_used)
    sys.meta_path.insert(0, _inert_finder)


def inert_packages() -> list[str]:
    """The packages stood in for by inert modules in this process (the absent ones)."""
    return list(_inert_used)


def uninstall() -> None:
    """Remove every stand-in :func:`install` added and put back what was there."""
    global _inert_finder
    if _inert_finder is not None and _inert_finder in sys.meta_path:
        sys.meta_path.remove(_inert_finder)
    for name in [n for n in sys.modules if n.split(".")[0] in _inert_used]:
        if isinstance(sys.modules[name], InertModule):
            del sys.modules[name]
    _inert_finder = None
    _inert_used.clear()
    _compat.restore(_saved)
    nki = sys.modules.get("nki")
    if nki is not None and getattr(nki, "cpu_simulate", None) is cpu_simulate:
        del nki.cpu_simulate
    language = importlib.import_module("emulator.nki.language")
    if isinstance(getattr(language, "dtypes", None), types.ModuleType):
        del language.dtypes
    _compat.uninstall()
