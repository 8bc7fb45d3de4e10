"""The group-convolution and squeeze families (ShuffleNetV2, SqueezeNet, GhostNet, RegNet,
SE-ResNet) and the classic baselines (AlexNet, VGG16, GoogLeNet, ResNet) vs their PyTorch
references: random weights, randomized BN statistics, native resolution at batch 1 and an
odd resolution (129) at batch 3.

Tolerance: tests/test_models.py's rule, max|ours - ref| <= 1e-3 * (1 + max|ref|) (float32 on
both sides, different summation orders, BN folded on ours: ~1e-5 relative per layer).
That rule is only meaningful for logits of size >= 1, and several references initialise so
that they are not (AlexNet's and VGG's FC layers are N(0, 0.01), GoogLeNet's convs
truncated N(0, 0.01): AlexNet's logits come out ~0.03, where 1e-3 would be a 3% error).
So on top of torch_ref.randomize every conv / linear weight is drawn He-normal (variance
2 / fan_in, which keeps activations O(1) through ReLUs) and every bias N(0, 0.1^2) (the
references zero-initialise biases, which would hide a bias left unloaded), and each test
asserts max|ref| >= 1 before comparing.
"""
import math

import numpy as np
import pytest
import timm
import torch
import torchvision

import tinyinfer
from tinyinfer.errors import InputError, WeightsMismatchError
from tinyinfer.models.registry import get_spec
from torch_ref import forward, randomize, state_dict_numpy

TOL = 1e-3
tv = torchvision.models

REFERENCES = {
    "alexnet": tv.alexnet,
    "vgg16": tv.vgg16,
    "resnet18": tv.resnet18,
    "resnet50": tv.resnet50,
    "seresnet50": lambda: timm.create_model("seresnet50"),
    # transform_input=False is torchvision's default without pretrained weights (see
    # models/googlenet.py); aux_logits=False leaves the training-only heads out of the state
    # dict (their keys are checked separately below)
    "googlenet": lambda: tv.googlenet(aux_logits=False, transform_input=False,
                                      init_weights=True),
    "squeezenet1_0": tv.squeezenet1_0,
    "squeezenet1_1": tv.squeezenet1_1,
    **{f"shufflenet_v2_{w}": getattr(tv, f"shufflenet_v2_{w}")
       for w in ("x0_5", "x1_0", "x1_5", "x2_0")},
    **{n: getattr(tv, n) for n in ("regnet_x_400mf", "regnet_y_400mf", "regnet_y_800mf")},
    **{n: (lambda n=n: timm.create_model(n))
       for n in ("regnetx_002", "regnety_002", "regnety_004", "regnety_006", "regnety_008",
                 "regnety_016", "ghostnet_050", "ghostnet_100", "ghostnet_130")},
}


def he_randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """torch_ref.randomize (random BN statistics), with He-normal weights and N(0, 0.1^2)
    biases in every conv and linear layer (see the module docstring)."""
    g = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(2 / fan_in))
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return randomize(model, seed)


_CACHE = {}


def reference_and_model(name):
    """Built once per test process and shared by a network's two resolutions."""
    if name not in _CACHE:
        _CACHE.clear()                    # keep one pair alive (VGG16 alone is 0.5 GB)
        ref = he_randomize(REFERENCES[name]())
        _CACHE[name] = ref, tinyinfer.load(name, weights=state_dict_numpy(ref))
    return _CACHE[name]


def assert_matches(want, got, what):
    scale = np.abs(want).max()
    assert scale >= 1, f"{what}: reference logits too small ({scale}) for the tolerance"
    err = np.abs(got - want).max()
    assert err <= TOL * (1 + scale), f"{what}: max err {err} (max |ref| {scale})"


@pytest.mark.parametrize("batch,resolution", [(1, 224), (3, 129)])
@pytest.mark.parametrize("name", list(REFERENCES))
def test_network_matches_reference(name, batch, resolution):
    ref, model = reference_and_model(name)
    x = np.random.default_rng(resolution).standard_normal((batch, 3, resolution, resolution),
                                                          dtype=np.float32)
    want = forward(ref, x)
    got = model(x)
    assert got.shape == want.shape == (batch, 1000)
    assert_matches(want, got, f"{name} @{batch}x{resolution}")


def test_every_registered_model_of_this_family_is_tested():
    """A model file registering a network without a reference here would go untested."""
    files = ("resnet", "alexnet_vgg", "squeezenet", "shufflenet_v2", "googlenet", "regnet",
             "ghostnet")
    mine = {n for n in tinyinfer.list_models()
            if get_spec(n).build.__module__.rsplit(".", 1)[-1] in files}
    assert mine == set(REFERENCES)


def test_googlenet_aux_classifier_keys_are_listed_as_ignored():
    """torchvision's GoogLeNet state dict (and its published checkpoint) carries the two
    training-only auxiliary classifiers. The key map names every one of those keys with
    None (not used) and maps every other key to the graph key of the same name."""
    state = tv.googlenet(aux_logits=True, init_weights=False).state_dict()
    keymap = get_spec("googlenet").layouts["torchvision"](tinyinfer.load(
        "googlenet", weights=None).graph)
    keys = {k for k in state if not k.endswith("num_batches_tracked")}
    aux = {k for k in keys if k.startswith(("aux1.", "aux2."))}
    assert len(aux) == 2 * (1 + 4 + 2 + 2)            # conv, bn (4), fc1 (2), fc2 (2)
    assert {k for k in keys if keymap.get(k, "missing") is None} == aux
    assert all(keymap[k] == k for k in keys - aux)


def test_regnet_group_rounding_follows_each_reference():
    """The same design-space parameters (RegNetX-400MF: d=22, w0=24, wa=24.48, wm=2.54,
    g=16) give a last stage of 400 channels in torchvision and 384 in timm, whose
    regnetx_004_tv exists for that reason; the generator reproduces both."""
    from tinyinfer.models.regnet import stage_plan
    params = (22, 24, 24.48, 2.54, 16)
    ref_tv = tv.regnet_x_400mf()
    ref_timm = timm.create_model("regnetx_004")
    tv_widths = [s[0].f.c[0].out_channels for s in ref_tv.trunk_output]
    tv_depths = [len(s) for s in ref_tv.trunk_output]
    timm_widths = [getattr(ref_timm, f"s{i}").b1.conv3.conv.out_channels for i in range(1, 5)]
    assert [(w, n) for w, n, _ in stage_plan(*params, "torchvision")] == \
        list(zip(tv_widths, tv_depths))
    assert [w for w, _, _ in stage_plan(*params, "timm")] == timm_widths
    assert tv_widths[-1] == 400 and timm_widths[-1] == 384


def test_timm_regnet_weights_load_into_torchvision_named_model():
    """timm's regnetx_004_tv (torchvision's rounding, timm's key names) loads into
    regnet_x_400mf: the layout is detected, and the outputs match timm's."""
    ref = he_randomize(timm.create_model("regnetx_004_tv"), 5)
    model = tinyinfer.load("regnet_x_400mf", weights=state_dict_numpy(ref))
    assert "timm layout" in model.weights_source
    x = np.random.default_rng(5).standard_normal((1, 3, 97, 97), dtype=np.float32)
    assert_matches(forward(ref, x), model(x), "regnetx_004_tv -> regnet_x_400mf")


def test_wrong_width_checkpoint_is_refused():
    state = state_dict_numpy(tv.shufflenet_v2_x0_5())
    with pytest.raises(WeightsMismatchError, match="shape mismatches"):
        tinyinfer.load("shufflenet_v2_x1_0", weights=state)


def test_unknown_shufflenet_width_is_an_input_error():
    with pytest.raises(InputError, match="x0_5, x1_0, x1_5, x2_0"):
        tinyinfer.load("shufflenet_v2_x1_0", weights=None, width="x3_0")
