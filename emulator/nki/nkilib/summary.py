"""The readable summary of an nki-library run: per kernel family, cases passed / failed / skipped, the classes of
the failures and the time taken.

A failure's class is read from its report: ``tolerance miss`` (the harness's comparison failed; the worst element is
named), ``our error`` (an emulator exception), ``unsupported API`` (a front-end name or attribute the emulator does
not have, named), ``kernel_assert`` (the kernel's own validation fired in a case meant to pass),
``harness/source defect`` (a bug in nki-library itself at the measured commit), ``out of memory`` (an allocation
refused: in the sweeps mostly the harness's own float64 and torch goldens under the run's memory limit),
``capacity`` / ``uninitialized read`` / ``out-of-tile access`` (checks the emulator makes and AWS's simulator does
not: the kernel may be at fault as well as the emulator), or ``other`` (the exception type).

>>> r = Record()
>>> r.classify("E   AttributeError: module 'emulator.nki.language' has no attribute 'foo'", "x.py::t", None)
'unsupported API: nl.foo'
>>> r.classify("E   emulator.errors.ShapeError: nc_matmul: stationary has 129 partitions", "x.py::t", None)
'our error: ShapeError: nc_matmul: stationary has 129 partitions'
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Record", "RECORD", "family_of", "worst_element", "KNOWN_SOURCE_DEFECTS",
           "KNOWN_GOLDEN_DISAGREEMENTS"]

#: the note on a defect that ``trn3emu nkilib --fix-source-defects`` fixes in memory (:mod:`.source_fixes`)
_FIXABLE = " (--fix-source-defects fixes it in memory)"
#: bugs in nki-library itself at d2ad3a5: (test path fragment, exception text fragment, what it is); an empty path
#: fragment matches every test (a defect in a shared module reached from several families)
KNOWN_SOURCE_DEFECTS = (
    ("core/mlp/", "IndentationError", "src/nkilib_src/nkilib/core/mlp/mlp.py:203 IndentationError" + _FIXABLE),
    ("test_qkv_tkg.py", "NameError", "test_qkv_tkg.py:929 NameError"),
    ("test_topk_reduce.py", "ImportError", "test_topk_reduce.py:25 imports a name that moved"),
    ("", "missing 1 required positional argument: 'remainderIFused'",  # mlp_tkg: moe_tkg, moe_block, transformer
     "core/mlp/mlp_tkg/mlp_tkg_constants.py:225 builds MLPTKGConstantsDimensionSizes without its field "
     "remainderIFused (declared at :66 without a default: a TypeError under Python's dataclass rules)" + _FIXABLE),
    ("test_gen_mask_tkg.py", "KeyError: 'mask_out_hbm'",
     "test_gen_mask_tkg.py:422 reads kernel_input['mask_out_hbm']; its input generator names the key "
     "'mask_out_hbm.must_alias_input'"),
    ("test_qkv_cte.py", "'module' object is not callable",
     "core/qkv/qkv_cte.py:28 imports the module stream_shuffle_broadcast (`from ..utils import "
     "stream_shuffle_broadcast`; utils/__init__.py is empty) and calls it as the function at :1917" + _FIXABLE),
    ("", "gate_up_projection_mx_shard_H.py:325: AttributeError",  # moe_block's MX cases without biases
     "core/mlp/mlp_tkg/gate_up_projection_mx_shard_H.py:325 reads gate_up_bias.dtype unconditionally and loads the "
     "bias below; a case without biases (has_bias False) passes None"),
    ("test_qkv_cte.py", "unexpected keyword argument 'is_input_swizzled'",
     "test_qkv_cte.py:1752 passes is_input_swizzled, a parameter of qkv_cte() that qkv() (core/qkv/qkv.py:44) "
     "does not take"),
)
#: tolerance misses that nki-library's golden makes by computing differently from its kernel, analysed at d2ad3a5:
#: (test path fragment, case-id fragments (all present), what). A miss there is classified as one only when the
#: elements outside the tolerance lie in at most 1/16 of the rows (tokens): a miss spread over the whole output is
#: still a tolerance miss. The evidence is in docs/nkilib.md ("moe_block's tolerance misses").
KNOWN_GOLDEN_DISAGREEMENTS = (
    ("test_moe_block_tkg.py", (),
     "the kernel routes (and, in MX all-expert cases, quantizes) its RMSNorm output rounded to bf16, the golden the "
     "float32 one: a near tie in the router's top-k goes the other way and the token's row differs (MX fp8: the "
     "rounding also moves rows by a few percent)"),
)
#: the share of rows (tokens) a miss may reach and still be a known golden disagreement
_GOLDEN_ROWS = 1 / 16
_MISS_ROWS = re.compile(r"in (\d+) of (\d+) rows")
_OUR_ERRORS = r"(?:emulator\.errors\.)?(ShapeError|DtypeError|CapacityError|UninitializedReadError|SettingsError|" \
              r"EmulatorError|RankFailure|NkiValidationError)"
#: checks the emulator makes and the official simulator does not: their own classes, as the kernel may be at fault
_STRICT = {"CapacityError": "capacity (emulator check)", "UninitializedReadError": "uninitialized read (emulator check)"}
#: an access pattern reaching past its tensor: on hardware it reads whatever lies beyond the tile in the same
#: partition; the emulator has no bytes there and refuses it (the kernel is at fault, or discards what it read)
_OUT_OF_TILE = re.compile(r"\.ap: pattern .* reaches element \d+; the tensor holds")
#: NumPy cannot reinterpret an array of the emulator's x4 dtypes (structured dtypes over the word) as float32 words
_X4_CAST = re.compile(r"Cannot cast array data from dtype\(\[\('(float\w+_x4)'")
#: an allocation refused (NumPy's MemoryError, torch's CPU allocator): the run's memory limit or the machine's
_NO_MEMORY = re.compile(r"Unable to allocate|can't allocate memory|Cannot allocate memory")
_E_LINE = re.compile(r"^E\s+([\w.]*(?:Error|Exception|Failure|Exit|Interrupt))\b:?\s*(.*)$", re.M)
_NO_ATTR = re.compile(r"(?:module '([\w.]+)'|'(\w+)' object|type object '(\w+)') has no attribute '(\w+)'")
_ALIASES = {"emulator.nki.language": "nl", "emulator.nki.isa": "nisa", "emulator.nki": "nki",
            "emulator.nki.constants": "nisa.constants", "emulator.nki.typing": "nt", "emulator.nki.collectives": "ncc"}


def family_of(nodeid: str) -> str:
    """``core/embeddings/rope_hf`` for ``test/integration/nkilib/core/embeddings/test_rope_hf.py::...``."""
    path = nodeid.split("::")[0]
    for prefix in ("test/integration/nkilib/", "integration/nkilib/", "test/"):
        if path.startswith(prefix):
            path = path[len(prefix):]
            break
    head, _, stem = path.rpartition("/")
    stem = stem.removesuffix(".py").removeprefix("test_")
    return f"{head}/{stem}" if head else stem


@dataclass
class _Family:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    collected: int = 0
    classes: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)


class Record:
    """Collects the reports of one run."""

    def __init__(self):
        self.families: dict[str, _Family] = defaultdict(_Family)
        self.current = ""  # the case running (its node id)
        self.collect_errors: list[tuple[str, str]] = []
        self.start = time.time()
        self._miss: str | None = None
        self.cases: dict[str, list] = {}  # node id -> [outcome, class or skip reason, seconds]
        self.compiler_only = 0  # cases skipped because their marker asks for the Neuron compiler
        self.notes: list[str] = []  # lines about the selection (shard, resume)

    def note_miss(self, worst: str | None) -> None:
        """The worst element of the comparison that just failed (None clears it at the start of a case)."""
        self._miss = worst

    def classify(self, text: str, nodeid: str, miss: str | None) -> str:
        """The failure class of one failed case, from its report text."""
        for fragment, error, what in KNOWN_SOURCE_DEFECTS:
            if fragment in nodeid and error in text:
                return f"harness/source defect: {what}"
        if miss is not None or "Validation failed for" in text:
            rows = _MISS_ROWS.search(miss or "")
            for fragment, params, what in KNOWN_GOLDEN_DISAGREEMENTS:
                if rows and fragment in nodeid and all(p in nodeid for p in params) and \
                        int(rows.group(1)) <= _GOLDEN_ROWS * int(rows.group(2)):
                    return f"golden disagreement (nki-library): {what}; {miss}"
            return f"tolerance miss: {miss or 'worst element not recorded'}"
        for m in _E_LINE.finditer(text):
            kind, msg = m.group(1), m.group(2).strip()
            if kind.endswith("MemoryError") or _NO_MEMORY.search(msg):
                return f"out of memory: {msg[:160]}"
            if "does not implement" in msg:
                return f"unsupported API: {msg.split(':', 1)[0][:80]}"
            short = kind.rsplit(".", 1)[-1]
            if short in _STRICT:
                return f"{_STRICT[short]}: {msg[:160]}"
            x4 = _X4_CAST.search(msg)
            if short == "TypeError" and x4:
                return (f"x4 output cast (emulator dtype limit): the harness converts a {x4.group(1)} output with "
                        "np.asarray(..., dtype=<golden dtype>), which NumPy refuses for the emulator's x4 dtypes")
            if short == "ShapeError" and _OUT_OF_TILE.search(msg):
                return f"out-of-tile access (emulator check): {msg[:160]}"
            if re.fullmatch(_OUR_ERRORS, kind):
                return f"our error: {kind.rsplit('.', 1)[-1]}: {msg[:160]}"
            attr = _NO_ATTR.search(msg)
            if kind.endswith("AttributeError") and attr:
                owner = attr.group(1) or attr.group(2) or attr.group(3)
                if owner.startswith("emulator") or owner in ("NkiTensor", "NKIObject", "Kernel"):
                    return f"unsupported API: {_ALIASES.get(owner, owner)}.{attr.group(4)}"
            missing = re.search(r"No module named '((?:nki|neuronxcc|nki_cpu_simulator)[\w.]*)'", msg)
            if kind.endswith("ModuleNotFoundError") and missing:
                return f"unsupported API: module {missing.group(1)}"
            if kind.endswith("NotImplementedError"):
                return f"unsupported API: {msg[:160]}"
            if "NCC_INKI016" in msg:
                return f"kernel_assert: {msg.split('exception:', 1)[-1].split(' - Please')[0].strip()[:160]}"
        m = _E_LINE.search(text)
        return f"other: {m.group(1)}: {m.group(2).strip()[:160]}" if m else "other: (no exception line)"

    def add(self, report) -> None:
        """One pytest TestReport (setup, call or teardown)."""
        fam = self.families[family_of(report.nodeid)]
        fam.seconds += float(getattr(report, "duration", 0.0) or 0.0)
        case = self.cases.setdefault(report.nodeid, ["", "", 0.0])
        case[2] += float(getattr(report, "duration", 0.0) or 0.0)
        if report.when == "call" or (report.when == "setup" and not report.passed):
            if report.skipped:
                reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
                self.count(report.nodeid, "skipped", str(reason))
            elif report.passed:
                self.count(report.nodeid, "passed")
            else:
                self.count(report.nodeid, "failed", self.classify(report.longreprtext, report.nodeid, self._miss))
        elif report.when == "teardown" and report.failed and case[0] != "failed":
            if case[0] == "passed":
                fam.passed -= 1  # a case that passed and then failed its teardown counts as failed
            self.count(report.nodeid, "failed", self.classify(report.longreprtext, report.nodeid, None))

    def count(self, nodeid: str, outcome: str, cls: str = "", seconds: float | None = None) -> None:
        """Count one case's outcome ("passed", "failed", "skipped", or "stopped": its run ended during it) in its
        family; ``cls`` is a failure's class (or a skip's reason); ``seconds`` is added to the family's time."""
        fam = self.families[family_of(nodeid)]
        if seconds is not None:
            fam.seconds += seconds
        case = self.cases.setdefault(nodeid, ["", "", 0.0])
        case[0], case[1] = outcome, cls
        if outcome == "passed":
            fam.passed += 1
        elif outcome == "skipped":
            fam.skipped += 1
        else:
            fam.failed += 1
            fam.classes[cls.split(":")[0]] += 1
            fam.examples.setdefault(cls, nodeid)

    def outcome(self, nodeid: str) -> tuple[str, str, float]:
        """(outcome, failure class or skip reason, seconds) of a case counted so far ("" before its outcome)."""
        return tuple(self.cases.get(nodeid, ("", "", 0.0)))

    @classmethod
    def from_ledger(cls, cases: dict) -> "Record":
        """A record of the cases of a ledger (:func:`.ledger.read`): each case's last outcome, its seconds; "cases"
        counts the cases the ledger has, and there is no wall time."""
        record = cls()
        record.start = None
        for nodeid, case in cases.items():
            record.families[family_of(nodeid)].collected += 1
            record.count(nodeid, case.outcome, case.cls, case.seconds)
        return record

    def add_collect_error(self, report) -> None:
        """A module that failed to import: classified like a case, listed apart."""
        text = getattr(report, "longreprtext", str(report.longrepr))
        self.collect_errors.append((report.nodeid, self.classify(text, report.nodeid, None)))

    def rows(self) -> list[dict]:
        """One dict per family, sorted by name."""
        return [{"family": name, "collected": f.collected, "passed": f.passed, "failed": f.failed, "skipped": f.skipped,
                 "seconds": round(f.seconds, 1), "classes": dict(f.classes), "examples": dict(f.examples)}
                for name, f in sorted(self.families.items())]

    def render(self, defects: dict[str, str]) -> str:
        """The text table and lists a person reads."""
        rows = self.rows()
        width = max([len(r["family"]) for r in rows] + [6])
        out = ["trn3-emulator nki-library summary",
               f"{'family':<{width}}  cases  passed  failed  skipped  time(s)  failures"]
        tot = Counter()
        for r in rows:
            classes = ", ".join(f"{k} {v}" for k, v in sorted(r["classes"].items()))
            out.append(f"{r['family']:<{width}}  {r['collected']:>5}  {r['passed']:>6}  {r['failed']:>6}  {r['skipped']:>7}  "
                       f"{r['seconds']:>7.1f}  {classes}")
            tot.update({k: r[k] for k in ("collected", "passed", "failed", "skipped")})
            tot["seconds"] += r["seconds"]
        out.append(f"{'total':<{width}}  {tot['collected']:>5}  {tot['passed']:>6}  {tot['failed']:>6}  {tot['skipped']:>7}  "
                   f"{tot['seconds']:>7.1f}" + (f"  (wall {time.time() - self.start:.0f} s)" if self.start else ""))
        examples = [(cls, node) for r in rows for cls, node in r["examples"].items()]
        if examples:
            out.append("failure classes (one example case each):")
            out += [f"  {cls}\n      e.g. {node}" for cls, node in examples]
        if self.collect_errors:
            out.append("modules that failed to import:")
            out += [f"  {node}: {cls}" for node, cls in self.collect_errors]
        if self.compiler_only:
            out.append(f"{self.compiler_only} cases marked trace_only/compile_only/compile_and_infer were skipped: "
                       "they need the Neuron compiler, not a simulator")
        out += self.notes
        if defects:
            out.append("harness defects worked around in this run:")
            out += [f"  {key}: {what}" for key, what in defects.items()]
        return "\n".join(out)

    def dump(self, path: str, defects: dict[str, str]) -> None:
        """The same facts as JSON (for docs and scripts)."""
        with open(path, "w") as f:
            json.dump({"families": self.rows(), "collect_errors": self.collect_errors, "defects": defects,
                       "compiler_only_skipped": self.compiler_only}, f,
                      indent=1)


RECORD = Record()


def worst_element(got, want, rtol=None, atol=None, mode: str = "max") -> str:
    """``[index] got X want Y (|diff| D, rtol R atol A); N of M elements outside, in K of R rows: [...]`` for the
    element farthest from its golden value. With both tolerances known, the elements outside the harness's rule
    (``|got - want| <= atol + rtol * range``, range the largest finite ``|want|`` in mode ``max``, the element's own
    ``|want|`` in mode ``py``) are counted, and for arrays of two or more dimensions so are the rows (first axis)
    they lie in: a miss confined to a few rows (a token routed elsewhere) reads differently from one spread over all."""
    g = np.asarray(got).astype(np.float64)
    w = np.asarray(want).astype(np.float64)
    if g.shape != w.shape or g.size == 0:
        return f"shape {g.shape} vs golden {w.shape}"
    with np.errstate(invalid="ignore"):
        diff = np.abs(g - w)
    diff = np.where(np.isnan(diff) & ~(np.isnan(g) & np.isnan(w)), np.inf, np.nan_to_num(diff, nan=0.0))
    idx = np.unravel_index(int(np.argmax(diff)), diff.shape)
    text = f"{list(map(int, idx))} got {g[idx]:.6g} want {w[idx]:.6g} (|diff| {diff[idx]:.3g}"
    if rtol is None or atol is None:
        return text + ")"
    text += f", rtol {rtol:g} atol {atol:g})"
    finite = np.abs(w[np.isfinite(w)])
    scale = np.abs(w) if mode == "py" else (finite.max() if finite.size else 0.0)
    outside = diff > atol + rtol * scale
    n = int(outside.sum())
    if n == 0:
        return text
    text += f"; {n} of {outside.size} elements outside"
    if outside.ndim >= 2:
        rows = np.flatnonzero(outside.reshape(outside.shape[0], -1).any(axis=1))
        shown = ", ".join(map(str, rows[:8])) + (", ..." if rows.size > 8 else "")
        text += f", in {rows.size} of {outside.shape[0]} rows: [{shown}]"
    return text
