"""Module aliases so that unmodified NKI code imports the emulator: ``import nki``, ``import neuronxcc.nki``.

:func:`install` puts entries in ``sys.modules`` for the current NKI module names (``nki``, ``nki.language``,
``nki.isa``, ``nki.isa.constants``, ``nki.typing``, ``nki.collectives``, ``nki.compiler``) and the older
``neuronxcc.nki`` ones (whose ``isa`` also takes the tile-returning NKI 0.1 calls: :mod:`emulator.nki.legacy_isa`),
each pointing at the emulator's module, and adds a meta-path finder for any other
``nki.*`` / ``neuronxcc.nki.*`` name that has an emulator module. :func:`uninstall` puts back whatever was there.
Nothing here runs at import time: ``from emulator.nki import language as nl`` never needs it.

>>> from emulator.nki import _compat
>>> _compat.install()
>>> import nki.language as nl
>>> nl.tile_size.pmax
128
>>> _compat.uninstall()
>>> import sys; "nki" in sys.modules
False
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import threading
import types

__all__ = ["install", "uninstall", "installed", "restore", "MISSING", "ALIASES"]

#: alias name -> emulator module it resolves to
ALIASES: dict[str, str] = {
    "nki": "emulator.nki",
    "nki.language": "emulator.nki.language",
    "nki.isa": "emulator.nki.isa",
    "nki.isa.constants": "emulator.nki.constants",
    "nki.typing": "emulator.nki.typing",
    "nki.collectives": "emulator.nki.collectives",
    "nki.compiler": "emulator.nki.compiler",
    "neuronxcc.nki.language": "emulator.nki.language",
    "neuronxcc.nki.isa": "emulator.nki.legacy_isa",
    "neuronxcc.nki.isa.constants": "emulator.nki.constants",
    "neuronxcc.nki.typing": "emulator.nki.typing",
    "neuronxcc.nki.collectives": "emulator.nki.collectives",
    "neuronxcc.nki.compiler": "emulator.nki.compiler",
}

_lock = threading.Lock()
_saved: dict[str, object] = {}   # name -> the module that was there before install (or _MISSING)
_MISSING = object()
#: the value :func:`restore` reads as "there was no module under this name"
MISSING = _MISSING


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves ``nki.X`` / ``neuronxcc.nki.X`` to ``emulator.nki.X`` when such a module exists."""

    def find_spec(self, fullname, path=None, target=None):
        target_name = _target_of(fullname)
        if target_name is None or importlib.util.find_spec(target_name) is None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        module = importlib.import_module(_target_of(spec.name))
        _saved.setdefault(spec.name, _MISSING)
        return module

    def exec_module(self, module):  # the emulator module is already executed
        pass


def _target_of(fullname: str) -> str | None:
    for prefix in ("neuronxcc.nki", "nki"):
        if fullname.startswith(prefix + "."):
            return "emulator.nki" + fullname[len(prefix):]
    return None


_finder = _AliasFinder()


def _legacy_package(modules: dict) -> types.ModuleType:
    """``neuronxcc.nki``: the front end with its legacy ``isa`` (``import a.b.c as x`` reads attributes, so the
    package object itself must carry the legacy submodule)."""
    front = importlib.import_module("emulator.nki")
    legacy = types.ModuleType("neuronxcc.nki", front.__doc__)
    legacy.__dict__.update({k: v for k, v in vars(front).items() if not k.startswith("__")})
    legacy.__path__ = []
    for sub in ("language", "isa", "typing", "collectives", "compiler"):
        setattr(legacy, sub, modules[f"neuronxcc.nki.{sub}"])
    return legacy


def installed() -> bool:
    """True while :func:`install` is in force."""
    return _finder in sys.meta_path


def install() -> None:
    """Make ``import nki`` (and ``neuronxcc.nki``, their submodules) resolve to the emulator. Idempotent."""
    with _lock:
        if installed():
            return
        package = types.ModuleType("neuronxcc", "trn3-emulator stand-in for the Neuron compiler package")
        package.__path__ = []  # a package, so that neuronxcc.nki resolves through sys.modules
        modules = {"neuronxcc": package}
        for alias, target in ALIASES.items():
            modules[alias] = importlib.import_module(target)
        modules["neuronxcc.nki"] = package.nki = _legacy_package(modules)
        for name, module in modules.items():
            _saved[name] = sys.modules.get(name, _MISSING)
            sys.modules[name] = module
        sys.meta_path.insert(0, _finder)


def uninstall() -> None:
    """Undo :func:`install`: every alias it made is removed and what was there before comes back."""
    with _lock:
        if _finder in sys.meta_path:
            sys.meta_path.remove(_finder)
        restore(_saved)


def restore(saved: dict) -> None:
    """Put back the ``sys.modules`` entries in ``saved`` (name -> module, or :data:`MISSING` to remove), then clear it."""
    for name, before in saved.items():
        if before is _MISSING:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = before
    saved.clear()
