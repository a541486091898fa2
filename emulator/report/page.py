"""``emu.report(result, reference, out)``: an HTML page, PNG plots and a text twin describing a result's error.

Sections (each an ``<h2 id=...>`` of ``index.html`` and a heading of ``report.txt``):

``summary``    shape, error maxima and means (see :mod:`emulator.report.errors`)
``ulps``       distribution of |error| in float32 ulps (``errors_ulps.png``)
``relative``   distribution of the relative error (``errors_relative.png``)
``heatmap``    where the errors sit over the 128 x 512 output tile grid (``error_tiles.png``), and the worst tiles
``worst``      the worst elements: index, result, reference, error
``kernel``     given a kernel-run report (``emulator.nki.last_report()``): instructions per engine
               (``engines.png``), estimated time, SBUF/PSUM peaks and, when the report has it, occupancy over the
               instruction stream (``occupancy.png``: the report's ``occupancy`` attribute, a dict buffer name ->
               bytes per partition in use after each instruction)
``settings``   every emulator setting in force, changed ones marked

Without matplotlib the page and ``report.txt`` carry the same tables and say how to get the plots
(``pip install 'trn3-emulator[plot]'``). ``result=None, reference=None`` with ``kernel_report=`` writes a kernel-only
page (what ``trn3emu run KERNEL.py --report DIR`` can call after the run).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np

from ..config import Settings, get_settings
from ..errors import ArgumentError, ShapeError
from . import plots as _plots
from .errors import element_errors, error_stats

__all__ = ["write", "SECTIONS", "PLOT_HINT"]

SECTIONS = ("summary", "ulps", "relative", "heatmap", "worst", "kernel", "settings")
PLOT_HINT = "plots need matplotlib: pip install 'trn3-emulator[plot]' (or pip install matplotlib)"


def _settings_rows(given: dict | None) -> list[tuple[str, str, str]]:
    """(name, value, default) of every setting: the ones in force, updated by ``given``."""
    now, default = get_settings(), Settings()
    values = {f.name: getattr(now, f.name) for f in fields(Settings)}
    values.update(given or {})
    return [(k, repr(v), repr(getattr(default, k, None))) for k, v in values.items()]


def _worst_tiles(ulps: np.ndarray, finite: np.ndarray, n: int = 5) -> list[tuple[str, float, int]]:
    m, cols = ulps.shape
    out = []
    for i in range(0, m, _plots.TILE_M):
        for j in range(0, cols, _plots.TILE_N):
            block = np.where(finite[i:i + _plots.TILE_M, j:j + _plots.TILE_N],
                             ulps[i:i + _plots.TILE_M, j:j + _plots.TILE_N], 0.0)
            out.append((f"({i // _plots.TILE_M},{j // _plots.TILE_N})", float(block.max()), int((block > 0).sum())))
    return sorted((t for t in out if t[2]), key=lambda t: -t[1])[:n]  # tiles with no error are left out


def _worst_elements(result, reference, err, n: int = 10) -> list[tuple]:
    u = np.where(err.finite, err.ulps, -1.0).reshape(-1)
    nonfinite = np.flatnonzero(~err.finite.reshape(-1))
    inexact = np.flatnonzero(u > 0)
    order = np.concatenate([nonfinite, inexact[np.argsort(-u[inexact], kind="stable")]])[:n]
    shape = err.ulps.shape
    rows = []
    for flat in order:
        idx = tuple(int(i) for i in np.unravel_index(int(flat), shape))
        rows.append((str(list(idx)), f"{float(result[idx]):.9g}", f"{float(reference[idx]):.17g}",
                     f"{float(err.abs[idx]):.3g}", f"{float(err.ulps[idx]):.3g}"))
    return rows


def _kernel_rows(kr) -> list[tuple[str, str]]:
    grid = getattr(kr, "grid", ())
    est = getattr(kr, "estimated_us", None)
    rows = [("kernel", f"{getattr(kr, 'kernel', '?')}{list(grid) if grid else ''}"),
            ("instructions", str(sum(getattr(kr, "instructions", {}).values()))),
            ("estimated time", "n/a" if est is None else f"{est:.2f} us (cost model)"),
            ("peak SBUF", f"{getattr(kr, 'peak_sbuf', 0)} bytes/partition"),
            ("peak PSUM", f"{getattr(kr, 'peak_psum', 0)} bytes/partition")]
    if getattr(kr, "hbm_bytes", None):
        rows.append(("HBM in use", f"{kr.hbm_bytes} bytes"))
    rows += [(f"engine {e}", str(n)) for e, n in sorted(getattr(kr, "engines", {}).items())]
    rows += [(f"instruction {i}", str(n)) for i, n in sorted(getattr(kr, "instructions", {}).items(),
                                                              key=lambda kv: (-kv[1], kv[0]))]
    rows += [(f"DMA queue {q}", f"{b} bytes") for q, b in sorted(getattr(kr, "dma_bytes", {}).items())]
    return rows


def _as_grid(result, reference) -> tuple[np.ndarray, np.ndarray]:
    """float64 views of both, as the 2-D output grid: 0-D/1-D become one row, N-D keep their last axis as columns."""
    res = np.asarray(result).astype(np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if res.shape != ref.shape:
        raise ShapeError(f"report: result has shape {res.shape} but the reference has shape {ref.shape}; they must "
                         "match")
    cols = res.shape[-1] if res.ndim else 1
    return res.reshape(-1, cols), ref.reshape(-1, cols)


def _figures(out: Path, err, kr) -> dict[str, Path]:
    figs = {}
    if err is not None:
        figs = {"ulps": _plots.ulp_histogram(err, out / "errors_ulps.png"),
                "relative": _plots.rel_histogram(err, out / "errors_relative.png"),
                "heatmap": _plots.tile_heatmap(err, out / "error_tiles.png")}
    if kr is not None and getattr(kr, "engines", None):
        figs["kernel"] = _plots.engine_counts(kr.engines, out / "engines.png", "Instructions per engine")
    timeline = getattr(kr, "occupancy", None) if kr is not None else None
    if timeline:
        figs["occupancy"] = _plots.occupancy(timeline, out / "occupancy.png")
    return figs


def write(result, reference, out, *, title: str = "trn3emu numerics report", settings: dict | None = None,
          kernel_report=None, plots: bool | None = None) -> dict[str, Path]:
    """Write ``index.html``, ``report.txt`` and (with matplotlib) the PNG plots into the folder ``out``.

    Parameters
    ----------
    result : the emulator's output (any float or ml_dtypes array; the last axis is the output's columns, the others
        its rows). None (with ``reference`` None) for a kernel-only report.
    reference : the float64 reference of the same shape (e.g. ``a.astype(np.float64) @ b``).
    out : folder to write into (created if needed).
    settings : settings to show instead of the ones in force (e.g. a sweep row's); merged over the current ones.
    kernel_report : ``emulator.nki.last_report()`` of the run, for the kernel section.
    plots : False to skip the PNGs; default: draw them when matplotlib is installed.

    Returns
    -------
    dict
        ``{"html": path, "text": path, <plot name>: path, ...}``.

    Examples
    --------
    >>> import numpy as np, tempfile, emulator as emu
    >>> a = np.linspace(-1, 1, 200 * 64).reshape(200, 64); b = a[:64].T.copy()
    >>> files = emu.report(emu.matmul(a, b, "bfloat16"), a @ b, tempfile.mkdtemp(), plots=False)
    >>> sorted(files)
    ['html', 'text']
    """
    if (result is None) != (reference is None):
        raise ArgumentError("report: give both result and reference, or neither (a kernel-only report)")
    if result is None and kernel_report is None:
        raise ArgumentError("report: nothing to report: give result and reference, or kernel_report=")
    err = res = ref = None
    if result is not None:
        res, ref = _as_grid(result, reference)
        err = element_errors(res, ref)  # checks the shapes before anything is written
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    draw = _plots.have_matplotlib() if plots is None else bool(plots)
    figs = _figures(out, err, kernel_report) if draw else {}
    data = {
        "title": title, "shape": None if res is None else res.shape,
        "stats": None if err is None else error_stats(res, ref),
        "tiles": None if err is None else _worst_tiles(err.ulps, err.finite),
        "worst": None if err is None else _worst_elements(res, ref, err),
        "kernel": _kernel_rows(kernel_report) if kernel_report is not None else None,
        "settings": _settings_rows(settings if settings is not None else getattr(kernel_report, "settings", None)),
        "figs": {k: p.name for k, p in figs.items()},
        "plot_note": None if draw else PLOT_HINT if plots is None else "plots not drawn (plots=False)",
    }
    from .render import render_html, render_text

    text_path, html_path = out / "report.txt", out / "index.html"
    text_path.write_text(render_text(data))
    html_path.write_text(render_html(data))
    return {"html": html_path, "text": text_path, **figs}
