"""Every node kind in the op table: its shape rule agrees with what its kernel returns, and
its cost model answers from shapes alone. A small graph using all kinds is also run
against the same computation in torch."""
import importlib
import pathlib

import numba
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tinyinfer.analysis.conventions import OP_CLASSES, op_class
from tinyinfer.engine.conv_variant import CONV_VARIANTS, SMALL_IMAGE, conv_class, conv_variant
from tinyinfer.engine.costs import Cost, RefOp
from tinyinfer.errors import InputError
from tinyinfer.engine.graph import Graph
from tinyinfer.engine.ops import (MEMORY_ROLES, MIXES, OPS, PER_CHANNEL, POOL, VIEW, WHOLE,
                           buffers, infer_shapes, layer_type, memory_role, node_costs)
from tinyinfer.engine.runtime import execute


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
    node("up", "conv_transpose2d", ["relu"], {"stride": (2, 2), "padding": (1, 1),
                                              "output_padding": (1, 0), "dilation": (1, 1),
                                              "groups": 8}, weight=w(8, 1, 3, 3), bias=w(8))
    node("maxpool", "max_pool2d", ["up"], {"kernel": 3, "stride": 2, "padding": 1,
                                           "ceil_mode": True})
    node("avgpool", "avg_pool2d", ["up"], {"kernel": 3, "stride": 2, "padding": 1,
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
    y = F.conv_transpose2d(y, t(p["up"]["weight"]), t(p["up"]["bias"]), 2, 1, (1, 0), 8)
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


# ---- the kinds graphs: the CNN one above, and kinds_graph(rng) of every tests/test_ops_*.py
# module (one per record module of engine/: transformer, attention, cells). Each returns
# (graph, input array, torch_forward(input) -> torch tensor).
def cnn_kinds_graph(rng):
    g, p = all_kinds_graph(rng)
    x = rng.standard_normal((2, 3, 13, 11)).astype(np.float32)
    return g, x, lambda x: torch_forward(x, p)


def _kinds_graphs() -> dict:
    graphs = {"cnn": cnn_kinds_graph}
    for path in sorted(pathlib.Path(__file__).parent.glob("test_ops_*.py")):
        module = importlib.import_module(path.stem)
        graphs[path.stem[len("test_ops_"):]] = module.kinds_graph
    return graphs


KINDS_GRAPHS = _kinds_graphs()


def test_every_kind_is_in_a_kinds_graph():
    covered = set()
    for make in KINDS_GRAPHS.values():
        covered |= {n.kind for n in make(np.random.default_rng(0))[0]}
    assert covered == set(OPS), f"kinds in no kinds graph: {sorted(set(OPS) - covered)}"


@pytest.mark.parametrize("group", sorted(KINDS_GRAPHS))
def test_every_kind_shape_cost_and_value(group):
    rng = np.random.default_rng(0)
    g, x, forward = KINDS_GRAPHS[group](rng)
    shapes = infer_shapes(g, x.shape)
    # run node by node and compare each output's shape with the shape rule
    values = {"input": x}
    for n in g:
        values[n.name] = OPS[n.kind].run(n, [values[i] for i in n.inputs])
        assert values[n.name].shape == shapes[n.name], n.name
    for n, shape, cost in node_costs(g, x.shape):
        assert isinstance(cost, Cost) and cost.elems_written >= 0
    np.testing.assert_allclose(execute(g, x), forward(x).numpy(), rtol=1e-4, atol=1e-5)


# ---- the op records: every kind has every field, and the fields agree with each other ------
@pytest.mark.parametrize("group", sorted(KINDS_GRAPHS))
def test_every_kind_has_every_field(group):
    """Each record answers every question asked of a kind (run, shape, cost, the tools'
    counts, report type, memory role) for a real node of that kind."""
    g, x, _ = KINDS_GRAPHS[group](np.random.default_rng(0))
    shapes = infer_shapes(g, x.shape)
    for n in g:
        op = OPS[n.kind]
        assert op.kind == n.kind
        assert all(callable(f) for f in (op.run, op.shape, op.cost, op.lower)), n.kind
        assert op.op_class in OP_CLASSES, n.kind
        assert isinstance(layer_type(n), str) and layer_type(n), n.kind
        assert memory_role(n) in MEMORY_ROLES, n.kind
        assert set(buffers(n)) <= set(n.param_shapes), n.kind
        ref_ops = op.lower(n, [shapes[i] for i in n.inputs], shapes[n.name], {})
        assert all(isinstance(r, RefOp) for r in ref_ops), n.kind
        # every reference op is one the conventions know how to class (or plain copying)
        assert all(r.op == "copy" or op_class(r.op) != "other" for r in ref_ops), n.kind


@pytest.mark.parametrize("group", sorted(KINDS_GRAPHS))
def test_record_fields_agree(group):
    """A view does no work and really returns a view; a pool is a "Pool" row with the pool
    memory role; a kind counted as "conv" is a conv row; BN's buffers are BN's statistics."""
    g, x, _ = KINDS_GRAPHS[group](np.random.default_rng(0))
    values = {"input": x}
    for n, shape, cost in node_costs(g, x.shape):
        ins = [values[i] for i in n.inputs]
        values[n.name] = OPS[n.kind].run(n, ins)
        is_view = memory_role(n) == VIEW
        assert is_view == np.shares_memory(values[n.name], ins[0]), n.name
        if is_view:
            assert cost == Cost(), n.name
        assert (OPS[n.kind].op_class == "pool") == (layer_type(n) == "Pool") \
            == (memory_role(n) == POOL), n.name
        if OPS[n.kind].op_class == "conv":
            assert layer_type(n).startswith(("Conv", "Group conv")) and cost.macs > 0
    assert OPS["batchnorm"].buffers == ("running_mean", "running_var")


def conv_graph(cin, cout, k, groups, stride=1, padding=0, residual=False) -> Graph:
    """One conv node "c" reading the input (twice: as its residual too, if asked)."""
    g = Graph(cin)
    g.add_node("c", "conv2d", [g.input] * (2 if residual else 1),
               {"stride": (stride, stride), "padding": (padding,) * 4, "dilation": (1, 1),
                "groups": groups, "act": 0}, {"weight": (cout, cin // groups, k, k)})
    return g


@pytest.mark.parametrize("cin,cout,k,groups,residual,cls,layer,memory", [
    (8, 8, 3, 8, False, "depthwise", "Conv DW 3x3", PER_CHANNEL),
    (8, 16, 5, 8, False, "depthwise", "Conv DW 5x5", PER_CHANNEL),   # channel multiplier 2
    (8, 8, 3, 8, True, "depthwise", "Conv DW 3x3", WHOLE),           # needs its residual whole
    (8, 8, 1, 8, False, "depthwise", "Conv DW 1x1", PER_CHANNEL),
    (8, 16, 3, 2, False, "grouped", "Group conv 3x3", MIXES),
    (8, 16, 1, 1, False, "pointwise", "Conv 1x1", MIXES),
    (3, 16, 3, 1, False, "dense", "Conv 3x3", MIXES),
    (1, 16, 3, 1, False, "dense", "Conv 3x3", MIXES),                # one input channel
])
def test_conv_class_decides_report_type_and_memory(cin, cout, k, groups, residual, cls, layer,
                                                   memory):
    node = conv_graph(cin, cout, k, groups, residual=residual)["c"]
    assert conv_class(node.param_shapes["weight"], groups) == cls
    assert layer_type(node) == layer
    assert memory_role(node) == memory


def test_conv_input_channels_must_match_the_weight():
    """A conv whose input does not have Cin/groups * groups channels is refused when shapes
    are inferred (a report used to count it as if it could run)."""
    g = conv_graph(8, 8, 3, 8)
    with pytest.raises(InputError, match=r"c: input has 6 channels but weight \(8, 1, 3, 3\) "
                                         r"with groups=8 expects 8"):
        infer_shapes(g, (1, 6, 9, 9))


# (cin, cout, k, groups, stride, padding, size): every branch of the dispatcher and its
# edges, on either kind of CPU (conv_variant.gemm_wins has a rule for AVX2 and one for
# AVX-512; the test predicts with conv_variant, so it checks whichever rule is in force)
DISPATCH_CASES = [
    (8, 8, 3, 8, 1, 1, 16), (8, 16, 3, 8, 2, 1, 16), (8, 8, 1, 8, 2, 0, 16),   # depthwise
    (1, 4, 3, 1, 1, 1, 16),                 # dense over one input channel: depthwise loop
    (8, 8, 1, 8, 1, 0, 16), (8, 8, 1, 8, 1, 1, 16),   # 1x1 depthwise at stride 1: rows
    (8, 16, 3, 2, 1, 1, 16), (8, 16, 3, 2, 2, 1, 9),                           # grouped
    (8, 16, 1, 2, 1, 0, 16), (8, 16, 1, 2, 1, 0, 5),  # grouped 1x1: rows, however small
    (64, 64, 1, 1, 1, 0, 16), (64, 96, 1, 1, 2, 0, 24),                        # gemm
    (64, 64, 1, 1, 1, 0, 33), (64, 16, 3, 1, 2, 1, 16),   # AVX2: K 64 gemm; 3x3 s2 K 576
    (64, 16, 3, 1, 1, 1, 8), (16, 16, 3, 1, 1, 1, 32),    # winograd: 64 in; 16 in, 1024 px
    (16, 16, 3, 1, 1, 1, 33),                             # 1089 px: gemm (AVX2), K 144
    (63, 64, 1, 1, 1, 0, 16), (7, 16, 3, 1, 1, 1, 16),    # AVX2: K 63 rows; 3x3 K 63 im2col
    (64, 64, 1, 1, 1, 0, 6), (64, 64, 1, 1, 1, 0, 5),     # 36 pixels: gemm; 25: AVX2 gemm
    (64, 64, 1, 1, 1, 0, 4), (64, 64, 1, 1, 1, 0, 3),     # 16: AVX2 gemm, AVX-512 dot; 9: dot
    (24, 16, 1, 1, 1, 0, 16), (23, 16, 1, 1, 1, 0, 16),   # AVX-512: K 24 gemm, K 23 rows
    (24, 16, 1, 1, 1, 0, 32), (24, 16, 1, 1, 1, 0, 31),   # AVX2: 1024 px gemm, 961 rows
    (8, 16, 1, 1, 1, 0, 16), (8, 16, 1, 1, 2, 0, 32),                          # pointwise
    (8, 16, 1, 1, 1, 0, 11), (8, 16, 3, 1, 1, 1, 11), (8, 16, 1, 1, 2, 0, 16),  # dot
    (8, 16, 3, 1, 1, 1, 12), (8, 16, 3, 1, 2, 1, 32), (8, 16, 1, 1, 1, 1, 16),  # im2col
    (2, 16, 3, 1, 1, 1, 16), (3, 16, 3, 1, 1, 1, 16),     # AVX-512: K 18 im2col, K 27 gemm
    (3, 16, 3, 1, 1, 1, 64),            # AVX-512: gemm gathering its own panels (implicit)
]
# the loop of kernels/conv_*.py each variant ends in; any of them but the
# depthwise and grouped ones may first run _im2col (all but a 1x1 conv without padding),
# except a "gemm" conv with taps that conv_gemm.implicit_wins gathers itself
MAIN_LOOP = {"depthwise": "_depthwise", "grouped": "_grouped", "dot": "_dot_kernel",
             "winograd": "_input_transform",
             "gemm": "gemm_bias_act", "pointwise": "_pointwise_rows", "im2col": "_pointwise_rows"}


def test_conv_variant_is_the_loop_the_dispatcher_runs(monkeypatch):
    """conv_variant.py says which loop kernels/conv.py runs for a shape; here each loop is
    wrapped to record that it ran, and what ran must be the predicted variant's loop."""
    from tinyinfer.kernels import conv as C
    from tinyinfer.kernels import (conv_depthwise, conv_gemm, conv_group, conv_im2col,
                                   conv_pointwise, conv_winograd)
    assert SMALL_IMAGE == C.SMALL_IMAGE
    ran = set()

    def spy(module, name):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, **k: (ran.add(name), real(*a, **k))[1])
    spy(conv_depthwise, "_depthwise")
    spy(conv_im2col, "_dot_kernel")
    spy(conv_im2col, "_im2col")
    spy(conv_pointwise, "_pointwise_rows")
    spy(conv_group, "_grouped")
    spy(conv_gemm, "gemm_bias_act")
    spy(conv_gemm, "implicit_gemm")
    spy(conv_winograd, "_input_transform")
    rng = np.random.default_rng(0)
    seen = set()
    for case in DISPATCH_CASES:
        cin, cout, k, groups, stride, pad, size = case
        g = conv_graph(cin, cout, k, groups, stride, pad)
        x = rng.standard_normal((1, cin, size, size)).astype(np.float32)
        out = infer_shapes(g, x.shape)["c"]
        variant = conv_variant(g["c"].param_shapes["weight"], groups, (stride, stride),
                               (pad,) * 4, out[2] * out[3])
        g["c"].params = {"weight": rng.standard_normal((cout, cin // groups, k, k),
                                                       dtype=np.float32)}
        ran.clear()
        execute(g, x)
        taps = not (k == 1 and pad == 0)
        implicit = variant == "gemm" and taps and conv_gemm.implicit_wins(
            1, cout, out[2] * out[3], cin * k * k, numba.get_num_threads())
        needs_im2col = variant in ("dot", "im2col", "gemm") and taps and not implicit
        main = "implicit_gemm" if implicit else MAIN_LOOP[variant]
        assert ran == {main} | ({"_im2col"} if needs_im2col else set()), (case, variant, ran)
        seen.add(variant)
    assert seen == set(CONV_VARIANTS)


def test_no_kind_tests_outside_the_records():
    """report.py, memory.py and conventions.py learn what a kind does from its record: none
    of them compares a node's kind, or anything with a kind's name."""
    import ast
    import inspect

    from tinyinfer.analysis import conventions, memory, report
    for module in (conventions, memory, report):
        for cmp in ast.walk(ast.parse(inspect.getsource(module))):
            if not isinstance(cmp, ast.Compare):
                continue
            parts = [n for p in [cmp.left, *cmp.comparators] for n in ast.walk(p)]
            where = f"{module.__name__} line {cmp.lineno}"
            assert not any(isinstance(n, ast.Attribute) and n.attr == "kind" for n in parts), where
            assert not any(isinstance(n, ast.Constant) and n.value in OPS for n in parts), where
