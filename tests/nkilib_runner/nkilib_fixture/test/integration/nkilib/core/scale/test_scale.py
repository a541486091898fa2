"""Golden tests of the mini kernel. Inputs are small integers in bf16, so every exact result is representable."""
import neuron_dtypes as dt
import numpy as np
import pytest
from neuronxcc.starfish.support.dtype import static_cast

from nkilib_src.mini.scale import scale_rows
from test.utils.test_orchestrator import Orchestrator


def _inputs(p, f):
    x = np.random.default_rng(p * 1000 + f).integers(-8, 9, (p, f)).astype(np.float32)
    return dt.static_cast(x, dt.bfloat16), x


def _goldens(x32, factor):
    y = x32.astype(np.float64) * factor
    return {"y": y, "s": y.sum(axis=1, keepdims=True)}


@pytest.mark.parametrize("p,f,factor", [(128, 64, 0.5), (16, 8, -2.0), (1, 4, 3.0)])
def test_scale_rows(p, f, factor):
    x, x32 = _inputs(p, f)
    Orchestrator().execute(scale_rows, {"x": x, "factor": factor}, _goldens(x32, factor))


def test_scale_rows_golden_off_by_one():
    """Fails on purpose: the golden is off by one at [3, 5] (the runner must report a tolerance miss there)."""
    x, x32 = _inputs(8, 8)
    goldens = _goldens(x32, 1.0)
    goldens["y"][3, 5] += 1.0
    Orchestrator().execute(scale_rows, {"x": x, "factor": 1.0}, goldens)


def test_scale_rows_rejects_too_many_partitions():
    x = static_cast(np.ones((256, 4), np.float32), dt.bfloat16)
    with pytest.raises(Exception, match="x has 256 partitions; scale_rows takes at most 128"):
        Orchestrator().execute(scale_rows, {"x": x, "factor": 1.0}, {"y": None, "s": None})


def test_static_quantization_relies_on_saturation():
    """Passes only where the fp32 -> e4m3fn write saturates (the runner's default, as nki-library's hardware runs
    set NEURON_RT_ENABLE_OCP_SATURATION=1): elements up to 4x past the range are written, then clipped."""
    from nkilib_src.mini.quantize_static import FP8_MAX, quantize_static

    x = np.random.default_rng(5).uniform(-4 * FP8_MAX, 4 * FP8_MAX, (32, 16)).astype(np.float32)
    in_scale = 2.0
    golden = dt.static_cast(np.clip(x / in_scale, -FP8_MAX, FP8_MAX), dt.float8_e4m3fn).astype(np.float32)
    Orchestrator().execute(quantize_static, {"x": x, "in_scale": in_scale}, {"out": golden})


def test_quantize_mx_meets_the_harness_golden():
    """The harness's golden uses the older (OCP) MX scale: passes only where the runner asked it and set
    mx_convention accordingly (the emulator's default is the Neuron 2.31 rule, a scale twice as large)."""
    from nkilib_src.mini.quantize_x4 import quantize_x4
    from test.utils.mx_utils import quantize_mx_golden

    rng = np.random.default_rng(6)
    x = rng.choice(np.array([-2, -1.5, -1, 1, 1.5, 2], np.float32), size=(32, 16))
    x[::8, ::4] = 3.0  # each group's largest element: every quotient is then an e4m3fn value under either rule
    golden, _ = quantize_mx_golden(x, dt.float8_e4m3fn_x4)
    Orchestrator().execute(quantize_x4, {"x": dt.static_cast(x, dt.bfloat16)}, {"out": golden})


def test_x4_output_is_unpacked_for_comparison():
    """An x4 golden (static_cast), with +0 codes where the kernel returns -0: equal only as unpacked element values,
    as Neuron's x4 dtypes make the validator compare them."""
    from nkilib_src.mini.copy_x4 import copy_x4
    from test.utils import output_validator

    codes = np.random.default_rng(3).integers(0, 0x7F, (16, 32)).astype(np.uint8)
    codes[0, :4] = 0x80  # -0
    x = dt.static_cast(np.zeros((16, 32), np.float32), dt.float8_e4m3fn_x4)
    x.view(np.uint8)[...] = codes.reshape(x.view(np.uint8).shape)
    golden = x.copy()
    golden.view(np.uint32)[0, 0] = 0  # the four -0 codes as +0: a different word, the same values
    Orchestrator().execute(copy_x4, {"x": x}, {"out": golden})
    assert output_validator.PATHS[-1] == "unpacked"


def test_x4_output_with_a_float32_golden_is_compared_as_its_bits():
    """The golden is the words' float32 view (nki-library's mxfp_load): the output comes back as that view."""
    from nkilib_src.mini.copy_x4 import copy_x4
    from test.utils import output_validator

    codes = np.random.default_rng(4).integers(0, 0x7F, (16, 32)).astype(np.uint8)  # no NaN/inf word
    x = dt.static_cast(np.zeros((16, 32), np.float32), dt.float8_e4m3fn_x4)
    x.view(np.uint8)[...] = codes.reshape(x.view(np.uint8).shape)
    Orchestrator().execute(copy_x4, {"x": x}, {"out": x.view(np.uint32).view(np.float32).copy()})
    assert output_validator.PATHS[-1] == "numbers"
