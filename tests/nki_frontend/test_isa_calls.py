"""Each nki.isa / nki.language call against the array-level engine instruction (emu.isa, same bits) and against an
independent reference (float64 NumPy rounded once with ml_dtypes, whose RNE matches the default settings)."""

import ml_dtypes
import numpy as np
import pytest

import emulator as emu
from emulator.nki import isa as nisa, language as nl

BF16 = ml_dtypes.bfloat16
RNG = np.random.default_rng(11)


def tile(values, dtype=nl.float32, buffer=nl.sbuf):
    t = nl.ndarray(values.shape, dtype, buffer=buffer)
    t.write(values)
    return t


def rounded(x64, dtype):
    """float64 -> fp32 (exact for these inputs) -> dtype, one RNE rounding."""
    return np.asarray(x64, np.float64).astype(np.float32).astype(dtype)


X = RNG.standard_normal((8, 16)).astype(np.float32)
Y = RNG.standard_normal((8, 16)).astype(np.float32)
COL = RNG.standard_normal((8, 1)).astype(np.float32)

# name -> (nisa call on tiles, emu.isa call on arrays, independent reference or None)
CASES = {
    "tensor_tensor_add_bf16": (
        lambda d: nisa.tensor_tensor(dst=d, data1=tile(X), data2=tile(Y), op=nl.add),
        lambda d: emu.isa.tensor_tensor(d, X, Y, "add"),
        rounded(X.astype(np.float64) + Y, BF16)),
    "tensor_tensor_max_bf16": (
        lambda d: nisa.tensor_tensor(dst=d, data1=tile(X), data2=tile(Y), op=nl.maximum),
        lambda d: emu.isa.tensor_tensor(d, X, Y, np.maximum),
        rounded(np.maximum(X, Y), BF16)),
    "tensor_scalar_mul_add_column": (
        lambda d: nisa.tensor_scalar(dst=d, data=tile(X), op0=nl.multiply, operand0=tile(COL), op1=nl.add,
                                     operand1=0.5),
        lambda d: emu.isa.tensor_scalar(d, X, "multiply", COL, op1="add", operand1=0.5),
        None),
    "tensor_scalar_reverse_subtract": (
        lambda d: nisa.tensor_scalar(dst=d, data=tile(X), op0=nl.subtract, operand0=2.0, reverse0=True),
        lambda d: emu.isa.tensor_scalar(d, X, "subtract", 2.0, reverse0=True),
        rounded(2.0 - X.astype(np.float64), BF16)),
    "activation_relu_scale_bias": (
        lambda d: nisa.activation(dst=d, op=nl.relu, data=tile(X), bias=tile(COL), scale=2.0),
        lambda d: emu.isa.activation(d, "relu", X, bias=COL, scale=2.0),
        rounded(np.maximum(X.astype(np.float32) * np.float32(2) + COL, 0), BF16)),
    "tensor_copy_to_bf16": (
        lambda d: nisa.tensor_copy(dst=d, src=tile(X)),
        lambda d: emu.isa.tensor_copy(d, X),
        X.astype(BF16)),
    "reciprocal": (
        lambda d: nisa.reciprocal(dst=d, data=tile(X)),
        lambda d: emu.isa.reciprocal(d, X),
        rounded(np.float32(1) / X, BF16)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_isa_call_matches_engine_and_reference(name):
    front, engine, reference = CASES[name]
    dst = nl.ndarray((8, 16), nl.bfloat16)
    front(dst)
    got = np.asarray(dst)
    want = engine(np.empty((8, 16), BF16))
    assert got.tobytes() == want.tobytes()
    if reference is not None:
        assert got.tobytes() == np.asarray(reference, BF16).tobytes()


def test_tensor_reduce_sums_in_order_along_the_free_axis():
    dst = nl.ndarray((8, 1), nl.float32)
    nisa.tensor_reduce(dst=dst, op=nl.add, data=tile(X), axis=1, keepdims=True)
    want = np.empty((8, 1), np.float32)
    for p in range(8):  # sequential fp32 adds, as the Vector Engine accumulates
        acc = np.float32(0)
        for v in X[p]:
            acc = np.float32(acc + v)
        want[p, 0] = acc
    assert np.asarray(dst).tobytes() == want.tobytes()


def test_nc_matmul_and_transpose():
    st = RNG.integers(-4, 4, (32, 16)).astype(BF16)
    mv = RNG.integers(-4, 4, (32, 24)).astype(BF16)
    ps = nl.ndarray((16, 24), nl.float32, buffer=nl.psum)
    nisa.nc_matmul(dst=ps, stationary=tile(st, nl.bfloat16), moving=tile(mv, nl.bfloat16))
    assert np.array_equal(np.asarray(ps), st.astype(np.float64).T @ mv.astype(np.float64))
    nisa.nc_matmul(dst=ps, stationary=tile(st, nl.bfloat16), moving=tile(mv, nl.bfloat16))  # accumulate=None: adds
    assert np.array_equal(np.asarray(ps), 2 * (st.astype(np.float64).T @ mv.astype(np.float64)))
    tr = nl.ndarray((16, 32), nl.bfloat16, buffer=nl.psum)
    nisa.nc_transpose(dst=tr, data=tile(st, nl.bfloat16))
    assert np.asarray(tr).tobytes() == np.ascontiguousarray(st.T).tobytes()


def test_dma_copy_casts_once_and_moves_strided_views():
    h = nl.ndarray((4, 8), nl.float32, buffer=nl.hbm)
    vals = RNG.standard_normal((4, 8)).astype(np.float32)
    h.write(vals)
    s = nl.ndarray((4, 4), nl.bfloat16)
    nisa.dma_copy(dst=s, src=h[:, ::2])
    assert np.asarray(s).tobytes() == vals[:, ::2].astype(BF16).tobytes()


def test_memset_iota_and_x4_rules():
    t = nl.ndarray((4, 6), nl.int32)
    nisa.iota(dst=t, pattern=[[1, 6]], offset=3, channel_multiplier=10)
    assert np.asarray(t).tolist() == [[3 + 10 * p + i for i in range(6)] for p in range(4)]
    q = nl.ndarray((4, 2), nl.float8_e4m3fn_x4)
    nisa.memset(dst=q, value=0)
    assert np.asarray(q).tolist() == [[0, 0]] * 4 and q.dtype == nl.float8_e4m3fn_x4
    with pytest.raises(emu.EmulatorError):
        nisa.memset(dst=q, value=1.0)


def test_nl_language_functions_are_the_instructions():
    x, y = tile(X), tile(Y)
    assert np.asarray(nl.multiply(x, y)).tobytes() == (X * Y).tobytes()
    assert np.asarray(nl.exp(x)).tobytes() == emu.isa.activation(np.empty_like(X), "exp", X).tobytes()
    assert np.asarray(nl.maximum(x, tile(COL))).tobytes() == np.maximum(X, COL).tobytes()
    s = nl.sum(x, axis=1)
    assert s.shape == (8, 1)
    m = nl.matmul(tile(X[:, :8].copy()), tile(Y), transpose_x=True)
    assert m.buffer == "psum" and np.allclose(np.asarray(m), X[:, :8].T.astype(np.float64) @ Y, atol=1e-5)


def test_every_nki_instruction_exists_with_nki_parameter_names():
    import inspect

    from emulator.engines.core import INSTRUCTIONS

    for name in nisa.SIGNATURES:
        params = list(inspect.signature(getattr(nisa, name)).parameters)
        if name in INSTRUCTIONS:  # the core takes the same keywords (minus NKI's `name` label)
            core_params = set(INSTRUCTIONS[name].params) | {"name"}
            assert set(params) <= core_params | {"engine"}, (name, set(params) - core_params)
