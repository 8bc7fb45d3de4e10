"""Model scaling rules of the MBConv family, as functions anyone can call without weights.

Each rule returns a ``Scaled`` record: the build options it chose, the input resolution,
and the scaled network's Mult-Adds and parameters (BN folded, the papers' convention),
computed from shapes alone in about a second (the network is built with random weights
and never run).

    >>> from tinyinfer.analysis import scaling
    >>> scaling.efficientnet_compound(1).macs          # B0 scaled by phi = 1
    >>> scaling.scale("mobilenetv3_large_100", width=0.75).params
    >>> scaling.tinynet(r=0.86, w=1.0, d=1.2)           # = timm's tinynet_a

The three multipliers (MobileNet, EfficientNet):
    width w       every layer's channels c -> make_divisible(c * w, 8): the nearest multiple
                  of 8, never more than 10% below c * w (blocks.round_channels)
    depth d       every stage's n layers -> ceil(n * d) (EfficientNet), or round(n * d)
                  (TinyNet, MixNet-M/L: small d must be able to shrink a stage)
    resolution r  the input side 224 -> 224 r; nothing in the network changes
Mult-Adds grow about as d w^2 r^2.

EfficientNet's compound scaling (Tan & Le 2019, eq. 3): one coefficient phi scales all three,
    d = alpha^phi, w = beta^phi, r = gamma^phi, alpha = 1.2, beta = 1.1, gamma = 1.15,
chosen by grid search at phi = 1 under alpha * beta^2 * gamma^2 ~ 2 (here 1.9203), so that
FLOPs grow by about 2^phi. The published B1-B7 do not sit exactly on that curve. Their
coefficients (the TF reference's efficientnet_params, used verbatim by timm and torchvision;
``EFFICIENTNET_PUBLISHED`` below) are rounded by hand:
                       B1   B2   B3   B4   B5   B6   B7
    width w            1.0  1.1  1.2  1.4  1.6  1.8  2.0
    depth d            1.1  1.2  1.4  1.8  2.2  2.6  3.1
    resolution         240  260  300  380  456  528  600
  and the phi at which the formula gives each of them:
    w = beta^phi       0    1    1.9  3.5  4.9  6.2  7.3
    d = alpha^phi      0.5  1    1.8  3.2  4.3  5.2  6.2
    r/224 = gamma^phi  0.5  1.1  2.1  3.8  5.1  6.1  7.0
i.e. B2 is phi = 1 (resolution 260 for 224 x 1.15 = 258), B3 roughly phi = 2, B5-B7 roughly phi = 5, 6, 7 in width and
resolution with a depth that grows more slowly than 1.2^phi, and B1 half a step with the
width left at 1.0. ``efficientnet_phi`` gives these nominal phi values. So
``efficientnet_compound(phi)`` is the formula, and a published model is reproduced exactly
by ``efficientnet_scaled(w, d, r)`` with its published coefficients.

TinyNet's "Tiny Formula" (Han et al. 2020) goes the other way, shrinking B0 to a FLOPs
budget c < 1 (a fraction of B0's): it chooses the resolution r and depth d from curves
fitted to good small models, then spends what is left on width:
    w = sqrt(c / (r^2 d)).
The paper publishes rounded results for TinyNet A-E; those (r, w, d), as timm uses them,
are ``TINYNET_PUBLISHED``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import InputError
from ..models.blocks import make_divisible, round_channels, scale_stage_depth
from ..models.registry import get_spec

ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15       # EfficientNet's depth, width, resolution bases
BASE_RESOLUTION = 224

#   name: (width w, depth d, resolution)   the TF reference's efficientnet_params
EFFICIENTNET_PUBLISHED = {
    "b0": (1.0, 1.0, 224), "b1": (1.0, 1.1, 240), "b2": (1.1, 1.2, 260), "b3": (1.2, 1.4, 300),
    "b4": (1.4, 1.8, 380), "b5": (1.6, 2.2, 456), "b6": (1.8, 2.6, 528), "b7": (2.0, 3.1, 600),
}
#   name: (resolution multiplier r, width w, depth d)   TinyNet paper / timm's tinynet_*
TINYNET_PUBLISHED = {
    "a": (0.86, 1.0, 1.2), "b": (0.84, 0.75, 1.1), "c": (0.825, 0.54, 0.85),
    "d": (0.68, 0.54, 0.695), "e": (0.475, 0.51, 0.6),
}


@dataclass(frozen=True)
class Scaled:
    """A scaled architecture: how to build it and what it costs at ``resolution``."""
    name: str                 # the registered network the scaling started from
    build_kwargs: dict        # pass to tinyinfer.load(name, **build_kwargs)
    resolution: int
    macs: int                 # Mult-Adds at resolution x resolution, batch 1, BN folded
    params: int

    def load(self, weights=None):
        """The scaled network (random weights unless given)."""
        import tinyinfer
        return tinyinfer.load(self.name, weights=weights, **self.build_kwargs)


# ---- the three multipliers --------------------------------------------------------------
def scale_width(channels: int, w: float, divisor: int = 8) -> int:
    """A layer's channels under width multiplier ``w`` (make_divisible rounding)."""
    return round_channels(channels, w, divisor)


def scale_depth(layers: int, d: float, rounding: str = "ceil") -> int:
    """A stage's layer count under depth multiplier ``d``: ceil(n d) or round(n d)."""
    return scale_stage_depth([layers], d, rounding)[0]


def scale_resolution(r: float, base: int = BASE_RESOLUTION) -> int:
    """The input side under resolution multiplier ``r`` (TinyNet's published sizes are
    int(224 r): 192, 188, 184, 152, 106)."""
    return int(base * r)


def scale(name: str, width: float | None = None, depth: float | None = None,
          resolution: int | None = None) -> Scaled:
    """Registered network ``name`` with its width / depth multipliers replaced (absolute
    values, as the references' generators take them) at ``resolution`` (default: the
    model's own input size)."""
    spec = get_spec(name)
    kwargs = dict(spec.defaults)
    for key, value in (("width_mult", width), ("depth_mult", depth)):
        if value is None:
            continue
        if key not in kwargs:
            raise InputError(f"{name} has no {key} option (its options: "
                             f"{', '.join(spec.defaults) or 'none'})")
        if not value > 0:
            raise InputError(f"{key} must be > 0, got {value!r}")
        kwargs[key] = float(value)
    return _measure(name, kwargs, resolution or spec.input_size)


def _measure(name, kwargs, resolution) -> Scaled:
    import tinyinfer
    if not isinstance(resolution, int) or resolution < 32:
        raise InputError(f"resolution must be an int >= 32, got {resolution!r}")
    report = tinyinfer.load(name, weights=None, **kwargs).summary(resolution)
    return Scaled(name, kwargs, resolution, report.macs, report.params)


# ---- EfficientNet ------------------------------------------------------------------------
def compound_coefficients(phi: float) -> tuple[float, float, float]:
    """(d, w, r) = (alpha^phi, beta^phi, gamma^phi), unrounded."""
    return ALPHA ** phi, BETA ** phi, GAMMA ** phi


def efficientnet_scaled(w: float, d: float, resolution: int,
                        name: str = "efficientnet_b0") -> Scaled:
    """EfficientNet-B0 (torchvision's, or ``name``: e.g. tf_efficientnet_b0) at width w,
    depth d and input ``resolution``."""
    return _measure(name, {**get_spec(name).defaults, "width_mult": float(w),
                           "depth_mult": float(d)}, resolution)


def efficientnet_compound(phi: float, name: str = "efficientnet_b0") -> Scaled:
    """EfficientNet-B0 scaled by the compound formula, resolution round(224 gamma^phi)."""
    d, w, r = compound_coefficients(phi)
    return efficientnet_scaled(w, d, round(BASE_RESOLUTION * r), name)


def efficientnet_phi(variant: str) -> tuple[float, float, float]:
    """The phi at which each published coefficient of B``variant`` sits on its curve:
    (phi of depth, phi of width, phi of resolution). See the module docstring."""
    w, d, r = EFFICIENTNET_PUBLISHED[variant]
    return (math.log(d) / math.log(ALPHA), math.log(w) / math.log(BETA),
            math.log(r / BASE_RESOLUTION) / math.log(GAMMA))


# ---- TinyNet -----------------------------------------------------------------------------
def tiny_formula_width(c: float, r: float, d: float) -> float:
    """TinyNet's width for FLOPs budget c (a fraction of B0's), resolution r and depth d."""
    if not (0 < c and 0 < r and 0 < d):
        raise InputError(f"c, r and d must be > 0, got {c}, {r}, {d}")
    return math.sqrt(c / (r * r * d))


def tinynet(r: float, w: float, d: float) -> Scaled:
    """B0 shrunk by resolution r, width w and depth d with TinyNet's rules (fixed stem,
    round() depths, head max(1280, 1280 w)): tinynet(0.86, 1.0, 1.2) is TinyNet-A."""
    return _measure("tinynet_a", {"width_mult": float(w), "depth_mult": float(d)},
                    scale_resolution(r))


__all__ = ["Scaled", "scale", "scale_width", "scale_depth", "scale_resolution",
           "compound_coefficients", "efficientnet_scaled", "efficientnet_compound",
           "efficientnet_phi", "tiny_formula_width", "tinynet", "make_divisible",
           "EFFICIENTNET_PUBLISHED", "TINYNET_PUBLISHED", "ALPHA", "BETA", "GAMMA"]
