"""Per-layer reports: one row per kernel that runs, with its counts, and totals.

    rep = model.summary(resolution=160)           # static: from shapes alone
    rep = model.profile(x, runs=5)                # measured: + time, GFLOP/s, % of peak
    print(rep); rep.to_csv(); rep.to_markdown()   # Jupyter shows rep as an HTML table

The rows are the optimized graph's nodes (BN folded, activations fused), so the counts are
those of the work actually done; a row's type names what it absorbed (+bn1+act).

Columns (costs.py defines the counts):
    MACs, FLOPs, params   as the kernels' cost models count them
    bytes                 activations read + weights read + output written (itemsize each)
    FLOP/B                arithmetic intensity, the roofline's x axis
    memory                activation bytes alive while the layer runs (memory.liveness);
                          the TOTAL row shows the peak, not a sum
    <convention>          with summary(convention=...) other than the default: that
                          convention's count per layer (conventions.py), e.g. fvcore's
    ms, GFLOP/s, % peak   profile() only: each layer's fastest wall time over the runs (the
                          one least disturbed by other processes: on a shared 2-core
                          machine a median still catches scheduler stalls), the FLOP/s
                          it achieved, and that as a share of machine.peak_flops().
                          The FLOPs are the layer's counted ones: a 3x3 conv that runs
                          on Winograd's algorithm (conv_winograd.py) multiplies 2.25x
                          less, so its rate is an effective one and can pass 100%
"""
from __future__ import annotations

import csv
import html
import io
from dataclasses import dataclass

from ..engine.costs import Cost
from ..engine.ops import layer_type, node_costs


@dataclass
class Row:
    name: str
    kind: str
    type: str
    out_shape: tuple
    cost: Cost
    fused: tuple = ()
    memory: int = 0                  # live activation bytes while this layer runs
    count: int | None = None         # the report's convention's count (None: default)
    time: float | None = None        # measured seconds (profile only)


_NOTES_TITLE = "What this tool leaves out, or counts by a rule of its own"


class Report:
    BASE = ("layer", "type", "output", "MACs", "FLOPs", "params", "bytes", "FLOP/B", "memory")

    def __init__(self, model_name: str, input_shape, rows: list[Row], itemsize: int = 4,
                 counted=None, peak_flops: float | None = None):
        self.model_name = model_name
        self.input_shape = tuple(input_shape)
        self.rows = rows
        self.itemsize = itemsize
        self.counted = counted                 # conventions.Counted, or None (default)
        self.peak_flops = peak_flops           # machine peak, FLOP/s (profile only)
        self.total = sum((r.cost for r in rows), Cost())

    macs = property(lambda self: self.total.macs)
    flops = property(lambda self: self.total.flops)
    params = property(lambda self: self.total.params)
    peak_memory = property(lambda self: max((r.memory for r in self.rows), default=0))
    profiled = property(lambda self: any(r.time is not None for r in self.rows))

    @property
    def time(self) -> float | None:
        """Sum of the per-layer times (s), profile only."""
        return sum(r.time for r in self.rows) if self.profiled else None

    @property
    def count(self) -> int:
        """The total under the report's convention (MACs for the default "paper")."""
        return self.counted.total if self.counted else self.macs

    # ---- breakdowns ----------------------------------------------------------------------
    def by_type(self) -> dict[str, Cost]:
        out: dict[str, Cost] = {}
        for r in self.rows:
            out[r.type] = out.get(r.type, Cost()) + r.cost
        return out

    def type_table(self) -> list[tuple]:
        """(type, layers, % of MACs, % of params, % of FLOPs[, % of time]) per layer type,
        largest MAC share first: MobileNet's Table 2, for any network."""
        pct = lambda part, whole: round(100 * part / whole, 2) if whole else 0.0  # noqa: E731
        out = []
        for t, c in sorted(self.by_type().items(), key=lambda kv: -kv[1].macs):
            row = (t, sum(r.type == t for r in self.rows), pct(c.macs, self.macs),
                   pct(c.params, self.params), pct(c.flops, self.flops))
            if self.profiled:
                row += (pct(sum(r.time for r in self.rows if r.type == t), self.time),)
            out.append(row)
        return out

    def type_columns(self) -> tuple:
        return ("type", "layers", "% MACs", "% params", "% FLOPs") + \
            (("% time",) if self.profiled else ())

    # ---- the table -----------------------------------------------------------------------
    @property
    def columns(self) -> tuple:
        cols = self.BASE
        if self.counted:
            cols += (self.counted.convention.unit,)
        if self.profiled:
            cols += ("ms", "GFLOP/s", "% peak")
        return cols

    def _timing(self, flops: int, seconds: float) -> tuple:
        gflops = flops / seconds / 1e9 if seconds > 0 else 0.0
        share = 100 * gflops * 1e9 / self.peak_flops if self.peak_flops else 0.0
        return round(seconds * 1e3, 3), round(gflops, 2), round(share, 1)

    def table(self) -> list[tuple]:
        """One tuple per row, then the TOTAL row (memory: the peak, not a sum)."""
        b = self.itemsize
        out = []
        for r in self.rows:
            kind = r.type + ("+" + "+".join(_short(f) for f in r.fused) if r.fused else "")
            row = (r.name, kind, "x".join(map(str, r.out_shape)), r.cost.macs, r.cost.flops,
                   r.cost.params, r.cost.bytes_moved(b), round(r.cost.intensity(b), 2), r.memory)
            if self.counted:
                row += (r.count,)
            if self.profiled:
                row += self._timing(r.cost.flops, r.time)
            out.append(row)
        t = self.total
        total = ("TOTAL", "", "", t.macs, t.flops, t.params, t.bytes_moved(b),
                 round(t.intensity(b), 2), self.peak_memory)
        if self.counted:
            total += (self.counted.total,)
        if self.profiled:
            total += self._timing(t.flops, self.time)
        out.append(total)
        return out

    def headline(self) -> str:
        parts = [f"{self.model_name} on input {'x'.join(map(str, self.input_shape))}: "
                 f"{self.macs / 1e6:,.1f}M MACs, {self.params / 1e6:,.3f}M params"]
        if self.counted:
            c = self.counted
            parts.append(f"{c.convention.name} convention: {c.total / 1e6:,.1f}M "
                         f"{c.convention.unit}, {c.params / 1e6:,.3f}M params")
        parts.append(f"peak activation memory {self.peak_memory / 1e6:,.2f} MB "
                     f"({self.itemsize}-byte elements)")
        if self.profiled:
            parts.append(f"{self.time * 1e3:,.2f} ms measured")
        return "; ".join(parts)

    def __repr__(self):
        return f"<Report {self.headline()}>"

    def notes(self) -> list[str]:
        """What the report's counting tool ignores or counts by a rule of its own in this
        network (conventions.Counted.notes); empty for tinyinfer's own conventions."""
        return list(self.counted.notes) if self.counted else []

    def __str__(self):
        text = self.headline() + "\n" + _text_table(self.columns, self.table(), 3, total=True) \
            + "\n\nBy layer type:\n" + _text_table(self.type_columns(), self.type_table(), 1)
        if self.notes():
            text += "\n\n" + _NOTES_TITLE + ":\n" + "\n".join(f"  - {n}" for n in self.notes())
        return text

    def _repr_html_(self):
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes())
        return (f"<p><b>{html.escape(self.headline())}</b></p>"
                + _html_table(self.columns, self.table())
                + "<p>By layer type:</p>" + _html_table(self.type_columns(), self.type_table())
                + (f"<p>{_NOTES_TITLE}:</p><ul>{notes}</ul>" if notes else ""))

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(self.columns)
        w.writerows(self.table())
        return buf.getvalue()

    def to_markdown(self) -> str:
        cols = self.columns
        lines = ["| " + " | ".join(cols) + " |",
                 "|" + "|".join("---" if i < 3 else "---:"
                                for i in range(len(cols))) + "|"]
        lines += ["| " + " | ".join(_fmt(v) for v in r) + " |" for r in self.table()]
        return "\n".join(lines)


def _fmt(v) -> str:
    return f"{v:,}" if isinstance(v, int) else str(v)


def _text_table(columns, rows, text_columns: int, total=False) -> str:
    cells = [tuple(columns)] + [tuple(_fmt(v) for v in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    lines = []
    for i, r in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if j < text_columns else c.rjust(w)
                               for j, (c, w) in enumerate(zip(r, widths))))
        if i == 0 or (total and i == len(cells) - 2):
            lines.append(rule)
    return "\n".join(lines)


def _html_table(columns, rows) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(
        f"<td style='text-align:{'left' if isinstance(v, str) else 'right'}'>"
        f"{html.escape(_fmt(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1] if not name.endswith(".act") else "act"


def summarize(model, input_shape, itemsize: int = 4, convention: str = "paper",
              times: dict | None = None, peak_flops: float | None = None) -> Report:
    """The report of ``model`` at ``input_shape``. ``times``: node name -> seconds, from
    ``profile``; ``convention``: see conventions.py (the default adds no column)."""
    from .conventions import count, get_convention
    from .memory import liveness
    get_convention(convention)
    lv = liveness(model.plan, input_shape, itemsize)
    live = dict(zip(lv.names, lv.live_bytes))
    counted = None if convention == "paper" else count(model, convention, input_shape)
    rows = []
    for node, out_shape, cost in node_costs(model.plan, input_shape):
        rows.append(Row(node.name, node.kind, layer_type(node),
                        out_shape, cost, tuple(node.fused), live[node.name],
                        counted.per_row.get(node.name, 0) if counted else None,
                        times.get(node.name) if times is not None else None))
    return Report(model.name, input_shape, rows, itemsize, counted, peak_flops)


def profile(model, x, runs: int = 5, warmup: int = 1, itemsize: int = 4,
            convention: str = "paper") -> Report:
    """Run ``model`` on ``x`` (a (N, 3, H, W) float32 array, or an image path / PIL image /
    HxWx3 uint8 array, preprocessed as the model expects) ``warmup + runs`` times and
    report each layer's fastest time over the timed runs next to its counts."""
    import numpy as np

    from ..errors import InputError
    from .machine import peak_flops
    from ..engine.runtime import execute
    if runs < 1:
        raise InputError(f"runs must be at least 1, got {runs}")
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        from ..io.image import preprocess
        s = model.spec
        x = preprocess(x, resize=s.resize, crop=s.input_size, mean=s.mean, std=s.std,
                       interpolation=s.interpolation)
    x = model.check_input(x)
    for _ in range(warmup):
        execute(model.plan, x)
    samples: dict[str, list[float]] = {}
    for _ in range(runs):
        t: dict[str, float] = {}
        execute(model.plan, x, timings=t)
        for k, v in t.items():
            samples.setdefault(k, []).append(v)
    times = {k: min(v) for k, v in samples.items()}
    return summarize(model, x.shape, itemsize, convention, times, peak_flops())
