"""docs/numerics.md has one row per Settings field, with the field's current default; the doc pages exist."""

import pathlib
import re
from dataclasses import fields

from emulator.config import Settings

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_every_setting_has_one_row_with_its_default():
    text = (ROOT / "docs" / "numerics.md").read_text()
    table = text[text.index("## Every setting at a glance"):]
    rows = dict(re.findall(r"^\| `(\w+)` \| `([^`]*)` \|", table, flags=re.M))
    names = [f.name for f in fields(Settings)]
    assert sorted(rows) == sorted(names), set(rows) ^ set(names)
    for f in fields(Settings):
        assert rows[f.name] == repr(f.default), f"{f.name}: the table says {rows[f.name]}, the default is {f.default!r}"
    for name in names:
        assert len(re.findall(rf"^\| `{name}` \|", table, flags=re.M)) == 1, name


def test_capability_pages_exist_and_are_linked_from_getting_started():
    start = (ROOT / "docs" / "getting-started.md").read_text()
    for page in re.findall(r"\]\(([\w-]+\.md)\)", start):
        assert (ROOT / "docs" / page).is_file(), page
