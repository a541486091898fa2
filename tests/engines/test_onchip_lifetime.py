"""Liveness by last use (setting ``onchip_lifetime``): SBUF/PSUM space is checked against the tiles that are live,
a tile being live from its allocation to its last use, whatever Python still references.

The reference is a brute-force count written here from that definition: replay the sequence of allocations and
uses, give each tile the interval [first used, last used], and see whether more tiles than the memory holds are ever
live at once. Tiles are one PSUM bank each, so the count is the whole capacity rule (no fragmentation)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

import emulator as emu
from emulator.engines.memory import Memory, PSUM_BANK_BYTES
from emulator.errors import CapacityError

BANK_TILE = (128, PSUM_BANK_BYTES // 4)  # fp32: exactly one bank per partition


def _overflows(events, banks: int) -> bool:
    """True if more than ``banks`` tiles are live at some moment (live = from first to last use)."""
    born, last = {}, {}
    for time, (what, i) in enumerate(events):
        if what == "use":
            born.setdefault(i, time)
            last[i] = time
    for time in range(len(events)):
        if sum(born[i] <= time <= last[i] for i in born) > banks:
            return True
    return False


def _replay(events, banks: int, lifetime: str = "last_use") -> None:
    mem = Memory(psum_banks=banks)
    tiles = {}
    with emu.settings(onchip_lifetime=lifetime):
        for what, i in events:
            if what == "alloc":
                tiles[i] = mem.psum(BANK_TILE, name=f"t{i}")  # every tile stays referenced to the end
            else:
                mem.touch(tiles[i], "use")


def _programs(draw_banks=st.integers(1, 4)):
    @st.composite
    def program(draw):
        banks = draw(draw_banks)
        n = draw(st.integers(1, 8))
        events, alive = [], []
        for i in range(n):
            events.append(("alloc", i))
            alive.append(i)
            for _ in range(draw(st.integers(0, 3))):
                events.append(("use", draw(st.sampled_from(alive))))
        for _ in range(draw(st.integers(0, 8))):
            events.append(("use", draw(st.sampled_from(alive))))
        return banks, events
    return program()


@hsettings(max_examples=500, deadline=None)
@given(_programs())
def test_last_use_raises_exactly_when_more_tiles_are_live_than_fit(case):
    banks, events = case
    if _overflows(events, banks):
        with pytest.raises(CapacityError, match="is used again, so it was live since its previous use"):
            _replay(events, banks)
    else:
        _replay(events, banks)


def test_tiles_still_referenced_but_dead_give_their_space_up():
    # nki-library moe_cte's shape: a list of PSUM tiles per loop iteration while the previous list is still named
    mem = Memory(psum_banks=4)
    with emu.settings(onchip_lifetime="last_use"):
        prev = None
        for _ in range(3):
            tiles = [mem.psum(BANK_TILE) for _ in range(4)]
            for t in tiles:
                t.write(np.zeros(BANK_TILE, np.float32))
            prev = tiles  # noqa: F841 (held past its last use, as the kernel does)
    with emu.settings(onchip_lifetime="reference"):
        mem2 = Memory(psum_banks=4)
        held = [mem2.psum(BANK_TILE) for _ in range(4)]
        with pytest.raises(CapacityError, match="PSUM: no room for tensor"):
            mem2.psum(BANK_TILE)
        del held


def test_the_error_names_the_tiles_live_at_the_worst_moment():
    mem = Memory(psum_banks=2)
    with emu.settings(onchip_lifetime="last_use"):
        a, b = mem.psum(BANK_TILE, name="a"), mem.psum(BANK_TILE, name="b")
        mem.touch(a, "w"), mem.touch(b, "w")
        c = mem.psum(BANK_TILE, name="c")
        mem.touch(c, "w")
        mem.touch(b, "w")
        with pytest.raises(CapacityError, match=r"matmul dst: PSUM tile 'a' .* together with 'b' \(2048\), 'c' "
                                                r"\(2048\): 6144 bytes in partition 0, more than the 4096"):
            mem.touch(a, "matmul", "dst")


def test_explicitly_placed_tiles_count_while_they_exist():
    mem = Memory(sbuf_partition_bytes=64)
    with emu.settings(onchip_lifetime="last_use"):
        mem.allocate("sbuf", (128, 8), "float32", name="placed", at=(0, 0))  # 32 bytes, kernel-managed
        old = mem.sbuf((128, 4), "float32", name="old")
        mem.touch(old, "w")
        new = mem.sbuf((128, 4), "float32", name="new")
        mem.touch(new, "w")
        mem.touch(old, "r")  # placed 32 + old 16 + new 16 = 64: fits
        more = mem.sbuf((128, 1), "float32", name="more")
        mem.touch(more, "w")
        mem.touch(old, "r")  # old was live while more was: 32 + 16 + 4 (new is dead so far)
        with pytest.raises(CapacityError, match=r"'placed' \(32\)"):
            mem.touch(new, "r")  # ... but new was live too: 32 + 16 + 16 + 4 = 68


def test_partitions_are_counted_apart():
    mem = Memory(sbuf_partition_bytes=64)
    with emu.settings(onchip_lifetime="last_use"):
        top = mem.sbuf((32, 16), "float32", name="top")  # 64 bytes in 32 partitions
        mem.touch(top, "w")
        low = mem.sbuf((32, 16), "float32", name="low")  # placed where nothing is
        mem.touch(low, "w")
        mem.touch(top, "r")
        assert top.start_partition != low.start_partition


def test_data_survives_in_a_tile_whose_space_was_counted_free():
    mem = Memory(psum_banks=1)
    with emu.settings(onchip_lifetime="last_use"):
        a = mem.psum(BANK_TILE, name="a")
        a.write(np.full(BANK_TILE, 3.0, np.float32))  # a's last use so far
        b = mem.psum(BANK_TILE, name="b")
        b.write(np.ones(BANK_TILE, np.float32))
        assert np.array_equal(b.read("check"), np.ones(BANK_TILE, np.float32))
        with pytest.raises(CapacityError):  # a was not dead after all: both live at b's write
            a.read("check")
        assert np.array_equal(a.data, np.full(BANK_TILE, 3.0, np.float32))


def test_a_tile_goes_with_its_last_reference_without_the_cyclic_collector():
    # an allocation referring to itself would wait for gc's cycle detection, holding its data (nki-library's
    # rmsnorm_quant sweep allocates [128, 14848] tiles per loop iteration and ran out of 24 GiB)
    import gc
    import weakref

    import emulator.nki as nki

    nl, nisa = nki.language, nki.isa
    seen = []

    @nki.jit
    def kernel(x):
        out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
        for i in range(4):
            tile = nl.ndarray(x.shape, x.dtype, buffer=nl.sbuf)
            seen.append(weakref.ref(tile.t.base))
            nisa.dma_copy(dst=tile, src=x)
            nisa.dma_copy(dst=out, src=tile)
            assert sum(r() is not None for r in seen) == 1  # the previous iteration's tile is gone already
        return out

    was = gc.isenabled()
    gc.disable()
    try:
        x = np.arange(8 * 4, dtype=np.float32).reshape(8, 4)
        assert np.array_equal(kernel(x), x)
    finally:
        if was:
            gc.enable()


def test_freed_tiles_leave_only_their_lives_behind():
    # a tile used once and kept referenced blocks forgetting the freed tiles after it (a later use of it must see
    # them); what is remembered of them is their span, not their data
    import weakref

    mem = Memory()
    keep = mem.sbuf((128, 4), "float32", name="keep")
    keep.write(np.zeros((128, 4), np.float32))
    gone = []
    for _ in range(3):
        t = mem.sbuf((128, 1024), "float32")
        t.write(np.ones((128, 1024), np.float32))
        gone.append(weakref.ref(t))
        t.free()
        del t
    assert all(r() is None for r in gone)
    assert len(mem._recent["sbuf"]) == 4  # keep and the three spans
