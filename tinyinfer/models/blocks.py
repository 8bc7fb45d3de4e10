"""The block grammar of the MBConv family, and the scaling rules that act on it.

One string describes one stage (a run of identical blocks), as in timm's
``_efficientnet_builder.py``, so MobileNetV1/V2/V3, MnasNet, EfficientNet, MixNet, FBNet
and TinyNet are all tables of these strings fed to one builder (``builder.py``):

    ir_r2_k3_s2_e6_c24_se0.25_nsw
    |  |  |  |  |  |   |      `-- activation override: re=ReLU r6=ReLU6 hs=h-swish sw=swish
    |  |  |  |  |  |   `--------- squeeze-excite, ratio of the block's *input* channels
    |  |  |  |  |  `------------- output channels (before the width multiplier)
    |  |  |  |  `---------------- expansion ratio t (ir/er only)
    |  |  |  `------------------- stride of the first block of the stage (the others: 1)
    |  |  `---------------------- depthwise kernel size
    |  `------------------------- repeats n
    `---------------------------- block type:
        ds   depthwise separable: dw kxk + BN + act, pw 1x1 + BN        (MobileNetV2's t=1 block)
        dsa  the same with an activation after the pointwise conv and no shortcut (MobileNetV1)
        ir   inverted residual: pw 1x1 expand + BN + act, dw kxk + BN + act, [SE],
             pw 1x1 linear projection + BN, + shortcut                   (MBConv)
        cn   plain conv kxk + BN + act
    other options: noskip (no shortcut even where shapes allow one)
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

ACT_ABBREVIATIONS = {"re": "relu", "r6": "relu6", "hs": "hswish", "sw": "swish", "ge": "gelu"}
BLOCK_TYPES = ("ds", "dsa", "ir", "cn")


@dataclass(frozen=True)
class BlockArgs:
    type: str
    repeats: int
    kernel: int
    stride: int
    out_chs: int
    exp_ratio: float = 1.0
    se_ratio: float = 0.0
    act: str | None = None   # None: the network's default activation
    noskip: bool = False


def decode_block(text: str) -> BlockArgs:
    """'ir_r2_k3_s2_e6_c24' -> BlockArgs(type='ir', repeats=2, kernel=3, stride=2, ...)."""
    parts = text.split("_")
    kind, opts = parts[0], parts[1:]
    if kind not in BLOCK_TYPES:
        raise ValueError(f"block {text!r}: unknown type {kind!r} (known: {', '.join(BLOCK_TYPES)})")
    args = {"type": kind}
    for opt in opts:
        if opt == "noskip":
            args["noskip"] = True
            continue
        m = re.fullmatch(r"(se|r|k|s|e|c|n)([\w.]+)", opt)
        if not m:
            raise ValueError(f"block {text!r}: cannot read option {opt!r}")
        key, val = m.groups()
        if key == "n":
            if val not in ACT_ABBREVIATIONS:
                raise ValueError(f"block {text!r}: unknown activation {val!r} "
                                 f"(known: {', '.join(ACT_ABBREVIATIONS)})")
            args["act"] = ACT_ABBREVIATIONS[val]
        else:
            field = {"r": "repeats", "k": "kernel", "s": "stride", "e": "exp_ratio",
                     "c": "out_chs", "se": "se_ratio"}[key]
            args[field] = float(val) if field in ("exp_ratio", "se_ratio") else int(val)
    missing = {"repeats", "kernel", "stride", "out_chs"} - set(args)
    if missing:
        raise ValueError(f"block {text!r}: missing {', '.join(sorted(missing))}")
    return BlockArgs(**args)


# ---- scaling rules ------------------------------------------------------------------------
def make_divisible(v: float, divisor: int = 8, min_value: int | None = None,
                   round_limit: float = 0.9) -> int:
    """Round channels to a multiple of ``divisor`` (the rule of the TF reference, torchvision's
    ``_make_divisible`` and timm's ``make_divisible``): nearest multiple, but never more than
    10% below ``v``."""
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


def scale_stage_depth(repeats: list[int], depth_multiplier: float, rounding: str = "ceil") -> list[int]:
    """The depth multiplier applied to one stage made of several rows (timm's
    ``_scale_stage_depth``): scale the stage's total block count with ceil (or round), then
    hand the blocks out to the rows from the last row backwards, so later rows get any
    rounding surplus. For a stage of one row this is just ceil(n * d) (or round)."""
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


def decode_arch(arch: list[list[str]], depth_multiplier: float = 1.0,
                depth_rounding: str = "ceil", fix_first_last: bool = False) -> list[list[BlockArgs]]:
    """A table (stages of rows of block strings) -> stages of BlockArgs, with depth scaling.
    ``fix_first_last`` leaves the first and last stage unscaled (timm's option)."""
    stages = []
    for i, rows in enumerate(arch):
        blocks = [decode_block(r) for r in rows]
        d = 1.0 if fix_first_last and i in (0, len(arch) - 1) else depth_multiplier
        counts = scale_stage_depth([b.repeats for b in blocks], d, depth_rounding)
        stages.append([replace(b, repeats=n) for b, n in zip(blocks, counts)])
    return stages
