"""Hot loop of the NKI random number generators: XORWOW generators filling a tile. Numba kernel + NumPy twin.

State layout: ``state[lane, generator, 6]`` uint32 (GpSimd: 1 generator per lane, Vector: 4), the 6 words in the
order given by ``order`` (positions of x, y, z, w, v, d). One XORWOW step (Marsaglia 2003, as in cuRAND)::

    t = x ^ (x >> 2); x, y, z, w = y, z, w, v; v = (v ^ (v << 4)) ^ (t ^ (t << 1)); d += 362437; out = v + d

Element ``j`` of lane ``p``'s row of ``F`` elements comes from generator ``g`` at its step ``s``:
round-robin ``g = j % G, s = j // G``; blocked ``g = j // B, s = j % B`` with ``B = ceil(F / G)``. A generator
advances once per element it produces, and not otherwise.
"""

from __future__ import annotations

import numpy as np

from .._jit import dispatch, njit, prange

__all__ = ["WEYL_STEP", "xorwow_fill"]

WEYL_STEP = 362437


@njit(parallel=True)
def _fill_nb(state, order, out, blocked):
    """Each generator runs its whole sequence with its six words in registers (one dependency chain per generator,
    lanes in parallel), writing element ``j = s * G + g`` (round-robin) or ``g * B + s`` (blocked) of its lane."""
    lanes, gens, _ = state.shape
    cols = out.shape[1]
    block = (cols + gens - 1) // gens
    ix, iy, iz, iw, iv, idd = order[0], order[1], order[2], order[3], order[4], order[5]
    weyl = np.uint32(WEYL_STEP)
    for p in prange(out.shape[0]):
        for g in range(gens):
            st = state[p, g]
            x, y, z, w, v, d = st[ix], st[iy], st[iz], st[iw], st[iv], st[idd]
            if blocked:
                j, step, stop = g * block, 1, min(cols, (g + 1) * block)
            else:
                j, step, stop = g, gens, cols
            while j < stop:  # Numba widens uint32 arithmetic to 64 bits: every new word is cut back to 32
                t = np.uint32(x ^ (x >> np.uint32(2)))
                x, y, z, w = y, z, w, v
                v = np.uint32((v ^ (v << np.uint32(4))) ^ (t ^ (t << np.uint32(1))))
                d = np.uint32(d + weyl)
                out[p, j] = np.uint32(v + d)
                j += step
            st[ix], st[iy], st[iz], st[iw], st[iv], st[idd] = x, y, z, w, v, d


def _fill_np(state, order, out, blocked):
    rows, cols = out.shape
    gens = state.shape[1]
    block = -(-cols // gens) if cols else 0
    steps = block if blocked else -(-cols // gens)
    ix, iy, iz, iw, iv, idd = (int(i) for i in order)
    st = state[:rows]
    for s in range(steps):
        g = np.arange(gens)
        cols_at = g * block + s if blocked else s * gens + g
        active = g[cols_at < cols]
        if active.size == 0:
            break
        sub = st[:, active, :]  # copy: (rows, active, 6)
        x = sub[..., ix]
        t = x ^ (x >> np.uint32(2))
        v_old = sub[..., iv]
        new = sub.copy()
        new[..., ix] = sub[..., iy]
        new[..., iy] = sub[..., iz]
        new[..., iz] = sub[..., iw]
        new[..., iw] = v_old
        v = (v_old ^ (v_old << np.uint32(4))) ^ (t ^ (t << np.uint32(1)))
        new[..., iv] = v
        d = sub[..., idd] + np.uint32(WEYL_STEP)
        new[..., idd] = d
        st[:, active, :] = new
        out[:, cols_at[active]] = v + d


xorwow_fill = dispatch(_fill_nb, _fill_np)
xorwow_fill.__doc__ = """Advance ``state[:rows]`` (uint32 [lanes, G, 6], in place) to fill ``out`` (uint32 [rows, F]).

``order``: int64 positions of (x, y, z, w, v, d) among the 6 words; ``blocked``: the element -> generator rule."""
