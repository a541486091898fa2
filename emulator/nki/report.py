"""What a launch did: instructions per engine, bytes per DMA queue, peak SBUF/PSUM, an estimated time, settings.

:func:`emulator.nki.last_report` returns the :class:`Report` of the latest launch; ``trn3emu run KERNEL.py
--report`` prints it. Instruction counts, engines and the
time figures come from the cores' statistics (:class:`emulator.engines.core.Stats`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .tensor import PEAKS

__all__ = ["Report", "build"]

@dataclass
class Report:
    """Summary of one launch (all programs)."""

    kernel: str
    grid: tuple
    instructions: dict = field(default_factory=dict)      # instruction -> count (all programs)
    engines: dict = field(default_factory=dict)           # engine -> instruction count
    dma_bytes: dict = field(default_factory=dict)         # DMA queue -> bytes
    peak_sbuf: int = 0                                    # bytes per partition, highest over programs
    peak_psum: int = 0
    hbm_bytes: int = 0
    estimated_us: float | None = None
    settings: dict = field(default_factory=dict)          # settings that differ from the defaults

    def __str__(self) -> str:
        grid = f"[{', '.join(map(str, self.grid))}]" if self.grid else ""
        lines = [f"kernel {self.kernel}{grid}: {sum(self.instructions.values())} instructions"]
        lines.append("  per engine: " + ", ".join(f"{e} {n}" for e, n in sorted(self.engines.items())))
        lines.append("  per instruction: " + ", ".join(f"{k} {n}" for k, n in sorted(self.instructions.items())))
        if self.dma_bytes:
            lines.append("  DMA bytes per queue: " + ", ".join(f"{q} {b}" for q, b in sorted(self.dma_bytes.items())))
        lines.append(f"  peak SBUF {self.peak_sbuf} bytes/partition, peak PSUM {self.peak_psum} bytes/partition, "
                     f"HBM {self.hbm_bytes} bytes")
        lines.append("  estimated time: " + ("n/a (the core keeps no cost statistics)" if self.estimated_us is None
                                              else f"{self.estimated_us:.2f} us"))
        lines.append("  settings: " + (", ".join(f"{k}={v!r}" for k, v in self.settings.items()) or "all default"))
        return "\n".join(lines)


def _settings_in_force() -> dict:
    from ..config import Settings, get_settings

    now, default = get_settings(), Settings()
    return {f: getattr(now, f) for f in now.__dataclass_fields__ if getattr(now, f) != getattr(default, f)}


def build(fn, grid, cores, programs=None) -> Report:
    """The report of a finished launch (``programs``: the Program objects, for the front end's counts)."""
    rep = Report(getattr(fn, "__qualname__", str(fn)), tuple(grid), settings=_settings_in_force())
    for prog in programs or []:
        for queue, b in prog.dma_bytes.items():
            rep.dma_bytes[queue] = rep.dma_bytes.get(queue, 0) + b
    times = []
    for core in cores:
        for name, n in core.stats.instructions.items():
            rep.instructions[name] = rep.instructions.get(name, 0) + n
        for engine, st in core.stats.engines.items():
            if st.instructions:
                rep.engines[engine] = rep.engines.get(engine, 0) + st.instructions
        times.append(core.stats.estimated_us())
        mem = core.memory
        peaks = PEAKS.get(mem, {})
        rep.peak_sbuf = max(rep.peak_sbuf, peaks.get("sbuf", 0))
        rep.peak_psum = max(rep.peak_psum, peaks.get("psum", 0))
        rep.hbm_bytes = max(rep.hbm_bytes, peaks.get("hbm", 0))
    rep.estimated_us = max(times) if times else None
    return rep
