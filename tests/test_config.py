"""The settings object: defaults, validation, context manager, process-wide configure, environment variables."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading

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
    ({"saturate": "maybe"}, "settings: saturate must be True or False, got 'maybe'"),
    ({"saturate": 2}, "settings: saturate must be True or False, got 2"),
    ({"seed": "x"}, "settings: seed must be an integer, got 'x'"),
    ({"seed": "7"}, "settings: seed must be an integer, got '7'"),
    ({"seed": 1.5}, "settings: seed must be an integer, got 1.5"),
    ({"seed": 2 ** 64}, "settings: seed must be .* got 18446744073709551616"),
    ({"sr_bits": -3}, "'sr_bits': -3 must be 0"),
    ({"collective_channels": 2.0}, "settings: collective_channels must be an integer, got 2.0"),
    ({"collective_timeout": "5"}, "settings: collective_timeout must be a number, got '5'"),
    ({"collective_int_overflow": "clip"}, "'collective_int_overflow': 'clip' is not one of 'raise', 'saturate'"),
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


@pytest.mark.parametrize("env,saturate", [
    ({"NEURON_RT_ENABLE_OCP_SATURATION": "1"}, "True"),
    ({"NEURON_RT_ENABLE_OCP_SATURATION": "0"}, "False"),
    # the emulator's own variable wins where both are set, either way
    ({"NEURON_RT_ENABLE_OCP_SATURATION": "1", "TRN3EMU_SATURATE": "0"}, "False"),
    ({"NEURON_RT_ENABLE_OCP_SATURATION": "0", "TRN3EMU_SATURATE": "on"}, "True"),
])
def test_neuron_runtime_saturation_variable(env, saturate):
    out = _settings_in_child(env)
    assert out.stdout.split()[2] == saturate, out.stderr


def test_a_bad_environment_variable_is_a_clear_error():
    out = _settings_in_child({"TRN3EMU_ROUNDING": "up"})
    assert out.returncode != 0
    assert "from the environment: setting 'rounding': 'up' is not one of" in out.stderr


@pytest.mark.parametrize("env,match", [
    # a flag is read by the same rules everywhere: 'banana' is neither on nor off
    ({"TRN3EMU_DISABLE_NUMBA": "banana"}, "TRN3EMU_DISABLE_NUMBA='banana' is not a boolean"),
    ({"TRN3EMU_SATURATE": "banana"}, "TRN3EMU_SATURATE: saturate='banana' is not a boolean"),
    # the runtime documents 1 (on) and 0 (off); 2 must not silently leave rounding at RNE
    ({"NEURON_RT_STOCHASTIC_ROUNDING_EN": "2"}, "NEURON_RT_STOCHASTIC_ROUNDING_EN='2' is not 1"),
    ({"NEURON_RT_STOCHASTIC_ROUNDING_SEED": "1.5"}, "NEURON_RT_STOCHASTIC_ROUNDING_SEED='1.5' is not an integer"),
    # only 1 and 0: 'true' must not be read as either
    ({"NEURON_RT_ENABLE_OCP_SATURATION": "true"}, "NEURON_RT_ENABLE_OCP_SATURATION='true' is not 1"),
    ({"TRN3EMU_SEED": "1.5"}, "TRN3EMU_SEED: seed='1.5' is not an integer"),
    ({"TRN3EMU_SR_BITS": "-3"}, "'sr_bits': -3 must be 0"),
])
def test_a_bad_environment_value_names_the_variable_and_the_value(env, match):
    out = _settings_in_child(env)
    assert out.returncode != 0
    assert "SettingsError" in out.stderr and re.search(match, out.stderr), out.stderr


def test_environment_flags_read_both_ways():
    out = _settings_in_child({"TRN3EMU_DISABLE_NUMBA": "off", "NEURON_RT_STOCHASTIC_ROUNDING_EN": "0",
                              "TRN3EMU_SATURATE": "Yes", "TRN3EMU_SEED": "0x10"})
    assert out.stdout.split() == ["rne", "16", "True", "True"], out.stderr


def test_parse_value_reads_text_and_settings_check_it():
    from emulator.config import parse_settings

    assert parse_settings({"saturate": "on", "seed": "7", "collective_timeout": "2.5", "rounding": " sr "}) == \
        {"saturate": True, "seed": 7, "collective_timeout": 2.5, "rounding": "sr"}
    with pytest.raises(emu.SettingsError, match="seed='7.5' is not an integer"):
        parse_settings({"seed": "7.5"})
    with pytest.raises(emu.SettingsError, match="unknown setting 'sede'"):
        parse_settings({"sede": "7"})


def _see_settings_in_threads(n: int, configs: list[dict]) -> list:
    """Each of ``n`` threads enters ``with settings(**configs[i])``, waits for all (Barrier: the blocks overlap in
    time), reads get_settings() several times while the others are inside theirs, and reports what it saw."""
    barrier = threading.Barrier(n)
    seen: list = [None] * n

    def body(i: int) -> None:
        with emu.settings(**configs[i]):
            barrier.wait(timeout=30)  # every thread is inside its block now
            views = [emu.get_settings() for _ in range(50)]
            barrier.wait(timeout=30)  # nobody leaves before everyone has read
        seen[i] = ([(v.rounding, v.seed, v.saturate) for v in views], emu.get_settings())

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return seen


def test_two_threads_with_different_settings_each_see_only_their_own():
    base = emu.get_settings()
    seen = _see_settings_in_threads(2, [dict(rounding="sr", seed=11), dict(saturate=True, seed=22)])
    assert set(seen[0][0]) == {("sr", 11, base.saturate)}
    assert set(seen[1][0]) == {(base.rounding, 22, True)}
    assert seen[0][1] == base and seen[1][1] == base  # each block undone in its own thread
    assert emu.get_settings() == base


def test_a_new_thread_sees_the_process_wide_settings_not_the_creators_block():
    got = []
    with emu.settings(seed=5):
        t = threading.Thread(target=lambda: got.append(emu.get_settings().seed))
        t.start()
        t.join()
    assert got == [emu.get_settings().seed]


def test_run_in_context_carries_the_callers_settings_into_a_thread():
    from emulator.config import run_in_context

    got = []
    with emu.settings(seed=5, rounding="rtz"):
        t = threading.Thread(target=run_in_context(lambda tag: got.append((tag, emu.get_settings().seed,
                                                                            emu.get_settings().rounding)), "x"))
        t.start()
        t.join()
    assert got == [("x", 5, "rtz")]


def test_configure_is_process_wide_and_seen_by_other_threads():
    old = emu.get_settings().seed
    got = []
    try:
        emu.configure(seed=old + 1)
        t = threading.Thread(target=lambda: got.append(emu.get_settings().seed))
        t.start()
        t.join()
    finally:
        emu.configure(seed=old)
    assert got == [old + 1]


def test_spmd_rank_threads_inherit_the_callers_settings_and_keep_their_own_blocks():
    from emulator.nki import collectives as ncc

    ranks = 3
    barrier = threading.Barrier(ranks)
    seen: list = [None] * ranks

    def kernel():
        r = ncc.rank_id()
        inherited = emu.get_settings()
        with emu.settings(seed=100 + r):
            barrier.wait(timeout=30)
            mine = emu.get_settings().seed
            barrier.wait(timeout=30)
        seen[r] = (inherited.rounding, inherited.saturate, inherited.seed, mine)

    with emu.settings(rounding="rtz", saturate=True, seed=9):
        ncc.run_spmd(kernel, ranks)
    assert seen == [("rtz", True, 9, 100 + r) for r in range(ranks)]
