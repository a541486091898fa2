"""The tolerance-miss description: the worst element, and how many elements (and rows) the harness's rule rejects."""

import numpy as np

from emulator.nki.nkilib import summary
from emulator.nki.nkilib.summary import worst_element  # the plugin uses it; importing the plugin installs stand-ins


def _pair():
    want = (np.arange(640.0) - 320.0).reshape(64, 10) / 128.0  # exact binary fractions; largest |want| is 2.5
    got = want.copy()
    got[18] += 0.5        # a whole row off by 0.5 (exactly): outside 0.05 * 2.5 + 1e-5 in mode max
    got[40, 3] -= 0.25    # one element of another row: outside too
    got[41, 0] += 0.0625  # inside in mode max (0.0625 < 0.125)
    return got, want


def test_worst_is_the_largest_difference_and_counts_follow_the_rule():
    got, want = _pair()
    text = worst_element(got, want, 0.05, 1e-5)
    # row 18 is off by 0.5 everywhere, the single element of row 40 by 0.25: the worst is row 18's first
    assert text.startswith("[18, 0] got "), text
    assert "rtol 0.05 atol 1e-05" in text
    assert "; 11 of 640 elements outside, in 2 of 64 rows: [18, 40]" in text, text


def test_mode_py_measures_each_element_against_its_own_golden():
    want = np.array([[100.0, 0.01], [1.0, 1.0]])
    got = np.array([[100.0, 0.02], [1.0, 1.0]])
    # mode max: 0.01 <= 1e-8 + 1e-3 * 100: inside, nothing counted; mode py: 0.01 > 1e-3 * 0.01: outside
    assert "outside" not in worst_element(got, want, 1e-3, 1e-8)
    assert worst_element(got, want, 1e-3, 1e-8, "py").endswith("; 1 of 4 elements outside, in 1 of 2 rows: [0]")


def test_one_dimensional_and_unknown_tolerance():
    want = np.zeros(5)
    got = np.array([0.0, 1.0, 0.0, 2.0, 0.0])
    assert worst_element(got, want, 0.0, 0.5).endswith("; 2 of 5 elements outside")
    assert worst_element(got, want) == "[3] got 2 want 0 (|diff| 2)"


def test_more_than_eight_rows_are_elided():
    want = np.ones((20, 3))
    got = want + np.arange(20)[:, None] * 1.0  # every row but the first off
    assert worst_element(got, want, 0.0, 0.5).endswith(
        "; 57 of 60 elements outside, in 19 of 20 rows: [1, 2, 3, 4, 5, 6, 7, 8, ...]")


def test_known_golden_disagreement_needs_the_configuration_and_a_row_confined_miss():
    r = summary.Record()
    case = ("core/moe_block/test_moe_block_tkg.py::TestMoEBlockTkgKernel::test_moe_block_kernel_model[MODEL_WIP_"
            "GENERALITY_ln-2_ae-1_ba-64_sq-1_hi-7168_ha-None_im-2048_ge-256_le-2_tk-8_rf-0_af-0_sm-1_wd-[('float8_"
            "e4m3fn_x4', '<u2'), ('float8_e4m3fn_x4_hi', '<u2')]_id-bfloat16]")
    got = np.zeros((64, 8))
    want = np.zeros((64, 8))
    want[:, 0] = 1.0
    got[:, 0] = 1.0
    got[18] = 0.5                # one token row off: 1 of 64 rows
    one_row = worst_element(got, want, 0.05, 1e-5)
    cls = r.classify("E   Validation failed", case, one_row)
    assert cls.startswith("golden disagreement (nki-library): the kernel routes"), cls
    assert cls.endswith("in 1 of 64 rows: [18]")
    # four rows of 64 (1/16) still are; five are not: a miss spread wider stays a tolerance miss
    got[[3, 5, 7]] = 0.5
    assert r.classify("E", case, worst_element(got, want, 0.05, 1e-5)).startswith("golden disagreement")
    got[9] = 0.5
    assert r.classify("E", case, worst_element(got, want, 0.05, 1e-5)).startswith("tolerance miss: ")
    # the same row-confined miss in another test file is not one
    assert r.classify("E", case.replace("test_moe_block_tkg.py", "test_moe_tkg.py"), one_row).startswith(
        "tolerance miss: ")
    # and a miss whose rows are not known (a one-dimensional output) is not one either
    assert r.classify("E", case, worst_element(np.ones(4), np.zeros(4), 0.05, 1e-5)).startswith("tolerance miss")
