"""The runnable examples in every module's docstrings are part of the contract: run them all."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import emulator
import kernels


def _modules() -> list[str]:
    names = []
    for pkg in (emulator, kernels):
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            if not info.name.endswith("__main__"):  # running it is the CLI
                names.append(info.name)
    return sorted(names)


MODULES = _modules()


def test_the_walk_finds_the_packages():
    assert "emulator.numerics.cast" in MODULES and "kernels.sparse" in MODULES and len(MODULES) > 40


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
