"""The load-time rewrites (BN folding, activation and residual fusion) change how a network
runs, never what it computes: the optimized graph agrees with the graph as built (every BN,
activation and add its own kernel), with randomized BN statistics."""
import numpy as np

import tinyinfer
from tinyinfer.engine.runtime import execute
from reference_registry import reference
from torch_ref import randomize, state_dict_numpy


def test_optimized_graph_equals_unfused_graph():
    ref = reference("mobilenet_v2", seed=5, width_mult=0.5)
    model = tinyinfer.load("mobilenet_v2", weights=state_dict_numpy(ref), width_mult=0.5)
    kinds = [n.kind for n in model.plan]
    assert "batchnorm" not in kinds and "act" not in kinds and "add" not in kinds
    assert [n.kind for n in model.graph].count("batchnorm") == 52
    # residual adds went into the projection convs' epilogues
    fused_adds = [n for n in model.plan if any(f.endswith(".add") for f in n.fused)]
    assert len(fused_adds) == 10
    x = np.random.default_rng(5).standard_normal((2, 3, 96, 96), dtype=np.float32)
    slow = execute(model.graph, x)
    fast = model(x)
    assert np.abs(fast - slow).max() <= 1e-4 * (1 + np.abs(slow).max())


def test_folding_does_not_touch_the_built_graph():
    model = tinyinfer.load("mobilenetv1_100", weights=None, width_mult=0.25)
    bn = model.graph["bn1"]
    assert set(bn.params) == {"weight", "bias", "running_mean", "running_var"}
    assert "bias" not in model.graph["conv_stem"].params
    assert model.plan["conv_stem"].fused == ["bn1", "bn1.act"]


def test_mixconv_bn_and_activation_fold_through_the_concat():
    """MixNet: concat(dw3x3, dw5x5, ...) -> BN -> act becomes convs with the BN's sliced
    vectors folded in and the activation in their epilogues; the result is unchanged."""
    import timm
    ref = randomize(timm.create_model("mixnet_s"), seed=8)
    model = tinyinfer.load("mixnet_s", weights=state_dict_numpy(ref))
    kinds = [n.kind for n in model.plan]
    assert "batchnorm" not in kinds and "act" not in kinds
    assert any(n.kind == "concat" and n.fused for n in model.plan)
    x = np.random.default_rng(8).standard_normal((1, 3, 64, 64), dtype=np.float32)
    slow = execute(model.graph, x)
    assert np.abs(model(x) - slow).max() <= 1e-4 * (1 + np.abs(slow).max())


def test_resnet_relu_after_the_add_goes_into_the_conv():
    """ResNet's block ends in ReLU(conv + identity): the add goes into the last conv's
    epilogue, then the ReLU too, applied after the add (act_after_residual); a
    MobileNetV2 projection (no activation after its add) keeps the default order."""
    ref = reference("resnet18", seed=6)
    model = tinyinfer.load("resnet18", weights=state_dict_numpy(ref))
    assert [n.kind for n in model.plan].count("act") == 0
    after = [n for n in model.plan if n.attrs.get("act_after_residual")]
    assert len(after) == 8 and all(len(n.inputs) == 2 and n.attrs["act"] for n in after)
    x = np.random.default_rng(6).standard_normal((2, 3, 64, 64), dtype=np.float32)
    slow = execute(model.graph, x)
    assert np.abs(model(x) - slow).max() <= 1e-4 * (1 + np.abs(slow).max())
    mbv2 = tinyinfer.load("mobilenet_v2", weights=None, width_mult=0.5)
    assert not any(n.attrs.get("act_after_residual") for n in mbv2.plan)
