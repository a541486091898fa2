"""quantize_mx on bfloat16: every finite bf16 pattern as an element of an 8x4 group whose largest magnitude is fixed,
for scales across the exponent range, against a vectorised reference written from the format definitions.

The groups hold every element pattern at or below the maximum, so every row of the kernel's 16-bit path
(emulator/numerics/_mx_bf16.py) mixes quotients that are target normals, target subnormals, zeros and values that
round to zero, in tiles of the kernel's full width and a narrower last tile; the smallest maxima send groups to the
general path instead, which must agree as well. The reference: the element values come from
tests/numerics/test_mx_reference.py's tables (the OCP field definitions, exact), the quotient is exact in float64
(np.ldexp), and rounding picks the nearest table value (ties to the even code; RTZ the one below).
"""

import ml_dtypes
import numpy as np
import pytest

import emulator as emu
from test_mx_reference import ELEMENTS, TABLES

#: largest magnitudes (bf16 patterns): exponent fields 254 (bf16 max), 200, 134 (256), 127 (1.0 and 1.99),
#: 60, 20, 9 and 2 (the last ones put the quotients of small elements below the target's subnormals, or the group
#: below the kernel's short path: then the general path answers, which must agree too)
AMAX = (0x7F7F, 0x6455, 0x4380, 0x3F80, 0x3FFF, 0x1E2B, 0x0A55, 0x0480, 0x0100)
GROUPS_PER_ROW = 130  # 520 columns: a full 512-column tile and a narrower one


def _ref_codes(q: np.ndarray, name: str, rounding: str) -> np.ndarray:
    """Magnitude codes of exact non-negative quotients ``q`` (float64), from the sorted table of finite values."""
    vals_f, codes = TABLES[name]
    vals = np.array([float(v) for v in vals_f])
    codes = np.array(codes)
    i = np.searchsorted(vals, q, side="right") - 1
    if rounding == "rtz":
        return codes[i]
    lo = vals[i]
    top = vals[-1] + (vals[-1] - vals[-2])  # one step past the largest value: where rounding would overflow
    hi = np.where(i + 1 < vals.size, vals[np.minimum(i + 1, vals.size - 1)], top)
    below, above = q - lo, hi - q
    up = (above < below) | ((above == below) & (codes[i] % 2 == 1))
    assert not (up & (i + 1 == vals.size)).any(), "a quotient rounded past the largest value"
    return np.where(up, codes[np.minimum(i + 1, vals.size - 1)], codes[i])


def _groups(amax_bits: int) -> np.ndarray:
    """[G, 8, 4] bf16 groups: the maximum at [0, 0], then every finite bf16 pattern of magnitude at most it (both
    signs), 31 per group (the last group filled up from the start)."""
    pats = np.arange(1 << 16, dtype=np.uint32)
    mag = pats & 0x7FFF
    elems = pats[(mag <= amax_bits) & ((pats & 0x7F80) != 0x7F80)].astype(np.uint16)
    elems = np.random.default_rng(amax_bits).permutation(elems)
    G = -(-elems.size // 31)
    G = -(-G // (4 * GROUPS_PER_ROW)) * 4 * GROUPS_PER_ROW  # quantize_mx takes partitions in multiples of 32
    fill = np.resize(elems, G * 31).reshape(G, 31)
    g = np.concatenate([np.full((G, 1), amax_bits, np.uint16), fill], axis=1)
    return g.view(ml_dtypes.bfloat16).reshape(G, 8, 4)


@pytest.mark.parametrize("name", list(ELEMENTS))
@pytest.mark.parametrize("convention", ["hw", "ocp"])
@pytest.mark.parametrize("rounding", ["rne", "rtz"])
def test_every_bf16_element_under_scales_across_the_range(name, convention, rounding):
    emax = ELEMENTS[name][3]
    sign = 1 << (ELEMENTS[name][0] + ELEMENTS[name][1])
    vals_max = float(TABLES[name][0][-1])
    for amax_bits in AMAX:
        groups = _groups(amax_bits)
        G = groups.shape[0]
        src = groups.reshape(-1, GROUPS_PER_ROW, 8, 4).transpose(0, 2, 1, 3).reshape(-1, GROUPS_PER_ROW * 4)
        with emu.settings(mx_fp4_quantize_mx="allow"):
            x4, scales = emu.mx.quantize_mx(src, name, convention, rounding)
        codes = emu.unpack_x4(x4, name) if name == "float4_e2m1fn" else x4.view(np.uint8)
        got = codes.reshape(-1, 8, GROUPS_PER_ROW, 4).transpose(0, 2, 1, 3).reshape(G, 32)

        amax = float(np.array(amax_bits, np.uint16).view(ml_dtypes.bfloat16))
        _, e = np.frexp(amax)  # floor(log2 amax) = e - 1, exactly
        se = max((e - 1) - (emax - 1 if convention == "hw" else emax), -127)
        assert (scales.reshape(-1) == se + 127).all(), (amax_bits, np.unique(scales))
        x = groups.reshape(G, 32).astype(np.float64)
        q = np.ldexp(np.abs(x), -se)  # exact: bf16 values times a power of two, well inside float64
        if convention == "ocp":
            q = np.minimum(q, vals_max)
        want = _ref_codes(q.reshape(-1), name, rounding).reshape(G, 32) | np.where(np.signbit(x), sign, 0)
        bad = np.argwhere(got != want)
        assert bad.size == 0, (f"amax {amax_bits:#06x}: {bad.shape[0]} codes differ, first element "
                               f"{groups.reshape(G, 32)[tuple(bad[0])]!r} got {got[tuple(bad[0])]:#x} want "
                               f"{want[tuple(bad[0])]:#x}")


@pytest.mark.parametrize("name", list(ELEMENTS))
@pytest.mark.parametrize("convention", ["hw", "ocp"])
@pytest.mark.parametrize("rounding", ["rne", "rtz"])
def test_16_lane_step_with_shift_counts_known_only_at_run_time(name, convention, rounding):
    """The 16-lane encode step (emulator/numerics/_mx_bf16.py) with the format's shift counts read at run time (the
    loop quantize_mx takes for a format it has no constant loop for), on every finite bf16 pattern that can sit in
    a group at each of a dozen scales, against the same reference; 4,100 columns, so the last 4 go one by one."""
    numba = pytest.importorskip("numba")
    from emulator.numerics._cast_kernels import cast_params
    from emulator.numerics._mx_bf16 import _encode_rows_vec
    from emulator.numerics._mx_float import fast_params

    @numba.njit
    def encode_runtime_counts(src, bcol, fk, codes):
        nxt = np.zeros(bcol.size, np.uint16)
        _encode_rows_vec(src, 0, 1, 0, src.shape[1], bcol, fk, codes, 0, 0, nxt, fk.mbits, fk.sgnsh16)

    fmt = emu.formats.get(name)
    p = cast_params(fmt, saturate=convention == "ocp", rtz=rounding == "rtz")
    emax, emin = ELEMENTS[name][3], 1 - ELEMENTS[name][2]
    sign = 1 << (ELEMENTS[name][0] + ELEMENTS[name][1])
    vals_max = float(TABLES[name][0][-1])
    pats = np.arange(1 << 16, dtype=np.uint32)
    for s in range(-119 - emin, 128, 23):  # B = 127 + emin + s >= 8: the 16-bit path's bound
        top = s + (emax - 1 if convention == "hw" else emax)  # floor(log2) of the group's largest element
        mag = pats & 0x7FFF
        elems = pats[(mag >> 7 != 0xFF) & ((mag >> 7) <= top + 127)].astype(np.uint16)
        n = 4100 * -(-elems.size // 4100)
        src = np.resize(elems, n).reshape(-1, 4100)
        codes = np.zeros(src.shape, np.uint8)
        bcol = np.full(4100, 127 + emin + s, np.uint16)
        for r in range(src.shape[0]):
            encode_runtime_counts(src[r:r + 1], bcol, fast_params(p), codes[r:r + 1])
        x = src.view(ml_dtypes.bfloat16).astype(np.float64).reshape(-1)
        q = np.ldexp(np.abs(x), -s)
        if convention == "ocp":
            q = np.minimum(q, vals_max)
        want = _ref_codes(q, name, rounding) | np.where(np.signbit(x), sign, 0)
        bad = np.flatnonzero(codes.reshape(-1) != want)
        assert bad.size == 0, (f"s {s}: {bad.size} codes differ, first element {src.reshape(-1)[bad[0]]:#06x} got "
                               f"{codes.reshape(-1)[bad[0]]:#x} want {want[bad[0]]:#x}")


@pytest.mark.parametrize("name", list(ELEMENTS))
@pytest.mark.parametrize("convention", ["hw", "ocp"])
@pytest.mark.parametrize("rounding", ["rne", "rtz"])
def test_mx_quantize_blocks_of_32_take_bf16_as_its_float32_values(name, convention, rounding):
    """emu.mx.quantize reads bf16 input as 16-bit patterns (blocks of 32 along the last axis: each block's amax and
    codes in one pass); the result must be that of the same values as float32 (whose path the reference tests
    check). Rows of ordinary data, rows holding zeros, bf16 subnormals, tiny and huge blocks, and NaN / inf
    elements (the rows the one-pass loop hands back), in an array large enough for the threaded kernel."""
    rng = np.random.default_rng(5)
    rows, cols = 300, 1024
    x = rng.standard_normal((rows, cols)) * np.exp2(rng.integers(-30, 30, (rows, 1)))
    x[rows // 3] = 0.0
    x[rows // 3 + 1, ::7] = 0.0
    x[rows // 2] *= 2.0 ** -130  # bf16 subnormals and zeros
    x[rows // 2 + 1] *= 2.0 ** 100
    x[-1, 5] = np.nan
    x[-2, 40] = np.inf
    xb = x.astype(ml_dtypes.bfloat16)
    with emu.settings(mx_nonfinite="propagate"):
        got = emu.mx.quantize(xb, name, convention=convention, rounding=rounding)
        want = emu.mx.quantize(xb.astype(np.float32), name, convention=convention, rounding=rounding)
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype
        bad = np.argwhere(g.view(np.uint8) != w.view(np.uint8))
        assert bad.size == 0, f"{bad.shape[0]} bytes differ, first at {bad[0]}"
