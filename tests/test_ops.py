"""Every node kind in the op table: its shape rule agrees with what its kernel returns, and
its cost model answers from shapes alone. A small graph using all kinds is also run
against the same computation in torch."""
import numpy as np
import torch
import torch.nn.functional as F

from tinyinfer.costs import Cost
from tinyinfer.graph import Graph
from tinyinfer.ops import OPS, infer_shapes, node_costs
from tinyinfer.runtime import execute


def all_kinds_graph(rng):
    g = Graph(3)
    p = {}

    def node(name, kind, inputs, attrs=None, **params):
        g.add_node(name, kind, inputs, attrs, {k: v.shape for k, v in params.items()})
        g[name].params = params
        p[name] = params

    w = lambda *s: rng.standard_normal(s).astype(np.float32) * 0.3
    node("conv", "conv2d", ["input"], {"stride": (1, 1), "padding": (1, 1, 1, 1),
                                       "dilation": (1, 1), "groups": 1, "act": 0},
         weight=w(8, 3, 3, 3), bias=w(8))
    node("bn", "batchnorm", ["conv"], {"eps": 1e-5}, weight=w(8) + 1, bias=w(8),
         running_mean=w(8), running_var=np.abs(w(8)) + 0.5)
    node("relu", "act", ["bn"], {"act": 1})
    node("maxpool", "max_pool2d", ["relu"], {"kernel": 3, "stride": 2, "padding": 1,
                                             "ceil_mode": True})
    node("avgpool", "avg_pool2d", ["relu"], {"kernel": 3, "stride": 2, "padding": 1,
                                             "ceil_mode": True, "count_include_pad": False})
    node("cat", "concat", ["maxpool", "avgpool"])
    node("sum", "add", ["cat", "cat"], {"act": 2})
    node("se", "se", ["sum"], {"act": 1, "gate": 4, "reduce": "fc1", "expand": "fc2"},
         **{"fc1.weight": w(4, 16, 1, 1), "fc1.bias": w(4), "fc2.weight": w(16, 4, 1, 1),
            "fc2.bias": w(16)})
    node("half", "slice", ["se"], {"start": 8, "stop": 16})
    node("shuffle", "channel_shuffle", ["se"], {"groups": 4})
    node("gated", "mul", ["shuffle", "se"])
    node("small", "adaptive_avgpool", ["gated"], {"out_hw": (2, 3)})
    node("gap", "global_avgpool", ["small"])
    node("fc", "linear", ["gap"], {"act": 0}, weight=w(5, 16), bias=w(5))
    node("flat", "flatten", ["fc"])
    return g, p


def torch_forward(x, p):
    t = lambda a: torch.from_numpy(a)
    y = F.conv2d(t(x), t(p["conv"]["weight"]), t(p["conv"]["bias"]), padding=1)
    b = p["bn"]
    y = F.relu(F.batch_norm(y, t(b["running_mean"]), t(b["running_var"]), t(b["weight"]),
                            t(b["bias"]), eps=1e-5))
    m = F.max_pool2d(y, 3, 2, 1, ceil_mode=True)
    a = F.avg_pool2d(y, 3, 2, 1, ceil_mode=True, count_include_pad=False)
    c = torch.cat([m, a], 1)
    s = F.relu6(c + c)
    e = p["se"]
    z = F.relu(F.conv2d(s.mean((2, 3), keepdim=True), t(e["fc1.weight"]), t(e["fc1.bias"])))
    s = s * F.hardsigmoid(F.conv2d(z, t(e["fc2.weight"]), t(e["fc2.bias"])))
    n, c, h, w = s.shape
    shuffled = s.view(n, 4, c // 4, h, w).transpose(1, 2).reshape(n, c, h, w)
    small = F.adaptive_avg_pool2d(shuffled * s, (2, 3))
    return F.linear(small.mean((2, 3)), t(p["fc"]["weight"]), t(p["fc"]["bias"]))


def test_every_kind_shape_cost_and_value():
    rng = np.random.default_rng(0)
    g, p = all_kinds_graph(rng)
    assert {n.kind for n in g} == set(OPS), "add the new kind to this test"
    x = rng.standard_normal((2, 3, 13, 11)).astype(np.float32)
    shapes = infer_shapes(g, x.shape)
    # run node by node and compare each output's shape with the shape rule
    values = {"input": x}
    for n in g:
        values[n.name] = OPS[n.kind].run(n, [values[i] for i in n.inputs])
        assert values[n.name].shape == shapes[n.name], n.name
    for n, shape, cost in node_costs(g, x.shape):
        assert isinstance(cost, Cost) and cost.elems_written >= 0
    np.testing.assert_allclose(execute(g, x), torch_forward(x, p).numpy(), rtol=1e-4, atol=1e-5)
