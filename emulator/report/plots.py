"""The report's PNG figures (matplotlib, the optional ``plot`` extra): each function writes one file.

matplotlib is imported inside the functions with the non-interactive Agg backend, so importing this module never
needs it and a report never opens a window.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .errors import ElementErrors

__all__ = ["have_matplotlib", "ulp_histogram", "rel_histogram", "tile_heatmap", "engine_counts", "occupancy",
           "TILE_M", "TILE_N"]

#: the output tile of one matmul pass: 128 stationary columns (PSUM partitions) x 512 moving columns (a PSUM bank)
TILE_M, TILE_N = 128, 512


def have_matplotlib() -> bool:
    """True when matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)  # figures are not garbage-collected while pyplot tracks them
    return path


def _log2_buckets(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Power-of-two buckets of the positive values: bucket k holds (2^(k-1), 2^k]; returns (k, counts), every k from
    the smallest to the largest present (empty buckets included, so the axis is even)."""
    pos = values[values > 0]
    if not pos.size:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    k = np.ceil(np.log2(pos)).astype(np.int64)
    ks = np.arange(k.min(), k.max() + 1)
    return ks, np.bincount(k - k.min(), minlength=ks.size)


def ulp_histogram(err: ElementErrors, path: Path) -> Path:
    """Histogram of |error| in float32 ulps (bars for exact and for each power-of-two bucket; log count axis)."""
    plt = _plt()
    u = err.ulps[err.finite]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ks, counts = _log2_buckets(u)
    labels = ["exact"] + [f"<= 2^{k}" for k in ks]
    heights = [int((u == 0).sum()), *counts.tolist()]
    bars = ax.bar(range(len(labels)), heights, color=["#4c72b0"] + ["#dd8452"] * len(counts))
    if len(heights) <= 16:  # counts over the bars only while they fit
        ax.bar_label(bars, labels=[str(h) if h else "" for h in heights], fontsize=7, padding=2)
    ax.set_yscale("log")
    ax.set_ylim(0.5, max(heights) * 3 if heights else 1)
    step = -(-len(labels) // 16)  # at most 16 tick labels, readable when the errors span many binades
    ax.set_xticks(range(0, len(labels), step), labels[::step], rotation=45, ha="right", fontsize=8)
    ax.set_xlabel("|result - float64 reference| in float32 ulps at the reference (bucket: > half, <= the label)")
    ax.set_ylabel("elements (log scale)")
    ax.set_title(f"Error in ulps ({u.size} finite elements, max {u.max() if u.size else 0:.3g} ulps)")
    return _save(plt, fig, path)


def rel_histogram(err: ElementErrors, path: Path) -> Path:
    """Histogram of the relative error on a log10 axis (elements with a zero reference left out, exact as 0)."""
    plt = _plt()
    r = err.rel[~np.isnan(err.rel)]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    pos = r[r > 0]
    if pos.size:
        lo, hi = np.floor(np.log10(pos.min())), np.ceil(np.log10(pos.max()))
        ax.hist(pos, bins=np.logspace(lo, max(hi, lo + 1), 40), color="#55a868")
        ax.set_xscale("log")
    ax.set_xlabel("relative error |result - reference| / |reference|")
    ax.set_ylabel("elements")
    ax.set_title(f"Relative error ({int((r == 0).sum())} exact, {pos.size} inexact; max {r.max() if r.size else 0:.3g})")
    return _save(plt, fig, path)


def tile_heatmap(err: ElementErrors, path: Path, max_pixels: int = 512) -> Path:
    """Where the errors sit: |error| in ulps over the output, pooled (max) to at most ``max_pixels`` per side, with
    the 128 x 512 output tile grid drawn on top and each tile's maximum written in it when there are few tiles."""
    plt = _plt()
    from matplotlib.colors import LogNorm

    u = np.where(err.finite, err.ulps, np.nan)
    m, n = u.shape
    fy, fx = max(1, -(-m // max_pixels)), max(1, -(-n // max_pixels))
    padded = np.full((-(-m // fy) * fy, -(-n // fx) * fx), np.nan)
    padded[:m, :n] = u
    with warnings.catch_warnings():  # an all-NaN pixel (no finite element) is simply not coloured
        warnings.simplefilter("ignore", RuntimeWarning)
        pooled = np.nanmax(padded.reshape(padded.shape[0] // fy, fy, padded.shape[1] // fx, fx), axis=(1, 3))
    fig, ax = plt.subplots(figsize=(8, max(3.0, min(8.0, 8 * m / max(n, 1)) + 1)))
    shown = np.where(pooled > 0, pooled, np.nan)
    vmax = np.nanmax(shown) if np.isfinite(shown).any() else 1.0
    im = ax.imshow(shown, aspect="auto", interpolation="nearest", cmap="viridis",
                   norm=LogNorm(vmin=min(np.nanmin(shown) if np.isfinite(shown).any() else 1.0, vmax), vmax=vmax),
                   extent=(0, n, m, 0))
    ax.set_facecolor("#f2f2f2")  # exact elements (no colour) show as light grey
    rows, cols = np.nonzero(np.where(err.finite, err.ulps, 0) > 0)
    if 0 < rows.size <= 1000:  # a few errors are single pixels: ring each one so it can be seen
        ax.scatter(cols + 0.5, rows + 0.5, s=60, facecolors="none", edgecolors="red", linewidths=1.2,
                   label=f"{rows.size} inexact element(s)")
        ax.legend(loc="upper right", fontsize=8)
    fig.colorbar(im, ax=ax, label="|error|, float32 ulps")
    for y in range(TILE_M, m, TILE_M):
        ax.axhline(y, color="white", lw=0.8)
    for x in range(TILE_N, n, TILE_N):
        ax.axvline(x, color="white", lw=0.8)
    tiles_m, tiles_n = -(-m // TILE_M), -(-n // TILE_N)
    if tiles_m * tiles_n <= 32:
        for i in range(tiles_m):
            for j in range(tiles_n):
                block = u[i * TILE_M:(i + 1) * TILE_M, j * TILE_N:(j + 1) * TILE_N]
                peak = np.nanmax(block) if np.isfinite(block).any() else float("nan")
                x0, x1 = j * TILE_N, min((j + 1) * TILE_N, n)
                if x1 - x0 < n / 6:  # a sliver of a ragged edge tile: no room for a label (the table lists it)
                    continue
                ax.text((x0 + x1) / 2, (i * TILE_M + min((i + 1) * TILE_M, m)) / 2,
                        f"tile ({i},{j})\nmax {peak:.3g}", color="white", ha="center", va="center", fontsize=8,
                        bbox={"facecolor": "black", "alpha": 0.4, "lw": 0}, clip_on=True)
    ax.set_xlabel("output column n (512-column tiles: one PSUM bank)")
    ax.set_ylabel("output row m\n(128-row tiles)")
    ax.set_title(f"Where the error sits: [{m}, {n}] output, {tiles_m} x {tiles_n} tiles of 128 x 512")
    return _save(plt, fig, path)


def engine_counts(engines: dict, path: Path, title: str) -> Path:
    """Bar chart of instructions per engine."""
    plt = _plt()
    names = sorted(engines)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    bars = ax.barh(names, [engines[k] for k in names], color="#8172b3")
    ax.bar_label(bars, padding=3, fontsize=8)
    ax.set_xlabel("instructions")
    ax.set_title(title)
    return _save(plt, fig, path)


def occupancy(timeline: dict, path: Path, limits: dict | None = None) -> Path:
    """SBUF/PSUM bytes per partition in use after each instruction (``timeline``: buffer -> sequence)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for name, series in sorted(timeline.items()):
        line, = ax.step(range(len(series)), series, where="post", label=name)
        if limits and name in limits:
            ax.axhline(limits[name], ls="--", lw=0.8, color=line.get_color(), label=f"{name} capacity")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("instruction number")
    ax.set_ylabel("bytes per partition in use")
    ax.set_title("SBUF / PSUM occupancy over the instruction stream")
    ax.legend(fontsize=8)
    return _save(plt, fig, path)
