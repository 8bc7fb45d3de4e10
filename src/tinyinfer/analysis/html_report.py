"""One self-contained HTML page about a profiled network: `tinyinfer report NAME -o r.html`.

    rep = model.profile("photo.jpg")
    write_html_report(rep, machine(), "report.html")

The page holds the per-layer table (the same rows as ``summary``/``profile``, from
Report.table()), then three pictures drawn as inline SVG, so the file opens offline and
references no URL at all (no scripts, fonts or stylesheets fetched):
    MACs vs measured time per layer   which layers cost more time than their work
    the roofline                      each layer's GFLOP/s vs its FLOP per byte, under this
                                      machine's measured peak and bandwidth (machine.py)
    the memory timeline               activation bytes alive while each layer runs
                                      (memory.liveness, the report's "memory" column)
The points are plots.layer_points, the same as the PNGs of `tinyinfer profile --plot`.
"""
from __future__ import annotations

import html
import math
from pathlib import Path

from ..errors import OutputFileError
from .plots import layer_points
from .report import _html_table

# One colour per layer type, in order of first appearance (matplotlib's "tab10").
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
W, H, PAD = 640, 360, 56          # the SVG size and its margin for the axes' labels


class _Axes:
    """Data -> SVG pixel coordinates, linear or log10 on each axis."""

    def __init__(self, xs, ys, logx: bool, logy: bool):
        self.logx, self.logy = logx, logy
        self.x0, self.x1 = self._range(xs, logx)
        self.y0, self.y1 = self._range(ys, logy)

    @staticmethod
    def _range(vs, log):
        vs = [math.log10(v) for v in vs if v > 0] if log else list(vs)
        lo, hi = min(vs), max(vs)
        if hi == lo:
            lo, hi = lo - 1, hi + 1
        pad = 0.05 * (hi - lo)
        return lo - pad, hi + pad

    def x(self, v):
        v = math.log10(v) if self.logx else v
        return PAD + (v - self.x0) / (self.x1 - self.x0) * (W - 2 * PAD)

    def y(self, v):
        v = math.log10(v) if self.logy else v
        return H - PAD - (v - self.y0) / (self.y1 - self.y0) * (H - 2 * PAD)


def _svg(title, axes, body, xlabel, ylabel) -> str:
    ticks = []
    for lo, hi, log, horizontal in ((axes.x0, axes.x1, axes.logx, True),
                                    (axes.y0, axes.y1, axes.logy, False)):
        for i in range(5):
            v = lo + (hi - lo) * (i + 0.5) / 5
            text = f"{10 ** v:.3g}" if log else f"{v:.3g}"
            pos = (axes.x(10 ** v if log else v) if horizontal
                   else axes.y(10 ** v if log else v))
            ticks.append(f"<text x='{pos:.1f}' y='{H - PAD + 14}' text-anchor='middle'>{text}"
                         f"</text>" if horizontal else
                         f"<text x='{PAD - 4}' y='{pos:.1f}' text-anchor='end'>{text}</text>")
    return (f"<svg width='{W}' height='{H}' "
            f"font-size='10' font-family='sans-serif'><title>{html.escape(title)}</title>"
            f"<rect x='{PAD}' y='{PAD}' width='{W - 2 * PAD}' height='{H - 2 * PAD}' "
            f"fill='none' stroke='#888'/>"
            f"<text x='{W / 2}' y='20' text-anchor='middle' font-size='13'>"
            f"{html.escape(title)}</text>"
            f"<text x='{W / 2}' y='{H - 12}' text-anchor='middle'>{html.escape(xlabel)}</text>"
            f"<text transform='translate(14 {H / 2}) rotate(-90)' text-anchor='middle'>"
            f"{html.escape(ylabel)}</text>" + "".join(ticks) + body + "</svg>")


def _dots(points, axes, colour_of, x_of, y_of) -> str:
    return "".join(
        f"<circle cx='{axes.x(x_of(p)):.1f}' cy='{axes.y(y_of(p)):.1f}' r='3' "
        f"fill='{colour_of[p.type]}'><title>{html.escape(p.name)} ({html.escape(p.type)})"
        f"</title></circle>" for p in points)


def _legend(colour_of) -> str:
    return "<p>" + " ".join(f"<span style='color:{c}'>&#9679;</span> {html.escape(t)}"
                            for t, c in colour_of.items()) + "</p>"


def macs_time_svg(points, colour_of, model_name) -> str:
    axes = _Axes([p.macs / 1e6 for p in points], [p.ms for p in points], False, False)
    return _svg(f"{model_name}: MACs vs measured time per layer", axes,
                _dots(points, axes, colour_of, lambda p: p.macs / 1e6, lambda p: p.ms),
                "MMACs", "ms (fastest run)")


def roofline_svg(points, colour_of, model_name, machine) -> str:
    peak, ridge = machine.peak_flops / 1e9, machine.ridge
    xs = [p.intensity for p in points] + [ridge / 10, ridge * 10]
    ys = [p.gflops for p in points] + [peak * 1.5, min(xs) * machine.bandwidth / 1e9]
    axes = _Axes(xs, ys, True, True)
    lo, hi = min(xs), max(xs)
    roof = " ".join(f"{axes.x(x):.1f},{axes.y(y):.1f}" for x, y in
                    ((lo, lo * machine.bandwidth / 1e9), (ridge, peak), (hi, peak)))
    line = (f"<polyline points='{roof}' fill='none' stroke='black' stroke-width='1.5'>"
            f"<title>roofline: {html.escape(str(machine))}</title></polyline>")
    return _svg(f"{model_name}: roofline ({machine})", axes,
                line + _dots(points, axes, colour_of, lambda p: p.intensity,
                             lambda p: p.gflops),
                "arithmetic intensity (FLOP / byte)", "GFLOP/s reached")


def memory_svg(rep) -> str:
    """Live activation MB (y) at each layer in execution order (x), as bars."""
    mb = [r.memory / 1e6 for r in rep.rows]
    axes = _Axes([0, len(mb)], [0] + mb, False, False)
    width = max(1.0, (W - 2 * PAD) / max(len(mb), 1) - 1)
    bars = "".join(
        f"<rect x='{axes.x(i):.1f}' y='{axes.y(m):.1f}' width='{width:.1f}' "
        f"height='{axes.y(0) - axes.y(m):.1f}' fill='#1f77b4'><title>"
        f"{html.escape(r.name)}: {m:.2f} MB</title></rect>"
        for i, (r, m) in enumerate(zip(rep.rows, mb)))
    return _svg(f"{rep.model_name}: live activation memory (peak {rep.peak_memory / 1e6:.2f} "
                f"MB)", axes, bars, "layer (execution order)", "MB alive")


def html_report(rep, machine, note: str = "") -> str:
    """The page as a string: ``rep`` a profiled Report, ``machine`` a machine.Machine."""
    points = layer_points(rep)
    colour_of: dict[str, str] = {}
    for p in points:
        colour_of.setdefault(p.type, PALETTE[len(colour_of) % len(PALETTE)])
    title = f"tinyinfer report: {rep.model_name}"
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif}}"
            "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;"
            "padding:2px 6px}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(rep.headline())}</p>"
            + (f"<p>{html.escape(note)}</p>" if note else "")
            + "<h2>Per layer</h2>" + _html_table(rep.columns, rep.table())
            + "<h2>MACs vs time</h2>" + _legend(colour_of)
            + macs_time_svg(points, colour_of, rep.model_name)
            + "<h2>Roofline</h2>" + roofline_svg(points, colour_of, rep.model_name, machine)
            + "<h2>Memory timeline</h2>" + memory_svg(rep) + "</body></html>")


def write_html_report(rep, machine, path, note: str = "") -> Path:
    path = Path(path)
    try:
        path.write_text(html_report(rep, machine, note), encoding="utf-8")
    except OSError as e:
        raise OutputFileError(f"cannot write {path}: {e.strerror or e}; choose a "
                              f"writable path") from None
    return path
