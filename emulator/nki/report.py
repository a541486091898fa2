"""What a launch did: instructions per engine, bytes per DMA queue, peak SBUF/PSUM, an estimated time, settings.

:func:`emulator.nki.last_report` returns the :class:`Report` of the latest launch; ``trn3emu run KERNEL.py
--report`` prints it. Counts come from the front end (one per ``nki.isa`` call, per program); the engine, byte and
time figures come from the cores' statistics when the core keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .tensor import PEAKS

__all__ = ["Report", "build", "ENGINE_OF"]

#: the engine an instruction runs on when the kernel does not choose (NKI's defaults)
ENGINE_OF = {
    "nc_matmul": "tensor", "nc_matmul_mx": "tensor", "nc_transpose": "tensor",
    "dma_copy": "dma", "dma_transpose": "dma", "dma_compute": "dma", "sendrecv": "dma",
    "activation": "scalar", "activation_reduce": "scalar", "activate2": "scalar",
    "iota": "gpsimd", "affine_select": "gpsimd", "local_gather": "gpsimd", "nc_n_gather": "gpsimd",
    "tensor_partition_reduce": "gpsimd", "nonzero_with_count": "gpsimd", "topk": "gpsimd",
    "sequence_bounds": "gpsimd", "core_barrier": "gpsimd", "rand_set_state": "gpsimd", "rand_get_state": "gpsimd",
}


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


def _stats_of(core) -> dict:
    stats = getattr(core, "stats", None)
    if stats is None:
        return {}
    if hasattr(stats, "as_dict"):
        return stats.as_dict()
    return stats if isinstance(stats, dict) else getattr(stats, "__dict__", {})


def build(fn, grid, cores, programs=None) -> Report:
    """The report of a finished launch (``programs``: the Program objects, for the front end's counts)."""
    rep = Report(getattr(fn, "__qualname__", str(fn)), tuple(grid), settings=_settings_in_force())
    for prog in programs or []:
        for name, n in prog.counts.items():
            rep.instructions[name] = rep.instructions.get(name, 0) + n
            engine = ENGINE_OF.get(name, "vector")
            rep.engines[engine] = rep.engines.get(engine, 0) + n
    cycles = []
    for core in cores:
        mem = core.memory
        peaks = PEAKS.get(mem, {})
        rep.peak_sbuf = max(rep.peak_sbuf, peaks.get("sbuf", 0))
        rep.peak_psum = max(rep.peak_psum, peaks.get("psum", 0))
        rep.hbm_bytes = max(rep.hbm_bytes, peaks.get("hbm", 0))
        stats = _stats_of(core)
        for queue, b in (stats.get("dma_bytes") or {}).items():
            rep.dma_bytes[queue] = rep.dma_bytes.get(queue, 0) + b
        if stats.get("estimated_us") is not None:
            cycles.append(stats["estimated_us"])
    rep.estimated_us = max(cycles) if cycles else None
    return rep
