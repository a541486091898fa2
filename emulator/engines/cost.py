"""A cost model built on the documented NeuronCore-v4 engine rates (reference sections 1, 3, 7 and 10.17).

Only peak rates and v2-era rules of thumb are published, so this is an estimate, not a timing simulator:

* Tensor Engine at 2.4 GHz; a pipelined matmul takes ``max(N, 64)`` cycles (the moving free size streams one column
  per cycle; 64 is the minimum initiation interval). fp32 operands take 4x; MX (x4) and fp8 double_row do 4x / 2x
  the K in the same cycles. LoadStationary is hidden behind the previous matmul.
* DMA: 16 engines x 33 B/ns = 528 GB/s per NeuronCore, plus about 1.3 us fixed cost per transfer (overlapped with
  compute once the pipeline is full; counted once per tile load here as a queue latency, divided by the 16 queues).
* PSUM -> SBUF evacuation runs on the Vector/Scalar engines at about N cycles per instruction (0.96-1.2 GHz) plus
  ~64 cycles of overhead; counted per output tile.

>>> from emulator.engines import cost
>>> cost.matmul_instruction_cycles(512, "bfloat16")
512
>>> cost.matmul_instruction_cycles(32, "float32")
256
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ArgumentError
from ..numerics import block_formats as _blocks
from ..numerics import formats as _formats

__all__ = ["PE_GHZ", "VECTOR_GHZ", "DMA_BYTES_PER_NS", "DMA_FIXED_NS", "matmul_instruction_cycles", "MatmulPlan",
           "plan_matmul", "element_bytes", "MATMUL_FMTS", "matmul_format", "format_name"]

#: The input formats of ``emu.matmul``: the Tensor Engine's element formats, then the MX block formats.
MATMUL_FMTS = ("float32", "tfloat32", "bfloat16", "float16", "float8_e4m3fn", "float8_e5m2", "float8_e4m3",
               *_blocks.BLOCK_FORMATS)

PE_GHZ = 2.4
VECTOR_GHZ = 1.2
DMA_BYTES_PER_NS = 16 * 33.0  # 528 GB/s per NC
DMA_FIXED_NS = 1300.0
DMA_QUEUES = 16
MM_MIN_II = 64
EVAC_OVERHEAD = 64


def matmul_format(fmt) -> "_formats.Format | _blocks.BlockFormat":
    """The descriptor of a matmul input format (aliases such as ``bf16``, ``e4m3fn``, ``mxfp8`` resolved): a
    :class:`~emulator.numerics.formats.Format` or an MX :class:`~emulator.numerics.block_formats.BlockFormat`.
    Anything else is a ValueError listing the formats.

    >>> matmul_format("mxfp8").element.name, matmul_format("bf16").name
    ('float8_e4m3fn', 'bfloat16')
    """
    try:
        desc = _blocks.lookup(fmt)
    except (ValueError, TypeError):
        desc = None
    if desc is None or desc.name not in MATMUL_FMTS:
        raise ArgumentError(f"matmul: fmt {fmt!r} is not one of {', '.join(MATMUL_FMTS)}")
    return desc


def format_name(fmt) -> str:
    """The canonical name of a matmul format (see :func:`matmul_format`)."""
    return matmul_format(fmt).name


def element_bytes(fmt) -> float:
    """Bytes per element of a matmul input format as it sits in HBM/SBUF (MX: data plus its share of the scale)."""
    desc = matmul_format(fmt)
    if isinstance(desc, _blocks.BlockFormat):
        return desc.bytes_per_element
    return desc.storage_bits / 8


def matmul_instruction_cycles(n: int, fmt: str, transpose: bool = False) -> int:
    """Tensor Engine cycles of one pipelined nc_matmul / nc_matmul_mx with moving free size ``n``."""
    base = max(int(n), MM_MIN_II)
    if fmt in ("float32",):
        return base * (2 if transpose else 4)
    return base


@dataclass
class MatmulPlan:
    """The tile schedule of ``emu.matmul`` and its estimated cost."""

    M: int
    K: int
    N: int
    fmt: str
    m_tile: int
    k_tile: int
    n_tile: int
    instructions: int
    pe_cycles: int
    hbm_read_bytes: int
    hbm_write_bytes: int
    dma_transfers: int
    evacuation_cycles: int

    @property
    def tiles(self) -> tuple[int, int, int]:
        return (-(-self.M // self.m_tile), -(-self.K // self.k_tile), -(-self.N // self.n_tile))

    @property
    def pe_us(self) -> float:
        return self.pe_cycles / PE_GHZ / 1e3

    @property
    def dma_us(self) -> float:
        moved = self.hbm_read_bytes + self.hbm_write_bytes
        return (moved / DMA_BYTES_PER_NS + self.dma_transfers * DMA_FIXED_NS / DMA_QUEUES) / 1e3

    @property
    def evacuation_us(self) -> float:
        return self.evacuation_cycles / VECTOR_GHZ / 1e3

    @property
    def estimated_us(self) -> float:
        """Engines overlap: the slowest stream bounds the kernel."""
        return max(self.pe_us, self.dma_us, self.evacuation_us)

    @property
    def flops(self) -> int:
        return 2 * self.M * self.K * self.N


def plan_matmul(M: int, K: int, N: int, fmt: str = "bfloat16", psum_dtype: str = "float32") -> MatmulPlan:
    """Schedule of ``[M, K] @ [K, N]``: 128-column stationary tiles, 512-column moving tiles, K in 128 partitions
    (512 logical k for MX). Per stationary row-panel the A panel is loaded once and kept in SBUF; B is streamed once
    per row-panel; each output tile is evacuated from PSUM once and written to HBM once."""
    desc = matmul_format(fmt)
    fmt = desc.name
    mx = isinstance(desc, _blocks.BlockFormat)
    m_tile, n_tile, k_tile = 128, 512, 512 if mx else 128  # MX: 4 k per partition in an x4 word
    mt, kt, nt = -(-M // m_tile), -(-K // k_tile), -(-N // n_tile)
    pe = 0
    for j in range(nt):
        n = min(n_tile, N - j * n_tile)
        pe += mt * kt * matmul_instruction_cycles(n, "float32" if fmt == "float32" else fmt)
    eb = element_bytes(fmt)
    read = int(M * K * eb + mt * K * N * eb)
    write = M * N * (2 if psum_dtype == "bfloat16" else 4)
    transfers = mt * kt + mt * kt * nt + mt * nt
    evac = mt * nt * (n_tile + EVAC_OVERHEAD)
    return MatmulPlan(M, K, N, fmt, m_tile, k_tile, n_tile, mt * kt * nt, pe, read, write, transfers, evac)
