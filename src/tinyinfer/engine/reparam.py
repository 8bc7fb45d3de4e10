"""Structural re-parameterization (RepVGG, MobileOne), a load-time rewrite like BN folding.

A re-parameterizable block is trained as a SUM of parallel branches over one input x:

    y = conv_k(x) + ... + conv_k(x)      (k x k convs, each followed by BN)
      + conv_1(x)                        (a 1x1 "scale" branch with BN)
      + BN(x)                            (an identity branch: BN alone)

Convolution is linear and every branch reads the same x, so once BN is folded (each branch
is then conv + bias) the sum is ONE conv: the k x k weights add up, the 1x1 weight adds into
the centre tap, and BN(x) is a conv whose kernel is the per-channel BN scale on the centre
tap of its own channel (plus BN's shift as bias). The result is exact up to float rounding,
and it is what the papers count: MobileOne's published Mult-Adds are the folded network's.

``reparameterize(graph)`` runs after ``passes.fold_batchnorm`` (so conv branches carry their
BN as a bias and the identity branch is a standalone batchnorm node) and before the epilogue
fusions (which would otherwise fuse one branch into the add). It finds every tree of
``add`` nodes whose leaves are such branches over one value and replaces it by the branch
with the largest kernel, now holding the summed weights; that node records the other
branches and the adds in ``node.fused`` (in graph order), as BN folding does.
"""
from __future__ import annotations

import numpy as np

from .graph import Graph


def _sole_reader(graph: Graph, value: str):
    readers = graph.consumers(value)
    return readers[0] if len(readers) == 1 and value != graph.output else None


def _is_inner_add(graph: Graph, node) -> bool:
    """An add with no activation, read only by another such add: part of a larger sum."""
    reader = _sole_reader(graph, node.name)
    return node.kind == "add" and node.attrs.get("act", 0) == 0 and reader is not None \
        and reader.kind == "add" and reader.attrs.get("act", 0) == 0


def _sum_tree(graph: Graph, root):
    """(adds, leaves) of the add tree under ``root``: its inner adds are those read only by
    the tree; every other input is a leaf."""
    adds, leaves, todo = [root], [], list(root.inputs)
    while todo:
        value = todo.pop(0)
        node = graph[value] if value != graph.INPUT else None
        if node is not None and _is_inner_add(graph, node) and value not in leaves:
            adds.append(node)
            todo.extend(node.inputs)
        else:
            leaves.append(value)
    position = {n.name: i for i, n in enumerate(graph)}     # the graph's order, not the tree's
    return sorted(adds, key=lambda n: position[n.name]), \
        sorted(leaves, key=lambda v: position.get(v, -1))


def _branches(graph: Graph, leaves: list[str]):
    """The leaves as (convs, identity BNs) over one common input, or None if they are not
    re-parameterizable branches: each a conv (no activation, no fused residual) or a
    standalone BN, each read only by the sum, all reading the same value, convs with the same
    stride, groups and output channels, odd kernels padded to keep the centre aligned."""
    if len(set(leaves)) != len(leaves) or graph.INPUT in leaves:
        return None
    nodes = [graph[v] for v in leaves]
    if any(len(n.inputs) != 1 or _sole_reader(graph, n.name) is None for n in nodes):
        return None
    if len({n.inputs[0] for n in nodes}) != 1:
        return None
    convs = [n for n in nodes if n.kind == "conv2d"]
    idents = [n for n in nodes if n.kind == "batchnorm"]
    if not convs or len(convs) + len(idents) != len(nodes):
        return None
    first = convs[0]
    for c in convs:
        k = c.param_shapes["weight"][2]
        if c.attrs.get("act", 0) != 0 or c.attrs["padding"] == "same" \
                or c.attrs["dilation"] != (1, 1) or c.param_shapes["weight"][2:] != (k, k) \
                or k % 2 == 0 or c.attrs["padding"] != (k // 2,) * 4 \
                or c.attrs["stride"] != first.attrs["stride"] \
                or c.attrs["groups"] != first.attrs["groups"] \
                or c.param_shapes["weight"][:2] != first.param_shapes["weight"][:2]:
            return None
    out_ch, in_per_group = first.param_shapes["weight"][:2]
    if idents and (first.attrs["stride"] != (1, 1)
                   or in_per_group * first.attrs["groups"] != out_ch):
        return None     # BN(x) is a sum term only where the convs keep x's shape
    return convs, idents


def _merged_weights(convs, idents, kernel: int):
    """The one conv's (weight, bias): every branch's weight centred in a kernel x kernel
    tap, summed in float64; each identity BN as scale on its own channel's centre tap."""
    out_ch, in_per_group = convs[0].params["weight"].shape[:2]
    w = np.zeros((out_ch, in_per_group, kernel, kernel))
    b = np.zeros(out_ch)
    for c in convs:
        k = c.params["weight"].shape[2]
        lo = (kernel - k) // 2
        w[:, :, lo:lo + k, lo:lo + k] += c.params["weight"]
        if "bias" in c.params:
            b += c.params["bias"]
    centre = kernel // 2
    channel = np.arange(out_ch)
    for bn in idents:
        p = bn.params
        scale = p["weight"].astype(np.float64) / np.sqrt(p["running_var"].astype(np.float64)
                                                         + bn.attrs["eps"])
        # output channel o reads input o, which is index o % in_per_group of its group
        w[channel, channel % in_per_group, centre, centre] += scale
        b += p["bias"] - p["running_mean"] * scale
    return w.astype(np.float32), b.astype(np.float32)


def reparameterize(graph: Graph) -> Graph:
    """Fold every sum of parallel conv / identity-BN branches into one conv (in place)."""
    roots = [n for n in graph if n.kind == "add" and n.attrs.get("act", 0) == 0
             and not _is_inner_add(graph, n)]
    for root in roots:
        adds, leaves = _sum_tree(graph, root)
        found = _branches(graph, leaves)
        if found is None:
            continue
        convs, idents = found
        keep = max(convs, key=lambda c: c.param_shapes["weight"][2])   # first largest kernel
        kernel = keep.param_shapes["weight"][2]
        if keep.params:     # a graph built without weights (for counting) changes shape only
            keep.params["weight"], keep.params["bias"] = _merged_weights(convs, idents, kernel)
        keep.param_shapes["bias"] = (keep.param_shapes["weight"][0],)
        for other in [n for n in convs + idents if n is not keep] + adds:
            keep.fused.extend([other.name] + other.fused)
            graph.remove(other.name, replace_with=keep.name)
    return graph
