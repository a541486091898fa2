"""trn3-emulator: a bit-accurate functional emulator of the AWS Trainium3 (NeuronCore-v4) datapath.

The flat NumPy API (stable; see ``docs/`` and DESIGN.md)::

    import emulator as emu
    emu.formats.get("float8_e4m3fn")
    codes = emu.cast(x, "float8_e4m3fn")            # float array -> raw codes (RNE, IEEE overflow)
    emu.decode(codes, "float8_e4m3fn")               # codes -> exact float32
    emu.round_to(x, "bfloat16")                      # decode(cast(x)) in one call
    with emu.settings(rounding="sr", seed=3): ...    # every modelling choice is a setting

Submodules are imported on first use, so ``import emulator`` stays cheap.
"""

from __future__ import annotations

import importlib

from .config import Settings, configure, get_settings, settings
from .errors import (
    ArgumentError,
    ArgumentTypeError,
    CapacityError,
    DtypeError,
    EmulatorError,
    IntegerOverflowError,
    RankFailure,
    SettingsError,
    ShapeError,
    UninitializedReadError,
    UsageError,
)

__version__ = "0.1.0"

# public name -> (module, attribute or None for the module itself)
_LAZY = {
    "formats": ("emulator.numerics.formats", None),
    "cast": ("emulator.numerics.cast", "cast"),
    "decode": ("emulator.numerics.cast", "decode"),
    "round_to": ("emulator.numerics.cast", "round_to"),
    "pack_x4": ("emulator.numerics.packing", "pack_x4"),
    "unpack_x4": ("emulator.numerics.packing", "unpack_x4"),
    "mx": ("emulator.numerics.mx", None),
    "sparsity": ("emulator.numerics.sparsity", None),
    "stochastic": ("emulator.numerics.stochastic", None),
    "rng": ("emulator.numerics.rng", None),
    "nc_matmul": ("emulator.engines.tensor", "nc_matmul"),
    "nc_matmul_mx": ("emulator.engines.tensor", "nc_matmul_mx"),
    "nc_transpose": ("emulator.engines.tensor", "nc_transpose"),
    "nc_matmul_sparse": ("emulator.engines.sparse", "nc_matmul_sparse"),
    "matmul": ("emulator.engines.matmul", "matmul"),
    "explain": ("emulator.explain", None),
    "engines": ("emulator.engines", None),
    "isa": ("emulator.engines.isa", None),
    "collectives": ("emulator.collectives", None),
    "testing": ("emulator.testing", None),
    "numerics": ("emulator.numerics", None),
    "report": ("emulator.report", None),
}

__all__ = [
    "__version__", "Settings", "settings", "configure", "get_settings",
    "EmulatorError", "ShapeError", "DtypeError", "CapacityError", "UninitializedReadError", "RankFailure",
    "SettingsError", "ArgumentError", "ArgumentTypeError", "IntegerOverflowError", "UsageError", *_LAZY,
]


def __getattr__(name: str):
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'emulator' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
