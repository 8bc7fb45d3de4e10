"""The op kinds of engine/ops_cells.py: ``pad``, ``channel_select``, ``dyshiftmax``,
``dimwise_conv``, ``prelu`` (DiCENet's; their kernels are tested in test_kernels_dimwise.py).
kinds_graph is run by tests/test_ops.py (shape rule vs kernel, cost, every record field,
value vs torch); the tests here check the pad node's three uses against the PyTorch modules
the references use, and channel_select's indices."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tinyinfer.engine.graph import Graph
from tinyinfer.engine.ops import OPS, infer_shapes, node_costs
from tinyinfer.engine.ops_cells import channel_select, pad
from tinyinfer.errors import InputError
from micronet_ref import DYShiftMax


def _pad_node(g, name, x, pads, value=0.0, kernel=None, stride=None):
    g.add_node(name, "pad", [x], {"pads": pads, "value": value, "kernel": kernel,
                                  "stride": stride})


def kinds_graph(rng):
    """shift (the factorized reduction's path 2), TF SAME with -inf before a max pool, and
    pytorchcv's pad-then-crop around a pool."""
    g = Graph(3)
    _pad_node(g, "shift", "input", (-1, 1, -1, 1))
    _pad_node(g, "same", "shift", "same", float("-inf"), kernel=3, stride=2)
    g.add_node("max", "max_pool2d", ["same"], {"kernel": 3, "stride": 2, "padding": 0})
    _pad_node(g, "zero_tl", "max", (1, 0, 1, 0))
    _pad_node(g, "crop_tl", "zero_tl", (-1, 0, -2, 0))
    # AmoebaNet's TF average pool (test_amoebanet.py checks every stride and size)
    g.add_node("avg_same", "avg_pool2d_same", ["crop_tl"], {"kernel": 3, "stride": 1})
    # CondenseNet's channel_select: repeats channel 2, leaves channel 1 out
    g.add_node("select", "channel_select", ["avg_same"], {}, {"index": (4,)})
    g["select"].params = {"index": np.array([2, 0, 2, 2], np.float32)}
    # MicroNet's dynamic Shift-Max on those 4 channels: squeeze branch, then the mix (2 groups)
    fc1, fc2 = rng.standard_normal((4, 4)).astype(np.float32), \
        rng.standard_normal((16, 4)).astype(np.float32)
    g.add_node("sm_pool", "global_avgpool", ["select"])
    g.add_node("sm_fc1", "linear", ["sm_pool"], {"act": 1}, {"weight": (4, 4)})
    g.add_node("sm_fc2", "linear", ["sm_fc1"], {"act": 4}, {"weight": (16, 4)})
    g["sm_fc1"].params, g["sm_fc2"].params = {"weight": fc1}, {"weight": fc2}
    g.add_node("shiftmax", "dyshiftmax", ["select", "sm_fc2"],
               {"groups": 2, "act_max": 2.0, "init_a": (1.0, 0.0), "init_b": (0.0, 0.0)})
    # DiCENet's height-wise conv built for 4 rows (the 6-row map shrinks to 4 and back), its
    # width-wise conv built for 7 columns (5 grow to 7 and back), its PReLU
    dim_h, dim_w, slopes = (rng.standard_normal(s).astype(np.float32)
                            for s in ((4, 1, 3, 3), (7, 1, 3, 3), (4,)))
    g.add_node("dim_h", "dimwise_conv", ["shiftmax"], {"axis": 2}, {"weight": dim_h.shape})
    g.add_node("dim_w", "dimwise_conv", ["dim_h"], {"axis": 3}, {"weight": dim_w.shape})
    g.add_node("prelu", "prelu", ["dim_w"], {}, {"weight": slopes.shape})
    g["dim_h"].params, g["dim_w"].params = {"weight": dim_h}, {"weight": dim_w}
    g["prelu"].params = {"weight": slopes}
    x = rng.standard_normal((2, 3, 12, 11)).astype(np.float32)

    def torch_forward(x):
        y = torch.nn.ZeroPad2d((-1, 1, -1, 1))(torch.from_numpy(x))    # 12x11 -> 12x11
        # TF SAME for k=3, s=2: H 12 -> total 1 (0 top, 1 bottom); W 11 -> total 2 (1, 1)
        y = F.max_pool2d(F.pad(y, (1, 1, 0, 1), value=float("-inf")), 3, 2)
        y = F.pad(y, (1, 0, 1, 0))[:, :, 1:, 2:]
        y = F.avg_pool2d(y, 3, 1, 1, count_include_pad=False)   # TF SAME at stride 1
        y = torch.index_select(y, 1, torch.tensor([2, 0, 2, 2]))
        shift_max = DYShiftMax(4, 4, act_max=1.0, init_a=(1.0, 0.0), g=(0, 2))
        shift_max.fc[0].weight.data, shift_max.fc[2].weight.data = map(torch.from_numpy,
                                                                       (fc1, fc2))
        torch.nn.init.zeros_(shift_max.fc[0].bias), torch.nn.init.zeros_(shift_max.fc[2].bias)
        with torch.no_grad():
            y = shift_max(y)                                           # (2, 4, 6, 5)
        y = F.adaptive_avg_pool2d(y, (4, 5)).transpose(1, 2)           # 6 rows -> 4
        y = F.conv2d(y, torch.from_numpy(dim_h), padding=1, groups=4).transpose(1, 2)
        y = F.interpolate(y, (6, 5), mode="bilinear", align_corners=True)
        y = F.interpolate(y, (6, 7), mode="bilinear", align_corners=True).transpose(1, 3)
        y = F.conv2d(y, torch.from_numpy(dim_w), padding=1, groups=7).transpose(1, 3)
        y = F.adaptive_avg_pool2d(y, (6, 5))                           # 7 columns -> 5
        return F.prelu(y, torch.from_numpy(slopes))
    return g, x, torch_forward


@settings(max_examples=30, deadline=None)
@given(h=st.integers(1, 9), w=st.integers(1, 9),
       pads=st.tuples(*[st.integers(-2, 3)] * 4), value=st.sampled_from([0.0, -np.inf, 2.5]))
@example(h=1, w=1, pads=(0, 0, 2, -2), value=0.0)   # a cut wider than the input: refused
def test_pad_matches_torch_pad(h, w, pads, value):
    """Any mix of padding and cropping equals torch's F.pad (which crops with negative pads,
    before padding), or is refused with one InputError when nothing would be left, of the
    output or of the input after its crops (torch refuses w=1 cut 2 even if padded 2)."""
    x = np.random.default_rng(h * 10 + w).standard_normal((2, 3, h, w)).astype(np.float32)
    top, bottom, left, right = pads
    g = Graph(3)
    _pad_node(g, "p", "input", pads, value)
    kept_h, kept_w = h + min(top, 0) + min(bottom, 0), w + min(left, 0) + min(right, 0)
    if min(h + top + bottom, w + left + right, kept_h, kept_w) <= 0:
        with pytest.raises(InputError, match="leaves nothing"):
            infer_shapes(g, x.shape)
        return
    want = F.pad(torch.from_numpy(x), (left, right, top, bottom), value=value).numpy()
    got = pad(x, *pads, value)
    assert got.dtype == np.float32 and got.shape == infer_shapes(g, x.shape)["p"]
    np.testing.assert_array_equal(got, want)
    (_, _, cost), = node_costs(g, x.shape)
    assert cost.flops == 0 and cost.macs == 0 and cost.elems_written == got.size
    kept = (h - max(-top, 0) - max(-bottom, 0)) * (w - max(-left, 0) - max(-right, 0))
    assert cost.elems_read == 6 * kept


@pytest.mark.parametrize("size", [6, 7, 11, 12])
def test_same_pad_then_pool_is_timms_pool2d_same(size):
    """timm's pad_type='same' stride-2 pools (MaxPool2dSame, AvgPool2dSame), as the NAS cells
    write them: a "same" pad node (-inf / zeros) then a pool without padding."""
    from timm.layers.pool2d_same import AvgPool2dSame, MaxPool2dSame
    x = np.random.default_rng(size).standard_normal((1, 4, size, size + 1)).astype(np.float32)
    for module, kind, value in ((MaxPool2dSame(3, 2), "max_pool2d", float("-inf")),
                                (AvgPool2dSame(3, 2, count_include_pad=False), "avg_pool2d", 0.0)):
        g = Graph(4)
        _pad_node(g, "p", "input", "same", value, kernel=3, stride=2)
        g.add_node("pool", kind, ["p"], {"kernel": 3, "stride": 2, "padding": 0})
        values = {"input": x}
        for n in g:
            values[n.name] = OPS[n.kind].run(n, [values[i] for i in n.inputs])
        with torch.no_grad():
            want = module(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(values["pool"], want, rtol=1e-6, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(c=st.integers(1, 6), k=st.integers(1, 8), seed=st.integers(0, 2**16), flat=st.booleans())
def test_channel_select_matches_torch_index_select(c, k, seed, flat):
    """Any list of k channel numbers in [0, C), repeats allowed, on a map or on features
    (CondenseNet's classifier), equals torch.index_select; the shape rule reads the list's
    length from its declared shape."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, c) if flat else (2, c, 3, 4)).astype(np.float32)
    index = rng.integers(0, c, k)
    want = torch.index_select(torch.from_numpy(x), 1, torch.from_numpy(index)).numpy()
    g = Graph(c)
    g.add_node("s", "channel_select", ["input"], {}, {"index": (k,)})
    got = channel_select(x, index.astype(np.float32))
    np.testing.assert_array_equal(got, want)
    assert infer_shapes(g, x.shape)["s"] == got.shape
    (_, _, cost), = node_costs(g, x.shape)
    assert cost.macs == cost.flops == cost.params == 0 and cost.elems_written == got.size


@pytest.mark.parametrize("index", [[0, 3], [-1], [0.5], [[0, 1]]])
def test_channel_select_refuses_an_index_it_cannot_take(index):
    """Out of range (3 of 3 channels), negative (torch would refuse it too), fractional (a
    float checkpoint entry that is no channel number) and 2-D: one InputError, no wrap."""
    x = np.zeros((1, 3, 2, 2), np.float32)
    with pytest.raises(InputError, match="channel index must be whole numbers in"):
        channel_select(x, np.array(index, np.float32))
