"""DiCENet (tinyinfer/models/dicenet.py): operation counts vs pytorchcv's modules and vs the
published figures, the DiCE unit's structure, the resize path at a larger input,
checkpoint keys, bad options. (Parity with pytorchcv at 224 and 193, random PReLU slopes
and randomized BN, all 8 widths: tests/test_models.py through tests/reference_registry.py.)

Published figures: the authors' repository (sacmehta/EdgeNets), where the paper's
ImageNet networks are released: model/classification/model_zoo/README.md gives "FLOPs (in
million)" per width scale s to two decimals (14.90, 24.71, 46.83, 70.71, 98.11, 135.48,
182.24, 236.29) and model/classification/dicenet_config.py's results table gives the
parameters (1.13, 1.21, 1.50, 1.81, 2.16, 2.65, 3.26, 3.98 M). The paper's own tables were
not in the search corpus, so they are not checked here.
"""
import numpy as np
import pytest
import torch
from pytorchcv.model_provider import get_model
from torch.utils.flop_counter import FlopCounterMode

import tinyinfer
from tinyinfer.analysis.conventions import count
from tinyinfer.engine.ops import infer_shapes
from tinyinfer.errors import InputError, WeightsMismatchError
from tinyinfer.models.dicenet import dicenet
from torch_ref import assert_matches, forward, image_batch, state_dict_numpy, torch_macs
from reference_registry import reference

# name: (width scale, the authors' MFLOPs, the authors' M params)
PUBLISHED = {
    "dicenet_wd5": (0.2, 14.90, 1.13), "dicenet_wd2": (0.5, 24.71, 1.21),
    "dicenet_w3d4": (0.75, 46.83, 1.50), "dicenet_w1": (1.0, 70.71, 1.81),
    "dicenet_w5d4": (1.25, 98.11, 2.16), "dicenet_w3d2": (1.5, 135.48, 2.65),
    "dicenet_w7d8": (1.75, 182.24, 3.26), "dicenet_w2": (2.0, 236.29, 3.98),
}


def _bn_channels(graph, after_concat: bool) -> int:
    return sum(n.param_shapes["weight"][0] for n in graph if n.kind == "batchnorm"
               and n.name.endswith("norm_activ.bn") == after_concat)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_counts_equal_pytorchcv_and_the_authors(name):
    """MACs: exactly the Mult-Adds of pytorchcv's Conv2d and Linear modules (forward hooks:
    the height- and width-wise convs are Conv2d modules on the transposed maps, so the hooks
    see them), and equal to the authors' published MFLOPs to their two decimals: the
    authors' "FLOPs" are these Mult-Adds (conv and linear only, no BN, PReLU, pool or gate
    arithmetic), so there is no gap to explain. Parameters: PyTorch's count rounds to the
    authors' figure (1.13 M ... 3.98 M; pytorchcv's own _test asserts the exact numbers,
    1,130,704 for wd5 ...); tinyinfer's folded count differs from PyTorch's by the BN
    arithmetic: a BN folded into its conv leaves a bias of C where PyTorch counts gamma and
    beta (2C): -C each; the BN after the three-way concat (norm_activ) cannot fold into the
    height-/width-wise convs and runs alone with its 4 vectors: +2C each."""
    scale, mflops, mparams = PUBLISHED[name]
    ref = get_model(name)
    rep = tinyinfer.summary(name)
    torch_params = sum(p.numel() for p in ref.parameters())
    graph = dicenet(scale)
    assert rep.macs == torch_macs(ref)
    assert round(rep.macs / 1e6, 2) == mflops
    assert round(torch_params / 1e6, 2) == mparams
    assert rep.params == torch_params + 2 * _bn_channels(graph, True) \
        - _bn_channels(graph, False)


def test_macs_equal_flop_counter_mode():
    """torch's own counter on the reference (FlopCounterMode: 2 per MAC of aten.convolution
    and mm, nothing else) halves to the same Mult-Adds, and tinyinfer's emulation of it (the
    "torch" convention, from the op records' lowering) gives its exact total."""
    ref = get_model("dicenet_w1").eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        ref(torch.zeros(1, 3, 224, 224))
    assert counter.get_total_flops() // 2 == tinyinfer.summary("dicenet_w1").macs == 70_709_744
    model = tinyinfer.build("dicenet_w1")
    assert count(model, "torch").total == counter.get_total_flops()


def test_dice_unit_structure():
    """The DiCE unit of stage 2's second unit at s = 1 (232 channels, the second half 116):
    channel-, height- and width-wise 3x3 convs of the same input, concatenated to 3 x 116,
    BN, PReLU, a 3-group shuffle, the 116-group 1x1 fusion, the gate from the fused map
    (pool, 1x1 to 116 // 4 = 29, ReLU, 1x1, sigmoid) times the grouped 3x3 conv."""
    graph = dicenet(1.0)
    nodes = {n.name: n for n in graph}
    d = "features.stage2.unit2.right_branch.dice"
    names = [n.name for n in graph if n.name.startswith(d + ".")]
    base = f"{d}.base_block"
    assert names == [
        f"{base}.convs.ch_conv", f"{base}.convs.h_conv.conv", f"{base}.convs.w_conv.conv",
        f"{base}.convs", f"{base}.norm_activ.bn", f"{base}.norm_activ.activ", f"{base}.shuffle",
        f"{base}.squeeze_conv.conv", f"{base}.squeeze_conv.bn", f"{base}.squeeze_conv.activ",
        f"{d}.att.pool", f"{d}.att.conv1", f"{d}.att.activ", f"{d}.att.conv2", f"{d}.att.sigmoid",
        f"{d}.proj_conv.conv", f"{d}.proj_conv.bn", f"{d}.proj_conv.activ", f"{d}.gated"]
    inputs = {nodes[f"{base}.convs.{b}"].inputs[0] for b in ("ch_conv", "h_conv.conv",
                                                             "w_conv.conv")}
    assert inputs == {"features.stage2.unit2.right_branch.conv.activ"}
    assert nodes[f"{base}.convs.h_conv.conv"].attrs["axis"] == 2
    assert nodes[f"{base}.convs.w_conv.conv"].param_shapes["weight"] == (14, 1, 3, 3)
    assert nodes[f"{base}.shuffle"].attrs["groups"] == 3
    assert nodes[f"{base}.squeeze_conv.conv"].param_shapes["weight"] == (116, 3, 1, 1)
    assert nodes[f"{d}.att.conv1"].param_shapes["weight"] == (29, 116, 1, 1)
    assert nodes[f"{d}.gated"].inputs == [f"{d}.proj_conv.activ", f"{d}.att.sigmoid"]
    shapes = infer_shapes(graph, (1, 3, 224, 224))
    assert shapes[f"{base}.convs"] == (1, 348, 14, 14)
    assert shapes["features.stage1.unit1.shuffle"] == (1, 48, 28, 28)
    assert shapes["output.flatten"] == (1, 1000)


def test_larger_input_shrinks_to_the_built_for_size():
    """At 257 the maps are 33, 17, 9 against the 28, 14, 7 the weights were built for: each
    height-/width-wise conv pools its map down (adaptive average) and enlarges the result
    back (bilinear), the direction the registry's 193 case does not take."""
    name = "dicenet_wd5"
    ref = reference(name, seed=3)
    model = tinyinfer.load(name, weights=state_dict_numpy(ref))
    shapes = infer_shapes(model.graph, (1, 3, 257, 257))
    assert shapes["features.stage1.unit2.right_branch.dice.base_block.convs"][2:] == (33, 33)
    x = image_batch(1, 257, seed=3)
    assert_matches(model(x), forward(ref, x), f"{name} @1x257")


def test_checkpoint_keys_are_pytorchcvs():
    """Every state_dict key of pytorchcv's module (PReLU slopes included) is a graph key, and
    a renamed key is refused with both names listed."""
    ref = get_model("dicenet_wd5")
    keys = {k for k in ref.state_dict() if not k.endswith("num_batches_tracked")}
    assert set(dicenet(0.2).expected_params()) == keys
    state = state_dict_numpy(ref)
    key = "features.stage3.unit4.right_branch.dice.proj_conv.activ.weight"
    state[key.replace("weight", "alpha")] = state.pop(key)
    with pytest.raises(WeightsMismatchError, match=r"(?s)missing keys \(1\).*activ\.weight"
                                                   r".*unexpected keys \(1\).*activ\.alpha"):
        tinyinfer.load("dicenet_wd5", weights=state)


@pytest.mark.parametrize("options,words", [
    ({"width_scale": 0.3}, "width_scale must be one of 0.2, 0.5"),
    ({"width_mult": 1.0}, "the options of this model: width_scale"),
])
def test_bad_options(options, words):
    with pytest.raises(InputError, match=words):
        tinyinfer.summary("dicenet_w1", **options)


def test_random_weights_run_at_any_size():
    """weights=None and a small odd input: every height-/width-wise conv enlarges its map."""
    m = tinyinfer.load("dicenet_wd5", weights=None)
    out = m(np.zeros((2, 3, 37, 45), np.float32))
    assert out.shape == (2, 1000) and np.isfinite(out).all()
