"""Render the report data of :func:`emulator.report.page.write` as HTML and as plain text (same sections)."""

from __future__ import annotations

import html

__all__ = ["render_html", "render_text"]

_STAT_LABELS = {"max_abs": "max |error|", "max_rel": "max relative error", "max_ulps": "max error (float32 ulps)",
                "mean_abs": "mean |error|", "median_ulps": "median error (float32 ulps)",
                "norm_rel": "normwise relative error (max |error| / max |reference|)",
                "exact": "elements exactly equal to the reference", "nonfinite": "elements not finite on either side"}
_HEADINGS = {
    "summary": "Summary",
    "ulps": "Error distribution in ulps",
    "relative": "Relative error distribution",
    "heatmap": "Where the errors sit (output tile grid, 128 x 512 tiles)",
    "worst": "Worst elements",
    "kernel": "Kernel run",
    "occupancy": "SBUF / PSUM occupancy",
    "settings": "Settings used",
}
_CAPTIONS = {
    "ulps": "How far each element is from the float64 reference, in float32 steps (ulps) at the reference value. "
            "Where the sum cancels (a reference much smaller than its terms) the count is large even for a "
            "small absolute error: read it together with the heat map and the worst elements.",
    "relative": "|result - reference| / |reference| per element, on a log scale (zero references left out).",
    "heatmap": "Each pixel is the largest error (ulps) of the elements it covers; white lines are tile boundaries "
               "(128 output rows = PSUM partitions, 512 columns = one PSUM bank). Grey means exact.",
}


def _num(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _summary_rows(d: dict) -> list[tuple[str, str]]:
    return [("shape", f"{list(d['shape'])}")] + [(_STAT_LABELS[k], _num(v)) for k, v in d["stats"].items()]


def _table(head: tuple, rows: list) -> str:
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def _section(key: str, inner: str) -> str:
    return f'<section><h2 id="{key}">{html.escape(_HEADINGS[key])}</h2>\n{inner}</section>\n'


def _figure(d: dict, key: str) -> str:
    name = d["figs"].get(key)
    cap = _CAPTIONS.get(key, "")
    if name is None:
        return f"<p class='note'>{html.escape(d['plot_note'] or 'no plot')}</p>" + (f"<p>{html.escape(cap)}</p>"
                                                                                     if cap else "")
    return (f'<figure><img src="{html.escape(name)}" alt="{html.escape(_HEADINGS[key])}">'
            f"<figcaption>{html.escape(cap)}</figcaption></figure>")


_CSS = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}table{border-collapse:collapse;"
        "margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left;font-size:90%}"
        "th{background:#eee}img{max-width:100%}.note{color:#a33}figcaption{font-size:85%;color:#555}"
        ".changed{font-weight:bold}")


def render_html(d: dict) -> str:
    """The page: one ``<section>`` per report section, tables plus the PNGs when they were drawn."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(d['title'])}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(d['title'])}</h1>\n"]
    if d["plot_note"]:
        parts.append(f"<p class='note'>{html.escape(d['plot_note'])}</p>\n")
    if d["stats"] is not None:
        parts.append(_section("summary", _table(("quantity", "value"), _summary_rows(d))))
        parts.append(_section("ulps", _figure(d, "ulps")))
        parts.append(_section("relative", _figure(d, "relative")))
        parts.append(_section("heatmap", _figure(d, "heatmap") + "<p>Worst tiles (row tile, column tile):</p>"
                              + _table(("tile", "max ulps", "inexact elements"), [(t, _num(u), n) for t, u, n
                                                                                  in d["tiles"]])))
        parts.append(_section("worst", _table(("index", "result", "reference", "|error|", "ulps"), d["worst"])))
    if d["kernel"] is not None:
        inner = _table(("quantity", "value"), d["kernel"])
        if "kernel" in d["figs"]:
            inner = _figure(d, "kernel") + inner
        if "occupancy" in d["figs"]:
            inner += _figure(d, "occupancy")
        parts.append(_section("kernel", inner))
    rows = "".join(f"<tr{' class=changed' if v != dflt else ''}><td>{html.escape(k)}</td><td>{html.escape(v)}</td>"
                   f"<td>{html.escape(dflt)}</td></tr>" for k, v, dflt in d["settings"])
    parts.append(_section("settings", "<p>Bold rows differ from the default.</p><table><thead><tr><th>setting</th>"
                          f"<th>value</th><th>default</th></tr></thead><tbody>{rows}</tbody></table>"))
    parts.append("</body></html>\n")
    return "".join(parts)


def _text_table(rows: list, head: tuple | None = None) -> list[str]:
    rows = [tuple(map(str, r)) for r in rows]
    allrows = ([tuple(head)] if head else []) + rows
    if not allrows:
        return []
    widths = [max(len(r[i]) for r in allrows) for i in range(len(allrows[0]))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in allrows]


def _text_error_sections(d: dict) -> list[str]:
    lines = ["", "## " + _HEADINGS["summary"], *_text_table(_summary_rows(d))]
    for key in ("ulps", "relative"):
        lines += ["", "## " + _HEADINGS[key], "  " + _CAPTIONS[key]]
        if key in d["figs"]:
            lines.append(f"  plot: {d['figs'][key]}")
    lines += ["", "## " + _HEADINGS["heatmap"], *_text_table([(t, _num(u), n) for t, u, n in d["tiles"]],
                                                             ("tile", "max ulps", "inexact elements"))]
    if d["figs"].get("heatmap"):
        lines.append(f"  plot: {d['figs']['heatmap']}")
    lines += ["", "## " + _HEADINGS["worst"],
              *_text_table(d["worst"], ("index", "result", "reference", "|error|", "ulps"))]
    return lines


def render_text(d: dict) -> str:
    """The same report as plain text (what a terminal or a CI log shows)."""
    lines = [d["title"], "=" * len(d["title"])]
    if d["plot_note"]:
        lines.append(d["plot_note"])
    if d["stats"] is not None:
        lines += _text_error_sections(d)
    if d["kernel"] is not None:
        lines += ["", "## " + _HEADINGS["kernel"], *_text_table(d["kernel"])]
    lines += ["", "## " + _HEADINGS["settings"] + " (* = changed from the default)"]
    lines += _text_table([(("* " if v != dflt else "  ") + k, v) for k, v, dflt in d["settings"]])
    return "\n".join(lines) + "\n"
