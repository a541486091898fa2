"""The README's Python examples run, and its first two commands are the ones CI runs."""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert blocks, "the README has Python examples"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


def test_the_first_two_commands_are_demo_and_tests_and_ci_runs_the_second():
    first = re.search(r"```bash\n(.*?)```", README, flags=re.S).group(1).strip().splitlines()
    assert first[0].endswith("trn3emu demo")
    assert first[1].endswith("pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert first[1] in ci.splitlines(), "CI must run exactly the README's test command"
