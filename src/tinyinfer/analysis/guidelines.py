"""ShuffleNet V2's guidelines for fast networks, as its paper's experiments, on tinyinfer's
kernels (Ma et al. 2018, ShuffleNet V2: Practical Guidelines for Efficient CNN
Architecture Design, arXiv:1807.11164).

The paper's point: FLOPs are not speed. Two networks of equal FLOPs can differ in memory
access cost (MAC: elements read and written) and in parallelism. Each experiment here holds
the multiply-adds (nearly) fixed, varies one thing, and reports the MAC from tinyinfer's
cost model (``conv2d_cost``, ``activation_cost``, ``add_cost``: elements read + written)
beside the measured time.

    G1  equal channel width minimizes MAC: a stack of 1x1 conv pairs c1 -> c2 -> c1 with
        c1 * c2 fixed. For one bias-free 1x1 conv on an h x w map the cost model gives
        MAC = hw (c1 + c2) + c1 c2, and by the AM-GM inequality, at fixed B = hw c1 c2,
        MAC >= 2 sqrt(hw B) + B / hw, with equality at c1 = c2.
    G2  excessive group convolution increases MAC: 1x1 group convs c -> c with g groups,
        c = C sqrt(g) so that B = hw c^2 / g stays fixed; MAC = hw 2c + c^2 / g grows with g.
    G3  network fragmentation reduces the degree of parallelism: one 1x1 conv per block
        against the same multiply-adds cut into 2 or 4 smaller convs, in series or in
        parallel (the paper's Table 3 and its appendix figure; construction in ``g3``).
    G4  element-wise operations are not negligible: a ResNet bottleneck unit with its ReLUs
        and its shortcut add switched on and off; they cost no multiply-adds but each reads
        and writes a whole tensor.

Each ``g*`` function returns rows (setting, MACs, memory access cost, measured ms): the
fastest of ``runs`` timed runs of the whole stack at batch 1, after one warm-up run.
"""
from __future__ import annotations

import math
import time

import numpy as np

from ..engine.costs import Cost
from ..kernels.activations import activation, activation_cost
from ..kernels.conv import conv2d, conv2d_cost
from ..kernels.tensor_ops import add, add_cost, concat, concat_cost

RATIOS = (1, 2, 6, 12)       # G1's c2 / c1
GROUPS = (1, 2, 4, 8)        # G2's groups
FRAGMENTS = (1, 2, 4)        # G3's convs per block


def pointwise_mac(hw: int, c1: int, c2: int, groups: int = 1) -> int:
    """The paper's memory access cost of one bias-free 1x1 conv, from the cost model:
    input hw c1 + weights c1 c2 / g + output hw c2 (elements)."""
    side = int(math.isqrt(hw))
    cost = conv2d_cost((1, c1, side, side), (c2, c1 // groups, 1, 1), groups=groups,
                       has_bias=False)
    return cost.elems_read + cost.elems_written


def g1_channels(base: int = 128) -> list[tuple[int, int]]:
    """(c1, c2) for each ratio 1:k with c1 c2 ~ base^2: c1 = floor(base / sqrt(k)), c2 = k c1."""
    return [(int(base / math.sqrt(k)), k * int(base / math.sqrt(k))) for k in RATIOS]


def g2_channels(base: int = 128) -> list[tuple[int, int]]:
    """(groups, c) with c^2 / g ~ base^2: c = base sqrt(g), rounded down to a multiple of g."""
    return [(g, int(base * math.sqrt(g) / g) * g) for g in GROUPS]


def g3_structures(base: int = 128) -> list[tuple[str, int, int, int]]:
    """(name, fragments, block width c, each conv's output channels) for G3's five blocks,
    all of about base^2 multiply-adds per pixel (hw base^2 per block):

        1-fragment           one 1x1 conv c -> c, c = base
        k-fragment-series    k 1x1 convs c -> c one after the other, c = floor(base / sqrt k),
                             so that k c^2 ~ base^2 (Table 3's caption: the fragmented
                             blocks' channels are adjusted to the 1-fragment's FLOPs)
        k-fragment-parallel  k 1x1 convs c -> c / k side by side on the same input, their
                             outputs concatenated back to c = base channels (Inception's
                             branches); the 1-fragment's multiply-adds exactly, in k pieces

    The paper's text (Sec. 2, G3; arXiv:1807.11164, not in the seeds) describes blocks of 1 to
    4 1x1 convolutions in sequence or in parallel, each block stacked 10 times, and draws them
    in its appendix; it does not say in words how parallel branches are joined: the concat is
    our choice, as the join that adds no arithmetic."""
    rows = [("1-fragment", 1, base, base)]
    for k in FRAGMENTS[1:]:
        c = int(base / math.sqrt(k))
        rows.append((f"{k}-fragment-series", k, c, c))
    for k in FRAGMENTS[1:]:
        rows.append((f"{k}-fragment-parallel", k, base, base // k))
    return rows


def _best_ms(fn, runs: int) -> float:
    fn()                                  # warm-up (and Numba compilation on first use)
    best = math.inf
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return 1e3 * best


def _weights(rng, cout, cin_g, k=1):
    return (rng.standard_normal((cout, cin_g, k, k)) / math.sqrt(cin_g * k * k)).astype(np.float32)


def g1(base: int = 128, side: int = 56, blocks: int = 10, runs: int = 5, seed: int = 0):
    """G1: ``blocks`` pairs of 1x1 convs c1 -> c2 -> c1 on a side x side map, per ratio."""
    rng = np.random.default_rng(seed)
    rows = []
    for c1, c2 in g1_channels(base):
        x = rng.standard_normal((1, c1, side, side)).astype(np.float32)
        w12, w21 = _weights(rng, c2, c1), _weights(rng, c1, c2)

        def stack():
            y = x
            for _ in range(blocks):
                y = conv2d(conv2d(y, w12), w21)
            return y
        hw = side * side
        macs = blocks * 2 * hw * c1 * c2
        mac = blocks * (pointwise_mac(hw, c1, c2) + pointwise_mac(hw, c2, c1))
        rows.append((f"{c1}:{c2}", macs, mac, _best_ms(stack, runs)))
    return rows


def g2(base: int = 128, side: int = 56, blocks: int = 10, runs: int = 5, seed: int = 0):
    """G2: ``blocks`` 1x1 group convs c -> c with g groups on a side x side map, per g."""
    rng = np.random.default_rng(seed)
    rows = []
    for g, c in g2_channels(base):
        x = rng.standard_normal((1, c, side, side)).astype(np.float32)
        w = _weights(rng, c, c // g)

        def stack():
            y = x
            for _ in range(blocks):
                y = conv2d(y, w, groups=g)
            return y
        hw = side * side
        rows.append((f"g={g}, c={c}", blocks * hw * c * c // g,
                     blocks * pointwise_mac(hw, c, c, g), _best_ms(stack, runs)))
    return rows


def g3(base: int = 128, side: int = 56, blocks: int = 10, runs: int = 5, seed: int = 0):
    """G3: ``blocks`` blocks of each structure of ``g3_structures`` on a side x side map. The
    parallel blocks' MAC includes their concat (it reads and writes the whole output again)."""
    rng = np.random.default_rng(seed)
    hw = side * side
    rows = []
    for name, k, c, cout in g3_structures(base):
        x = rng.standard_normal((1, c, side, side)).astype(np.float32)
        ws = [_weights(rng, cout, c) for _ in range(k)]
        parallel = "parallel" in name
        mac = k * pointwise_mac(hw, c, cout)
        if parallel:
            mac += _mac(concat_cost([(1, cout, side, side)] * k))

        def stack(ws=ws, parallel=parallel):
            y = x
            for _ in range(blocks):
                if parallel:
                    y = concat([conv2d(y, w) for w in ws])
                else:
                    for w in ws:
                        y = conv2d(y, w)
            return y
        rows.append((name, blocks * k * hw * c * cout, blocks * mac, _best_ms(stack, runs)))
    return rows


def _mac(cost: Cost) -> int:
    return cost.elems_read + cost.elems_written


def g4(channels: int = 256, side: int = 56, blocks: int = 10, runs: int = 5, seed: int = 0):
    """G4: ``blocks`` bottleneck units (1x1 c -> c/4, 3x3 c/4 -> c/4, 1x1 c/4 -> c, ReLU after
    each conv, shortcut add), with ReLU and shortcut each on or off. The ReLUs and the add
    run as their own element-wise passes (not fused into the conv) so that each costs what
    the paper measures: a read and a write of the whole tensor."""
    rng = np.random.default_rng(seed)
    mid = channels // 4
    x = rng.standard_normal((1, channels, side, side)).astype(np.float32)
    ws = [_weights(rng, mid, channels), _weights(rng, mid, mid, 3), _weights(rng, channels, mid)]
    pads = (0, 1, 0)
    caches = [{} for _ in ws]   # the 3x3 runs on Winograd: its weight transform made once
    rows = []
    for relu in (True, False):
        for shortcut in (True, False):
            cost = Cost()
            shape_in = x.shape
            for w, p in zip(ws, pads):
                cost += conv2d_cost(shape_in, w.shape, padding=p, has_bias=False)
                shape_in = (1, w.shape[0], side, side)
                if relu:
                    cost += activation_cost(shape_in, "relu")
            if shortcut:
                cost += add_cost(x.shape)

            def stack(relu=relu, shortcut=shortcut):
                y = x
                for _ in range(blocks):
                    z = y
                    for w, p, c in zip(ws, pads, caches):
                        z = conv2d(z, w, padding=p, cache=c)
                        if relu:
                            z = activation(z, "relu")
                    y = add(z, y) if shortcut else z
                return y
            rows.append((f"ReLU {'on' if relu else 'off'}, shortcut "
                         f"{'on' if shortcut else 'off'}", blocks * cost.macs,
                         blocks * (cost.elems_read + cost.elems_written), _best_ms(stack, runs)))
    return rows
