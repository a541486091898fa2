"""Matmul operands as the Tensor Engine reads them: codes (and MX scales) in, decoded values or panels out.

``emu.matmul`` takes one route for every format and setting: each operand is rounded with the public quantisers
(:func:`emulator.cast` for the element formats, :func:`emulator.mx.quantize` / :func:`emulator.mx.quantize_operand`
for MX: one E8M0 scale per 32 consecutive k), then decoded by :func:`decode_operand`, whose Numba twin writes the
values straight into the panels the tiled kernel reads (``code_panels``), then accumulated (``tiled_accumulate`` or
its fused twin). Stochastic rounding takes the same route; its streams are keyed on the ``[K, M]`` order of the
stationary operand, so under SR that operand is rounded in that layout.

>>> import numpy as np
>>> op = encode_operand(np.array([[1.0, 2.5]], np.float32), "bfloat16", "moving")
>>> decode_operand(op).tolist()
[[1.0, 2.5]]
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import ArgumentError
from ..config import get_settings
from ..numerics import block_formats as _blocks
from ..numerics import formats as _formats
from ..numerics import mx as _mx
from ..numerics.cast import cast, rounding_for
from ..numerics.packing import unpack_x4
from . import _matmul_kernels as _k

__all__ = ["Operand", "encode_operand", "decode_operand", "fp4_values", "ROLES"]

ROLES = ("stationary", "moving")
_NO_SCALES = np.zeros((0, 0), np.uint8)


class Operand(NamedTuple):
    """One matmul operand as codes: ``codes`` ``[X, K]`` when ``by_rows`` (a's rows) else ``[K, X]``; ``scales``
    uint8 E8M0 codes, one per ``block`` = (rows, cols) group of ``codes`` (None when unscaled)."""

    codes: np.ndarray
    fmt: _formats.Format
    scales: np.ndarray | None
    block: tuple[int, int]
    by_rows: bool

    @property
    def k(self) -> int:
        return self.codes.shape[1] if self.by_rows else self.codes.shape[0]


def fp4_values(lut=None, who: str = "matmul") -> np.ndarray:
    """The 16 float32 values the PE decodes FP4 nibbles to (default: setting ``mx_fp4_lut``, standard E2M1); a bad
    table is a ValueError naming ``who``."""
    lut = get_settings().mx_fp4_lut if lut is None else lut
    if isinstance(lut, str):
        if lut == "e2m1":
            return _formats.get("float4_e2m1fn").value_table[:16].astype(np.float32)
        lut = [float(v) for v in lut.split(",")]
    table = np.asarray(lut, np.float32)
    e4m3fn = _formats.get("float8_e4m3fn").ml_dtype
    if table.shape != (16,) or not (table.astype(e4m3fn).astype(np.float32) == table).all():
        raise ArgumentError(f"{who}: fp4_lut must be 16 float8_e4m3fn values (nibble 0..15), got {np.asarray(lut).size} "
                         f"values starting {list(np.asarray(lut).ravel()[:4])}")
    return table


def _natural_codes(words: np.ndarray, fmt: _formats.Format) -> np.ndarray:
    """x4 words ``[K/4, F]`` (sub-element q of row p = k 4p + q) -> codes ``[K, F]`` in k order."""
    kp, f = words.shape
    return np.ascontiguousarray(unpack_x4(words, fmt).reshape(kp, f, 4).transpose(0, 2, 1)).reshape(4 * kp, f)


def encode_operand(x: np.ndarray, fmt, role: str, convention: str | None = None) -> Operand:
    """Round one matmul operand (``a [M, K]`` stationary or ``b [K, N]`` moving, float arrays) to ``fmt``.

    Element formats: :func:`emulator.cast` with ``rounding_for("engine")`` (site 1 for a, 2 for b; float32 passes
    through unrounded). MX formats: K padded with zeros to a multiple of the block, then :func:`emulator.mx.quantize`
    along K (a: along its rows; b: down its columns), or under SR :func:`emulator.mx.quantize_operand` on the
    ``[K, free]`` layout the streams are keyed on; convention from the descriptor or setting ``mx_convention``.
    """
    if role not in ROLES:
        raise ArgumentError(f"encode_operand: role {role!r} is not one of {ROLES}")
    desc = _blocks.lookup(fmt)
    stationary = role == "stationary"
    if isinstance(desc, _blocks.BlockFormat):
        return _encode_block(np.asarray(x, np.float32), desc, stationary, convention)
    if desc.name == "float32":
        return Operand(np.ascontiguousarray(x, np.float32).view(np.uint32), desc, None, (1, 1), stationary)
    rounding = rounding_for("engine")
    if stationary and rounding == "sr":  # SR streams are keyed by element index in the [K, M] order
        return Operand(cast(np.ascontiguousarray(x.T), desc, rounding=rounding, site=1), desc, None, (1, 1), False)
    codes = cast(np.ascontiguousarray(x), desc, rounding=rounding, site=1 if stationary else 2)
    return Operand(codes, desc, None, (1, 1), stationary)


def _encode_block(x: np.ndarray, desc: _blocks.BlockFormat, stationary: bool, convention: str | None) -> Operand:
    bs, el = desc.block_size, desc.element
    conv = convention or desc.convention or get_settings().mx_convention
    pad = -x.shape[1 if stationary else 0] % bs
    sr = rounding_for("mx") == "sr"
    if stationary and not sr:
        # blocks along a's rows: the stationary values come out as a transpose, never materialised
        xp = np.pad(x, ((0, 0), (0, pad))) if pad else x
        codes, scales = _mx.quantize(np.ascontiguousarray(xp), el, block_size=bs, axis=-1, convention=conv)
        return Operand(codes, el, scales, (1, bs), True)
    xk = x.T if stationary else x
    xp = np.pad(xk, ((0, pad), (0, 0))) if pad else xk
    if not sr:  # blocks down b's columns, quantised in place
        codes, scales = _mx.quantize(np.ascontiguousarray(xp), el, block_size=bs, axis=0, convention=conv)
        return Operand(codes, el, scales, (bs, 1), False)
    # contiguous order: sub-element q of partition p is k = 4p + q, so a scale covers 32 consecutive k
    words, scales = _mx.quantize_operand(np.ascontiguousarray(xp), el, order="contiguous", convention=conv)
    return Operand(_natural_codes(words, el), el, scales, (bs, 1), False)


def decode_operand(op: Operand, panel_width: int | None = None, fp4_lut=None) -> np.ndarray:
    """The values of an operand as float32 ``[K, X]`` (a transpose view when ``op.by_rows``), or with
    ``panel_width=r`` the ``[ceil(X/r), K*r]`` panels the tiled matmul kernel reads (Numba: decoded straight into
    them). MX values are ``decode(code) * 2^(scale - 127)`` (a 0xFF scale per ``mx_scale_ff``); FP4 nibbles map
    through ``fp4_lut`` (setting ``mx_fp4_lut``)."""
    fmt = op.fmt
    if fmt.storage_bits == 32:
        values = op.codes.view(np.float32)
        if panel_width is not None:
            return _k._pack(values.T if op.by_rows else values, panel_width)
        return values.T if op.by_rows else values
    vtab = fp4_values(fp4_lut) if fmt.bits == 4 else fmt.value_table
    scales = _NO_SCALES if op.scales is None else op.scales
    ftab = _mx.scale_values(np.float32) if op.scales is not None else np.ones(1, np.float32)
    R, C = op.block
    if panel_width is None:
        values = _k.decode_values(op.codes, vtab, scales, R, C, ftab)
        return values.T if op.by_rows else values
    X = op.codes.shape[0] if op.by_rows else op.codes.shape[1]
    out = np.empty((-(-X // panel_width), op.k * panel_width), np.float32)
    _k.code_panels(op.codes, vtab, scales, R, C, ftab, panel_width, op.by_rows, out)
    return out
