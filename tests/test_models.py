"""Every registered network vs its PyTorch reference (torchvision or timm), with random
weights and randomized BN statistics, at the native resolution and an odd one, batch 1 and 3.

Tolerance: logits agree to max|ours - ref| <= 1e-3 * (1 + max|ref|). Both sides compute in
float32 with different summation orders (and we fold BN into the conv weights, which
rounds differently from conv-then-BN), so agreement is to ~1e-5 relative per layer, and
a few 1e-4 relative after ~50 layers; 1e-3 leaves margin yet catches any wrong weight,
stride, padding or activation (those give O(1) differences).
"""
import numpy as np
import pytest

import tinyinfer
from torch_ref import REFERENCES, forward, randomize, state_dict_numpy

TOL = 1e-3


def check(name, batch, resolution, seed=0, **kwargs):
    ref = randomize(REFERENCES[name](**kwargs), seed)
    model = tinyinfer.load(name, weights=state_dict_numpy(ref), **kwargs)
    x = np.random.default_rng(seed).standard_normal((batch, 3, resolution, resolution),
                                                    dtype=np.float32)
    want = forward(ref, x)
    got = model(x)
    assert got.shape == want.shape == (batch, 1000)
    err = np.abs(got - want).max()
    assert err <= TOL * (1 + np.abs(want).max()), f"{name} {kwargs} @{resolution}: max err {err}"
    return model


@pytest.mark.parametrize("name", sorted(REFERENCES))
@pytest.mark.parametrize("batch,resolution", [(1, 224), (3, 193)])
def test_network_matches_reference(name, batch, resolution):
    check(name, batch, resolution)


@pytest.mark.parametrize("width", [0.35, 0.5, 0.75, 1.4])
def test_mobilenet_v2_widths(width):
    check("mobilenet_v2", 1, 160, seed=1, width_mult=width)


@pytest.mark.parametrize("width", [0.25, 0.5, 0.75])
def test_mobilenet_v1_widths(width):
    check("mobilenetv1_100", 2, 128, seed=2, width_mult=width)


def test_timm_layout_loads_into_torchvision_named_model():
    """torchvision's and timm's MobileNetV2 checkpoints both import into mobilenet_v2."""
    ref = randomize(REFERENCES["mobilenetv2_100"](), 3)
    model = tinyinfer.load("mobilenet_v2", weights=state_dict_numpy(ref))
    assert "timm" in model.weights_source
    x = np.random.default_rng(3).standard_normal((1, 3, 96, 96), dtype=np.float32)
    want = forward(ref, x)
    assert np.abs(model(x) - want).max() <= TOL * (1 + np.abs(want).max())
