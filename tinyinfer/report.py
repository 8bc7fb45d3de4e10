"""Per-layer reports: one row per kernel that runs, with its counts, and totals.

The rows are the optimized graph's nodes (BN folded, activations fused), so the counts are
those of the work actually done; a row's ``fused`` column names what it absorbed.
"""
from __future__ import annotations

import csv
import html
import io
from dataclasses import dataclass

from .costs import Cost
from .ops import node_costs


def layer_type(node, in_shape) -> str:
    """The papers' layer classes (MobileNet Table 2: Conv 1x1, Conv DW 3x3, Conv 3x3, FC)."""
    if node.kind == "conv2d":
        cout, cin_g, kh, kw = node.param_shapes["weight"]
        g = node.attrs["groups"]
        if g > 1 and g == in_shape[1] and cin_g == 1:
            return f"Conv DW {kh}x{kw}"
        if g > 1:
            return f"Group conv {kh}x{kw}"
        return f"Conv {kh}x{kw}"
    if node.kind == "linear":
        return "Fully Connected"
    return {"global_avgpool": "Pool", "avg_pool2d": "Pool", "max_pool2d": "Pool",
            "add": "Add", "act": "Activation", "batchnorm": "BatchNorm"}.get(node.kind, node.kind)


@dataclass
class Row:
    name: str
    kind: str
    type: str
    out_shape: tuple
    cost: Cost
    fused: tuple = ()


class Report:
    COLUMNS = ("layer", "type", "output", "MACs", "FLOPs", "params", "bytes", "FLOP/B")

    def __init__(self, model_name: str, input_shape, rows: list[Row], itemsize: int = 4):
        self.model_name = model_name
        self.input_shape = tuple(input_shape)
        self.rows = rows
        self.itemsize = itemsize
        self.total = sum((r.cost for r in rows), Cost())

    macs = property(lambda self: self.total.macs)
    flops = property(lambda self: self.total.flops)
    params = property(lambda self: self.total.params)

    def by_type(self) -> dict[str, Cost]:
        out: dict[str, Cost] = {}
        for r in self.rows:
            out[r.type] = out.get(r.type, Cost()) + r.cost
        return out

    def table(self) -> list[tuple]:
        b = self.itemsize
        rows = [(r.name, r.type + ("+" + "+".join(_short(f) for f in r.fused) if r.fused else ""),
                 "x".join(map(str, r.out_shape)), r.cost.macs, r.cost.flops, r.cost.params,
                 r.cost.bytes_moved(b), round(r.cost.intensity(b), 2)) for r in self.rows]
        t = self.total
        rows.append(("TOTAL", "", "", t.macs, t.flops, t.params, t.bytes_moved(b),
                     round(t.intensity(b), 2)))
        return rows

    def __str__(self):
        rows = [self.COLUMNS] + [tuple(f"{v:,}" if isinstance(v, int) else str(v) for v in r)
                                 for r in self.table()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.COLUMNS))]
        head = (f"{self.model_name} on input {'x'.join(map(str, self.input_shape))}: "
                f"{self.macs / 1e6:,.1f}M MACs, {self.params / 1e6:,.3f}M params")
        lines = [head]
        for i, r in enumerate(rows):
            lines.append("  ".join(c.ljust(w) if j < 3 else c.rjust(w)
                                   for j, (c, w) in enumerate(zip(r, widths))))
            if i == 0 or i == len(rows) - 2:
                lines.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
        return "\n".join(lines)

    def _repr_html_(self):
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.COLUMNS)
        body = "".join("<tr>" + "".join(
            f"<td style='text-align:{'left' if j < 3 else 'right'}'>"
            f"{html.escape(f'{v:,}' if isinstance(v, int) else str(v))}</td>"
            for j, v in enumerate(r)) + "</tr>" for r in self.table())
        return (f"<p><b>{html.escape(self.model_name)}</b>: {self.macs / 1e6:,.1f}M MACs, "
                f"{self.params / 1e6:,.3f}M params</p><table><tr>{head}</tr>{body}</table>")

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(self.COLUMNS)
        w.writerows(self.table())
        return buf.getvalue()

    def to_markdown(self) -> str:
        lines = ["| " + " | ".join(self.COLUMNS) + " |",
                 "|" + "|".join("---" if i < 3 else "---:" for i in range(len(self.COLUMNS))) + "|"]
        lines += ["| " + " | ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in r) + " |"
                  for r in self.table()]
        return "\n".join(lines)


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1] if not name.endswith(".act") else "act"


def summarize(model, input_shape, itemsize: int = 4) -> Report:
    from .ops import infer_shapes
    shapes = infer_shapes(model.plan, input_shape)
    rows = []
    for node, out_shape, cost in node_costs(model.plan, input_shape):
        t = layer_type(node, shapes[node.inputs[0]])
        rows.append(Row(node.name, node.kind, t, out_shape, cost, tuple(node.fused)))
    return Report(model.name, input_shape, rows, itemsize)
