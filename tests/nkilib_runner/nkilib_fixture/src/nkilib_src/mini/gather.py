"""Two collective kernels in the shape of nki-library's experimental/collectives: an all-gather of 128-row SBUF tiles
split between the programs of an LNC launch, and an all-reduce through shared HBM that both programs issue."""
import nki
import nki.collectives as ncc
import nki.isa as nisa
import nki.language as nl

from .kernel_assert import kernel_assert


@nki.jit
def gather_columns(inp, replica_group, ranks: int):
    M, K = inp.shape
    kernel_assert(M % 128 == 0, f"M ({M}) must be a multiple of 128")
    programs = nl.num_programs(axes=0) if nl.program_ndim() else 1
    me = nl.program_id(axis=0) if nl.program_ndim() else 0
    per = M // 128 // programs
    out = nl.ndarray((M, K * ranks), dtype=inp.dtype, buffer=nl.shared_hbm)
    for t in nl.affine_range(per):
        m0 = (me * per + t) * 128
        src = nl.ndarray((128, K), dtype=inp.dtype, buffer=nl.sbuf)
        dst = nl.ndarray((128, K * ranks), dtype=inp.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=src, src=inp[m0:m0 + 128, 0:K])
        ncc.all_gather(dsts=[dst], srcs=[src], replica_group=replica_group, collective_dim=1)
        nisa.dma_copy(dst=out[m0:m0 + 128, 0:K * ranks], src=dst)
    return out


@nki.jit
def reduce_hbm(inp, replica_group):
    src = nl.ndarray(inp.shape, dtype=inp.dtype, buffer=nl.shared_hbm, name="src")
    dst = nl.ndarray(inp.shape, dtype=inp.dtype, buffer=nl.shared_hbm, name="dst")
    out = nl.ndarray(inp.shape, dtype=inp.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=src, src=inp)
    ncc.all_reduce(dsts=[dst], srcs=[src], op=nl.add, replica_group=replica_group)
    nisa.dma_copy(dst=out, src=dst)
    return out
