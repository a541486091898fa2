"""y = x * factor and the row sums of y: two outputs, a kernel_assert on the partition count."""
import nki
import nki.isa as nisa
import nki.language as nl

from .kernel_assert import kernel_assert


@nki.jit
def scale_rows(x, factor: float):
    P, F = x.shape
    kernel_assert(P <= nl.tile_size.pmax, f"x has {P} partitions; scale_rows takes at most {nl.tile_size.pmax}")
    t = nl.ndarray((P, F), dtype=x.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=x)
    y = nl.ndarray((P, F), dtype=nl.float32, buffer=nl.sbuf)
    nisa.tensor_scalar(dst=y, data=t, op0=nl.multiply, operand0=factor)
    s = nl.ndarray((P, 1), dtype=nl.float32, buffer=nl.sbuf)
    nisa.tensor_reduce(dst=s, op=nl.add, data=y, axis=1)
    out_y = nl.ndarray((P, F), dtype=nl.float32, buffer=nl.shared_hbm)
    out_s = nl.ndarray((P, 1), dtype=nl.float32, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=out_y, src=y)
    nisa.dma_copy(dst=out_s, src=s)
    return out_y, out_s
