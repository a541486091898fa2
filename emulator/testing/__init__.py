"""emulator.testing: hypothesis strategies and bitwise comparators for low-precision dtype tests.

Comparators (NumPy only)::

    from emulator.testing import assert_bitwise_equal, assert_within_ulps, assert_close_to_exact

Strategies (need ``hypothesis``, the ``test`` extra; imported on first use)::

    from emulator.testing import codes, values, arrays, mx_blocks, m_n_sparse, matmul_shapes, settings_profiles

See ``docs/testing.md`` for a guided tour, and the pytest plugin (``--trn3emu-seed``, ``emu_settings``...) in
:mod:`emulator.testing.pytest_plugin`.
"""

from __future__ import annotations

import importlib

from .comparators import (
    assert_bitwise_equal,
    assert_close_to_exact,
    assert_within_ulps,
    compare,
    gamma,
    ulp,
)

_LAZY = {
    name: "emulator.testing.strategies"
    for name in ("codes", "values", "arrays", "edge_codes", "edge_values", "value_classes")
}
_LAZY.update({
    name: "emulator.testing.tensor_strategies"
    for name in ("mx_blocks", "m_n_sparse", "matmul_shapes", "MatmulShape", "settings_profiles")
})
_LAZY.update({name: "emulator.testing.properties" for name in ("check_cast", "reference_cast")})
_LAZY["code_classes"] = "emulator.testing._bits"

__all__ = [
    "assert_bitwise_equal", "assert_within_ulps", "assert_close_to_exact", "compare", "ulp", "gamma",
    *_LAZY,
]


def __getattr__(name: str):
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'emulator.testing' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
