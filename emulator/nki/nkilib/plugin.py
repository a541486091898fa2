"""pytest plugin for running nki-library's suite on the emulator (``-p emulator.nki.nkilib.plugin``).

Importing it installs the stand-in modules (:mod:`.stand_ins`) before the harness's conftest imports ``nki``. Its
hooks work around the published harness's own defects, in memory only (nothing on disk is changed), and every
workaround that fired is named in the run's summary (:data:`HARNESS_DEFECTS` has the list). The summary itself
(per kernel family: passed / failed / skipped, failure classes, time) comes from :mod:`.summary`.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import re
import shutil
import sys
import time

import numpy as np
import pytest

from . import DUMP_ENV, SCRATCH_ENV, harness_speedups, ledger, source_fixes, stand_ins, summary
from .summary import worst_element

stand_ins.install()
if os.environ.get(source_fixes.FIX_ENV) == "1":
    source_fixes.install()

#: harness defect id -> what it is and what the plugin does about it
HARNESS_DEFECTS = {
    "missing-perf-analysis": "test/utils/perf_analysis_private.py is imported by the Orchestrator but not in the "
                             "repository: stood in by an empty module (perf analysis is off in simulation)",
    "missing-remote-lock": "test/utils/scripts/remote_lock_scripts.py is imported but not in the repository: "
                           "stood in by an empty module",
    "compiled-kernel-unset": "Orchestrator._compiled_kernel is read after inference but only set on the compile "
                             "path: defaulted to None on the class",
    "output-dir": "the output/artifacts directories are written before they are created: created at configure",
    "xdist-hooks": "conftest implements pytest-xdist's pytest_configure_node hook, which pytest rejects when "
                   "pytest-xdist is absent: the hook spec is registered (and the xdist_group marker)",
    "inert-packages": "fabric2 / paramiko / boto3 / botocore / aws_embedded_metrics are imported but unused in "
                      "simulation: absent ones are stood in by inert modules",
    "x4-dtype-names": "(an adaptation, not a defect) the output validator looks its x4 unpackers up by str(dtype), "
                      "the bare format name for Neuron's dtypes; the emulator's x4 dtypes are NumPy structured "
                      "dtypes whose str is their field list: each unpacker is also registered under that str",
    "multi-rank": "(a gap of the published harness) simulation_setup runs every case on one rank: it passes "
                  "kernel_input to the kernel as keyword arguments (a PerRankLazyInputGenerator is not a mapping), "
                  "ignores InferenceArgs.collective_ranks and writes no output_worker_<rank> directory, which the "
                  "validator reads for a multi-rank case: a case with collective_ranks > 1 runs on that many "
                  "virtual ranks (emulator.nki.collectives.run_spmd; LNC=2 kernels per setting lnc_collectives), "
                  "each rank's outputs converted by the harness's own run_simulator_inference and written to "
                  "output_worker_<rank>",
    "mx-convention": "(an adaptation, not a defect) quantize_mx's scale rule changed in NKI 0.5.0 / Neuron 2.31 "
                     "(docs/mx.md): the checkout's own golden (test/utils/mx_utils.quantize_mx_golden) is asked which "
                     "scale it expects for a group whose largest element is 3.0, and the setting mx_convention follows "
                     "it (unless TRN3EMU_MX_CONVENTION is set)",
    "fast-mx-data": "(an adaptation for speed, not a defect) the harness's generate_stabilized_mx_data (the MX weights of "
                    "the mlp / moe / moe_block / qkv / output-projection tests) draws four numbers per 8 x 4 group in "
                    "a Python loop, most of a case's time; replaced by a bulk parse of the same generator's words "
                    "giving the same arrays and leaving NumPy's global generator in the same state (only for the "
                    "function as published, by the SHA-256 of its source; TRN3EMU_NKILIB_HARNESS_SPEEDUPS=0 turns it "
                    "off; emulator/nki/nkilib/harness_speedups.py)",
    "x4-output-bits": "(an adaptation, not a defect) simulation_setup converts each kernel output with "
                      "np.asarray(output, dtype=golden.dtype); a golden that is the float32 view of packed x4 words "
                      "(experimental mxfp_load) asks for the words' bits, which NumPy will not cast out of the "
                      "emulator's structured x4 dtypes: that conversion is done as a view of the words",
}

_fired: dict[str, str] = {}


def _worked_around() -> dict[str, str]:
    """The harness defects worked around so far, and the source defects fixed in memory (``source-fix:<name>``)."""
    fixes = {f"source-fix:{name}": f"(a source defect, fixed in memory on request: --fix-source-defects) {what}"
             for name, what in source_fixes.applied().items()}
    return {**_fired, **fixes}


_HARNESS_FILES = {"test.utils.perf_analysis_private": "missing-perf-analysis",
                  "test.utils.scripts": "missing-remote-lock",
                  "test.utils.scripts.remote_lock_scripts": "missing-remote-lock"}


class _HarnessFileFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Last on ``sys.meta_path``: only consulted when the real file is absent."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in _HARNESS_FILES:
            return importlib.util.spec_from_loader(fullname, self, is_package=fullname == "test.utils.scripts")
        return None

    def create_module(self, spec):
        _fired[_HARNESS_FILES[spec.name]] = HARNESS_DEFECTS[_HARNESS_FILES[spec.name]]
        module = stand_ins.InertModule(spec.name, "stand-in for a harness file missing from nki-library")
        if spec.name == "test.utils.perf_analysis_private":
            module.analyze_trace = _no_perf_analysis
        return module

    def exec_module(self, module):
        pass


def _no_perf_analysis(*args, **kwargs):
    raise RuntimeError("perf analysis needs hardware traces; the emulator runner does not provide it")


sys.meta_path.append(_HarnessFileFinder())
if stand_ins.inert_packages():
    _fired["inert-packages"] = HARNESS_DEFECTS["inert-packages"] + f" (here: {', '.join(stand_ins.inert_packages())})"


class _XdistHookSpecs:
    @pytest.hookspec(firstresult=False)
    def pytest_configure_node(self, node):
        """pytest-xdist's hook, declared so that conftest may implement it without the plugin."""


def pytest_addhooks(pluginmanager):
    if not pluginmanager.hasplugin("xdist") and importlib.util.find_spec("xdist") is None:
        pluginmanager.add_hookspecs(_XdistHookSpecs)
        _fired["xdist-hooks"] = HARNESS_DEFECTS["xdist-hooks"]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    config.addinivalue_line("markers", "xdist_group(name): pytest-xdist grouping (no effect here)")
    made = []
    out = getattr(config.option, "output_directory", None)
    if out:
        os.makedirs(os.path.abspath(out), exist_ok=True)
        made.append(out)
    try:
        artifacts = str(config.getini("artifacts_dir"))
    except ValueError:
        artifacts = ""
    if artifacts:
        os.makedirs(artifacts, exist_ok=True)
    if made:
        _fired["output-dir"] = HARNESS_DEFECTS["output-dir"]
    summary.RECORD.start = time.time()


def _patch_harness() -> None:
    orch = sys.modules.get("test.utils.test_orchestrator")
    if orch is not None and not hasattr(orch.Orchestrator, "_compiled_kernel"):
        orch.Orchestrator._compiled_kernel = None
        _fired["compiled-kernel-unset"] = HARNESS_DEFECTS["compiled-kernel-unset"]
    run = getattr(getattr(orch, "Orchestrator", None), "_run_simulator_inference", None)
    if run is not None and not getattr(run, "_trn3emu", False):
        orch.Orchestrator._run_simulator_inference = _multi_rank(run)
    sim = sys.modules.get("test.utils.simulation_setup")
    if sim is not None and getattr(sim, "np", None) is np:
        sim.np = _X4AwareNumpy(np)
    val = sys.modules.get("test.utils.output_validator")
    if val is not None and not getattr(val.maxAllClose, "_trn3emu", False):
        val.maxAllClose = _record_misses(val.maxAllClose)
    if val is not None:  # test modules that imported the comparison by name (custom validators) get the wrapper too
        original = val.maxAllClose.__wrapped__
        for name, module in list(sys.modules.items()):
            if name.startswith("test.") and getattr(module, "maxAllClose", None) is original:
                module.maxAllClose = val.maxAllClose
    if os.environ.get(harness_speedups.SPEEDUPS_ENV, "1") != "0" and harness_speedups.install(sys.modules):
        _fired["fast-mx-data"] = HARNESS_DEFECTS["fast-mx-data"]
    unpackers = getattr(val, "_X4_UNPACKERS", None)
    if isinstance(unpackers, dict):
        from .. import _dtypes

        for name, dt in _dtypes.DTYPES.items():
            if name in unpackers and str(dt) not in unpackers:
                unpackers[str(dt)] = unpackers[name]
                _fired["x4-dtype-names"] = HARNESS_DEFECTS["x4-dtype-names"]


def _multi_rank(one_rank):
    """Wrap ``Orchestrator._run_simulator_inference``: a case with ``collective_ranks`` > 1 runs its kernel on that
    many virtual ranks, each rank's outputs converted by the harness's own ``run_simulator_inference`` (given that
    rank's inputs) and written to ``output_worker_<rank>``; every other case goes the harness's way."""

    def run(self, kernel_under_test):
        ranks = getattr(getattr(kernel_under_test, "inference_args", None), "collective_ranks", 1) or 1
        if ranks <= 1:
            return one_rank(self, kernel_under_test)
        _fired["multi-rank"] = HARNESS_DEFECTS["multi-rank"]
        package = type(self).__module__.rpartition(".")[0]
        sim = importlib.import_module(f"{package}.simulation_setup")
        data = importlib.import_module(f"{package}.common_dataclasses")
        try:
            outputs = run_ranks(kernel_under_test, ranks, sim.run_simulator_inference)
        except Exception as e:  # the harness's own wrapping of an inference failure
            raise getattr(sys.modules.get(type(self).__module__), "InferenceException", RuntimeError)(str(e)) from e
        base = os.path.join(self.fs_config.artifacts_output_directory_path, data.INF_ARTIFACT_DIR_NAME)
        for rank, tensors in enumerate(outputs):
            self.__dump_tensors__(os.path.join(base, f"output_worker_{rank}"), tensors, lambda name: name)
        return base

    run._trn3emu = True
    return run


def run_ranks(kernel_under_test, ranks: int, infer) -> list:
    """``infer(case)`` (the harness's run_simulator_inference) on ``ranks`` virtual ranks, each given a copy of
    ``kernel_under_test`` with its own inputs: ``kernel_input.for_rank(rank)`` for a per-rank generator, else a copy
    of the shared inputs (a kernel may write its inputs, and each rank has its own HBM). Returns the outputs per
    rank."""
    import copy

    from ...config import get_settings, settings
    from ..collectives import rank_id, run_spmd

    given = kernel_under_test.kernel_input or {}
    per_rank = [given.for_rank(r) if hasattr(given, "for_rank") else given for r in range(ranks)]
    cases = []
    for inputs in per_rank:  # made here, not in the rank threads: the generators cache without a lock
        case = copy.copy(kernel_under_test)
        case.kernel_input = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in inputs.items()}
        cases.append(case)
    golden = getattr(getattr(kernel_under_test, "validation_args", None), "golden_output", None)
    if hasattr(golden, "for_rank"):  # every rank's infer names its outputs after rank 0's golden: made once, here
        golden.for_rank(0)
    outputs: list = [None] * ranks

    def rank_body():
        r = rank_id()
        outputs[r] = infer(cases[r])

    # a rank may arrive late at a collective because it is the one compiling the emulator's kernels (a first run
    # on a busy machine takes minutes): a run waits at least RANK_WAIT seconds before it names a missing rank
    with settings(collective_timeout=max(get_settings().collective_timeout, RANK_WAIT)):
        run_spmd(rank_body, ranks)
    return outputs


#: least seconds a multi-rank case waits for a rank to arrive at a collective (setting collective_timeout if larger)
RANK_WAIT = 300.0


class _X4AwareNumpy:
    """``numpy`` for the harness's simulation_setup, whose ``asarray(output, dtype=golden.dtype)`` gives an x4
    output's words as the golden's same-sized plain dtype (a view of the bits); everything else is numpy's."""

    def __init__(self, module):
        self._np = module

    def __getattr__(self, name):
        return getattr(self._np, name)

    def asarray(self, a, dtype=None, *args, **kwargs):
        if dtype is not None and isinstance(a, np.ndarray) and a.dtype.names:
            from .. import _dtypes

            target = np.dtype(dtype)
            if _dtypes.nki_name(a.dtype).endswith("_x4") and target.names is None and target.kind in "fiu" \
                    and target.itemsize == a.dtype.itemsize:
                _fired["x4-output-bits"] = HARNESS_DEFECTS["x4-output-bits"]
                return a.view(target)
        return self._np.asarray(a, dtype, *args, **kwargs)


def _record_misses(compare):
    """Wrap the harness's maxAllClose so that a failed comparison leaves its worst element for the summary."""

    def wrapper(a, b, *args, **kwargs):
        passed = compare(a, b, *args, **kwargs)
        if not passed:
            rtol = kwargs.get("rtol", args[0] if args else None)
            atol = kwargs.get("atol", args[1] if len(args) > 1 else None)
            mode = kwargs.get("mode", args[4] if len(args) > 4 else "max")
            summary.RECORD.note_miss(worst_element(a, b, rtol, atol, mode))
            where = os.environ.get(DUMP_ENV)
            if where:
                dump_miss(where, summary.RECORD.current, a, b, rtol, atol)
        return passed

    wrapper._trn3emu = True
    wrapper.__wrapped__ = compare
    return wrapper


def choose_mx_convention() -> str | None:
    """Set ``mx_convention`` to the one the checkout's ``quantize_mx_golden`` follows (``ocp``: scale exponent
    floor(log2 amax) - Emax, ``hw``: one more); None (and nothing set) when the variable is set, the golden is absent
    or its answer is neither."""
    from ...config import configure, env_name

    if os.environ.get(env_name("mx_convention"), "").strip():
        return None
    try:
        golden = importlib.import_module("test.utils.mx_utils").quantize_mx_golden
        from .. import language as nl

        _, scale = golden(np.full((8, 4), 3.0, np.float32), nl.float8_e4m3fn_x4)
        offset = int(np.asarray(scale).reshape(-1)[0]) - (127 + 1)  # 3.0 = 1.5 * 2^1; e4m3fn's Emax is 8
    except Exception:  # an older or newer harness without that golden: the setting stays as it is
        return None
    convention = {-8: "ocp", -7: "hw"}.get(offset)
    if convention:
        configure(mx_convention=convention)
        _fired["mx-convention"] = HARNESS_DEFECTS["mx-convention"] + f" (here: {convention})"
    return convention


#: the ledger this run appends to (``run(results=...)``), its id
_LEDGER = {"path": os.environ.get(ledger.LEDGER_ENV) or None, "run": ledger.run_id()}


def pytest_sessionstart(session):
    _patch_harness()
    choose_mx_convention()
    if _LEDGER["path"]:
        from ... import __version__
        from ...config import describe

        here = os.path.dirname(os.path.abspath(__file__))
        emulator = ledger.checkout_commit(here)
        ledger.append(_LEDGER["path"], {
            "run": _LEDGER["run"], "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "emulator": __version__ + (f"+{emulator[:12]}" if emulator else ""),
            "checkout": ledger.checkout_commit(str(session.config.rootpath)),
            "args": list(session.config.invocation_params.args), "shard": os.environ.get(ledger.SHARD_ENV) or None,
            "settings": {r["name"]: str(r["value"]) for r in describe() if r["value"] != r["default"]}})


def pytest_collection_finish(session):
    _patch_harness()
    for item in session.items:
        summary.RECORD.families[summary.family_of(item.nodeid)].collected += 1


def _scratch_dirs() -> list[str]:
    return [d for d in os.environ.get(SCRATCH_ENV, "").split(os.pathsep) if d]


#: entries of the scratch directories before the case running now (deleted if new after it)
_BEFORE: dict[str, set] = {}


def _clean_scratch() -> None:
    """Delete the directories the case just finished made in the run's own scratch directories (the harness's dumps
    of its inputs and outputs, one directory per case, GBs over a family's run); files, and what was there before
    the case, stay."""
    for d in _scratch_dirs():
        if d not in _BEFORE or not os.path.isdir(d):
            continue
        for name in set(os.listdir(d)) - _BEFORE[d]:
            path = os.path.join(d, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)


def pytest_runtest_setup(item):
    for d in _scratch_dirs():
        _BEFORE[d] = set(os.listdir(d)) if os.path.isdir(d) else set()
    _patch_harness()
    summary.RECORD.note_miss(None)
    summary.RECORD.current = item.nodeid
    if _LEDGER["path"]:
        ledger.append(_LEDGER["path"], {"case": item.nodeid, "run": _LEDGER["run"], "outcome": "started"})


#: markers of cases that need the Neuron compiler or hardware whatever --test-mode says (markers take precedence)
COMPILER_MARKERS = ("trace_only", "compile_only", "compile_and_infer")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    keep = _select(items)
    if len(keep) < len(items):
        kept = set(map(id, keep))
        config.hook.pytest_deselected(items=[item for item in items if id(item) not in kept])
        items[:] = keep
    for item in items:
        marker = next((m for m in COMPILER_MARKERS if item.get_closest_marker(m)), None)
        if marker:
            item.add_marker(pytest.mark.skip(reason=f"trn3emu: @{marker} case needs the Neuron compiler (MLIR "
                                                    "tracer / neuronx-cc), which the emulator does not provide"))
            summary.RECORD.compiler_only += 1


def _select(items: list) -> list:
    """The collected cases this run takes: its shard (``--shard K/N``, of the whole collection, so that the shards of
    a suite stay the same from run to run), less those the ledger has an outcome for (``--resume``)."""
    shard = os.environ.get(ledger.SHARD_ENV)
    if shard:
        k, n = ledger.parse_shard(shard)
        items = [item for i, item in enumerate(items) if ledger.in_shard(i, k, n)]
        summary.RECORD.notes.append(f"shard {k}/{n}: {len(items)} of the collected cases")
    resume = os.environ.get(ledger.RESUME_ENV)
    if resume in ("1", "failed") and _LEDGER["path"] and os.path.exists(_LEDGER["path"]):
        known = ledger.read(_LEDGER["path"])
        left = [item for item in items if not ledger.skip_on_resume(known.get(item.nodeid), resume == "failed")]
        given_up = sum(1 for item in items if known.get(item.nodeid) is not None
                       and known[item.nodeid].outcome == "stopped" and ledger.skip_on_resume(known[item.nodeid]))
        kept = "an outcome" if resume == "1" else "an outcome other than a failure"
        summary.RECORD.notes.append(
            f"resumed from {_LEDGER['path']}: {len(items) - len(left)} of the selected cases already have {kept} "
            f"there and were not run" + (f" ({given_up} of them stopped two runs: left as 'stopped')" if given_up
                                         else ""))
        items = left
    return items


def pytest_collectreport(report):
    if report.failed:
        summary.RECORD.add_collect_error(report)


def pytest_runtest_logreport(report):
    summary.RECORD.add(report)
    if report.when == "teardown":
        # pytest keeps a failed case's exception in sys.last_* (for post-mortem debugging), and with it the frames of
        # the kernel and the harness: their arrays (GBs in the sweeps) would stay alive until the next failure
        for name in ("last_type", "last_value", "last_traceback", "last_exc"):
            if getattr(sys, name, None) is not None:
                setattr(sys, name, None)
    if report.when == "teardown":
        _clean_scratch()
    if report.when == "teardown" and _LEDGER["path"]:
        outcome, cls, seconds = summary.RECORD.outcome(report.nodeid)
        ledger.append(_LEDGER["path"], {"case": report.nodeid, "run": _LEDGER["run"], "outcome": outcome or "failed",
                                        "class": cls, "seconds": round(seconds, 2)})
    path = os.environ.get("TRN3EMU_NKILIB_SUMMARY")
    if path and report.when == "teardown":  # kept current, so a run stopped from outside still leaves its numbers
        summary.RECORD.dump(path, _worked_around())


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    from ...config import get_settings

    s = get_settings()
    text = summary.RECORD.render(_worked_around()) + (
        f"\nemulator settings in force: mx_convention={s.mx_convention} (the checkout's quantize_mx golden decides "
        f"unless TRN3EMU_MX_CONVENTION is set), saturate={s.saturate} (NEURON_RT_ENABLE_OCP_SATURATION), "
        f"output_unwritten={s.output_unwritten} (TRN3EMU_OUTPUT_UNWRITTEN; zero unless set), "
        f"rounding={s.rounding}, uninitialized={s.uninitialized}, uninitialized_copies={s.uninitialized_copies}, "
        f"onchip_lifetime={s.onchip_lifetime}, lnc_schedule={s.lnc_schedule}")
    terminalreporter.write_line("")
    for line in text.splitlines():
        terminalreporter.write_line(line)
    path = os.environ.get("TRN3EMU_NKILIB_SUMMARY")
    if path:
        summary.RECORD.dump(path, _worked_around())


def dump_miss(directory: str, nodeid: str, got, want, rtol, atol) -> str:
    """Write one failed comparison to ``directory/<case>-<n>.npz`` (arrays ``got``, ``want``, ``rtol``, ``atol``);
    returns the path. ``<case>`` is the test id with every character outside [A-Za-z0-9_.-] replaced by '_'."""
    os.makedirs(directory, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", nodeid.split("::", 1)[-1])[:180] or "case"
    n = 0
    while os.path.exists(os.path.join(directory, f"{stem}-{n}.npz")):
        n += 1
    path = os.path.join(directory, f"{stem}-{n}.npz")
    tol = {k: np.float64(np.nan if v is None else v) for k, v in (("rtol", rtol), ("atol", atol))}
    np.savez_compressed(path, got=np.asarray(got), want=np.asarray(want), **tol)
    return path
