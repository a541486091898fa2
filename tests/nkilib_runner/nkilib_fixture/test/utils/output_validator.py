"""Golden comparison: maxAllClose is looked up as a module global, as in nki-library's output_validator; packed x4
outputs follow its flow: ``astype(np.float32)`` first, and on TypeError (Neuron's x4 dtypes) the unpacker found by
``str(dtype)`` in ``_X4_UNPACKERS``, else a raw byte comparison. ``PATHS`` records which way each output went."""
import numpy as np

PATHS: list = []


def _unpack_e4m3fn_x4(packed):
    """float8_e4m3fn_x4 words [P, F] -> float32 [P, 4F], little end first, by the code's fields (NaN for 0x7F)."""
    codes = packed.view(np.uint32)[..., None] >> np.array([0, 8, 16, 24], np.uint32) & 0xFF
    codes = codes.reshape(packed.shape[:-1] + (packed.shape[-1] * 4,)).astype(np.int64)
    e, m = (codes >> 3) & 0xF, codes & 7
    mag = np.where(e == 0, m / 8.0 * 2.0 ** -6, (1 + m / 8.0) * 2.0 ** (e - 7.0))
    mag = np.where((codes & 0x7F) == 0x7F, np.nan, mag)
    return np.where(codes >> 7 == 1, -mag, mag).astype(np.float32)


_X4_UNPACKERS = {"float8_e4m3fn_x4": _unpack_e4m3fn_x4}


def maxAllClose(a, b, rtol=1e-5, atol=1e-8):
    return bool(np.all(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
                       <= atol + rtol * np.abs(np.asarray(b, np.float64))))


def _matches(got, want, rtol, atol) -> bool:
    try:
        got, want = got.astype(np.float32), want.astype(np.float32)
        PATHS.append("numbers")
    except TypeError:
        unpack = _X4_UNPACKERS.get(str(got.dtype))
        if unpack is None:
            PATHS.append("raw bytes")
            return bool(np.array_equal(got.view(np.uint8), want.view(np.uint8)))
        got, want = unpack(got), unpack(want)
        PATHS.append("unpacked")
    return maxAllClose(got, want, rtol=rtol, atol=atol)


def validate(outputs: dict, goldens: dict, rtol=0.0, atol=0.0) -> None:
    failed = [name for name, want in goldens.items() if not _matches(outputs[name], want, rtol, atol)]
    assert not failed, f"Validation failed for {failed}"
