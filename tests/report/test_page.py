"""emu.report: the files, the HTML sections (parsed), valid PNGs, and the no-matplotlib text path."""

import html
import struct
import sys
from html.parser import HTMLParser
from types import SimpleNamespace

import numpy as np
import pytest

import emulator as emu
from emulator.cli import main
from emulator.report import page, plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.imgs, self.cells, self._td = [], [], [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "h2":
            self.ids.append(attrs.get("id"))
        if tag == "img":
            self.imgs.append(attrs["src"])
        self._td = tag == "td"

    def handle_data(self, data):
        if self._td:
            self.cells.append(data)


def _parse(path):
    p = _Page()
    p.feed(path.read_text())
    return p


def _case(m=300, n=1100):
    """A result equal to its reference except at two known places: 3 ulps in tile (1, 1), 1 ulp in tile (2, 0)."""
    ref = np.linspace(1.0, 2.0, m * n).reshape(m, n).astype(np.float32).astype(np.float64)
    res = ref.astype(np.float32)
    if m < 300 or n < 600:
        return res, ref
    res[130, 600] = np.float32(ref[130, 600]) + 3 * np.spacing(np.float32(ref[130, 600]))
    res[260, 5] = np.nextafter(np.float32(ref[260, 5]), np.float32(3))
    return res, ref


def _kernel_report():
    return SimpleNamespace(kernel="my_kernel", grid=(2,), instructions={"nc_matmul": 8, "dma_copy": 4},
                           engines={"pe": 8, "sp": 4}, estimated_us=12.5, peak_sbuf=4096, peak_psum=2048,
                           dma_bytes={"sync": 1024}, settings={"rounding": "sr"},
                           occupancy={"sbuf": [0, 512, 4096, 1024], "psum": [0, 0, 2048, 0]})


def test_sections_tables_and_text_without_plots(tmp_path):
    res, ref = _case()
    files = emu.report(res, ref, tmp_path, plots=False, kernel_report=_kernel_report())
    assert set(files) == {"html", "text"} and not list(tmp_path.glob("*.png"))
    parsed = _parse(files["html"])
    assert parsed.ids == ["summary", "ulps", "relative", "heatmap", "worst", "kernel", "settings"]
    # worst tiles: (1,1) holds the 3-ulp element, (2,0) the 1-ulp one; worst elements in that order
    cells = parsed.cells
    assert cells[cells.index("(1,1)") + 1] == "3" and cells[cells.index("(2,0)") + 1] == "1"
    assert cells.index("[130, 600]") < cells.index("[260, 5]")
    assert "(0,0)" not in cells and "[0, 0]" not in cells  # exact tiles and elements are not listed as "worst"
    assert "12.50 us (cost model)" in cells and "my_kernel[2]" in cells
    assert "'sr'" in cells  # the kernel report's settings are the ones shown
    text = files["text"].read_text()
    for heading in ("## Summary", "## Error distribution in ulps", "## Where the errors sit", "## Worst elements",
                    "## Kernel run", "## Settings used"):
        assert heading in text
    assert "* rounding" in text  # changed from the default


def test_shape_mismatch_is_a_shape_error(tmp_path):
    with pytest.raises(emu.ShapeError, match="reference has shape"):
        emu.report(np.zeros((2, 3)), np.zeros((3, 2)), tmp_path, plots=False)


def test_without_matplotlib_says_how_to_get_plots(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    assert not plots.have_matplotlib()
    res, ref = _case(20, 30)
    files = emu.report(res, ref, tmp_path)
    assert set(files) == {"html", "text"} and not list(tmp_path.glob("*.png"))
    assert page.PLOT_HINT in files["text"].read_text()
    assert html.escape(page.PLOT_HINT) in files["html"].read_text()
    assert "summary" in _parse(files["html"]).ids


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    return struct.unpack(">II", data[16:24])


def test_pngs_are_valid_and_linked(tmp_path):
    pytest.importorskip("matplotlib", reason="the PNG plots need matplotlib (the `plot` extra)")
    res, ref = _case()
    files = emu.report(res, ref, tmp_path, kernel_report=_kernel_report())
    expected = {"ulps": "errors_ulps.png", "relative": "errors_relative.png", "heatmap": "error_tiles.png",
                "kernel": "engines.png", "occupancy": "occupancy.png"}
    assert {k: files[k].name for k in expected} == expected
    assert _png_size(files["ulps"]) == (700, 360)  # figsize 7 x 3.6 inches at 100 dpi
    for key in expected:
        w, h = _png_size(files[key])
        assert w >= 300 and h >= 200
    assert sorted(_parse(files["html"]).imgs) == sorted(expected.values())


def test_cli_report_from_files(tmp_path, capsys):
    res, ref = _case(40, 50)
    np.save(tmp_path / "res.npy", res)
    np.save(tmp_path / "ref.npy", ref)
    out = tmp_path / "out"
    assert main(["report", str(tmp_path / "res.npy"), str(tmp_path / "ref.npy"), "--out", str(out),
                 "--no-plots"]) == 0
    printed = capsys.readouterr().out
    assert "max error (float32 ulps)" in printed and "wrote" in printed
    assert (out / "index.html").is_file() and (out / "report.txt").is_file()
    assert main(["report", str(tmp_path / "res.npy"), "--out", str(out)]) == 2


def test_cli_report_of_a_matmul(tmp_path, capsys):
    assert main(["report", "--matmul", "8", "64", "8", "--fmt", "float32", "--out", str(tmp_path), "--no-plots"]) == 0
    assert "emu.matmul [8, 64] @ [64, 8] in float32" in (tmp_path / "report.txt").read_text()


def test_kernel_only_report_and_nd_results(tmp_path):
    files = emu.report(None, None, tmp_path / "k", kernel_report=_kernel_report(), plots=False)
    assert _parse(files["html"]).ids == ["kernel", "settings"]
    assert "## Summary" not in files["text"].read_text()
    res = np.zeros((2, 3, 4))
    ref = res.copy()
    ref[1, 2, 3] = 2.0**-10
    files = emu.report(res, ref, tmp_path / "nd", plots=False)
    cells = _parse(files["html"]).cells
    assert "[5, 3]" in cells  # row 1 * 3 + 2 of the [6, 4] output grid, column 3


def test_bad_calls_write_nothing(tmp_path):
    with pytest.raises(emu.ShapeError):
        emu.report(np.zeros(3), np.zeros(4), tmp_path / "a")
    with pytest.raises(emu.ArgumentError, match="both"):
        emu.report(np.zeros(3), None, tmp_path / "b")
    with pytest.raises(emu.ArgumentError, match="nothing to report"):
        emu.report(None, None, tmp_path / "c")
    assert not any(tmp_path.iterdir())
