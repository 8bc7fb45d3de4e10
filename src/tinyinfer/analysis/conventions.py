"""Counting conventions, in one place: why fvcore, thop, ptflops and torch's FlopCounterMode
print different numbers for the same network, and what the papers' "Mult-Adds" are.

Every tool answers the same question ("how much work is this network?") with different
rules, and none of them says which. Here each rule is a table over a small set of
*reference ops*: the operations the PyTorch reference runs for one tinyinfer node (each op
kind's record in ops.py lowers a node to them; a squeeze-excite node, for instance, becomes
a pool, two 1x1 convs, an activation, a gate and a multiply). A convention maps each op to
a count; an op it does not list counts 0 ("unsupported" in fvcore's words, silently in
thop's).

    name          unit       conv / linear      BN           activations  pools          add, mul
    paper         Mult-Adds  1 per MAC          folded: 0    0            0              0
    macs          MACs       1 per MAC          0            0            0              0
    flops         FLOPs      2 per MAC          folded: 0    per formula  per element    1 per elem
    fvcore        "flops"    1 per MAC          2 per elem   0            adaptive: 1/in 0
    thop          "ops"      1 per MAC          4 per elem   0            see THOP       0
    ptflops       MACs       1 per MAC + bias   2 per elem   see PTFLOPS  see PTFLOPS    0
    ptflops_aten  MACs       1 per MAC + bias   0            0            0              0
    torch         FLOPs      2 per MAC          0            0            0              0

("paper", "macs" and "flops" are tinyinfer's own counts, from the kernels' cost models in
costs.py. "paper" and "macs" have the same operations and differ in parameters: "paper"
counts a folded BN as one bias per channel, "macs" counts parameters as PyTorch does, BN's
weight and bias included.)

Three things decide a tool's number, and the tables below spell each one out:
1. whether a multiply-accumulate is 1 or 2 (fvcore/thop/ptflops say 1, FlopCounterMode 2);
2. which ops it knows at all (fvcore ignores activations, adds and max pools; thop counts
   BN as 4 per element and ReLU as 0; FlopCounterMode only counts matrix products);
3. how the reference calls an op: module hooks (thop, ptflops) see an ``nn.Module`` but not
   ``F.adaptive_avg_pool2d(x)`` or ``x.mean()``; ptflops also wraps some ``F.*`` functions,
   so an ``nn.ReLU`` module, which calls ``F.relu``, is counted twice. ``REFERENCE_CALLS``
   lists how each reference calls the ops where that matters.

tests/test_conventions.py and tests/test_conventions_timm.py run the real tools on
torchvision models, on timm's EfficientNet-builder networks, RegNet, GhostNet, SE-ResNet
(resnet.py and senet.py), MobileOne, MobileViT, MobileViTV2, EfficientViT-M and -B, and on
the authors' EdgeViT, and check that each emulation gives the tool's exact number. timm
writes layers differently from torchvision in ways that change the hook tools' numbers:
- thop and ptflops look their rules up by a module's exact type, so a subclass counts
  nothing there (call "subclass"): timm's BN is mostly a ``BatchNormAct2d``, a tf_ port's
  strided conv a ``Conv2dSame``, a classifier timm's ``Linear``, MobileViTV2's norm a
  ``GroupNorm1``;
- squeeze-excite pools with ``x.mean``, which only fvcore's trace sees (aten::mean, which it
  does not count either);
- attention is the fused ``F.scaled_dot_product_attention``, whose matmuls the traced tools
  do not count (fvcore has no handle, FlopCounterMode no CPU rule), while they count
  EdgeViT's ``q @ k^T``; ptflops has a rule for timm's ``Attention`` module itself, which
  replaces its qkv and proj Linears.
The traced tools (fvcore, FlopCounterMode, ptflops' aten backend) see aten ops and need
little of this. ``Counted.notes`` says, for one network and tool, what the tool ignores
(a MAC-carrying op it counts 0, or an op it would count if called as a module) and where
its rule is not a count of the work (``QUIRKS``, e.g. thop on a transposed conv, ptflops
at batch > 1, whose own number is inconsistent and is not emulated).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from fnmatch import fnmatch
from typing import Callable

from ..engine.costs import RefOp, numel
from ..errors import InputError
from ..kernels.activations import ACT_NAMES
from ..engine.ops import OPS, buffers, get_op, infer_shapes, node_costs


# How the references (torchvision's, timm's, ...) call the ops that hooks can miss, where
# it differs from the default (conv, linear, BN, activations, pools: nn.Module; residual add
# and SE scale: the + and * operators). From each reference's forward().
_TIMM = {"batchnorm": "subclass", "conv_same": "subclass", "se_pool": "method"}
REFERENCE_CALLS = {
    "mobilenet_v2": {"global_avgpool": "functional"},  # nn.functional.adaptive_avg_pool2d
    "mnasnet*": {"global_avgpool": "method"},          # x.mean([2, 3])
    "shufflenet_v2_*": {"global_avgpool": "method"},   # x.mean([2, 3])
    "googlenet": {"relu": "functional"},               # BasicConv2d: F.relu(x, inplace=True)
    # the authors' EdgeViT: attention written out as q @ k^T and attn @ v (aten matmul /
    # bmm, which fvcore and FlopCounterMode count), pooling as x.flatten(2).mean(-1); the
    # delegate attention (stages 1-3, sr_ratio > 1) applies its qkv Linear to
    # x.flatten(2).transpose(1, 2), a transposed view (see PTFLOPS_ATEN)
    "edgevit_*": {"sdpa": "operator", "global_avgpool": "method",
                  "mhsa_qkv@blocks[123].*": "transposed_input"},
    # timm's EfficientNet builder (efficientnet.py, mobilenetv3.py) and RegNet: BN is
    # BatchNormAct2d, a strided "same"-padded conv Conv2dSame (subclasses, see the
    # docstring), SqueezeExcite pools with x.mean
    **{pattern: _TIMM for pattern in ("tf_efficientnet_*", "mobilenetv2_*", "mixnet_*",
                                      "fbnetc_*", "semnasnet_*", "tinynet_*", "regnetx_*",
                                      "regnety_*")},
    # timm's MobileNetV3 class: its classifier is timm's Linear (a subclass too)
    "mobilenetv3_*": {**_TIMM, "linear": "subclass"},
    "tf_mobilenetv3_*": {**_TIMM, "linear": "subclass"},
    # timm's GhostNet: BN is nn.BatchNorm2d except in the last 1x1 conv, a ConvBnAct whose
    # BN is a BatchNormAct2d; SqueezeExcite pools with x.mean; the classifier is timm's Linear
    "ghostnet_*": {"se_pool": "method", "linear": "subclass",
                   "batchnorm@blocks.9.0.bn1": "subclass"},
    # SE-ResNets (timm's resnet.py and senet.py): nn.BatchNorm2d; SE pools with x.mean
    "seresnet*": {"se_pool": "method"},
    "legacy_seresnet*": {"se_pool": "method"},
    # timm's MobileOne (byobnet.py): every BN is a BatchNormAct2d (ConvNormAct's, and the
    # identity branch's with apply_act=False); s4's SE pools with x.mean
    "mobileone_*": {"batchnorm": "subclass", "se_pool": "method"},
    # timm's EfficientViT-M (efficientvit_msra.py): PatchMerging's SqueezeExcite, x.mean
    "efficientvit_m*": {"se_pool": "method"},
    # timm's MobileViT: BN is BatchNormAct2d (ConvNormAct); the transformer is timm's
    # vision_transformer Block, whose Attention module ptflops counts by its own rule
    "mobilevit_*": {"batchnorm": "subclass", "mhsa": "timm_attention"},
    # timm's MobileViTV2: BN is BatchNormAct2d, every norm timm's GroupNorm1 (nn.GroupNorm's
    # subclass); the separable attention's F.softmax is the _sep_lower default
    "mobilevitv2_*": {"batchnorm": "subclass", "group_norm": "subclass"},
}


def reference_calls(model_name: str) -> dict:
    calls = {}
    for pattern, table in REFERENCE_CALLS.items():
        if fnmatch(model_name, pattern):
            calls.update(table)
    return calls


def node_calls(calls: dict, node_name: str) -> dict:
    """``calls`` as one node sees them: an entry "key@pattern" overrides "key" for the nodes
    whose name (the reference's module name) matches ``pattern``, e.g. GhostNet's one BN
    that timm builds as a BatchNormAct2d."""
    out = {key: call for key, call in calls.items() if "@" not in key}
    for key, call in calls.items():
        if "@" in key and fnmatch(node_name, key.split("@", 1)[1]):
            out[key.split("@", 1)[0]] = call
    return out


def lower(node, in_shapes, out_shape, calls=None) -> list[RefOp]:
    """The reference ops one tinyinfer node stands for (its op record's ``lower``), with
    the calls the records leave to the model (``REFERENCE_CALLS``): e.g. a squeeze-excite
    node's pool (``calls["se_pool"]``), a strided conv with TF "same" padding
    (``calls["conv_same"]``) and a linear layer (``calls["linear"]``)."""
    return get_op(node).lower(node, in_shapes, out_shape, node_calls(calls or {}, node.name))


# ---- the tools' rules: reference op -> count --------------------------------------------
# fvcore.nn.FlopCountAnalysis (jit trace; jit_handles.py). "We count one fused
# multiply-add as one flop." Ops without a handle are "unsupported" and count 0.
FVCORE = {
    "conv": lambda o: o.macs,                 # aten::_convolution; bias ignored
    "linear": lambda o: o.macs,               # aten::linear / addmm; bias ignored
    "batchnorm": lambda o: 2 * o.n_in,        # eval-mode BN with affine: 2 per element
    "adaptive_avg_pool": lambda o: o.n_in if o.call != "method" else 0,   # x.mean: aten::mean
    "layer_norm": lambda o: (5 if o.bias else 4) * o.n_in,   # 5 per element with affine
    "group_norm": lambda o: (5 if o.bias else 4) * o.n_in,   # the same norm_flop_counter
    "interpolate": lambda o: 4 * o.n_out,     # aten::upsample_bilinear2d: 4 per output
    # scaled_dot_product_attention (timm's fused attention): no handle, 0; the same
    # products written with the @ operator: aten::matmul, 1 per MAC
    "sdpa": lambda o: o.macs if o.call == "operator" else 0,
    # timm's LiteMLA and CascadedGroupAttention multiply with @: aten::matmul, 1 per MAC
    **{kind: lambda o: o.macs for kind in ("relu_linear_attention",
                                           "cascaded_group_attention")},
}

# thop.profile (forward hooks on nn.Module types; vision/basic_hooks.py). Module types it
# has no rule for (Hardswish, Hardsigmoid, SiLU, Sigmoid) count 0; functions are invisible.
def _thop_conv(o):
    """count_convNd: output elements * Cin/groups * KH * KW, no bias; a subclass (timm's
    Conv2dSame) has no rule: 0. It applies the same formula to a ConvTranspose2d, whose
    MACs are *input* elements * Cout/groups * KH * KW: for a depthwise one (Cin = Cout =
    groups: EdgeViT's LocalProp, the only transposed conv tinyinfer builds) that is MACs *
    output / input elements (kernel area times the MACs at stride = kernel)."""
    if o.call == "subclass":
        return 0
    return o.macs * o.n_out // o.n_in if o.call == "transposed" else o.macs


THOP = {
    "conv": _thop_conv,
    "linear": lambda o: o.macs if o.call != "subclass" else 0,   # in_features * out, no bias
    # 2 per element, doubled for affine; a BN subclass (timm) has no rule: 0
    "batchnorm": lambda o: 4 * o.n_in if o.call != "subclass" else 0,
    # nn.LayerNorm: the same count_normalization (elementwise_affine doubles it); no rule
    # for nn.GroupNorm
    "layer_norm": lambda o: (4 if o.bias else 2) * o.n_in if o.call == "module" else 0,
    "avg_pool": lambda o: o.n_out if o.call == "module" else 0,
    # (window area + 1 divide) per output, window = input size / output size
    "adaptive_avg_pool": lambda o: int((o.n_in / o.n_out + 1) * o.n_out)
    if o.call == "module" else 0,
    # ReLU, ReLU6, MaxPool: registered as zero_ops
}


# ptflops.get_model_complexity_info, backend "pytorch" (module hooks + patched F.* and
# torch.* functions; pytorch_ops.py). A module whose forward calls a patched function is
# counted by both: nn.ReLU (F.relu), nn.GELU (F.gelu), nn.MaxPool2d / nn.AvgPool2d /
# nn.AdaptiveAvgPool2d (F.*pool*) count twice. nn.ReLU6 calls F.hardtanh (not patched):
# once. nn.SiLU has no module rule but calls the patched F.silu: once. Hardswish,
# Hardsigmoid, Sigmoid: 0. The + and * operators are not patched (torch.add would be).
# ptflops takes a resolution without batch and reports per image; with a batch > 1 fed
# through input_constructor it divides its module hooks' counts by the batch but not the
# patched functions' counts, so its number is consistent at batch 1 only (the emulation
# counts the whole batch, as every other convention here does).
def _ptflops_twice(o):
    return {"module": 2, "functional": 1}.get(o.call, 0)


# A module ptflops has a rule for is counted by that rule alone, its children not at all
# (accumulate_flops stops there): timm's Attention (call "timm_attention") is counted by
# timm_attention_counter_hook, q scaling (N*C) + q k^T and attn v (MACs) + softmax (H*N*N)
# per image, and its qkv and proj Linears count 0.
PTFLOPS = {
    "conv": lambda o: o.macs + o.bias if o.call != "subclass" else 0,
    "linear": lambda o: o.macs + o.bias if o.call not in ("subclass", "timm_attention") else 0,
    "batchnorm": lambda o: 2 * o.n_in if o.call != "subclass" else 0,   # exact type, as thop
    # bn_flops_counter_hook doubles only for a module with an ``affine`` attribute: nn.GroupNorm
    # has one, nn.LayerNorm has not (elementwise_affine): 1 per element
    "layer_norm": lambda o: o.n_in if o.call == "module" else 0,
    "group_norm": lambda o: (2 if o.bias else 1) * o.n_in if o.call == "module" else 0,
    "sdpa": lambda o: o.macs + o.n_out if o.call == "timm_attention" else 0,
    "softmax": lambda o: o.n_in if o.call in ("functional", "timm_attention") else 0,
    "interpolate": lambda o: o.n_out if o.call == "functional" else 0,   # F.interpolate(size=)
    "relu": lambda o: o.n_out * _ptflops_twice(o),
    "gelu": lambda o: o.n_out * _ptflops_twice(o),
    "relu6": lambda o: o.n_out if o.call in ("module", "functional") else 0,
    "swish": lambda o: o.n_out if o.call in ("module", "functional") else 0,
    "max_pool": lambda o: o.n_in * _ptflops_twice(o),
    "avg_pool": lambda o: o.n_in * _ptflops_twice(o),
    "adaptive_avg_pool": lambda o: o.n_in * _ptflops_twice(o),
    "add": lambda o: o.n_out if o.call == "method" else 0,
    "mul": lambda o: o.n_out if o.call == "method" else 0,
}

# ptflops with backend="aten" (a TorchDispatchMode over aten ops; aten_ops.py): only
# convolutions and matrix products, 1 per MAC, plus the bias additions.
PTFLOPS_ATEN = {
    "conv": lambda o: o.macs + o.bias,
    # ATen's linear is addmm (bias counted) for a 2-D or contiguous 3-D input, else matmul
    # then add_: a Linear on a transposed view is an mm without its bias
    "linear": lambda o: o.macs + (o.bias if o.call != "transposed_input" else 0),
    "sdpa": lambda o: o.macs if o.call == "operator" else 0,    # q @ k^T, attn @ v: aten.bmm
    **{kind: lambda o: o.macs for kind in ("favor_attention", "relu_linear_attention",
                                           "cascaded_group_attention")},
}

# torch.utils.flop_counter.FlopCounterMode: 2 FLOPs per MAC of aten.convolution / mm /
# addmm / bmm (bias additions not counted), nothing else; on CPU not even the matmuls
# inside F.scaled_dot_product_attention (torch 2.13 has no rule for its CPU kernel).
TORCH = {
    "conv": lambda o: 2 * o.macs,
    "linear": lambda o: 2 * o.macs,
    "sdpa": lambda o: 2 * o.macs if o.call == "operator" else 0,   # @ operator: aten.bmm
    # the efficient attentions' references compute with einsum / @ (aten.bmm): every MAC
    # counted. (MobileViTV2's separable attention is a multiply and a sum: not counted.)
    **{kind: lambda o: 2 * o.macs for kind in ("favor_attention", "relu_linear_attention",
                                               "cascaded_group_attention")},
}


@dataclass(frozen=True)
class Convention:
    name: str
    unit: str
    description: str
    rules: dict[str, Callable] | None = None   # reference op -> count; None: tinyinfer's cost
    cost_field: str = "macs"                   # with rules None: which Cost field
    params: str = "torch"                      # "folded" (BN in one bias) or "torch"
    tool: str = ""                             # how to get the tool's own number


CONVENTIONS: dict[str, Convention] = {c.name: c for c in [
    Convention("paper", "Mult-Adds", "the papers' count: multiply-adds of convolutions and "
               "FC layers, BN folded into the convs", cost_field="macs", params="folded"),
    Convention("macs", "MACs", "tinyinfer's multiply-accumulates; parameters as PyTorch "
               "counts them (BN weight and bias included)", cost_field="macs"),
    Convention("flops", "FLOPs", "tinyinfer's FLOPs of the kernels that run: 2 per MAC plus "
               "every elementwise operation (activations, pools, adds), BN folded",
               cost_field="flops", params="folded"),
    Convention("fvcore", "fvcore flops", "fvcore FlopCountAnalysis: 1 per MAC, BN 2 per "
               "element, adaptive pools 1 per input; activations/adds/max pool ignored",
               FVCORE, tool="FlopCountAnalysis(model, x).total()"),
    Convention("thop", "thop ops", "thop.profile: 1 per MAC, BN 4 per element, adaptive pool "
               "(window+1) per output if a module; ReLU and max pool 0", THOP,
               tool="thop.profile(model, (x,))[0]"),
    Convention("ptflops", "ptflops MACs", "ptflops (pytorch backend): 1 per MAC + bias, BN 2 "
               "per element, ReLU and pool modules counted twice (hook + F.*)", PTFLOPS,
               tool="get_model_complexity_info(model, (3, H, W), backend='pytorch')[0]"),
    Convention("ptflops_aten", "ptflops MACs", "ptflops (aten backend): convolutions and "
               "matrix products, 1 per MAC + bias", PTFLOPS_ATEN,
               tool="get_model_complexity_info(model, (3, H, W), backend='aten')[0]"),
    Convention("torch", "FLOPs", "torch.utils.flop_counter.FlopCounterMode: 2 per MAC of "
               "convolutions and matrix products, nothing else", TORCH,
               tool="FlopCounterMode().get_total_flops()"),
]}


def get_convention(name: str) -> Convention:
    if name not in CONVENTIONS:
        raise InputError(f"unknown counting convention {name!r}; choose one of "
                         f"{', '.join(CONVENTIONS)}")
    return CONVENTIONS[name]


@dataclass
class Counted:
    convention: Convention
    total: int
    params: int
    per_row: dict[str, int]        # plan node (report row) -> count
    by_op: dict[str, int]          # reference op (or node kind) -> count
    # what the tool leaves out of this network, or counts by a rule of its own (see notes)
    notes: list[str] = field(default_factory=list)


# ---- notes: what a tool ignores or miscounts in one network -----------------------------
# How each call reads in a note (the calls of RefOp and REFERENCE_CALLS).
CALLS = {"module": "an nn.Module", "functional": "a torch.nn.functional call",
         "method": "a tensor method: x.mean, x.softmax", "operator": "an operator: +, *, @",
         "subclass": "timm's subclass of a module type with a rule, e.g. BatchNormAct2d: "
                     "rules go by exact type",
         "fused": "fused into F.scaled_dot_product_attention",
         "timm_attention": "inside timm's Attention module",
         "transposed": "a ConvTranspose2d", "transposed_input": "a Linear on a transposed view"}
# Rules that are not a count of the work, by (convention, call): said once per network.
QUIRKS = {
    ("thop", "transposed"): "thop counts a ConvTranspose2d by the forward conv's formula "
    "(output elements x Cin/groups x kernel area): kernel-area times its MACs at stride = kernel",
    ("ptflops", "timm_attention"): "ptflops counts timm's Attention by its own formula (q "
    "scaling, q k^T, softmax, attn v per head) and leaves out its qkv and proj Linears",
    ("ptflops_aten", "transposed_input"): "ptflops (aten) leaves out the bias of a Linear on a "
    "transposed view (ATen runs it as mm, then add_)",
}
PTFLOPS_BATCH = ("ptflops at batch > 1 divides its module hooks' counts by the batch but not "
                 "its patched functions' (F.*): its own number is neither per image nor per "
                 "batch; this emulation counts the whole batch (compare at batch 1)")


def _ignored(rules, o, counted: int) -> bool:
    """The tool counts 0 of an op that has MACs, or that it counts when called otherwise."""
    if counted or o.op == "copy":
        return False
    return o.macs > 0 or (o.op in rules and any(
        rules[o.op](replace(o, call=call)) for call in ("module", "functional", "method")))


def _notes(conv: Convention, ops_counted, batch: int) -> list[str]:
    """Counted.notes: one line per (op, call) the tool ignores, largest first, then the
    quirks of the calls this network makes."""
    ignored, calls = {}, set()
    for o, c in ops_counted:
        calls.add(o.call)
        if _ignored(conv.rules, o, c):
            macs, n = ignored.get((o.op, o.call), (0, 0))
            ignored[(o.op, o.call)] = (macs + o.macs, n + o.n_in)
    out = [f"{conv.name} ignores {op} ({CALLS.get(call, call)}): "
           + (f"{macs:,} MACs" if macs else f"{n:,} elements")
           for (op, call), (macs, n) in sorted(ignored.items(), key=lambda kv: kv[1],
                                                reverse=True)]
    out += [QUIRKS[(conv.name, call)] for call in sorted(calls) if (conv.name, call) in QUIRKS]
    return out + ([PTFLOPS_BATCH] if conv.name == "ptflops" and batch > 1 else [])


def torch_params(graph) -> int:
    """Parameters as PyTorch counts them: BN has weight and bias (its running mean and
    variance are buffers, not parameters)."""
    total = 0
    for node in graph:
        for p, shape in node.param_shapes.items():
            if p not in buffers(node):
                total += numel(shape)
    return total


def count(model, convention: str = "paper", input_shape=None) -> Counted:
    """Count ``model`` (a tinyinfer.Model) at ``input_shape`` (default: batch 1 at its
    native resolution) under ``convention``."""
    conv = get_convention(convention)
    if input_shape is None:
        r = model.spec.input_size
        input_shape = (1, model.graph.in_channels, r, r)
    plan_costs = node_costs(model.plan, input_shape)
    params = (sum(c.params for _, _, c in plan_costs) if conv.params == "folded"
              else torch_params(model.graph))
    per_row: dict[str, int] = {}
    by_op: dict[str, int] = {}
    if conv.rules is None:                    # tinyinfer's own cost model, on what runs
        for node, _, cost in plan_costs:
            v = getattr(cost, conv.cost_field)
            per_row[node.name] = v
            by_op[node.kind] = by_op.get(node.kind, 0) + v
        return Counted(conv, sum(per_row.values()), params, per_row, by_op)
    # the tools look at the reference as written: BN and activations are layers of their own
    owner = {n.name: n.name for n in model.plan}
    owner.update({f: n.name for n in model.plan for f in n.fused})
    shapes = infer_shapes(model.graph, input_shape)
    calls = reference_calls(model.name)
    ops_counted = []
    for node in model.graph:
        ops = lower(node, [shapes[i] for i in node.inputs], shapes[node.name], calls)
        v = 0
        for o in ops:
            c = int(conv.rules[o.op](o)) if o.op in conv.rules else 0
            by_op[o.op] = by_op.get(o.op, 0) + c
            ops_counted.append((o, c))
            v += c
        row = owner.get(node.name, node.name)
        per_row[row] = per_row.get(row, 0) + v
    return Counted(conv, sum(per_row.values()), params, per_row, by_op,
                   _notes(conv, ops_counted, input_shape[0]))


def compare(model, input_shape=None, conventions=None) -> dict[str, Counted]:
    """Every convention's count of one model: {name: Counted}."""
    return {name: count(model, name, input_shape) for name in (conventions or CONVENTIONS)}


OP_CLASSES = ("conv", "linear", "attention", "batchnorm", "norm", "activation", "pool", "add/mul",
              "other")


# the reference ops' classes; a node kind's class is in its op record
_REF_OP_CLASSES = {"conv": "conv", "linear": "linear", "batchnorm": "batchnorm",
                   "add": "add/mul", "mul": "add/mul", "max_pool": "pool", "avg_pool": "pool",
                   "adaptive_avg_pool": "pool", "layer_norm": "norm", "sdpa": "attention",
                   "softmax": "attention", "interpolate": "pool",   # resampling
                   **{name: "activation" for name in ACT_NAMES.values()}}


def op_class(op: str) -> str:
    """A reference op (or, for tinyinfer's own conventions, a node kind) -> OP_CLASSES."""
    if op in OPS:
        return OPS[op].op_class
    return _REF_OP_CLASSES.get(op, "other")


def by_class(counted: Counted) -> dict[str, int]:
    """A Counted's ops grouped into OP_CLASSES (for the conventions notebook's table)."""
    out = {c: 0 for c in OP_CLASSES}
    for op, v in counted.by_op.items():
        out[op_class(op)] += v
    return out
