"""An independent, per-block scalar reference for MX quantisation, and the exhaustive tests built on it.

The reference shares no code with ``emulator``: the element formats are written out again from the OCP specs,
values are exact ``Fraction``s, floor(log2 amax) is found by comparing against exact powers of two, and rounding
searches the sorted list of every finite element value for the nearest one (ties to the code with an even last
bit). Other MX test modules import ``ref_block`` / ``ref_dequant`` from here.
"""

from __future__ import annotations

import bisect
import math
import struct
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

import emulator as emu

# name -> (exponent bits, mantissa bits, bias, Emax = exponent of the largest power of two, has NaN code)
ELEMENTS = {
    "float8_e4m3fn": (4, 3, 7, 8, True),
    "float8_e5m2": (5, 2, 15, 15, True),
    "float4_e2m1fn": (2, 1, 1, 2, False),
}
NAN_CODE = {"float8_e4m3fn": 0x7F, "float8_e5m2": 0x7E, "float4_e2m1fn": 0}


def _element_table(name: str) -> tuple[list[Fraction], list[int]]:
    """Every finite non-negative value of an element format (sorted) and its code, from the field definitions."""
    e_bits, m_bits, bias, _, _ = ELEMENTS[name]
    vals = []
    for code in range(1 << (e_bits + m_bits)):
        ef, mf = code >> m_bits, code & ((1 << m_bits) - 1)
        if name == "float8_e5m2" and ef == (1 << e_bits) - 1:
            continue  # inf / NaN
        if name == "float8_e4m3fn" and code == 0x7F:
            continue  # the only NaN
        if ef == 0:
            v = Fraction(mf, 1 << m_bits) * Fraction(2) ** (1 - bias)
        else:
            v = (1 + Fraction(mf, 1 << m_bits)) * Fraction(2) ** (ef - bias)
        vals.append((v, code))
    vals.sort()
    return [v for v, _ in vals], [c for _, c in vals]


TABLES = {name: _element_table(name) for name in ELEMENTS}


def _round_magnitude(name: str, v: Fraction, rounding: str) -> int | None:
    """Magnitude code of the non-negative exact value v (None = beyond the largest finite value after rounding)."""
    vals, codes = TABLES[name]
    i = bisect.bisect_right(vals, v) - 1  # vals[i] <= v
    if vals[i] == v or rounding == "rtz":
        return codes[i]
    if i + 1 == len(vals):  # above the max: the next value would be max + one ulp of the top binade
        step = vals[-1] - vals[-2]
        up = vals[-1] + step
        return codes[i] if v - vals[i] < up - v or (v - vals[i] == up - v and codes[i] % 2 == 0) else None
    lo, hi = vals[i], vals[i + 1]
    if v - lo < hi - v:
        return codes[i]
    if v - lo > hi - v:
        return codes[i + 1]
    return codes[i] if codes[i] % 2 == 0 else codes[i + 1]


def _sign_bit(name: str) -> int:
    e_bits, m_bits, *_ = ELEMENTS[name]
    return 1 << (e_bits + m_bits)


def _floor_log2(v: Fraction) -> int:
    e = v.numerator.bit_length() - v.denominator.bit_length()
    while Fraction(2) ** e > v:
        e -= 1
    while Fraction(2) ** (e + 1) <= v:
        e += 1
    return e


def ref_block(values, name: str, convention: str, rounding: str = "rne", underflow: str = "clamp",
              nonfinite: str = "nan") -> tuple[int, list[int]]:
    """(E8M0 scale code, element codes) of one block of Python floats, from the MX definitions.

    hw: X = 2^(floor(log2 amax) - (Emax - 1)); ocp: X = 2^(floor(log2 amax) - Emax) and clip |v/X| to max finite.
    Zero block -> code 0 and signed zeros; NaN/inf in the block -> 0xFF and NaN codes (nonfinite="nan").
    """
    emax = ELEMENTS[name][3]
    sbit = _sign_bit(name)
    special = [not math.isfinite(v) for v in values]
    if any(special) and nonfinite == "nan":
        return 255, [NAN_CODE[name]] * len(values)
    finite = [abs(Fraction(v)) for v, s in zip(values, special) if not s]
    amax = max(finite, default=Fraction(0))
    if amax == 0:
        se, code = -127, 0
    else:
        se = _floor_log2(amax) - (emax - 1 if convention == "hw" else emax)
        code = max(se, -127) + 127
        if underflow == "clamp":
            se = max(se, -127)
    vals, _ = TABLES[name]
    out = []
    for v in values:
        neg = math.copysign(1.0, v) < 0
        if not math.isfinite(v):
            out.append(None)  # cast on its own; checked separately
            continue
        q = abs(Fraction(v)) / Fraction(2) ** se
        if convention == "ocp":
            q = min(q, vals[-1])
        mag = _round_magnitude(name, q, rounding)
        assert mag is not None, "the hw convention never overflows"  # see test_hw_never_saturates
        out.append(mag | (sbit if neg else 0))
    return code, out


def ref_decode(code: int, name: str) -> float:
    vals, codes = TABLES[name]
    sbit = _sign_bit(name)
    if name != "float4_e2m1fn" and (code & (sbit - 1)) not in codes:
        return math.nan
    v = float(vals[codes.index(code & (sbit - 1))])
    return -v if code & sbit else v


def ref_dequant(codes, scale: int, name: str) -> list[float]:
    """Exact values (as Python floats, i.e. float64) of a block; scale 0xFF -> NaN."""
    if scale == 255:
        return [math.nan] * len(codes)
    return [ref_decode(c, name) * 2.0 ** (scale - 127) for c in codes]


def f32(bits: int) -> float:
    return struct.unpack("<f", struct.pack("<I", bits))[0]


# --------------------------------------------------------------------------------------------------------------------
# tests of the reference itself (against ml_dtypes, an independent implementation of the element formats)
# --------------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(ELEMENTS))
def test_reference_tables_match_ml_dtypes(name):
    vals, codes = TABLES[name]
    dt = emu.formats.get(name).ml_dtype
    got = np.array(codes, np.uint8).view(dt).astype(np.float64)
    assert [Fraction(float(g)) for g in got] == vals


@pytest.mark.parametrize("name", list(ELEMENTS))
def test_reference_rounding_matches_ml_dtypes_rne(name):
    """Between and on every pair of neighbours (and past the max with clipping), RNE agrees with ml_dtypes."""
    vals, _ = TABLES[name]
    dt = emu.formats.get(name).ml_dtype
    probes = set(vals)
    for a, b in zip(vals, vals[1:]):
        probes |= {(a + b) / 2, a + (b - a) / 3, b - (b - a) / 3}
    for p in sorted(probes):
        want = int(np.array(float(p), np.float64).astype(dt).view(np.uint8))
        assert _round_magnitude(name, p, "rne") == want, (name, p)


# --------------------------------------------------------------------------------------------------------------------
# the implementation against the reference
# --------------------------------------------------------------------------------------------------------------------

SCALE_SWEEP = [-140, -127, -126, -120, -60, -9, -1, 0, 1, 7, 60, 100, 112, 119]


def _every_element_value(name: str) -> np.ndarray:
    vals, _ = TABLES[name]
    pos = np.array([float(v) for v in vals], np.float64)
    return np.concatenate([pos, -pos])


def _check_blocks(x: np.ndarray, name: str, convention: str, rounding: str, block: int = 32):
    codes, scales = emu.mx.quantize(x, name, block_size=block, convention=convention, rounding=rounding)
    flat, fsc = x.reshape(-1, block), scales.reshape(-1)
    fcodes = codes.reshape(-1, block)
    for i in range(flat.shape[0]):
        want_scale, want_codes = ref_block([float(v) for v in flat[i]], name, convention, rounding)
        assert int(fsc[i]) == want_scale, (name, convention, flat[i])
        assert [int(c) for c in fcodes[i]] == want_codes, (name, convention, rounding, flat[i])


@pytest.mark.parametrize("name", list(ELEMENTS))
@pytest.mark.parametrize("convention", ["hw", "ocp"])
@pytest.mark.parametrize("rounding", ["rne", "rtz"])
def test_every_element_code_times_a_sweep_of_scales(name, convention, rounding):
    """Every finite element value (both signs), scaled by 2^t over a sweep of t, in blocks of 32 -> reference."""
    rng = np.random.default_rng(7)
    base = _every_element_value(name)
    for t in SCALE_SWEEP:
        v = (base * 2.0 ** t)
        with np.errstate(over="ignore"):
            v = v[np.isfinite(v.astype(np.float32)) & (v.astype(np.float32) == v)].astype(np.float32)
        pad = (-v.size) % 32
        sorted_blocks = np.concatenate([v, np.zeros(pad, np.float32)])
        shuffled = rng.permutation(sorted_blocks)
        _check_blocks(np.stack([sorted_blocks, shuffled]), name, convention, rounding)


@pytest.mark.parametrize("name", list(ELEMENTS))
@pytest.mark.parametrize("convention", ["hw", "ocp"])
@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, np.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("rounding", ["rne", "rtz"])
def test_every_16bit_pattern_in_trainium_groups(name, convention, dtype, rounding):
    """All 2^16 bf16 (table path) or fp16 (bit-pattern path) patterns through quantize_mx (8x4 groups) against
    the reference, group by group."""
    pats = np.arange(1 << 16, dtype=np.uint32)
    rng = np.random.default_rng(1)
    pats = pats[rng.permutation(pats.size)]  # mix magnitudes inside groups
    src = pats.astype(np.uint16).view(dtype).reshape(256, 256)
    with emu.settings(mx_fp4_quantize_mx="allow"):
        x4, scales = emu.mx.quantize_mx(src, name, convention, rounding)
    codes = emu.unpack_x4(x4, name) if name == "float4_e2m1fn" else x4.view(np.uint8)
    vals = src.astype(np.float32)
    for g in range(256 // 8):
        for j in range(256 // 4):
            block = vals[8 * g:8 * g + 8, 4 * j:4 * j + 4].reshape(-1)
            want_scale, want_codes = ref_block([float(v) for v in block], name, convention, rounding)
            assert int(scales[g, j]) == want_scale
            assert codes[8 * g:8 * g + 8, 4 * j:4 * j + 4].reshape(-1).tolist() == want_codes


@pytest.mark.parametrize("name", list(ELEMENTS))
def test_fp32_subnormal_and_tiny_blocks(name):
    """amax an fp32 subnormal or far below 2^-127: exact floor(log2), scale clamped to code 0, elements kept."""
    rows = []
    for top in (1, 2, 3, 0x7FFFFF, 0x400000, 0x800000, 0x1000000, 0x3000000):
        others = [top, top >> 1, top >> 3, 1, 0, 0x80000000 | (top >> 2)] + [top >> 4] * 26
        rows.append([f32(b) for b in others])
    x = np.array(rows, np.float32)
    for convention in ("hw", "ocp"):
        for rounding in ("rne", "rtz"):
            _check_blocks(x, name, convention, rounding)


@pytest.mark.parametrize("name", list(ELEMENTS))
def test_underflow_nki_library_mode(name):
    """mx_scale_underflow='nki_library' stores code 0 but divides by the true (smaller) scale."""
    x = np.array([[f32(0x00000400), f32(0x00000100)] + [0.0] * 30], np.float32)  # 2^-139, 2^-141
    with emu.settings(mx_scale_underflow="nki_library"):
        codes, scales = emu.mx.quantize(x, name, convention="hw")
    want_scale, want_codes = ref_block([float(v) for v in x[0]], name, "hw", underflow="nki_library")
    assert int(scales[0, 0]) == want_scale == 0
    assert codes[0].tolist() == want_codes


# --------------------------------------------------------------------------------------------------------------------
# saturation: every possible block maximum, both conventions
# --------------------------------------------------------------------------------------------------------------------

MAX_FINITE = {"float8_e4m3fn": 448.0, "float8_e5m2": 57344.0, "float4_e2m1fn": 6.0}


def _expected_top_codes(amax: np.ndarray, name: str, convention: str) -> tuple[np.ndarray, np.ndarray]:
    """(scale codes, element codes) of blocks whose largest magnitude is ``amax`` (positive float64 values), from
    frexp and an ml_dtypes cast of the exact quotient: hw never needs the clip, ocp clips to max finite."""
    emax = ELEMENTS[name][3]
    _, e = np.frexp(amax)  # amax = m * 2^e with m in [0.5, 1): floor(log2 amax) = e - 1
    se = (e - 1) - (emax - 1 if convention == "hw" else emax)
    se = np.maximum(se, -127)  # mx_scale_underflow="clamp"
    q = np.ldexp(amax, -se)  # exact
    if convention == "hw":
        assert (q < 2.0 ** emax).all()  # the hw rule never saturates: nothing to clip
    q = np.minimum(q, MAX_FINITE[name])
    dt = emu.formats.get(name).ml_dtype
    return (se + 127).astype(np.uint8), q.astype(dt).view(np.uint8)


@pytest.mark.parametrize("name", list(ELEMENTS))
@pytest.mark.parametrize("convention", ["hw", "ocp"])
def test_every_fp32_mantissa_as_the_block_maximum(name, convention):
    """All 2^22 fp32 significands in [1.5, 2) (times 2^5), each the maximum of a block of 2 with its negative half.
    Every block maximum that can saturate is among them (max finite is 1.75 * 2^Emax for fp8, 1.5 * 2^Emax for
    fp4): under ocp the quotient of the maximum lies in [1.5 * 2^Emax, 2^(Emax+1)) and must clip to max finite
    (never NaN or inf); under hw it stays below 2^Emax. The other element checks the shared scale."""
    top = (np.arange(1 << 22, dtype=np.uint32) | np.uint32(0x42400000)).view(np.float32)  # [48, 64)
    x = np.stack([top, -top * np.float32(0.5)], axis=1)
    codes, scales = emu.mx.quantize(x, name, block_size=2, convention=convention)
    want_scale, want_top = _expected_top_codes(top.astype(np.float64), name, convention)
    assert np.array_equal(scales[:, 0], want_scale)
    assert np.array_equal(codes[:, 0], want_top)
    neg_half = np.ldexp(-top.astype(np.float64) * 0.5, -(want_scale.astype(np.int64) - 127))
    dt = emu.formats.get(name).ml_dtype
    assert np.array_equal(codes[:, 1], neg_half.astype(dt).view(np.uint8))
    vals = emu.formats.get(name).value_table[codes]
    assert np.isfinite(vals).all()


@pytest.mark.parametrize("name", list(ELEMENTS))
@pytest.mark.parametrize("convention", ["hw", "ocp"])
@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, np.float16], ids=["bf16", "fp16"])
def test_every_16bit_value_as_the_group_maximum(name, convention, dtype):
    """quantize_mx with every finite non-zero bf16/fp16 magnitude as the largest element of its 8x4 group (the
    other 31 elements hold minus half of it): scale and both element codes against frexp and ml_dtypes."""
    pats = np.arange(1, 0x7C00 if dtype == np.float16 else 0x7F80, dtype=np.uint16)
    top = pats.view(dtype)
    pad = (-top.size) % 4
    top = np.concatenate([top, top[:pad]])  # a multiple of 4 groups per row of 4
    groups = np.empty((top.size, 8, 4), dtype)
    groups[...] = (-top.astype(np.float32) * 0.5).astype(dtype)[:, None, None]  # exact: halving a 16-bit value
    groups[:, 0, 0] = top
    src = groups.reshape(-1, 4, 8, 4).transpose(0, 2, 1, 3).reshape(-1, 16)  # 4 groups side by side per 8 rows
    src = src[: src.shape[0] // 32 * 32]
    with emu.settings(mx_fp4_quantize_mx="allow"):
        x4, scales = emu.mx.quantize_mx(src, name, convention)
    codes = emu.unpack_x4(x4, name) if name == "float4_e2m1fn" else x4.view(np.uint8)
    n = scales.size
    top = top[:n]
    want_scale, want_top = _expected_top_codes(top.astype(np.float64), name, convention)
    assert np.array_equal(scales.reshape(-1), want_scale)
    g = codes.reshape(-1, 8, 4, 4).transpose(0, 2, 1, 3).reshape(-1, 8, 4)  # back to [group, 8, 4]
    assert np.array_equal(g[:, 0, 0], want_top)
    other = groups.reshape(-1, 8, 4)[:n, 7, 3].astype(np.float64)  # the stored -top/2 (rounded for the tiniest)
    half = np.ldexp(other, -(want_scale.astype(np.int64) - 127))
    dt = emu.formats.get(name).ml_dtype
    assert np.array_equal(g[:, 7, 3], half.astype(dt).view(np.uint8))
