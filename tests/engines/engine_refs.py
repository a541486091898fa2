"""Independent references shared by the engine tests."""

from __future__ import annotations

from fractions import Fraction

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


def f32_of(x: Fraction) -> float:
    """Nearest-even float32 of an exact rational (subnormals included, overflow to inf), by integer arithmetic."""
    if x == 0:
        return 0.0
    sign = -1.0 if x < 0 else 1.0
    a = abs(x)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    e = max(e, -126)  # below 2^-126 the quantum stays 2^-149
    q = Fraction(2) ** (e - 23)
    r = round(a / q)  # Fraction.__round__ ties to even
    v = r * q
    if v >= Fraction(2) ** 128:
        return sign * float("inf")
    return sign * float(v)
