"""pytest plugin (entry point ``trn3emu``): options, markers and fixtures for tests that use the emulator.

Options
    ``--trn3emu-seed N``           seed of the emulator's stochastic rounding for the whole session (setting ``seed``)
                                   and of the ``emu_rng`` fixture.
    ``--trn3emu-setting NAME=VAL`` apply a setting for the whole session (repeatable), e.g.
                                   ``--trn3emu-setting numba=0 --trn3emu-setting accumulation=pairwise``.
    ``--nki-emulator``             ``import nki`` / ``neuronxcc.nki`` resolve to the emulator for the whole session.
Markers
    ``@pytest.mark.trn3emu_settings(rounding="sr", seed=3)``  settings applied for one test.
Fixtures
    ``emu_settings``   call it with overrides (``emu_settings(saturate=True)``); undone at teardown.
    ``emu_backend``    parametrised over ``"numba"`` and ``"numpy"``: the test runs once on each kernel path.
    ``trn3emu_seed``   the session seed; ``emu_rng`` a NumPy Generator seeded from it and the test's id.
    ``nki``            the NKI front end (``emulator.nki``); skips the test when it is not available.
    ``nki_emulator``   ``import nki`` resolves to the emulator during the test (undone at teardown).

Every test also runs inside a guard that restores the process-wide settings if the test changed them with
``emu.configure`` and forgot to undo it, so one test cannot change the numerics of the next.
"""

from __future__ import annotations

import zlib

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("trn3emu", "trn3-emulator")
    group.addoption(
        "--trn3emu-seed", action="store", type=int, default=None,
        help="seed for the emulator's stochastic rounding and random streams in tests (default: the settings' seed)",
    )
    group.addoption(
        "--trn3emu-setting", action="append", default=[], metavar="NAME=VALUE",
        help="apply an emulator setting for the whole session (repeatable), e.g. numba=0 or rounding=sr",
    )
    group.addoption(
        "--nki-emulator", action="store_true", default=False,
        help="make `import nki` and `neuronxcc.nki` resolve to the emulator (emulator.nki.install()) for the session",
    )


def _session_overrides(config: pytest.Config) -> dict:
    overrides = {}
    for item in config.getoption("--trn3emu-setting") or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise pytest.UsageError(f"--trn3emu-setting expects NAME=VALUE, got {item!r}")
        overrides[name.strip()] = value.strip()
    seed = config.getoption("--trn3emu-seed")
    if seed is not None:
        overrides["seed"] = seed
    return overrides


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "trn3emu_settings(**overrides): run the test under these emulator settings",
    )
    if config.getoption("--nki-emulator"):
        from emulator.nki import install

        install()
    overrides = _session_overrides(config)
    if overrides:
        from emulator.config import configure
        from emulator.errors import SettingsError

        try:
            configure(**overrides)
        except SettingsError as exc:
            raise pytest.UsageError(f"--trn3emu-setting/--trn3emu-seed: {exc}") from None


def pytest_report_header(config: pytest.Config) -> list[str]:
    from emulator.config import Settings, get_settings

    current, default = get_settings(), Settings()
    changed = [f"{name}={getattr(current, name)!r}" for name in current.__dataclass_fields__
               if getattr(current, name) != getattr(default, name)]
    return ["trn3emu: settings " + (", ".join(changed) if changed else "all default")]


@pytest.fixture(autouse=True)
def _trn3emu_settings_guard(request: pytest.FixtureRequest):
    from emulator import config

    before = config.get_settings()
    marker = request.node.get_closest_marker("trn3emu_settings")
    if marker is not None:
        if marker.args:
            raise pytest.UsageError("trn3emu_settings takes keyword arguments only: NAME=VALUE")
        with config.settings(**marker.kwargs):
            yield
    else:
        yield
    after = config.get_settings()
    if after is not before and after != before:
        # configure() was left changed: put every field back so the next test sees the session's numerics
        config.configure(**{name: getattr(before, name) for name in before.__dataclass_fields__})


@pytest.fixture
def trn3emu_seed(request: pytest.FixtureRequest) -> int:
    """The seed given with --trn3emu-seed, else the active settings' seed."""
    from emulator.config import get_settings

    seed = request.config.getoption("--trn3emu-seed")
    return get_settings().seed if seed is None else seed


@pytest.fixture
def emu_rng(request: pytest.FixtureRequest, trn3emu_seed: int):
    """A NumPy Generator seeded from the session seed and the test's id: reproducible, different per test."""
    import numpy as np

    return np.random.default_rng([trn3emu_seed, zlib.crc32(request.node.nodeid.encode())])


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


@pytest.fixture(params=["numba", "numpy"])
def emu_backend(request: pytest.FixtureRequest):
    """Run the test once with the Numba kernels and once with their NumPy twins (yields the backend name)."""
    from emulator._jit import HAVE_NUMBA
    from emulator.config import settings

    if request.param == "numba" and not HAVE_NUMBA:
        pytest.skip("numba is not importable here")
    with settings(numba=request.param == "numba"):
        yield request.param


@pytest.fixture
def nki():
    """The emulator's NKI front end (``emulator.nki``), skipping the test when it does not provide ``jit``/``simulate``."""
    import importlib

    module = importlib.import_module("emulator.nki")
    if not any(hasattr(module, name) for name in ("jit", "simulate")):
        pytest.skip("the NKI front end (emulator.nki) is not built in this version")
    return module


@pytest.fixture
def nki_emulator():
    """``import nki`` (and ``neuronxcc.nki``) resolve to the emulator for this test; yields ``emulator.nki``."""
    import emulator.nki as front

    was = front.installed()
    front.install()
    yield front
    if not was:
        front.uninstall()
