"""The papers' tables, reproduced from tinyinfer's own counts (../shared/seeds has the
originals). Each function returns a ``Table``: our numbers next to the published ones, with
a note on every known difference. Each is also a test (tests/test_paper_tables.py, where
the published numbers are written out again, independently of this file) and a notebook
cell (notebooks/02, 03, 04).

    MobileNet (Howard et al. 2017, arXiv:1704.04861)
        table_2()         resource per layer type (share of Mult-Adds and parameters)
        table_4()         full-convolution MobileNet vs MobileNet
        tables_6_7()      width multiplier alpha and resolution
        tables_8_9()      comparison with GoogLeNet, VGG16, SqueezeNet, AlexNet
        separable_ratio() each depthwise separable layer vs the full conv it replaces:
                          exactly 1/N + 1/D_K^2
    MobileNetV2 (Sandler et al. 2018, arXiv:1801.04381)
        mobilenet_v2_memory()  Table 3: max channels / memory per spatial resolution
    EfficientNet (Tan & Le 2019, arXiv:1905.11946)
        efficientnet_scaling() B0-B7: compound coefficient phi vs FLOPs and parameters

"Mult-Adds" are MACs (one multiply-accumulate each) with BN folded: tinyinfer's default
"paper" convention (conventions.py).
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field

from ..engine.graph import Graph
from .memory import materialized
from ..models.builder import NetBuilder
from ..models.mobilenet_v1 import MOBILENET_V1
from ..models.registry import ModelSpec


@dataclass(repr=False)
class Table:
    title: str
    columns: tuple
    rows: list[tuple]
    notes: list[str] = field(default_factory=list)

    def __str__(self):
        cells = [tuple(self.columns)] + [tuple(_fmt(v) for v in r) for r in self.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        lines = [self.title]
        for i, r in enumerate(cells):
            lines.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w)
                                   for j, (c, w) in enumerate(zip(r, widths))))
            if i == 0:
                lines.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
        return "\n".join(lines + [f"* {n}" for n in self.notes])

    __repr__ = __str__

    def _repr_html_(self):
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in r) + "</tr>"
                       for r in self.rows)
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return (f"<p><b>{html.escape(self.title)}</b></p><table><tr>{head}</tr>{body}</table>"
                + (f"<ul>{notes}</ul>" if notes else ""))


def _fmt(v) -> str:
    return f"{v:,}" if isinstance(v, (int, float)) else str(v)


def counting_model(name: str, **build_kwargs):
    """Model ``name`` with all-zero weights: enough to count, and much faster than random
    weights for VGG16's 138M (np.zeros does not touch the memory)."""
    import numpy as np

    from ..api import get_spec
    from ..model import Model
    spec = get_spec(name)
    kwargs = {**spec.defaults, **build_kwargs}
    graph = spec.build(**kwargs)
    for node in graph:
        node.params = {p: np.zeros(s, np.float32) for p, s in node.param_shapes.items()}
    return Model(spec, graph, kwargs, "zeros (for counting)")


def _summary(name, resolution=None, **kw):
    return counting_model(name, **kw).summary(resolution=resolution)


M = 1e6

# ---- MobileNet ---------------------------------------------------------------------------
TABLE_2 = {"Conv 1x1": (94.86, 74.59), "Conv DW 3x3": (3.06, 1.06), "Conv 3x3": (1.19, 0.02),
           "Fully Connected": (0.18, 24.33)}     # % Mult-Adds, % parameters


def table_2() -> Table:
    rep = _summary("mobilenetv1_100")
    by = rep.by_type()
    rows = [(t, round(100 * by[t].macs / rep.macs, 2), pub[0],
             round(100 * by[t].params / rep.params, 2), pub[1]) for t, pub in TABLE_2.items()]
    return Table("MobileNet Table 2: resource per layer type",
                 ("type", "% Mult-Adds", "paper", "% params", "paper"), rows, [
                     "the paper's 1.19% for the first 3x3 conv is a digit swap of 1.91%: its "
                     "four shares then sum to 100.01% instead of 99.29%",
                     "our parameters include one folded BN bias per channel (the paper leaves "
                     "BN out), which lifts the depthwise share by ~0.1 point"])


def mobilenet_v1_fullconv(width_mult: float = 1.0, num_classes: int = 1000) -> Graph:
    """Table 4's "Conv MobileNet": MobileNet with every depthwise separable layer (3x3
    depthwise + 1x1 pointwise) replaced by one standard 3x3 conv of the same input, output
    and stride. Names as in mobilenetv1_100, the pair's conv called ``conv``."""
    c = lambda ch: int(ch * width_mult)      # noqa: E731  (Table 1 widths: multiples of 8)
    b = NetBuilder()
    x = b.conv_bn_act(Graph.INPUT, "conv_stem", "bn1", c(32), 3, 2, act="relu6")
    for s, (n, stride, out_ch) in enumerate(MOBILENET_V1):
        for i in range(n):
            x = b.conv_bn_act(x, f"blocks.{s}.{i}.conv", f"blocks.{s}.{i}.bn1", c(out_ch), 3,
                              stride if i == 0 else 1, act="relu6")
    x = b.global_pool("global_pool", x)
    b.linear("classifier", x, num_classes)
    return b.graph


FULLCONV_SPEC = ModelSpec(name="mobilenetv1_fullconv", build=mobilenet_v1_fullconv,
                          paper="Howard et al. 2017, Table 4 (Conv MobileNet)",
                          reference="none: the paper's ablation, built here")


def fullconv_model(width_mult: float = 1.0):
    """The Conv MobileNet as a tinyinfer.Model with random weights (not registered: it is an
    ablation, with no reference implementation or checkpoint)."""
    from ..model import Model
    from ..io.weights import random_init
    g = mobilenet_v1_fullconv(width_mult)
    random_init(g)    # 29M weights: runnable, e.g. to time it against MobileNet
    return Model(FULLCONV_SPEC, g, {"width_mult": width_mult}, "random init")


TABLE_4 = {"Conv MobileNet": (4866, 29.3), "MobileNet": (569, 4.2)}   # Mult-Adds M, params M


def table_4() -> Table:
    full = fullconv_model().summary()
    sep = _summary("mobilenetv1_100")
    rows = [(name, round(rep.macs / M, 1), TABLE_4[name][0], round(rep.params / M, 2),
             TABLE_4[name][1]) for name, rep in (("Conv MobileNet", full), ("MobileNet", sep))]
    return Table("MobileNet Table 4: depthwise separable vs full convolution",
                 ("model", "M Mult-Adds", "paper", "M params", "paper"), rows,
                 [f"separable / full: {sep.macs / full.macs:.3f} of the Mult-Adds, "
                  f"{sep.params / full.params:.3f} of the parameters"])


# (alpha, resolution) -> (Mult-Adds M, params M), Tables 6 and 7
TABLES_6_7 = {(1.0, 224): (569, 4.2), (0.75, 224): (325, 2.6), (0.5, 224): (149, 1.3),
              (0.25, 224): (41, 0.5), (1.0, 192): (418, 4.2), (1.0, 160): (290, 4.2),
              (1.0, 128): (186, 4.2)}


def tables_6_7() -> Table:
    rows = []
    for (alpha, res), (madds, params) in TABLES_6_7.items():
        rep = _summary("mobilenetv1_100", res, width_mult=alpha)
        rows.append((f"{alpha:.2f} MobileNet-{res}", round(rep.macs / M, 1), madds,
                     round(rep.params / M, 2), params))
    return Table("MobileNet Tables 6 and 7: width multiplier and resolution",
                 ("model", "M Mult-Adds", "paper", "M params", "paper"), rows,
                 ["Mult-Adds scale with alpha^2 and resolution^2; parameters with alpha^2 "
                  "only (the FC layer's 1024 x 1000 with alpha, hence not exactly)"])


# name, tinyinfer model, build kwargs, resolution, published (Mult-Adds M, params M)
TABLES_8_9 = [
    ("1.0 MobileNet-224", "mobilenetv1_100", {}, 224, (569, 4.2)),
    ("GoogleNet", "googlenet", {}, 224, (1550, 6.8)),
    ("VGG 16", "vgg16", {}, 224, (15300, 138)),
    ("0.50 MobileNet-160", "mobilenetv1_100", {"width_mult": 0.5}, 160, (76, 1.32)),
    ("Squeezenet", "squeezenet1_0", {}, 224, (1700, 1.25)),
    ("AlexNet", "alexnet", {}, 224, (720, 60)),
]


def tables_8_9() -> Table:
    rows = []
    for label, name, kw, res, (madds, params) in TABLES_8_9:
        rep = _summary(name, res, **kw)
        rows.append((label, name, round(rep.macs / M, 1), madds, round(rep.params / M, 2), params))
    return Table("MobileNet Tables 8 and 9: comparison to popular models",
                 ("model", "tinyinfer", "M Mult-Adds", "paper", "M params", "paper"), rows, [
                     "GoogLeNet: torchvision's (counted here) uses a 3x3 conv where the "
                     "paper's Inception branch has 5x5, and adds BN: 3% fewer Mult-Adds",
                     "SqueezeNet: the paper's 1700 is FLOPs (2 per multiply-add): SqueezeNet "
                     "1.0 has 819M Mult-Adds, 1638M FLOPs",
                     "AlexNet: torchvision's single-tower variant (Krizhevsky 2014) has 61.1M "
                     "parameters; the paper rounds the original's to 60M"])


def separable_ratio() -> Table:
    """Each MobileNet depthwise separable layer next to the standard conv it replaces:
    Mult-Adds ratio = 1/N + 1/D_K^2 (D_K = 3, N = output channels), exactly."""
    sep = _summary("mobilenetv1_100").rows
    full = {r.name: r for r in fullconv_model().summary().rows}
    rows = []
    for dw, pw in zip(sep, sep[1:]):
        if dw.type == "Conv DW 3x3" and pw.type == "Conv 1x1":
            prefix = dw.name.rsplit(".", 1)[0]
            std = full[f"{prefix}.conv"]
            n = pw.out_shape[1]
            rows.append((prefix, f"{dw.out_shape[1]} -> {n}", dw.out_shape[2],
                         dw.cost.macs + pw.cost.macs, std.cost.macs,
                         round((dw.cost.macs + pw.cost.macs) / std.cost.macs, 5),
                         round(1 / n + 1 / 9, 5)))
    return Table("Depthwise separable vs standard 3x3 conv, layer by layer",
                 ("layer", "M -> N", "D_F", "dw + pw MACs", "standard MACs", "ratio",
                  "1/N + 1/9"), rows)


# ---- MobileNetV2 Table 3 -----------------------------------------------------------------
# resolution -> ((max channels, memory in Kb), ...) for MobileNetV1, MobileNetV2
TABLE_3 = {112: ((64, 1600), (16, 400)), 56: ((128, 800), (32, 200)),
           28: ((256, 400), (64, 100)), 14: ((512, 200), (160, 62)),
           7: ((1024, 199), (320, 32)), 1: ((1024, 2), (1280, 2))}
TABLE_3_MAX = (1600, 400)


def mobilenet_v2_memory(itemsize: int = 2, streaming: bool = True) -> Table:
    """MobileNetV2 Table 3 from memory.materialized (see its docstring for the differences
    with the paper: its 56/28/14 rows and MobileNetV1's 7x7 row)."""
    ours = {}
    for i, name in enumerate(("mobilenetv1_100", "mobilenet_v2")):
        m = counting_model(name)
        for r in materialized(m.plan, (1, 3, 224, 224), itemsize, streaming):
            ours.setdefault(r.size[0], [None, None])[i] = (r.channels, r.bytes / 1000)
    rows = []
    for size, (v1, v2) in TABLE_3.items():
        (c1, k1), (c2, k2) = ours[size]
        rows.append((f"{size}x{size}", c1, round(k1, 1), f"{v1[0]}/{v1[1]}", c2, round(k2, 1),
                     f"{v2[0]}/{v2[1]}"))
    rows.append(("max", "", round(max(v[0][1] for v in ours.values()), 1), f"{TABLE_3_MAX[0]}K",
                 "", round(max(v[1][1] for v in ours.values()), 1), f"{TABLE_3_MAX[1]}K"))
    return Table(f"MobileNetV2 Table 3: max channels / memory (Kb, {8 * itemsize}-bit floats) "
                 f"to materialize per resolution" + ("" if streaming else ", no streaming"),
                 ("size", "V1 ch", "V1 Kb", "paper V1", "V2 ch", "V2 Kb", "paper V2"), rows, [
                     "V2 streams each bottleneck's expanded tensor (paper Section 5); V1 has "
                     "nothing to stream",
                     "paper's V2 rows 56/28/14 list the next stage's width (32/64/160) at the "
                     "area of the resolution it leaves; the tensors there have 24/32/96 channels",
                     "paper's V1 7x7 row (199) counts the last 1x1 conv's input and output "
                     "(2 x 100.4K); its other rows count one tensor"])


# ---- EfficientNet compound scaling --------------------------------------------------------
# The paper's Table 2 (FLOPS in billions, params in millions) and the (width, depth,
# resolution) coefficients of its reference implementation for B0-B7.
#                   width depth  res  FLOPS  params
EFFICIENTNET = {
    "efficientnet_b0": (1.0, 1.0, 224, 0.39, 5.3),
    "efficientnet_b1": (1.0, 1.1, 240, 0.70, 7.8),
    "efficientnet_b2": (1.1, 1.2, 260, 1.0, 9.2),
    "efficientnet_b3": (1.2, 1.4, 300, 1.8, 12),
    "efficientnet_b4": (1.4, 1.8, 380, 4.2, 19),
    "efficientnet_b5": (1.6, 2.2, 456, 9.9, 30),
    "efficientnet_b6": (1.8, 2.6, 528, 19, 43),
    "efficientnet_b7": (2.0, 3.1, 600, 37, 66),
}


def efficientnet_scaling() -> Table:
    """B0-B7 at the paper's resolutions. Scaling depth by d, width by w and resolution by
    r multiplies a network's FLOPs by about d * w^2 * r^2; the paper picks
    d = alpha^phi, w = beta^phi, r = gamma^phi with alpha * beta^2 * gamma^2 ~ 2, so that
    FLOPs grow as 2^phi. The released coefficients are rounded, so here phi is read back
    from them: phi = log2(d * w^2 * r^2). Channel rounding (multiples of 8) and depth
    rounding (ceil) make the real count a little larger than B0 * 2^phi."""
    import math
    rows = []
    b0 = None
    for name, (w, d, res, flops, params) in EFFICIENTNET.items():
        rep = _summary(name, res)
        b0 = b0 or rep.macs
        phi = math.log2(d * w * w * (res / 224) ** 2)
        rows.append((name, round(phi, 2), w, d, res, round(rep.macs / 1e9, 2), flops,
                     round(b0 * 2 ** phi / 1e9, 2), round(rep.params / M, 1), params))
    return Table("EfficientNet B0-B7: compound scaling (paper's resolutions)",
                 ("model", "phi", "width", "depth", "res", "B Mult-Adds", "paper 'FLOPS'",
                  "B0 x 2^phi", "M params", "paper"), rows,
                 ["the paper's FLOPS are multiply-adds (its B0: 0.39B)",
                  "phi = log2(depth * width^2 * (res/224)^2) of the released coefficients"])
