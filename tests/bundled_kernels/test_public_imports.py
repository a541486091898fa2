"""The kernel files import NKI the public way (``import nki``, ``import nki.isa as nisa`` ...) and fall back to the
emulator's front end only where no ``nki`` package exists. With ``emulator.nki.install()`` in force the public
import itself succeeds; each kernel module, loaded afresh under that alias, must still pass its float64 check."""

import importlib
import sys

import numpy as np
import pytest

from kernels import reference as ref

KERNELS = ["rmsnorm", "layernorm", "softmax", "attention", "mxfp8_matmul", "mxfp4_matmul", "cumsum", "all_reduce"]


def test_every_kernel_module_uses_the_public_imports():
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2] / "kernels"
    for name in KERNELS:
        text = (root / f"{name}.py").read_text()
        assert "    import nki\n" in text and "    import nki.isa as nisa\n" in text, name
        assert "    import nki.language as nl\n" in text, name


@pytest.fixture
def nki_installed():
    from emulator import nki as front

    was = front.installed()
    front.install()
    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if k == "kernels" or k.startswith("kernels.")}
    try:
        yield
    finally:
        for k in [k for k in sys.modules if k == "kernels" or k.startswith("kernels.")]:
            del sys.modules[k]
        sys.modules.update(saved)
        if not was:
            front.uninstall()


def test_softmax_runs_through_import_nki(nki_installed):
    import nki

    softmax_mod = importlib.import_module("kernels.softmax")
    assert softmax_mod.nki is nki  # the `import nki` branch was taken, not the fallback
    x = np.random.default_rng(0).standard_normal((130, 600)).astype(np.float32)
    want, bound = ref.softmax_reference(x)
    assert ref.compare(softmax_mod.softmax(x), want, bound, np.float32).passed
