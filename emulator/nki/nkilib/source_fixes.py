"""Known nki-library source defects, fixed in memory at import time when the run asks for it
(``trn3emu nkilib --fix-source-defects``, ``run(..., fix_source_defects=True)``).

By default a kernel module that cannot be imported or built because of a bug in nki-library itself is reported as
``harness/source defect`` (:data:`.summary.KNOWN_SOURCE_DEFECTS`), and its cases do not run. Some of those bugs stop
hundreds of cases whose kernels are otherwise whole (``core/mlp/mlp.py`` does not parse at d2ad3a5, so no mlp,
moe_block or transformer case runs at all). With the option, the plugin puts a finder first on ``sys.meta_path``
that compiles the affected source files with a minimal fix applied to the text read from disk: nothing on disk
changes, and each fix that was applied is named in the run's summary.

Each fix is a rule about the file's structure, written here, not a copy of AWS's text; it applies only where its
defect is found exactly as described (another commit of nki-library, fixed or changed, is compiled as it is):

``mlp-docstring``
    A function's docstring closes, and the next lines repeat the docstring's last lines, indented, up to a second
    closing ``\"\"\"`` (a paste left twice): Python refuses the file (IndentationError). The repeated block is dropped
    when it equals the docstring's own last lines.
``remainderIFused``
    A dataclass declares a field ``remainderIFused`` without a default and the one constructor call of the file does
    not pass it (TypeError at every call). Nothing reads the field; the call passes ``remainderIFused=None``.
``stream-shuffle-import``
    ``from ..utils import stream_shuffle_broadcast`` binds the module of that name (the package ``__init__`` is
    empty) where the file calls the function: the import names the function in that module.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import re
import sys
from dataclasses import dataclass
from typing import Callable

__all__ = ["SOURCE_FIXES", "FIX_ENV", "install", "applied", "drop_repeated_docstring_tail"]

#: the child applies the fixes when this environment variable is 1 (set by ``run(fix_source_defects=True)``)
FIX_ENV = "TRN3EMU_NKILIB_FIX_SOURCE"


def drop_repeated_docstring_tail(text: str) -> str | None:
    """``text`` without a block that repeats a docstring's last lines after its closing quotes (see ``mlp-docstring``);
    None when no such block is found or the text compiles as it is."""
    try:
        compile(text, "<nkilib>", "exec")
        return None
    except IndentationError as exc:
        bad = (exc.lineno or 0) - 1  # 0-based index of the refused line
    except SyntaxError:
        return None
    lines = text.splitlines(keepends=True)
    close = bad - 1
    while close >= 0 and not lines[close].strip():
        close -= 1
    if close < 0 or lines[close].strip() != '"""':
        return None
    end = next((i for i in range(bad, len(lines)) if lines[i].strip() == '"""'), None)
    if end is None:
        return None
    repeated = [ln.strip() for ln in lines[bad:end] if ln.strip()]
    before = [ln.strip() for ln in lines[:close] if ln.strip()]
    if not repeated or before[-len(repeated):] != repeated:
        return None
    fixed = "".join(lines[:close + 1] + lines[end + 1:])
    try:
        compile(fixed, "<nkilib>", "exec")
    except SyntaxError:
        return None
    return fixed


_FIELD = re.compile(r"^\s+remainderIFused:\s*int\s*$", re.M)
_PASSED = re.compile(r"^(\s+)remainderI=remainderI,\s*$", re.M)


def _pass_remainder_fused(text: str) -> str | None:
    if not _FIELD.search(text) or "remainderIFused=" in text or len(_PASSED.findall(text)) != 1:
        return None
    return _PASSED.sub(lambda m: f"{m.group(0)}\n{m.group(1)}remainderIFused=None,", text)


_MODULE_IMPORT = "from ..utils import stream_shuffle_broadcast\n"


def _import_the_function(text: str) -> str | None:
    if text.count(_MODULE_IMPORT) != 1 or "stream_shuffle_broadcast(" not in text \
            or "stream_shuffle_broadcast.stream_shuffle_broadcast" in text:
        return None
    return text.replace(_MODULE_IMPORT, "from ..utils.stream_shuffle_broadcast import stream_shuffle_broadcast\n")


@dataclass(frozen=True)
class SourceFix:
    name: str
    path: str  # the file, relative to the nkilib package
    fix: Callable[[str], "str | None"]
    what: str


SOURCE_FIXES = (
    SourceFix("mlp-docstring", "core/mlp/mlp.py", drop_repeated_docstring_tail,
              "core/mlp/mlp.py:203 IndentationError (a docstring's last lines repeated after it closes): the repeat "
              "dropped; mlp, moe_block and transformer_tkg import it"),
    SourceFix("remainderIFused", "core/mlp/mlp_tkg/mlp_tkg_constants.py", _pass_remainder_fused,
              "core/mlp/mlp_tkg/mlp_tkg_constants.py:225 omits the field remainderIFused (declared without a default, "
              "read nowhere): passed as None"),
    SourceFix("stream-shuffle-import", "core/qkv/qkv_cte.py", _import_the_function,
              "core/qkv/qkv_cte.py:28 imports the module stream_shuffle_broadcast and calls it: the function in it "
              "is imported instead"),
)

_applied: dict[str, str] = {}


def applied() -> dict[str, str]:
    """The fixes applied so far in this process: name -> what it fixed."""
    return dict(_applied)


class _FixedSource(importlib.machinery.SourceFileLoader):
    """A source file compiled from its fixed text (never from a cached .pyc of the unfixed file)."""

    def __init__(self, fullname, path, text):
        super().__init__(fullname, path)
        self._text = text

    def get_source(self, fullname):
        return self._text

    def get_code(self, fullname):
        return compile(self._text, self.path, "exec", dont_inherit=True)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        tail = fullname.replace(".", "/") + ".py"
        fix = next((f for f in SOURCE_FIXES if tail.endswith("nkilib/" + f.path)), None)
        if fix is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not spec.origin or not spec.origin.replace("\\", "/").endswith("nkilib/" + fix.path):
            return spec
        with open(spec.origin, encoding="utf-8") as f:
            fixed = fix.fix(f.read())
        if fixed is None:
            return spec
        _applied[fix.name] = fix.what
        return importlib.util.spec_from_file_location(fullname, spec.origin,
                                                      loader=_FixedSource(fullname, spec.origin, fixed))


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
