"""Hypothesis strategies for tensors and configurations: MX blocks, M:N sparse operands, matmul shapes, settings.

* :func:`mx_blocks` draws float32 tensors made of MX scaling blocks with hostile contents (one dominant element,
  all zeros, fp32-subnormal only, amax just below a power of two, elements that saturate or tie after scaling,
  "stabilised" blocks that survive a quantise/dequantise round trip), in the OCP layout (32 consecutive elements
  along an axis) or the Trainium ``quantize_mx`` layout (8 partitions x 4 elements).
* :func:`m_n_sparse` draws arrays with at most ``m`` non-zeros in every ``n`` consecutive elements along an axis.
* :func:`matmul_shapes` draws ``(k, m, n)`` shapes inside the Tensor Engine's limits for ``nc_matmul``,
  ``nc_matmul_mx`` or any shape for the tiled ``emu.matmul``.
* :func:`settings_profiles` draws valid overrides of the declared emulator settings (from ``config.describe()``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st

from .. import config as _config
from ..errors import ArgumentError
from ..numerics import block_formats as _block_formats
from ..numerics import formats as _formats
from ._bits import decode_exact
from .comparators import ulp
from .strategies import _code_elements

__all__ = ["mx_blocks", "MX_BLOCK_KINDS", "m_n_sparse", "HW_SPARSITY_PATTERNS", "matmul_shapes", "MatmulShape",
           "settings_profiles"]


#: Kinds of MX block contents drawn by :func:`mx_blocks`.
MX_BLOCK_KINDS = ("random", "dominant", "zero", "fp32_subnormal", "amax_below_pow2", "saturating", "ties",
                  "stabilized", "nan", "inf")


def _element_format(fmt):
    f = _block_formats.get(fmt).element if _block_formats.is_block_name(fmt) else _formats.get(fmt)
    elements = [b.element.name for b in _block_formats.BLOCK_FORMATS.values()]
    if f.name not in elements + ["float8_e4m3"]:  # e4m3 (max 240) blocks stay drawable, as before
        raise ArgumentError(f"mx_blocks: {f.name} is not an MX element format ({', '.join(elements)})")
    return f


def _block_contents(f, kind: str, size: int):
    """A strategy of ``size`` float32 values forming one block of the given kind."""
    f32 = np.float32
    scale = st.integers(-20, 20)
    signs = st.lists(st.booleans(), min_size=size, max_size=size).map(lambda b: np.where(b, -1.0, 1.0))
    mags = st.lists(st.floats(0, 1, width=32), min_size=size, max_size=size).map(np.array)
    if kind == "random":
        return st.builds(lambda m, s, e: (m * s * 2.0 ** e).astype(f32), mags, signs, scale)
    if kind == "dominant":  # one element 2^(10..40) times the rest: the rest underflow after scaling
        return st.builds(lambda m, s, e, gap, i: _with(((m * s) * 2.0 ** e).astype(f32), i,
                                                       f32(s[i] * 2.0 ** (e + gap))),
                         mags, signs, scale, st.integers(10, 40), st.integers(0, size - 1))
    if kind == "zero":
        return signs.map(lambda s: (0.0 * s).astype(f32))  # zeros of both signs
    if kind == "fp32_subnormal":
        return st.lists(st.integers(-(1 << 23) + 1, (1 << 23) - 1), min_size=size, max_size=size).map(
            lambda ints: np.array([abs(i) | (0x80000000 if i < 0 else 0) for i in ints], np.uint32).view(f32))
    if kind == "amax_below_pow2":  # amax = nextafter(2^k, 0): floor(log2 amax) must come out as k-1
        return st.builds(lambda m, s, e, i: _with((m * s * 2.0 ** (e - 1)).astype(f32), i,
                                                  f32(s[i]) * np.nextafter(f32(2.0 ** e), f32(0))),
                         mags, signs, scale, st.integers(0, size - 1))
    if kind == "saturating":  # amax mantissa at/above the format's top mantissa: clamps after scaling
        top = f.max_finite / 2.0 ** f.emax  # e.g. 1.75 for e4m3fn, 1.5 for e2m1
        return st.builds(lambda m, s, e, t, i: _with((m * s * 2.0 ** e).astype(f32), i,
                                                     f32(s[i] * (top + t * (2 - top)) * 2.0 ** e)),
                         mags, signs, scale, st.floats(0, 1, exclude_max=True), st.integers(0, size - 1))
    if kind in ("ties", "stabilized"):  # exact (stabilized) or tie (ties) multiples of the element grid
        grid = st.lists(_code_elements(f, allow_nan=False, allow_infinity=False), min_size=size, max_size=size)

        def build(codes, e, tie):
            v = decode_exact(np.array(codes, np.uint64), f)
            if tie:  # halfway to the next representable magnitude (clamped below the overflow threshold)
                v = np.sign(v) * np.minimum(np.abs(v) + ulp(v, f) / 2, f.max_finite)
            return (v * 2.0 ** e).astype(f32)

        return st.builds(build, grid, scale, st.just(kind == "ties"))
    special = np.float32(np.nan if kind == "nan" else np.inf)
    return st.builds(lambda m, s, e, i: _with((m * s * 2.0 ** e).astype(f32), i, f32(s[i]) * special),
                     mags, signs, scale, st.integers(0, size - 1))


def _with(arr: np.ndarray, i: int, v) -> np.ndarray:
    arr = arr.copy()
    arr[i] = v
    return arr


def mx_blocks(fmt, shape=(4, 32), *, layout: str = "ocp", block_size: int = 32, axis: int = -1, kinds=None,
              allow_nan: bool = False, allow_infinity: bool = False):
    """float32 tensors made of MX scaling blocks, each block of one kind from :data:`MX_BLOCK_KINDS`.

    Parameters
    ----------
    fmt : the element format (``float8_e4m3fn``, ``float8_e5m2``, ``float4_e2m1fn`` or ``mxfp8_e4m3``...).
    shape : tuple. ``layout="ocp"``: ``shape[axis]`` a multiple of ``block_size``; ``layout="hw"``: ``(P, F)``
        with P a multiple of 8 and F a multiple of 4 (one block = 8 partitions x 4 free elements).
    kinds : the block kinds to draw from (default: all but ``nan``/``inf``, which ``allow_nan``/``allow_infinity``
        add: NaN/Inf handling inside MX blocks is a policy choice).

    >>> from hypothesis import given
    >>> @given(mx_blocks("float8_e4m3fn", (2, 64)))
    ... def test_roundtrip(x): assert x.shape == (2, 64)
    """
    f = _element_format(fmt)
    shape = tuple(int(s) for s in shape)
    if kinds is None:
        kinds = [k for k in MX_BLOCK_KINDS if k not in ("nan", "inf")]
        kinds += ["nan"] * allow_nan + ["inf"] * allow_infinity
    bad = [k for k in kinds if k not in MX_BLOCK_KINDS]
    if bad or not kinds:
        raise ArgumentError(f"mx_blocks: kinds must be a non-empty subset of {MX_BLOCK_KINDS}, got {kinds!r}")
    if layout == "hw":
        if len(shape) != 2 or shape[0] % 8 or shape[1] % 4 or 0 in shape:
            raise ArgumentError(f"mx_blocks: layout 'hw' needs shape (P, F) with P a multiple of 8 and F a multiple "
                             f"of 4, got {shape}")
        n_blocks, size = (shape[0] // 8) * (shape[1] // 4), 32
    elif layout == "ocp":
        ax = axis % len(shape)
        if shape[ax] % block_size or shape[ax] == 0:
            raise ArgumentError(f"mx_blocks: shape[{axis}] = {shape[ax]} is not a positive multiple of block_size "
                             f"{block_size}")
        n_blocks, size = int(np.prod(shape)) // block_size, block_size
    else:
        raise ArgumentError(f"mx_blocks: layout must be 'ocp' or 'hw', got {layout!r}")
    block = st.sampled_from(list(kinds)).flatmap(lambda k: _block_contents(f, k, size))
    blocks = st.lists(block, min_size=n_blocks, max_size=n_blocks).map(np.stack)
    if layout == "hw":
        p, fr = shape
        # block (g, j) holds partitions 8g..8g+7 and free elements 4j..4j+3
        return blocks.map(lambda b: b.reshape(p // 8, fr // 4, 8, 4).transpose(0, 2, 1, 3).reshape(p, fr))
    moved = list(shape)
    moved.append(moved.pop(ax))
    return blocks.map(lambda b: np.moveaxis(b.reshape(moved), -1, ax))


#: The M:N patterns the NeuronCore-v3/v4 PE array supports (at most M non-zeros in every N).
HW_SPARSITY_PATTERNS = ((4, 16), (4, 12), (4, 8), (2, 8), (2, 4), (1, 4), (1, 2))


def m_n_sparse(m: int, n: int, shape, *, axis: int = 0, fmt="float32", exact_m: bool = False,
               elements=None, hardware_only: bool = False):
    """float32 arrays with at most ``m`` non-zeros in every group of ``n`` consecutive elements along ``axis``.

    Kept elements are finite non-zero values exactly representable in ``fmt`` (edge-biased); ``exact_m=True``
    keeps exactly ``m`` per group. ``hardware_only=True`` rejects patterns outside :data:`HW_SPARSITY_PATTERNS`.

    >>> from hypothesis import given
    >>> @given(m_n_sparse(2, 4, (8, 3)))
    ... def test_pattern(x): assert ((x.reshape(2, 4, 3) != 0).sum(axis=1) <= 2).all()
    """
    if not (isinstance(m, int) and isinstance(n, int) and 0 < m <= n):
        raise ArgumentError(f"m_n_sparse: need integers 0 < m <= n, got m={m!r}, n={n!r}")
    if hardware_only and (m, n) not in HW_SPARSITY_PATTERNS:
        raise ArgumentError(f"m_n_sparse: {m}:{n} is not a hardware pattern; those are "
                         + ", ".join(f"{a}:{b}" for a, b in HW_SPARSITY_PATTERNS))
    shape = tuple(int(s) for s in shape)
    ax = axis % len(shape)
    if shape[ax] % n:
        raise ArgumentError(f"m_n_sparse: shape[{axis}] = {shape[ax]} is not a multiple of n = {n}")
    f = _formats.get(fmt)
    if elements is None:
        elements = _code_elements(f, allow_nan=False, allow_infinity=False).map(
            lambda c: float(decode_exact(np.array([c], np.uint64), f)[0])).filter(lambda v: v != 0)
    moved = list(shape)
    moved.append(moved.pop(ax))
    groups = int(np.prod(shape)) // n
    counts = st.just(m) if exact_m else st.integers(0, m)
    group = counts.flatmap(lambda c: st.tuples(st.permutations(range(n)).map(lambda p: p[:c]),
                                               st.lists(elements, min_size=c, max_size=c)))

    def build(gs):
        out = np.zeros((groups, n), np.float32)
        for row, (pos, vals) in enumerate(gs):
            out[row, list(pos)] = vals
        return np.moveaxis(out.reshape(moved), -1, ax)

    return st.lists(group, min_size=groups, max_size=groups).map(build)


class MatmulShape(NamedTuple):
    """``stationary [k, m]`` x ``moving [k, n]``; for nc_matmul_mx ``k`` is partitions (x4 words: logical K 4k)."""

    k: int
    m: int
    n: int


def matmul_shapes(kind: str = "nc_matmul", *, psum_dtype: str = "float32", max_k: int | None = None,
                  max_m: int | None = None, max_n: int | None = None):
    """``MatmulShape(k, m, n)`` inside the Tensor Engine limits, with the limits themselves drawn often.

    ``kind``: ``"nc_matmul"`` (K, M <= 128; N <= 512 per moving tile by default, up to 4096 for fp32 PSUM or 8192
    for bf16 PSUM via ``max_n``), ``"nc_matmul_mx"`` (Kp a multiple of 32 <= 128, M even <= 128, N as above, in x4
    words) or ``"matmul"`` (the tiled ``emu.matmul``: any positive shape; defaults 300 x 300 x 600).

    >>> from hypothesis import given
    >>> @given(matmul_shapes("nc_matmul_mx"))
    ... def test_shape(s): assert s.k % 32 == 0 and s.m % 2 == 0
    """
    n_limit = {"float32": 4096, "bfloat16": 8192}.get(_formats.get(psum_dtype).name)
    if n_limit is None:
        raise ArgumentError(f"matmul_shapes: psum_dtype must be float32 or bfloat16, got {psum_dtype!r}")
    if kind == "matmul":
        limits = (max_k or 300, max_m or 300, max_n or 600)
    elif kind in ("nc_matmul", "nc_matmul_mx"):
        limits = (max_k or 128, max_m or 128, max_n or 512)
        for name, value, hard in zip(("max_k", "max_m", "max_n"), limits, (128, 128, n_limit)):
            if not 0 < value <= hard:
                raise ArgumentError(f"matmul_shapes: {name} = {value} is outside the {kind} limit 1..{hard}"
                                 + (f" ({psum_dtype} PSUM)" if name == "max_n" else ""))
    else:
        raise ArgumentError(f"matmul_shapes: kind must be 'nc_matmul', 'nc_matmul_mx' or 'matmul', got {kind!r}")

    def dim(limit: int, step: int = 1):
        if limit < step:
            raise ArgumentError(f"matmul_shapes: limit {limit} is below the step {step} for {kind}")
        edges = sorted({step, limit // step * step} | {v for v in (32, 64, 127, 128, 129, 511, 512, 513)
                                                       if v <= limit and v % step == 0})
        return st.one_of(st.sampled_from(edges), st.integers(1, limit // step).map(lambda i: i * step))

    if kind == "nc_matmul_mx":
        return st.builds(MatmulShape, dim(limits[0], 32), dim(limits[1], 2), dim(limits[2]))
    return st.builds(MatmulShape, dim(limits[0]), dim(limits[1]), dim(limits[2]))


_SPECIAL_FIELDS = {
    "accumulation": st.sampled_from(["sequential", "exact", "pairwise", "blocked:4", "blocked:32"]),
    "sr_scope": st.sets(st.sampled_from(_config.SR_PATHS)).map(
        lambda s: ",".join(sorted(s))),
    "seed": st.integers(0, 2**32 - 1),
    "sr_bits": st.sampled_from([0, 1, 4, 8, 12, 16]),
}


def settings_profiles(*, fields=None, exclude=("collective_timeout", "target"), areas=None, overrides=None):
    """Dicts of valid setting overrides for ``emu.settings(**profile)``, drawn from the declared fields.

    Fields with declared choices draw from them, booleans from both values, and a few free-form fields (seed,
    sr_bits, accumulation, sr_scope) from known-valid values; other fields keep their default unless
    ``overrides={name: strategy}`` supplies one. ``fields``/``areas`` restrict what is drawn; every drawn profile is
    validated by ``Settings.replace``.

    >>> from hypothesis import given
    >>> import emulator as emu
    >>> @given(settings_profiles(areas=("casts",)))
    ... def test_any_cast_settings(profile):
    ...     with emu.settings(**profile): ...
    """
    overrides = dict(overrides or {})
    rows = _config.describe(_config.Settings())
    known = {r["name"] for r in rows}
    unknown = [n for n in list(fields or []) + list(overrides) if n not in known]
    if unknown:
        raise ArgumentError(f"settings_profiles: unknown setting(s) {unknown}; the settings are {sorted(known)}")
    drawn: dict[str, st.SearchStrategy] = {}
    for row in rows:
        name = row["name"]
        if (fields is not None and name not in fields) or (areas is not None and row["area"] not in areas):
            continue
        if name in exclude and name not in overrides:
            continue
        if name in overrides:
            drawn[name] = overrides[name]
        elif row["choices"]:
            drawn[name] = st.sampled_from(list(row["choices"]))
        elif isinstance(row["default"], bool):
            drawn[name] = st.booleans()
        elif name in _SPECIAL_FIELDS:
            drawn[name] = _SPECIAL_FIELDS[name]
    if not drawn:
        return st.just({})
    profile = st.fixed_dictionaries({}, optional=drawn)

    def valid(p: dict) -> bool:
        try:
            _config.Settings().replace(**dict(p))
        except _config.SettingsError:
            return False
        return True

    return profile.filter(valid)
