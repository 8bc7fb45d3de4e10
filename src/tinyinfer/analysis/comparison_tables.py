"""The papers' comparison tables (networks side by side), reproduced from tinyinfer's own
counts, with times measured on this machine in place of the papers' devices. The originals
are in ../shared/seeds (000: MobileNetV2 Table 4, the EfficientViT table, MobileViT's
tables; 001 and 003 repeat Table 4). tests/test_paper_tables_2.py checks the counts against
the published numbers, written out there again; notebooks/10 shows the tables.

    mobilenet_v2_table_4(timed)   MobileNetV1, ShuffleNet 1.5x / 2x, NASNet-A, MobileNetV2
                                  1.0 / 1.4: params and MAdds; tinyinfer ms in place of the
                                  Pixel-1 column
    efficientvit_table(timed)     every network of EfficientViT's comparison that tinyinfer
                                  has: FLOPs (Mult-Adds) and params; images/s measured with
                                  tinyinfer, PyTorch eager and ONNX Runtime in place of
                                  its GPU / CPU / ONNX columns
    mobilevit_tables()            MobileViT's parameter comparisons (a) and (b)

Times (``timed``: the networks to time) are batch 1, each engine the lowest of ``rounds``
medians of ``runs`` calls, taking turns (bench/models.py); on a shared machine other
processes only add time, so the load average is printed beside them. The papers measured
elsewhere (a Pixel 1 phone; a V100 GPU at batch 2048 and one Xeon core at batch 16): only
the order of the rows can be compared, not the numbers.

Import order matters for the torch column: torch must be imported before tinyinfer first
runs a parallel kernel in the process (Numba then starts its OpenMP threads). Imported
after, torch's MobileViT-XXS ran at 1.5-1.7 images/s instead of 23-30 here (2026-12-02,
reproducible; torch's other networks were barely affected), so this module imports torch,
if installed, when it is imported.
"""
from __future__ import annotations

import os

try:
    import torch  # noqa: F401  (see the docstring: before Numba's OpenMP threads start)
except ImportError:
    pass

import numpy as np

from .paper_tables import Table

M = 1e6


def _counts(name: str, resolution: int, options: dict) -> tuple[float, float]:
    """(Mult-Adds M, params M) of registered model ``name``, from shapes alone."""
    from ..api import summary
    rep = summary(name, resolution=resolution, **options)
    return rep.macs / M, rep.params / M


def load_average() -> str:
    return "load average %.2f, %.2f, %.2f" % os.getloadavg()


def tinyinfer_ms(name: str, resolution: int, options: dict, runs: int = 5,
                 rounds: int = 2) -> float:
    """Batch-1 time of tinyinfer's ``name`` (random weights): the lowest round median."""
    import tinyinfer
    from ..bench.models import _median_ms
    model = tinyinfer.load(name, weights=None, **options)
    x = np.random.default_rng(0).standard_normal((1, 3, resolution, resolution),
                                                  dtype=np.float32)
    model(x)                        # compile (or load the Numba cache) outside the timing
    return min(_median_ms(lambda: model(x), runs) for _ in range(rounds))


# ---- MobileNetV2 Table 4 -------------------------------------------------------------------
#   label, tinyinfer model, options          (published Params / MAdds / Pixel-1 ms: tests)
TABLE_4 = [
    ("MobileNetV1", "mobilenetv1_100", {}),
    ("ShuffleNet (1.5)", "shufflenet_g3_w3d2", {}),
    ("ShuffleNet (x2)", "shufflenet_g3_w2", {}),
    ("NasNet-A", "nasnet_4a1056", {}),
    ("MobileNetV2", "mobilenet_v2", {}),
    ("MobileNetV2 (1.4)", "mobilenet_v2", {"width_mult": 1.4}),
]
#   label: (params M, MAdds M, Pixel-1 ms or None), MobileNetV2 paper Table 4
PUBLISHED_4 = {"MobileNetV1": (4.2, 575, 113), "ShuffleNet (1.5)": (3.4, 292, None),
               "ShuffleNet (x2)": (5.4, 524, None), "NasNet-A": (5.3, 564, 183),
               "MobileNetV2": (3.4, 300, 75), "MobileNetV2 (1.4)": (6.9, 585, 143)}


def mobilenet_v2_table_4(timed: tuple[str, ...] = (), runs: int = 5, rounds: int = 2) -> Table:
    """``timed``: labels whose tinyinfer ms to measure (all: TABLE_4's labels)."""
    rows = []
    for label, name, options in TABLE_4:
        madds, params = _counts(name, 224, options)
        p_params, p_madds, pixel = PUBLISHED_4[label]
        ms = round(tinyinfer_ms(name, 224, options, runs, rounds), 1) if label in timed else "-"
        rows.append((label, name, round(params, 2), p_params, round(madds, 1), p_madds, ms,
                     pixel or "-"))
    notes = ["ShuffleNet: V1 with g = 3, the authors' widths (stem 24 at 1.5x, 48 at 2x: "
             "megvii-model/ShuffleNet-Series), so 292.4M; pytorchcv's rule int(24 x 1.5) = 36 "
             "would give 299.6M",
             "NasNet-A: pytorchcv's pad-then-crop computes one extra row and column in three "
             "shifted cells (+4.6M; README note (a))",
             "MobileNetV2 (1.4): the paper's 6.9M params disagree with its own code (TF-slim "
             "6.06M) and torchvision's width_mult=1.4 (6.08M here)",
             "MobileNetV2: the paper's 3.4M rounds down TF-slim's 3.47M (its README); ours "
             "counts one folded BN bias per channel",
             "MobileNetV1: this table prints 575M, the MobileNet paper's own tables 569M"]
    if timed:
        notes.append(f"ms: tinyinfer, batch 1, this machine ({load_average()})")
    return Table("MobileNetV2 Table 4: params, MAdds, and ms here instead of a Pixel 1",
                 ("network", "tinyinfer", "M params", "paper", "M MAdds", "paper",
                  "ms here", "Pixel-1 ms"), rows, notes)


# ---- EfficientViT's comparison (Liu et al. 2023, seed 000) ---------------------------------
#   label, tinyinfer model, resolution, options, published (FLOPs M, params M)
EFFICIENTVIT = [
    ("EfficientViT-M0", "efficientvit_m0", 224, {}, (79, 2.3)),
    ("MobileNetV3-Small", "mobilenet_v3_small", 224, {}, (57, 2.5)),
    ("EfficientViT-M1", "efficientvit_m1", 224, {}, (167, 3.0)),
    ("MobileViT-XXS", "mobilevit_xxs", 256, {}, (410, 1.3)),
    ("ShuffleNetV2 1.0x", "shufflenet_v2_x1_0", 224, {}, (146, 2.3)),
    ("MobileViTV2-0.5", "mobilevitv2_050", 256, {}, (466, 1.4)),
    ("EfficientViT-M2", "efficientvit_m2", 224, {}, (201, 4.2)),
    ("MobileOne-S0", "mobileone_s0", 224, {}, (274, 2.1)),
    ("MobileNetV2 1.0x", "mobilenet_v2", 224, {}, (300, 3.4)),
    ("EfficientViT-M3", "efficientvit_m3", 224, {}, (263, 6.9)),
    ("GhostNet 1.0x", "ghostnet_100", 224, {}, (141, 5.2)),
    ("NASNet-A-Mobile", "nasnet_4a1056", 224, {}, (564, 5.3)),
    ("EfficientViT-M4", "efficientvit_m4", 224, {}, (299, 8.8)),
    ("EdgeViT-XXS", "edgevit_xxs", 224, {}, (556, 4.1)),
    ("MobileViT-XS", "mobilevit_xs", 256, {}, (986, 2.3)),
    ("ShuffleNetV2 2.0x", "shufflenet_v2_x2_0", 224, {}, (591, 7.4)),
    ("MobileNetV3-Large", "mobilenet_v3_large", 224, {}, (217, 5.4)),
    ("MobileViTV2-0.75", "mobilevitv2_075", 256, {}, (1030, 2.9)),
    ("MobileOne-S1", "mobileone_s1", 224, {}, (825, 4.8)),
    ("EfficientNet-B0", "efficientnet_b0", 224, {}, (390, 5.3)),
    ("EfficientViT-M5", "efficientvit_m5", 224, {}, (522, 12.4)),
    # the seed prints "M4 384" with 12.4M params: M5's (M4 has 8.8M); the paper's M5 at 384.
    # Windows as timm fixes them from img_size (models/efficientvit_m.py's stage_windows)
    ("EfficientViT-M5 384", "efficientvit_m5", 384, {"windows": (7, 7, 6)}, (1486, 12.4)),
    ("EfficientViT-M5 512", "efficientvit_m5", 512, {"windows": (7, 7, 7)}, (2670, 12.4)),
]
NOT_IN_TINYINFER = ("MobileFormer-52M", "GLiT-Tiny")


def throughput(name: str, resolution: int, runs: int = 5, rounds: int = 2) -> dict:
    """Images/s at batch 1 of tinyinfer, PyTorch eager and ONNX Runtime (the engines that
    bench/models.py finds for ``name``; same weights and input, taking turns)."""
    from ..bench.models import bench_model
    r = bench_model(name, 1, resolution, runs, rounds)
    return {k: 1000.0 / r[k] for k in ("tinyinfer", "torch", "onnxruntime") if k in r}


def efficientvit_table(timed: tuple[str, ...] = (), runs: int = 5, rounds: int = 2) -> Table:
    """``timed``: labels to measure (registered options only: the 384 / 512 rows are not)."""
    rows = []
    for label, name, res, options, (p_flops, p_params) in EFFICIENTVIT:
        madds, params = _counts(name, res, options)
        speed = throughput(name, res, runs, rounds) if label in timed else {}
        ips = lambda k: round(speed[k], 1) if k in speed else "-"       # noqa: E731
        rows.append((label, name, res, round(madds, 1), p_flops, round(params, 2), p_params,
                     ips("tinyinfer"), ips("torch"), ips("onnxruntime")))
    notes = [f"not in tinyinfer: {', '.join(NOT_IN_TINYINFER)}",
             "MobileViT-XS: 4% above the published 986M (README note (b): no reading "
             "reproduces it)",
             "EfficientViT-M5 384 / 512: the seed's row reads \"M4 384\" with M5's 12.4M "
             "params (M4 has 8.8M): M5 at 384 and 512, 12.45M at each size here"]
    if timed:
        notes.append(f"images/s: batch 1, 2 threads each, this machine ({load_average()})")
        notes.append("MobileOne: torch and ONNX Runtime run timm's module as created, in its "
                     "training form (branches not fused); tinyinfer runs the fused form "
                     "(engine/reparam.py), as MobileOne is meant to be deployed")
    return Table("EfficientViT's comparison: FLOPs and params from tinyinfer, images/s here",
                 ("model", "tinyinfer", "res", "M FLOPs", "paper", "M params", "paper",
                  "tinyinfer im/s", "torch im/s", "ONNX Runtime im/s"), rows, notes)


# ---- MobileViT (Mehta & Rastegari 2022), its Figure 6 tables (seed 000) ----------------------
# ResNet-101 is not registered (no table needs it to run): counted from models/resnet.py's
# builder with bottlenecks (3, 4, 23, 3), and with timm's SE blocks
RESNET_101, RESNET_101_SE = "resnet(bottleneck, 3-4-23-3)", "resnet(bottleneck, 3-4-23-3, se)"
#   table, label, tinyinfer model or builder, options, published params M
MOBILEVIT = [
    ("a", "MobileNetv1", "mobilenetv1_100", {"width_mult": 0.75}, 2.6),
    ("a", "MobileNetv2", "mobilenet_v2", {"width_mult": 0.75}, 2.6),
    ("a", "MobileNetv3", "mobilenet_v3_small", {}, 2.5),
    ("a", "ShuffleNetv2", "shufflenet_v2_x1_0", {}, 2.3),
    ("a", "MobileViT-XS", "mobilevit_xs", {}, 2.3),
    ("b", "EfficientNet-B0", "efficientnet_b0", {}, 5.3),
    ("b", "ResNet-101", RESNET_101, {}, 44.5),
    ("b", "ResNet-101-SE", RESNET_101_SE, {}, 49.3),
    ("b", "MobileViT-S", "mobilevit_s", {}, 5.6),
]
NOT_COMPUTABLE = ("ESPNetv2", "DenseNet-169")


def _resnet101_params(se: bool) -> float:
    from ..model import Model
    from ..models.resnet import resnet
    from .scaling_tables import SCALED_SPEC
    graph = resnet("bottleneck", (3, 4, 23, 3), se=se)
    return Model(SCALED_SPEC, graph, {}, weights_source=None).summary(224).params / M


def mobilevit_tables() -> Table:
    rows = []
    for table, label, name, options, published in MOBILEVIT:
        if name in (RESNET_101, RESNET_101_SE):
            params = _resnet101_params(se=name == RESNET_101_SE)
        else:
            params = _counts(name, 256 if "mobilevit" in name else 224, options)[1]
        rows.append((table, label, name + "".join(f" {k}={v}" for k, v in options.items()),
                     round(params, 2), published))
    return Table("MobileViT's comparisons (a) and (b): parameters",
                 ("table", "model", "tinyinfer", "M params", "paper"), rows,
                 [f"not in tinyinfer: {', '.join(NOT_COMPUTABLE)}",
                  "(a)'s MobileNetv1 / v2 at 2.6M are the 0.75 widths; MobileNetv3 is Small"])
