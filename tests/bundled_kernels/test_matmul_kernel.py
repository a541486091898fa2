"""kernels.matmul (tests/bundled_kernels: a tests/kernels folder would shadow the kernels package on sys.path).

The NKI tiled matmul gives emu.matmul's bits; its launch report counts the instructions the tiling implies."""

import math

import numpy as np
import pytest

import emulator as emu
import kernels
from emulator.errors import ShapeError
from emulator.nki import last_report

F32 = np.float32
FMTS = ["float32", "tfloat32", "bfloat16", "float16", "float8_e4m3fn", "float8_e5m2", "float8_e4m3", "mxfp8_e4m3",
        "mxfp8_e5m2", "mxfp4"]


def bits(x):
    return np.asarray(x, F32).view(np.uint32)


def operands(M, K, N, seed=1):
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal((M, K)) * 2.0 ** rng.integers(-8, 8, (M, K))).astype(F32)
    b = rng.standard_normal((K, N)).astype(F32)
    return a, b


@pytest.mark.parametrize("fmt", FMTS)
def test_kernel_equals_emu_matmul_bit_for_bit(fmt):
    """Ragged in every dim (2 row blocks, 2 column blocks, 3 K tiles / 1 MX tile), specials included."""
    a, b = operands(130, 300, 515)
    a[3, 7], a[100, 0], b[5, 600 % 515] = np.inf, -0.0, np.nan
    got = kernels.matmul(a, b, fmt)
    stats = last_report()
    want = emu.matmul(a, b, fmt)
    assert got.shape == (130, 515) and got.dtype == F32
    np.testing.assert_array_equal(bits(got), bits(want))
    # the instruction count follows from the tiling alone
    mx = fmt.startswith("mx")
    k_tiles = math.ceil(300 / (512 if mx else 128))
    blocks = math.ceil(130 / 128) * math.ceil(515 / 512)
    # Tensor Engine transposes of a, 128 columns each, each copied back to SBUF; MX quantises a's transpose on the host
    transposes = 0 if mx else math.ceil(130 / 128) * math.ceil(300 / 128)
    ops = stats.instructions
    if mx:
        assert ops["nc_matmul_mx"] == blocks * k_tiles and "nc_matmul" not in ops
    else:
        assert ops["nc_matmul"] == blocks * k_tiles
    assert ops.get("nc_transpose", 0) == transposes
    assert ops["tensor_copy"] == blocks + transposes  # one PSUM evacuation per output tile (and per transpose)
    # one fp32 bank per output tile; the previous column block's tile is freed when the next one is bound
    assert stats.peak_psum == 2 * 2048 and stats.peak_sbuf > 0


def test_kernel_matches_an_independent_loop():
    """bf16 against a plain np.float32 loop over k (K tiles of 128 summed from +0, then added in order)."""
    a, b = operands(5, 260, 7, seed=3)
    ra, rb = emu.round_to(a, "bfloat16"), emu.round_to(b, "bfloat16")
    want = None
    for k0 in range(0, 260, 128):
        part = np.zeros((5, 7), F32)
        for k in range(k0, min(260, k0 + 128)):
            part = (part + np.outer(ra[:, k], rb[k]).astype(F32)).astype(F32)
        want = part if want is None else (want + part).astype(F32)
    np.testing.assert_array_equal(bits(kernels.matmul(a, b, "bfloat16")), bits(want))


def test_bf16_psum_equals_emu_matmul():
    a, b = operands(40, 400, 60, seed=5)
    got = kernels.matmul(a, b, "bfloat16", psum_dtype="bfloat16")
    np.testing.assert_array_equal(bits(got), bits(emu.matmul(a, b, "bfloat16", psum_dtype="bfloat16")))
    assert not (bits(got) == bits(emu.matmul(a, b, "bfloat16"))).all()  # the bf16 PSUM did round


def test_report_counts_dma_traffic_and_sbuf_footprint():
    """bf16 [64 x 256] @ [256 x 64]: the DMA bytes and the stationary tiles resident in SBUF follow from the tiling."""
    a, b = operands(64, 256, 64)
    kernels.matmul(a, b, "bfloat16")
    rep = last_report()
    # bytes written by DMA: a and b tiles cast to bf16 (2 B), the float32 result (4 B)
    assert sum(rep.dma_bytes.values()) == 64 * 256 * 2 + 256 * 64 * 2 + 64 * 64 * 4
    assert rep.instructions["dma_copy"] == 2 + 2 + 1
    # two resident [128, 128] bf16 stationary tiles (256 B per partition each) at least
    assert rep.peak_sbuf >= 2 * 128 * 2


def test_bad_input_is_named():
    a, b = operands(4, 32, 4)
    with pytest.raises(ShapeError, match="a's columns"):
        kernels.matmul(a, b[:16], "bfloat16")
    with pytest.raises(ValueError, match="psum_dtype"):
        kernels.matmul(a, b, "mxfp8_e4m3", psum_dtype="bfloat16")
    with pytest.raises(ValueError, match="fmt"):
        kernels.matmul(a, b, "int8")
    with pytest.raises(ShapeError, match="positive dims"):  # device tensors are never empty
        kernels.matmul(a[:0], b, "bfloat16")
