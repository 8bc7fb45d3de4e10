"""Two pictures of a profiled network, as PNG files (matplotlib) and as inline SVG points.

    rep = model.profile("photo.jpg")
    roofline_png(rep, machine(), "roofline.png")   # each layer on this machine's roofline
    macs_time_png(rep, "macs_time.png")            # each layer's MACs vs its measured time

The roofline puts every layer at x = its arithmetic intensity (FLOP per byte moved) and
y = the GFLOP/s it reached; the machine's two lines (bandwidth x intensity, and the peak)
bound it from above (machine.py). MACs vs time shows which layers cost more time than their
share of the work: on a CPU the depthwise layers sit far above the line that the
pointwise ones follow.

``layer_points`` is the one place the plotted numbers come from, so the PNGs here and the
HTML report's SVG (html_report.py) show the same points.

matplotlib is drawn through its Agg canvas directly (``Figure`` + ``FigureCanvasAgg``), not
through pyplot: no global backend is switched, no window can open, and nothing is left in
pyplot's figure list of a long-running process.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, OutputFileError


@dataclass(frozen=True)
class LayerPoint:
    name: str
    type: str
    macs: int
    intensity: float        # FLOP / byte
    ms: float               # the layer's measured (fastest) time
    gflops: float           # FLOP/s reached, / 1e9


def layer_points(rep) -> list[LayerPoint]:
    """One point per layer of a profiled report (rep.rows with .time), in network order.
    Layers of zero FLOPs (reshapes, concats) have no place on a roofline and are left out."""
    if not rep.profiled:
        raise InputError("these plots need measured times: use model.profile(...) "
                         "(or `tinyinfer profile`), not summary")
    out = []
    for r in rep.rows:
        if r.cost.flops == 0 or r.time is None or r.time <= 0:
            continue
        out.append(LayerPoint(r.name, r.type, r.cost.macs, r.cost.intensity(rep.itemsize),
                              r.time * 1e3, r.cost.flops / r.time / 1e9))
    return out


def _figure():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise InputError("plots need matplotlib: pip install matplotlib "
                         "(or tinyinfer's [notebooks] extra)") from None
    fig = Figure(figsize=(7, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _by_type(points):
    groups: dict[str, list[LayerPoint]] = {}
    for p in points:
        groups.setdefault(p.type, []).append(p)
    return groups


def check_png_path(path) -> Path:
    """``path`` as a Path if it names a .png file (checked before any measuring)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise OutputFileError(f"{path}: the plot is written as PNG; give a file name "
                              f"ending in .png")
    return path


def _save(fig, path) -> Path:
    path = check_png_path(path)
    try:
        fig.savefig(path, format="png")
    except OSError as e:
        raise OutputFileError(f"cannot write {path}: {e.strerror or e}; choose a "
                              f"writable path") from None
    return path


def roofline_png(rep, machine, path) -> Path:
    """Each layer of ``rep`` (profiled) on ``machine``'s roofline (analysis.machine.Machine),
    log-log, one colour per layer type; written to ``path`` (.png)."""
    points = layer_points(rep)
    fig = _figure()
    ax = fig.add_subplot()
    lo = min([p.intensity for p in points] + [machine.ridge / 10]) / 2
    hi = max([p.intensity for p in points] + [machine.ridge * 10]) * 2
    ax.plot([lo, machine.ridge, hi],
            [lo * machine.bandwidth / 1e9, machine.peak_flops / 1e9, machine.peak_flops / 1e9],
            color="black", lw=1.5, label=f"roofline ({machine})")
    for t, ps in _by_type(points).items():
        ax.scatter([p.intensity for p in ps], [p.gflops for p in ps], s=18, label=t)
    ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP / byte)",
           ylabel="GFLOP/s reached", title=f"{rep.model_name}: each layer on the roofline")
    ax.legend(fontsize=6)
    return _save(fig, path)


def macs_time_png(rep, path) -> Path:
    """Each layer's MACs (x) vs its measured ms (y), one colour per layer type."""
    points = layer_points(rep)
    fig = _figure()
    ax = fig.add_subplot()
    for t, ps in _by_type(points).items():
        ax.scatter([p.macs / 1e6 for p in ps], [p.ms for p in ps], s=18, label=t)
    ax.set(xlabel="MMACs", ylabel="measured ms (fastest run)",
           title=f"{rep.model_name}: work vs time per layer")
    ax.legend(fontsize=7)
    return _save(fig, path)
