"""Faster stand-ins, with identical results, for pure-Python loops of nki-library's harness that dominate a run.

``generate_stabilized_mx_data`` (``test/integration/nkilib/utils/tensor_generators.py``) makes the MX weights of
the mlp, moe, moe_block, qkv and output-projection tests: random data in a format's range, and in every 8 x 4 scaling
group one element forced to the format's largest exponent, chosen by four calls on NumPy's global legacy generator
per group (``randint(0, 7)`` and ``randint(0, 3)`` for the position, ``choice([-1, 1])`` for the sign,
``random()`` for the mantissa). A moe_block case draws 14 million groups that way: on a 2-core machine about 8 of its 9 minutes
(cProfile), against under a minute in the kernel on the emulator.

:func:`stabilized_mx_data` does the same work with the same numbers: it reads the raw 32-bit words of the same
generator in bulk, parses them as those four calls consume them (``randint(0, n)``: the low bits of one word under
the mask of n - 1, drawing again while they are n or more; ``choice`` of two: the low bit of one word; ``random()``:
two words, 53 bits), and
leaves the generator's state exactly where the loop would have left it (NumPy keeps the legacy ``RandomState``
stream fixed across versions, NEP 19). Everything else (the format's range, the host cast, the scales, the
dequantisation) calls the harness's own helpers. The replacement is installed only for the function as published
(:data:`PUBLISHED`: the SHA-256 of its source), where it is named in the run's summary (adaptation
``fast-mx-data``); any other version of the harness runs its own code. ``TRN3EMU_NKILIB_HARNESS_SPEEDUPS=0`` turns it
off.
"""

from __future__ import annotations

import hashlib
import inspect

import numpy as np

from ..._jit import dispatch, njit

__all__ = ["legacy_group_draws", "stabilized_mx_data", "source_digest", "PUBLISHED", "SPEEDUPS_ENV"]

#: "0": run the harness's own generators
SPEEDUPS_ENV = "TRN3EMU_NKILIB_HARNESS_SPEEDUPS"

#: SHA-256 of ``inspect.getsource(generate_stabilized_mx_data)`` at the nki-library commits the replacement was
#: checked against (bit-identical arrays and generator state; docs/nkilib.md)
PUBLISHED = {
    "d2ad3a5": "e3fcf5168f4b46316a9fe08cff7f426fec0e105ea52919b1854974cf58919ba6",
}

_GROUP_H, _GROUP_W = 8, 4  # the harness's scaling group: 8 rows x 4 columns
# the harness draws an offset in the group by randint(0, 8 - 1) (0..6: masked with 7, a 7 drawn again) and
# randint(0, 4 - 1) (0..2: masked with 3, a 3 drawn again)
_MASK_I, _TOP_I = 7, _GROUP_H - 2
_MASK_J, _TOP_J = 3, _GROUP_W - 2


def _parse_numpy(words, groups, pos_i, pos_j, sign, hi, lo):
    """The NumPy twin of :func:`_parse_numba` (a loop over groups; for tests and Numba-less installs)."""
    k, n = 0, len(words)
    for g in range(groups):
        for out, mask, top in ((pos_i, _MASK_I, _TOP_I), (pos_j, _MASK_J, _TOP_J)):
            while k < n and (int(words[k]) & mask) > top:
                k += 1
            if k >= n:
                return -1
            out[g] = int(words[k]) & mask
            k += 1
        if k + 3 > n:
            return -1
        sign[g] = int(words[k]) & 1
        hi[g] = int(words[k + 1]) >> 5
        lo[g] = int(words[k + 2]) >> 6
        k += 3
    return k


@njit
def _parse_numba(words, groups, pos_i, pos_j, sign, hi, lo):
    """Parse raw generator words as the per-group calls consume them; returns the words used (-1: too few)."""
    k, n = 0, len(words)
    for g in range(groups):
        while k < n and (words[k] & _MASK_I) > _TOP_I:
            k += 1
        if k >= n:
            return -1
        pos_i[g] = words[k] & _MASK_I
        k += 1
        while k < n and (words[k] & _MASK_J) > _TOP_J:
            k += 1
        if k + 4 > n:
            return -1
        pos_j[g] = words[k] & _MASK_J
        sign[g] = words[k + 1] & 1
        hi[g] = words[k + 2] >> 5
        lo[g] = words[k + 3] >> 6
        k += 4
    return k


_parse = dispatch(_parse_numba, _parse_numpy)


def _raw_words(n: int) -> np.ndarray:
    """The next ``n`` raw 32-bit words of NumPy's global legacy generator (a full-range draw is one word each)."""
    return np.random.randint(0, 2 ** 32, size=n, dtype=np.uint32)


def legacy_group_draws(groups: int):
    """For ``groups`` groups in order, what ``np.random.randint(0, 7)``, ``np.random.randint(0, 3)``,
    ``np.random.choice([-1, 1])`` and ``np.random.random()`` called in turn per group return: (row offsets, column
    offsets, signs as -1 / 1, uniform floats), from NumPy's global generator, whose state is left where those calls
    would leave it."""
    start = np.random.get_state()
    pos_i = np.empty(groups, np.int64)
    pos_j = np.empty(groups, np.int64)
    sign = np.empty(groups, np.int64)
    hi = np.empty(groups, np.int64)
    lo = np.empty(groups, np.int64)
    n = groups * 6 + 64  # 5 words per group, and a draw again one time in eight (row) or four (column)
    while True:
        used = _parse(_raw_words(n), groups, pos_i, pos_j, sign, hi, lo)
        np.random.set_state(start)
        if used >= 0:
            break
        n *= 2
    _raw_words(used)  # advance the generator by exactly the words the calls would have taken
    uniform = (hi * 67108864.0 + lo) / 9007199254740992.0  # the legacy generator's 53-bit double
    return pos_i, pos_j, np.where(sign == 1, 1, -1), uniform


def source_digest(fn) -> str:
    """SHA-256 of a function's source text (the check that a harness function is the one as published)."""
    return hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()


def stabilized_mx_data(original):
    """A function with the signature, results and generator use of the harness's ``generate_stabilized_mx_data``
    (``original``, whose helpers it calls: ``get_mx_fp_max``, ``get_mx_max_exp``, ``static_cast``,
    ``NL_TO_DT_DTYPE``, ``dequantize_mx_golden``), without its loop over groups."""
    names = original.__globals__

    def generate_stabilized_mx_data(mx_dtype, shape, val_range=1.0):
        if val_range == 0 or len(shape) != 2 or shape[0] % _GROUP_H or shape[1] % _GROUP_W:
            return original(mx_dtype, shape, val_range)  # the harness's own path (and its assertion messages)
        max_val = names["get_mx_fp_max"](mx_dtype)
        max_exp = names["get_mx_max_exp"](mx_dtype)
        data = (np.random.random(shape) * 2 - 1) * max_val
        rows, cols = shape[0] // _GROUP_H, shape[1] // _GROUP_W
        pos_i, pos_j, sign, uniform = legacy_group_draws(rows * cols)
        r = (np.arange(rows) * _GROUP_H).repeat(cols) + pos_i
        c = np.tile(np.arange(cols) * _GROUP_W, rows) + pos_j
        # one element per group at the largest exponent: sign * (1 + u / 2) * 2^max_exp, in the loop's float64 order
        data[r, c] = sign * (1.0 + uniform * 0.5) * (2 ** max_exp)
        codes = names["static_cast"](data.astype(np.float32), names["NL_TO_DT_DTYPE"].get(mx_dtype, mx_dtype))
        upper = min(255, int(np.log2(val_range / max_val) + 127))
        lower = max(0, upper - 10)
        scales = np.random.randint(lower, upper + 1, size=(rows, cols), dtype=np.uint8)
        return names["dequantize_mx_golden"](codes, scales), codes, scales

    generate_stabilized_mx_data.__wrapped__ = original
    generate_stabilized_mx_data._trn3emu = True
    return generate_stabilized_mx_data


_made: dict[int, tuple] = {}  # id(original) -> (original, its source digest or None, its replacement)


def _replacement(fn, digests: set):
    """The replacement of ``fn`` if its source is one of ``digests`` (made once per function), else None."""
    if _made.get(id(fn), (None,))[0] is not fn:
        try:
            digest = source_digest(fn)
        except (OSError, TypeError):  # no source to check: never replaced
            digest = None
        _made[id(fn)] = (fn, digest, stabilized_mx_data(fn))
    _, digest, fast = _made[id(fn)]
    return fast if digest in digests else None


def install(modules: dict, published=None) -> list[str]:
    """Put the replacement in place of every reference to a published ``generate_stabilized_mx_data`` among
    ``modules`` (``sys.modules``: the harness module and the test modules that imported the function by name);
    returns the names of the modules changed."""
    digests = set((PUBLISHED if published is None else published).values())
    changed = []
    for name, module in list(modules.items()):
        fn = (getattr(module, "__dict__", None) or {}).get("generate_stabilized_mx_data")  # no lazy __getattr__
        if fn is None or getattr(fn, "_trn3emu", False) or not inspect.isfunction(fn):
            continue
        fast = _replacement(fn, digests)
        if fast is not None:
            setattr(module, "generate_stabilized_mx_data", fast)
            changed.append(name)
    return changed
