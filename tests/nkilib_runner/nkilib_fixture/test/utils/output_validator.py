"""Golden comparison: maxAllClose is looked up as a module global, as in nki-library's output_validator."""
import numpy as np


def maxAllClose(a, b, rtol=1e-5, atol=1e-8):
    return bool(np.all(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
                       <= atol + rtol * np.abs(np.asarray(b, np.float64))))


def validate(outputs: dict, goldens: dict, rtol=0.0, atol=0.0) -> None:
    failed = [name for name, want in goldens.items() if not maxAllClose(outputs[name], want, rtol=rtol, atol=atol)]
    assert not failed, f"Validation failed for {failed}"
