"""The runnable examples in the MX modules' docstrings are part of the contract: run them."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["mx_core", "mx_ocp", "mx_trainium", "mx_layout"]  # mx.py only re-exports them


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(f"emulator.numerics.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
