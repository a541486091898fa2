"""NKI-compatible front end: unmodified NKI kernels run on the emulator.

``import emulator.nki as nki`` (or ``emulator.nki.install()`` and then ``import nki``) gives ``nki.jit``,
``nki.simulate``, ``nki.simulate_kernel``, ``nki.language``, ``nki.isa``, ``nki.collectives``. Kernels launch on
emulated NeuronCores (one per program of the launch grid; ``kernel[2]`` is LNC=2), take NumPy / ml_dtypes (or torch)
arrays and return NumPy arrays. :func:`last_report` summarises the latest launch.

>>> import numpy as np
>>> import emulator.nki as nki
>>> from emulator.nki import language as nl, isa as nisa
>>> @nki.jit
... def double(x):
...     t = nl.load(x)
...     out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
...     nl.store(out, nl.add(t, t))
...     return out
>>> double(np.ones((2, 3), np.float32)).tolist()
[[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]
>>> nki.last_report().instructions["dma_copy"]
2
"""

from __future__ import annotations

from . import collectives, constants, isa, language, typing  # noqa: F401
from ._compat import install, installed, uninstall
from ._launch import Kernel, baremetal, benchmark, jit, last_report, simulate, simulate_kernel, trace
from .language import NKIObject
from .tensor import NkiTensor

__all__ = ["install", "uninstall", "installed", "jit", "simulate", "simulate_kernel", "baremetal", "benchmark", "trace",
           "Kernel", "last_report", "language", "isa", "collectives", "constants", "typing", "NkiTensor",
           "NKIObject"]
