"""Module aliases, the pytest fixture and `trn3emu run`: NKI-style imports reach the emulator."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import emulator.nki as front


def test_aliases_resolve_and_uninstall_restores():
    assert "nki" not in sys.modules
    front.install()
    try:
        import nki
        import nki.isa as nisa
        import nki.language as nl
        from nki.isa.constants import dge_mode, matmul_perf_mode, oob_mode  # noqa: F401
        import neuronxcc.nki.language as old_nl
        import neuronxcc.nki.typing as nt  # noqa: F401
        from nki.collectives import ReplicaGroup  # noqa: F401
        from nki.language import NKIObject

        assert nki is front and nl is front.language and nisa is front.isa and old_nl is front.language
        assert oob_mode.skip.value == 1 and issubclass(type("Cfg", (NKIObject,), {}), NKIObject)
    finally:
        front.uninstall()
    assert not any(m == "nki" or m.startswith(("nki.", "neuronxcc")) for m in sys.modules)


def test_fixture_installs_for_one_test(nki_emulator):
    import nki

    assert nki is nki_emulator


def test_trn3emu_run_script(tmp_path):
    script = tmp_path / "k.py"
    script.write_text(textwrap.dedent("""
        import sys
        import numpy as np
        import nki
        import nki.language as nl
        import nki.isa as nisa

        @nki.jit
        def add(a, b):
            out = nl.ndarray(a.shape, dtype=a.dtype, buffer=nl.shared_hbm)
            x = nl.ndarray(a.shape, dtype=a.dtype, buffer=nl.sbuf)
            y = nl.ndarray(a.shape, dtype=a.dtype, buffer=nl.sbuf)
            nisa.dma_copy(dst=x, src=a)
            nisa.dma_copy(dst=y, src=b)
            nisa.tensor_tensor(dst=x, data1=x, data2=y, op=nl.add)
            nisa.dma_copy(dst=out, src=x)
            return out

        a = np.full((4, 8), float(sys.argv[1]), np.float32)
        print("sum", float(nki.simulate(add)(a, a).sum()))
    """))
    out = subprocess.run([sys.executable, "-m", "emulator", "run", str(script), "1.5", "--report"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "sum 96.0" in out.stdout
    assert "dma_copy 3" in out.stdout and "tensor_tensor 1" in out.stdout
    # --report=DIR also writes the launch's page: its instruction table holds the same counts
    page = tmp_path / "page"
    out = subprocess.run([sys.executable, "-m", "emulator", "run", str(script), "1.5", f"--report={page}"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    html = (page / "index.html").read_text()
    assert "tensor_tensor" in html and "dma_copy" in html


def test_trn3emu_run_error_names_kernel_line(tmp_path):
    script = tmp_path / "bad.py"
    script.write_text(textwrap.dedent("""
        import numpy as np
        import nki
        import nki.language as nl
        import nki.isa as nisa

        @nki.jit
        def bad(a):
            t = nl.ndarray((128, 8), dtype=nl.float32, buffer=nl.sbuf)
            o = nl.ndarray((128, 8), dtype=nl.float32, buffer=nl.sbuf)
            nisa.max8(dst=o, src=t)
            return o

        bad(np.zeros((2, 2), np.float32))
    """))
    out = subprocess.run([sys.executable, "-m", "emulator", "run", str(script)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "UninitializedReadError" in out.stderr and "bad.py:11" in out.stderr and "Traceback" not in out.stderr


def test_trn3emu_run_kernel_assert_prints_its_line(tmp_path):
    script = tmp_path / "shape.py"
    script.write_text(textwrap.dedent("""
        import numpy as np
        import nki

        @nki.jit
        def k(a):
            assert a.shape[0] % 128 == 0, f"rows {a.shape[0]} not a multiple of 128"
            return a

        k(np.zeros((100, 4), np.float32))
    """))
    out = subprocess.run([sys.executable, "-m", "emulator", "run", str(script)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "shape.py:7 (in k): rows 100 not a multiple of 128" in out.stderr


def test_nkiobject_dataclass_takes_its_unannotated_class_attributes_as_fields():
    # nki-library attention_cte.py: `@dataclass class SectionParams(nl.NKIObject): section_idx = None ...` is built
    # with keywords; a bare dataclass would generate an __init__ without parameters
    from dataclasses import dataclass, fields

    from emulator.nki.language import NKIObject

    @dataclass
    class Section(NKIObject):
        idx = None
        need: int
        offset: int = 0
        table = []  # a mutable default stays a plain class attribute (dataclass would refuse it as a field)

        def size(self):
            return 1

    s = Section(need=1, idx=3, offset=128)
    assert (s.idx, s.need, s.offset, s.size()) == (3, 1, 128, 1)
    assert [f.name for f in fields(Section)] == ["need", "offset", "idx"]
    assert Section(need=0).idx is None and Section.table == []
