"""The Tensor Engine (PE array, 128 x 128): ``nc_matmul``, ``nc_matmul_mx`` and ``nc_transpose``.

``dst[M, N] (+)= stationary[K, M].T @ moving[K, N]``: K is the partition dim of both inputs, the stationary free dim
becomes the PSUM partition dim, the moving free dim the PSUM free dim. Operands are float32 / ml_dtypes arrays (or
SBUF :class:`~emulator.engines.memory.Tensor` objects, whose initialisation is checked); the PE result comes from
:mod:`emulator.engines.accumulate` under the declared model, then is written to PSUM (fp32, or bf16 on v4).
Reference: trainium3-datapath.md sections 2.2, 3.1, 3.2.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

from ..args import check_bool
from ..config import get_settings
from ..errors import ArgumentError, ArgumentTypeError, DtypeError, ShapeError
from ..numerics import formats as _formats
from . import accumulate as _acc
from .limits import GEMM_MOVING_FMAX_V4_BF16, GEMM_MOVING_FMAX_V4_FP32, PMAX, VECTOR_TRANSPOSE_MAX
from .memory import Tensor

__all__ = ["nc_matmul", "nc_matmul_mx", "nc_transpose", "MATMUL_FORMATS", "MX_FORMATS", "PMAX", "MAX_MOVING_FREE"]

#: N limit per nc_matmul on v4: all 8 PSUM banks (4096 fp32 or 8192 bf16 per partition)
MAX_MOVING_FREE = {"float32": GEMM_MOVING_FMAX_V4_FP32, "bfloat16": GEMM_MOVING_FMAX_V4_BF16}
MATMUL_FORMATS = ("float32", "tfloat32", "bfloat16", "float16", "float8_e5m2", "float8_e4m3", "float8_e4m3fn")
MX_FORMATS = ("float8_e5m2", "float8_e4m3fn", "float4_e2m1fn")
_FP8 = ("float8_e5m2", "float8_e4m3", "float8_e4m3fn")


def _read(x, role: str, instr: str):
    """(array, tensor or None) of an operand; SBUF tensors are checked for uninitialised reads."""
    if isinstance(x, Tensor):
        if x.kind != "sbuf":
            raise ShapeError(f"{instr}: {role} is a {x.kind.upper()} tensor {x.name!r}; the Tensor Engine reads "
                             "SBUF only")
        return x.read(f"{instr} {role}"), x
    return np.asarray(x), None


def _matmul_operand(x, role: str, fmt_name: str | None, instr: str) -> tuple[np.ndarray, str]:
    """(float32 values, format name) of an nc_matmul operand."""
    arr, _ = _read(x, role, instr)
    dt = arr.dtype
    if dt == np.float32:
        name = "float32" if fmt_name is None else _formats.get(fmt_name).name
        if name not in ("float32", "tfloat32"):
            raise DtypeError(f"{instr}: {role} is a float32 array but {role}_fmt={fmt_name!r}; float32 arrays hold "
                             "float32 or tfloat32 values")
        if name == "tfloat32" and (arr.view(np.uint32) & np.uint32(0x1FFF)).any():
            bad = tuple(int(i) for i in np.argwhere(arr.view(np.uint32) & np.uint32(0x1FFF))[0])
            raise DtypeError(f"{instr}: {role} is tfloat32 but element {bad} has non-zero low 13 mantissa bits "
                             "(round it with emu.round_to(x, 'tfloat32'))")
        return np.ascontiguousarray(arr), name
    try:
        fmt = _formats.get(dt)
    except (TypeError, ValueError):
        fmt = None
    if fmt is None or fmt.name not in MATMUL_FORMATS:
        raise DtypeError(f"{instr}: {role} has dtype {dt}; the Tensor Engine takes "
                         f"{', '.join(MATMUL_FORMATS)} (float32 arrays for fp32/tf32, ml_dtypes for the rest)")
    if fmt_name is not None and _formats.get(fmt_name).name != fmt.name:
        raise DtypeError(f"{instr}: {role}_fmt={fmt_name!r} disagrees with the array's dtype {dt}")
    return np.ascontiguousarray(arr.astype(np.float32)), fmt.name


def _check_mix(sf: str, mf: str, instr: str) -> None:
    wide = ("float32", "tfloat32")
    if (sf in wide) != (mf in wide):
        raise DtypeError(f"{instr}: stationary is {sf} and moving is {mf}; fp32/tf32 operands only pair with "
                         "fp32/tf32")
    if {sf, mf} == {"float8_e4m3", "float8_e4m3fn"}:
        raise DtypeError(f"{instr}: stationary is {sf} and moving is {mf}; legacy float8_e4m3 and OCP "
                         "float8_e4m3fn never meet in one matmul")


def _check_tile(K: int, M: int, tile_position, tile_size, instr: str, row_only: bool = False) -> None:
    if tile_position is None and tile_size is None:
        rows = cols = PMAX
    else:
        if tile_position is None or tile_size is None:
            raise ShapeError(f"{instr}: tile_position and tile_size must be given together, got {tile_position!r} "
                             f"and {tile_size!r}")
        (r0, c0), (rows, cols) = (int(v) for v in tile_position), (int(v) for v in tile_size)
        for what, size in (("row", rows), ("column", cols)):
            if size not in (32, 64, 128):
                raise ShapeError(f"{instr}: tile_size {what} size {size} must be 32, 64 or 128")
        if r0 % rows or c0 % cols or r0 + rows > PMAX or c0 + cols > PMAX:
            raise ShapeError(f"{instr}: tile_position {(r0, c0)} must be multiples of tile_size {(rows, cols)} "
                             "inside the 128 x 128 array")
        if row_only and (cols != PMAX or c0 != 0):
            raise ShapeError(f"{instr}: only row tiling is available here; tile_size columns must be 128 and the "
                             f"column start 0, got tile_size {(rows, cols)} at {(r0, c0)}")
    if K > rows:
        raise ShapeError(f"{instr}: stationary has {K} partitions; the Tensor Engine takes at most {rows}"
                         + (" (the row tile size)" if rows < PMAX else ""))
    if M > cols:
        raise ShapeError(f"{instr}: stationary has free size {M}; the Tensor Engine takes at most {cols} "
                         "stationary columns" + (" (the column tile size)" if cols < PMAX else ""))


def _psum_dtype(psum, psum_dtype) -> str:
    if isinstance(psum, Tensor):
        dt = psum.dtype
    elif psum is not None:
        dt = np.asarray(psum).dtype
    else:
        dt = np.dtype(ml_dtypes.bfloat16) if str(psum_dtype) in ("bfloat16", "bf16") else np.dtype(psum_dtype) \
            if not isinstance(psum_dtype, str) else None
        if dt is None:
            if psum_dtype not in ("float32", "fp32"):
                raise DtypeError(f"psum_dtype: PSUM holds float32 or bfloat16 on trn3, got {psum_dtype!r}")
            return "float32"
    if dt == np.float32:
        return "float32"
    if dt == ml_dtypes.bfloat16:
        return "bfloat16"
    raise DtypeError(f"psum: PSUM holds float32 or bfloat16 on trn3, got {dt}")


def _finish(result: np.ndarray, psum, psum_dtype: str, accumulate, site: int, instr: str):
    """Write the PE result to PSUM: a new array, or in place into ``psum`` (ndarray or PSUM Tensor)."""
    accumulate = None if accumulate is None else check_bool("accumulate", accumulate, instr)
    M, N = result.shape
    if psum is None:
        if accumulate:
            raise ArgumentError(f"{instr}: accumulate=True needs a psum to accumulate onto")
        return _acc.psum_write(result, None, psum_dtype, site=site)
    add = accumulate is not False
    if isinstance(psum, Tensor):
        if psum.kind != "psum":
            raise ShapeError(f"{instr}: psum is a {psum.kind.upper()} tensor {psum.name!r}; the Tensor Engine "
                             "writes PSUM only")
        if psum.shape != (M, N):
            raise ShapeError(f"{instr}: psum tile {psum.name!r} has shape {psum.shape}; the result is {(M, N)}")
        if add:
            psum.check_initialized(f"{instr} accumulate")
        new = _acc.psum_write(result, psum.data if add else None, psum_dtype, site=site)
        psum.write(new)
        return psum.data
    if not isinstance(psum, np.ndarray):
        raise ArgumentTypeError(f"{instr}: psum must be a NumPy array or a PSUM Tensor, got {type(psum).__name__}")
    if psum.shape != (M, N):
        raise ShapeError(f"{instr}: psum has shape {psum.shape}; the result is {(M, N)}")
    psum[...] = _acc.psum_write(result, psum if add else None, psum_dtype, site=site)
    return psum


def _check_onezero(values: np.ndarray, flag: bool, role: str, instr: str) -> None:
    if flag and not np.isin(values, (0.0, 1.0)).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isin(values, (0.0, 1.0)))[0])
        raise ArgumentError(f"{instr}: is_{role}_onezero=True but {role}{list(bad)} = {values[bad]!r}; the hint "
                         "promises only 0 and 1 (the hardware result is undefined otherwise)")


def _transpose_mode(stationary, moving, psum, instr: str):
    data, _ = _read(stationary, "stationary", instr)
    ident, _ = _read(moving, "moving", instr)
    K = data.shape[0]
    if ident.shape != (K, K) or not (ident.astype(np.float32) == np.eye(K, dtype=np.float32)).all():
        raise ShapeError(f"{instr}: is_transpose=True needs moving to be the identity [{K}, {K}], got shape "
                         f"{ident.shape} (or non-identity values)")
    out = nc_transpose(stationary, engine="tensor")
    if psum is not None:
        if isinstance(psum, Tensor):
            psum.write(out)
            return psum.data
        if psum.dtype != out.dtype or psum.shape != out.shape:
            raise DtypeError(f"{instr}: transpose mode writes {out.dtype} {out.shape}; psum is {psum.dtype} "
                             f"{psum.shape}")
        psum[...] = out
        return psum
    return out


def nc_matmul(stationary, moving, psum=None, psum_dtype="float32", *, accumulate: bool | None = None,
              is_transpose: bool = False, tile_position=None, tile_size=None, perf_mode: str | None = None,
              is_stationary_onezero: bool = False, is_moving_onezero: bool = False,
              stationary_fmt: str | None = None, moving_fmt: str | None = None, accumulation: str | None = None,
              site: int = 0):
    """One Tensor Engine matmul: ``dst[M, N] (+)= stationary[K, M].T @ moving[K, N]``.

    Parameters
    ----------
    stationary, moving : ``[K, M]`` and ``[K, N]`` arrays (float32 for fp32/tf32, ml_dtypes bfloat16, float16,
        float8_e5m2, float8_e4m3, float8_e4m3fn) or SBUF Tensors; K <= 128 (or the row tile size), M <= 128.
        fp32/tf32 pair only with fp32/tf32; float8_e4m3 never with float8_e4m3fn.
    psum : None (new PSUM tile) or the PSUM tile to write: a float32/bfloat16 array or PSUM Tensor, updated in
        place and returned. ``accumulate`` None = add when psum is given; False = overwrite it.
    psum_dtype : ``"float32"`` or ``"bfloat16"`` (v4: ``bf16(fp32(psum) + result)``, RNE or SR per settings).
    is_transpose : transpose mode: moving must be the identity; returns stationary.T bit-exactly in its dtype.
    tile_position, tile_size : row/column tiling ((start_row, start_col), (rows, cols)), sizes 32/64/128.
    perf_mode : ``"double_row"``: fp8 operands ``[K2, 2, M]`` / ``[K2, 2, N]``, summed over (p, t) in that order.
    is_stationary_onezero, is_moving_onezero : performance hints; checked (0/1 only), no numeric effect.
    stationary_fmt, moving_fmt : ``"tfloat32"`` to read a float32 array as tf32 (its 13 low bits must be 0).
    accumulation : model override (default: setting ``accumulation``).
    site : stochastic-rounding site id of the bf16 PSUM write.

    Example
    -------
    >>> import numpy as np, ml_dtypes, emulator as emu
    >>> st = np.ones((3, 2), ml_dtypes.bfloat16); mv = np.full((3, 4), 0.5, ml_dtypes.bfloat16)
    >>> emu.nc_matmul(st, mv)
    array([[1.5, 1.5, 1.5, 1.5],
           [1.5, 1.5, 1.5, 1.5]], dtype=float32)
    """
    instr = "nc_matmul"
    for flag, value in (("is_transpose", is_transpose), ("is_stationary_onezero", is_stationary_onezero),
                        ("is_moving_onezero", is_moving_onezero)):
        check_bool(flag, value, instr)
    if is_transpose:
        if perf_mode is not None:
            raise ArgumentError(f"{instr}: perf_mode={perf_mode!r} cannot combine with transpose mode")
        return _transpose_mode(stationary, moving, psum, instr)
    st, sf = _matmul_operand(stationary, "stationary", stationary_fmt, instr)
    mv, mf = _matmul_operand(moving, "moving", moving_fmt, instr)
    _check_mix(sf, mf, instr)
    if perf_mode not in (None, "double_row"):
        raise ArgumentError(f"{instr}: perf_mode {perf_mode!r} is not None or 'double_row'")
    if perf_mode == "double_row":
        if sf not in _FP8 or mf not in _FP8:
            raise DtypeError(f"{instr}: double_row needs fp8 operands, got {sf} and {mf}")
        if st.ndim != 3 or mv.ndim != 3 or st.shape[1] != 2 or mv.shape[1] != 2:
            raise ShapeError(f"{instr}: double_row operands are [K2, 2, free], got {st.shape} and {mv.shape}")
        if tile_size is not None and int(tile_size[1]) != PMAX:
            raise ShapeError(f"{instr}: double_row cannot combine with column tiling (tile_size {tuple(tile_size)})")
        st, mv = st.reshape(-1, st.shape[2]), mv.reshape(-1, mv.shape[2])  # row 2p+t: PE p does t=0 then t=1
        kparts = st.shape[0] // 2
    else:
        if st.ndim != 2 or mv.ndim != 2:
            raise ShapeError(f"{instr}: stationary and moving are 2-D [K, free], got {st.shape} and {mv.shape}")
        kparts = st.shape[0]
    if st.shape[0] != mv.shape[0]:
        raise ShapeError(f"{instr}: stationary has K = {st.shape[0]} partitions and moving has {mv.shape[0]}; "
                         "they must match")
    _check_tile(kparts, st.shape[1], tile_position, tile_size, instr)
    pd = _psum_dtype(psum, psum_dtype)
    if mv.shape[1] > MAX_MOVING_FREE[pd]:
        raise ShapeError(f"{instr}: moving has free size {mv.shape[1]}; a {pd} PSUM output holds at most "
                         f"{MAX_MOVING_FREE[pd]} (8 banks)")
    _check_onezero(st, is_stationary_onezero, "stationary", instr)
    _check_onezero(mv, is_moving_onezero, "moving", instr)
    wide = sf in ("float32", "tfloat32") or mf in ("float32", "tfloat32")
    result = _acc.matmul_accumulate(st, mv, accumulation, fp32_mode=get_settings().fp32_matmul if wide else "fp32")
    return _finish(result, psum, pd, accumulate, site, instr)


def nc_transpose(data, engine: str = "tensor") -> np.ndarray:
    """Bit-exact transpose ``[P, F] -> [F, P]``, dtype preserved (NaN payloads, signed zeros and fp8 codes kept).

    ``engine="tensor"``: up to [128, 128] (SBUF -> PSUM); ``"vector"``: up to [32, 32]. Extra free dims are
    flattened first. On v4 an fp8 input stays fp8 (v3 widened it to 16 bits; v4 is undocumented).

    >>> import numpy as np, emulator as emu
    >>> emu.nc_transpose(np.array([[1, 2, 3]], np.float32))
    array([[1.],
           [2.],
           [3.]], dtype=float32)
    """
    arr, _ = _read(data, "data", "nc_transpose")
    limit = {"tensor": PMAX, "vector": VECTOR_TRANSPOSE_MAX}.get(engine)
    if limit is None:
        raise ArgumentError(f"nc_transpose: engine {engine!r} is not 'tensor' or 'vector'")
    if arr.ndim < 2:
        raise ShapeError(f"nc_transpose: data must be [P, F...], got shape {arr.shape}")
    arr = arr.reshape(arr.shape[0], -1)
    if arr.shape[0] > limit or arr.shape[1] > limit:
        raise ShapeError(f"nc_transpose: data is {list(arr.shape)}; the {engine} engine transposes at most "
                         f"[{limit}, {limit}]")
    return np.ascontiguousarray(arr.T)


def _fp4_table(lut) -> np.ndarray:
    from .matmul_operands import fp4_values

    return fp4_values(lut, "nc_matmul_mx")


def _mx_operand(words, scale, fmt_name, role: str, fp4_lut, p_offset: int, instr: str) -> tuple[np.ndarray, str]:
    """Scaled float32 values ``[4*Kp, F]`` (row 4p+q = sub-element q of partition p) of one MX operand."""
    from ..numerics.mx_core import scale_values
    from ..numerics.mx_layout import P_OFFSETS, from_hw_scale_layout
    from ..numerics.packing import unpack_x4, x4_word_dtype

    fmt = _formats.x4_element(fmt_name) if isinstance(fmt_name, str) else _formats.get(fmt_name)
    if fmt.name not in MX_FORMATS:
        raise DtypeError(f"{instr}: {role}_fmt {fmt.name} is not an MX data format ({', '.join(MX_FORMATS)})")
    arr, _ = _read(words, role, instr)
    if arr.dtype != x4_word_dtype(fmt):
        raise DtypeError(f"{instr}: {role} holds {fmt.name} x4 words, which are {x4_word_dtype(fmt)}; got "
                         f"{arr.dtype}")
    if arr.ndim != 2:
        raise ShapeError(f"{instr}: {role} must be 2-D [Kp, free] x4 words, got shape {arr.shape}")
    kp, F = arr.shape
    # the instruction's rule, checked before any layout helper sees kp (whole-matrix callers such as the matmul
    # reference decode any Kp the layout allows)
    if instr == "nc_matmul_mx" and (kp % 32 or not 0 < kp <= PMAX):
        raise ShapeError(f"{instr}: {role} has Kp = {kp} partitions; it must be a multiple of 32 and at most {PMAX}")
    if isinstance(p_offset, (bool, np.bool_)) or p_offset not in P_OFFSETS:
        raise ArgumentError(f"{instr}: {role}_p_offset must be one of {P_OFFSETS} (start partition inside a "
                            f"quadrant), got {p_offset!r}")
    sc, _ = _read(scale, f"{role}_scale", instr)
    if sc.dtype == ml_dtypes.float8_e8m0fnu:
        sc = sc.view(np.uint8)
    if sc.dtype != np.uint8:
        raise DtypeError(f"{instr}: {role}_scale must be uint8 or float8_e8m0fnu codes, got {sc.dtype}")
    if sc.ndim != 2 or sc.shape[1] < F:
        raise ShapeError(f"{instr}: {role}_scale must be [rows, >= {F}] (one scale per x4 column per 8 "
                         f"partitions), got shape {sc.shape}")
    # the quadrant layout puts dense row g at partition (g//4)*32 + g%4 + p_offset: the tile must reach the last
    last = 32 * ((kp // 8 - 1) // 4) + (kp // 8 - 1) % 4 + p_offset
    if sc.shape[0] != kp // 8 and sc.shape[0] <= last:
        raise ShapeError(f"{instr}: {role}_scale has {sc.shape[0]} rows; with Kp = {kp} it must be dense "
                         f"[{kp // 8}, {F}] (one row per 8 partitions) or the quadrant layout [{last + 1}+, {F}] "
                         f"({role}_p_offset = {p_offset})")
    if sc.shape[0] == kp // 8 and p_offset == 0:
        dense = sc[:, :F]
    else:
        dense = from_hw_scale_layout(sc, kp, p_offset)[:, :F]
    codes = unpack_x4(arr, fmt)  # [kp, 4F], sub-element q of word f at column 4f+q
    values = _fp4_table(fp4_lut)[codes] if fmt.name == "float4_e2m1fn" else fmt.value_table[codes]
    mult = scale_values(np.float32)[np.repeat(dense, 8, axis=0)]  # [kp, F]
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = (values.reshape(kp, F, 4) * mult[:, :, None]).astype(np.float32)
    return np.ascontiguousarray(scaled.transpose(0, 2, 1).reshape(4 * kp, F)), fmt.name


def nc_matmul_mx(stationary_x4, moving_x4, stationary_scale, moving_scale, stationary_fmt, moving_fmt, psum=None,
                 psum_dtype="float32", *, accumulate: bool | None = None, tile_position=None, tile_size=None,
                 fp4_lut=None, stationary_p_offset: int = 0, moving_p_offset: int = 0,
                 accumulation: str | None = None, site: int = 0):
    """The v4 MX matmul: x4 operands with E8M0 scales, effective K = 4 x partitions.

    ``S[p, m, q] = decode(stationary_x4[p, m], q) * 2^(stationary_scale[p//8, m] - 127)`` (likewise V for moving)
    and ``dst[m, n] (+)= sum over p, q of S[p, m, q] * V[p, n, q]``, accumulated in the order p = 0.., q = 0..3
    under the accumulation model. Each scaled value is formed exactly in float32 (a power of two times an fp8/fp4
    value; only values beyond fp32 range become inf), so each product is the exact ``d1*d2*2^(s1+s2-254)`` rounded
    once to fp32. Scale code 0xFF follows setting ``mx_scale_ff`` (NaN by default).

    Parameters
    ----------
    stationary_x4, moving_x4 : x4 words ``[Kp, M]`` / ``[Kp, N]`` (uint32 for fp8, uint16 for fp4), Kp a multiple
        of 32 and <= 128, M even and <= 128; any mix of e5m2, e4m3fn and e2m1fn.
    stationary_scale, moving_scale : uint8 or float8_e8m0fnu codes, dense ``[Kp/8, F]`` or the hardware quadrant
        layout (``[Kp, F]`` tile, with ``*_p_offset`` in {0, 4, 8, 12}).
    stationary_fmt, moving_fmt : element format names (``float8_e4m3fn``, ``float8_e5m2_x4``, ``float4_e2m1fn``...).
    fp4_lut : 16 values the FP4 nibbles map to (default: setting ``mx_fp4_lut``, standard E2M1).
    Other arguments as in :func:`nc_matmul`.

    Example
    -------
    >>> import numpy as np, emulator as emu
    >>> codes = np.full((32, 8), 0x38, np.uint8)                     # e4m3fn 1.0
    >>> x4 = emu.pack_x4(codes, "float8_e4m3fn")                    # [32, 2] words
    >>> s = np.full((4, 2), 127, np.uint8); t = np.full((4, 2), 128, np.uint8)
    >>> emu.nc_matmul_mx(x4, x4, s, t, "float8_e4m3fn", "float8_e4m3fn")    # 128 products of 1 x 2
    array([[256., 256.],
           [256., 256.]], dtype=float32)
    """
    instr = "nc_matmul_mx"
    st, sf = _mx_operand(stationary_x4, stationary_scale, stationary_fmt, "stationary", fp4_lut,
                         stationary_p_offset, instr)
    mv, mf = _mx_operand(moving_x4, moving_scale, moving_fmt, "moving", fp4_lut, moving_p_offset, instr)
    kp, M = st.shape[0] // 4, st.shape[1]
    if kp != mv.shape[0] // 4:
        raise ShapeError(f"{instr}: stationary has Kp = {kp} partitions and moving has {mv.shape[0] // 4}; they "
                         "must match")
    if kp % 32 or not 0 < kp <= PMAX:
        raise ShapeError(f"{instr}: Kp = {kp} partitions; it must be a multiple of 32 and at most {PMAX}")
    if M % 2:
        raise ShapeError(f"{instr}: stationary has free size M = {M}; nc_matmul_mx needs M even")
    _check_tile(kp, M, tile_position, tile_size, instr, row_only=True)
    pd = _psum_dtype(psum, psum_dtype)
    if mv.shape[1] > MAX_MOVING_FREE[pd]:
        raise ShapeError(f"{instr}: moving has free size {mv.shape[1]}; a {pd} PSUM output holds at most "
                         f"{MAX_MOVING_FREE[pd]}")
    result = _acc.matmul_accumulate(st, mv, accumulation)
    return _finish(result, psum, pd, accumulate, site, instr)
