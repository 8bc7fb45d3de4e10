"""Activation memory: which tensors must exist at the same time while a network runs.

Two questions, two functions. Weights are not counted in either (they are the params).

``liveness(graph, input_shape)`` -- what tinyinfer really holds. The executor
(runtime.execute) walks the nodes in order and frees each value right after its last
reader (runtime.last_uses). While node i runs, the live values are those produced before i
and still to be read at i or later, plus i's own output. Summing their bytes per node gives
a memory curve; its maximum is the peak activation memory. A channel slice or a flatten is
a view: it costs nothing itself but keeps the array it views alive. (Each op kind's record
in ops.py says which of its memory roles, VIEW, PER_CHANNEL, MIXES, POOL or WHOLE, a node
has; this module asks nothing else about kinds.)

``materialized(graph, input_shape)`` -- the MobileNetV2 paper's Table 3: "the max number of
channels/memory that needs to be materialized at each spatial resolution". Its Section 5
observes that a bottleneck block  1x1 conv -> depthwise conv -> 1x1 conv  never needs its
wide inner tensor whole: split the expansion conv's output channels into slices, push each
slice through the per-channel depthwise conv, and accumulate the projection conv's output
slice by slice. Only the block's input and output are ever whole. ``streaming=True``
applies that trick wherever the graph allows it (see ``streamed_values``); it also covers
"the trick for the first layer" (the stem conv feeding the first depthwise conv) and the
head conv feeding the global pool. With ``streaming=False`` every tensor is materialized.

How this compares with the paper's Table 3 (16-bit floats, K = 1000 bytes):
* MobileNetV1 (no bottlenecks, the trick changes nothing): 64/1606K at 112x112, 128/803K,
  256/401K, 512/201K, 1024/2K at 1x1, max 1606K: the paper's 64/1600, 128/800, 256/400,
  512/200, 1024/2 and max 1600K, rounded. At 7x7 we get 1024/100K where the paper prints
  199: that is two 1024x7x7 tensors (the last 1x1 conv's input and output); the paper's
  other rows count one tensor, so we keep one (and the max is unaffected).
* MobileNetV2 with streaming: 16/401K at 112x112, 320/31K at 7x7, 1280/2.6K at 1x1, max
  401K: the paper's 16/400, 320/32, 1280/2 and max 400K. At 56, 28 and 14 the paper lists
  32, 64 and 160 channels, the widths of the stage that *leaves* each resolution (e.g. the
  stride-2 block 56x56x24 -> 28x28x32), times the area of the resolution it leaves; the
  tensors that exist at 56x56 have 24 channels (151K), at 28x28 32 (50K), at 14x14 96 (38K).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..engine.costs import numel
from ..engine.graph import Graph
from ..engine.ops import MIXES, PER_CHANNEL, POOL, VIEW, infer_shapes, memory_role
from ..engine.runtime import last_uses


@dataclass
class Liveness:
    names: list[str]                   # node names, execution order
    live_bytes: list[int]              # activation bytes live while each node runs
    working_set: list[int]             # each node's own inputs + output, in bytes
    itemsize: int

    @property
    def peak(self) -> int:
        return max(self.live_bytes)

    @property
    def peak_at(self) -> str:
        return self.names[self.live_bytes.index(self.peak)]


def _root(graph: Graph, value: str) -> str:
    """The value whose buffer ``value`` lives in (itself unless it is a view)."""
    while value != graph.INPUT and memory_role(graph[value]) == VIEW:
        value = graph[value].inputs[0]
    return value


def liveness(graph: Graph, input_shape, itemsize: int = 4) -> Liveness:
    shapes = infer_shapes(graph, input_shape)
    last = last_uses(graph)
    order = {graph.INPUT: -1, **{n.name: i for i, n in enumerate(graph)}}
    end = {}                           # buffer -> index of the last node that needs it
    for value in shapes:
        root = _root(graph, value)
        until = len(graph) if value == graph.output else last.get(value, order[value])
        end[root] = max(end.get(root, -1), until)
    buffers = [(order[r], end[r], numel(shapes[r]) * itemsize) for r in end]
    names, live, work = [], [], []
    for i, node in enumerate(graph):
        names.append(node.name)
        live.append(sum(b for start, stop, b in buffers if start <= i <= stop))
        mine = set(node.inputs) | {node.name}
        work.append(0 if memory_role(node) == VIEW
                    else sum(numel(shapes[v]) * itemsize for v in mine))
    return Liveness(names, live, work, itemsize)


# ---- the MobileNetV2 paper's materialized tensors -------------------------------------------
def streamed_values(graph: Graph) -> set[str]:
    """Values that never need to exist whole (MobileNetV2 Section 5, generalized).

    A value is streamed, computed and consumed one channel slice at a time, when
    * its producer can emit channel slices: a per-channel op (depthwise conv, BN,
      activation), or a channel-mixing conv whose inputs are all whole (each output slice
      needs every input channel), and
    * every reader takes it slice by slice: a per-channel op, a channel-mixing conv
      accumulating over input slices (not as a residual), or a pool reducing each channel.
    Everything else (block inputs and outputs, anything read by an add, concat or
    squeeze-excite, whose gate needs every channel's mean first) is materialized. Pool
    outputs are materialized too: that is where the paper's chains end.
    """
    streamed: set[str] = set()
    for node in graph:
        if node.name == graph.output:
            continue
        role = memory_role(node)
        if not (role == PER_CHANNEL or (role == MIXES and not streamed & set(node.inputs))):
            continue
        readers = graph.consumers(node.name)
        if readers and all(_reads_slices(r, node.name) for r in readers):
            streamed.add(node.name)
    return streamed


def _reads_slices(reader, value: str) -> bool:
    """Can ``reader`` take ``value`` one channel slice at a time?"""
    role = memory_role(reader)
    return role in (PER_CHANNEL, POOL) or (
        role == MIXES and reader.inputs[0] == value and value not in reader.inputs[1:])


def _size_and_channels(shape) -> tuple[tuple[int, int], int]:
    """((H, W), C) of a value: NCHW maps as they are, vectors (N, C) as 1x1, and tokens
    (N, T, C) as a T x 1 map of C channels."""
    if len(shape) == 4:
        return tuple(shape[2:4]), shape[1]
    if len(shape) == 3:
        return (shape[1], 1), shape[2]
    return (1, 1), shape[1]


@dataclass
class ResolutionRow:
    size: tuple[int, int]              # (H, W); vectors (N, C) 1x1, tokens (N, T, C) T x 1
    channels: int                      # widest materialized tensor at this size
    bytes: int                         # its size, batch included
    value: str                         # which value it is


def materialized(graph: Graph, input_shape, itemsize: int = 2,
                 streaming: bool = True) -> list[ResolutionRow]:
    """Per spatial resolution (largest first, the network input excluded), the widest
    tensor that must exist whole. itemsize 2: the paper assumes 16-bit floats."""
    shapes = infer_shapes(graph, input_shape)
    skip = streamed_values(graph) if streaming else set()
    best: dict[tuple, ResolutionRow] = {}
    for node in graph:
        if node.name in skip or memory_role(node) == VIEW:
            continue
        shape = shapes[node.name]
        size, channels = _size_and_channels(shape)
        b = numel(shape) * itemsize
        if size not in best or b > best[size].bytes:
            best[size] = ResolutionRow(size, channels, b, node.name)
    return sorted(best.values(), key=lambda r: -r.size[0] * r.size[1])
