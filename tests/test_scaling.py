"""tinyinfer.analysis.scaling: width / depth / resolution multipliers, EfficientNet's compound scaling
and TinyNet's rule, checked against the references' own modules (parameter counts of
torchvision / timm networks, with each BN counted as the one bias it folds into) and
against closed forms written out here."""
import math

import pytest
import timm
import torch
import torchvision
from torchvision.models._utils import _make_divisible
from torchvision.models.efficientnet import MBConvConfig

from tinyinfer.analysis import scaling
from tinyinfer.errors import InputError


def folded_params(module: torch.nn.Module) -> int:
    """A reference's parameter count with BN folded: BN's weight and bias (2 per channel)
    become one conv bias per channel."""
    bn = sum(m.num_features for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d))
    return sum(p.numel() for p in module.parameters()) - bn


def test_compound_coefficients_are_the_formula():
    for phi in (0, 1, 2.5, 7):
        d, w, r = scaling.compound_coefficients(phi)
        assert (d, w, r) == (1.2 ** phi, 1.1 ** phi, 1.15 ** phi)
    # the constraint alpha * beta^2 * gamma^2 ~ 2 (so FLOPs ~ 2^phi)
    assert math.isclose(scaling.ALPHA * scaling.BETA ** 2 * scaling.GAMMA ** 2, 1.920, abs_tol=5e-4)


@pytest.mark.parametrize("variant", ["b1", "b2", "b3", "b4", "b5", "b6", "b7"])
def test_published_coefficients_reproduce_torchvisions_b1_to_b7(variant):
    """B0's table scaled with B_i's published (w, d) is torchvision's efficientnet_b_i, weight
    for weight; and the registered network at its native resolution has the same counts."""
    w, d, r = scaling.EFFICIENTNET_PUBLISHED[variant]
    scaled = scaling.efficientnet_scaled(w, d, r)
    assert scaled.resolution == r
    assert scaled.params == folded_params(getattr(torchvision.models, f"efficientnet_{variant}")())
    registered = scaling.scale(f"efficientnet_{variant}", resolution=r)
    assert (scaled.macs, scaled.params) == (registered.macs, registered.params)


def test_published_coefficients_sit_near_the_compound_curve_as_documented():
    """The nominal phi of every published coefficient, as the module docstring tabulates
    them (B1 .. B7: depth, width, resolution)."""
    depth = [0.5, 1.0, 1.8, 3.2, 4.3, 5.2, 6.2]
    width = [0.0, 1.0, 1.9, 3.5, 4.9, 6.2, 7.3]
    resolution = [0.5, 1.1, 2.1, 3.8, 5.1, 6.1, 7.0]
    for i, variant in enumerate(["b1", "b2", "b3", "b4", "b5", "b6", "b7"]):
        pd, pw, pr = scaling.efficientnet_phi(variant)
        assert abs(pd - depth[i]) < 0.06 and abs(pw - width[i]) < 0.06 \
            and abs(pr - resolution[i]) < 0.06, variant
    assert scaling.efficientnet_phi("b2")[:2] == pytest.approx((1.0, 1.0))


@pytest.mark.parametrize("phi", [1, 2, 3])
def test_compound_scaling_grows_mult_adds_about_2_to_the_phi(phi):
    """Mult-Adds grow as d w^2 r^2 = (alpha beta^2 gamma^2)^phi = 1.92^phi, plus what
    rounding adds: ceil(n d) turns each one-layer stage into two as soon as d > 1 (and
    channels round to multiples of 8), so the built networks sit 0-35% above the curve."""
    base = scaling.efficientnet_compound(0)
    scaled = scaling.efficientnet_compound(phi)
    assert scaled.resolution == round(224 * 1.15 ** phi)
    ratio = scaled.macs / base.macs / 1.92025 ** phi
    assert 1.0 <= ratio <= 1.35, ratio


@pytest.mark.parametrize("size,width", [("large", 0.75), ("small", 0.75), ("large", 0.5)])
def test_mobilenet_v3_width_multiplier_is_timms(size, width):
    """The width multiplier on mobilenetv3_*_100 builds timm's mobilenetv3_*_075 / _050
    (timm's generator, weight for weight)."""
    scaled = scaling.scale(f"mobilenetv3_{size}_100", width=width)
    ref = timm.models.mobilenetv3._gen_mobilenet_v3(f"mobilenetv3_{size}_x", width)
    assert scaled.params == folded_params(ref)
    if width == 0.75:
        registered = scaling.scale(f"mobilenetv3_{size}_075")
        assert (scaled.macs, scaled.params) == (registered.macs, registered.params)


@pytest.mark.parametrize("variant", ["a", "b", "c", "d", "e"])
def test_tinynet_rule_reproduces_timms_tinynets(variant):
    """TinyNet's published (r, w, d) applied to B0 is timm's tinynet_<variant>, weight for
    weight, at timm's input size int(224 r)."""
    r, w, d = scaling.TINYNET_PUBLISHED[variant]
    scaled = scaling.tinynet(r, w, d)
    ref = timm.create_model(f"tinynet_{variant}")
    assert scaled.resolution == ref.pretrained_cfg["input_size"][1]
    assert scaled.params == folded_params(ref)


def test_tiny_formula_spends_the_budget_on_width():
    """w = sqrt(c / (r^2 d)): the width that makes r^2 d w^2 = c."""
    for r, w, d in scaling.TINYNET_PUBLISHED.values():
        c = r * r * d * w * w
        assert math.isclose(scaling.tiny_formula_width(c, r, d), w, rel_tol=1e-12)
    with pytest.raises(InputError):
        scaling.tiny_formula_width(0, 0.5, 1)


def test_single_multipliers_match_the_references():
    # width: torchvision's _make_divisible
    for c in (16, 24, 40, 80, 112, 192, 320, 1280):
        for w in (0.35, 0.5, 0.75, 1.1, 1.3, 1.4, 2.0):
            assert scaling.scale_width(c, w) == _make_divisible(c * w, 8)
    # depth: torchvision's ceil(n d); round(n d) with a floor of 1
    for n in (1, 2, 3, 4):
        for d in (0.6, 1.1, 1.2, 1.4, 1.8, 2.2, 3.1):
            assert scaling.scale_depth(n, d) == MBConvConfig.adjust_depth(n, d)
            assert scaling.scale_depth(n, d, "round") == max(1, round(n * d))
    assert [scaling.scale_resolution(r) for r, _, _ in scaling.TINYNET_PUBLISHED.values()] \
        == [192, 188, 184, 152, 106]


def test_resolution_multiplier_changes_only_the_input():
    """MobileNetV2 at 0.75 x 224 = 168: same parameters, Mult-Adds of a 168 input."""
    full, small = scaling.scale("mobilenet_v2"), scaling.scale("mobilenet_v2", resolution=168)
    assert full.params == small.params and small.macs < full.macs
    assert scaling.scale("mobilenet_v2", width=1.4).macs / 1e6 == pytest.approx(585, rel=0.01)


def test_bad_scaling_arguments_are_explained():
    with pytest.raises(InputError, match="width_mult must be > 0"):
        scaling.scale("efficientnet_b0", width=0)
    with pytest.raises(InputError, match="has no depth_mult option"):
        scaling.scale("mobilenetv3_large_100", depth=2.0)
    with pytest.raises(InputError, match="resolution must be an int"):
        scaling.scale("efficientnet_b0", resolution=8)
    scaled = scaling.scale("mnasnet0_5")
    assert scaled.load().summary(224).macs == scaled.macs
