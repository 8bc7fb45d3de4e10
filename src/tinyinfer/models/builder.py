"""One builder for the whole MBConv family: a table of blocks in (block strings, or block
arguments from a paper's table: blocks.paper_table), a graph out.

Node names follow timm's EfficientNet/MobileNet modules (conv_stem, bn1, blocks.{stage}.{i}.
conv_pw / bn1 / conv_dw / bn2 / conv_pwl / bn3, conv_head, bn2, classifier), so timm
checkpoints load name for name and other layouts (torchvision's) map onto them with an
explicit key map in the model file.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from ..engine.graph import Graph
from ..kernels.activations import act_code
from .blocks import (SE_RULES, BlockArgs, decode_arch, kernels, make_divisible, round_channels,
                     se_channels, split_channels)


def symmetric_padding(kernel: int, stride: int = 1, dilation: int = 1) -> int:
    """PyTorch-style padding of timm's default ``pad_type=''``: for odd kernels this equals
    torchvision's (k - 1) // 2 * d and keeps 'same' output size at stride 1."""
    return ((stride - 1) + dilation * (kernel - 1)) // 2


class NetBuilder:
    """Appends nodes to a Graph while tracking each value's channel count."""

    def __init__(self, in_channels: int = 3, bn_eps: float = 1e-5):
        self.graph = Graph(in_channels)
        self.channels = {Graph.INPUT: in_channels}
        self.bn_eps = bn_eps

    def conv(self, name, x, out_ch, kernel, stride=1, groups=1, dilation=1, padding=None,
             bias=False) -> str:
        """kernel and stride: an int, or an (h, w) pair for a non-square conv (MicroNet's
        k x 1 then 1 x k); padding None: symmetric_padding along each axis."""
        in_ch = self.channels[x]
        (kh, kw), (sh, sw) = (v if isinstance(v, tuple) else (v, v) for v in (kernel, stride))
        ph, pw = (symmetric_padding(kh, sh, dilation), symmetric_padding(kw, sw, dilation)) \
            if padding is None else (padding, padding)
        shapes = {"weight": (out_ch, in_ch // groups, kh, kw)}
        if bias:
            shapes["bias"] = (out_ch,)
        self.graph.add_node(name, "conv2d", [x], {
            "stride": (sh, sw), "padding": (ph, ph, pw, pw),
            "dilation": (dilation, dilation), "groups": groups, "act": 0}, shapes)
        self.channels[name] = out_ch
        return name

    def conv_transpose(self, name, x, out_ch, kernel, stride=1, padding=0, output_padding=0,
                       groups=1, bias=True) -> str:
        """A transposed conv (PyTorch's ConvTranspose2d; weight (Cin, Cout/groups, k, k))."""
        shapes = {"weight": (self.channels[x], out_ch // groups, kernel, kernel)}
        if bias:
            shapes["bias"] = (out_ch,)
        self.graph.add_node(name, "conv_transpose2d", [x], {
            "stride": (stride, stride), "padding": (padding, padding),
            "output_padding": (output_padding, output_padding), "dilation": (1, 1),
            "groups": groups}, shapes)
        self.channels[name] = out_ch
        return name

    def bn(self, name, x) -> str:
        c = self.channels[x]
        self.graph.add_node(name, "batchnorm", [x], {"eps": self.bn_eps},
                            {p: (c,) for p in ("weight", "bias", "running_mean", "running_var")})
        self.channels[name] = c
        return name

    def act(self, name, x, act) -> str:
        code = act_code(act)
        if code == 0:
            return x
        self.graph.add_node(name, "act", [x], {"act": code})
        self.channels[name] = self.channels[x]
        return name

    def conv_bn_act(self, x, conv_name, bn_name, out_ch, kernel, stride=1, groups=1, act=None):
        y = self.bn(bn_name, self.conv(conv_name, x, out_ch, kernel, stride, groups))
        return self.act(f"{bn_name}.act", y, act) if act else y

    def add(self, name, a, b) -> str:
        self.graph.add_node(name, "add", [a, b], {"act": 0})
        self.channels[name] = self.channels[a]
        return name

    def global_pool(self, name, x) -> str:
        self.graph.add_node(name, "global_avgpool", [x])
        self.channels[name] = self.channels[x]
        return name

    def se(self, name, x, reduced, act="relu", gate="sigmoid", reduce="conv_reduce",
           expand="conv_expand") -> str:
        """Squeeze-excite; ``reduce``/``expand`` name its two 1x1 convs as the reference does."""
        c = self.channels[x]
        shapes = {f"{reduce}.weight": (reduced, c, 1, 1), f"{reduce}.bias": (reduced,),
                  f"{expand}.weight": (c, reduced, 1, 1), f"{expand}.bias": (c,)}
        self.graph.add_node(name, "se", [x], {"act": act_code(act), "gate": act_code(gate),
                                              "reduce": reduce, "expand": expand}, shapes)
        self.channels[name] = c
        return name

    def pool(self, name, x, kind, kernel, stride=None, padding=0, ceil_mode=False,
             count_include_pad=True) -> str:
        """kind: "max_pool2d" or "avg_pool2d"."""
        attrs = {"kernel": kernel, "stride": stride, "padding": padding, "ceil_mode": ceil_mode}
        if kind == "avg_pool2d":
            attrs["count_include_pad"] = count_include_pad
        self.graph.add_node(name, kind, [x], attrs)
        self.channels[name] = self.channels[x]
        return name

    def adaptive_pool(self, name, x, out_hw) -> str:
        self.graph.add_node(name, "adaptive_avgpool", [x], {"out_hw": tuple(out_hw)})
        self.channels[name] = self.channels[x]
        return name

    def concat(self, name, xs) -> str:
        self.graph.add_node(name, "concat", list(xs))
        self.channels[name] = sum(self.channels[x] for x in xs)
        return name

    def slice(self, name, x, start, stop) -> str:
        """Channels start:stop of x (a view)."""
        self.graph.add_node(name, "slice", [x], {"start": start, "stop": stop})
        self.channels[name] = stop - start
        return name

    def channel_shuffle(self, name, x, groups) -> str:
        self.graph.add_node(name, "channel_shuffle", [x], {"groups": groups})
        self.channels[name] = self.channels[x]
        return name

    def mul(self, name, x, gate) -> str:
        self.graph.add_node(name, "mul", [x, gate])
        self.channels[name] = self.channels[x]
        return name

    def dyshiftmax(self, name, x, coef, groups, act_max, init_a, init_b) -> str:
        """MicroNet's Shift-Max mix of map x with the h-sigmoid output ``coef`` (N, J*C) of
        its squeeze branch (ops_cells.py; attrs as kernels/shiftmax.py names them)."""
        self.graph.add_node(name, "dyshiftmax", [x, coef], {
            "groups": groups, "act_max": act_max, "init_a": tuple(init_a),
            "init_b": tuple(init_b)})
        self.channels[name] = self.channels[x]
        return name

    def flatten(self, name, x, flat_channels) -> str:
        """(N, C, H, W) -> (N, C*H*W); ``flat_channels`` = C*H*W (the builder tracks channels
        only, so the caller states it: e.g. VGG's 512*7*7)."""
        self.graph.add_node(name, "flatten", [x])
        self.channels[name] = flat_channels
        return name

    def linear(self, name, x, out_features, bias=True) -> str:
        shapes = {"weight": (out_features, self.channels[x])}
        if bias:
            shapes["bias"] = (out_features,)
        self.graph.add_node(name, "linear", [x], {"act": 0}, shapes)
        self.channels[name] = out_features
        return name

    def conv_same(self, name, x, out_ch, kernel, stride=1, groups=1, dilation=1,
                  bias=False) -> str:
        """A conv with TensorFlow's "SAME" padding (the tf_* ports of TF checkpoints): the
        padding depends on the input size, so ops.py resolves it when shapes are known.
        kernel and stride: ints or (h, w) pairs, as in conv (AmoebaNet's 1x7 and 7x1)."""
        in_ch = self.channels[x]
        (kh, kw), stride = (v if isinstance(v, tuple) else (v, v) for v in (kernel, stride))
        shapes = {"weight": (out_ch, in_ch // groups, kh, kw)}
        if bias:
            shapes["bias"] = (out_ch,)
        self.graph.add_node(name, "conv2d", [x], {
            "stride": stride, "padding": "same",
            "dilation": (dilation, dilation), "groups": groups, "act": 0}, shapes)
        self.channels[name] = out_ch
        return name

    # ---- tokens (N, T, C): the transformer kinds of engine/ops_transformer.py; ``channels``
    # of a token value is C, so linear, act and add above work on tokens unchanged
    def to_tokens(self, name, x) -> str:
        """(N, C, H, W) -> (N, H*W, C)."""
        self.graph.add_node(name, "to_tokens", [x])
        self.channels[name] = self.channels[x]
        return name

    def from_tokens(self, name, x, like) -> str:
        """(N, H*W, C) -> (N, C, H, W), H and W those of the map ``like``."""
        self.graph.add_node(name, "from_tokens", [x, like])
        self.channels[name] = self.channels[x]
        return name

    def unfold_patches(self, name, x, patch) -> str:
        """MobileViT's unfold: (B, C, H, W) -> (B*P, N, C) for patch = (ph, pw)."""
        self.graph.add_node(name, "unfold_patches", [x], {"patch": tuple(patch)})
        self.channels[name] = self.channels[x]
        return name

    def fold_patches(self, name, x, like, patch) -> str:
        """The inverse of unfold_patches, back to the height and width of the map ``like``."""
        self.graph.add_node(name, "fold_patches", [x, like], {"patch": tuple(patch)})
        self.channels[name] = self.channels[x]
        return name

    def layer_norm(self, name, x, eps=1e-5, affine=True, kind="layer_norm") -> str:
        """Over the last dim of tokens; kind="layer_norm_2d": over the channels of NCHW."""
        c = self.channels[x]
        shapes = {"weight": (c,), "bias": (c,)} if affine else {}
        self.graph.add_node(name, kind, [x], {"eps": eps}, shapes)
        self.channels[name] = c
        return name

    def group_norm(self, name, x, num_groups=1, eps=1e-5) -> str:
        """GroupNorm over NCHW; MobileViTV2's GroupNorm(1, C) normalizes all of C x H x W."""
        c = self.channels[x]
        self.graph.add_node(name, "group_norm", [x], {"num_groups": num_groups, "eps": eps},
                            {"weight": (c,), "bias": (c,)})
        self.channels[name] = c
        return name

    def resize_to_patches(self, name, x, patch) -> str:
        """MobileViTV2's resize of a map whose sides are not multiples of ``patch`` (up to the
        next multiples, bilinear, align_corners=True); a map that fits passes unchanged."""
        self.graph.add_node(name, "resize_to_patches", [x], {"patch": tuple(patch)})
        self.channels[name] = self.channels[x]
        return name

    def separable_attention(self, name, qkv, patch) -> str:
        """MobileViTV2's attention between its two 1x1 convs: the qkv map (B, 1 + 2C, H, W)
        -> ReLU(v) * context (B, C, H, W), tokens from patches of ``patch`` = (ph, pw)."""
        self.graph.add_node(name, "separable_attention", [qkv], {"patch": tuple(patch)})
        self.channels[name] = (self.channels[qkv] - 1) // 2
        return name

    def mhsa(self, name, x, num_heads, qkv_bias=True, proj_bias=True, proj=True) -> str:
        """Multi-head self-attention on tokens, weights named as timm's Attention;
        proj=False: no output projection (EdgeViT adds its own after local propagation)."""
        c = self.channels[x]
        shapes = {"qkv.weight": (3 * c, c)}
        if qkv_bias:
            shapes["qkv.bias"] = (3 * c,)
        if proj:
            shapes["proj.weight"] = (c, c)
        if proj and proj_bias:
            shapes["proj.bias"] = (c,)
        self.graph.add_node(name, "mhsa", [x], {"num_heads": num_heads}, shapes)
        self.channels[name] = c
        return name


# ---- the MBConv family ---------------------------------------------------------------------
@dataclass(frozen=True)
class Style:
    """What a table does not say but a reference's weights depend on: how its SE blocks are
    sized and gated, how its convs pad, its BN epsilon (pretrained BN statistics were
    computed with it: 1e-5 in PyTorch, 1e-3 in the TF references and their ports)."""
    se_rule: str = "timm_effnet"     # see blocks.se_channels
    se_act: str | None = None        # None: the block's own activation (EfficientNet, MixNet)
    se_gate: str = "sigmoid"         # MobileNetV3: "hsigmoid"
    padding: str = "symmetric"       # PyTorch's (k-1)//2, or TensorFlow's "same"
    bn_eps: float = 1e-5
    # mobile-vision's ConvBNRelu keeps nn.Conv2d's default bias in the stem and head convs,
    # in front of their BN (redundant once BN is folded, but its checkpoints hold it)
    stem_head_bias: bool = False

    def __post_init__(self):
        if self.se_rule not in SE_RULES:
            raise InputError(f"unknown squeeze-excite rule {self.se_rule!r}; known: {SE_RULES}")
        if self.padding not in ("symmetric", "same"):
            raise InputError(f"padding must be 'symmetric' (PyTorch's) or 'same' (TensorFlow's), "
                             f"got {self.padding!r}")
        if not self.bn_eps > 0:
            raise InputError(f"bn_eps must be > 0 (1e-5 PyTorch, 1e-3 TF ports), got {self.bn_eps!r}")


def conv(b: NetBuilder, name: str, x: str, out_ch: int, kernel, stride: int = 1,
         depthwise: bool = False, padding: str = "symmetric", bias: bool = False) -> str:
    """One conv, or a MixConv when ``kernel`` is a tuple: split the channels (blocks.
    split_channels), run one conv per group with its own kernel, concatenate. The group convs
    are named {name}.0, {name}.1, ... as timm's MixedConv2d names them; the slices are views
    and the counts are those of the group convs alone."""
    ks = kernels(kernel)
    if len(ks) == 1:
        groups = b.channels[x] if depthwise else 1
        if padding == "same":
            return b.conv_same(name, x, out_ch, ks[0], stride, groups=groups, bias=bias)
        return b.conv(name, x, out_ch, ks[0], stride, groups=groups, bias=bias)
    in_splits = split_channels(b.channels[x], len(ks))
    out_splits = split_channels(out_ch, len(ks))
    parts, start = [], 0
    for i, (k, cin, cout) in enumerate(zip(ks, in_splits, out_splits)):
        part = b.slice(f"{name}.in{i}", x, start, start + cin)
        parts.append(conv(b, f"{name}.{i}", part, cout, k, stride, depthwise, padding, bias))
        start += cin
    return b.concat(name, parts)


def conv_bn_act(b: NetBuilder, x: str, conv_name: str, bn_name: str, out_ch: int, kernel,
                stride: int = 1, depthwise: bool = False, act: str | None = None,
                style: Style = Style(), bias: bool = False) -> str:
    y = b.bn(bn_name, conv(b, conv_name, x, out_ch, kernel, stride, depthwise, style.padding,
                           bias))
    return b.act(f"{bn_name}.act", y, act) if act else y


def add_block(b: NetBuilder, x: str, prefix: str, args: BlockArgs, stride: int, out_ch: int,
              act: str, style: Style = Style()) -> str:
    """One block of the family (see blocks.py for the types). Returns its output value."""
    in_ch = b.channels[x]
    act = args.act or act

    def cba(y, conv_name, bn_name, ch, kernel, s=1, depthwise=False, a=None):
        return conv_bn_act(b, y, f"{prefix}.{conv_name}", f"{prefix}.{bn_name}", ch, kernel,
                           s, depthwise, a, style)

    # dsa (MobileNetV1's layer) never has a shortcut, as in timm; cn only when asked ("skip")
    has_skip = stride == 1 and in_ch == out_ch and not args.noskip and args.type != "dsa" \
        and (args.type != "cn" or args.skip)
    if args.type in ("ds", "dsa"):       # timm DepthwiseSeparableConv
        y = cba(x, "conv_dw", "bn1", in_ch, args.kernel, stride, True, act)
        y = squeeze_excite(b, y, prefix, args, in_ch, in_ch, 1.0, act, style)
        y = cba(y, "conv_pw", "bn2", out_ch, args.pw_kernel,
                a=act if args.type == "dsa" else None)
    elif args.type == "ir":              # timm InvertedResidual (MBConv)
        # timm's make_divisible; torchvision's int(round(c t)) (MobileNetV2) and c t (MNASNet)
        # give the same whenever c t is a multiple of 8, as at every registered width
        mid = make_divisible(in_ch * args.exp_ratio)
        y = cba(x, "conv_pw", "bn1", mid, args.exp_kernel, a=act)
        y = cba(y, "conv_dw", "bn2", mid, args.kernel, stride, True, act)
        y = squeeze_excite(b, y, prefix, args, in_ch, mid, args.exp_ratio, act, style)
        y = cba(y, "conv_pwl", "bn3", out_ch, args.pw_kernel)
    elif args.type == "er":              # timm EdgeResidual (Fused-MBConv)
        mid = make_divisible(in_ch * args.exp_ratio)
        y = cba(x, "conv_exp", "bn1", mid, args.kernel, stride, a=act)
        y = squeeze_excite(b, y, prefix, args, in_ch, mid, args.exp_ratio, act, style)
        y = cba(y, "conv_pwl", "bn2", out_ch, args.pw_kernel)
    elif args.type == "cn":              # timm ConvBnAct
        if args.se_ratio:
            raise ValueError(f"{prefix}: a cn block has no squeeze-excite")
        y = cba(x, "conv", "bn1", out_ch, args.kernel, stride, a=act)
    else:
        raise ValueError(f"block type {args.type!r} is not supported by the builder")
    return b.add(f"{prefix}.add", y, x) if has_skip else y


def squeeze_excite(b: NetBuilder, y: str, prefix: str, args: BlockArgs, in_ch: int, mid: int,
                   exp_ratio: float, act: str, style: Style) -> str:
    """The block's SE on its ``mid`` expanded channels, if the table asks for one."""
    if not args.se_ratio:
        return y
    reduced = se_channels(style.se_rule, in_ch, mid, args.se_ratio, exp_ratio)
    return b.se(f"{prefix}.se", y, reduced, act=style.se_act or act, gate=style.se_gate)


HEADS = ("conv", "pooled_conv", "pooled_fc")


def build_mbconv_net(arch: list[list[str | BlockArgs]], *, stem_size: int = 32,
                     num_features: int = 1280, width_mult: float = 1.0,
                     width_divisor: int = 8, depth_mult: float = 1.0, act: str = "relu6",
                     num_classes: int = 1000,
                     fix_stem: bool = False, head_rule: str = "max", head: str = "conv",
                     depth_rounding: str = "ceil",
                     fix_first_last: bool = False, style: Style = Style(),
                     in_channels: int = 3) -> Graph:
    """stem conv -> stages of blocks -> head -> classifier.

    num_features: channels of the head's 1x1 conv (0: no head conv, MobileNetV1). With the
        width multiplier w, ``head_rule`` says what becomes of it:
        "max"    max(n, round(n * w)): widened above w = 1 only (MobileNetV2, TinyNet)
        "scaled" round(n * w) (timm's EfficientNet; torchvision's 4 x last channels is the
                 same number for every B0-B7)
        "fixed"  n (MobileNetV3, MnasNet, MixNet, FBNet, EfficientNet-Lite)
    head: "conv"        1x1 conv + BN + act, then global average pool (EfficientNet, ...)
          "pooled_conv" MobileNetV3's efficient head as timm writes it: pool first, then a
                        1x1 conv with bias (no BN) + act on the 1x1 map, then flatten
          "pooled_fc"   the same head as torchvision writes it: pool, fully connected + act
    width_divisor: widths are rounded to multiples of it (blocks.round_channels); 1 keeps a
        table's channels as written at width 1, as mobile-vision's FBNet builder does
        (ChamNet-B's 92-channel stage).
    depth_rounding / fix_first_last: timm's depth multiplier options (see blocks.py).
    style: SE sizing and gate, padding, BN epsilon (see Style).
    """
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")
    if head_rule not in ("max", "scaled", "fixed"):
        raise ValueError(f"head_rule must be 'max', 'scaled' or 'fixed', got {head_rule!r}")
    for option, value in (("width_mult", width_mult), ("depth_mult", depth_mult)):
        if not (isinstance(value, (int, float)) and value > 0):
            raise InputError(f"{option} must be a number > 0 (1.0: the published network), "
                             f"got {value!r}")
    b = NetBuilder(in_channels, style.bn_eps)
    stem = stem_size if fix_stem else round_channels(stem_size, width_mult, width_divisor)
    x = conv_bn_act(b, Graph.INPUT, "conv_stem", "bn1", stem, 3, 2, act=act, style=style,
                    bias=style.stem_head_bias)
    for s, stage in enumerate(decode_arch(arch, depth_mult, depth_rounding, fix_first_last)):
        i = 0
        for row in stage:
            out_ch = round_channels(row.out_chs, width_mult, width_divisor)
            for r in range(row.repeats):
                x = add_block(b, x, f"blocks.{s}.{i}", row, row.stride if r == 0 else 1, out_ch,
                              act, style)
                i += 1
    features = {"max": max(num_features, round_channels(num_features, width_mult,
                                                        width_divisor)),
                "scaled": round_channels(num_features, width_mult, width_divisor),
                "fixed": num_features}[head_rule]
    if head == "conv":
        if num_features:
            x = conv_bn_act(b, x, "conv_head", "bn2", features, 1, act=act, style=style,
                            bias=style.stem_head_bias)
        x = b.global_pool("global_pool", x)
    elif head == "pooled_conv":
        x = b.adaptive_pool("global_pool", x, (1, 1))
        x = b.act("conv_head.act", b.conv("conv_head", x, features, 1, bias=True), act)
        x = b.flatten("flatten", x, features)
    else:
        x = b.global_pool("global_pool", x)
        x = b.act("conv_head.act", b.linear("conv_head", x, features), act)
    b.linear("classifier", x, num_classes)
    return b.graph
