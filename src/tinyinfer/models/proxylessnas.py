"""ProxylessNAS (CPU, GPU, Mobile, Mobile 1.4x) and Single-Path NAS: hardware-aware NAS
results, all plain MBConv networks, so all tables for the one MBConv builder.

Papers: Cai et al., "ProxylessNAS: Direct Neural Architecture Search on Target Task and
Hardware", ICLR 2019 (arXiv:1812.00332); Stamoulis et al., "Single-Path NAS: Designing
Hardware-Efficient ConvNets in less than 4 Hours", ECML-PKDD 2019 (arXiv:1904.02877).
Reference implementations: pytorchcv's ``pytorchcv/models/proxylessnas.py`` and
``spnasnet.py`` (``pytorchcv.model_provider.get_model(name)``).

The graph has the MBConv builder's node names (timm's: conv_stem, blocks.{s}.{i}.conv_pw /
conv_dw / conv_pwl, conv_head, classifier); pytorchcv's state_dict names map onto them
through ``pytorchcv_keymap`` below, written out module by module. For SPNASNet the stages
are timm's ``spnasnet_100`` stages, so timm's checkpoint layout is the graph's own.

What the searched networks have that the grammar writes directly: every block is an MBConv
"MB{t} {k}x{k}" (t = 1: depthwise separable, no expansion conv), and the stride-1 blocks
the search left as "zero" (identity) ops are simply absent. pytorchcv keeps their unit
numbers (a residual=0 unit is the identity), so its unit numbering skips over them; the
tables below keep those units as ``None`` so the key map can count them.

Mult-Adds at 224 (tests/test_proxylessnas.py checks them): mobile 320.4M, mobile14 580.9M
(the authors' README, github.com/mit-han-lab/proxylessnas: 320M, 581M), GPU 465.3M, CPU
439.2M (the paper's figures as cited: 465M, 439M), SPNASNet 333.5M (no published Mult-Adds
found; pytorchcv's and timm's network exactly).
"""
from __future__ import annotations

from functools import partial

from ..engine.graph import Graph
from ._torchvision_layout import block_layers, block_prefixes, expand
from .blocks import paper_block
from .builder import Style, build_mbconv_net
from .registry import ModelSpec, register

# ---- ProxylessNAS ----------------------------------------------------------------------------
# The searched architectures (the paper's Figure 4 for GPU / CPU / mobile, and the released
# configs), stage by stage as pytorchcv groups them: one (t, k, c) per unit = "MB{t} kxk"
# to c channels, None = a "zero" unit (identity; only where the shortcut exists). The first
# unit of every stage after the first has stride 2; the stem is a 3x3 stride-2 conv, the
# head a 1x1 conv; ReLU6 everywhere, BN epsilon 1e-3.
PROXYLESS = {
    "cpu": dict(stem=40, head=1432, stages=[
        [(1, 3, 24)],
        [(6, 3, 32), (3, 3, 32), (3, 3, 32), (3, 3, 32)],
        [(6, 3, 48), (3, 3, 48), (3, 3, 48), (3, 5, 48)],
        [(6, 3, 88), None, None, (3, 3, 88), (6, 5, 104), (3, 3, 104), (3, 3, 104),
         (3, 3, 104)],
        [(6, 5, 216), (3, 5, 216), (3, 5, 216), (3, 3, 216), (6, 5, 360)],
    ]),
    "gpu": dict(stem=40, head=1728, stages=[
        [(1, 3, 24)],
        [(3, 5, 32), None, None, None],
        [(3, 7, 56), None, None, (3, 3, 56)],
        [(6, 7, 112), None, None, (3, 5, 112), (6, 5, 128), None, (3, 3, 128), (3, 5, 128)],
        [(6, 7, 256), (6, 7, 256), (6, 7, 256), (6, 5, 256), (6, 7, 432)],
    ]),
    "mobile": dict(stem=32, head=1280, stages=[
        [(1, 3, 16)],
        [(3, 5, 32), (3, 3, 32), None, None],
        [(3, 7, 40), (3, 3, 40), (3, 5, 40), (3, 5, 40)],
        [(6, 7, 80), (3, 5, 80), (3, 5, 80), (3, 5, 80), (6, 5, 96), (3, 5, 96), (3, 5, 96),
         (3, 5, 96)],
        [(6, 7, 192), (6, 7, 192), (3, 7, 192), (3, 7, 192), (6, 7, 320)],
    ]),
    # the mobile architecture at 1.4x width (the released "proxyless_mobile_14")
    "mobile14": dict(stem=48, head=1792, stages=[
        [(1, 3, 24)],
        [(3, 5, 40), (3, 3, 40), None, None],
        [(3, 7, 56), (3, 3, 56), (3, 5, 56), (3, 5, 56)],
        [(6, 7, 112), (3, 5, 112), (3, 5, 112), (3, 5, 112), (6, 5, 136), (3, 5, 136),
         (3, 5, 136), (3, 5, 136)],
        [(6, 7, 256), (6, 7, 256), (3, 7, 256), (3, 7, 256), (6, 7, 448)],
    ]),
}


def proxyless_arch(stages) -> list[list]:
    """The table as block arguments: each present unit one MBConv row (n = 1), stride 2
    on each stage's first unit after the first stage; zero units dropped."""
    arch = []
    for s, units in enumerate(stages):
        assert units[0] is not None, "a stage's first (strided) unit cannot be a zero op"
        present = [(j, unit) for j, unit in enumerate(units) if unit is not None]
        arch.append([paper_block(t=t, c=c, n=1, s=2 if s and j == 0 else 1, k=k)
                     for j, (t, k, c) in present])
    return arch


def proxylessnas(version: str, num_classes: int = 1000) -> Graph:
    net = PROXYLESS[version]
    return build_mbconv_net(proxyless_arch(net["stages"]), stem_size=net["stem"],
                            num_features=net["head"], act="relu6", num_classes=num_classes,
                            head_rule="fixed", style=Style(bn_eps=1e-3))


# ---- Single-Path NAS ---------------------------------------------------------------------------
# The paper's Figure 3 (the searched network, "MBConv{t}-{k}x{k}"), after a 3x3 stride-2
# conv to 32 channels; then a 1x1 conv to 1280, pooling and FC. ReLU; BN epsilon 1e-5.
# One row = n layers of MBConv t, kernel k, c output channels, stride s on the first.
#          t, k,   c, n, s
SPNASNET = [
    [(1, 3, 16, 1, 1)],
    [(3, 3, 24, 3, 2)],
    [(6, 5, 40, 1, 2), (3, 3, 40, 3, 1)],
    [(6, 5, 80, 1, 2), (3, 3, 80, 3, 1)],
    [(6, 5, 96, 1, 1), (3, 5, 96, 3, 1)],
    [(6, 5, 192, 4, 2)],
    [(6, 3, 320, 1, 1)],
]


def spnasnet(num_classes: int = 1000) -> Graph:
    arch = [[paper_block(t=t, c=c, n=n, s=s, k=k) for t, k, c, n, s in stage]
            for stage in SPNASNET]
    return build_mbconv_net(arch, stem_size=32, num_features=1280, act="relu",
                            num_classes=num_classes, head_rule="fixed")


# ---- pytorchcv's checkpoint layout ------------------------------------------------------------
def pytorchcv_keymap(graph: Graph, stem: str, units: list[str], layers: tuple[str, str, str],
                     head: str) -> dict[str, str]:
    """pytorchcv's module paths -> this graph's. ``units``: pytorchcv's unit paths of the
    graph's blocks, in network order; ``layers``: a unit's three ConvBlocks (expansion,
    depthwise, projection: each .conv + .bn), the first absent when t = 1."""
    modules = {f"{stem}.conv": "conv_stem", f"{stem}.bn": "bn1",
               f"{head}.conv": "conv_head", f"{head}.bn": "bn2", "output": "classifier"}
    blocks = block_prefixes(graph)
    if len(blocks) != len(units):
        raise ValueError(f"pytorchcv layout: {len(units)} units for {len(blocks)} blocks")
    for unit, prefix in zip(units, blocks):
        ours = block_layers(graph, prefix)
        for theirs, (conv, bn) in zip(layers[len(layers) - len(ours):], ours):
            modules.update({f"{unit}.{theirs}.conv": conv, f"{unit}.{theirs}.bn": bn})
    return expand(graph, modules)


def proxyless_keymap(version: str, graph: Graph) -> dict[str, str]:
    """features.init_block, features.stage{s}.unit{j}.body.{bc_conv, dw_conv, pw_conv},
    features.final_block, output; zero units hold no weights but keep their numbers."""
    units = [f"features.stage{s + 1}.unit{j + 1}.body"
             for s, stage in enumerate(PROXYLESS[version]["stages"])
             for j, unit in enumerate(stage) if unit is not None]
    return pytorchcv_keymap(graph, "features.init_block", units,
                            ("bc_conv", "dw_conv", "pw_conv"), "features.final_block")


def spnasnet_keymap(graph: Graph) -> dict[str, str]:
    """features.init_block.conv1 (stem) and .conv2 (the t = 1 block), features.stage1..4
    (stage 4 = our 96- and 192-channel stages, 8 units), features.final_block.conv1 (the
    320-channel block) and .conv2 (head conv); units' layers exp_conv, conv1, conv2."""
    units = ["features.init_block.conv2"]
    units += [f"features.stage{s}.unit{j}" for s, n in ((1, 3), (2, 4), (3, 4), (4, 8))
              for j in range(1, n + 1)]
    units.append("features.final_block.conv1")
    return pytorchcv_keymap(graph, "features.init_block.conv1", units,
                            ("exp_conv", "conv1", "conv2"), "features.final_block.conv2")


PROXYLESS_PAPER = "Cai et al. 2019, ProxylessNAS (arXiv:1812.00332)"
for _version in PROXYLESS:
    register(ModelSpec(
        name=f"proxylessnas_{_version}",
        build=partial(proxylessnas, _version),
        paper=PROXYLESS_PAPER,
        reference=f"pytorchcv.models.proxylessnas.proxylessnas_{_version}",
        layouts={"pytorchcv": partial(proxyless_keymap, _version)},
    ))

register(ModelSpec(
    name="spnasnet",
    build=spnasnet,
    paper="Stamoulis et al. 2019, Single-Path NAS (arXiv:1904.02877)",
    reference="pytorchcv.models.spnasnet.spnasnet",
    layouts={"pytorchcv": spnasnet_keymap, "timm": None},
))
