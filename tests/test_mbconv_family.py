"""The MBConv family (MobileNetV3, MnasNet, EfficientNet B0-B7 / Lite / V2, TinyNet, MixNet,
FBNet): the checks beyond the parity test every network gets in tests/test_models.py (their
references are in tests/reference_registry.py): every checkpoint layout a network accepts,
loaded from a real reference module's state dict; the paper tables against timm's
architecture definitions; and property tests of the new pieces (block grammar against
timm's builder, MixConv, TF "same" padding, the rounding rules). Network and block outputs
are compared with torch_ref.assert_matches (max|ours - ref| <= 1e-3 * max|ref|), single
convs with its tolerance tightened to 1e-4.
"""
import math
from functools import partial

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
import torchvision
from efficientnet_lite_pytorch import EfficientNet as LiteEfficientNet
from hypothesis import given, settings, strategies as st
from timm.layers import make_divisible as timm_make_divisible
from timm.layers.mixed_conv2d import MixedConv2d, _split_channels
from timm.layers.padding import get_same_padding
from timm.models._efficientnet_blocks import SqueezeExcite
from timm.models._efficientnet_builder import (EfficientNetBuilder, _scale_stage_depth,
                                               _decode_block_str, decode_arch_def,
                                               round_channels as timm_round_channels)
from torchvision.models._utils import _make_divisible as tv_make_divisible

import tinyinfer
from tinyinfer.errors import InputError
from tinyinfer.engine.graph import Graph
from tinyinfer.models.blocks import (decode_arch, decode_block, make_divisible, paper_block,
                                     paper_table, scale_stage_depth, split_channels)
from tinyinfer.models.efficientnet import B0_COLUMNS, EFFICIENTNET_B0
from tinyinfer.models.efficientnet_v2 import EFFICIENTNET_V2_S
from tinyinfer.models.mnasnet import MNASNET_B1, mnasnet_arch
from tinyinfer.models.mobilenet_v2 import MOBILENET_V2
from tinyinfer.models.builder import NetBuilder, Style, add_block, conv
from tinyinfer.models.registry import get_spec
from tinyinfer.engine.ops import infer_shapes, node_costs, tf_same_padding
from tinyinfer.engine.passes import optimize
from tinyinfer.engine.runtime import execute
from torch_ref import (assert_matches, check_network, forward, image_batch, randomize,
                       state_dict_numpy)

TV = torchvision.models
CONV_RTOL = 1e-4      # one conv (or MixConv) vs torch: no depth for rounding to accumulate


def timm_model(name, **kw):
    return lambda: timm.create_model(name, **kw)


def lite_pytorch(resolution):
    # EfficientNet-PyTorch pads for a fixed image size given at construction
    return lambda: LiteEfficientNet.from_name("efficientnet-lite0", image_size=resolution)


# ---- second layouts: another reference's checkpoint into the same network -----------------
@pytest.mark.parametrize("name,make,kwargs,layout", [
    ("efficientnet_b0", timm_model("efficientnet_b0"), {}, "timm"),
    ("efficientnet_b1", timm_model("efficientnet_b1"), {}, "timm"),
    ("efficientnet_b2", timm_model("efficientnet_b2"), {}, "timm"),
    ("efficientnet_b3", timm_model("efficientnet_b3"), {}, "timm"),
    ("mnasnet1_0", timm_model("mnasnet_100"), {}, "timm"),
    ("efficientnet_lite0", timm_model("tf_efficientnet_lite0"), {}, "timm"),
    ("tf_efficientnet_lite0", lite_pytorch(129), {}, "efficientnet_lite_pytorch"),
    # timm's efficientnet_lite0 pads like PyTorch and uses BN epsilon 1e-5
    ("efficientnet_lite0", timm_model("efficientnet_lite0"),
     {"padding": "symmetric", "bn_eps": 1e-5}, "timm"),
    # timm's published fbnetc_100 weights were trained with BN epsilon 1e-3 (timm's
    # fbnetc_100(pretrained=True) sets it); the bn_eps option builds that network
    ("fbnetc_100", timm_model("fbnetc_100", bn_eps=1e-3), {"bn_eps": 1e-3}, "timm"),
], ids=lambda v: v if isinstance(v, str) and not v.endswith(("timm", "pytorch")) else "")
def test_second_layout_loads_into_the_same_network(name, make, kwargs, layout):
    """The layout is detected from the keys (no layout= given) and the logits match."""
    model = check_network(name, randomize(make(), 1), 3, 129, seed=1, **kwargs)
    assert model.weights_source.endswith(f"({layout} layout)")


def test_timm_layout_of_efficientnet_v2_s():
    """timm's efficientnetv2_s checkpoint layout into torchvision's efficientnet_v2_s.
    With timm's own initialization the 40-block residual stream grows to ~1e5 and float32
    rounding alone then differs by 1e-2 between any two implementations, so the weights
    come from a randomized torchvision model, renamed to timm's keys through our key map
    (the mapping under test) and loaded into timm's module, which makes the reference."""
    tv = randomize(TV.efficientnet_v2_s(), 2)
    spec = get_spec("efficientnet_v2_s")
    keymap = spec.layouts["torchvision"](spec.build(**spec.defaults))
    timm_state = {keymap[k]: torch.from_numpy(v) for k, v in state_dict_numpy(tv).items()
                  if k in keymap}
    ref = timm.create_model("efficientnetv2_s", bn_eps=1e-3)
    missing, unexpected = ref.load_state_dict(timm_state, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing)
    model = check_network("efficientnet_v2_s", ref.eval(), 1, 129, seed=2)
    assert "timm" in model.weights_source


@pytest.mark.parametrize("name,other", [("mobilenet_v3_large", "timm"),
                                        ("mobilenetv3_large_100", "torchvision")])
def test_mobilenet_v3_loads_the_other_references_checkpoint(name, other):
    """torchvision's MobileNetV3 head is a Linear (1280, 960), timm's a 1x1 conv
    (1280, 960, 1, 1): the same numbers, so either checkpoint loads into either network
    (weights.check_state reshapes exactly that case). The networks still differ in BN eps
    (torchvision 1e-3, timm 1e-5), an architecture property of each name: the reference here
    is the checkpoint's own model with its eps set to the tinyinfer network's."""
    ref = randomize(timm.create_model("mobilenetv3_large_100") if other == "timm"
                    else TV.mobilenet_v3_large(), seed=7)
    model = tinyinfer.load(name, weights=state_dict_numpy(ref))
    assert other in model.weights_source
    eps = model.graph["bn1"].attrs["eps"]
    for m in ref.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eps = eps
    x = image_batch(1, 160, seed=7)
    assert_matches(model(x), forward(ref, x), f"{other}'s checkpoint in {name}")


# ---- paper tables vs timm's architecture definitions ---------------------------------------
def timm_arch_def(generator, variant, monkeypatch):
    """The block strings timm's ``generator`` (e.g. _gen_mobilenet_v2) builds ``variant`` from."""
    seen = []
    real = timm.models.efficientnet.decode_arch_def
    monkeypatch.setattr(timm.models.efficientnet, "decode_arch_def",
                        lambda arch, *a, **kw: seen.append(arch) or real(arch, *a, **kw))
    getattr(timm.models.efficientnet, generator)(variant)
    return seen[0]


@pytest.mark.parametrize("table,generator,variant", [
    (lambda: paper_table(MOBILENET_V2, "t c n s"), "_gen_mobilenet_v2", "mobilenetv2_100"),
    (lambda: paper_table(EFFICIENTNET_B0, B0_COLUMNS, se=True), "_gen_efficientnet",
     "efficientnet_b0"),
    (lambda: mnasnet_arch(MNASNET_B1), "_gen_mnasnet_b1", "mnasnet_100"),
    (lambda: paper_table(EFFICIENTNET_V2_S, "op t k c n s se"), "_gen_efficientnetv2_s",
     "efficientnetv2_s"),
], ids=["mobilenet_v2", "efficientnet_b0", "mnasnet_b1", "efficientnet_v2_s"])
def test_paper_table_gives_timms_blocks(table, generator, variant, monkeypatch):
    """The papers' tables, through blocks.paper_table's t = 1 rule, give the block arguments
    of timm's hand-written block strings, row for row."""
    theirs = timm_arch_def(generator, variant, monkeypatch)
    assert table() == [[decode_block(text) for text in stage] for stage in theirs]


def test_paper_block_rule():
    assert paper_block(1, 16, 1, 1).type == "ds"
    assert paper_block(6, 24, 2, 2, se=True) == decode_block("ir_r2_k3_s2_e6_c24_se0.25")
    assert paper_block(1, 24, 2, 1, op="fused") == decode_block("cn_r2_k3_s1_c24_skip")
    assert paper_block(4, 48, 4, 2, op="fused").type == "er"
    with pytest.raises(ValueError, match="no squeeze-excite"):
        paper_block(1, 24, 2, 1, op="fused", se=True)
    with pytest.raises(ValueError, match="op must be"):
        paper_block(6, 24, 2, 2, op="fussed")


# ---- the block grammar vs timm's builder ---------------------------------------------------


@st.composite
def block_strings(draw):
    kind = draw(st.sampled_from(["ds", "ir", "er", "cn"]))
    kernel = draw(st.sampled_from(["3", "5", "3.5", "3.5.7", "3.5.7.9"]))
    opts = [kind, f"r{draw(st.integers(1, 2))}", f"k{kernel if kind in ('ds', 'ir') else '3'}",
            f"s{draw(st.integers(1, 2))}", f"c{draw(st.sampled_from([8, 16, 24, 40]))}"]
    if kind in ("ir", "er"):
        opts.append(f"e{draw(st.sampled_from(['1', '3', '4', '6', '2.5', '3.67']))}")
    if kind == "ir":
        opts += draw(st.sampled_from([[], ["a1.1"], ["p1.1"], ["a1.1", "p1.1"]]))
    if kind != "cn" and draw(st.booleans()):
        opts.append(f"se{draw(st.sampled_from(['0.25', '0.5']))}")
    if draw(st.booleans()):
        opts.append(draw(st.sampled_from(["nre", "nsw", "nhs"])))
    if kind == "cn" and draw(st.booleans()):
        opts.append("skip")
    if kind != "cn" and draw(st.booleans()):
        opts.append("noskip")
    return "_".join(opts)


@settings(max_examples=30, deadline=None)
@given(block=block_strings(), in_chs=st.sampled_from([8, 16, 24, 40]),
       se_from_exp=st.booleans(), same=st.booleans(), seed=st.integers(0, 2**16))
def test_block_matches_timm_builder(block, in_chs, se_from_exp, same, seed):
    """Any block string: our add_block and timm's EfficientNetBuilder build the same weights
    (keys and shapes) and compute the same function, for both of timm's SE conventions
    (EfficientNet's: ratio of the input, Python round; MobileNetV3's: ratio of the expanded
    channels, make_divisible) and both paddings."""
    if se_from_exp:   # timm's MobileNetV3: round SE width to 8, ReLU inside, hard-sigmoid gate
        se_layer = partial(SqueezeExcite, gate_layer="hard_sigmoid", force_act_layer=torch.nn.ReLU,
                           rd_round_fn=timm_round_channels)
        style = Style(se_rule="timm_mnv3", se_act="relu", se_gate="hsigmoid")
    else:             # timm's EfficientNet
        se_layer, style = SqueezeExcite, Style()
    style = Style(se_rule=style.se_rule, se_act=style.se_act, se_gate=style.se_gate,
                  padding="same" if same else "symmetric")
    builder = EfficientNetBuilder(pad_type="same" if same else "", se_from_exp=se_from_exp,
                                  act_layer=torch.nn.ReLU, norm_layer=torch.nn.BatchNorm2d,
                                  se_layer=se_layer)
    stages = builder(in_chs, decode_arch_def([[block]]))
    ref = randomize(torch.nn.Sequential(*stages), seed)

    b = NetBuilder(in_chs)
    x = Graph.INPUT
    (stage,) = decode_arch([[block]])
    i = 0
    for row in stage:
        for r in range(row.repeats):
            x = add_block(b, x, f"0.{i}", row, row.stride if r == 0 else 1,
                          make_divisible(row.out_chs), "relu", style)
            i += 1
    graph = b.graph
    theirs = {k: tuple(v.shape) for k, v in ref.state_dict().items()
              if not k.endswith("num_batches_tracked")}
    assert graph.expected_params() == theirs

    state = state_dict_numpy(ref)
    for node in graph:
        node.params = {p: state[f"{node.name}.{p}"] for p in node.param_shapes}
    x = np.random.default_rng(seed).standard_normal((2, in_chs, 17, 17), dtype=np.float32)
    want = forward(ref, x)
    got = execute(optimize(graph), x)
    assert_matches(got, want, block)


@given(channels=st.integers(1, 4096), groups=st.integers(1, 8))
def test_split_channels_is_timms(channels, groups):
    split = split_channels(channels, groups)
    assert split == _split_channels(channels, groups)
    assert sum(split) == channels and len(split) == groups
    assert all(s == channels // groups for s in split[1:])


@settings(max_examples=25, deadline=None)
@given(kernels=st.lists(st.sampled_from([1, 3, 5, 7, 9]), min_size=2, max_size=4),
       in_ch=st.integers(4, 40), depthwise=st.booleans(), stride=st.integers(1, 2),
       same=st.booleans(), size=st.integers(5, 19), seed=st.integers(0, 2**16))
def test_mixconv_matches_timm(kernels, in_ch, depthwise, stride, same, size, seed):
    """A MixConv (slice + convs + concat nodes) against timm's MixedConv2d, and its MACs are
    the sum of its groups' convs."""
    out_ch = in_ch if depthwise else in_ch + 3
    torch.manual_seed(seed)
    ref = MixedConv2d(in_ch, out_ch, kernels, stride=stride, padding="same" if same else "",
                      depthwise=depthwise).eval()
    b = NetBuilder(in_ch)
    conv(b, "mix", Graph.INPUT, out_ch, tuple(kernels), stride, depthwise,
         "same" if same else "symmetric")
    state = {f"mix.{k}": v for k, v in state_dict_numpy(ref).items()}
    assert b.graph.expected_params() == {k: v.shape for k, v in state.items()}
    for node in b.graph:
        node.params = {p: state[f"{node.name}.{p}"] for p in node.param_shapes}
    x = np.random.default_rng(seed).standard_normal((1, in_ch, size, size), dtype=np.float32)
    want = forward(ref, x)
    got = execute(b.graph, x)
    assert_matches(got, want, f"MixConv {kernels}", rtol=CONV_RTOL)
    # MACs: each group k_i^2 * (c_in_i or 1) * c_out_i * H_out * W_out
    shape = (1, in_ch, size, size)
    macs = sum(c.macs for _, _, c in node_costs(b.graph, shape))
    ho, wo = want.shape[2:]
    expected = sum(k * k * (1 if depthwise else ci) * co * ho * wo for k, ci, co in
                   zip(kernels, _split_channels(in_ch, len(kernels)),
                       _split_channels(out_ch, len(kernels))))
    assert macs == expected


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 64), kernel=st.integers(1, 7), stride=st.integers(1, 3),
       dilation=st.integers(1, 2))
def test_same_padding_is_tensorflows(size, kernel, stride, dilation):
    """ops.tf_same_padding vs timm's get_same_padding and TF's rule: output ceil(in / s),
    padding total split with the odd pixel after."""
    top, bottom, left, right = tf_same_padding((1, 1, size, size + 1), (1, 1, kernel, kernel),
                                               (stride, stride), (dilation, dilation))
    for before, after, n in ((top, bottom, size), (left, right, size + 1)):
        total = get_same_padding(n, kernel, stride, dilation)
        assert (before, after) == (total // 2, total - total // 2)
        out = (n + total - dilation * (kernel - 1) - 1) // stride + 1
        assert out == math.ceil(n / stride)


@settings(max_examples=25, deadline=None)
@given(h=st.integers(3, 23), w=st.integers(3, 23), kernel=st.sampled_from([1, 2, 3, 4, 5]),
       stride=st.integers(1, 2), depthwise=st.booleans(), seed=st.integers(0, 2**16))
def test_same_padded_conv_matches_pad_then_conv(h, w, kernel, stride, depthwise, seed):
    """A padding="same" conv node == torch: F.pad with TF's padding, then an unpadded conv."""
    rng = np.random.default_rng(seed)
    cin = 6
    cout, groups = (cin, cin) if depthwise else (5, 1)
    b = NetBuilder(cin)
    b.conv_same("c", Graph.INPUT, cout, kernel, stride, groups=groups, bias=True)
    weight = rng.standard_normal((cout, cin // groups, kernel, kernel), dtype=np.float32)
    bias = rng.standard_normal(cout, dtype=np.float32)
    b.graph["c"].params = {"weight": weight, "bias": bias}
    x = rng.standard_normal((2, cin, h, w), dtype=np.float32)
    ph = get_same_padding(h, kernel, stride, 1)
    pw = get_same_padding(w, kernel, stride, 1)
    want = F.conv2d(F.pad(torch.from_numpy(x), (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)),
                    torch.from_numpy(weight), torch.from_numpy(bias), stride, groups=groups)
    assert infer_shapes(b.graph, x.shape)["c"] == tuple(want.shape) \
        == (2, cout, math.ceil(h / stride), math.ceil(w / stride))
    assert_matches(execute(b.graph, x), want.numpy(), "same-padded conv", rtol=CONV_RTOL)


@given(v=st.floats(1, 5000), divisor=st.sampled_from([4, 8, 16]))
def test_make_divisible_is_the_references(v, divisor):
    assert make_divisible(v, divisor) == tv_make_divisible(v, divisor) \
        == timm_make_divisible(v, divisor)


@given(repeats=st.lists(st.integers(1, 6), min_size=1, max_size=4),
       d=st.floats(0.3, 4.0), rounding=st.sampled_from(["ceil", "round"]))
def test_stage_depth_is_timms(repeats, d, rounding):
    ours = scale_stage_depth(repeats, d, rounding)
    # timm returns the rows' arguments repeated: here row i's argument is the number i
    theirs = _scale_stage_depth(list(range(len(repeats))), repeats, d, rounding)
    assert ours == [theirs.count(i) for i in range(len(repeats))]


@pytest.mark.parametrize("text", ["ir_r2_k3_s2_e6_c24_se0.25_nsw", "ir_r1_k3.5.7_a1.1_p1.1_s2_e6_c40",
                                  "er_r4_k3_s2_e4_c48", "cn_r2_k3_s1_c24_skip",
                                  "ds_r1_k3_s1_c16_noskip"])
def test_decode_block_agrees_with_timm(text):
    ours = decode_block(text)
    theirs, repeats = _decode_block_str(text)
    assert ours.repeats == repeats and ours.stride == theirs["stride"]
    assert ours.out_chs == theirs["out_chs"]
    k = theirs.get("dw_kernel_size", theirs.get("exp_kernel_size", theirs.get("kernel_size")))
    assert ours.kernel == (tuple(k) if isinstance(k, list) else k)


@pytest.mark.parametrize("text,message", [
    ("xx_r1_k3_s1_c16", "unknown type"), ("ir_r1_k3_s1", "missing out_chs"),
    ("ir_r1_k3_s1_c16_nzz", "unknown activation"), ("ir_r1_kx_s1_c16", "bad kernel"),
    ("ir_r1_k3_s1_c16_q7", "cannot read option"),
])
def test_bad_block_strings_are_explained(text, message):
    with pytest.raises(ValueError, match=message):
        decode_block(text)


@pytest.mark.parametrize("name,kwargs,message", [
    ("efficientnet_lite0", {"padding": "valid"}, "padding must be 'symmetric'"),
    ("efficientnet_b0", {"width_mult": 0}, "width_mult must be a number > 0"),
    ("tinynet_a", {"depth_mult": -1.0}, "depth_mult must be a number > 0"),
    ("fbnetc_100", {"bn_eps": 0.0}, "bn_eps must be > 0"),
    ("mixnet_s", {"depth_mult": 2.0}, "bad architecture option"),
])
def test_bad_architecture_options_are_explained(name, kwargs, message):
    with pytest.raises(InputError, match=message):
        tinyinfer.load(name, weights=None, **kwargs)
