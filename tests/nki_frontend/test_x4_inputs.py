"""Packed x4 inputs (NKI's float8_e5m2_x4 / float8_e4m3fn_x4 / float4_e2m1fn_x4, structured dtypes over the halves
of the packed word) are bytes, not numbers: a kernel argument must reach HBM word for word. nki-library's
mlp_proj_mxfp4 gate/up tests passed their MXFP8 activations this way; the words were converted as numbers through
float32 (every word at or above 2^24 lost its low bits, creating e5m2 inf codes) and every output was NaN."""

import numpy as np
import pytest

import emulator.nki as nki
from emulator.engines.store import convert
from emulator.nki import _dtypes

nl, nisa = nki.language, nki.isa

X4 = ["float8_e5m2_x4", "float8_e4m3fn_x4", "float4_e2m1fn_x4"]


def _word(dt: np.dtype) -> np.dtype:
    return np.dtype(f"u{dt.itemsize}")


def _words(name: str) -> np.ndarray:
    """Words covering the whole range, most of them above 2^24 (where float32 would round them)."""
    dt = _dtypes.DTYPES[name]
    word = _word(dt)
    rng = np.random.default_rng(11)
    w = rng.integers(0, np.iinfo(word).max, (32, 8), dtype=np.uint64, endpoint=True).astype(word)
    top = np.iinfo(word).max
    w[0, :4] = [top, (1 << (word.itemsize * 8 - 1)) + 1, min((1 << 24) + 1, top - 1), 0x7C7C7C7C & top]
    return w.view(dt)


@pytest.mark.parametrize("name", X4)
def test_store_convert_keeps_x4_words(name):
    x = _words(name)
    word = _word(_dtypes.DTYPES[name])
    assert np.array_equal(convert(x, word, "dma"), x.view(word))


@pytest.mark.parametrize("name", X4)
def test_x4_kernel_argument_round_trips_word_for_word(name):
    dt = _dtypes.DTYPES[name]

    @nki.jit
    def copy(x):
        out = nl.ndarray(x.shape, dt, buffer=nl.shared_hbm)
        t = nl.ndarray(x.shape, dt, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=x)
        nisa.dma_copy(dst=out, src=t)
        return out

    x = _words(name)
    before = x.copy()
    out = nki.simulate(copy)(x)
    word = _word(dt)
    assert np.array_equal(np.asarray(out).view(word), before.view(word))
    assert np.array_equal(x.view(word), before.view(word))  # the caller's array is not rewritten either


@pytest.mark.parametrize("name", X4)
def test_x4_dtypes_refuse_numeric_casts_as_neurons_do(name):
    """nki-library's output validator tries ``astype(np.float32)`` and, on TypeError (Neuron's x4 dtypes), unpacks
    the elements; a dtype NumPy could cast would compare the packed words as numbers instead."""
    dt = _dtypes.DTYPES[name]
    x = _words(name)
    for target in (np.float32, np.float64, np.int64):
        with pytest.raises(TypeError):
            x.astype(target)
    assert name in str(dt) and _dtypes.nki_name(dt) == name and _dtypes.is_x4(dt)
    assert len({_dtypes.DTYPES[n] for n in X4}) == 3  # distinct and hashable
    assert dt.itemsize == (2 if name.startswith("float4") else 4)
