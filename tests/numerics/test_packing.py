"""x4 packing against a reference written with Python integers: every fp4 x4 word (all 2^16), fp8 words, the
layouts callers use (N-D, non-contiguous, one word), and pack/unpack as inverses."""

import numpy as np
import pytest

import emulator as emu
from emulator.errors import ArgumentError, DtypeError, ShapeError


def _ref_pack(codes, bits):
    """Element 4j+q in bits [bits*q, bits*q + bits) of word j (the NKI x4 layout), one Python int at a time."""
    flat = [int(c) for c in np.asarray(codes).reshape(-1)]
    return [sum(flat[4 * j + q] << (bits * q) for q in range(4)) for j in range(len(flat) // 4)]


def test_every_fp4_word_unpacks_and_packs_back():
    words = np.arange(1 << 16, dtype=np.uint16)
    codes = emu.unpack_x4(words, "float4_e2m1fn")
    assert codes.dtype == np.uint8 and codes.shape == (4 << 16,)
    want = [(w >> (4 * q)) & 0xF for w in range(1 << 16) for q in range(4)]
    assert codes.tolist() == want
    packed = emu.pack_x4(codes, "float4_e2m1fn")
    assert packed.dtype == np.uint16 and packed.tolist() == words.tolist()


@pytest.mark.parametrize("name,bits", [("float8_e4m3fn", 8), ("float8_e5m2", 8), ("float4_e2m1fn", 4)])
def test_pack_matches_the_integer_reference_in_every_layout(name, bits):
    rng = np.random.default_rng(bits)
    base = rng.integers(0, 1 << bits, (3, 10, 16), dtype=np.uint8)
    for codes in (base, base[:, ::2], base.transpose(1, 0, 2), base[..., :4][0, 0]):  # N-D, strided, one word
        got = emu.pack_x4(codes, name)
        assert got.shape == codes.shape[:-1] + (codes.shape[-1] // 4,)
        assert got.reshape(-1).tolist() == _ref_pack(codes, bits)
        back = emu.unpack_x4(got, name)
        assert np.array_equal(back, codes)
        back[...] = 0  # the result is the caller's own array
        assert emu.pack_x4(codes, name).reshape(-1).tolist() == _ref_pack(codes, bits)


def test_unpack_returns_a_new_array_for_fp8_words():
    words = np.array([[0x48444038, 0x01020304]], np.uint32)
    codes = emu.unpack_x4(words, "float8_e4m3fn")
    assert codes.tolist() == [[0x38, 0x40, 0x44, 0x48, 0x04, 0x03, 0x02, 0x01]]
    codes[0, 0] = 0
    assert int(words[0, 0]) == 0x48444038


def test_bad_codes_and_shapes_are_named():
    with pytest.raises(ArgumentError, match="4-bit; got code 16"):
        emu.pack_x4(np.array([1, 2, 16, 3], np.uint8), "float4_e2m1fn")
    with pytest.raises(ShapeError, match="multiple of 4"):
        emu.pack_x4(np.zeros(6, np.uint8), "float8_e4m3fn")
    with pytest.raises(DtypeError, match="must be uint16"):
        emu.unpack_x4(np.zeros(2, np.uint32), "float4_e2m1fn")
