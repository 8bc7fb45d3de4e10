"""Every registered network's PyTorch reference, in one table: name -> how to build the
reference module, the (batch, resolution) cases its parity test runs, and how its weights
are randomized. tests/test_models.py runs the parity test over this table and fails when a
registered model is in neither REFERENCES nor NO_REFERENCE (name -> why it cannot have one).

The cases: batch 1 at the network's native resolution and batch 3 at an odd one, chosen per
family for speed (a 600-pixel EfficientNet-B7 at batch 3 would take minutes) or for what the
reference accepts (a fixed 7x7 head pool needs a 7x7 last map): 129 for most, 193 or 211
for some. The tolerance is the same for all (torch_ref.RTOL). A new network = one entry.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import timm
import torch
import torchvision
from efficientnet_lite_pytorch import EfficientNet as LiteEfficientNet

import chamnet_ref
import amoebanet_ref
import edgevit_ref
import micronet_ref
import nas_tf_ref
from torch_ref import he_init, randomize

tv = torchvision.models


@dataclass(frozen=True)
class Reference:
    # build(**options) -> the reference module; options are tinyinfer.load's architecture
    # options it accepts (e.g. width_mult), translated to the reference's arguments
    build: Callable[..., torch.nn.Module]
    cases: tuple[tuple[int, int], ...]     # (batch, resolution) pairs of the parity test
    # "reference": the reference's own conv / linear init; "he": torch_ref.he_init. Either
    # way torch_ref.randomize then draws every norm layer's statistics and affine.
    weights: str = "reference"
    # the module is built for one input size (its padding is fixed at construction): build
    # gets image_size=resolution, and each case builds its own
    sized: bool = False

    def __post_init__(self):
        assert self.weights in ("reference", "he"), f"unknown weights recipe {self.weights!r}"


def reference(name: str, resolution: int | None = None, seed: int = 0,
              **options) -> torch.nn.Module:
    """``name``'s reference module, randomized by its recipe, in eval mode."""
    ref = REFERENCES[name]
    if ref.sized:
        options["image_size"] = resolution
    # The references' own inits draw from torch's global generator: without a seed their
    # weights depended on which tests ran before in the process, and for a few draws a
    # network is ill-conditioned enough that torch's own float32 output is off by more than
    # the tolerance (measured: mobileone_s4 at 3 x 129, torch float32 vs float64 up to
    # 2.5e-3 of max|ref|, tinyinfer 4.8e-4; it failed a CI run that way).
    torch.manual_seed(seed)
    module = ref.build(**options)
    if ref.weights == "he":
        he_init(module, seed)
    return randomize(module, seed)


def _timm(name: str, **kw):
    return lambda: timm.create_model(name, **kw)


def _pytorchcv(name: str):
    def build():
        from pytorchcv.model_provider import get_model  # needs conftest's torchvision import
        return get_model(name)
    return build


def _efficientvit_m(name: str):
    def build():
        module = timm.create_model(name)
        with torch.no_grad():   # timm initialises them to 0: a wrong bias index would pass
            for n, p in module.named_parameters():
                if n.endswith("attention_biases"):
                    p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(7)))
        return module
    return build


def _shufflenet_authors(width_scale: float, stem: int):
    """pytorchcv's ShuffleNet class (g=3) at the ShuffleNet authors' wider widths, which
    pytorchcv registers no name for (models/shufflenet_v1.py's AUTHORS_WIDER)."""
    def build():
        from pytorchcv.models.shufflenet import ShuffleNet
        channels = [[int(c * width_scale)] * n for c, n in zip((240, 480, 960), (4, 8, 4))]
        return ShuffleNet(channels=channels, init_block_channels=stem, groups=3)
    return build


def _condensenet(name: str):
    def build():
        module = _pytorchcv(name)()
        # pytorchcv fills every index buffer with 0 (one channel copied C times): draw random
        # permutations (the classifier's: the first half of one), so a misread index fails
        g = torch.Generator().manual_seed(11)
        for key, index in module.named_buffers():
            if key.endswith(".index"):
                n = index.numel() * (2 if key == "output.index" else 1)
                index.copy_(torch.randperm(n, generator=g)[:index.numel()])
        return module
    return build


def _dicenet(name: str):
    def build():
        module = _pytorchcv(name)()
        # every PReLU starts at slope 0.25: draw one per channel (some negative), so a slope
        # read from the wrong channel or layer fails
        g = torch.Generator().manual_seed(12)
        with torch.no_grad():
            for m in module.modules():
                if isinstance(m, torch.nn.PReLU):
                    m.weight.copy_(torch.rand(m.weight.shape, generator=g) - 0.25)
        return module
    return build


def _mbconv(native: int) -> tuple[tuple[int, int], ...]:
    return ((1, native), (3, 129))


def _lite_pytorch(image_size: int) -> torch.nn.Module:
    # EfficientNet-PyTorch pads for a fixed image size given at construction
    return LiteEfficientNet.from_name("efficientnet-lite0", image_size=image_size)


FIRST = ((1, 224), (3, 193))
MBCONV = _mbconv(224)
# The group family's references initialise so that logits come out ~0.03 (AlexNet, VGG) or
# with zero biases: he_init (see torch_ref). Native 224 and an odd 129.
GROUP = ((1, 224), (3, 129))

REFERENCES: dict[str, Reference] = {
    # ---- MobileNet V1 / V2 (tinyinfer's first networks) ---------------------------------
    "mobilenet_v2": Reference(lambda width_mult=1.0: tv.mobilenet_v2(width_mult=width_mult),
                              FIRST),
    # timm registers fixed widths; its generator functions take the multiplier
    "mobilenetv2_100": Reference(
        lambda width_mult=1.0: timm.models.efficientnet._gen_mobilenet_v2(
            "mobilenetv2_100", channel_multiplier=width_mult), FIRST),
    "mobilenetv1_100": Reference(
        lambda width_mult=1.0: timm.models.efficientnet._gen_mobilenet_v1(
            "mobilenetv1_100", channel_multiplier=width_mult), FIRST),

    # ---- the MBConv family, at each network's native resolution --------------------------
    "mobilenet_v3_large": Reference(tv.mobilenet_v3_large, MBCONV),
    "mobilenet_v3_small": Reference(tv.mobilenet_v3_small, MBCONV),
    **{n: Reference(_timm(n), MBCONV) for n in (
        "mobilenetv3_large_100", "mobilenetv3_small_100", "mobilenetv3_large_075",
        "mobilenetv3_small_075", "tf_mobilenetv3_large_minimal_100",
        "tf_mobilenetv3_small_minimal_100", "semnasnet_100", "tf_efficientnet_lite0",
        "mixnet_s", "mixnet_m", "mixnet_l")},
    **{n: Reference(getattr(tv, n), MBCONV)
       for n in ("mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3")},
    # the paper's resolutions for B0-B7 (torchvision's weights crop B2 at 288)
    **{f"efficientnet_b{i}": Reference(getattr(tv, f"efficientnet_b{i}"), _mbconv(r))
       for i, r in enumerate((224, 240, 260, 300, 380, 456, 528, 600))},
    **{f"tf_efficientnet_b{i}": Reference(_timm(f"tf_efficientnet_b{i}"), _mbconv(r))
       for i, r in enumerate((224, 240, 260, 300, 380, 456, 528, 600))},
    "efficientnet_v2_s": Reference(tv.efficientnet_v2_s, _mbconv(384)),
    "efficientnet_lite0": Reference(_lite_pytorch, MBCONV, sized=True),
    **{f"tinynet_{v}": Reference(_timm(f"tinynet_{v}"), _mbconv(r))
       for v, r in zip("abcde", (192, 188, 184, 152, 106))},
    # BN epsilon 1e-5, as create_model builds it (its pretrained=True uses 1e-3; the
    # second-layout test in test_mbconv_family.py loads that network)
    "fbnetc_100": Reference(_timm("fbnetc_100"), MBCONV),

    # ---- group convolution and squeeze families, and the baselines ---------------------
    "alexnet": Reference(tv.alexnet, GROUP, "he"),
    "vgg16": Reference(tv.vgg16, GROUP, "he"),
    "resnet18": Reference(tv.resnet18, GROUP, "he"),
    "resnet50": Reference(tv.resnet50, GROUP, "he"),
    "seresnet50": Reference(_timm("seresnet50"), GROUP, "he"),
    # timm.models.senet, a port of the SENet authors' Caffe models (models/resnet.py)
    "legacy_seresnet18": Reference(_timm("legacy_seresnet18"), GROUP, "he"),
    "legacy_seresnet34": Reference(_timm("legacy_seresnet34"), GROUP, "he"),
    # transform_input=False is torchvision's default without pretrained weights (see
    # models/googlenet.py); aux_logits=False leaves the training-only heads out of the state
    # dict (test_group_family.py checks their keys separately)
    "googlenet": Reference(lambda: tv.googlenet(aux_logits=False, transform_input=False,
                                                init_weights=True), GROUP, "he"),
    **{n: Reference(getattr(tv, n), GROUP, "he") for n in (
        "squeezenet1_0", "squeezenet1_1", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0",
        "shufflenet_v2_x1_5", "shufflenet_v2_x2_0", "regnet_x_400mf", "regnet_y_400mf",
        "regnet_y_800mf")},
    **{n: Reference(_timm(n), GROUP, "he") for n in (
        "regnetx_002", "regnety_002", "regnety_004", "regnety_006", "regnety_008",
        "regnety_016", "ghostnet_050", "ghostnet_100", "ghostnet_130")},
    # the RegNet sizes of RegNet's comparison with EfficientNet (analysis/activations.py):
    # 15-39M parameters each: the odd case at a small 97 (the network is built once per
    # model, so a case costs one forward)
    **{n: Reference(_timm(n), ((1, 224), (3, 97)), "he") for n in (
        "regnetx_032", "regnetx_040", "regnetx_064", "regnetx_080", "regnety_032",
        "regnety_040", "regnety_064", "regnety_080")},
    # ShuffleNet V1: pytorchcv's head is a fixed 7x7 average pool, so both cases end on a 7x7
    # map (224 and 193 do; 129 would end on 5x5, where the reference cannot run)
    **{n: Reference(_pytorchcv(n), FIRST, "he") for n in (
        "shufflenet_g1_w1", "shufflenet_g2_w1", "shufflenet_g3_w1", "shufflenet_g4_w1",
        "shufflenet_g8_w1", "shufflenet_g1_w3d4", "shufflenet_g1_wd2", "shufflenet_g1_wd4",
        "shufflenet_g3_w3d4", "shufflenet_g3_wd2", "shufflenet_g3_wd4")},
    "shufflenet_g3_w3d2": Reference(_shufflenet_authors(1.5, 24), FIRST, "he"),
    "shufflenet_g3_w2": Reference(_shufflenet_authors(2.0, 48), FIRST, "he"),
    # ProxylessNAS and Single-Path NAS (MBConv networks): pytorchcv's head is a fixed 7x7
    # average pool, so both cases end on a 7x7 map (224 and 193 do)
    **{n: Reference(_pytorchcv(n), FIRST, "he") for n in (
        "proxylessnas_cpu", "proxylessnas_gpu", "proxylessnas_mobile", "proxylessnas_mobile14",
        "spnasnet")},
    # ChamNet: tests/chamnet_ref.py (mobile-vision's FBNet-v2 builder semantics), at each
    # network's released resolution and at 129
    **{f"chamnet_{v}": Reference(lambda v=v: chamnet_ref.chamnet(v), _mbconv(r), "he")
       for v, r in zip("abcdef", (224, 192, 224, 192, 160, 128))},
    # SqueezeNeXt: pytorchcv's head is a fixed 7x7 average pool too; 211 ends on 7x7
    # (211 -> 104 -> 52 -> 26 -> 13 -> 7), 193 would end on 6x6
    **{n: Reference(_pytorchcv(n), ((1, 224), (3, 211)), "he") for n in (
        "sqnxt23_w1", "sqnxt23_w3d2", "sqnxt23_w2", "sqnxt23v5_w1", "sqnxt23v5_w3d2",
        "sqnxt23v5_w2")},
    # MobileOne: timm's training form (multi-branch, randomized BN in every branch), which
    # tinyinfer re-parameterizes at load; test_mobileone.py also checks timm's reparameterized
    **{f"mobileone_s{i}": Reference(_timm(f"mobileone_s{i}"), MBCONV) for i in range(5)},
    # EfficientViT-M (Microsoft), timm's init with random attention biases (timm zeroes
    # them); 225 -> 113 -> 57 -> 29 -> 15: stage maps 15, 8, 4 against windows 7, 7, 4, so
    # two stages pad to whole windows (3x3 and 2x2 of them) and one fits exactly
    **{f"efficientvit_m{i}": Reference(_efficientvit_m(f"efficientvit_m{i}"),
                                       ((1, 224), (3, 225))) for i in range(6)},
    # EfficientViT-B (MIT), timm's own init: native 224, and 129 (-> 65, 33, 17, 9, 5) puts
    # odd maps through the multi-scale aggregation and the ReLU linear attention
    **{f"efficientvit_b{i}": Reference(_timm(f"efficientvit_b{i}"), MBCONV) for i in range(4)},
    # MobileViT: native 256; at 129 every MobileViT block's map is odd (17, 9, 5), so the
    # bilinear resize around its unfold / fold runs too
    **{n: Reference(_timm(n), _mbconv(256)) for n in ("mobilevit_xxs", "mobilevit_xs",
                                                      "mobilevit_s")},
    # EdgeViT: the authors' code (tests/edgevit_ref.py), built for one input size (its patch
    # embedding asserts it). 227 is odd and still tiles every delegate grid, as the reference
    # needs: 227 -> 56 -> 28 -> 14 -> 7 (floor(227/4) = 56, a multiple of 8). "he": every
    # conv and Linear bias nonzero (the authors' own init zeroes the Linear ones).
    **{n: Reference(lambda image_size, build=build: build(img_size=image_size),
                    ((1, 224), (3, 227)), "he", sized=True)
       for n, build in edgevit_ref.BUILDERS.items()},
    # NAS cells. pytorchcv's NASNet-A Mobile: a fixed 7x7 head pool, and its pad-then-crop
    # stride-2 ops need an even map entering each reduction: 224 and 223 (-> 111 -> 56 ->
    # 28 -> 14 -> 7) do, 211 and 193 do not run in the reference.
    "nasnet_4a1056": Reference(_pytorchcv("nasnet_4a1056"), ((1, 224), (3, 223))),
    # timm's NASNet-A Large / PNASNet-5 Large (~24 GMACs each at their native 331): two
    # small sizes instead (TF SAME padding runs at any size; 132 is even at the first three
    # reductions, 99 odd at all of them): the network is built once, a case is a forward
    "nasnetalarge": Reference(_timm("nasnetalarge"), ((1, 132), (3, 99))),
    "pnasnet5large": Reference(_timm("pnasnet5large"), ((1, 132), (3, 99))),
    # PNASNet-5 Mobile: the test suite's port of TF-slim (nas_tf_ref.py); TF SAME padding
    "pnasnet5mobile": Reference(nas_tf_ref.PNASNetMobile, MBCONV),
    # AmoebaNet-A mobile: the test suite's port of tensorflow/tpu amoeba_net. TF SAME pads
    # stride-2 ops by the map's parity: 224 (-> 111 -> 56 -> 28, 14) gives even maps to
    # three reductions, 99 (-> 49 -> 25 -> 13, 7) odd ones to all four
    "amoebanet_a_mobile": Reference(amoebanet_ref.AmoebaNetA, ((1, 224), (3, 99))),
    # MobileViTV2: native 256; 255 (-> 128 -> 64 -> 32 -> 16 -> 8), odd yet every
    # MobileViTV2 block's map even; 224, whose last block gets a 7x7 map that timm (and
    # tinyinfer's resize_to_patches) resizes to 8x8. "he": nonzero biases in the attention
    # and MLP 1x1 convs (timm's init zeroes them, and a bias loaded into the wrong conv
    # would pass)
    **{n: Reference(_timm(n), ((1, 256), (3, 255), (1, 224)), "he") for n in (
        "mobilevitv2_050", "mobilevitv2_075", "mobilevitv2_100", "mobilevitv2_125",
        "mobilevitv2_150", "mobilevitv2_175", "mobilevitv2_200")},
    # CondenseNet (converted): pytorchcv's head is a fixed 7x7 average pool; 225 -> 113 ->
    # 56 -> 28 -> 14 -> 7 ends on 7x7 (193 would end on 6x6)
    **{n: Reference(_condensenet(n), ((1, 224), (3, 225)), "he")
       for n in ("condensenet74_c4_g4", "condensenet74_c8_g8")},
    # MicroNet M0-M3: the authors' code (micronet_ref.py) as their eval scripts configure it;
    # fully convolutional, so 224 and an odd 225. Weights: micronet_ref.unit_scale_init (He,
    # randomize, then each conv / Linear rescaled to unit output std; why: its docstring);
    # randomize here draws the same BN values again (seed 0)
    **{n: Reference(lambda n=n: micronet_ref.unit_scale_init(micronet_ref.micronet(n)),
                    ((1, 224), (3, 225)))
       for n in micronet_ref.EVAL_SCRIPTS},
    # DiCENet: pytorchcv builds each height-/width-wise conv for the 224 input's map; at 193
    # (-> 97 -> 49 -> 25, 13, 7 against 28, 14, 7) they enlarge their maps bilinearly and
    # shrink them back (test_dicenet.py runs 257, the other direction, for one width)
    **{f"dicenet_{w}": Reference(_dicenet(f"dicenet_{w}"), FIRST, "he") for w in (
        "wd5", "wd2", "w3d4", "w1", "w5d4", "w3d2", "w7d8", "w2")},
}

# name -> why it has no parity test against a PyTorch reference (none today).
NO_REFERENCE: dict[str, str] = {}
