"""ChamNet-A ... F.

Paper: Dai et al., "ChamNet: Towards Efficient Network Design through Platform-Aware Model
Adaptation", CVPR 2019 (arXiv:1812.08934). The architectures are those of
facebookresearch/mobile-vision's ``mobile_cv/arch/fbnet_v2/fbnet_modeldef_cls_chamnet.py``
(added in commit bfe163f, 2021-09-20, deleted again by the next ones): ChamNet-A and B as
fbnet_v2 tables (``cham_a``, ``cham_b``); C-F commented out, in the older FBNet builder's
format (``cham_c`` ... ``cham_f``, and ``cham_b192``, ``cham_d192``, ``cham_e160``,
``cham_f128``, the same blocks at the resolutions the networks were released at). No Python
package builds them: tests/chamnet_ref.py is a small FBNet-v2 builder written from
mobile-vision's code, the reference of the parity tests.

A ChamNet is MobileNetV2 re-proportioned by the Chameleon search: the same stem, 3x3
inverted residual blocks (ReLU, no SE) and head, with other widths, depths and expansion
ratios per stage. What the tables leave to mobile-vision's builders, followed here:
* a t = 1 block keeps its 1x1 expansion conv, as in the older builder the networks were
  released from (fbnet_v2's ``always_pw``). fbnet_v2 drops it for its ``e1``, but the
  published Mult-Adds count it (tests/test_chamnet.py has the arithmetic), so the grammar's
  "ir ... e1" rows, as FBNet-C's.
* channels as written: mobile-vision rounds a width only under a width multiplier, so
  ChamNet-B's 92-channel stage stays 92 (``width_divisor=1``; the grammar's 8 would make 96).
* the stem and head convs carry a bias before their BN (mobile-vision's ConvBNRelu keeps
  nn.Conv2d's default). Its classifier is a 1x1 conv with bias after the pool: the same
  numbers as the fully connected layer here (the weight loader reshapes (O, I, 1, 1)).
"""
from __future__ import annotations

from functools import partial

from ..engine.graph import Graph
from ._torchvision_layout import block_prefixes, expand
from .builder import Style, build_mbconv_net
from .registry import ModelSpec, register

# One entry per network: released resolution, stem conv channels (3x3, stride 2), the
# stages of (t, c, n, s) rows (MobileNetV2's Table 2 columns: expansion, output channels,
# repeats, stride of the first repeat; every depthwise kernel is 3x3), head conv channels
# (1x1). One stage per feature-map size, as mobile-vision groups them.
#                  t,   c, n, s
CHAMNET = {
    "a": dict(resolution=224, stem=32, head=2016, stages=[
        [(1, 24, 1, 1)],
        [(4, 40, 2, 2)],
        [(6, 48, 3, 2)],
        [(4, 96, 4, 2), (4, 160, 3, 1)],
        [(4, 248, 3, 2), (6, 480, 1, 1)],
    ]),
    "b": dict(resolution=192, stem=24, head=1984, stages=[
        [(1, 16, 1, 1)],
        [(5, 40, 2, 2)],
        [(6, 40, 3, 2)],
        [(6, 92, 3, 2), (6, 104, 3, 1)],
        [(5, 200, 3, 2), (6, 384, 1, 1)],
    ]),
    "c": dict(resolution=224, stem=16, head=1520, stages=[
        [(1, 16, 1, 1)],
        [(4, 24, 1, 2)],
        [(4, 32, 3, 2)],
        [(5, 64, 2, 2), (6, 96, 3, 1)],
        [(6, 160, 3, 2), (4, 256, 1, 1)],
    ]),
    "d": dict(resolution=192, stem=8, head=1600, stages=[
        [(1, 8, 1, 1)],
        [(6, 24, 1, 2)],
        [(4, 32, 2, 2)],
        [(6, 40, 4, 2), (6, 80, 3, 1)],
        [(5, 160, 3, 2), (6, 224, 1, 1)],
    ]),
    "e": dict(resolution=160, stem=8, head=1600, stages=[
        [(1, 8, 1, 1)],
        [(4, 24, 1, 2)],
        [(4, 32, 3, 2)],
        [(6, 64, 1, 2), (6, 64, 3, 1)],
        [(6, 96, 2, 2), (4, 128, 1, 1)],
    ]),
    "f": dict(resolution=128, stem=8, head=1280, stages=[
        [(1, 8, 1, 1)],
        [(4, 24, 1, 2)],
        [(4, 32, 3, 2)],
        [(4, 40, 1, 2), (4, 64, 3, 1)],
        [(4, 128, 2, 2), (4, 192, 1, 1)],
    ]),
}


# the file's entry each network comes from (B's also written there as cham_b192)
FILE_ENTRY = {"a": "cham_a", "b": "cham_b", "c": "cham_c", "d": "cham_d192", "e": "cham_e160",
              "f": "cham_f128"}


def chamnet(version: str, num_classes: int = 1000) -> Graph:
    net = CHAMNET[version]
    arch = [[f"ir_r{n}_k3_s{s}_e{t}_c{c}" for t, c, n, s in stage] for stage in net["stages"]]
    return build_mbconv_net(arch, stem_size=net["stem"], num_features=net["head"],
                            width_divisor=1, act="relu", num_classes=num_classes,
                            head_rule="fixed", style=Style(stem_head_bias=True))


# ---- mobile-vision's checkpoint layout ---------------------------------------------------------
# fbnet_v2 names its blocks backbone.stages.xif{stage}_{block}, counting the stem as stage 0
# and the head conv as the last stage, so our blocks.{s}.{i} is xif{s+1}_{i}; each block's
# convs are pw / dw / pwl, each a ConvBNRelu (.conv, .bn). The classifier is head.conv.
BLOCK_LAYERS = {"pw": ("conv_pw", "bn1"), "dw": ("conv_dw", "bn2"), "pwl": ("conv_pwl", "bn3")}


def mobile_vision_keymap(version: str, graph: Graph) -> dict[str, str]:
    head_stage = len(CHAMNET[version]["stages"]) + 1
    modules = {"backbone.stages.xif0_0.conv": "conv_stem", "backbone.stages.xif0_0.bn": "bn1",
               f"backbone.stages.xif{head_stage}_0.conv": "conv_head",
               f"backbone.stages.xif{head_stage}_0.bn": "bn2", "head.conv": "classifier"}
    for prefix in block_prefixes(graph):
        _, stage, block = prefix.split(".")
        theirs = f"backbone.stages.xif{int(stage) + 1}_{block}"
        for layer, (conv, bn) in BLOCK_LAYERS.items():
            modules[f"{theirs}.{layer}.conv"] = f"{prefix}.{conv}"
            modules[f"{theirs}.{layer}.bn"] = f"{prefix}.{bn}"
    return expand(graph, modules)


for _version, _net in CHAMNET.items():
    register(ModelSpec(
        name=f"chamnet_{_version}",
        build=partial(chamnet, _version),
        paper="Dai et al. 2019, ChamNet (arXiv:1812.08934)",
        reference=f"facebookresearch/mobile-vision fbnet_v2, {FILE_ENTRY[_version]} "
                  f"(tests/chamnet_ref.py)",
        layouts={"mobile_vision": partial(mobile_vision_keymap, _version)},
        input_size=_net["resolution"],
        resize=int(_net["resolution"] / 0.875),
    ))
