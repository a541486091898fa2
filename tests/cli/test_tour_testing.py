"""The CLI hooks of the testing toolkit run and report success."""

from emulator.testing import demo


def test_selftest_all_ok():
    checks = demo.selftest()
    assert checks and all(ok for _, ok, _ in checks), checks


def test_demo_shows_a_classified_report():
    text = demo.demo()
    assert "signed zero: 1" in text and "caught:" in text and "NOT caught" not in text
