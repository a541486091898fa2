"""``emu.matmul``: any ``[M, K] @ [K, N]`` through the tiled Tensor Engine, exactly as a kernel would run it.

The inputs are quantised as a kernel would (casts to the input format; MX formats: one E8M0 scale per 32
consecutive k, laid onto the hardware's 8-partition x 4-sub-element groups, scale convention from the settings),
then tiled into 128-column stationary and 512-column moving tiles with K in runs of 128 partitions (512 logical k
for MX). Every output tile accumulates its K tiles in PSUM in order, the first ``nc_matmul`` overwriting, exactly as
the hardware sequence would; ragged edges are just smaller tiles (MX pads K with zeros to a multiple of 32). The
result is float32.
"""

from __future__ import annotations


import numpy as np

from .._jit import numba_active
from ..config import get_settings
from ..errors import ArgumentError, DtypeError, ShapeError
from ..progress import Progress, progress_enabled
from ..numerics.block_formats import BlockFormat
from ..numerics.cast import round_to
from ..numerics.inputs import as_float_array
from . import _matmul_kernels as _k
from . import accumulate as _acc
from .cost import MATMUL_FMTS, format_name, matmul_format
from .explain import explain_matmul
from .matmul_operands import decode_operand, encode_operand

__all__ = ["matmul", "MATMUL_FMTS", "format_name", "matmul_format", "matmul_operands", "quantize_inputs"]

_PROGRESS_MACS = 2 ** 33  # show a progress bar above ~8.6 G multiply-adds (a 2048^3 matmul)


def _as_values(x, name: str) -> np.ndarray:
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


def _fused(desc, accumulation, psum_dtype: str) -> bool:
    """True when the fused Numba kernel computes this matmul: the sequential model into an fp32 PSUM with denormals
    kept, on narrow or MX inputs (fp32/tf32 values go through ``tiled_accumulate``, whose fast twin packs them)."""
    s = get_settings()
    return (numba_active() and desc.name not in ("float32", "tfloat32") and psum_dtype == "float32"
            and s.denormals == "keep" and _acc.parse_model(accumulation)[0] == "sequential")


def quantize_inputs(a, b, fmt: str = "bfloat16") -> tuple[np.ndarray, np.ndarray, int]:
    """(stationary values ``[K', M]``, moving values ``[K', N]``, k per instruction) as float32, quantised to ``fmt``
    the way a kernel would feed the Tensor Engine (MX: scaled values, K' = K padded to a multiple of 32)."""
    desc = matmul_format(fmt)
    a, b = matmul_operands(a, b)
    st, mv = encode_operand(a, desc, "stationary"), encode_operand(b, desc, "moving")
    return decode_operand(st), decode_operand(mv), 512 if isinstance(desc, BlockFormat) else 128


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
    progress : progress bar on stderr (default: on for matmuls above ~8.6 G multiply-adds when stderr is a terminal).

    Example
    -------
    >>> import numpy as np, emulator as emu
    >>> a = np.full((2, 300), 1.0 + 2.0**-10, np.float32); b = np.ones((300, 3), np.float32)
    >>> emu.matmul(a, b, "bfloat16")            # a rounds to 1.0 in bf16; K = 300 runs as 3 K tiles
    array([[300., 300., 300.],
           [300., 300., 300.]], dtype=float32)
    """
    desc = matmul_format(fmt)
    fmt = desc.name
    if psum_dtype not in ("float32", "bfloat16"):
        raise DtypeError(f"matmul: psum_dtype must be 'float32' or 'bfloat16', got {psum_dtype!r}")
    a, b = matmul_operands(a, b)
    M, N = a.shape[0], b.shape[1]
    sto, mvo = encode_operand(a, desc, "stationary"), encode_operand(b, desc, "moving")
    K, ktile = sto.k, 512 if isinstance(desc, BlockFormat) else 128
    fused = _fused(desc, accumulation, psum_dtype)
    if fused:
        ap, bp = decode_operand(sto, panel_width=_k.MR), decode_operand(mvo, panel_width=_k.NR)
    else:
        st, mv = decode_operand(sto), decode_operand(mvo)
    if explain:
        print(explain_matmul(M, a.shape[1], N, fmt=fmt, psum_dtype=psum_dtype))
    fp32_mode = get_settings().fp32_matmul if fmt == "float32" else "tf32" if fmt == "tfloat32" else "fp32"
    if fp32_mode == "tf32" and fmt == "tfloat32":
        fp32_mode = "fp32"
        st, mv = round_to(st, "tfloat32"), round_to(mv, "tfloat32")
    # progress=True forces the bar; by default it shows for big products when stderr is a terminal (not in logs,
    # not under pytest: emulator.progress decides)
    show = bool(progress) if progress is not None else M * K * N > _PROGRESS_MACS and progress_enabled()
    rows = M if not show else max(128, (M // 20) // 128 * 128)
    if not fused and rows >= M:
        return _block(st, mv, ktile, accumulation, fp32_mode, psum_dtype)
    out = np.empty((M, N), np.float32)
    with Progress(M, f"trn3emu matmul {fmt} rows", enabled=show) as bar:
        for m0 in range(0, M, max(rows, 1)):  # row blocks are multiples of 128: each starts on a stationary panel
            sl = slice(m0, min(M, m0 + rows))
            if fused:
                _k.seq_packed(ap[m0 // _k.MR:-(-sl.stop // _k.MR)], bp, K, ktile, out[sl])
            else:
                out[sl] = _block(st[:, sl], mv, ktile, accumulation, fp32_mode, psum_dtype)
            bar.update(sl.stop - m0)
    return _acc.canonical_nan(out) if fused and get_settings().pe_nan == "canonical" else out


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
