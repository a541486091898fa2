"""The allocator's first fit (Memory._first_fit) against a brute-force search of every byte offset."""

import random
from types import SimpleNamespace

import pytest

from emulator.engines.limits import PSUM_BANK_BYTES
from emulator.engines.memory import Memory


def _tile(kind, start, nparts, offset, nbytes):
    return SimpleNamespace(kind=kind, start_partition=start, shape=(nparts, 1), offset=offset,
                           bytes_per_partition=nbytes)


def _brute(kind, tiles, start, nparts, size, limit, step):
    """The lowest offset (every byte tried) that is aligned as the allocator requires and overlaps no tile sharing a
    partition with [start, start + nparts): a PSUM tile on a ``step`` boundary, a one-bank one inside one bank."""
    ranges = []
    for t in tiles:
        if t.kind != kind or not (t.start_partition < start + nparts and start < t.start_partition + t.shape[0]):
            continue
        if kind == "sbuf":
            end = t.offset + max(t.bytes_per_partition, 1)
        else:
            n = t.bytes_per_partition
            end = t.offset + (-(-n // PSUM_BANK_BYTES) * PSUM_BANK_BYTES if n > PSUM_BANK_BYTES else n)
        ranges.append((t.offset, end))
    for off in range(0, limit - size + 1):
        if kind == "psum":
            if off % step:
                continue
            if step == 1 and off // PSUM_BANK_BYTES != (off + size - 1) // PSUM_BANK_BYTES:
                continue
        if all(off + size <= b or e <= off for b, e in ranges):
            return off
    return None


@pytest.mark.parametrize("seed", range(40))
def test_sbuf_first_fit_is_the_lowest_free_offset(seed):
    rng = random.Random(seed)
    limit = 512
    mem = Memory(sbuf_partition_bytes=limit)
    mem.tensors = [_tile("sbuf", rng.choice([0, 32, 64, 96]), rng.choice([32, 64, 128]),
                         rng.randrange(0, limit - 8), rng.randrange(0, 64)) for _ in range(rng.randrange(0, 25))]
    for t in mem.tensors:
        t.shape = (min(t.shape[0], 128 - t.start_partition), 1)
    for start, nparts in ((0, 128), (0, 64), (64, 64), (32, 32)):
        for size in (1, 7, 40, 200, limit):
            want = _brute("sbuf", mem.tensors, start, nparts, size, limit, 1)
            assert mem._first_fit("sbuf", start, nparts, size, limit, 1) == want, (start, nparts, size)


@pytest.mark.parametrize("seed", range(25))
def test_psum_first_fit_keeps_bank_rules(seed):
    rng = random.Random(seed)
    mem = Memory(psum_banks=4)
    limit = mem.limits["psum"]
    tiles = []
    for _ in range(rng.randrange(0, 10)):
        n = rng.choice([256, 512, 1000, 2048, 3000])
        off = rng.randrange(0, limit - n) if n <= PSUM_BANK_BYTES else rng.randrange(0, 2) * PSUM_BANK_BYTES
        tiles.append(_tile("psum", 0, 128, off, n))
    mem.tensors = tiles
    for size, step in ((256, 1), (1500, 1), (2048, 1), (4096, PSUM_BANK_BYTES), (2100, PSUM_BANK_BYTES)):
        want = _brute("psum", tiles, 0, 128, size, limit, step)
        assert mem._first_fit("psum", 0, 128, size, limit, step) == want, (size, step)
