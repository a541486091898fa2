"""x4 packing: four narrow codes in one word, as NKI's ``*_x4`` dtypes hold them.

fp8 x4 words are uint32 with sub-element q in bits [8q, 8q+8) (little-endian: the first value is the lowest byte);
fp4 x4 words are uint16 with nibble q in bits [4q, 4q+4) (in bytes: the low nibble is the even element). This is the
order of AWS's samples and nki-library (reference section 2.1).
"""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentError, DtypeError, ShapeError
from . import formats as _formats
from ._layout_kernels import pack_nibbles, unpack_nibbles

__all__ = ["pack_x4", "unpack_x4", "x4_word_dtype"]


def x4_word_dtype(fmt) -> np.dtype:
    """uint32 for 8-bit element formats, uint16 for 4-bit ones."""
    fmt = _formats.x4_element(fmt) if isinstance(fmt, str) else _formats.get(fmt)
    if fmt.bits == 8:
        return np.dtype(np.uint32)
    if fmt.bits == 4:
        return np.dtype(np.uint16)
    raise ArgumentError(f"x4 packing: {fmt.name} is {fmt.bits}-bit; only 8-bit and 4-bit formats pack four to a word")


def pack_x4(codes, fmt) -> np.ndarray:
    """Pack ``codes`` [..., 4F] of ``fmt`` into x4 words [..., F]; element 4j+q lands in sub-element q of word j.

    >>> import numpy as np, emulator as emu
    >>> hex(int(emu.pack_x4(np.array([0x38, 0x40, 0x44, 0x48], np.uint8), "float8_e4m3fn")[0]))
    '0x48444038'
    """
    fmt = _formats.x4_element(fmt) if isinstance(fmt, str) else _formats.get(fmt)
    word = x4_word_dtype(fmt)
    arr = np.asarray(codes)
    if arr.dtype != fmt.code_dtype:
        raise DtypeError(f"pack_x4: codes of {fmt.name} must be {fmt.code_dtype}, got {arr.dtype}")
    if arr.ndim == 0 or arr.shape[-1] % 4:
        raise ShapeError(f"pack_x4: the last dimension must be a multiple of 4, got shape {arr.shape}")
    if fmt.bits == 4 and arr.size and int(arr.max()) > 15:
        raise ArgumentError(f"pack_x4: {fmt.name} codes are 4-bit; got code {int(arr.max())}")
    if np.little_endian:  # a word's bytes in memory order are its sub-elements (fp8) or nibble pairs (fp4)
        arr = np.ascontiguousarray(arr)
        if fmt.bits == 4:  # byte j holds elements 2j (low nibble) and 2j+1 (high nibble)
            arr = pack_nibbles(arr)
        return arr.view(word)
    groups = arr.reshape(arr.shape[:-1] + (arr.shape[-1] // 4, 4)).astype(word)
    shifts = (np.arange(4, dtype=word) * word.type(fmt.bits)).astype(word)
    return np.bitwise_or.reduce(groups << shifts, axis=-1).astype(word)


def unpack_x4(words, fmt) -> np.ndarray:
    """Unpack x4 words [..., F] into codes [..., 4F] of ``fmt`` (the inverse of :func:`pack_x4`).

    >>> import numpy as np, emulator as emu
    >>> emu.unpack_x4(np.array([0x6542], np.uint16), "float4_e2m1fn")
    array([2, 4, 5, 6], dtype=uint8)
    """
    fmt = _formats.x4_element(fmt) if isinstance(fmt, str) else _formats.get(fmt)
    word = x4_word_dtype(fmt)
    arr = np.asarray(words)
    if arr.dtype != word:
        raise DtypeError(f"unpack_x4: {fmt.name} x4 words must be {word}, got {arr.dtype}")
    if np.little_endian and arr.ndim:
        octets = np.ascontiguousarray(arr).view(np.uint8)  # sub-elements (fp8) or nibble pairs (fp4), in order
        if fmt.bits == 8:
            return octets.copy()  # the caller's words stay its own
        return unpack_nibbles(octets)
    shifts = (np.arange(4, dtype=word) * word.type(fmt.bits)).astype(word)
    mask = word.type((1 << fmt.bits) - 1)
    parts = (arr[..., None] >> shifts) & mask
    return parts.astype(fmt.code_dtype).reshape(arr.shape[:-1] + (arr.shape[-1] * 4,) if arr.ndim else (4,))
