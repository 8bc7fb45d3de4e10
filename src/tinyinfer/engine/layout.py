"""Which activations run channel-blocked (kernels/blocked_layout.py), decided per input shape.

The plan (passes.optimize) is NCHW everywhere. For a given input shape, ``for_shape``
returns the plan with some nodes marked to run on the blocked layout: the convs its kernels
run (pointwise, depthwise, and dense ones whose im2col panel fits in cache: MAX_PANEL), the
squeeze-excite between them (EfficientNet, MobileNetV3), residual adds (GhostNet), max
pools, concats, channel slices and shuffles that hand their output to blocked nodes
(SqueezeNet, GoogLeNet, ShuffleNetV2), and a global pool that ends a run. A run of such
nodes passes its activations blocked from one to the next; the first converts its NCHW
input, and a node whose output some other kind of node reads converts it back (the pool
writes NCHW itself). So every value any other node sees is NCHW, and a marked node's attrs
say what it does (ops_blocked.py runs it):

    attrs["blocked"]       True: runs on blocked values (inputs arrive blocked, or NCHW
                           and are converted)
    attrs["blocked_out"]   True: its output stays blocked (every reader runs blocked)
    attrs["channels"]      the pool: its input's channels, without the block padding; a max
                           pool, concat, slice, shuffle or add: its output's
    attrs["tables"]        a concat, slice or shuffle: its scatter tables (_plan_moves), and
    attrs["join"]          True where it simply joins whole blocks; attrs["folded"]: folded
                           into its reader (it does nothing; the reader reads its inputs)
    attrs["then_dw"]       a 1x1 expansion: the depthwise node it runs with, in one kernel
                           (_fuse_expansions); that node's attrs["fused"]: it passes its
                           input on

Decided per shape because the graph stores none (graph.py), and so that a limit on the map
size (MAX_PIXELS) can be measured per shape. ``for_shape`` keeps one marked copy per input
shape (the copies share the plan's weights and derived-weight caches).

Rule, measured on the 2-core AMD EPYC Zen 4 (AVX-512), 2 threads, ms. First (2026-12-03,
one call per 8-pixel depthwise tile) the blocked kernels won only on small maps, NCHW
kernel / blocked kernel at batch 1:
  pointwise @14x14: 192->64 1.88, 64->384 1.76, 384->64 2.04, 384->96 1.62;
            @7x7: 576->160 1.77, 160->960 1.86, 960->160 1.46, 960->320 1.93, 320->1280 1.64;
            @28x28: 144->32 1.79, 32->192 1.29
  depthwise @14x14: 384 3x3 2.08, 480 5x5 2.67, 576 3x3 s2 (-> 7x7) 5.7, 672 5x5 s2 5.3;
            @7x7: 960 3x3 4.1, 1152 5x5 4.8; @28x28 192 3x3 1.25; @56x56 0.74 (s2: 1.85),
            @112x112 0.68 (s2: 1.45)
so the blocked runs stopped at 14x14 output pixels (28x28 at batch 1). With one call per
output row (conv_blocked_dw.py) the depthwise wins at every size (@112x112 1.2-1.3, s2 1.7-
2.4; @56x56 1.5-1.6, s2 2.5-2.9), the pointwise loses some at 56x56 and 112x112 (0.72-1.09:
16-24 channel layers pad to 32), the stem runs on the blocked dense path (MobileNetV2's
0.67 -> 0.33 ms), and whole networks gain with no limit (2026-12-03, later; one
process, 784-pixel limit / none: batch 1 MobileNetV2 6.52 / 5.97, EfficientNet-B0 9.85 /
9.44, MnasNet 7.01 / 6.59, MobileNetV3-L 6.45 / 6.14, MobileNetV1 8.12 / 7.58, FBNet-C
8.19 / 7.69, ProxylessNAS 7.12 / 6.59; batch 8 (196-pixel limit / none) MobileNetV2 58.0 /
49.1, EfficientNet-B0 69.6 / 65.6, MnasNet 43.6 / 38.2, MobileNetV3-L 44.9 / 36.4,
MobileNetV1 78.9 / 64.8, tf_EfficientNet-B0 91.2 / 77.1). Hence MAX_PIXELS: no limit (a knob
for such comparisons).
"""
from __future__ import annotations

import copy
import math

import numba
import numpy as np

from ..kernels import blocked_layout as BL
from ..kernels import conv_blocked as CBK
from ..kernels import conv_blocked_fused as CF
from .graph import Graph
from .ops import conv_geometry, infer_shapes

MAX_PIXELS = math.inf       # output pixels per image of a blocked node (see above)
# A dense conv (groups 1, not 1x1 stride 1) runs blocked on an im2col panel of Cin*KH*KW
# taps x output pixels floats per image, only up to MAX_PANEL floats (2 MB: about the two
# cores' L2), so the pointwise kernel reads the panel from cache. Measured 2026-12-03 (Zen 4,
# batch 1, ms NCHW kernels / blocked, summed over a network's layers of one shape):
# ResNet-18's 3x3 convs @7x7 (225k floats) 6.0 / 3.8, stride 2 -> 28x28 (451k) 0.95 / 0.71,
# @14x14 (451k) 3.3 / 3.8 (ResNet-50's 6.4 / 8.2, GoogLeNet's 4.1 / 3.7), MobileNetV2's
# stem (338k) 0.67 / 0.28; but @28x28 (903k) 3.2 / 4.3, @56x56 (1.8M) 4.2 / 6.5, ResNet's
# 7x7 stem (1.8M) 2.3 / 3.0.
MAX_PANEL = 2 ** 19
# ... and, on batches of MAX_DENSE_TAPS_FROM_BATCH images or more, only with at most this
# many taps (Cin*KH*KW): ResNet's 3x3 convs of 256 and 512 channels (2304, 4608 taps) lose
# blocked at batch 8 (ResNet-50, ms NCHW / blocked, summed: @14x14 55.5 / 104.7, @7x7 20.1
# / 34.6; whole networks, one process, this limit / none: ResNet-50 1.04, ResNet-18 1.06;
# batch 4: 0.90 and 1.09), while GoogLeNet's (at most 192 x 9 = 1728) and SqueezeNet's
# (576) win. On 1-2 images the whole networks win without it (2026-12-03, later, Zen 4,
# limit / none: batch 1 ResNet-50 0.82-0.84, ResNet-18 0.88-0.96; batch 2 0.87, 0.89),
# though 256 @14 alone had lost at batch 1 (above): with the limit, the runs broke at every
# such conv and the conversion rule below left ResNet-50 all NCHW; without it, ResNet-50
# runs blocked from its max pool on (node times, ms: stage 3 19.7 -> 15.6, stage 4 13.7 ->
# 8.7) and ResNet-18 from stage 3 (stage 4 7.2 -> 4.5, stage 3 equal).
MAX_DENSE_TAPS = 2048
MAX_DENSE_TAPS_FROM_BATCH = 4
# A run of blocked convs pays one layout conversion per NCHW value it reads and per output
# it hands to another kind of node; it is kept only with this many values passed blocked
# per conversion. Measured 2026-12-03 (Zen 4, batch 8, ms NCHW / blocked with no such
# rule): MobileNetV2 93.0 / 72.6 (32 values blocked, 2 conversions), but ShuffleNetV2
# 35.0 / 43.5 (each branch's 3 convs: 2 values, 2 conversions), EfficientNet-B0 98.5 /
# 106.9 (SE reads the depthwise output: 2 conversions per block), GhostNet 79.1 / 90.2.
MIN_STORED_PER_CONVERSION = 2


# Kinds that read a blocked value but write NCHW themselves (no conversion back).
READ_ONLY = {"global_avgpool"}
# Kinds that only move values: no arithmetic of their own to speed up (ops_blocked.py)
PASS_ON = {"concat", "max_pool2d", "slice", "channel_shuffle"}
# Kinds with arithmetic on each element alone: the same kernel on blocked values (their
# padding lanes hold act(0) or such: finite, and never read as channels). A residual add
# GhostNet's blocks end with (after a concat, so not fused into a conv) broke its blocked
# runs at every block. One process, per call paired, NCHW adds / blocked (2026-12-03, Zen
# 4): batch 1 GhostNet 0.93 (55 -> 112 of 134 nodes blocked), MixNet-S 0.94; batch 8
# GhostNet 1.00, MixNet-S 0.95; networks without such adds unchanged.
ELEMENTWISE = {"add"}
# A slice, shuffle or concat of partial blocks moves channels a lane at a time
# (blocked_layout.move_channels; a concat of whole blocks joins them): only on maps of this
# many pixels at most. Measured 2026-12-03 (Zen 4, batch 1): GhostNet, whose concats of
# 8 + 8 ... 24 + 24 channels at 112x112 and 56x56 then ran blocked, 8.5 -> 11.7 ms (concats
# 0.9 -> 4.0 ms); ShuffleNetV2 (28x28 and below) 5.5 -> 4.9.
MAX_GATHER_PIXELS = 28 * 28


def _eligible(node, shapes) -> bool:
    out = shapes[node.name]
    if node.kind in READ_ONLY:            # the pool after a blocked run
        inp = shapes[node.inputs[0]]
        return inp[2] * inp[3] <= MAX_PIXELS
    if node.kind == "se" or node.kind == "max_pool2d":
        return out[2] * out[3] <= MAX_PIXELS
    if node.kind in ELEMENTWISE:          # on maps (4-D), not on tokens
        return len(out) == 4 and out[2] * out[3] <= MAX_PIXELS
    if node.kind in PASS_ON:               # moving lanes (a scatter) only on small maps
        joins = node.kind == "concat" and all(shapes[v][1] % BL.CB == 0 for v in node.inputs)
        return out[2] * out[3] <= (MAX_PIXELS if joins else min(MAX_PIXELS, MAX_GATHER_PIXELS))
    if node.kind != "conv2d":
        return False
    a = node.attrs
    w = node.param_shapes["weight"]
    if (a["groups"] == 1 and (w[2:], a["stride"]) != ((1, 1), (1, 1))
            and (w[1] * w[2] * w[3] * out[2] * out[3] > MAX_PANEL
                 or (w[1] * w[2] * w[3] > MAX_DENSE_TAPS
                     and out[0] >= MAX_DENSE_TAPS_FROM_BATCH))):
        return False
    _, padding, _ = conv_geometry(node, shapes[node.inputs[0]])   # TF "same": this shape
    return (out[2] * out[3] <= MAX_PIXELS
            and CBK.supports(w, a["groups"], a["stride"], padding, a["dilation"]))


def assign(graph: Graph, input_shape) -> tuple[set, set]:
    """(names of the convs that run blocked, names of the values stored blocked)."""
    shapes = infer_shapes(graph, input_shape)
    run = {n.name for n in graph if _eligible(n, shapes)}
    readers: dict[str, list] = {}
    for n in graph:
        for v in n.inputs:
            readers.setdefault(v, []).append(n.name)
    # a concat, slice, shuffle or max pool runs blocked only to hand its output on blocked:
    # it has no arithmetic to gain, and a conversion back to NCHW would only move one
    run -= {n.name for n in graph if n.kind in PASS_ON
            and not all(r in run for r in readers.get(n.name, ()))}
    while True:
        stored = {v for v in run if v != graph.output and graph[v].kind not in READ_ONLY
                  and all(r in run for r in readers.get(v, ()))}
        keep = set()
        for comp in _components(graph, run, stored):
            conversions = sum(v not in stored for c in comp for v in graph[c].inputs) + \
                sum(c not in stored and graph[c].kind not in READ_ONLY for c in comp)
            if sum(c in stored for c in comp) >= MIN_STORED_PER_CONVERSION * conversions:
                keep |= comp
        if keep == run:
            return run, stored
        run = keep


def _components(graph: Graph, run: set, stored: set) -> list[set]:
    """The blocked convs grouped by the blocked values that connect them."""
    parent = {c: c for c in run}

    def root(c):
        while parent[c] != c:
            c = parent[c]
        return c
    for c in run:
        for v in graph[c].inputs:
            if v in stored:
                parent[root(c)] = root(v)
    groups: dict[str, set] = {}
    for c in run:
        groups.setdefault(root(c), set()).add(c)
    return list(groups.values())


def has_run(graph: Graph, input_shape) -> bool:
    """True once ``graph`` has a layout for this input shape (it ran, so the shape is valid)."""
    shape = tuple(int(d) for d in input_shape)
    return shape + (True,) in graph.layouts or shape + (False,) in graph.layouts


def for_shape(graph: Graph, input_shape, fuse: bool = True) -> Graph:
    """``graph`` with its blocked convs marked for this input shape (cached per shape), and
    with expansions fused into their depthwise readers unless not ``fuse``."""
    key = tuple(int(d) for d in input_shape) + (bool(fuse),)
    cached = graph.layouts.get(key)
    if cached is not None:
        return cached
    run, stored = assign(graph, key[:-1])
    shapes = infer_shapes(graph, key[:-1]) if run else {}
    if not run:
        marked = graph
    else:
        marked = Graph(graph.in_channels)
        for n in graph:
            m = copy.copy(n)                # shares params, cache, inputs
            if n.name in run:
                m.attrs = dict(n.attrs, blocked=True, blocked_out=n.name in stored)
                if n.kind in READ_ONLY:     # the channels past C in its blocked input
                    m.attrs["channels"] = shapes[n.inputs[0]][1]
                elif n.kind in PASS_ON or n.kind in ELEMENTWISE:    # for a conversion to NCHW
                    m.attrs["channels"] = shapes[n.name][1]
            marked.nodes.append(m)
            marked._by_name[m.name] = m
        marked.output = graph.output
        _plan_moves(marked, shapes)
        _join_in_place(marked, shapes)
        if fuse:
            _fuse_expansions(marked, shapes)
    graph.layouts[key] = marked
    return marked


def _fuse_expansions(marked: Graph, shapes) -> None:
    """Run each blocked 1x1 expansion whose only reader is a blocked depthwise conv as one
    kernel with it (kernels/conv_blocked_fused.py), where the pair makes enough tasks for
    the threads: the expansion gets attrs["then_dw"] (the depthwise node) and its reader's
    blocked_out, the depthwise conv attrs["fused"] (it passes its input on). Neither may
    add a residual."""
    readers: dict[str, list] = {}
    for n in marked:
        for v in n.inputs:
            readers.setdefault(v, []).append(n.name)
    threads = numba.get_num_threads()
    for n in marked:
        r = readers.get(n.name, [])
        if not (_blocked_conv(n) and len(n.inputs) == 1 and len(r) == 1 and
                n.name != marked.output and n.param_shapes["weight"][2:] == (1, 1) and
                n.attrs["stride"] == (1, 1) and n.attrs["groups"] == 1):
            continue
        d = marked[r[0]]
        if not (_blocked_conv(d) and d.inputs == [n.name]):
            continue
        w = d.param_shapes["weight"]
        if w[1] == 1 and d.attrs["groups"] == w[0] and \
                CF.fuses(shapes[n.name][0], shapes[n.name][1], threads):
            n.attrs.update(then_dw=d, blocked_out=d.attrs["blocked_out"])
            d.attrs["fused"] = True


def _join_in_place(marked: Graph, shapes) -> None:
    """A join of whole blocks whose inputs are all blocked 1x1 or dense convs read by it
    alone (SqueezeNet's fire modules, GoogLeNet's inception blocks) costs a copy of its
    output: instead each conv writes its blocks into the concat's output. In graph order,
    the first conv makes that output; each next one reads it as a second input (so it runs
    after, and the runtime frees nothing early) and returns it; the concat returns the last
    one's. Each conv gets attrs["into"] = (its first block, the output's blocks), the concat
    attrs["joined"]. Measured 2026-12-03 (Zen 4): SqueezeNet's concats 0.57 of 5.43 ms at
    batch 1, 2.8 of 52.6 at batch 8 (node sums)."""
    readers: dict[str, list] = {}
    for n in marked:
        for v in n.inputs:
            readers.setdefault(v, []).append(n.name)
    order = {n.name: i for i, n in enumerate(marked)}

    def joinable(v, concat):
        p = marked[v] if v in order else None
        return (p is not None and _blocked_conv(p) and p.attrs["blocked_out"] and
                p.attrs["groups"] == 1 and len(p.inputs) == 1 and v != marked.output and
                readers[v] == [concat] and p.inputs[0] in order and
                marked[p.inputs[0]].attrs.get("blocked_out", False) and
                "then_dw" not in p.attrs)
    for n in marked:
        if not (n.kind == "concat" and n.attrs.get("join") and not n.attrs.get("folded")
                and len(set(n.inputs)) == len(n.inputs)
                and all(joinable(v, n.name) for v in n.inputs)):
            continue
        offs = np.cumsum([0] + [shapes[v][1] // BL.CB for v in n.inputs])
        chain = sorted(n.inputs, key=order.get)
        for k, v in enumerate(chain):
            p = marked[v]
            p.attrs = dict(p.attrs, into=(int(offs[n.inputs.index(v)]), int(offs[-1])))
            p.inputs = p.inputs + chain[k - 1:k]
        n.inputs = [chain[-1]]
        n.attrs["joined"] = True


def _blocked_conv(n) -> bool:
    return n.kind == "conv2d" and n.attrs.get("blocked", False)


MOVES = {"concat", "slice", "channel_shuffle"}


def _own_maps(n, shapes) -> list:
    """A blocked concat / slice / shuffle as (input, dst_of) pairs: input channel s goes to
    output channel dst_of[s] (-1: nowhere), as blocked_layout.scatter_table takes them."""
    cs = [shapes[v][1] for v in n.inputs]
    if n.kind == "concat":
        starts = np.cumsum([0] + cs[:-1])
        return [(v, o + np.arange(c)) for v, o, c in zip(n.inputs, starts, cs)]
    s = np.arange(cs[0])
    if n.kind == "slice":
        a, b = n.attrs["start"], n.attrs["stop"]
        return [(n.inputs[0], np.where((s >= a) & (s < b), s - a, -1))]
    per = cs[0] // n.attrs["groups"]      # tensor_ops.channel_shuffle: out[c] = in[src(c)]
    return [(n.inputs[0], s % per * n.attrs["groups"] + s // per)]


def _plan_moves(marked: Graph, shapes) -> None:
    """Give every blocked concat / slice / shuffle its scatter tables, folding a move whose
    only reader is another blocked move into that reader (ShuffleNetV2's slice -> concat ->
    shuffle becomes one scatter from the slice's input and the branch: the first two nodes
    then do nothing). Joins of whole blocks in order keep np.concatenate."""
    readers: dict[str, list] = {}
    for n in marked:
        for v in n.inputs:
            readers.setdefault(v, []).append(n.name)
    maps = {}
    for n in marked:
        if n.kind not in MOVES or not n.attrs.get("blocked"):
            continue
        srcs = []
        for v, dst_of in _own_maps(n, shapes):
            p = marked[v] if v in maps else None
            if p is None or readers[v] != [n.name] or v == marked.output:
                srcs.append((v, dst_of))
                continue
            for u, inner in maps.pop(v):             # u's channel -> v's -> n's
                composed = np.where(inner >= 0, dst_of[np.maximum(inner, 0)], -1)
                if (composed >= 0).any():
                    srcs.append((u, composed))
            p.attrs["folded"] = True
            p.inputs = []
        maps[n.name] = srcs
    for name, srcs in maps.items():
        n = marked[name]
        n.inputs = [u for u, _ in srcs]
        covered = np.concatenate([d[d >= 0] for _, d in srcs])
        assert np.array_equal(np.sort(covered), np.arange(shapes[name][1])), name
        starts = np.cumsum([0] + [shapes[u][1] for u, _ in srcs[:-1]])
        n.attrs["join"] = n.kind == "concat" and all(
            shapes[u][1] % BL.CB == 0 and np.array_equal(d, o + np.arange(len(d)))
            for (u, d), o in zip(srcs, starts))
        n.attrs["tables"] = [BL.scatter_table(d, shapes[u]) for u, d in srcs]
