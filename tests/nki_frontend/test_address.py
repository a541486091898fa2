"""``nl.ndarray(..., address=(start partition, byte offset))``: NKI's manual placement. nki-library's qkv_cte
(use_auto_allocation=False) allocates one PSUM tile per bank at address (0, bank * 2048) in every loop iteration
while a list still holds the previous iteration's tiles; placed buffers are reused, not piled up."""

import numpy as np
import pytest

import emulator as emu
import emulator.nki as nki
from emulator.errors import CapacityError

nl, nisa = nki.language, nki.isa


def psum_banks_kernel(placed: bool, address_of=lambda bank: (0, bank * 2048), reads=((-1, 7),)):
    @nki.jit
    def kernel(x):
        out = nl.ndarray((128, 512), nl.float32, buffer=nl.shared_hbm)
        src = nl.ndarray((128, 512), nl.float32, buffer=nl.sbuf)
        nisa.dma_copy(dst=src, src=x)
        held = []
        for it in range(3):
            tiles = []
            for bank in range(8):
                kw = {"address": address_of(bank)} if placed else {}
                tiles.append(nl.ndarray((128, 512), nl.float32, buffer=nl.psum, **kw))
            for bank, t in enumerate(tiles):
                nisa.tensor_scalar(dst=t, data=src, op0=nl.multiply, operand0=float(bank + it))
            held.append(tiles)  # the kernel keeps every iteration's list alive
        acc = nl.ndarray((128, 512), nl.float32, buffer=nl.sbuf)
        for it, bank in reads:  # the last copy stays
            nisa.tensor_copy(dst=acc, src=held[it][bank])
        nisa.dma_copy(dst=out, src=acc)
        return out
    return kernel


def test_tiles_placed_at_an_address_are_reused_across_iterations():
    x = np.arange(128 * 512, dtype=np.float32).reshape(128, 512) / 1024
    out = nki.simulate(psum_banks_kernel(True))(x)
    assert np.array_equal(out, x * np.float32(9))  # last iteration (2), bank 7: factor 9, exact
    # unplaced, the tiles of earlier iterations are dead after their last use (the compiler reuses their banks)
    assert np.array_equal(nki.simulate(psum_banks_kernel(False))(x), x * np.float32(9))
    with emu.settings(onchip_lifetime="reference"):  # ... unless space is only freed with the last reference
        with pytest.raises(CapacityError, match="PSUM: no room"):
            nki.simulate(psum_banks_kernel(False))(x)
    # one tile of the first iteration read at the end is live across the later ones: 2 banks at a time, fine
    assert np.array_equal(nki.simulate(psum_banks_kernel(False, reads=((0, 3), (-1, 7))))(x), x * np.float32(9))
    # all eight read at the end: they and the tile being written in iteration 1 are 9 banks at once
    with pytest.raises(CapacityError, match=r"tensor_copy src: PSUM tile .* used again, .* more than the 16384"):
        nki.simulate(psum_banks_kernel(False, reads=[(0, b) for b in range(8)]))(x)


def test_an_address_outside_the_buffer_or_across_a_bank_is_refused():
    x = np.zeros((128, 512), np.float32)
    with pytest.raises(CapacityError, match=r"address \(0, 16384\)"):
        nki.simulate(psum_banks_kernel(True, lambda bank: (0, 16384)))(x)
    with pytest.raises(CapacityError, match="straddles a 2048-byte bank boundary"):
        nki.simulate(psum_banks_kernel(True, lambda bank: (0, 1024)))(x)
    with pytest.raises(CapacityError, match=r"reaches partition 128"):
        nki.simulate(psum_banks_kernel(True, lambda bank: (1, 0)))(x)
