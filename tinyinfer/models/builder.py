"""One builder for the whole MBConv family: a table of block strings in, a graph out.

Node names follow timm's EfficientNet/MobileNet modules (conv_stem, bn1, blocks.{stage}.{i}.
conv_pw / bn1 / conv_dw / bn2 / conv_pwl / bn3, conv_head, bn2, classifier), so timm
checkpoints load name for name and other layouts (torchvision's) map onto them with an
explicit key map in the model file.
"""
from __future__ import annotations

from ..graph import Graph
from ..kernels.activations import act_code
from .blocks import BlockArgs, decode_arch, make_divisible, round_channels


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
        in_ch = self.channels[x]
        pad = symmetric_padding(kernel, stride, dilation) if padding is None else padding
        shapes = {"weight": (out_ch, in_ch // groups, kernel, kernel)}
        if bias:
            shapes["bias"] = (out_ch,)
        self.graph.add_node(name, "conv2d", [x], {
            "stride": (stride, stride), "padding": (pad, pad, pad, pad),
            "dilation": (dilation, dilation), "groups": groups, "act": 0}, shapes)
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


def add_block(b: NetBuilder, x: str, prefix: str, args: BlockArgs, stride: int, out_ch: int,
              act: str) -> str:
    """One block of the family (see blocks.py for the types). Returns its output value."""
    in_ch = b.channels[x]
    act = args.act or act
    # dsa (MobileNetV1's layer) never has a shortcut, as in timm; the others do where shapes allow
    has_skip = stride == 1 and in_ch == out_ch and not args.noskip and args.type != "dsa"
    if args.type in ("ds", "dsa"):       # timm DepthwiseSeparableConv
        y = b.conv_bn_act(x, f"{prefix}.conv_dw", f"{prefix}.bn1", in_ch, args.kernel, stride,
                          groups=in_ch, act=act)
        y = b.conv_bn_act(y, f"{prefix}.conv_pw", f"{prefix}.bn2", out_ch, 1,
                          act=act if args.type == "dsa" else None)
    elif args.type == "ir":              # timm InvertedResidual (MBConv)
        mid = make_divisible(in_ch * args.exp_ratio)  # timm's rule; torchvision's int(round())
        # agrees whenever in_ch is a multiple of 8, as in every MobileNetV2 width
        y = b.conv_bn_act(x, f"{prefix}.conv_pw", f"{prefix}.bn1", mid, 1, act=act)
        y = b.conv_bn_act(y, f"{prefix}.conv_dw", f"{prefix}.bn2", mid, args.kernel, stride,
                          groups=mid, act=act)
        y = b.conv_bn_act(y, f"{prefix}.conv_pwl", f"{prefix}.bn3", out_ch, 1)
    elif args.type == "cn":              # timm ConvBnAct
        y = b.conv_bn_act(x, f"{prefix}.conv", f"{prefix}.bn1", out_ch, args.kernel, stride, act=act)
        has_skip = False
    else:
        raise ValueError(f"block type {args.type!r} is not supported by the builder yet")
    if args.se_ratio:
        raise ValueError("squeeze-excite blocks are not supported by the builder yet")
    return b.add(f"{prefix}.add", y, x) if has_skip else y


def build_mbconv_net(arch: list[list[str]], *, stem_size: int = 32, num_features: int = 1280,
                     width_mult: float = 1.0, depth_mult: float = 1.0, act: str = "relu6",
                     num_classes: int = 1000, fix_stem: bool = False, head_width_scaled=True,
                     bn_eps: float = 1e-5, in_channels: int = 3) -> Graph:
    """stem conv -> stages of blocks -> [1x1 head conv] -> global pool -> classifier.

    ``num_features`` 0 means no head conv (MobileNetV1). The head is widened with the width
    multiplier only above 1.0, as in torchvision and timm (max(1280, round(1280 * w))).
    """
    b = NetBuilder(in_channels, bn_eps)
    stem = stem_size if fix_stem else round_channels(stem_size, width_mult)
    x = b.conv_bn_act(Graph.INPUT, "conv_stem", "bn1", stem, 3, 2, act=act)
    for s, stage in enumerate(decode_arch(arch, depth_mult)):
        i = 0
        for row in stage:
            out_ch = round_channels(row.out_chs, width_mult)
            for r in range(row.repeats):
                x = add_block(b, x, f"blocks.{s}.{i}", row, row.stride if r == 0 else 1, out_ch, act)
                i += 1
    if num_features:
        head = max(num_features, round_channels(num_features, width_mult)) \
            if head_width_scaled else num_features
        x = b.conv_bn_act(x, "conv_head", "bn2", head, 1, act=act)
    x = b.global_pool("global_pool", x)
    b.linear("classifier", x, num_classes)
    return b.graph
