"""EfficientNet B0-B7, and their TensorFlow ports.

Paper: Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
ICML 2019 (arXiv:1905.11946). Reference implementations: ``torchvision.models.efficientnet_b0``
... ``_b7`` (names efficientnet_b0 ... efficientnet_b7; timm's efficientnet_b0 ... b3
checkpoints are the same networks under timm's module names, this graph's, and load into
them too), and timm's ``tf_efficientnet_b0`` ... ``b7``: ports of the TF checkpoints, which
need TensorFlow's "same" padding (asymmetric at stride 2: the odd pixel goes
bottom/right) and BN epsilon 1e-3.

Compound scaling (how B1-B7 come from B0, and what the rounded coefficients mean) is in
tinyinfer/analysis/scaling.py; this file holds the table and the published coefficients.
"""
from __future__ import annotations

from functools import partial

from ._torchvision_layout import efficientnet_keymap
from .blocks import paper_table
from .builder import Style, build_mbconv_net
from .registry import ModelSpec, register

# The paper's Table 1 (EfficientNet-B0), after stage 1 (Conv3x3, 32 channels, stride 2);
# then stage 9: Conv1x1 to 1280, pooling, FC. Every MBConv has squeeze-excite (ratio 0.25
# of its input channels) and swish.
#   t = expansion ("MBConv6"), k = depthwise kernel, c = channels, n = layers, s = stride of
#   the first layer (the table's resolution column halves after each stride-2 stage)
#      t, k,   c, n, s
EFFICIENTNET_B0 = [
    (1, 3, 16, 1, 1),
    (6, 3, 24, 2, 2),
    (6, 5, 40, 2, 2),
    (6, 3, 80, 3, 2),
    (6, 5, 112, 3, 1),
    (6, 5, 192, 4, 2),
    (6, 3, 320, 1, 1),
]
B0_COLUMNS = "t k c n s"        # the columns above, for blocks.paper_table

# Published scaled models: width w, depth d, native resolution r (the TF reference's
# efficientnet_params; timm's and torchvision's use the same numbers).
#               w,   d,   r
COEFFICIENTS = {
    "b0": (1.0, 1.0, 224),
    "b1": (1.0, 1.1, 240),
    "b2": (1.1, 1.2, 260),
    "b3": (1.2, 1.4, 300),
    "b4": (1.4, 1.8, 380),
    "b5": (1.6, 2.2, 456),
    "b6": (1.8, 2.6, 528),
    "b7": (2.0, 3.1, 600),
}


def efficientnet(width_mult: float = 1.0, depth_mult: float = 1.0, style: Style = Style(),
                 num_classes: int = 1000):
    """EfficientNet-B0 scaled by width ``width_mult`` and depth ``depth_mult`` (the number of
    layers of each stage becomes ceil(n * d)); swish everywhere, SE inside every block."""
    arch = paper_table(EFFICIENTNET_B0, B0_COLUMNS, se=True)
    return build_mbconv_net(arch, stem_size=32, num_features=1280,
                            width_mult=width_mult, depth_mult=depth_mult, act="swish",
                            num_classes=num_classes, head_rule="scaled", style=style)


PAPER = "Tan & Le 2019, EfficientNet (arXiv:1905.11946)"
# timm's crop_pct of the TF ports (resize = floor(r / crop_pct)); torchvision's weights'
# (crop, resize). Both bicubic.
TF_CROP_PCT = {"b0": 0.875, "b1": 0.882, "b2": 0.890, "b3": 0.904, "b4": 0.922, "b5": 0.934,
               "b6": 0.942, "b7": 0.949}
TORCHVISION_CROP = {"b0": (224, 256), "b1": (240, 256), "b2": (288, 288), "b3": (300, 320),
                    "b4": (380, 384), "b5": (456, 456), "b6": (528, 528), "b7": (600, 600)}

for variant, (w, d, r) in COEFFICIENTS.items():
    crop, resize = TORCHVISION_CROP[variant]
    # torchvision: SE squeezes to max(1, c_in // 4); BN epsilon 1e-5 up to B4, 1e-3 from B5
    tv_style = Style(se_rule="tv_effnet", bn_eps=1e-3 if variant in ("b5", "b6", "b7") else 1e-5)
    register(ModelSpec(
        name=f"efficientnet_{variant}",
        build=partial(efficientnet, style=tv_style),
        paper=PAPER,
        reference=f"torchvision.models.efficientnet_{variant}",
        layouts={"torchvision": efficientnet_keymap, "timm": None},
        defaults={"width_mult": w, "depth_mult": d},
        input_size=crop, resize=resize, interpolation="bicubic",
    ))
    # timm's TF ports: TF "same" padding, BN epsilon 1e-3, timm's SE rounding
    register(ModelSpec(
        name=f"tf_efficientnet_{variant}",
        build=partial(efficientnet, style=Style(padding="same", bn_eps=1e-3)),
        paper=PAPER,
        reference=f"timm.models.tf_efficientnet_{variant}",
        layouts={"timm": None},
        defaults={"width_mult": w, "depth_mult": d},
        input_size=r, resize=int(r / TF_CROP_PCT[variant]), interpolation="bicubic",
    ))
