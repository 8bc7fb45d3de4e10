"""`tinyinfer report` (one self-contained HTML page) and `tinyinfer profile --plot` (PNGs).

The page is parsed back: its table rows must be the profile's rows (the same names, types
and MACs as `summary`), every picture is an inline <svg>, and nothing in it points at a URL
(it must open offline). The PNG options must write real PNG files (the signature bytes)."""
import os
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from tinyinfer.analysis.html_report import html_report
from tinyinfer.analysis.machine import Machine
from tinyinfer.analysis.plots import layer_points
from tinyinfer.api import load
from tinyinfer.cli import main as cli
from tinyinfer.io.image import bundled_photo

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A fixed roofline, so the page's tests do not measure the (shared, busy) machine.
MACHINE = Machine(peak_flops=200e9, bandwidth=30e9, threads=2)


class _Page(HTMLParser):
    """The page's table cells row by row, its tags, and every attribute value."""

    def __init__(self):
        super().__init__()
        self.rows, self.tags, self.attr_values, self._row = [], [], [], None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attr_values += [v or "" for _, v in attrs]
        if tag == "tr":
            self._row = []
            self.rows.append(self._row)

    def handle_data(self, data):
        if self._row is not None and self.tags[-1] in ("td", "th"):
            self._row.append(data)

    def handle_endtag(self, tag):
        if tag == "table":
            self._row = None


@pytest.fixture(scope="module")
def profiled():
    model = load("mobilenet_v2", weights=None, width_mult=0.35)
    x = np.random.default_rng(0).standard_normal((1, 3, 96, 96)).astype(np.float32)
    return model, model.profile(x, runs=1)


def test_page_table_is_the_summary_and_pictures_are_inline_svg(profiled):
    model, rep = profiled
    text = html_report(rep, MACHINE)
    page = _Page()
    page.feed(text)
    static = model.summary(resolution=96)
    body = [r for r in page.rows[1:] if r and r[0] != "TOTAL"][:len(static.rows)]
    assert [r[0] for r in body] == [r.name for r in static.rows]
    assert [int(r[3].replace(",", "")) for r in body] == [r.cost.macs for r in static.rows]
    assert page.rows[0][:4] == ["layer", "type", "output", "MACs"] and "ms" in page.rows[0]
    assert page.tags.count("svg") == 3
    # one dot per layer that does FLOPs, in each of the two scatter plots
    assert page.tags.count("circle") == 2 * len(layer_points(rep))
    # the memory timeline: one bar per layer (plus the frame's rect of each of 3 plots)
    assert page.tags.count("rect") == len(rep.rows) + 3
    assert not re.search(r"https?:|//|src=|<script|<link", text, re.I)


def test_report_command_writes_the_page(tmp_path, capsys):
    out = tmp_path / "r.html"
    code = cli(["report", "mobilenet_v2", "--width", "0.35", "--runs", "1", "-o", str(out)])
    assert code == 0 and out.read_text().startswith("<!DOCTYPE html>")
    assert "roofline" in out.read_text() and str(out) in capsys.readouterr().out


def test_profile_writes_both_plots_as_png(tmp_path, capsys):
    roof, macs = tmp_path / "roof.png", tmp_path / "macs.png"
    code = cli(["profile", "mobilenet_v2", str(bundled_photo()), "--width", "0.35",
                "--runs", "1", "--plot", str(roof), "--plot-macs-time", str(macs)])
    assert code == 0
    for f in (roof, macs):
        data = f.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5000


def test_plot_name_that_is_not_png_fails_before_measuring(tmp_path, capsys, monkeypatch):
    import tinyinfer.api
    monkeypatch.setattr(tinyinfer.api, "load", lambda *a, **k: pytest.fail("measured"))
    code = cli(["profile", "mobilenet_v2", str(bundled_photo()), "--plot",
                str(tmp_path / "roof.jpg")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and ".png" in err
    assert not os.path.exists(tmp_path / "roof.jpg")
