"""``emu.matmul``: any ``[M, K] @ [K, N]`` through the tiled Tensor Engine, exactly as a kernel would run it.

The inputs are quantised as a kernel would (casts to the input format; MX formats: one E8M0 scale per 32
consecutive k, laid onto the hardware's 8-partition x 4-sub-element groups, scale convention from the settings),
then tiled into 128-column stationary and 512-column moving tiles with K in runs of 128 partitions (512 logical k
for MX). Every output tile accumulates its K tiles in PSUM in order, the first ``nc_matmul`` overwriting, exactly as
the hardware sequence would; ragged edges are just smaller tiles (MX pads K with zeros to a multiple of 32). The
result is float32.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from ..config import get_settings
from ..errors import ArgumentError, DtypeError, ShapeError
from . import _matmul_kernels as _k
from . import accumulate as _acc

__all__ = ["matmul", "MATMUL_FMTS", "MX_ELEMENTS", "format_name", "matmul_operands", "quantize_inputs"]

MATMUL_FMTS = ("float32", "tfloat32", "bfloat16", "float16", "float8_e4m3fn", "float8_e5m2", "float8_e4m3",
               "mxfp8_e4m3", "mxfp8_e5m2", "mxfp4")
#: the element format of each MX matmul format
MX_ELEMENTS = {"mxfp8_e4m3": "float8_e4m3fn", "mxfp8_e5m2": "float8_e5m2", "mxfp4": "float4_e2m1fn"}
_ALIASES = {"fp32": "float32", "tf32": "tfloat32", "bf16": "bfloat16", "fp16": "float16", "e4m3fn": "float8_e4m3fn",
            "fp8_e4m3fn": "float8_e4m3fn", "e5m2": "float8_e5m2", "fp8_e5m2": "float8_e5m2",
            "mxfp8": "mxfp8_e4m3", "mxfp4_e2m1": "mxfp4"}
_PROGRESS_MACS = 2 ** 33  # show a progress bar above ~8.6 G multiply-adds (a 2048^3 matmul)


def format_name(fmt: str) -> str:
    """The canonical name of a matmul format (aliases such as ``bf16``, ``e4m3fn``, ``mxfp8`` resolved); an unknown
    one is a ValueError listing the formats."""
    key = _ALIASES.get(str(fmt).lower(), str(fmt).lower())
    if key not in MATMUL_FMTS:
        raise ArgumentError(f"matmul: fmt {fmt!r} is not one of {', '.join(MATMUL_FMTS)}")
    return key


def _as_values(x, name: str) -> np.ndarray:
    from ..numerics.cast import as_float_array

    try:
        arr = as_float_array(x, f"matmul: {name}")
    except TypeError as exc:
        raise DtypeError(str(exc)) from None
    if arr.ndim != 2:
        raise ShapeError(f"matmul: {name} must be 2-D, got shape {arr.shape}")
    return arr


def matmul_operands(a, b) -> tuple[np.ndarray, np.ndarray]:
    """``a [M, K]`` and ``b [K, N]`` as float arrays, checked: 2-D, float dtypes, matching K (errors name the rule)."""
    a = _as_values(a, "a")
    b = _as_values(b, "b")
    if a.shape[1] != b.shape[0]:
        raise ShapeError(f"matmul: a is {list(a.shape)} and b is {list(b.shape)}; a's columns (K = {a.shape[1]}) "
                         f"must equal b's rows ({b.shape[0]})")
    return a, b


def _packed(a, b, fmt: str, accumulation, psum_dtype: str):
    """The Numba fast path of emu.matmul under the default model (sequential, fp32 PSUM, denormals kept) for the
    narrow formats and MX, when the inputs are rounded by RNE/RTZ (SR streams are keyed on the [K, M] order, and
    custom FP4 tables exist only in the PE decode): (stationary panels, moving panels, K', ktile, M, N), or None.

    The codes (and MX blocks and scales) are :func:`quantize_inputs`' -- the same casts and quantiser on the same
    arrays; they are decoded straight into the panel layout the tiled kernel reads, so neither the decoded operands
    nor their packed copies are made separately."""
    from .._jit import numba_active
    from ..numerics import formats
    from ..numerics.cast import cast, rounding_for
    from ..numerics.mx_core import _bits, _quantize_core, element_format, scale_values
    from ._matmul_kernels import MR, NR, code_panels

    s = get_settings()
    mx = fmt in MX_ELEMENTS
    if (not numba_active() or fmt in ("float32", "tfloat32") or psum_dtype != "float32" or s.denormals != "keep"
            or rounding_for("mx" if mx else "engine") == "sr" or (fmt == "mxfp4" and s.mx_fp4_lut != "e2m1")
            or _acc.parse_model(accumulation)[0] != "sequential"):
        return None
    a, b = matmul_operands(a, b)
    (M, K), N = a.shape, b.shape[1]
    if mx:
        pad = -K % 32
        efmt = element_format(MX_ELEMENTS[fmt])
        ab, sh_a = _bits(np.ascontiguousarray(np.pad(a, ((0, 0), (0, pad))) if pad else a, np.float32), "a", False)
        bb, sh_b = _bits(np.ascontiguousarray(np.pad(b, ((0, pad), (0, 0))) if pad else b, np.float32), "b", False)
        ca, sa = _quantize_core(ab, sh_a, 1, 32, efmt, s.mx_convention, None, None, None, 0)
        cb, sb = _quantize_core(bb, sh_b, 32, 1, efmt, s.mx_convention, None, None, None, 0)
        vtab, ftab, ktile = efmt.value_table, scale_values(np.float32), 512
    else:
        pad = 0
        efmt = formats.get(fmt)
        rounding = rounding_for("engine")
        ca = cast(np.ascontiguousarray(a), efmt, rounding=rounding, site=1)
        cb = cast(np.ascontiguousarray(b), efmt, rounding=rounding, site=2)
        sa = sb = np.zeros((0, 0), np.uint8)
        vtab, ftab, ktile = efmt.value_table, np.ones(1, np.float32), 128
    ap = np.empty((-(-M // MR), (K + pad) * MR), np.float32)
    bp = np.empty((-(-N // NR), (K + pad) * NR), np.float32)
    code_panels(ca, vtab, sa, 1, 32, ftab, MR, True, ap)
    code_panels(cb, vtab, sb, 32, 1, ftab, NR, False, bp)
    return ap, bp, K + pad, ktile, M, N


def quantize_inputs(a, b, fmt: str = "bfloat16") -> tuple[np.ndarray, np.ndarray, int]:
    """(stationary values ``[K', M]``, moving values ``[K', N]``, k per instruction) as float32, quantised to ``fmt``
    the way a kernel would feed the Tensor Engine (MX: scaled values, K' = K padded to a multiple of 32)."""
    from ..numerics.cast import rounding_for, round_to

    fmt = format_name(fmt)
    a, b = matmul_operands(a, b)
    if fmt in MX_ELEMENTS:
        from ..numerics import mx
        from .tensor import _mx_operand

        K = a.shape[1]
        pad = -K % 32
        at = np.pad(a.T, ((0, pad), (0, 0))) if pad else a.T
        bp = np.pad(b, ((0, pad), (0, 0))) if pad else b
        el = MX_ELEMENTS[fmt]
        s = get_settings()
        if rounding_for("mx") == "sr" or (el == "float4_e2m1fn" and s.mx_fp4_lut != "e2m1"):
            # the general path: SR streams are keyed on the [K, M] operand's element order, custom FP4 tables
            # only exist in the PE decode
            qa = mx.quantize_operand(np.ascontiguousarray(at, np.float32), el, order="contiguous")
            qb = mx.quantize_operand(np.ascontiguousarray(bp, np.float32), el, order="contiguous")
            # contiguous order: sub-element q of partition p is natural k = 4p + q, the PE's summation order
            st, _ = _mx_operand(qa[0], qa[1], el, "stationary", None, 0, "matmul")
            mv, _ = _mx_operand(qb[0], qb[1], el, "moving", None, 0, "matmul")
            return st, mv, 512
        # Same blocks (32 consecutive k per scale, same convention, RNE/RTZ elementwise) without transposing a:
        # OCP blocks along a's rows give the stationary values as a transpose view the tiled kernel packs directly.
        ap = np.pad(a, ((0, 0), (0, pad))) if pad else a
        codes, scales = mx.quantize(np.ascontiguousarray(ap, np.float32), el, block_size=32, axis=-1,
                                    convention=s.mx_convention)
        st = mx.dequantize(codes, scales, el, block_size=32, axis=-1).T
        qb = mx.quantize_operand(np.ascontiguousarray(bp, np.float32), el, order="contiguous")
        mv = mx.dequantize_operand(qb[0], qb[1], el, order="contiguous")
        return st, mv, 512
    # The stationary operand is returned as the transpose *view* of a row-major [M, K] array (F-contiguous): the
    # tiled kernel packs it from a's rows, so the full transpose is never materialised.
    if fmt == "float32":
        return np.ascontiguousarray(a, np.float32).T, np.ascontiguousarray(b, np.float32), 128
    rounding = rounding_for("engine")
    if rounding == "sr":  # SR streams are keyed by element index: keep the [K, M] order they are defined on
        st = np.ascontiguousarray(round_to(np.ascontiguousarray(a.T), fmt, rounding=rounding, site=1))
    else:  # RNE/RTZ act element by element, so rounding a and then transposing is the same
        st = round_to(np.ascontiguousarray(a), fmt, rounding=rounding, site=1).T
    mv = np.ascontiguousarray(round_to(np.ascontiguousarray(b), fmt, rounding=rounding, site=2))
    return st, mv, 128


def _progress(done: int, total: int, start: float) -> None:
    width = 30
    frac = done / total if total else 1.0
    bar = "#" * int(width * frac) + "-" * (width - int(width * frac))
    sys.stderr.write(f"\rtrn3emu matmul [{bar}] {100 * frac:5.1f}%  {time.perf_counter() - start:6.1f}s")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def matmul(a, b, fmt: str = "bfloat16", *, accumulation: str | None = None, psum_dtype: str = "float32",
           explain: bool = False, progress: bool | None = None) -> np.ndarray:
    """``a [M, K] @ b [K, N]`` through the emulated Tensor Engine, returned as float32 ``[M, N]``.

    Parameters
    ----------
    a, b : float arrays (float32/float64/float16 or ml_dtypes); they are quantised to ``fmt`` first.
    fmt : float32, tfloat32, bfloat16, float16, float8_e4m3fn, float8_e5m2, float8_e4m3, mxfp8_e4m3, mxfp8_e5m2,
        mxfp4 (aliases bf16, fp16, e4m3fn, e5m2, mxfp8 ...). float32 products follow setting ``fp32_matmul``.
    accumulation : PE accumulation model (default: setting ``accumulation``).
    psum_dtype : float32 (default) or bfloat16: the PSUM tile the K tiles accumulate in (bf16: each step rounds).
    explain : print the tile schedule, bytes moved and estimated cycles (see ``emu.explain.matmul``).
    progress : progress bar on stderr (default: on for matmuls above ~8.6 G multiply-adds).

    Example
    -------
    >>> import numpy as np, emulator as emu
    >>> a = np.full((2, 300), 1.0 + 2.0**-10, np.float32); b = np.ones((300, 3), np.float32)
    >>> emu.matmul(a, b, "bfloat16")            # a rounds to 1.0 in bf16; K = 300 runs as 3 K tiles
    array([[300., 300., 300.],
           [300., 300., 300.]], dtype=float32)
    """
    fmt = format_name(fmt)
    if psum_dtype not in ("float32", "bfloat16"):
        raise DtypeError(f"matmul: psum_dtype must be 'float32' or 'bfloat16', got {psum_dtype!r}")
    packed = _packed(a, b, fmt, accumulation, psum_dtype)
    if packed is None:
        st, mv, ktile = quantize_inputs(a, b, fmt)
        K, M = st.shape
        N = mv.shape[1]
    else:
        ap, bp, K, ktile, M, N = packed
    if explain:
        from .. import explain as _explain

        print(_explain.matmul(M, np.asarray(a).shape[1], N, fmt=fmt, psum_dtype=psum_dtype))
    fp32_mode = get_settings().fp32_matmul if fmt == "float32" else "tf32" if fmt == "tfloat32" else "fp32"
    if fp32_mode == "tf32" and fmt == "tfloat32":
        fp32_mode = "fp32"
        from ..numerics.cast import round_to

        st, mv = round_to(st, "tfloat32"), round_to(mv, "tfloat32")
    show = progress if progress is not None else M * K * N > _PROGRESS_MACS
    rows = M if not show else max(128, (M // 20) // 128 * 128)
    if packed is None and rows >= M:
        return _block(st, mv, ktile, accumulation, fp32_mode, psum_dtype)
    out = np.empty((M, N), np.float32)
    start = time.perf_counter()
    for m0 in range(0, M, max(rows, 1)):  # row blocks are multiples of 128: each starts on a stationary panel
        sl = slice(m0, min(M, m0 + rows))
        if packed is None:
            out[sl] = _block(st[:, sl], mv, ktile, accumulation, fp32_mode, psum_dtype)
        else:
            _k.seq_packed(ap[m0 // _k.MR:-(-sl.stop // _k.MR)], bp, K, ktile, out[sl])
        if show:
            _progress(sl.stop, M, start)
    return _acc.canonical_nan(out) if packed is not None and get_settings().pe_nan == "canonical" else out


def _block(st, mv, ktile, accumulation, fp32_mode, psum_dtype) -> np.ndarray:
    if not (st.flags.c_contiguous or st.flags.f_contiguous):
        st = np.ascontiguousarray(st)
    if psum_dtype == "float32":
        return _acc.tiled_accumulate(st, mv, ktile, accumulation, fp32_mode=fp32_mode)
    psum = None
    for i, k0 in enumerate(range(0, max(st.shape[0], 1), ktile)):
        part = _acc.matmul_accumulate(st[k0:k0 + ktile], mv[k0:k0 + ktile], accumulation, fp32_mode=fp32_mode)
        psum = _acc.psum_write(part, psum, "bfloat16", site=i)
    return psum.astype(np.float32)
