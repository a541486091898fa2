"""The in-memory fixes of nki-library's known source defects (``trn3emu nkilib --fix-source-defects``), on modules
written here with the same kinds of defect (no AWS text): each fix applies exactly where its defect is, nowhere
else, and a file on disk is never changed."""

import subprocess
import sys
import textwrap

import pytest

from emulator.nki.nkilib import child_env, source_fixes
from emulator.nki.nkilib.source_fixes import drop_repeated_docstring_tail

PASTED_TWICE = textwrap.dedent('''\
    def kernel(x):
        """Scale x.

        Modes:
        - fast
        - exact
        """

            Modes:
            - fast
            - exact
        """

        return 2 * x
    ''')


def test_a_repeated_docstring_tail_is_dropped():
    with pytest.raises(IndentationError):
        compile(PASTED_TWICE, "m.py", "exec")
    fixed = drop_repeated_docstring_tail(PASTED_TWICE)
    namespace = {}
    exec(compile(fixed, "m.py", "exec"), namespace)
    assert namespace["kernel"](3) == 6
    assert namespace["kernel"].__doc__.split() == ["Scale", "x.", "Modes:", "-", "fast", "-", "exact"]


@pytest.mark.parametrize("text", [
    "def f():\n    return 1\n",  # compiles: nothing to fix
    "- slow".join(PASTED_TWICE.rsplit("- exact", 1)),  # the block after the close is not the docstring's tail
    "def f():\n    x = 1\n        y = 2\n",  # an indentation error that is not a repeated docstring
    "def f(:\n    pass\n",  # another syntax error
])
def test_nothing_else_is_touched(text):
    assert drop_repeated_docstring_tail(text) is None


DATACLASS = textwrap.dedent('''\
    from dataclasses import dataclass

    @dataclass
    class Sizes:
        remainderI: int
        remainderIFused: int
        tiles: int

    def build(I):
        tiles, remainderI = divmod(I, 128)
        return Sizes(
            remainderI=remainderI,
            tiles=tiles,
        )
    ''')

IMPORTS_MODULE = textwrap.dedent('''\
    from ..utils import stream_shuffle_broadcast

    def k(t):
        stream_shuffle_broadcast(t, t)
    ''')


def _fix(name):
    return next(f for f in source_fixes.SOURCE_FIXES if f.name == name).fix


def test_the_unread_field_is_passed():
    namespace = {}
    exec(compile(DATACLASS, "c.py", "exec"), namespace)
    with pytest.raises(TypeError, match="remainderIFused"):
        namespace["build"](300)
    exec(compile(_fix("remainderIFused")(DATACLASS), "c.py", "exec"), namespace)
    sizes = namespace["build"](300)
    assert (sizes.remainderI, sizes.tiles, sizes.remainderIFused) == (44, 2, None)
    # already passed, or a file without the field: untouched
    assert _fix("remainderIFused")(DATACLASS.replace("tiles=tiles,", "remainderIFused=1, tiles=tiles,")) is None
    assert _fix("remainderIFused")(DATACLASS.replace("    remainderIFused: int\n", "")) is None


def test_the_function_is_imported_instead_of_its_module():
    fixed = _fix("stream-shuffle-import")(IMPORTS_MODULE)
    assert fixed.splitlines()[0] == "from ..utils.stream_shuffle_broadcast import stream_shuffle_broadcast"
    assert fixed.splitlines()[1:] == IMPORTS_MODULE.splitlines()[1:]
    # a file that uses the module as a module is right as it is
    as_module = IMPORTS_MODULE.replace("    stream_shuffle_broadcast(t, t)",
                                       "    stream_shuffle_broadcast.stream_shuffle_broadcast(t, t)")
    assert _fix("stream-shuffle-import")(as_module) is None


def _checkout(root):
    mlp = root / "src" / "nkilib_src" / "nkilib" / "core" / "mlp"
    mlp.mkdir(parents=True)
    for d in (root / "src" / "nkilib_src", root / "src" / "nkilib_src" / "nkilib", mlp.parent):
        (d / "__init__.py").write_text("")
    (mlp / "__init__.py").write_text("")
    (mlp / "mlp.py").write_text(PASTED_TWICE)
    # the same defect in a file that is not a known one stays a defect
    (mlp / "other.py").write_text(PASTED_TWICE)
    return mlp


@pytest.mark.parametrize("fix", [True, False])
def test_the_finder_compiles_the_fixed_text_and_leaves_the_file(tmp_path, fix):
    mlp = _checkout(tmp_path)
    code = textwrap.dedent('''\
        import os, sys
        from emulator.nki.nkilib import plugin  # installs the finder when the run asks for the fixes
        from emulator.nki.nkilib import source_fixes
        from nkilib_src.nkilib.core.mlp.mlp import kernel
        print(kernel(4), sorted(source_fixes.applied()))
        try:
            import nkilib_src.nkilib.core.mlp.other
        except IndentationError:
            print("other: IndentationError")
        ''')
    env = child_env(str(tmp_path), fix_source_defects=fix)
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    if fix:
        assert out.stdout.split("\n")[:2] == ["8 ['mlp-docstring']", "other: IndentationError"], out.stderr
    else:
        assert out.returncode != 0 and "IndentationError" in out.stderr
    assert (mlp / "mlp.py").read_text() == PASTED_TWICE
