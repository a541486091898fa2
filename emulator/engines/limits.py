"""Every hardware limit of one NeuronCore-v4, in one place (reference sections 1.1, 1.2, 3.1, 4.4).

Every other module reads these names; ``tile_size`` carries NKI's ``nki.language.tile_size`` field names so the NKI
front end re-exports it as is.

>>> from emulator.engines import limits
>>> limits.PMAX, limits.PSUM_BANKS * limits.PSUM_BANK_BYTES, limits.tile_size.gemm_moving_fmax
(128, 16384, 512)
"""

from __future__ import annotations

from types import SimpleNamespace

__all__ = ["PMAX", "QUADRANT", "SBUF_PARTITION_BYTES", "SBUF_PHYSICAL_PARTITION_BYTES", "PSUM_BANKS",
           "PSUM_BANK_BYTES", "PSUM_PARTITION_BYTES", "PSUM_BANK_FMAX", "HBM_BYTES", "GEMM_STATIONARY_FMAX",
           "GEMM_MOVING_FMAX", "GEMM_MOVING_FMAX_V4_FP32", "GEMM_MOVING_FMAX_V4_BF16", "BN_STATS_FMAX",
           "MX_GROUP_PARTITIONS", "MX_GROUP_ELEMENTS", "MX_BLOCK", "VECTOR_TRANSPOSE_MAX", "GPSIMD_CORES",
           "GPSIMD_PARTITIONS_PER_CORE", "PSUM_MIN_ALIGN", "SBUF_MIN_ALIGN", "DMA_QUEUES", "tile_size"]

PMAX = 128                              # partitions of SBUF and PSUM, lanes of every engine, PE array rows
QUADRANT = 32                           # partitions per quadrant (allocator start rule, shuffles, MX scales)
SBUF_PARTITION_BYTES = 245_752          # usable bytes per partition on NC-v4 (KLR total_available_sbuf_size)
SBUF_PHYSICAL_PARTITION_BYTES = 256 * 1024
PSUM_BANKS = 8
PSUM_BANK_BYTES = 2048
PSUM_PARTITION_BYTES = PSUM_BANKS * PSUM_BANK_BYTES
PSUM_BANK_FMAX = PSUM_BANK_BYTES // 4   # fp32 elements in one bank per partition
HBM_BYTES = 144 * 2 ** 30               # per device (4 stacks)
GEMM_STATIONARY_FMAX = 128              # stationary free size (M): PE array columns
GEMM_MOVING_FMAX = 512                  # moving free size (N) in one bank (NKI tile_size)
GEMM_MOVING_FMAX_V4_FP32 = PSUM_BANKS * PSUM_BANK_BYTES // 4   # v4: up to all 8 banks, fp32 dst
GEMM_MOVING_FMAX_V4_BF16 = PSUM_BANKS * PSUM_BANK_BYTES // 2   # v4: bf16 dst
BN_STATS_FMAX = 512
MX_GROUP_PARTITIONS = 8                 # an MX scale covers 8 partitions x 4 elements = 32 values
MX_GROUP_ELEMENTS = 4
MX_BLOCK = MX_GROUP_PARTITIONS * MX_GROUP_ELEMENTS
VECTOR_TRANSPOSE_MAX = 32               # Vector Engine transpose block
GPSIMD_CORES = 8
GPSIMD_PARTITIONS_PER_CORE = PMAX // GPSIMD_CORES
PSUM_MIN_ALIGN = 4
SBUF_MIN_ALIGN = 1
DMA_QUEUES = 16                         # DMA engines per NeuronCore

tile_size = SimpleNamespace(
    pmax=PMAX,
    psum_bank_fmax=PSUM_BANK_FMAX,
    psum_fmax=PSUM_BANK_FMAX,           # deprecated NKI alias of psum_bank_fmax
    psum_bank_fmax_bytes=PSUM_BANK_BYTES,
    psum_num_banks=PSUM_BANKS,
    gemm_stationary_fmax=GEMM_STATIONARY_FMAX,
    gemm_moving_fmax=GEMM_MOVING_FMAX,
    bn_stats_fmax=BN_STATS_FMAX,
    psum_min_align=PSUM_MIN_ALIGN,
    sbuf_min_align=SBUF_MIN_ALIGN,
    total_available_sbuf_size=SBUF_PARTITION_BYTES,
    sbuf_fmax_bytes=SBUF_PARTITION_BYTES,
)
