"""The scaling experiments' tables, reproduced from tinyinfer's own counts: EfficientNet's
Tables 3 and 7 and TinyNet's comparison with EfficientNet's rule (the originals are in
../shared/seeds: 003 has Table 3, 000 Table 7, 002 the TinyNet table). Each function
returns a paper_tables.Table; tests/test_paper_tables_2.py checks them against the published
numbers, written out there again; notebooks/10 shows them.

    efficientnet_table_3()  MobileNetV1, MobileNetV2 and ResNet-50 scaled by depth d = 4,
                            width w = 2, resolution r = 2 and compound (Tan & Le 2019)
    efficientnet_table_7()  EfficientNet-B0 scaled the same ways
    tinynet_table()         B0 shrunk one dimension at a time, by the inverse "giant formula"
                            and by TinyNet's (Han et al. 2020, seed 002's slide)

How a multiplier is applied (the paper states only the multipliers):
    depth d       each stage's n repeated blocks -> ceil(n d), EfficientNet's own rule (its
                  reference code's round_repeats). A stage is a row of the network's table:
                  MobileNetV1's five runs of depthwise separable layers (1, 2, 2, 6, 2:
                  timm's grouping, the "5x" block with the stride-2 layer before it),
                  MobileNetV2's seven bottleneck rows, ResNet-50's four stages (3, 4, 6, 3).
                  The stem, the head convs and the classifier are never repeated.
    width w       every conv's channels x w: the MobileNets round to multiples of 8 as
                  timm and torchvision do (MobileNetV2's head max(1280, 1280 w)); ResNet-50
                  scales every stage width, int(c w), and keeps its 64-channel 7x7 stem, as
                  timm's ResNet(channels=...) does.
    resolution r  the input side round(224 r): 448 for r = 2, 291 for r = 1.3.
    compound      the paper prints coefficients for MobileNetV1 only (d = 1.4, w = 1.2,
                  r = 1.3, about its phi = 2: 1.44, 1.21, 1.32); MobileNetV2 and ResNet-50
                  get the same three here.
TinyNet's table uses TinyNet's rules (scaling.tinynet: fixed stem, round(n d) depths with at
least one block per stage, head max(1280, 1280 w)); they reproduce its one-dimension rows.
"""
from __future__ import annotations

import math

from ..engine.graph import Graph
from ..models import resnet as resnet_model
from ..models.blocks import paper_table
from ..models.builder import NetBuilder, build_mbconv_net
from ..models.mobilenet_v1 import MOBILENET_V1
from ..models.mobilenet_v2 import MOBILENET_V2
from ..models.registry import ModelSpec
from . import scaling
from .paper_tables import Table

B = 1e9
COMPOUND = (1.4, 1.2, 1.3)       # (d, w, r): Table 3's MobileNetV1 compound scale


# ---- the scaled networks (graphs only: counting needs no weights) ----------------------
def mobilenet_v1_scaled(w: float = 1.0, d: float = 1.0, rounding: str = "ceil") -> Graph:
    arch = [[f"dsa_r{n}_k3_s{s}_c{c}"] for n, s, c in MOBILENET_V1]
    return build_mbconv_net(arch, stem_size=32, num_features=0, width_mult=w, depth_mult=d,
                            act="relu6", depth_rounding=rounding)


def mobilenet_v2_scaled(w: float = 1.0, d: float = 1.0) -> Graph:
    return build_mbconv_net(paper_table(MOBILENET_V2, "t c n s"), stem_size=32,
                            num_features=1280, width_mult=w, depth_mult=d, act="relu6")


def resnet50_scaled(w: float = 1.0, d: float = 1.0) -> Graph:
    """models/resnet.py's ResNet-50 (torchvision's v1.5) with its stage widths x w and
    ceil(n d) bottlenecks per stage; the stem stays 64 channels wide."""
    b = NetBuilder()
    x = b.conv_bn_act(Graph.INPUT, "conv1", "bn1", 64, 7, 2, act="relu")
    x = b.pool("maxpool", x, "max_pool2d", kernel=3, stride=2, padding=1)
    _, depths = resnet_model.RESNETS["resnet50"]
    for s, (width, n) in enumerate(zip(resnet_model.STAGE_WIDTHS, depths)):
        for i in range(math.ceil(n * d)):
            x = resnet_model.residual_block(b, x, f"layer{s + 1}.{i}", "bottleneck",
                                            int(width * w), 2 if i == 0 and s > 0 else 1)
    b.linear("fc", b.global_pool("avgpool", x), 1000)
    return b.graph


SCALED_SPEC = ModelSpec(name="scaled", build=mobilenet_v1_scaled,
                        paper="Tan & Le 2019 (EfficientNet), Table 3",
                        reference="none: the paper's scaling experiments, built here")


def macs(graph: Graph, resolution: int) -> int:
    """Mult-Adds of a graph at resolution x resolution, from shapes alone (no weights; BN
    folded as everywhere in tinyinfer: the papers' convention)."""
    from ..model import Model
    return Model(SCALED_SPEC, graph, {}, weights_source=None).summary(resolution).macs


SCALED = {"MobileNetV1": mobilenet_v1_scaled, "MobileNetV2": mobilenet_v2_scaled,
          "ResNet-50": resnet50_scaled}

# ---- EfficientNet Table 3 ------------------------------------------------------------------
#   label, network, (d, w, r), published FLOPS (B)
TABLE_3 = [
    ("Baseline MobileNetV1", "MobileNetV1", (1, 1, 1), 0.6),
    ("Scale MobileNetV1 by width (w=2)", "MobileNetV1", (1, 2, 1), 2.2),
    ("Scale MobileNetV1 by resolution (r=2)", "MobileNetV1", (1, 1, 2), 2.2),
    ("MobileNetV1 compound scale (d=1.4, w=1.2, r=1.3)", "MobileNetV1", COMPOUND, 2.3),
    ("Baseline MobileNetV2", "MobileNetV2", (1, 1, 1), 0.3),
    ("Scale MobileNetV2 by depth (d=4)", "MobileNetV2", (4, 1, 1), 1.2),
    ("Scale MobileNetV2 by width (w=2)", "MobileNetV2", (1, 2, 1), 1.1),
    ("Scale MobileNetV2 by resolution (r=2)", "MobileNetV2", (1, 1, 2), 1.2),
    ("MobileNetV2 compound scale", "MobileNetV2", COMPOUND, 1.3),
    ("Baseline ResNet-50", "ResNet-50", (1, 1, 1), 4.1),
    ("Scale ResNet-50 by depth (d=4)", "ResNet-50", (4, 1, 1), 16.2),
    ("Scale ResNet-50 by width (w=2)", "ResNet-50", (1, 2, 1), 14.7),
    ("Scale ResNet-50 by resolution (r=2)", "ResNet-50", (1, 1, 2), 16.4),
    ("ResNet-50 compound scale", "ResNet-50", COMPOUND, 16.7),
]


def _row(label, graph, d, w, r, published):
    ours = macs(graph, round(224 * r))
    return (label, d, w, round(224 * r), round(ours / B, 3), published,
            round(ours / B / published, 3))


def efficientnet_table_3() -> Table:
    rows = [_row(label, SCALED[net](w, d), d, w, r, published)
            for label, net, (d, w, r), published in TABLE_3]
    by = {r[0]: r[4] for r in rows}
    v1_r2 = by["Scale MobileNetV1 by resolution (r=2)"]
    v1_compound = by["MobileNetV1 compound scale (d=1.4, w=1.2, r=1.3)"]
    v1_compound_round = macs(mobilenet_v1_scaled(1.2, 1.4, "round"), 291) / B
    base, deep = by["Baseline ResNet-50"], by["Scale ResNet-50 by depth (d=4)"]
    wide = by["Scale ResNet-50 by width (w=2)"]
    block = _resnet_bottleneck_macs() / B
    return Table("EfficientNet Table 3: scaling up MobileNets and ResNet (B Mult-Adds)",
                 ("model", "d", "w", "res", "ours", "paper 'FLOPS'", "ours / paper"), rows, [
                     "the paper's FLOPS are Mult-Adds (its MobileNetV1 baseline: 0.6B)",
                     f"MobileNetV1 r=2: conv Mult-Adds grow exactly 4x, so {v1_r2}B; the "
                     "paper's 2.2B is 3% lower (r = 1.97)",
                     "compound rows: the paper gives (d, w, r) for MobileNetV1 only; with "
                     f"round(n d) instead of ceil, MobileNetV1's is {v1_compound_round:.3f}B "
                     f"(ceil: {v1_compound}B; published 2.3B between them)",
                     f"ResNet-50 d=4: ceil(4n) = 12, 16, 24, 12 bottlenecks; each added one "
                     f"costs {block * 1e3:.1f}M in every stage, so {base}B + 48 x "
                     f"{block:.4f}B = {deep}B; 16.2B would need {(16.2 - base) / block:.1f} "
                     "added blocks",
                     "ResNet-50 w=2: every conv but the stem and the first 1x1s after it "
                     f"grows 4x; 14.7B would be w = {2 * math.sqrt(14.7 / wide):.2f}"])


def _resnet_bottleneck_macs() -> int:
    """One stride-1 bottleneck of ResNet-50 at 224 (any stage: widths double as maps halve):
    1x1 4c -> c, 3x3 c -> c, 1x1 c -> 4c on a (56 / 2^s)^2 map, c = 64 2^s."""
    c, hw = 64, 56 * 56
    return (4 * c * c + 9 * c * c + 4 * c * c) * hw


# ---- EfficientNet Table 7 ------------------------------------------------------------------
#   label, (d, w, r), published FLOPS (B)
TABLE_7 = [
    ("Baseline model (EfficientNet-B0)", (1, 1, 1), 0.4),
    ("Scale model by depth (d=4)", (4, 1, 1), 1.8),
    ("Scale model by width (w=2)", (1, 2, 1), 1.8),
    ("Scale model by resolution (r=2)", (1, 1, 2), 1.9),
    ("Compound Scale (d=1.4, w=1.2, r=1.3)", (1.4, 1.2, 1.3), 1.8),
]


def efficientnet_table_7() -> Table:
    """B0 (torchvision's efficientnet_b0, the reference implementation's scaling rules)."""
    rows = []
    for label, (d, w, r), published in TABLE_7:
        s = scaling.efficientnet_scaled(w, d, round(224 * r))
        rows.append((label, d, w, s.resolution, round(s.macs / B, 3), published,
                     round(s.macs / B / published, 3)))
    by = {r[0]: r[4] for r in rows}
    r2, w2 = by["Scale model by resolution (r=2)"], by["Scale model by width (w=2)"]
    return Table("EfficientNet Table 7: B0 scaled by one dimension or all three (B Mult-Adds)",
                 ("model", "d", "w", "res", "ours", "paper 'FLOPS'", "ours / paper"), rows, [
                     "the compound row reproduces; the one-dimension rows count 12-19% less "
                     "than printed: Table 7 lists models of about equal FLOPS (its Figure 7 "
                     "compares them), and the printed d, w, r look rounded",
                     f"r: B0's convs scale as r^2, so 1.9B is r = {2 * math.sqrt(1.9 / r2):.2f}; "
                     f"w: ~w^2, so 1.8B is w = {2 * math.sqrt(1.8 / w2):.2f}"])


# ---- TinyNet: shrinking B0 -----------------------------------------------------------------
def _inverse_giant(phi: float) -> tuple[float, float, float]:
    """EfficientNet's formula at a negative phi, as (r, w, d)."""
    d, w, r = scaling.compound_coefficients(phi)
    return r, w, d


#   label, (r, w, d) under TinyNet's rules, published FLOPs (M), seed 002
TINYNET = [
    ("EfficientNet-B^-1 (phi = -1)", _inverse_giant(-1), 200),
    ("shrink B0 by r = 0.70", (0.70, 1.0, 1.0), 196),
    ("shrink B0 by d = 0.45", (1.0, 1.0, 0.45), 196),
    ("shrink B0 by w = 0.65", (1.0, 0.65, 1.0), 205),
    ("TinyNet-B", scaling.TINYNET_PUBLISHED["b"], 201),
    ("EfficientNet-B^-2 (phi = -2)", _inverse_giant(-2), 97),
    ("shrink B0 by r = 0.46", (0.46, 1.0, 1.0), 103),
    ("shrink B0 by w = 0.38", (1.0, 0.38, 1.0), 99),
    ("TinyNet-C", scaling.TINYNET_PUBLISHED["c"], 97),
]


def depth_floor_macs() -> int:
    """B0's Mult-Adds with one block per stage: the least that depth alone can reach (any
    d < 1/8 under TinyNet's rounding), above the B^-2 budget: the table's "depth
    underflow"."""
    return scaling.tinynet(1.0, 1.0, 0.01).macs


def tinynet_table() -> Table:
    rows = []
    for label, (r, w, d), published in TINYNET:
        s = scaling.tinynet(r, w, d)
        rows.append((label, round(r, 3), round(w, 3), round(d, 3), s.resolution,
                     round(s.macs / 1e6, 1), published, round(s.macs / 1e6 / published, 3)))
    return Table("TinyNet vs EfficientNet's rule (M Mult-Adds)",
                 ("model", "r", "w", "d", "res", "ours", "paper", "ours / paper"), rows, [
                     f"depth underflow: one block per stage still costs "
                     f"{depth_floor_macs() / 1e6:.1f}M, above the 97M budget",
                     "B^-1 / B^-2: (r, w, d) = (1.15, 1.1, 1.2)^phi; rounding the channels up "
                     "to multiples of 8 and depths to whole blocks keeps the built networks "
                     "24% and 41% above the published 200M / 97M, which equal B0 / 1.92 "
                     "(200.9M) and B0 / 4 (96.5M) to within 1%: budgets, not counts",
                     "TinyNet-C: the paper's (r, w, d) built by TinyNet's rules (= timm's "
                     "tinynet_c) counts 99.5M, 2.6% above this table's 97M; not explained"])
