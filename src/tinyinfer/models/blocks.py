"""The block grammar of the MBConv family, and the rounding rules that act on it.

One string describes one run of identical blocks, as in timm's ``_efficientnet_builder.py``,
so MobileNetV1/V2/V3, MnasNet, EfficientNet (V1, Lite, V2), MixNet, FBNet and TinyNet are
all tables of these strings fed to one builder (``builder.py``):

    ir_r2_k3.5_a1.1_p1.1_s2_e6_c24_se0.25_nsw
    |  |  |     |    |    |  |  |   |      `-- activation override: re=ReLU r6=ReLU6
    |  |  |     |    |    |  |  |   |          hs=h-swish sw=swish
    |  |  |     |    |    |  |  |   `--------- squeeze-excite ratio (of the block's *input*
    |  |  |     |    |    |  |  |              channels in timm's EfficientNet; of the
    |  |  |     |    |    |  |  |              expanded ones in MobileNetV3: see se_channels)
    |  |  |     |    |    |  |  `------------- output channels (before the width multiplier)
    |  |  |     |    |    |  `---------------- expansion ratio t (ir/er only)
    |  |  |     |    |    `------------------- stride of the first block of the run
    |  |  |     |    `------------------------ kernel of the last 1x1 conv (1.1: MixNet's
    |  |  |     |                              grouped pointwise conv in two halves)
    |  |  |     `----------------------------- kernel of the expansion conv (as p)
    |  |  `----------------------------------- depthwise kernel; 3.5 = MixConv: the channels
    |  |                                        are split into groups with kernels 3 and 5
    |  `-------------------------------------- repeats n
    `----------------------------------------- block type:
        ds   depthwise separable: dw kxk + BN + act, [SE], pw 1x1 + BN   (MobileNetV2's t=1)
        dsa  the same with an activation after the pw conv, never a shortcut (MobileNetV1)
        ir   inverted residual (MBConv): pw 1x1 expand + BN + act, dw kxk + BN + act, [SE],
             pw 1x1 linear projection + BN, + shortcut
        er   edge residual (Fused-MBConv, EfficientNetV2): kxk expand conv + BN + act, [SE],
             pw 1x1 linear projection + BN, + shortcut
        cn   plain conv kxk + BN + act (a shortcut only with the "skip" option)
    other options: noskip (no shortcut even where shapes allow one), skip (cn with one).

Stochastic depth and drop-connect are training-time regularizers: identity at inference,
so the grammar has no option for them.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

ACT_ABBREVIATIONS = {"re": "relu", "r6": "relu6", "hs": "hswish", "sw": "swish", "ge": "gelu"}
BLOCK_TYPES = ("ds", "dsa", "ir", "er", "cn")


@dataclass(frozen=True)
class BlockArgs:
    type: str
    repeats: int
    kernel: int | tuple[int, ...]    # one size, or one per channel group (MixConv)
    stride: int
    out_chs: int
    exp_ratio: float = 1.0
    se_ratio: float = 0.0
    act: str | None = None           # None: the network's default activation
    noskip: bool = False
    skip: bool = False               # cn only: add a shortcut where shapes allow
    exp_kernel: int | tuple[int, ...] = 1
    pw_kernel: int | tuple[int, ...] = 1


def _kernel(text: str, block: str):
    """'3' -> 3, '3.5.7' -> (3, 5, 7): timm's _parse_ksize."""
    try:
        sizes = tuple(int(k) for k in text.split("."))
    except ValueError:
        raise ValueError(f"block {block!r}: bad kernel size {text!r}") from None
    if any(k < 1 for k in sizes):
        raise ValueError(f"block {block!r}: kernel sizes must be >= 1, got {text!r}")
    return sizes[0] if len(sizes) == 1 else sizes


def decode_block(text: str) -> BlockArgs:
    """'ir_r2_k3_s2_e6_c24' -> BlockArgs(type='ir', repeats=2, kernel=3, stride=2, ...)."""
    parts = text.split("_")
    kind, opts = parts[0], parts[1:]
    if kind not in BLOCK_TYPES:
        raise ValueError(f"block {text!r}: unknown type {kind!r} (known: {', '.join(BLOCK_TYPES)})")
    args = {"type": kind}
    for opt in opts:
        if opt in ("noskip", "skip"):
            args[opt] = True
            continue
        m = re.fullmatch(r"(se|r|k|s|e|c|n|a|p)([\w.]+)", opt)
        if not m:
            raise ValueError(f"block {text!r}: cannot read option {opt!r}")
        key, val = m.groups()
        if key == "n":
            if val not in ACT_ABBREVIATIONS:
                raise ValueError(f"block {text!r}: unknown activation {val!r} "
                                 f"(known: {', '.join(ACT_ABBREVIATIONS)})")
            args["act"] = ACT_ABBREVIATIONS[val]
        elif key in ("k", "a", "p"):
            args[{"k": "kernel", "a": "exp_kernel", "p": "pw_kernel"}[key]] = _kernel(val, text)
        else:
            field = {"r": "repeats", "s": "stride", "e": "exp_ratio", "c": "out_chs",
                     "se": "se_ratio"}[key]
            try:
                args[field] = float(val) if field in ("exp_ratio", "se_ratio") else int(val)
            except ValueError:
                raise ValueError(f"block {text!r}: option {opt!r} is not a number") from None
    missing = {"repeats", "kernel", "stride", "out_chs"} - set(args)
    if missing:
        raise ValueError(f"block {text!r}: missing {', '.join(sorted(missing))}")
    return BlockArgs(**args)


def kernels(k) -> tuple[int, ...]:
    """A kernel option as a tuple: 3 -> (3,), (3, 5) -> (3, 5)."""
    return (k,) if isinstance(k, int) else tuple(k)


def split_channels(channels: int, groups: int) -> list[int]:
    """MixConv's channel split (timm's ``_split_channels``, from the TF reference): equal
    parts, the remainder all to the first group. 40 channels, 3 kernels -> [14, 13, 13]."""
    split = [channels // groups] * groups
    split[0] += channels - sum(split)
    return split


# ---- rounding rules ----------------------------------------------------------------------
def make_divisible(v: float, divisor: int = 8, min_value: int | None = None,
                   round_limit: float = 0.9) -> int:
    """Round channels to a multiple of ``divisor`` (the rule of the TF reference, torchvision's
    ``_make_divisible`` and timm's ``make_divisible``): nearest multiple, but never more than
    10% below ``v`` (``round_limit`` 0 turns that guard off, as timm's EfficientNetV2-base)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


def round_channels(channels: int, multiplier: float = 1.0, divisor: int = 8) -> int:
    """The width multiplier (alpha in MobileNet, w in EfficientNet) applied to a channel count."""
    if not multiplier:
        return channels
    return make_divisible(channels * multiplier, divisor)


# How many channels an SE block squeezes to. The references disagree, and their pretrained
# weights fix the choice, so each network names its rule:
#   timm_effnet  timm's EfficientNet class: the ratio counts the block's *input* channels
#                (the builder divides it by the expansion ratio, then multiplies by the
#                expanded channels) and Python's round() (half to even) rounds it
#   timm_mnv3    timm's MobileNetV3 class: ratio of the expanded channels, make_divisible(., 8)
#   tv_effnet    torchvision's EfficientNet: max(1, input channels // 4)
#   tv_mnv3      torchvision's MobileNetV3: _make_divisible(expanded channels // 4, 8)
#   lite_effnet  the TF reference / EfficientNet-PyTorch: max(1, int(input channels * ratio))
SE_RULES = ("timm_effnet", "timm_mnv3", "tv_effnet", "tv_mnv3", "lite_effnet")


def se_channels(rule: str, in_chs: int, mid_chs: int, se_ratio: float, exp_ratio: float) -> int:
    if rule == "timm_effnet":
        return round(mid_chs * (se_ratio / exp_ratio))     # same float order as timm
    if rule == "timm_mnv3":
        return make_divisible(mid_chs * se_ratio)
    if rule == "tv_effnet":
        return max(1, in_chs // 4)
    if rule == "tv_mnv3":
        return make_divisible(mid_chs // 4)
    if rule == "lite_effnet":
        return max(1, int(in_chs * se_ratio))
    raise ValueError(f"unknown squeeze-excite rule {rule!r}; known: {', '.join(SE_RULES)}")


def scale_stage_depth(repeats: list[int], depth_multiplier: float, rounding: str = "ceil") -> list[int]:
    """The depth multiplier applied to one stage made of several rows (timm's
    ``_scale_stage_depth``): scale the stage's total block count with ceil (or round), then
    hand the blocks out to the rows from the last row backwards, so later rows get any
    rounding surplus. For a stage of one row this is just ceil(n * d) (or round)."""
    if rounding not in ("ceil", "round"):
        raise ValueError(f"depth rounding must be 'ceil' or 'round', got {rounding!r}")
    total = sum(repeats)
    if rounding == "round":
        scaled = max(1, round(total * depth_multiplier))
    else:
        scaled = int(math.ceil(total * depth_multiplier))
    out = []
    for r in repeats[::-1]:
        share = max(1, round(r / total * scaled))
        out.append(share)
        total -= r
        scaled -= share
    return out[::-1]


# ---- paper tables ------------------------------------------------------------------------
def paper_block(t: float, c: int, n: int, s: int, k: int = 3, *, op: str = "mb",
                se: bool = False, se_ratio: float = 0.25, act: str | None = None,
                noskip: bool = False) -> BlockArgs:
    """One row of a paper's bottleneck table -> block arguments, with the papers' names:
    t expansion factor, c output channels, n repeats, s stride of the first repeat, k kernel;
    op "mb" (MBConv) or "fused" (Fused-MBConv, EfficientNetV2's Table 4); se: the row has
    squeeze-excite (of ratio ``se_ratio``); act: None for the network's default activation.

    The one rule the tables leave implicit: a bottleneck with t = 1 has no expansion conv.
    An MBConv becomes depthwise separable ("ds": dw kxk + BN + act, [SE], linear 1x1 + BN;
    MobileNetV2's first bottleneck, EfficientNet's MBConv1, MnasNet's SepConv), a
    Fused-MBConv a single kxk conv + BN + act with a shortcut ("cn ... skip"). With t > 1
    they are "ir" (pw expand, dw kxk, [SE], pw project) and "er" (kxk expand, [SE], pw
    project)."""
    if op not in ("mb", "fused"):
        raise ValueError(f"op must be 'mb' (MBConv) or 'fused' (Fused-MBConv), got {op!r}")
    se_ratio = se_ratio if se else 0.0
    common = dict(repeats=n, kernel=k, stride=s, out_chs=c, act=act, noskip=noskip)
    if t == 1 and op == "mb":
        return BlockArgs("ds", se_ratio=se_ratio, **common)
    if t == 1:
        if se:
            raise ValueError("a Fused-MBConv with t = 1 is a plain conv: it has no squeeze-excite")
        return BlockArgs("cn", skip=True, **common)
    return BlockArgs("ir" if op == "mb" else "er", exp_ratio=float(t), se_ratio=se_ratio,
                     **common)


def paper_table(table: list[tuple], columns: str, **common) -> list[list[BlockArgs]]:
    """A paper's table, one stage per row, -> stages of block arguments. ``columns`` names
    the table's columns in order with paper_block's argument names ("t c n s" for
    MobileNetV2's Table 2, "t k c n s" for EfficientNet's Table 1); ``common`` holds what
    every row shares (e.g. ``se=True``)."""
    names = columns.split()
    return [[paper_block(**common, **dict(zip(names, row, strict=True)))] for row in table]


def decode_arch(arch: list[list[str | BlockArgs]], depth_multiplier: float = 1.0,
                depth_rounding: str = "ceil",
                fix_first_last: bool = False) -> list[list[BlockArgs]]:
    """A table (stages of rows: block strings, or BlockArgs from paper_table) -> stages of
    BlockArgs, with depth scaling. ``fix_first_last`` leaves the first and last stage
    unscaled (timm's option, used by EfficientNet-Lite)."""
    stages = []
    for i, rows in enumerate(arch):
        blocks = [r if isinstance(r, BlockArgs) else decode_block(r) for r in rows]
        d = 1.0 if fix_first_last and i in (0, len(arch) - 1) else depth_multiplier
        counts = scale_stage_depth([b.repeats for b in blocks], d, depth_rounding)
        stages.append([replace(b, repeats=n) for b, n in zip(blocks, counts)])
    return stages
