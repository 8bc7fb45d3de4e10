"""fold_batchnorm on a linear: linear -> BatchNorm1d on (N, features) becomes one linear whose
output equals the unfolded pair (torch's nn.Linear + nn.BatchNorm1d in eval mode, randomized
statistics and affine) and whose MACs are the linear's; a BN that cannot fold (after a linear
that already applies an activation, or a linear on tokens, where BN's axis 1 is not the
linear's output axis) stays a node of its own and the result is unchanged.

Tolerance: the folded weights are w * s, rounded once to float32 (norm.fold_batchnorm works in
float64), and each output is a sum of at most 8 products of size ~1: a few float32 ulps of
the output, so rtol = atol = 1e-5."""
import numpy as np
import torch
from hypothesis import given, settings, strategies as st

from tinyinfer.engine.graph import Graph
from tinyinfer.engine.ops import node_costs
from tinyinfer.engine.passes import optimize
from tinyinfer.engine.runtime import execute
from tinyinfer.kernels.activations import RELU

TOL = dict(rtol=1e-5, atol=1e-5)


def _bn_params(rng, c):
    """Random statistics and affine (gamma of both signs), as torch_ref.randomize draws them."""
    return {"weight": rng.uniform(-1.5, 1.5, c), "bias": rng.normal(0, 0.1, c),
            "running_mean": rng.normal(0, 0.1, c), "running_var": rng.uniform(0.5, 2, c)}


def _graph(rng, c, out, bias, act=0, tokens=False):
    """input (N, C, H, W) -> global pool (N, C) -> linear -> BN1d, with random weights; with
    ``tokens`` the linear maps the last axis of the 4-D input instead (then W == C here)."""
    g = Graph()
    x = g.input if tokens else g.add_node("pool", "global_avgpool", [g.input])
    params = {"weight": rng.standard_normal((out, c))}
    if bias:
        params["bias"] = rng.standard_normal(out)
    lin = g.add_node("fc", "linear", [x], {"act": act}, {k: v.shape for k, v in params.items()})
    g["fc"].params = {k: v.astype(np.float32) for k, v in params.items()}
    bn_c = c if tokens else out                  # BN normalizes axis 1
    bn = _bn_params(rng, bn_c)
    g.add_node("bn", "batchnorm", [lin], {"eps": 1e-3}, {k: (bn_c,) for k in bn})
    g["bn"].params = {k: v.astype(np.float32) for k, v in bn.items()}
    return g


def _torch_linear_bn(g, x, act=0):
    """The unfolded pair in PyTorch: mean over H, W, nn.Linear (+ ReLU), nn.BatchNorm1d."""
    fc, bn = g["fc"].params, g["bn"].params
    lin = torch.nn.Linear(*fc["weight"].shape[::-1], bias="bias" in fc)
    norm = torch.nn.BatchNorm1d(fc["weight"].shape[0], eps=1e-3)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(fc["weight"]))
        if "bias" in fc:
            lin.bias.copy_(torch.from_numpy(fc["bias"]))
        for k, v in bn.items():
            getattr(norm, k).copy_(torch.from_numpy(v))
        y = lin(torch.from_numpy(x).mean((2, 3)))
        return norm.eval()(torch.relu(y) if act else y).numpy()


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(1, 8), st.integers(1, 8), st.integers(1, 4),
       st.booleans(), st.integers(0, 2**31))
def test_linear_then_bn_folds_into_one_linear(n, c, out, hw, bias, seed):
    rng = np.random.default_rng(seed)
    g = _graph(rng, c, out, bias)
    plan = optimize(g)
    assert [node.kind for node in plan] == ["global_avgpool", "linear"]
    assert plan["fc"].fused == ["bn"] and plan["fc"].param_shapes["bias"] == (out,)
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
    want = _torch_linear_bn(g, x)
    np.testing.assert_allclose(execute(plan, x), want, **TOL)
    np.testing.assert_allclose(execute(g, x), want, **TOL)    # the graph as built, unfolded
    shape = x.shape
    macs = [sum(cost.macs for _, _, cost in node_costs(gr, shape)) for gr in (g, plan)]
    assert macs[0] == macs[1] == n * out * c
    folded = {node.name: cost.params for node, _, cost in node_costs(plan, shape)}
    assert folded["fc"] == out * c + out         # BN's four vectors became the linear's bias


def test_bn_after_a_linear_with_an_activation_is_not_folded():
    """relu(W x + b) then BN: BN's affine cannot move inside the ReLU."""
    rng = np.random.default_rng(1)
    g = _graph(rng, 5, 6, bias=True, act=RELU)
    plan = optimize(g)
    assert [node.kind for node in plan] == ["global_avgpool", "linear", "batchnorm"]
    x = rng.standard_normal((2, 5, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(execute(plan, x), _torch_linear_bn(g, x, act=RELU), **TOL)


def test_bn_after_a_linear_on_tokens_is_not_folded():
    """A linear on (N, C, H, W) maps W; BN normalizes C. Folding BN's per-C scale into the
    linear's per-output rows would scale the wrong axis: it must stay apart."""
    rng = np.random.default_rng(2)
    g = _graph(rng, 4, 4, bias=True, tokens=True)
    plan = optimize(g)
    assert [node.kind for node in plan] == ["linear", "batchnorm"]
    x = rng.standard_normal((2, 4, 3, 4)).astype(np.float32)
    fc, bn = g["fc"].params, g["bn"].params
    y = x.astype(np.float64) @ fc["weight"].T.astype(np.float64) + fc["bias"]
    sh = (1, -1, 1, 1)
    want = (y - bn["running_mean"].reshape(sh)) / np.sqrt(bn["running_var"].reshape(sh) + 1e-3) \
        * bn["weight"].reshape(sh) + bn["bias"].reshape(sh)
    np.testing.assert_allclose(execute(plan, x), want, **TOL)
