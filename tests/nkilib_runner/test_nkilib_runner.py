"""The nki-library runner (emulator.nki.nkilib): stand-in modules, neuron_dtypes, failure classes, and an end-to-end
run of tests/nkilib_runner/nkilib_fixture, a miniature nki-library of our own with the real harness's interface and defects
(CI cannot reach GitHub, so the real suite is measured by hand: docs/nkilib.md)."""

from __future__ import annotations

import enum
import json
import os
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

import emulator as emu
from emulator.nki import nkilib
from emulator.nki.nkilib import neuron_dtypes as ndt
from emulator.nki.nkilib import stand_ins, summary
from emulator.numerics import formats

FIXTURE = Path(__file__).parent / "nkilib_fixture"


@pytest.fixture
def installed():
    before = set(sys.modules)
    stand_ins.install()
    yield
    stand_ins.uninstall()
    leftover = {n for n in set(sys.modules) - before if n.split(".")[0] in ("nki", "nki_cpu_simulator", "neuronxcc",
                                                                           "neuron_dtypes", "fabric2", "boto3")}
    assert not leftover, leftover


def test_stand_ins_resolve_to_the_front_end(installed):
    import nki
    import nki.isa as nisa
    import nki.language as nl
    import nki_cpu_simulator.nki.isa.constants as sim_constants
    import nki_cpu_simulator.nki.language.dtypes as sim_dtypes
    from neuronxcc.nki.typing import mutable_tensor
    from neuronxcc.starfish.support.dtype import static_cast

    from emulator.nki import language as our_nl

    assert nl is our_nl and nki.cpu_simulate is stand_ins.cpu_simulate
    assert isinstance(nisa.nc_version.gen4, enum.IntEnum) and nisa.nc_version.gen4 > 2
    for name in ("oob_mode", "dge_mode", "matmul_perf_mode"):
        assert getattr(sim_constants, name) is getattr(nisa, name)
    assert sim_dtypes.bfloat16 == nl.bfloat16 and static_cast is ndt.static_cast and mutable_tensor is not None
    x4 = {nl.float8_e4m3fn_x4: 1, nl.float8_e5m2_x4: 2, nl.float4_e2m1fn_x4: 3}  # hashable, distinct x4 dtypes
    assert len(x4) == 3 and x4[nl.float8_e5m2_x4] == 2 and nl.float8_e4m3fn_x4 != nl.float8_e5m2_x4
    # docs/nki.md: distinct from their word dtypes too; tfloat32 still equals float32 (the documented limit)
    assert nl.float8_e4m3fn_x4 != np.uint32 and nl.float4_e2m1fn_x4 != np.uint16 and nl.tfloat32 == np.float32
    assert "float8_e5m2_x4" in str(np.zeros(2, nl.float8_e5m2_x4).dtype)  # the harness tests 'x4' in str(dtype)
    assert issubclass(type("K", (nl.NKIObject,), {}), nl.NKIObject)


def test_inert_packages_only_stand_in_when_absent(installed):
    for name in stand_ins.inert_packages():
        module = __import__(name + ".exceptions", fromlist=["ClientError"])
        with pytest.raises(module.ClientError):  # usable in `except` clauses
            raise module.ClientError("x")
    assert "numpy" not in stand_ins.INERT_PACKAGES


def test_cpu_simulate_returns_numpy_tuple(installed):
    import nki
    import nki.isa as nisa
    import nki.language as nl

    def two_outputs(a):
        t = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=a)
        o1 = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        o2 = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=o1, src=t)
        nisa.tensor_tensor(dst=t, data1=t, data2=t, op=nl.multiply)
        nisa.dma_copy(dst=o2, src=t)
        return o1, o2

    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    got = nki.cpu_simulate(two_outputs)[1](a=a)
    assert isinstance(got, tuple) and all(isinstance(g, np.ndarray) for g in got)
    np.testing.assert_array_equal(got[0], a)
    np.testing.assert_array_equal(got[1], a * a)


def test_static_cast_rounds_to_nearest_even_like_ml_dtypes():
    x = np.random.default_rng(0).normal(0, 8, 4096).astype(np.float32)
    for name in ("bfloat16", "float8_e5m2"):
        want = x.astype(getattr(ml_dtypes, name))  # ml_dtypes: RNE, same overflow rule for in-range values
        got = ndt.static_cast(x, getattr(ndt, name))
        assert got.dtype == want.dtype and np.array_equal(got.view(np.uint8), want.view(np.uint8))
    small = np.clip(x, -448, 448)
    want = small.astype(ml_dtypes.float8_e4m3fn)
    assert np.array_equal(ndt.static_cast(small, ndt.float8_e4m3fn).view(np.uint8), want.view(np.uint8))


def test_static_cast_x4_packs_last_axis_little_end_first():
    values = np.array([[1.0, -2.0, 0.5, 448.0, 0.0, 3.0, -0.25, 6.0]], np.float32)
    codes = values.astype(ml_dtypes.float8_e4m3fn).view(np.uint8).astype(np.uint32)
    words = ndt.static_cast(values, ndt.float8_e4m3fn_x4)
    want = [int(sum(int(codes[0, 4 * j + q]) << (8 * q) for q in range(4))) for j in range(2)]
    assert words.shape == (1, 2) and words.view(np.uint32).ravel().tolist() == want
    assert ndt.static_cast(words, np.float32).tolist() == values.tolist()  # all representable: exact round trip
    fp4 = np.array([[0.5, 1.0, -6.0, 3.0]], np.float32)
    nibbles = [int(c) for c in fp4.astype(ml_dtypes.float4_e2m1fn).view(np.uint8).ravel()]
    assert int(ndt.static_cast(fp4, ndt.float4_e2m1fn_x4).view(np.uint16)[0, 0]) == sum(
        n << (4 * q) for q, n in enumerate(nibbles))
    with pytest.raises(Exception, match="multiple of 4"):
        ndt.static_cast(np.ones((2, 3), np.float32), ndt.float8_e5m2_x4)


def test_dtype_queries():
    assert ndt.is_float_type(ndt.float4_e2m1fn_x4) and ndt.is_float_type(np.float16)
    assert not ndt.is_float_type(np.int8) and not ndt.is_float_type(np.uint32)
    assert ndt.sizeinbytes(ndt.float4_e2m1fn_x4) == 2 and ndt.sizeinbytes(np.float32) == 4
    assert float(ndt.finfo(ndt.float8_e4m3fn).max) == formats.get("float8_e4m3fn").max_finite == 448


@pytest.mark.parametrize("text,cls", [
    ("E   AttributeError: module 'emulator.nki.isa' has no attribute 'quantize_mx'", "unsupported API: nisa.quantize_mx"),
    ("E   emulator.errors.ShapeError: nc_matmul: stationary has 129 partitions", "our error: ShapeError: nc_matmul: "
                                                                                "stationary has 129 partitions"),
    ("E   emulator.errors.CapacityError: SBUF: no room", "capacity (emulator check): SBUF: no room"),
    ("E   AssertionError: [NCC_INKI016] Kernel validation exception: H too big", "kernel_assert: H too big"),
    ("E   KeyError: 'foo'", "other: KeyError: 'foo'"),
    ("E   numpy._core._exceptions._ArrayMemoryError: Unable to allocate 2.00 GiB for an array with shape (8, 1, "
     "1048576, 64) and data type float32", "out of memory: Unable to allocate 2.00 GiB for an array with shape (8, "
     "1, 1048576, 64) and data type float32"),
    ("E   test.utils.exceptions.InferenceException: [enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: "
     "can't allocate memory: you tried to allocate 1073741824 bytes.", "out of memory: [enforce fail at "
     "alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you tried to allocate 1073741824 bytes."),
    ("E   emulator.errors.ShapeError: sbuf9.ap: pattern [(3072, 128), (12, 128)] at offset 1548 reaches element "
     "393216; the tensor holds 393216 bfloat16 elements from its start",
     "out-of-tile access (emulator check): sbuf9.ap: pattern [(3072, 128), (12, 128)] at offset 1548 reaches element "
     "393216; the tensor holds 393216 bfloat16 elements from its start"),
    ("E   emulator.errors.EmulatorError: nisa.nc_n_gather: this emulator build does not implement the instruction yet",
     "unsupported API: nisa.nc_n_gather"),
    ("E   ModuleNotFoundError: No module named 'nki.compiler.frontend'", "unsupported API: module nki.compiler.frontend"),
    ("E   TypeError: Cannot cast array data from dtype([('float8_e4m3fn_x4', '<u2'), ('float8_e4m3fn_x4_hi', '<u2')]) "
     "to dtype('float32') according to the rule 'unsafe'",
     "x4 output cast (emulator dtype limit): the harness converts a float8_e4m3fn_x4 output with "
     "np.asarray(..., dtype=<golden dtype>), which NumPy refuses for the emulator's x4 dtypes"),
])
def test_failure_classes(text, cls):
    assert summary.Record().classify(text, "x/test_a.py::t", None) == cls


def test_known_source_defect_and_family():
    r = summary.Record()
    assert r.classify("E   NameError: name 'q' is not defined", "core/qkv/test_qkv_tkg.py::t", None).startswith(
        "harness/source defect")
    # the defect is named only with its own error: another failure in the same file is classified as usual
    gen_mask = "core/attention/test_gen_mask_tkg.py::TestGenMaskTkg::t[b-1]"
    assert r.classify("E   KeyError: 'mask_out_hbm'", gen_mask, None).startswith(
        "harness/source defect: test_gen_mask_tkg.py:422")
    assert r.classify("E   KeyError: 'other'", gen_mask, None) == "other: KeyError: 'other'"
    assert r.classify("E   NameError: x", gen_mask, None) == "other: NameError: x"
    remainder = ("E   TypeError: MLPTKGConstantsDimensionSizes.__init__() missing 1 required positional argument: "
                 "'remainderIFused'")
    for family in ("core/moe/moe_tkg/test_moe_tkg.py", "core/moe_block/test_moe_block_tkg.py",
                   "experimental/transformer/test_transformer_tkg.py"):  # every path into mlp_tkg's constants
        cls = r.classify(remainder, f"integration/nkilib/{family}::t[x]", None)
        assert cls.startswith("harness/source defect: core/mlp/mlp_tkg/mlp_tkg_constants.py:225")
        assert cls.endswith("(--fix-source-defects fixes it in memory)")  # the way out is named
    assert r.classify("E   TypeError: f() missing 1 required positional argument: 'x'", "core/moe_block/t.py::t",
                      None) == "other: TypeError: f() missing 1 required positional argument: 'x'"
    # the bias read of the MX gate/up projection, named by its place in the traceback; the same error elsewhere is not
    bias = ("E       AttributeError: 'NoneType' object has no attribute 'dtype'\n"
            "src/nkilib_src/nkilib/core/mlp/mlp_tkg/gate_up_projection_mx_shard_H.py:325: AttributeError")
    assert r.classify(bias, "core/moe_block/test_moe_block_tkg.py::t[x]", None).startswith(
        "harness/source defect: core/mlp/mlp_tkg/gate_up_projection_mx_shard_H.py:325")
    assert r.classify(bias.replace(":325:", ":326:"), "core/moe_block/test_moe_block_tkg.py::t[x]", None) == \
        "other: AttributeError: 'NoneType' object has no attribute 'dtype'"
    # multi-rank cases run on virtual ranks now (adaptation multi-rank): a collective's failure is the emulator's
    coll = "integration/nkilib/experimental/collectives/test_collectives.py::TestCollectives::t[2ranks_lnc1]"
    assert r.classify("E   emulator.errors.RankFailure: all_to_all #0: rank 2 did not arrive within 30 s", coll,
                      None).startswith("our error: RankFailure")
    assert summary.family_of("integration/nkilib/core/embeddings/test_rope_hf.py::test_x[a]") == \
        "core/embeddings/rope_hf"


def test_cli_options_may_follow_pytest_args():
    from emulator.cli import build_parser
    from emulator.nki.nkilib.cli import _own_options

    args = build_parser().parse_args(["nkilib", "/x", "-k", "rope", "--summary-json", "s.json", "--all-shapes",
                                      "--fix-source-defects"])
    assert _own_options(args) == ["-k", "rope"] and args.summary_json == "s.json" and args.all_shapes
    assert args.fix_source_defects
    env = nkilib.child_env("/x", all_shapes=True, fix_source_defects=True)
    assert env[nkilib.RUN_ALL_ENV] == "1" and env["PYTHONPATH"].split(os.pathsep)[1:3] == ["/x/src", "/x"]
    assert env["TRN3EMU_NKILIB_FIX_SOURCE"] == "1" and "TRN3EMU_NKILIB_FIX_SOURCE" not in nkilib.child_env("/x")


@pytest.mark.parametrize("caller,child", [
    ({}, {"NEURON_RT_ENABLE_OCP_SATURATION": "1"}),  # the harness's hardware environment
    ({"NEURON_RT_ENABLE_OCP_SATURATION": "0"}, {"NEURON_RT_ENABLE_OCP_SATURATION": "0"}),
    ({"TRN3EMU_SATURATE": "off"}, {"TRN3EMU_SATURATE": "off", "NEURON_RT_ENABLE_OCP_SATURATION": None}),
])
def test_child_saturates_unless_the_caller_chose(monkeypatch, caller, child):
    for name in ("NEURON_RT_ENABLE_OCP_SATURATION", "TRN3EMU_SATURATE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in caller.items():
        monkeypatch.setenv(name, value)
    env = nkilib.child_env("/x")
    assert {name: env.get(name) for name in child} == child


def test_child_reads_never_written_outputs_as_zero_unless_the_caller_chose(monkeypatch):
    monkeypatch.delenv("TRN3EMU_OUTPUT_UNWRITTEN", raising=False)
    assert nkilib.child_env("/x")["TRN3EMU_OUTPUT_UNWRITTEN"] == "zero"
    monkeypatch.setenv("TRN3EMU_OUTPUT_UNWRITTEN", "nan")
    assert nkilib.child_env("/x")["TRN3EMU_OUTPUT_UNWRITTEN"] == "nan"


def _tree(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_runner_end_to_end_on_the_mini_harness(tmp_path):
    before = _tree(FIXTURE)
    out = tmp_path / "new" / "summary.json"  # a directory not made yet: the runner makes it
    misses = tmp_path / "misses"
    rc = nkilib.run(str(FIXTURE), ["-q", "-p", "no:doctest"], summary_json=str(out), timeout=600,
                    dump_misses=str(misses))
    assert rc == 1  # the one case that fails on purpose
    data = json.loads(out.read_text())
    fam, custom, coll = sorted(data["families"], key=lambda f: f["family"])
    # a comparison imported by name into the test module still leaves its worst element
    assert (custom["family"], custom["failed"], custom["classes"]) == ("core/scale/scale_custom", 1,
                                                                       {"tolerance miss": 1}), custom
    assert next(iter(custom["examples"])).startswith("tolerance miss: [2, 1] got 34 want 34.5"), custom
    # the multi-rank cases (per-rank inputs, LNC=2 ranks, shared inputs) run on virtual ranks and pass
    assert coll["family"] == "experimental/collectives/gather"
    assert (coll["collected"], coll["passed"], coll["failed"]) == (3, 3, 0), coll
    assert fam["family"] == "core/scale/scale"
    assert (fam["collected"], fam["passed"], fam["failed"], fam["skipped"]) == (9, 8, 1, 0)
    assert fam["classes"] == {"tolerance miss": 1}
    (cls,) = fam["examples"]
    assert cls.startswith("tolerance miss: [3, 5] ") and "want" in cls
    assert {"missing-perf-analysis", "compiled-kernel-unset", "output-dir", "xdist-hooks",
            "x4-dtype-names", "x4-output-bits", "multi-rank", "mx-convention"} <= set(data["defects"])
    assert data["defects"]["mx-convention"].endswith("(here: ocp)")
    # every failed comparison left its arrays: the off-by-one golden differs at [3, 5] only
    dumped = sorted(p.name for p in misses.iterdir())
    assert dumped == ["test_custom_validator_golden_off_at_2_1-0.npz", "test_scale_rows_golden_off_by_one-0.npz"]
    with np.load(misses / dumped[1]) as z:
        assert np.argwhere(z["got"] != z["want"]).tolist() == [[3, 5]] and float(z["atol"]) == 0.0
    assert _tree(FIXTURE) == before  # nothing in the checkout was written
    with pytest.raises(Exception, match="not an nki-library checkout"):
        nkilib.run(str(tmp_path))


def test_a_failed_case_leaves_no_traceback_behind(monkeypatch):
    # pytest keeps a failed case's exception in sys.last_* for post-mortem debugging; with it the kernel's frames
    # and arrays would live until the next failure (a sweep case's GBs): the plugin lets them go after teardown
    import sys
    import types

    from emulator.nki.nkilib import plugin  # importing it installs the stand-ins: taken out again below

    monkeypatch.delenv("TRN3EMU_NKILIB_SUMMARY", raising=False)
    try:
        raise RuntimeError("a kernel's failure")
    except RuntimeError as exc:
        monkeypatch.setattr(sys, "last_value", exc, raising=False)
        monkeypatch.setattr(sys, "last_traceback", exc.__traceback__, raising=False)
    report = types.SimpleNamespace(nodeid="test/integration/nkilib/core/x/test_x.py::t", when="teardown",
                                   duration=0.0, passed=True, failed=False, skipped=False)
    try:
        plugin.pytest_runtest_logreport(report)
    finally:
        stand_ins.uninstall()
    assert sys.last_value is None and sys.last_traceback is None


@pytest.mark.parametrize("shift,want", [(7, "hw"), (8, "ocp"), (6, None)])
def test_mx_convention_follows_the_checkouts_golden(monkeypatch, shift, want):
    import sys
    import types

    from emulator.nki.nkilib import plugin

    def golden(x, dtype):  # the shared exponent of one 8x4 group: its largest exponent minus `shift`
        e = int(np.max(np.asarray(x, np.float32).view(np.uint32) >> 23 & 0xFF))
        return None, np.array([[e - shift]], np.uint8)

    monkeypatch.setitem(sys.modules, "test.utils.mx_utils", types.SimpleNamespace(quantize_mx_golden=golden))
    monkeypatch.delenv("TRN3EMU_MX_CONVENTION", raising=False)
    before = emu.get_settings().mx_convention
    other = "ocp" if want == "hw" else "hw"  # set first: the answer must change the setting
    try:
        emu.configure(mx_convention=other)
        assert plugin.choose_mx_convention() == want
        assert emu.get_settings().mx_convention == (want or other)
        monkeypatch.setenv("TRN3EMU_MX_CONVENTION", "hw")  # the user's choice stands
        assert plugin.choose_mx_convention() is None
    finally:
        emu.configure(mx_convention=before)
        stand_ins.uninstall()
