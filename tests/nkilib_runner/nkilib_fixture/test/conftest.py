"""Mini harness conftest: options and simulation-mode aliasing shaped like nki-library's."""
import os

import nki.isa  # noqa: F401 - imported at conftest import time, before the aliasing, as the real conftest does


def pytest_addoption(parser):
    parser.addoption("--test-mode", choices=["simulation", "compile-only"], default="compile-only")
    parser.addoption("--platform-target", default="trn2")
    parser.addoption("--output-directory", default="mini_test_output")


def pytest_configure(config):
    if config.getoption("test_mode") == "simulation":
        from .utils.simulation_setup import setup_simulation_mode

        setup_simulation_mode()
    # written before anything creates it (the published harness's defect)
    with open(os.path.join(config.getoption("output_directory"), "session.txt"), "w") as f:
        f.write(config.getoption("platform_target"))
    from .utils import test_orchestrator

    test_orchestrator.OUTPUT_DIRECTORY = os.path.abspath(config.getoption("output_directory"))


def pytest_configure_node(node):
    """A pytest-xdist hook: pytest rejects it unless xdist (or the runner's plugin) declares it."""
