"""Numba's kernel caches are cleared when any source file of the package changes (Numba itself only checks the file
of each cached function, so a kernel inlining a helper from another module could load stale code)."""

import os

from emulator._jit import clear_stale_kernel_caches


def _cache_files(d):
    d.mkdir(parents=True, exist_ok=True)
    for name in ("_k.kernel-10.py311.nbi", "_k.kernel-10.py311.1.nbc"):
        (d / name).write_bytes(b"machine code")
    return sorted(p.name for p in d.iterdir() if p.suffix in (".nbi", ".nbc"))


def test_caches_cleared_exactly_when_a_source_changes(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "_k.py").write_text("def kernel(): pass\n")
    helper = pkg / "sub" / "_helper.py"
    helper.write_text("X = 1\n")
    mirror = tmp_path / "numba_cache"
    local, sub = pkg / "__pycache__", pkg / "sub" / "__pycache__"
    mirrored = mirror / str(pkg.resolve()).lstrip(os.sep)
    other = tmp_path / "elsewhere" / "__pycache__"  # caches of other packages are never touched
    for d in (local, sub, mirrored, other):
        _cache_files(d)

    assert clear_stale_kernel_caches(pkg, str(mirror))  # no stamp yet: everything of the package goes
    assert not list(local.glob("*.nb?")) and not list(sub.glob("*.nb?")) and not list(mirrored.glob("*.nb?"))
    assert len(list(other.glob("*.nb?"))) == 2

    kept = _cache_files(local)
    assert not clear_stale_kernel_caches(pkg, str(mirror))  # nothing changed: the caches stay
    assert sorted(p.name for p in local.glob("*.nb?")) == kept

    helper.write_text("X = 22\n")  # only the helper module changes (size and mtime)
    assert clear_stale_kernel_caches(pkg, str(mirror))
    assert not list(local.glob("*.nb?"))
    assert len(list(other.glob("*.nb?"))) == 2


def test_read_only_stamp_location_is_not_an_error(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text("")
    (pkg / "__pycache__").write_text("a file where the folder would be")  # the stamp cannot be written
    assert clear_stale_kernel_caches(pkg)
    assert clear_stale_kernel_caches(pkg)  # no stamp kept: it clears (nothing) again, quietly


# Two builds of one kernel body, threaded and serial, as the cast and MX kernels make them; each element records the
# Numba thread that wrote it. Numba's cache index ignores the `parallel` flag, so before `_jit.njit` cached the
# threaded build apart, the build compiled first (in an earlier process) was loaded for both.
_TWINS = """
import sys
import numpy as np
import numba
from emulator._jit import njit, prange

def body(out):
    for i in prange(out.size):
        out[i] = numba.get_thread_id()

threaded, serial = njit(parallel=True)(body), njit(body)
out = np.full(1 << 16, -1, np.int64)
(threaded if sys.argv[1] == "threaded" else serial)(out)
print(sorted(set(out.tolist())))
"""


def _run_twin(tmp_path, which):
    import subprocess
    import sys

    env = dict(os.environ, NUMBA_NUM_THREADS="2", NUMBA_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=os.pathsep.join([str(tmp_path), os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]))
    env.pop("TRN3EMU_DISABLE_NUMBA", None)
    done = subprocess.run([sys.executable, str(tmp_path / "twins.py"), which], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_threaded_and_serial_builds_are_cached_apart(tmp_path):
    (tmp_path / "twins.py").write_text(_TWINS)
    # the serial build compiles and is cached first; a later process's threaded build must still use both threads
    assert _run_twin(tmp_path, "serial") == "[0]"
    assert _run_twin(tmp_path, "threaded") == "[0, 1]"
    # and the other way round: the threaded build cached first, the serial build still runs on one thread
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "twins.py").write_text(_TWINS)
    assert _run_twin(tmp_path / "b", "threaded") == "[0, 1]"
    assert _run_twin(tmp_path / "b", "serial") == "[0]"
    assert len(list((tmp_path / "b" / "cache").rglob("*.nbi"))) == 2
