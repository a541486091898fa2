"""NKI dtypes as NumPy dtypes: ml_dtypes where one exists, tagged words for tfloat32 and the x4 formats.

``nl.bfloat16`` *is* ``np.dtype(ml_dtypes.bfloat16)``, so ``np.zeros(s, nl.bfloat16)`` and ``a.dtype == nl.bfloat16``
work as kernel code and tests expect. ``tfloat32`` is stored as float32 and carries its NKI name in
``dtype.metadata`` (it compares equal to float32, a documented limit). The x4 formats are structured dtypes over the
two halves of their uint32/uint16 word (first field name = NKI name): three distinct, hashable dtypes whose ``str``
names the format and which, like Neuron's, refuse ``astype(float32)`` (TypeError); arrays of them hold the packed
words (``a.view(np.uint32)``).

>>> from emulator.nki import _dtypes
>>> _dtypes.nki_name(_dtypes.DTYPES["float8_e4m3fn_x4"]), _dtypes.DTYPES["float8_e4m3fn_x4"].itemsize
('float8_e4m3fn_x4', 4)
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

from ..errors import DtypeError

__all__ = ["DTYPES", "as_dtype", "nki_name", "is_x4"]


def _tagged(base, name: str) -> np.dtype:
    return np.dtype(base, metadata={"nki": name})


def _x4(base, name: str) -> np.dtype:
    """An x4 dtype: a structured dtype over the packed word (its two halves, the first field named after the format),
    so that the three x4 formats are distinct dtypes (unequal, with their own hash) whose ``str`` names the format.
    Two fields, not one: NumPy casts a one-field structured array to float32 as the numbers of its words, where
    Neuron's x4 dtypes refuse with TypeError, and nki-library's output validator takes that TypeError as its cue to
    unpack the elements before comparing."""
    half = np.dtype(f"<u{np.dtype(base).itemsize // 2}")
    return np.dtype([(name, half), (name + "_hi", half)])


DTYPES: dict[str, np.dtype] = {
    "bool_": np.dtype(np.bool_), "int8": np.dtype(np.int8), "int16": np.dtype(np.int16),
    "int32": np.dtype(np.int32), "uint8": np.dtype(np.uint8), "uint16": np.dtype(np.uint16),
    "uint32": np.dtype(np.uint32), "float16": np.dtype(np.float16), "float32": np.dtype(np.float32),
    "bfloat16": np.dtype(ml_dtypes.bfloat16), "tfloat32": _tagged(np.float32, "tfloat32"),
    "float8_e4m3": np.dtype(ml_dtypes.float8_e4m3), "float8_e4m3fn": np.dtype(ml_dtypes.float8_e4m3fn),
    "float8_e5m2": np.dtype(ml_dtypes.float8_e5m2), "float8_e8m0fnu": np.dtype(ml_dtypes.float8_e8m0fnu),
    "float8_e5m2_x4": _x4(np.uint32, "float8_e5m2_x4"), "float8_e4m3fn_x4": _x4(np.uint32, "float8_e4m3fn_x4"),
    "float4_e2m1fn_x4": _x4(np.uint16, "float4_e2m1fn_x4"), "float4_e2m1fn": np.dtype(ml_dtypes.float4_e2m1fn),
    "int64": np.dtype(np.int64), "float64": np.dtype(np.float64),
}
_ALIASES = {"bool": "bool_", "fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "tf32": "tfloat32"}


def as_dtype(dtype, what: str = "dtype") -> np.dtype:
    """The NumPy dtype for an NKI dtype, a name, a NumPy/ml_dtypes dtype or a torch dtype."""
    if isinstance(dtype, np.dtype):
        return dtype
    if isinstance(dtype, str):
        name = _ALIASES.get(dtype, dtype)
        if name in DTYPES:
            return DTYPES[name]
        raise DtypeError(f"{what}: {dtype!r} is not an NKI dtype ({', '.join(sorted(DTYPES))})")
    text = str(dtype)
    if text.startswith("torch."):
        return as_dtype(text[6:], what)
    try:
        return np.dtype(dtype)
    except TypeError:
        raise DtypeError(f"{what}: {dtype!r} is not a dtype") from None


def nki_name(dtype) -> str:
    """The NKI name of a dtype (``"bfloat16"``, ``"float8_e4m3fn_x4"``, ``"bool_"``...)."""
    dt = as_dtype(dtype)
    if dt.metadata and "nki" in dt.metadata:
        return dt.metadata["nki"]
    if dt.names is not None and dt.names[0] in DTYPES:
        return dt.names[0]
    name = dt.name
    return "bool_" if name == "bool" else name


def is_x4(dtype) -> bool:
    """True for the packed x4 formats."""
    return nki_name(dtype).endswith("_x4")
