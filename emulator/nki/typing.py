"""``nki.typing`` / ``neuronxcc.nki.typing``: annotation names kernels import (no behaviour).

>>> from emulator.nki import typing as nt
>>> nt.tensor[128, 512]
<class 'emulator.nki.tensor.NkiTensor'>
"""

from __future__ import annotations

from .tensor import NkiTensor

__all__ = ["tensor", "mutable_tensor", "scalar"]


class _Annotation:
    """``nt.tensor``, ``nt.tensor[shape, dtype]``: the NKI tensor type, subscriptable as annotations are."""

    def __getitem__(self, item):
        return NkiTensor

    def __call__(self, *args, **kwargs):
        return NkiTensor


tensor = mutable_tensor = _Annotation()
scalar = float
