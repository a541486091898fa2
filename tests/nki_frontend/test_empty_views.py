"""Empty views (``t[i:i]``, ``t[nl.ds(i, 0)]``): a kernel may make one for a core with no share of the work and
never use it (nki-library's cross_entropy_forward on one position with LNC=2: core 0's shard is ``nl.ds(0, 0)``).
Making the view is allowed, as in NumPy; an instruction given an empty operand is refused with its name; bounds and
backwards slices are still errors."""

import numpy as np
import pytest

import emulator.nki as nki
from emulator.errors import ShapeError

nl, nisa = nki.language, nki.isa


@nki.jit
def sharded_copy(x):
    """Rows split over the programs; the last takes the remainder (cross_entropy_forward's rule)."""
    n, cores, r = x.shape[0], nl.num_programs(0), nl.program_id(0)
    out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    nominal = n // cores
    start = r * nominal
    mine = n - start if r == cores - 1 else nominal
    src, dst = x[nl.ds(start, mine)], out[nl.ds(start, mine)]
    assert src.shape == (mine, x.shape[1]) and dst.shape == src.shape
    if mine > 0:
        t = nl.ndarray((mine, x.shape[1]), x.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=src)
        nisa.dma_copy(dst=dst, src=t)
    return out


@pytest.mark.parametrize("rows", [1, 3])
def test_a_program_with_no_rows_makes_an_empty_view_and_skips(rows):
    x = np.arange(rows * 4, dtype=np.float32).reshape(rows, 4) + 1
    np.testing.assert_array_equal(sharded_copy[2](x), x)


def test_an_instruction_refuses_an_empty_operand():
    @nki.jit
    def kernel(x):
        out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
        t = nl.ndarray(x.shape, x.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t[0:0], src=x[2:2])
        nisa.dma_copy(dst=out, src=t)
        return out

    with pytest.raises(ShapeError, match=r"nisa\.dma_copy: dst .*\[0, 4\] is empty"):
        nki.simulate(kernel)(np.ones((4, 4), np.float32))


@pytest.mark.parametrize("key,message", [(lambda x: x[3:1], r"slice 3:1 is backwards"),
                                         (lambda x: x[2:6], r"slice 2:6 is outside 0:4"),
                                         (lambda x: x[5:5], r"slice 5:5 is outside 0:4")])
def test_backwards_and_out_of_range_slices_are_still_refused(key, message):
    @nki.jit
    def kernel(x):
        key(x)
        return x

    with pytest.raises(ShapeError, match=message):
        nki.simulate(kernel)(np.ones((4, 4), np.float32))
