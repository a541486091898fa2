"""pytest plugin (entry point ``trn3emu``): the ``--trn3emu-seed`` option and settings fixtures."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("trn3emu", "trn3-emulator")
    group.addoption(
        "--trn3emu-seed", action="store", type=int, default=None,
        help="seed for the emulator's stochastic rounding and random streams in tests (default: the settings' seed)",
    )


@pytest.fixture
def trn3emu_seed(request: pytest.FixtureRequest) -> int:
    """The seed given with --trn3emu-seed, else the active settings' seed."""
    from emulator.config import get_settings

    seed = request.config.getoption("--trn3emu-seed")
    return get_settings().seed if seed is None else seed


@pytest.fixture
def emu_settings():
    """Apply emulator settings for one test: ``emu_settings(rounding="sr")``; undone at teardown."""
    from emulator.config import settings

    stack = []

    def apply(**overrides):
        cm = settings(**overrides)
        value = cm.__enter__()
        stack.append(cm)
        return value

    yield apply
    while stack:
        stack.pop().__exit__(None, None, None)
