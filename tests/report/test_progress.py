"""emulator.progress: drawn only on a terminal outside pytest (or when forced), and says how far it got."""

import io

from emulator.progress import Progress, progress_enabled


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_silent_under_pytest_and_off_a_terminal(monkeypatch):
    monkeypatch.delenv("TRN3EMU_PROGRESS", raising=False)
    assert not progress_enabled(_Tty())  # PYTEST_CURRENT_TEST is set while this test runs
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    assert progress_enabled(_Tty())
    assert not progress_enabled(io.StringIO())  # not a terminal (a pipe, a log file)
    monkeypatch.setenv("TRN3EMU_PROGRESS", "0")
    assert not progress_enabled(_Tty())
    monkeypatch.setenv("TRN3EMU_PROGRESS", "1")
    assert progress_enabled(io.StringIO())


def test_bar_text_and_final_newline():
    out = _Tty()
    with Progress(4, "job", enabled=True, stream=out) as bar:
        for _ in range(4):
            bar.update(note="x")
    text = out.getvalue()
    assert "job [" + "#" * 30 + "] 4/4" in text and text.endswith("\n")
    silent = _Tty()
    with Progress(4, "job", stream=silent) as bar:  # default: off under pytest
        bar.update(4)
    assert silent.getvalue() == "" and bar.done == 4
    counter = _Tty()
    with Progress(None, "scan", enabled=True, stream=counter) as bar:
        bar.update(7)
    assert "scan: 7 done" in counter.getvalue()
