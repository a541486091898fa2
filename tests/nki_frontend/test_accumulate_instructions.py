"""nisa.tensor_scalar_cumulative and nisa.activate2 in kernels: the SDK's examples (chained calls keep the engine's
accumulators between instructions) against the Python-float references of tests/engines."""

import numpy as np
import pytest

import emulator.nki as nki
from emulator.errors import EmulatorError
from tests.engines.test_scalar import activate2_ref
from tests.engines.test_vector_accumulate import cumulative_ref

nl, nisa = nki.language, nki.isa
RNG = np.random.default_rng(1800)


@nki.jit
def cumulative_chain(src_h, imm0_h, first_cmd, imm1):
    out = nl.ndarray(src_h.shape, dtype=nl.float32, buffer=nl.shared_hbm)
    src = nl.ndarray(src_h.shape, dtype=src_h.dtype, buffer=nl.sbuf)
    imm0 = nl.ndarray(imm0_h.shape, dtype=nl.float32, buffer=nl.sbuf)
    nisa.dma_copy(dst=src, src=src_h)
    nisa.dma_copy(dst=imm0, src=imm0_h)
    dst = nl.ndarray(src_h.shape, dtype=nl.float32, buffer=nl.sbuf)
    nisa.tensor_scalar_cumulative(dst=dst, src=src, op0=nl.multiply, op1=nl.add, imm0=imm0, imm1=imm1,
                                  reduce_cmd=first_cmd)
    nisa.tensor_scalar_cumulative(dst=dst, src=src, op0=nl.multiply, op1=nl.add, imm0=imm0, imm1=imm1,
                                  reduce_cmd=nisa.reduce_cmd.reduce)
    nisa.dma_copy(dst=out, src=dst)
    return out


@pytest.mark.parametrize("first", ["reset_reduce", "load_reduce"])
def test_tensor_scalar_cumulative_chain_kernel(first):
    src = RNG.standard_normal((128, 48)).astype(np.float32)
    imm0 = RNG.standard_normal((128, 1)).astype(np.float32)
    cmd = getattr(nisa.reduce_cmd, first)
    out = nki.simulate(cumulative_chain)(src, imm0, cmd, 2.5)
    start = [0.0 if first == "reset_reduce" else 2.5] * 128
    _, after_first = cumulative_ref(src, "multiply", "add", imm0[:, 0].tolist(), start)
    want, _ = cumulative_ref(src, "multiply", "add", imm0[:, 0].tolist(), after_first.tolist())
    assert out.tobytes() == want.tobytes()


@nki.jit
def activate2_kernel(data_h, alpha):
    rows = data_h.shape[0]
    out = nl.ndarray(data_h.shape, dtype=nl.float32, buffer=nl.shared_hbm)
    res_h = nl.ndarray((rows, 1), dtype=nl.float32, buffer=nl.shared_hbm)
    x = nl.ndarray(data_h.shape, dtype=nl.float32, buffer=nl.sbuf)
    nisa.dma_copy(dst=x, src=data_h)
    y = nl.ndarray(data_h.shape, dtype=nl.float32, buffer=nl.sbuf)
    res = nl.ndarray((rows, 1), dtype=nl.float32, buffer=nl.sbuf)
    nisa.activate2(dst=y, op=nl.prelu, data=x, imm0=2.0, imm1=0.5, op0=nl.multiply, op1=nl.add, relu_param=alpha,
                   reduce_op=nl.maximum, reduce_cmd=nisa.reduce_cmd.reset_reduce)
    nisa.activate2(dst=y, op=nl.prelu, data=x, imm0=2.0, imm1=0.5, op0=nl.multiply, op1=nl.add, relu_param=alpha,
                   reduce_op=nl.maximum, reduce_res=res, reduce_cmd=nisa.reduce_cmd.reduce)
    nisa.dma_copy(dst=out, src=y)
    nisa.dma_copy(dst=res_h, src=res)
    return out, res_h


def test_activate2_prelu_kernel_with_accumulated_max():
    data = RNG.standard_normal((64, 40)).astype(np.float32)
    out, res = nki.simulate(activate2_kernel)(data, 0.125)
    want, acc = activate2_ref(data, "prelu", [2.0] * 64, [0.5] * 64, "multiply", "add", [0.125] * 64, False, False,
                              "maximum", [-np.inf] * 64)
    assert out.tobytes() == want.tobytes()
    assert res[:, 0].tobytes() == acc.tobytes()


@nki.jit
def activate2_psum_reduce_kernel(data_h):
    out = nl.ndarray(data_h.shape, dtype=nl.float32, buffer=nl.shared_hbm)
    x = nl.ndarray(data_h.shape, dtype=nl.int32, buffer=nl.sbuf)
    nisa.dma_copy(dst=x, src=data_h)
    y = nl.ndarray(data_h.shape, dtype=nl.float32, buffer=nl.sbuf)
    nisa.activate2(dst=y, op=nl.relu, data=x, imm0=1.0, imm1=0.0, op0=nl.add, op1=nl.add)
    nisa.dma_copy(dst=out, src=y)
    return out


def test_activate2_kernel_rejects_an_unlisted_pair():
    with pytest.raises(EmulatorError, match="activate2: \\(op0, op1\\) = \\(add, add\\) is not a supported pair"):
        nki.simulate(activate2_psum_reduce_kernel)(np.ones((4, 4), np.int32))
