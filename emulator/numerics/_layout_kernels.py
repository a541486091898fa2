"""Hot loops of the data layouts: the interleaved K order (:mod:`.mx_layout`) and the nibble pairs of 4-bit x4 words
(:mod:`.packing`). Numba kernels and their NumPy twins, bit-identical.

``to_interleaved`` writes row p of the ``[K/4, 4M]`` result from rows p, Kp + p, 2Kp + p and 3Kp + p of the
``[K, M]`` input (Kp = K/4), so the kernel reads four rows and writes one, each front to back; NumPy's transpose copy
of the same (``reshape(4, Kp, M).transpose(1, 2, 0)``) writes with a stride of four elements and was the larger
part of ``quantize_operand(order="interleaved")``. ``from_interleaved`` is the same loop the other way round. The
kernels move elements as unsigned integers of the element's width, so every dtype (bfloat16 and the fp8 types of
ml_dtypes included) takes them, and parallel over result rows above :data:`SERIAL_BELOW` elements.

A 4-bit x4 word (uint16, little-endian) is two bytes, each a pair of codes: element 2j in the low nibble of byte
j, element 2j + 1 in the high one. :func:`pack_nibbles` / :func:`unpack_nibbles` build and split those bytes in one
pass over the codes read or written two to a uint16 (NumPy's version is three strided passes with temporaries);
they are used on little-endian machines only (as :mod:`.packing` is).
"""

from __future__ import annotations

import numpy as np

from .._jit import dispatch, prange, sized

__all__ = ["interleave_rows", "deinterleave_rows", "pack_nibbles", "unpack_nibbles", "SERIAL_BELOW"]

#: Below this many elements the kernels run on one thread (waking the pool costs more than it saves).
SERIAL_BELOW = 1 << 18

_UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _interleave_body(a, out):
    kp, m = out.shape[0], a.shape[1]
    for p in prange(kp):
        r0, r1, r2, r3, o = a[p], a[kp + p], a[2 * kp + p], a[3 * kp + p], out[p]
        for j in range(m):
            o[4 * j] = r0[j]
            o[4 * j + 1] = r1[j]
            o[4 * j + 2] = r2[j]
            o[4 * j + 3] = r3[j]


def _deinterleave_body(t, out):
    kp, m = t.shape[0], out.shape[1]
    for p in prange(kp):
        row, o0, o1, o2, o3 = t[p], out[p], out[kp + p], out[2 * kp + p], out[3 * kp + p]
        for j in range(m):
            o0[j] = row[4 * j]
            o1[j] = row[4 * j + 1]
            o2[j] = row[4 * j + 2]
            o3[j] = row[4 * j + 3]


_interleave_nb = sized(_interleave_body, 0, SERIAL_BELOW)
_deinterleave_nb = sized(_deinterleave_body, 0, SERIAL_BELOW)


def _run(kernel, src: np.ndarray, shape: tuple) -> np.ndarray:
    """Run ``kernel`` on ``src`` viewed as unsigned integers of its width, into a new array of ``shape``."""
    src = np.ascontiguousarray(src)
    u = _UINT[src.dtype.itemsize]
    out = np.empty(shape, u)
    kernel(src.view(u), out)
    return out.view(src.dtype)


def _interleave_np(a: np.ndarray) -> np.ndarray:
    k, m = a.shape
    return np.ascontiguousarray(a.reshape(4, k // 4, m).transpose(1, 2, 0)).reshape(k // 4, 4 * m)


def _deinterleave_np(t: np.ndarray) -> np.ndarray:
    kp, f = t.shape
    return np.ascontiguousarray(t.reshape(kp, f // 4, 4).transpose(2, 0, 1)).reshape(4 * kp, f // 4)


def _interleave_numba(a: np.ndarray) -> np.ndarray:
    if a.dtype.itemsize not in _UINT or a.dtype.hasobject:
        return _interleave_np(a)
    k, m = a.shape
    return _run(_interleave_nb, a, (k // 4, 4 * m))


def _deinterleave_numba(t: np.ndarray) -> np.ndarray:
    if t.dtype.itemsize not in _UINT or t.dtype.hasobject:
        return _deinterleave_np(t)
    kp, f = t.shape
    return _run(_deinterleave_nb, t, (4 * kp, f // 4))


interleave_rows = dispatch(_interleave_numba, _interleave_np)
interleave_rows.__doc__ = """``[K, M]`` -> ``[K/4, 4M]`` with ``out[p, 4m+q] = a[q*K/4 + p, m]`` (the caller checks
the shapes)."""
deinterleave_rows = dispatch(_deinterleave_numba, _deinterleave_np)
deinterleave_rows.__doc__ = """The inverse of :func:`interleave_rows`: ``[Kp, 4M]`` -> ``[4Kp, M]``."""


_CHUNK = 1 << 16  # bytes per parallel task of the nibble kernels


def _pack_nibbles_body(pairs, out):
    # pairs: the codes as uint16, two to a word (little-endian: code 2j in the low byte); each code < 16, so the
    # word shifted right by 4 has code 2j + 1 at bits 4-7 and nothing below
    n = out.size
    for t in prange((n + _CHUNK - 1) // _CHUNK):
        for j in range(t * _CHUNK, min(n, (t + 1) * _CHUNK)):
            w = pairs[j]
            out[j] = (w | (w >> 4)) & 0xFF


def _unpack_nibbles_body(octets, pairs):
    # pairs: the output codes as uint16, two to a word (little-endian: code 2j in the low byte)
    n = octets.size
    for t in prange((n + _CHUNK - 1) // _CHUNK):
        for j in range(t * _CHUNK, min(n, (t + 1) * _CHUNK)):
            o = np.uint16(octets[j])
            pairs[j] = (o & 0x0F) | ((o >> 4) << 8)


# sized by their first argument, which holds one element per two codes
_pack_nb = sized(_pack_nibbles_body, 0, SERIAL_BELOW // 2)
_unpack_nb = sized(_unpack_nibbles_body, 0, SERIAL_BELOW // 2)


def _pack_nibbles_np(codes: np.ndarray) -> np.ndarray:
    return codes[..., 0::2] | (codes[..., 1::2] << np.uint8(4))


def _unpack_nibbles_np(octets: np.ndarray) -> np.ndarray:
    out = np.empty(octets.shape[:-1] + (octets.shape[-1] * 2,), np.uint8)
    out[..., 0::2] = octets & np.uint8(0x0F)
    out[..., 1::2] = octets >> np.uint8(4)
    return out


def _pack_nibbles_numba(codes: np.ndarray) -> np.ndarray:
    out = np.empty(codes.shape[:-1] + (codes.shape[-1] // 2,), np.uint8)
    _pack_nb(codes.reshape(-1).view(np.uint16), out.reshape(-1))
    return out


def _unpack_nibbles_numba(octets: np.ndarray) -> np.ndarray:
    out = np.empty(octets.shape[:-1] + (octets.shape[-1] * 2,), np.uint8)
    _unpack_nb(octets.reshape(-1), out.reshape(-1).view(np.uint16))
    return out


pack_nibbles = dispatch(_pack_nibbles_numba, _pack_nibbles_np)
pack_nibbles.__doc__ = """C-contiguous uint8 codes ``[..., 2N]`` (each < 16) -> bytes ``[..., N]``: code 2j in the
low nibble of byte j, code 2j + 1 in the high one."""
unpack_nibbles = dispatch(_unpack_nibbles_numba, _unpack_nibbles_np)
unpack_nibbles.__doc__ = """The inverse of :func:`pack_nibbles`: C-contiguous bytes ``[..., N]`` -> codes
``[..., 2N]``."""
