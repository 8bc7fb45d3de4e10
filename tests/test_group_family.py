"""The group-convolution and squeeze families (ShuffleNetV2, SqueezeNet, GhostNet, RegNet,
SE-ResNet) and the classic baselines (AlexNet, VGG16, GoogLeNet, ResNet): the checks beyond
the parity test every network gets in tests/test_models.py (their references and weight
recipe are in tests/reference_registry.py): GoogLeNet's auxiliary-classifier keys, RegNet's
two channel roundings and cross-loading, wrong checkpoints and options.
"""
import pytest
import timm
import torchvision

import tinyinfer
from tinyinfer.errors import InputError, WeightsMismatchError
from tinyinfer.models.registry import get_spec
from torch_ref import check_network, he_init, randomize, state_dict_numpy

tv = torchvision.models


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
    ref = randomize(he_init(timm.create_model("regnetx_004_tv"), 5), 5)
    model = check_network("regnet_x_400mf", ref, 1, 97, seed=5)
    assert "timm layout" in model.weights_source


def test_wrong_width_checkpoint_is_refused():
    state = state_dict_numpy(tv.shufflenet_v2_x0_5())
    with pytest.raises(WeightsMismatchError, match="shape mismatches"):
        tinyinfer.load("shufflenet_v2_x1_0", weights=state)


def test_unknown_shufflenet_width_is_an_input_error():
    with pytest.raises(InputError, match="x0_5, x1_0, x1_5, x2_0"):
        tinyinfer.load("shufflenet_v2_x1_0", weights=None, width="x3_0")
