"""MX micro-scaling: OCP MX v1.0 blocks and the Trainium3 ``quantize_mx`` layout.

Two ways in:

* **OCP API**: :func:`quantize` / :func:`dequantize` put one E8M0 scale on every block of ``block_size`` (32)
  consecutive elements along any axis of any array; codes stay one per uint8.
* **Trainium layout**: :func:`quantize_mx` / :func:`dequantize_mx` model the v4 Vector Engine instruction: a
  ``[P, F]`` bf16/fp16 tile, groups of 8 partitions x 4 consecutive free elements, x4 words ``[P, F/4]`` (uint32 for
  fp8, uint16 for fp4) and dense scales ``[P/8, F/4]``. :func:`quantize_operand` / :func:`dequantize_operand` build
  a matmul operand ``[K, F]`` in either K order; :mod:`.mx_layout` has the interleave and scale-quadrant helpers.

Scale rule (both exact; floor(log2 amax) is read from the exponent bits, subnormals included):

* ``convention="hw"`` (default for the Trainium path, the ``mx_convention`` setting): X = 2^(floor(log2 amax) -
  (Emax-1)), the quantize_mx ISA text; ``|v|/X < 2^Emax``, so nothing saturates;
* ``convention="ocp"``: X = 2^(floor(log2 amax) - Emax) and the quotient clipped to +-max finite (OCP MX v1.0
  section 6.3; what AWS's CPU goldens compute). Emax is 8 (e4m3fn), 15 (e5m2), 2 (e2m1fn).

Edge behaviour (each a setting, see ``docs/numerics.md``): a zero group gets scale code 0 (2^-127) and zero data
with the signs of its zeros; a group with NaN/inf gets code 0xFF and NaN data (``mx_nonfinite``); a scale below
2^-127 is clamped to code 0 (``mx_scale_underflow``); elements round with ``cast.rounding_for("mx")`` (RNE unless
stochastic rounding is on for the mx path); dequantizing code 0xFF gives NaN (``mx_scale_ff``).
"""

from __future__ import annotations

from .mx_core import CONVENTIONS, ELEMENT_FORMATS, MXExtensionWarning, element_format, scale_values
from .mx_layout import P_OFFSETS, from_hw_scale_layout, from_interleaved, to_hw_scale_layout, to_interleaved
from .mx_ocp import dequantize, quantize
from .mx_trainium import dequantize_mx, dequantize_operand, quantize_mx, quantize_operand

__all__ = [
    "quantize", "dequantize", "quantize_mx", "dequantize_mx", "quantize_operand", "dequantize_operand",
    "to_hw_scale_layout", "from_hw_scale_layout", "to_interleaved", "from_interleaved", "element_format",
    "scale_values", "MXExtensionWarning", "CONVENTIONS", "ELEMENT_FORMATS", "P_OFFSETS",
]
