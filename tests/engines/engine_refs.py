"""Independent references shared by the engine tests."""

from __future__ import annotations

import numpy as np

F32 = np.float32


def seq_loop(st, mv):
    """The 'sequential' model written out: for each output, fp32 products added one by one in k order from +0."""
    st, mv = st.astype(F32), mv.astype(F32)
    out = np.zeros((st.shape[1], mv.shape[1]), F32)
    for m in range(st.shape[1]):
        for n in range(mv.shape[1]):
            acc = F32(0.0)
            for k in range(st.shape[0]):
                acc = F32(acc + F32(st[k, m] * mv[k, n]))
            out[m, n] = acc
    return out
