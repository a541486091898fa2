"""Every public function of the flat NumPy API (DESIGN.md) refuses bad arguments with an EmulatorError naming them.

The table below was written from the API's documented signatures and rules, not from the messages: each row is a
call with one bad argument, the argument's name the message must contain, and (where the issue asked for it) the
value or the rule it must state. Nothing in a row depends on what the code happens to print today.
"""

from __future__ import annotations

import re

import ml_dtypes
import numpy as np
import pytest

import emulator as emu
from emulator.numerics import mx, sparsity

X = np.linspace(-3, 3, 16, dtype=np.float32)
A = np.ones((4, 2), np.float32)
E4 = "float8_e4m3fn"
B8 = np.ones((32, 4), ml_dtypes.bfloat16)


def _x4(kp: int, free: int = 2) -> np.ndarray:
    return emu.pack_x4(np.full((kp, 4 * free), 0x38, np.uint8), E4)  # e4m3fn 1.0


def _scale(rows: int, free: int = 2) -> np.ndarray:
    return np.full((rows, free), 127, np.uint8)


def _mx(**kw):
    args = dict(stationary_x4=_x4(32), moving_x4=_x4(32), stationary_scale=_scale(4), moving_scale=_scale(4),
                stationary_fmt=E4, moving_fmt=E4)
    args.update(kw)
    return emu.nc_matmul_mx(**args)


def _sparse(**kw):
    values, tags = sparsity.compress(np.array([[0.0], [2.0], [0.0], [-1.0]], np.float32), 2, 4)
    args = dict(values=values, tags=tags, moving=np.ones((4, 1), np.float32), m=2, n=4)
    args.update(kw)
    return emu.nc_matmul_sparse(**args)


def _hw_scale():
    return mx.to_hw_scale_layout(_scale(4))


# (id, call, argument name the message must contain, extra regex the message must match or None)
CASES = [
    # formats
    ("get-unknown", lambda: emu.formats.get("fp9"), "fmt", "'fp9'"),
    ("get-none", lambda: emu.formats.get(None), "fmt", "None"),
    ("get-number", lambda: emu.formats.get(3.5), "fmt", "3.5"),
    # cast: every setting override is checked whatever the rounding
    ("cast-saturate", lambda: emu.cast(X, "e4m3fn", saturate="banana"), "saturate", "'banana'"),
    ("cast-saturate-2", lambda: emu.cast(X, "e4m3fn", saturate=2), "saturate", "2"),
    ("cast-seed-float", lambda: emu.cast(X, "bf16", rounding="sr", seed=1.5), "seed", "1.5"),
    ("cast-seed-str", lambda: emu.cast(X, "bf16", rounding="sr", seed="7"), "seed", "'7'"),
    ("cast-sr-bits-rne", lambda: emu.cast(X, "bf16", sr_bits=-3), "sr_bits", "-3"),
    ("cast-sr-bits-65", lambda: emu.cast(X, "bf16", rounding="sr", sr_bits=65), "sr_bits", "65"),
    ("cast-rounding", lambda: emu.cast(X, "bf16", rounding="nearest"), "rounding", "'nearest'"),
    ("cast-fmt-none", lambda: emu.cast(X, None), "fmt", "None"),
    ("cast-fmt-unknown", lambda: emu.cast(X, "e4m3fx"), "fmt", "'e4m3fx'"),
    ("cast-site", lambda: emu.cast(X, "bf16", site=1.5), "site", "1.5"),
    ("cast-int64", lambda: emu.cast(np.arange(4), "bf16"), "x", "int64"),
    ("round_to-saturate", lambda: emu.round_to(X, "e4m3fn", saturate="banana"), "saturate", "'banana'"),
    ("round_to-fmt", lambda: emu.round_to(X, "fp9"), "fmt", "'fp9'"),
    # decode / packing
    ("decode-dtype", lambda: emu.decode(X, "bf16"), "codes", "float32"),
    ("decode-fmt", lambda: emu.decode(np.zeros(4, np.uint8), "fp9"), "fmt", "'fp9'"),
    ("pack_x4-shape", lambda: emu.pack_x4(np.zeros(6, np.uint8), E4), "last dimension", r"\(6,\)"),
    ("pack_x4-dtype", lambda: emu.pack_x4(np.zeros(8, np.uint16), E4), "codes", "uint16"),
    ("pack_x4-fmt", lambda: emu.pack_x4(np.zeros(8, np.uint16), "bf16"), "bfloat16", "16-bit"),
    ("unpack_x4-dtype", lambda: emu.unpack_x4(np.zeros(2, np.uint8), E4), "words", "uint8"),
    # MX, Trainium layout
    ("quantize_mx-convention", lambda: mx.quantize_mx(B8, E4, convention="banana"),
     "convention", "'banana'"),
    ("quantize_mx-rounding", lambda: mx.quantize_mx(B8, E4, rounding="up"),
     "rounding", "'up'"),
    ("quantize_mx-fmt", lambda: mx.quantize_mx(B8, "bf16"), "bfloat16", None),
    ("quantize_mx-shape", lambda: mx.quantize_mx(B8[:7], E4), "src", "7 partitions"),
    ("dequantize_mx-scale", lambda: mx.dequantize_mx(_x4(8, 1), np.zeros((2, 1), np.uint8), E4), "scale", None),
    # MX, OCP blocks
    ("quantize-block_size", lambda: mx.quantize(X, E4, block_size=0), "block_size", "0"),
    ("quantize-axis", lambda: mx.quantize(X, E4, block_size=16, axis=3), "axis", "3"),
    ("quantize-convention", lambda: mx.quantize(X, E4, block_size=16, convention="x"), "convention", "'x'"),
    ("dequantize-codes", lambda: mx.dequantize(X, np.zeros(1, np.uint8), E4, block_size=16), "codes",
     "float32"),
    ("to_hw_scale_layout-offset", lambda: mx.to_hw_scale_layout(_scale(4), p_offset=3), "p_offset", "3"),
    ("from_hw_scale_layout-kp", lambda: mx.from_hw_scale_layout(_hw_scale(), kp=30), "kp", "30"),
    # sparsity
    ("prune-pattern", lambda: sparsity.prune(np.ones((10, 2), np.float32), 3, 5), "3:5", None),
    ("prune-m-type", lambda: sparsity.prune(np.ones((8, 2), np.float32), 2.0, 4), "m", "2.0"),
    ("compress-axis", lambda: sparsity.compress(np.ones((8, 2), np.float32), 2, 4, axis="0"), "axis", "'0'"),
    ("decompress-pattern", lambda: sparsity.decompress(np.ones((2, 1), np.float32), np.zeros((2, 1), np.uint16),
                                                       3, 5), "3:5", None),
    # Tensor Engine
    ("nc_matmul-accumulate", lambda: emu.nc_matmul(A, A, np.zeros((2, 2), np.float32), accumulate="banana"),
     "accumulate", "'banana'"),
    ("nc_matmul-is_transpose", lambda: emu.nc_matmul(A, A, is_transpose="no"), "is_transpose", "'no'"),
    ("nc_matmul-psum_dtype", lambda: emu.nc_matmul(A, A, psum_dtype="float16"), "psum_dtype", "float16"),
    ("nc_matmul-perf_mode", lambda: emu.nc_matmul(A, A, perf_mode="fast"), "perf_mode", "'fast'"),
    ("nc_matmul-partitions", lambda: emu.nc_matmul(np.ones((129, 2), np.float32), np.ones((129, 2), np.float32)),
     "stationary", "129"),
    ("nc_matmul-int64", lambda: emu.nc_matmul(np.ones((4, 2), np.int64), A), "stationary", "int64"),
    ("nc_matmul_mx-kp", lambda: _mx(stationary_x4=_x4(30), moving_x4=_x4(30)), "Kp", "multiple of 32"),
    ("nc_matmul_mx-scale-shape", lambda: _mx(stationary_scale=_scale(3)), "stationary_scale", r"3 rows"),
    ("nc_matmul_mx-fmt", lambda: _mx(stationary_fmt="bfloat16"), "stationary_fmt", "bfloat16"),
    ("nc_matmul_mx-p_offset", lambda: _mx(stationary_p_offset=3), "stationary_p_offset", "3"),
    ("nc_matmul_mx-accumulate", lambda: _mx(psum=np.zeros((8, 8), np.float32), accumulate="banana"),
     "accumulate", "'banana'"),
    ("nc_matmul_sparse-pattern", lambda: _sparse(m=3, n=5), "3:5", None),
    ("nc_matmul_sparse-accumulate", lambda: _sparse(psum=np.zeros((1, 1), np.float32), accumulate="yes"),
     "accumulate", "'yes'"),
    # the tiled matmul
    ("matmul-fmt", lambda: emu.matmul(A.T, A, fmt="fp9"), "fmt", "'fp9'"),
    ("matmul-accumulation", lambda: emu.matmul(A.T, A, accumulation="fast"), "accumulation", "'fast'"),
    ("matmul-shape", lambda: emu.matmul(A, A), "K", None),
    # collectives
    ("all_reduce-op", lambda: emu.collectives.all_reduce([X, X], op="xor"), "op", "'xor'"),
    ("all_reduce-saturate", lambda: emu.collectives.all_reduce([X, X], saturate="banana"), "saturate", "'banana'"),
    ("all_reduce-seed", lambda: emu.collectives.all_reduce([X, X], rounding="sr", seed=1.5), "seed", "1.5"),
    ("all_reduce-rounding", lambda: emu.collectives.all_reduce([X, X], rounding="up"), "rounding", "'up'"),
    ("all_reduce-algorithm", lambda: emu.collectives.all_reduce([X, X], algorithm="star"), "algorithm", "'star'"),
    ("all_reduce-per_rank", lambda: emu.collectives.all_reduce(5), "per_rank", None),
    ("all_reduce-int8-overflow", lambda: emu.collectives.all_reduce([np.full(4, 100, np.int8)] * 4), "int8",
     "400"),
    # settings
    ("settings-saturate", lambda: emu.settings(saturate="banana").__enter__(), "saturate", "'banana'"),
    ("configure-seed", lambda: emu.configure(seed=1.5), "seed", "1.5"),
    ("settings-unknown", lambda: emu.settings(roundng="rne").__enter__(), "roundng", None),
]


@pytest.mark.parametrize("call,name,rule", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_argument_is_an_emulator_error_naming_it(call, name, rule):
    before = emu.get_settings()
    with pytest.raises(emu.EmulatorError) as info:
        call()
    msg = str(info.value)
    assert name in msg, msg
    if rule is not None:
        assert re.search(rule, msg), msg
    # a builtin base stays, so `except ValueError/TypeError/OverflowError` callers keep working
    assert isinstance(info.value, (ValueError, TypeError, OverflowError)), type(info.value).__mro__
    assert emu.get_settings() == before


def test_the_table_covers_every_function_of_the_flat_api():
    covered = {c[0].split("-")[0] for c in CASES}
    flat = {"get", "cast", "round_to", "decode", "pack_x4", "unpack_x4", "quantize_mx", "dequantize_mx", "quantize",
            "dequantize", "to_hw_scale_layout", "from_hw_scale_layout", "prune", "compress", "decompress",
            "nc_matmul", "nc_matmul_mx", "nc_matmul_sparse", "matmul", "all_reduce", "settings", "configure"}
    assert flat <= covered, flat - covered


@pytest.mark.parametrize("kw,cls", [
    (dict(saturate="banana"), TypeError), (dict(seed=1.5), TypeError), (dict(rounding="up"), ValueError),
    (dict(sr_bits=-3), ValueError),
])
def test_cast_argument_errors_keep_the_matching_builtin_base(kw, cls):
    with pytest.raises(cls):
        emu.cast(X, "bf16", **kw)


def test_integer_inputs_are_a_dtype_error_in_cast_and_matmul_alike():
    with pytest.raises(emu.DtypeError, match="int64"):
        emu.cast(np.arange(4), "bf16")
    with pytest.raises(emu.DtypeError, match="int64"):
        emu.matmul(np.ones((2, 4), np.int64), np.ones((4, 2), np.float32))


def test_unknown_names_caught_as_emulator_error():
    # the four defects of the issue: format names, rounding, an unsupported pattern, an unknown op
    for call in (lambda: emu.formats.get("fp9"), lambda: emu.cast(X, "bf16", rounding="banana"),
                 lambda: sparsity.prune(np.ones((10, 2), np.float32), 3, 5),
                 lambda: emu.collectives.all_reduce([X, X], op="xor")):
        with pytest.raises(emu.EmulatorError):
            call()


def test_a_refused_call_writes_nothing():
    psum = np.full((2, 2), 7.0, np.float32)
    with pytest.raises(emu.EmulatorError):
        emu.nc_matmul(A, A, psum, accumulate="banana")
    assert (psum == 7.0).all()


@pytest.mark.parametrize("bad", ["1", 1.0, np.float64(2.0), True])
def test_seed_values_that_only_look_like_integers_are_refused(bad):
    # seed=1.5 used to equal seed=1: a truncated seed silently gives another stream
    with pytest.raises(emu.ArgumentTypeError, match="seed"):
        emu.cast(X, "bf16", rounding="sr", seed=bad)


def test_numpy_integers_and_bools_are_accepted_where_python_ones_are():
    a = emu.cast(X, "bf16", rounding="sr", seed=np.int64(3), sr_bits=np.uint8(5), saturate=np.bool_(True))
    b = emu.cast(X, "bf16", rounding="sr", seed=3, sr_bits=5, saturate=True)
    np.testing.assert_array_equal(a, b)


def test_ml_dtypes_scales_still_accepted_by_nc_matmul_mx():
    s = _scale(4).view(ml_dtypes.float8_e8m0fnu)
    out = _mx(stationary_scale=s, moving_scale=s)
    # 32 partitions x 4 sub-elements of 1.0 * 1.0 (scales 2^0): each output is 128
    np.testing.assert_array_equal(out, np.full((2, 2), 128.0, np.float32))
