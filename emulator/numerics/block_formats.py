"""Block-format descriptors: one :class:`BlockFormat` per MX format, beside the element :class:`~.formats.Format`.

An MX (OCP Microscaling v1.0) format is data: an element format, the number of consecutive elements that share one
scale, the scale format (E8M0) and the scale convention. Code asks the descriptor (``bf.element``,
``bf.block_size``, ``bf.bytes_per_element``) and never matches names such as ``"mx..."``; this module holds the one
table of MX names and aliases.

>>> from emulator.numerics import block_formats
>>> bf = block_formats.get("mxfp8")
>>> (bf.name, bf.element.name, bf.block_size, bf.scale.name)
('mxfp8_e4m3', 'float8_e4m3fn', 32, 'float8_e8m0fnu')
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ArgumentError
from . import formats as _formats
from .formats import Format

__all__ = ["BlockFormat", "BLOCK_FORMATS", "get", "lookup", "is_block_name", "CONVENTIONS"]

#: Scale conventions: "hw" (ISA: X = 2^(floor(log2 amax) - (Emax - 1))), "ocp" (X = 2^(floor(log2 amax) - Emax)).
CONVENTIONS = ("hw", "ocp")


@dataclass(frozen=True, eq=False)
class BlockFormat:
    """A block-scaled format: ``block_size`` consecutive ``element`` codes share one ``scale`` code.

    Parameters
    ----------
    name : the canonical name (``mxfp8_e4m3``, ``mxfp8_e5m2``, ``mxfp4``).
    element : the element :class:`~.formats.Format`.
    block_size : elements per scale (32 in MX v1.0).
    scale : the scale :class:`~.formats.Format` (float8_e8m0fnu: a power of two 2^(code - 127)).
    convention : ``"hw"``, ``"ocp"``, or None for the ``mx_convention`` setting (the default).
    """

    name: str
    element: Format
    block_size: int = 32
    scale: Format = _formats.get("float8_e8m0fnu")
    convention: str | None = None

    def __post_init__(self) -> None:
        if self.convention not in (None, *CONVENTIONS):
            raise ArgumentError(f"BlockFormat {self.name}: convention {self.convention!r} is not None or one of "
                             f"{CONVENTIONS}")

    def __repr__(self) -> str:
        return f"BlockFormat({self.name!r})"

    @property
    def bytes_per_element(self) -> float:
        """Storage per element, its share of the block's scale included (MXFP8: 1 + 1/32 bytes)."""
        return (self.element.bits + self.scale.bits / self.block_size) / 8

    def summary(self) -> str:
        """One line: element, block size, scale format and convention."""
        conv = self.convention or "setting mx_convention"
        return (f"{self.name:16s} {self.element.name} elements, one {self.scale.name} scale per {self.block_size}, "
                f"convention {conv}, {self.bytes_per_element:.5g} bytes/element")


BLOCK_FORMATS: dict[str, BlockFormat] = {
    b.name: b
    for b in (
        BlockFormat("mxfp8_e4m3", _formats.get("float8_e4m3fn")),
        BlockFormat("mxfp8_e5m2", _formats.get("float8_e5m2")),
        BlockFormat("mxfp4", _formats.get("float4_e2m1fn")),
    )
}

_ALIASES = {"mxfp8": "mxfp8_e4m3", "mxfp8_e4m3fn": "mxfp8_e4m3", "mxfp4_e2m1": "mxfp4", "mxfp4_e2m1fn": "mxfp4"}


def _key(name: str) -> str:
    key = name.strip().lower()
    return _ALIASES.get(key, key)


def is_block_name(name) -> bool:
    """True for the name or alias of a block format (``"mxfp8"``, ``"mxfp4_e2m1"``...)."""
    return isinstance(name, str) and _key(name) in BLOCK_FORMATS


def get(fmt: "str | BlockFormat") -> BlockFormat:
    """The :class:`BlockFormat` for a name or alias; an unknown name is a ``ValueError`` listing the choices.

    >>> get("mxfp4_e2m1").element.name
    'float4_e2m1fn'
    """
    if isinstance(fmt, BlockFormat):
        return fmt
    if is_block_name(fmt):
        return BLOCK_FORMATS[_key(fmt)]
    raise ArgumentError(f"unknown block format {fmt!r}; valid block formats: {', '.join(BLOCK_FORMATS)}")


def lookup(fmt) -> "Format | BlockFormat":
    """A block format for an MX name, otherwise the element :class:`~.formats.Format` (``formats.get`` rules).

    >>> lookup("mxfp8_e5m2").block_size, lookup("bf16").name
    (32, 'bfloat16')
    """
    if isinstance(fmt, BlockFormat) or is_block_name(fmt):
        return get(fmt)
    return _formats.get(fmt)
