"""The declared settings: every modelling choice of the emulator lives here, and only here.

One frozen dataclass, :class:`Settings`, holds every choice the hardware documentation leaves open (see
``docs/numerics.md`` for the source or reason behind each default). The active value comes from, in order:

1. the innermost ``with emu.settings(name=value, ...):`` block of the current thread (a ``ContextVar``: a block in
   one thread never shows in another; threads the emulator starts inherit their creator's block);
2. ``emu.configure(name=value)`` (process-wide);
3. the environment variable ``TRN3EMU_<NAME>`` (and, for stochastic rounding and fp8 saturation, the Neuron
   runtime's own ``NEURON_RT_STOCHASTIC_ROUNDING_EN`` / ``NEURON_RT_STOCHASTIC_ROUNDING_SEED`` /
   ``NEURON_RT_ENABLE_OCP_SATURATION``; ``TRN3EMU_<NAME>`` wins where both are set), read at import time;
4. the default written below.

Functions take explicit keyword overrides (``rounding=``, ``saturate=``, ...) and otherwise read
:func:`get_settings`. ``trn3emu info`` prints every field with its value and its one-line meaning.

Example
-------
>>> import emulator as emu
>>> with emu.settings(rounding="sr", seed=3):
...     emu.get_settings().rounding
'sr'
>>> emu.get_settings().rounding
'rne'
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from .args import (
    check_bool, check_int, check_number, check_seed, check_str, parse_bool, parse_int, parse_number,
)
from .errors import ArgumentError, ArgumentTypeError, EmulatorError, SettingsError

__all__ = [
    "Settings", "get_settings", "settings", "configure", "describe", "env_name", "parse_value", "parse_settings",
    "run_in_context",
]


def _setting(default: Any, doc: str, *, area: str, choices: tuple | None = None, env: tuple[str, ...] = ()) -> Any:
    """Declare one setting: its default, a one-line meaning, its area and (optionally) the allowed choices."""
    return field(default=default, metadata={"doc": doc, "area": area, "choices": choices, "env": env})


@dataclass(frozen=True)
class Settings:
    """Every declared modelling choice, with its default. Read with :func:`get_settings`."""

    # ---- execution ---------------------------------------------------------------------------------------------
    numba: bool = _setting(
        True,
        "use the Numba kernels for hot loops (False: the pure NumPy twins; env TRN3EMU_DISABLE_NUMBA=1 also turns "
        "them off); results are bit-identical either way",
        area="execution",
    )
    target: str = _setting(
        "trn3", "the NeuronCore generation modelled (limits and dtypes follow it)", area="execution",
        choices=("trn3",),
    )
    lnc_schedule: str = _setting(
        "lockstep",
        "order of the programs of a multi-program launch (kernel[2], SPMD grids): lockstep = they take turns in "
        "rank order, one DMA each (both cores start together; compute between DMAs touches only the core's own "
        "SBUF/PSUM; a program waiting in a barrier, sendrecv or collective gives up its turns), so results are the "
        "same on every run; free = unordered OS threads",
        area="execution", choices=("lockstep", "free"),
    )
    lnc_collectives: str = _setting(
        "per_core",
        "nki.collectives in a multi-rank run (run_spmd, trn3emu nkilib's multi-rank cases) whose ranks launch the "
        "kernel on several cores (LNC=2): per_core = program p of each rank takes part with the other ranks' "
        "program p, so each core runs its own collective among the ranks (a program that calls none takes no "
        "part); refuse = raise UsageError",
        area="execution", choices=("per_core", "refuse"),
    )

    # ---- casts (fp32/fp64 -> narrow) ---------------------------------------------------------------------------
    rounding: str = _setting(
        "rne",
        "rounding of every fp32->narrow write: rne (IEEE nearest-even, the hardware default), rtz (toward zero), "
        "sr (stochastic; NEURON_RT_STOCHASTIC_ROUNDING_EN=1 selects it)",
        area="casts", choices=("rne", "rtz", "sr"),
    )
    saturate: bool = _setting(
        False,
        "overflow on a narrowing cast: False = IEEE (inf where the format has one, NaN for e4m3fn, e2m1 clamps), "
        "True = clamp finite overflow and inf to +-max finite (NaN stays NaN); NEURON_RT_ENABLE_OCP_SATURATION=1 "
        "selects True",
        area="casts",
    )
    wide_input: str = _setting(
        "exact",
        "float64 input to a narrow cast: exact = one rounding from the exact value (what ml_dtypes >= 0.7 does); "
        "via_fp32 = round to fp32 first (double rounding, what ml_dtypes <= 0.6 and torch do)",
        area="casts", choices=("exact", "via_fp32"),
    )
    fp4_nan: str = _setting(
        "ml_dtypes",
        "NaN cast to float4_e2m1fn (no NaN code): ml_dtypes = its quirk (+NaN -> -0, -NaN -> +0), zero = signed "
        "zero of the NaN's sign, raise = ValueError",
        area="casts", choices=("ml_dtypes", "zero", "raise"),
    )
    e8m0_rounding: str = _setting(
        "nearest_up",
        "rounding of a value to float8_e8m0fnu under rne: nearest_up = nearest power of two, ties (1.5*2^k) up "
        "(ml_dtypes, torch); nearest_even = nearest, ties to the even code (gfloat); ml_dtypes_0.6 = nearest_up, "
        "except every value strictly between 2^-127 and 2^-126 goes up to 2^-126 (ml_dtypes 0.6's subnormal quirk)",
        area="casts", choices=("nearest_up", "nearest_even", "ml_dtypes_0.6"),
    )
    denormals: str = _setting(
        "keep",
        "subnormal values on engine inputs/outputs and in accumulators: keep (gradual underflow) or ftz "
        "(flush to signed zero)",
        area="casts", choices=("keep", "ftz"),
    )

    # ---- stochastic rounding and random numbers ----------------------------------------------------------------
    seed: int = _setting(
        0, "seed of the stochastic-rounding stream (NEURON_RT_STOCHASTIC_ROUNDING_SEED also sets it)", area="sr",
    )
    sr_bits: int = _setting(
        0,
        "random bits per stochastic rounding; 0 = as many as the cast drops, so P(round up) is exactly the dropped "
        "fraction",
        area="sr",
    )
    sr_scope: str = _setting(
        "engine,psum,dma,collective,mx",
        "comma-separated write paths that use stochastic rounding when rounding=sr: engine (Vector/Scalar/GpSimd "
        "outputs), psum (bf16 PSUM accumulation), dma (casting DMA), collective (reduction steps), mx (quantize_mx "
        "elements)",
        area="sr",
    )
    sr_generator: str = _setting(
        "keyed",
        "source of stochastic-rounding bits: keyed = counter-based stream hashed from (seed, site, element index), "
        "order-free; xorwow = per-lane XORWOW generators as in the NKI RNG",
        area="sr", choices=("keyed", "xorwow"),
    )

    # ---- random number generators ------------------------------------------------------------------------------
    rng_word_order: str = _setting(
        "xyzwvd",
        "order of the 6 uint32 XORWOW state words per generator in rand_set_state/rand_get_state tiles: xyzwvd = "
        "Marsaglia's x,y,z,w,v then the Weyl counter d; dxyzwv = cuRAND's curandStateXORWOW layout (d, v[0..4])",
        area="rng", choices=("xyzwvd", "dxyzwv"),
    )
    rng_vector_interleave: str = _setting(
        "round_robin",
        "how the Vector engine's 4 XORWOW generators of a lane share its elements: round_robin = element j from "
        "generator j % 4 (4 values per cycle); blocked = generator g fills the g-th quarter of the lane's elements",
        area="rng", choices=("round_robin", "blocked"),
    )
    rand_mapping: str = _setting(
        "mul24",
        "uint32 u -> fp32 in [min, max] for rand2/nl.rand: mul24 = min + fp32((u >> 8) * 2^-24) * (max - min) in "
        "fp32; mul32 = u * 2^-32 rounded to fp32 (can give 1.0); mantissa23 = (0x3F800000 | u >> 9) as fp32 - 1",
        area="rng", choices=("mul24", "mul32", "mantissa23"),
    )
    dropout_rule: str = _setting(
        "u32_lt",
        "dropout's drop test on the generator's uint32 u: u32_lt = drop iff u < round(prob * 2^32) (prob 1 drops "
        "all, 0 none); uniform_lt = drop iff the rand_mapping value in [0, 1) is < prob",
        area="rng", choices=("u32_lt", "uniform_lt"),
    )
    rng_seed_expansion: str = _setting(
        "keyed",
        "how set_rng_seed/random_seed turn one 32-bit seed into every generator's state: keyed = each word from the "
        "keyed stream (independent lanes); curand_lane_offset = cuRAND's curand_init(seed, 0, 0) state plus "
        "generator_index * 0x9E3779 added to every word (the nki-library lane decorrelation)",
        area="rng", choices=("keyed", "curand_lane_offset"),
    )

    # ---- MX micro-scaling --------------------------------------------------------------------------------------
    mx_convention: str = _setting(
        "hw",
        "MX scale: hw = 2^(floor(log2 amax) - (Emax-1)), quantize_mx from NKI 0.5.0 / Neuron 2.31 on (the ISA text; "
        "never saturates); ocp = 2^(floor(log2 amax) - Emax) with clip to max finite, quantize_mx before that "
        "release (nki-library 2026-04-13's trn3 hardware test and AWS's CPU goldens; OCP MX v1.0)",
        area="mx", choices=("hw", "ocp"),
    )
    mx_nonfinite: str = _setting(
        "nan",
        "MX group holding NaN or +-inf: nan = scale 0xFF (E8M0 NaN) and NaN data (OCP MX v1.0); propagate = scale "
        "from the finite elements only, each NaN/inf element cast on its own",
        area="mx", choices=("nan", "propagate"),
    )
    mx_scale_underflow: str = _setting(
        "clamp",
        "MX group whose scale would be below 2^-127 (tiny or subnormal amax): clamp = code 0 and the elements "
        "divided by 2^-127 (OCP practice); nki_library = code 0 stored but the elements divided by the true, "
        "smaller scale (what nki-library's quantize_to_mx does; dequantization then does not recover them)",
        area="mx", choices=("clamp", "nki_library"),
    )
    mx_scale_ff: str = _setting(
        "nan",
        "E8M0 scale code 0xFF when dequantizing: nan = the whole group is NaN (OCP); clip = 2^127 (AWS "
        "dequantize_mx_golden); inf = 2^128 in float32, i.e. +-inf and NaN for zero data (AWS nc_matmul_mx_golden)",
        area="mx", choices=("nan", "clip", "inf"),
    )
    mx_fp4_quantize_mx: str = _setting(
        "warn",
        "float4_e2m1fn output from quantize_mx, which the hardware instruction cannot produce: warn = allowed as "
        "an extension with an MXExtensionWarning; allow = silently; raise = DtypeError",
        area="mx", choices=("warn", "allow", "raise"),
    )

    # ---- scalar engine -----------------------------------------------------------------------------------------
    activation_accuracy: str = _setting(
        "exact",
        "Scalar Engine activation functions (exp, tanh, gelu, ...; the hardware's piecewise polynomials are "
        "undocumented): exact = evaluated in float64 and rounded once to fp32 (the ideal function, correctly "
        "rounded but for rare float64 double-rounding ties); float32 = NumPy's float32 routines where NumPy has one "
        "(exp, log, tanh, sqrt, sin, cos, ...: a few ulp, faster), the exact definition otherwise",
        area="scalar", choices=("exact", "float32"),
    )

    # ---- tensor engine -----------------------------------------------------------------------------------------
    accumulation: str = _setting(
        "sequential",
        "PE-array accumulation: sequential = exact products, fp32 RNE adds in k order from zero, then the PSUM add; "
        "exact = exact sum rounded once; pairwise; blocked:B",
        area="tensor",
    )
    fp32_matmul: str = _setting(
        "fp32",
        "products of fp32/tf32 matmul operands (48-bit, not exact in fp32): fp32 = each product rounded to fp32 "
        "then added; fma = fused multiply-add, one rounding per step (sequential only); tf32 = operands rounded to "
        "tf32 first (exact products); bf16x3 = bf16 hi/lo split, (lo*hi + hi*lo) + hi*hi",
        area="tensor", choices=("fp32", "fma", "tf32", "bf16x3"),
    )
    pe_nan: str = _setting(
        "canonical",
        "NaN leaving the PE array or made by the PSUM accumulation (inf + -inf): canonical = positive quiet NaN "
        "0x7FC00000 (payload and sign undocumented); ieee = whatever IEEE fp32 arithmetic on the host produced "
        "(first NaN operand's payload, quieted)",
        area="tensor", choices=("canonical", "ieee"),
    )
    mx_fp4_lut: str = _setting(
        "e2m1",
        "FP4 -> FP8 mapping of nc_matmul_mx (the v4 PE converts FP4 through a programmable table): e2m1 = the "
        "standard E2M1 values; or 16 comma-separated numbers, the value of each nibble 0..15 (each an e4m3fn value)",
        area="tensor",
    )
    uninitialized: str = _setting(
        "raise", "reading on-chip memory that was never written: raise, warn or ignore", area="memory",
        choices=("raise", "warn", "ignore"),
    )
    onchip_lifetime: str = _setting(
        "last_use",
        "when an SBUF/PSUM tile's space may be given to another tile: last_use = after its last use, as the Neuron "
        "compiler allocates by liveness (when space runs out, the least recently used tiles give theirs up; one used "
        "again is placed anew, and only if the tiles live since it gave its space up leave no room is that a "
        "CapacityError); reference = only once the kernel holds no Python reference to it (tiles kept in lists or "
        "names past their last use count as live)",
        area="memory", choices=("last_use", "reference"),
    )
    uninitialized_times_zero: str = _setting(
        "zero", "a matmul contraction row (partition) whose elements in one operand are exact zeros in every column: "
        "zero = the other operand's unwritten elements in that row, and the MX scales of its 8-partition groups, "
        "contribute +0 (the garbage taken as finite; nki-library pads the weights with zeros and leaves the "
        "activations' padding partitions unwritten); unwritten = they count as any other unwritten element "
        "(`uninitialized_copies`, `uninitialized`)", area="memory", choices=("zero", "unwritten"),
    )
    uninitialized_copies: str = _setting(
        "propagate", "moves (dma_copy, tensor_copy / tensor_tensor / tensor_scalar / sendrecv, a transpose, "
        "nc_stream_shuffle, nonzero_with_count's rows) and matmuls / quantize_mx / tensor_reduce over padded tiles "
        "(per column, per MX block, per result) of elements never written: propagate = the results of those elements stay unwritten (the check fires where they are used, or when a kernel output "
        "holding them leaves the device; kernels copy and add whole tiles of which they use a part), check = the "
        "instruction is itself a read under `uninitialized`", area="memory",
        choices=("propagate", "check"),
    )
    output_unwritten: str = _setting(
        "nan", "what the host reads for the elements of a kernel's HBM output that the kernel never wrote (NKI leaves "
        "a new HBM tensor's contents undefined): nan = they come back as the emulator fills a new tensor (NaN in float "
        "formats, 0 in integer ones), so undefined values show; zero = they come back as zero bits (`trn3emu nkilib` "
        "runs with this: nki-library's all-expert MX moe_tkg kernel scatters only the routed tokens' rows into its "
        "new output and its golden has zeros in the others)", area="memory", choices=("nan", "zero"),
    )

    # ---- collectives -------------------------------------------------------------------------------------------
    collective_algorithm: str = _setting(
        "ring", "default collective schedule", area="collectives",
        choices=("ring", "tree", "recursive_doubling", "recursive_halving", "hierarchical", "mesh", "rank_order"),
    )
    collective_timeout: float = _setting(
        30.0, "seconds a rank waits for a peer before the watchdog aborts the collective (in-process ranks and "
        "cores: seconds without progress, a Numba compilation in the process counting as progress)",
        area="collectives",
    )
    collective_setup_timeout: float = _setting(
        120.0, "seconds the first MPI collective on a communicator waits for every process to arrive (start-up "
        "skew: imports, data loading) before it names the missing ones and aborts", area="collectives",
    )
    collective_accumulation: str = _setting(
        "float32",
        "how one reduction step (a DMA op folding up to collective_dma_inputs buffers) computes: float32 = fold in "
        "fp32, round once to the buffer dtype (Neuron dma_compute); dtype = round to the buffer dtype after every "
        "binary op (NCCL-style chained adds)",
        area="collectives", choices=("float32", "dtype"),
    )
    collective_int_overflow: str = _setting(
        "raise",
        "an integer collective result (reduced in fp32) outside its dtype's range: raise = IntegerOverflowError "
        "naming the element (Neuron's fp32 -> int conversion is undocumented); saturate = clamp to the dtype's "
        "min/max; wrap = two's complement modulo 2^bits (NCCL/MPI integer sums)",
        area="collectives", choices=("raise", "saturate", "wrap"),
    )
    collective_dma_inputs: int = _setting(
        16, "most buffers one DMA reduce op folds (dma_compute takes up to 16 sources); longer folds are split",
        area="collectives",
    )
    collective_channels: int = _setting(
        1, "channels: the buffer splits into this many contiguous parts, each with its own ring/tree order",
        area="collectives",
    )
    collective_server_ranks: int = _setting(
        16, "ranks per server for the hierarchical algorithm (4 chips x 4 ranks at LNC=2 on a Gen2 server)",
        area="collectives",
    )
    collective_topology: str = _setting(
        "gen2", "UltraServer generation of the cost model: gen2 = 144 chips (36 servers x 4), gen1 = 64 (4 x 16)",
        area="collectives", choices=("gen2", "gen1"),
    )
    collective_ranks_per_chip: int = _setting(
        4, "ranks per chip in the cost model (4 at LNC=2, the default; 8 at LNC=1)", area="collectives",
    )

    def replace(self, **overrides: Any) -> "Settings":
        """Return a copy with ``overrides`` applied and validated."""
        _validate(overrides)
        return dataclasses.replace(self, **overrides)


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def env_name(name: str) -> str:
    """The environment variable that sets ``name`` (``TRN3EMU_<NAME>``)."""
    return "TRN3EMU_" + name.upper()


def _check_value(name: str, value: Any) -> Any:
    """``value`` checked against the type of setting ``name`` (Python values: a flag must be a bool, and so on)."""
    default = _FIELDS[name].default
    where = "settings"
    if isinstance(default, bool):
        return check_bool(name, value, where)
    if isinstance(default, int):
        return check_seed(name, value, where) if name == "seed" else check_int(name, value, where)
    if isinstance(default, float):
        return check_number(name, value, where)
    return check_str(name, value, where)


def parse_value(name: str, text: str, where: str = "settings") -> Any:
    """Setting ``name`` read from text (an environment variable, ``--trn3emu-setting name=value``).

    Only the type is read here; ``settings``/``configure`` then check the value against the setting's rule.

    >>> parse_value("saturate", "on"), parse_value("seed", "7")
    (True, 7)
    """
    if name not in _FIELDS:
        raise SettingsError(f"unknown setting {name!r}; the settings are: {', '.join(sorted(_FIELDS))}")
    if not isinstance(text, str):
        return text
    default = _FIELDS[name].default
    try:
        if isinstance(default, bool):
            return parse_bool(name, text, where)
        if isinstance(default, int):
            return parse_int(name, text, where)
        if isinstance(default, float):
            return parse_number(name, text, where)
    except (ArgumentError, ArgumentTypeError) as exc:
        raise SettingsError(str(exc)) from None
    return text.strip()


def parse_settings(texts: dict[str, Any]) -> dict[str, Any]:
    """Every value of ``texts`` that is a string read by :func:`parse_value`; other values pass through."""
    return {name: parse_value(name, value) for name, value in texts.items()}


def _validate(overrides: dict[str, Any]) -> None:
    for name, value in overrides.items():
        if name not in _FIELDS:
            raise SettingsError(f"unknown setting {name!r}; the settings are: {', '.join(sorted(_FIELDS))}")
        try:
            overrides[name] = value = _check_value(name, value)
        except (ArgumentError, ArgumentTypeError) as exc:
            raise SettingsError(str(exc)) from None
        choices = _FIELDS[name].metadata["choices"]
        if choices is not None and value not in choices:
            raise SettingsError(f"setting {name!r}: {value!r} is not one of {', '.join(map(repr, choices))}")
        check = _CHECKS.get(name)
        if check is not None:
            check(value)


def _check_accumulation(value: str) -> None:
    if value in ("sequential", "exact", "pairwise"):
        return
    if value.startswith("blocked:") and value[8:].isdigit() and int(value[8:]) > 0:
        return
    raise SettingsError(
        f"setting 'accumulation': {value!r} is not one of 'sequential', 'exact', 'pairwise', 'blocked:B' (B > 0)"
    )


#: the write paths ``sr_scope`` may name (and ``cast.rounding_for`` accepts)
SR_PATHS = ("engine", "psum", "dma", "collective", "mx")


def _check_sr_scope(value: str) -> None:
    for part in filter(None, (p.strip() for p in value.split(","))):
        if part not in SR_PATHS:
            raise SettingsError(f"setting 'sr_scope': {part!r} is not one of {', '.join(map(repr, SR_PATHS))}")


#: most random bits one stochastic rounding may use (``sr_bits``; the keyed stream gives 64-bit words)
MAX_SR_BITS = 64


def _check_sr_bits(value: int) -> None:
    if not 0 <= value <= MAX_SR_BITS:
        raise SettingsError(f"setting 'sr_bits': {value!r} must be 0 (all dropped bits) to 64")


def _check_nonnegative(name: str):
    def check(value: float) -> None:
        if value < 0:
            raise SettingsError(f"setting {name!r}: {value!r} must be >= 0")
    return check


def _check_int_range(name: str, lo: int, hi: int):
    def check(value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise SettingsError(f"setting {name!r}: {value!r} must be an integer in {lo}..{hi}")
    return check


def _check_fp4_lut(value: str) -> None:
    if value == "e2m1":
        return
    try:
        import ml_dtypes
        import numpy as np

        values = [float(v) for v in value.split(",")]
        exact = len(values) == 16 and all(
            float(np.float32(v).astype(ml_dtypes.float8_e4m3fn)) == v for v in values)
    except ValueError:
        exact = False
    if not exact:
        raise SettingsError(f"setting 'mx_fp4_lut': {value!r} is neither 'e2m1' nor 16 comma-separated e4m3fn values")


_CHECKS = {
    "mx_fp4_lut": _check_fp4_lut,
    "accumulation": _check_accumulation,
    "sr_scope": _check_sr_scope,
    "sr_bits": _check_sr_bits,
    "collective_timeout": _check_nonnegative("collective_timeout"),
    "collective_setup_timeout": _check_nonnegative("collective_setup_timeout"),
    "collective_dma_inputs": _check_int_range("collective_dma_inputs", 2, 1 << 16),
    "collective_channels": _check_int_range("collective_channels", 1, 64),
    "collective_server_ranks": _check_int_range("collective_server_ranks", 1, 1 << 20),
    "collective_ranks_per_chip": _check_int_range("collective_ranks_per_chip", 1, 64),
}


#: the runtime's saturation switch (set by AWS's nki-library harness on every hardware run); 1 on, 0 off
NEURON_SATURATION_ENV = "NEURON_RT_ENABLE_OCP_SATURATION"


def _runtime_switch(environ, name: str, on: str, off: str) -> bool | None:
    """A Neuron runtime switch: 1 True, 0 False, unset None; any other value is an error naming both meanings."""
    raw = environ.get(name, "").strip()
    if raw and raw not in ("0", "1"):
        raise ArgumentError(f"environment: {name}={raw!r} is not 1 ({on}) or 0 ({off})")
    return None if not raw else raw == "1"


def _environment_values(environ) -> dict[str, Any]:
    """The settings the environment sets, each parsed by the rules of :mod:`emulator.args`."""
    values: dict[str, Any] = {}
    flag = environ.get("TRN3EMU_DISABLE_NUMBA", "").strip()
    if flag:
        values["numba"] = not parse_bool("TRN3EMU_DISABLE_NUMBA", flag, "environment")
    # the runtime documents 1 (on) and 0 (off); 0 leaves the rounding as it is
    if _runtime_switch(environ, "NEURON_RT_STOCHASTIC_ROUNDING_EN", "stochastic rounding on", "off"):
        values["rounding"] = "sr"
    seed = environ.get("NEURON_RT_STOCHASTIC_ROUNDING_SEED", "").strip()
    if seed:
        values["seed"] = parse_int("NEURON_RT_STOCHASTIC_ROUNDING_SEED", seed, "environment")
    sat = _runtime_switch(environ, NEURON_SATURATION_ENV, "saturating fp8 conversion", "IEEE overflow")
    if sat is not None:
        values["saturate"] = sat
    for name in _FIELDS:  # TRN3EMU_<NAME> last: it wins over the runtime's variables
        raw = environ.get(env_name(name), "").strip()
        if raw:
            values[name] = parse_value(name, raw, f"environment: {env_name(name)}")
    return values


def _from_environment(environ=os.environ) -> Settings:
    try:
        values = _environment_values(environ)
        _validate(values)
    except EmulatorError as exc:
        msg = str(exc)
        raise SettingsError(msg if msg.startswith("environment") else f"from the environment: {msg}") from None
    return Settings(**values)


_lock = threading.Lock()
_base: Settings = _from_environment()
# The innermost ``with settings(...)`` value of the current thread/task; None = the process-wide ``_base``.
# A ContextVar (as NumPy's errstate uses) keeps one thread's block out of every other thread; a thread started
# under ``contextvars.copy_context().run`` inherits its creator's value.
_active: contextvars.ContextVar[Settings | None] = contextvars.ContextVar("trn3emu_settings", default=None)


def get_settings() -> Settings:
    """The settings in force now (innermost ``with settings(...)`` block of this context, else the process-wide)."""
    active = _active.get()
    return _base if active is None else active


def configure(**overrides: Any) -> Settings:
    """Change the process-wide settings (seen outside any ``with settings(...)`` block); returns the new settings."""
    global _base
    with _lock:
        _base = _base.replace(**overrides)
        return _base


@contextlib.contextmanager
def settings(**overrides: Any) -> Iterator[Settings]:
    """Context manager applying ``overrides`` for the duration of a ``with`` block, in this thread/context only.

    >>> import emulator as emu
    >>> with emu.settings(saturate=True) as s:
    ...     s.saturate
    True
    """
    new = get_settings().replace(**overrides)
    token = _active.set(new)
    try:
        yield new
    finally:
        _active.reset(token)


def run_in_context(target, *args: Any, **kwargs: Any) -> Callable[[], Any]:
    """A zero-argument callable running ``target(*args, **kwargs)`` in a copy of the caller's context.

    Give it to ``threading.Thread(target=...)`` so the thread sees the settings in force where it was created
    (a new thread otherwise starts with an empty context: the process-wide settings).
    """
    ctx = contextvars.copy_context()
    return functools.partial(ctx.run, target, *args, **kwargs)


def describe(current: Settings | None = None) -> list[dict[str, Any]]:
    """One row per setting: name, value, default, area, choices, env var and meaning (for ``trn3emu info``)."""
    current = current or get_settings()
    rows = []
    for f in dataclasses.fields(Settings):
        rows.append({
            "name": f.name,
            "value": getattr(current, f.name),
            "default": f.default,
            "area": f.metadata["area"],
            "choices": f.metadata["choices"],
            "env": env_name(f.name),
            "doc": f.metadata["doc"],
        })
    return rows
