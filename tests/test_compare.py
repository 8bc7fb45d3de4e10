"""The layer-by-layer comparison (tinyinfer/analysis/compare.py): on a correct model no layer
diverges; on a deliberately broken one it names the broken layer, not a later one.

Small inputs (64x64) keep it fast; the tolerance is compare()'s default per-layer 1e-4
relative (see its docstring)."""
import numpy as np
import pytest
import timm
import torchvision

import tinyinfer
from tinyinfer.analysis.compare import compare
from tinyinfer.errors import InputError
from torch_ref import randomize, state_dict_numpy

REFERENCES = {
    "mobilenet_v2": torchvision.models.mobilenet_v2,          # key-mapped layout
    "mobilenetv1_100": lambda: timm.create_model("mobilenetv1_100"),   # BatchNormAct2d
    "resnet18": torchvision.models.resnet18,                  # one ReLU module, many calls
}


def pair(name, seed=0):
    ref = randomize(REFERENCES[name](), seed)
    return tinyinfer.load(name, weights=state_dict_numpy(ref)), ref


def image(batch=1, size=64, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, 3, size, size), dtype=np.float32)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_correct_model_does_not_diverge(name):
    model, ref = pair(name)
    result = compare(model, ref, image(2, 67))
    assert result.first_divergence is None, str(result)
    compared = {d.node for d in result.compared}
    # every layer with weights is compared, and the logits
    assert {n.name for n in model.graph if n.param_shapes} <= compared | \
        {n.name for n in model.graph if n.kind == "batchnorm"}
    assert model.graph.output in compared
    assert "no layer diverges" in str(result)


def test_corrupted_weight_is_named():
    model, ref = pair("mobilenet_v2", seed=1)
    node = model.graph["blocks.3.1.conv_dw"]
    node.params["weight"] = node.params["weight"] * 1.5
    result = compare(model, ref, image())
    first = result.first_divergence
    # torchvision numbers blocks 1..17 after the stem: stages of 1, 2, 3 blocks come
    # before stage 3, so its block 1 is features.(1 + 1 + 2 + 3 + 1) = features.8
    assert (first.node, first.module) == ("blocks.3.1.conv_dw", "features.8.conv.1.0")
    # everything before it agrees
    before = result.layers[:result.layers.index(first)]
    assert before and not any(d.diverged for d in before)
    assert "first divergence: blocks.3.1.conv_dw (features.8.conv.1.0)" in str(result)


def test_corrupted_batchnorm_inside_timm_bn_act_is_named():
    """timm's bn1 module applies its ReLU6 inside: the divergence shows at bn1's output,
    which tinyinfer holds as the node bn1.act."""
    model, ref = pair("mobilenetv1_100", seed=2)
    model.graph["blocks.2.1.bn1"].params["running_mean"] = \
        model.graph["blocks.2.1.bn1"].params["running_mean"] + 1.0
    first = compare(model, ref, image()).first_divergence
    assert first.node == "blocks.2.1.bn1.act"


def test_wrong_stride_is_named_by_its_shape():
    model, ref = pair("mobilenet_v2", seed=3)
    model.graph["blocks.4.0.conv_dw"].attrs["stride"] = (2, 2)   # the reference has 1
    first = compare(model, ref, image()).first_divergence
    assert first.node == "blocks.4.0.conv_dw"
    assert first.ours_shape == (1, 384, 2, 2) and first.ref_shape == (1, 384, 4, 4)


def test_not_the_reference_network():
    model, _ = pair("resnet18")
    with pytest.raises(InputError, match="could be paired"):
        compare(model, torchvision.models.squeezenet1_1(), image())
