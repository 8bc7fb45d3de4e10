"""Which activations run channel-blocked (kernels/conv_blocked.py), decided per input shape.

The plan (passes.optimize) is NCHW everywhere. For a given input shape, ``for_shape``
returns the plan with some conv nodes marked to run on the blocked layout, where it
measured faster: pointwise and depthwise convs on small maps (MobileNetV2's 14x14 and 7x7
stages), where an NCHW row of 7 or 14 pixels is too short to vectorize, and the
squeeze-excite between them (EfficientNet, MobileNetV3). A run of such nodes passes its
activations blocked from one to the next; the first converts its NCHW input, and a node
whose output some other kind of node reads converts it back. So every value any other node
sees is NCHW, and a conv or se node's attrs say what it does:

    attrs["blocked"]       True: runs conv_blocked.conv2d_blocked / se.squeeze_excite_blocked
                           (inputs arrive blocked, or NCHW and are converted)
    attrs["blocked_out"]   True: its output stays blocked (every reader runs blocked)

Decided per shape because the graph stores none (graph.py): the same network at 224 and
at 512 pixels blocks different stages. ``for_shape`` keeps one marked copy per input shape
(the copies share the plan's weights and derived-weight caches).

Rule, measured 2026-12-03 on the 2-core AMD EPYC Zen 4 (AVX-512), 2 threads, batch 1,
ms NCHW kernel / blocked kernel (layers of MobileNetV2 / EfficientNet at 224):
  pointwise @14x14: 192->64 1.88, 64->384 1.76, 384->64 2.04, 384->96 1.62;
            @7x7: 576->160 1.77, 160->960 1.86, 960->160 1.46, 960->320 1.93, 320->1280 1.64;
            @28x28: 144->32 1.79, 32->192 1.29
  depthwise @14x14: 384 3x3 2.08, 480 5x5 2.67, 576 3x3 s2 (-> 7x7) 5.7, 672 5x5 s2 5.3;
            @7x7: 960 3x3 4.1, 1152 5x5 4.8; @28x28 192 3x3 1.25; @56x56 0.74 (s2: 1.85),
            @112x112 0.68 (s2: 1.45)
Whole networks (one process, ms, blocked up to 14x14 / up to 28x28 output pixels): batch 1
MobileNetV2 7.11 / 6.85, EfficientNet-B0 10.1 / 9.7, MnasNet 6.95 / 7.27, ShuffleNetV2 5.94
/ 6.19; batch 8 MobileNetV2 59.1 / 64.7, EfficientNet-B0 83.3 / 75.7, MnasNet 47.5 / 45.1,
MobileNetV3-L 40.3 / 40.2 (NCHW everywhere: 9.40, 12.6, 9.91, 6.39; 71.8, 91.0, 62.0, 51.2).
After the depthwise kernel's constant pixel offsets (same comparison, one process, 14x14 /
28x28): batch 1 MobileNetV2 8.13 / 7.51, EfficientNet-B0 11.3 / 10.4, MnasNet 7.60 / 7.30,
MobileNetV3-L 6.92 / 6.62; batch 8 MobileNetV2 62.9 / 68.7, EfficientNet-B0 84.4 / 87.2,
MnasNet 53.4 / 49.6. Hence: blocked when the conv's output map has at most MAX_PIXELS
pixels, MAX_PIXELS_ONE_IMAGE for a single image.
"""
from __future__ import annotations

import copy

from ..kernels import conv_blocked as CBK
from .graph import Graph
from .ops import conv_geometry, infer_shapes

MAX_PIXELS = 196            # output pixels per image: 14x14
MAX_PIXELS_ONE_IMAGE = 784  # at batch 1: 28x28 (measured below, after the depthwise change)
# A run of blocked convs pays one layout conversion per NCHW value it reads and per output
# it hands to another kind of node; it is kept only with this many values passed blocked
# per conversion. Measured 2026-12-03 (Zen 4, batch 8, ms NCHW / blocked with no such
# rule): MobileNetV2 93.0 / 72.6 (32 values blocked, 2 conversions), but ShuffleNetV2
# 35.0 / 43.5 (each branch's 3 convs: 2 values, 2 conversions), EfficientNet-B0 98.5 /
# 106.9 (SE reads the depthwise output: 2 conversions per block), GhostNet 79.1 / 90.2.
MIN_STORED_PER_CONVERSION = 2


def _eligible(node, shapes) -> bool:
    out = shapes[node.name]
    limit = MAX_PIXELS_ONE_IMAGE if out[0] == 1 else MAX_PIXELS
    if node.kind == "se":                  # a squeeze-excite between blocked convs
        return out[2] * out[3] <= limit
    if node.kind != "conv2d":
        return False
    a = node.attrs
    _, padding, _ = conv_geometry(node, shapes[node.inputs[0]])   # TF "same": this shape
    return (out[2] * out[3] <= limit
            and CBK.supports(node.param_shapes["weight"], a["groups"], a["stride"], padding,
                             a["dilation"]))


def assign(graph: Graph, input_shape) -> tuple[set, set]:
    """(names of the convs that run blocked, names of the values stored blocked)."""
    shapes = infer_shapes(graph, input_shape)
    run = {n.name for n in graph if _eligible(n, shapes)}
    readers: dict[str, list] = {}
    for n in graph:
        for v in n.inputs:
            readers.setdefault(v, []).append(n.name)
    while True:
        stored = {v for v in run if v != graph.output
                  and all(r in run for r in readers.get(v, ()))}
        keep = set()
        for comp in _components(graph, run, stored):
            conversions = sum(v not in stored for c in comp for v in graph[c].inputs) + \
                sum(c not in stored for c in comp)
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


def for_shape(graph: Graph, input_shape) -> Graph:
    """``graph`` with its blocked convs marked for this input shape (cached per shape)."""
    key = tuple(int(d) for d in input_shape)
    cached = graph.layouts.get(key)
    if cached is not None:
        return cached
    run, stored = assign(graph, key)
    if not run:
        marked = graph
    else:
        marked = Graph(graph.in_channels)
        for n in graph:
            m = copy.copy(n)                # shares params, cache, inputs
            if n.name in run:
                m.attrs = dict(n.attrs, blocked=True, blocked_out=n.name in stored)
            marked.nodes.append(m)
            marked._by_name[m.name] = m
        marked.output = graph.output
    graph.layouts[key] = marked
    return marked
