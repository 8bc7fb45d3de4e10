"""The graph: a list of nodes in execution order. Nothing here knows about Numba.

A node is one kernel call: its ``kind`` (a key of ``tinyinfer.engine.ops.OPS``), the names of the
values it reads, its attributes (stride, groups, activation...) and its weights. A node's
output value has the node's name, and a node's weights are named ``{node.name}.{param}``,
exactly the keys of the checkpoint layout the model file chose for its node names (for
the MBConv family: timm's), so weight import is a name-for-name match.

    g = Graph()
    x = g.input                                  # "input": the (N, 3, H, W) image batch
    y = g.add_node("conv_stem", "conv2d", [x], {"out_channels": 32, "kernel": (3, 3), ...},
                   param_shapes={"weight": (32, 3, 3, 3)})
    g.output = y

Shapes are not stored: a graph works at any resolution and batch, and
``ops.infer_shapes(graph, input_shape)`` derives every value's shape when asked.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Node:
    name: str                          # unique; also the checkpoint prefix of its weights
    kind: str                          # which op: a key of ops.OPS
    inputs: list[str]                  # names of the values read ("input" or another node's name)
    attrs: dict = field(default_factory=dict)
    param_shapes: dict[str, tuple] = field(default_factory=dict)   # declared by the builder
    params: dict[str, np.ndarray] = field(default_factory=dict)    # filled by weight loading
    fused: list[str] = field(default_factory=list)   # names of nodes folded into this one
    label: str = ""                    # the paper's name for the layer, for reports
    # what an op derives from params and keeps between runs (a linear's packed weight)
    cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __repr__(self):
        extra = f" +{'+'.join(self.fused)}" if self.fused else ""
        return f"Node({self.name!r}, {self.kind}, in={self.inputs}{extra})"


class Graph:
    INPUT = "input"

    def __init__(self, in_channels: int = 3):
        self.nodes: list[Node] = []
        self.in_channels = in_channels
        self.output: str | None = None
        self._by_name: dict[str, Node] = {}
        # input shape -> this graph with its channel-blocked convs marked (layout.py)
        self.layouts: dict[tuple, "Graph"] = {}

    @property
    def input(self) -> str:
        return self.INPUT

    def add_node(self, name, kind, inputs, attrs=None, param_shapes=None, label="") -> str:
        if name in self._by_name or name == self.INPUT:
            raise ValueError(f"duplicate node name {name!r}")
        for i in inputs:
            if i != self.INPUT and i not in self._by_name:
                raise ValueError(f"node {name!r} reads {i!r}, which no earlier node produces")
        node = Node(name, kind, list(inputs), dict(attrs or {}),
                    {k: tuple(v) for k, v in (param_shapes or {}).items()}, label=label)
        self.nodes.append(node)
        self._by_name[name] = node
        self.output = name
        return name

    def __getitem__(self, name: str) -> Node:
        return self._by_name[name]

    def __iter__(self):
        return iter(self.nodes)

    def __len__(self):
        return len(self.nodes)

    def remove(self, name: str, replace_with: str) -> None:
        """Delete node ``name``; every reader of its output reads ``replace_with`` instead."""
        node = self._by_name.pop(name)
        self.nodes.remove(node)
        for other in self.nodes:
            other.inputs = [replace_with if i == name else i for i in other.inputs]
        if self.output == name:
            self.output = replace_with

    def consumers(self, value: str) -> list[Node]:
        return [n for n in self.nodes if value in n.inputs]

    def expected_params(self) -> dict[str, tuple]:
        """Every weight the graph needs, as checkpoint key -> shape."""
        return {f"{n.name}.{p}": s for n in self.nodes for p, s in n.param_shapes.items()}

    def num_params(self) -> int:
        return int(sum(int(np.prod(s)) for s in self.expected_params().values()))

    def copy(self) -> "Graph":
        g = Graph(self.in_channels)
        for n in self.nodes:
            m = Node(n.name, n.kind, list(n.inputs), dict(n.attrs), dict(n.param_shapes),
                     dict(n.params), list(n.fused), n.label)
            g.nodes.append(m)
            g._by_name[m.name] = m
        g.output = self.output
        return g
