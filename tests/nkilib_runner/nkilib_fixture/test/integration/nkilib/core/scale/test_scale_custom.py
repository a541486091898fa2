"""A custom validator that imported the comparison by name (as attention_block_tkg's cosine validator does): fails on
purpose, so that the runner must still report the worst element."""
import nki
import numpy as np

from nkilib_src.mini.scale import scale_rows
from test.utils.output_validator import maxAllClose


def test_custom_validator_golden_off_at_2_1():
    x = np.arange(4 * 8, dtype=np.float32).reshape(4, 8)
    y, _ = nki.cpu_simulate(scale_rows)[1](x=x, factor=2.0)
    golden = x.astype(np.float64) * 2.0
    golden[2, 1] += 0.5
    assert maxAllClose(y, golden, rtol=0.0, atol=0.25), "custom validation failed"
