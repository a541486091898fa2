"""The settings object: defaults, validation, context manager, process-wide configure, environment variables."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import emulator as emu
from emulator.config import Settings, describe


def test_defaults_are_the_documented_ones():
    s = Settings()
    assert (s.rounding, s.saturate, s.wide_input, s.mx_convention, s.accumulation) == \
        ("rne", False, "exact", "hw", "sequential")


def test_context_manager_nests_and_restores():
    base = emu.get_settings()
    with emu.settings(rounding="sr", seed=3) as outer:
        assert outer.rounding == "sr" and outer.seed == 3
        with emu.settings(seed=4):
            assert emu.get_settings().seed == 4 and emu.get_settings().rounding == "sr"
        assert emu.get_settings().seed == 3
    assert emu.get_settings() == base


def test_context_manager_restores_after_an_exception():
    base = emu.get_settings()
    with pytest.raises(ZeroDivisionError):
        with emu.settings(saturate=True):
            1 / 0
    assert emu.get_settings() == base


def test_configure_changes_the_process_wide_settings():
    old = emu.get_settings()
    try:
        emu.configure(saturate=True)
        assert emu.get_settings().saturate is True
    finally:
        emu.configure(saturate=old.saturate)
    assert emu.get_settings() == old


@pytest.mark.parametrize("kwargs,match", [
    ({"rounding": "nearest"}, "setting 'rounding': 'nearest' is not one of 'rne', 'rtz', 'sr'"),
    ({"roundng": "rne"}, "unknown setting 'roundng'; the settings are: .*rounding"),
    ({"saturate": "maybe"}, "setting 'saturate': 'maybe' is not a boolean"),
    ({"seed": "x"}, "setting 'seed': 'x' is not an integer"),
    ({"accumulation": "blocked:0"}, "blocked:B"),
    ({"sr_scope": "engine,hbm"}, "'hbm' is not one of"),
    ({"sr_bits": 65}, "'sr_bits': 65 must be 0 .all dropped bits. to 64"),
])
def test_bad_settings_name_the_setting_and_the_rule(kwargs, match):
    with pytest.raises(emu.SettingsError, match=match):
        with emu.settings(**kwargs):
            pass


def test_describe_lists_every_field_with_a_meaning():
    rows = describe()
    assert {r["name"] for r in rows} == set(Settings.__dataclass_fields__)
    assert all(r["doc"] and r["env"].startswith("TRN3EMU_") for r in rows)


def _settings_in_child(env: dict) -> str:
    code = "import emulator as emu; s = emu.get_settings(); print(s.rounding, s.seed, s.saturate, s.numba)"
    full = {k: v for k, v in os.environ.items() if not k.startswith(("TRN3EMU_", "NEURON_RT_"))}
    full.update(env)
    return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=60)


def test_environment_variables_set_the_defaults():
    out = _settings_in_child({"TRN3EMU_SATURATE": "1", "TRN3EMU_SEED": "9", "TRN3EMU_DISABLE_NUMBA": "1"})
    assert out.stdout.split() == ["rne", "9", "True", "False"], out.stderr


def test_neuron_runtime_stochastic_rounding_variables():
    out = _settings_in_child({"NEURON_RT_STOCHASTIC_ROUNDING_EN": "1", "NEURON_RT_STOCHASTIC_ROUNDING_SEED": "42"})
    assert out.stdout.split()[:2] == ["sr", "42"], out.stderr


def test_a_bad_environment_variable_is_a_clear_error():
    out = _settings_in_child({"TRN3EMU_ROUNDING": "up"})
    assert out.returncode != 0
    assert "from the environment: setting 'rounding': 'up' is not one of" in out.stderr
