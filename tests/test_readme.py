"""Every code snippet in README.md and docs/*.md runs, and every value the text shows is the value the code gives.

A fenced ``python`` block is checked in one of two ways:

* doctest style: lines starting with ``>>>`` (and ``...``) run through :mod:`doctest`, and the lines after them are
  the printed output they must produce (``...`` matches anything, whitespace is normalised);
* script style: the block runs as it is, and an expression statement whose trailing comment starts with a value,
  ``expr  # -> 1.125`` or ``expr  # 1.125: why``, must evaluate to that value (a number or a list of numbers, with
  ``nan``, ``inf`` and ``-0``; compared exactly, NaN equal to NaN, the sign of zero included). ``print(expr)`` is
  checked as ``expr``. A claimed value on any other line (inside a ``with`` or a loop) fails: move it to a line the
  checker reads. A ``test_*`` function the block defines is called when it needs no pytest fixture.

An HTML comment ``<!-- doc-setup: CODE -->`` right before a fence runs CODE first (hidden setup for a template, such
as the cast a reader is meant to supply). A fence written ``python no-run`` is not run (say why in the text).
Plain (unlabelled) fences are output shown to the reader: each one must follow a block that produces it.
"""

from __future__ import annotations

import ast
import doctest
import inspect
import io
import math
import pathlib
import re
import tokenize

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
DOCS = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
FENCE = re.compile(r"(?:<!-- doc-setup: (?P<setup>.*?) -->\n)?```(?P<lang>[^\n]*)\n(?P<body>.*?)```", re.S)
# a trailing comment that states a value: "-> v", or a literal followed by ':' ',' '(' or the end of the comment
CLAIM = re.compile(r"#\s*(?:->\s*)?(?P<value>-?\[[^\]]*\]|[-+]?(?:nan|inf|\d[\d.e+-]*))\s*(?:$|[:,(])")


def blocks(path: pathlib.Path) -> list[tuple[str, int, str, str]]:
    """(lang, first line number, body, setup) of every fenced block of ``path``."""
    text = path.read_text()
    out = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start("body")) + 1
        out.append((m.group("lang").strip(), line, m.group("body"), m.group("setup") or ""))
    return out


def _literal(text: str):
    text = re.sub(r"(?<![\w.])-0(?![\w.])", "-0.0", text)
    return eval(text, {"nan": math.nan, "inf": math.inf})  # a number or a list of numbers, from our own docs


def same_value(actual, claimed) -> bool:
    """Exact equality of numbers or arrays, NaN equal to NaN, the sign of zero included."""
    a = np.asarray(actual, dtype=np.float64)
    c = np.asarray(claimed, dtype=np.float64)
    if a.shape != c.shape:
        return False
    both_nan = np.isnan(a) & np.isnan(c)
    return bool(np.all(both_nan | ((a == c) & (np.signbit(a) == np.signbit(c)))))


def _comments(body: str) -> dict[int, str]:
    found = {}
    for tok in tokenize.generate_tokens(io.StringIO(body).readline):
        if tok.type == tokenize.COMMENT:
            found[tok.start[0]] = tok.string
    return found


def run_script(body: str, where: str, setup: str = "") -> int:
    """Run a script-style block statement by statement, checking each claimed value; returns the claims checked."""
    ns: dict = {}
    if setup:
        exec(setup, ns)
    tree = ast.parse(body)
    comments = _comments(body)
    claims = {ln: m.group("value") for ln, c in comments.items() if (m := CLAIM.match(c))}
    checked = 0
    for stmt in tree.body:
        code = compile(ast.Module([stmt], []), where, "exec")
        claim = claims.pop(stmt.end_lineno, None) if isinstance(stmt, ast.Expr) else None
        if claim is None:
            exec(code, ns)
            continue
        expr = stmt.value
        if isinstance(expr, ast.Call) and getattr(expr.func, "id", None) == "print" and len(expr.args) == 1:
            expr = expr.args[0]
        actual = eval(compile(ast.Expression(expr), where, "eval"), ns)
        assert same_value(actual, _literal(claim)), f"{where}, line {stmt.end_lineno}: shows {claim}, gives {actual!r}"
        checked += 1
    assert not claims, f"{where}: values shown on lines the checker does not read: {claims}"
    for name, fn in list(ns.items()):  # a test the snippet defines runs too, where it needs no fixture
        if name.startswith("test_") and callable(fn) and not inspect.signature(fn).parameters:
            fn()
            checked += 1
    return checked


def run_doctest(body: str, where: str, setup: str = "") -> None:
    ns: dict = {}
    if setup:
        exec(setup, ns)
    test = doctest.DocTestParser().get_doctest(body, ns, where, where, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    out = io.StringIO()
    runner.run(test, out=out.write)
    assert runner.failures == 0, out.getvalue()


CASES = [(p, lang, line, body, setup) for p in DOCS for lang, line, body, setup in blocks(p)]


@pytest.mark.parametrize("path,lang,line,body,setup",
                         [c for c in CASES if c[1] == "python"],
                         ids=[f"{c[0].name}:{c[2]}" for c in CASES if c[1] == "python"])
def test_snippet_runs_and_shows_what_it_gives(path, lang, line, body, setup):
    where = f"{path.name}:{line}"
    if ">>>" in body:
        run_doctest(body, where, setup)
    else:
        run_script(body, where, setup)


def test_plain_fences_are_output_of_a_doctest():
    """An unlabelled fence shows output: its text must be produced by a checked doctest block of the same file."""
    for path in DOCS:
        found = blocks(path)
        doctest_text = "\n".join(b for lang, _, b, _ in found if lang == "python" and ">>>" in b)
        for lang, line, body, _ in found:
            if lang == "" and not body.lstrip().startswith(("mix64", "key(", "word(")):
                first = body.strip().splitlines()[0]
                assert first in doctest_text, f"{path.name}:{line}: output shown without a doctest producing it"


def test_the_checker_catches_a_wrong_value():
    with pytest.raises(AssertionError, match="shows 0.5, gives"):
        run_script("import numpy as np\nnp.float32(0.25) * 1  # -> 0.5\n", "self-test")
    with pytest.raises(AssertionError, match="shows -0"):
        run_script("0.0  # -0: the sign counts\n", "self-test")
    with pytest.raises(AssertionError, match="not read"):
        run_script("if True:\n    x = 1  # 2\n", "self-test")
    assert run_script("[1.0, float('nan'), -0.0]  # [1, nan, -0]\n", "self-test") == 1
    with pytest.raises(AssertionError):
        run_doctest(">>> 1 + 1\n3\n", "self-test")


def test_the_first_two_commands_are_demo_and_tests_and_ci_runs_the_second():
    first = re.search(r"```bash\n(.*?)```", README, flags=re.S).group(1).strip().splitlines()
    assert first[0].endswith("trn3emu demo")
    assert first[1].endswith("pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert first[1] in ci.splitlines(), "CI must run exactly the README's test command"
