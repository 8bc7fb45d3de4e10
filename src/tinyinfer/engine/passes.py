"""Graph rewrites applied once, at load time, before anything runs.

1. ``fold_batchnorm``: conv -> BN becomes one conv with new weights and a bias. Inference BN
   is an affine map per channel, so it folds into the conv's weights exactly (up to float
   rounding): the papers' Mult-Add counts assume it, and it removes a full pass over memory.
   Likewise linear -> BN1d on (N, features) (MicroNet's head), where BN's channel axis is the
   linear's output axis.
2. ``fuse_residual``: conv -> add(conv, skip) (MobileNetV2's linear bottleneck + shortcut)
   becomes a conv that adds ``skip`` in its epilogue.
3. ``fuse_activation``: conv/linear/add -> activation becomes one kernel call whose epilogue
   applies the activation while the output is still in registers; after a conv that took
   a residual in (2), the activation applies after the add (``act_after_residual``:
   ResNet's ReLU(conv + identity)).
4. MixConv (one conv per kernel size, concatenated): the BN and activation after the concat
   go into each conv, BN's vectors sliced per conv (``fold_batchnorm_through_concat``).

Each rewrite only fires when the intermediate value has exactly one reader, so no other
node ever sees a changed value. The fused node keeps its name and records what it absorbed
in ``node.fused`` (reports show it), so the counts of the rewritten graph are the counts of
the kernels that actually run.
"""
from __future__ import annotations

from .graph import Graph
from ..kernels.norm import fold_batchnorm as fold_bn_weights
from .reparam import reparameterize


def _sole_consumer(graph: Graph, value: str):
    readers = graph.consumers(value)
    if len(readers) == 1 and value != graph.output:
        return readers[0]
    return None


# Kinds whose output is (N, C) whatever the input size, and kinds that keep their input's
# rank (a linear maps the last axis: (N, ..., I) -> (N, ..., O)).
FLAT_OUTPUT = ("global_avgpool", "flatten")
KEEPS_RANK = ("linear", "act", "batchnorm")


def _is_flat(graph: Graph, value: str) -> bool:
    """True if ``value`` is (N, C) at any input size, judged from the kinds that produce it.
    Shapes are not stored (graph.py), and BN normalizes axis 1 while a linear maps the last
    axis: the two are the same axis only on (N, C), so a linear on tokens (N, T, C) followed
    by a BN over T must stay apart. Unknown kinds answer False: the BN then runs unfolded."""
    while value != graph.INPUT:
        node = graph[value]
        if node.kind in FLAT_OUTPUT:
            return True
        if node.kind not in KEEPS_RANK:
            return False
        value = node.inputs[0]
    return False


def _folds_into(graph: Graph, node, bn) -> bool:
    """``bn`` can fold into ``node``: a conv, or a linear on (N, features), with no
    activation or residual in its epilogue yet, whose output only ``bn`` reads."""
    if node.kind == "linear" and not _is_flat(graph, node.name):
        return False
    return node.kind in ("conv2d", "linear") and node.attrs.get("act", 0) == 0 \
        and len(node.inputs) == 1 and _sole_consumer(graph, node.name) is bn


def fold_batchnorm(graph: Graph) -> Graph:
    for bn in [n for n in graph if n.kind == "batchnorm"]:
        layer = graph[bn.inputs[0]] if bn.inputs[0] != graph.INPUT else None
        if layer is None or not _folds_into(graph, layer, bn):
            continue  # stays a standalone batchnorm node, counted and run as one
        p = bn.params
        if layer.params:   # a graph built without weights (for counting) changes shape only
            w, b = fold_bn_weights(layer.params["weight"], layer.params.get("bias"), p["weight"],
                                   p["bias"], p["running_mean"], p["running_var"], bn.attrs["eps"])
            layer.params["weight"], layer.params["bias"] = w, b
        layer.param_shapes["bias"] = (layer.param_shapes["weight"][0],)
        layer.fused.append(bn.name)
        graph.remove(bn.name, replace_with=layer.name)
    return graph


def _concat_of_plain_convs(graph: Graph, node) -> bool:
    """A concat whose every input is a conv that only it reads, with no activation or
    residual yet: MixConv's output (one depthwise conv per kernel size, concatenated)."""
    return node.kind == "concat" and all(
        i != graph.INPUT and graph[i].kind == "conv2d" and len(graph[i].inputs) == 1
        and graph[i].attrs.get("act", 0) == 0 and _sole_consumer(graph, i) is node
        for i in node.inputs)


def fold_batchnorm_through_concat(graph: Graph) -> Graph:
    """concat(conv_a, conv_b, ...) -> BN: BN is per channel, so each conv takes the slice of
    BN's vectors that covers its own output channels."""
    for bn in [n for n in graph if n.kind == "batchnorm"]:
        src = bn.inputs[0]
        if src == graph.INPUT or not _concat_of_plain_convs(graph, graph[src]) \
                or _sole_consumer(graph, src) is not bn:
            continue
        p, start = bn.params, 0
        for conv in [graph[i] for i in graph[src].inputs]:
            part = slice(start, start + conv.param_shapes["weight"][0])
            start = part.stop
            if conv.params:   # as in fold_batchnorm: no weights, no arithmetic
                w, b = fold_bn_weights(conv.params["weight"], conv.params.get("bias"),
                                       p["weight"][part], p["bias"][part], p["running_mean"][part],
                                       p["running_var"][part], bn.attrs["eps"])
                conv.params["weight"], conv.params["bias"] = w, b
            conv.param_shapes["bias"] = (conv.param_shapes["weight"][0],)
        graph[src].fused.append(bn.name)
        graph.remove(bn.name, replace_with=src)
    return graph


def fuse_activation(graph: Graph) -> Graph:
    for act in [n for n in graph if n.kind == "act"]:
        src = act.inputs[0]
        if src == graph.INPUT:
            continue
        producer = graph[src]
        if _concat_of_plain_convs(graph, producer) and _sole_consumer(graph, src) is act:
            for conv in [graph[i] for i in producer.inputs]:   # act(concat) = concat(act)
                conv.attrs["act"] = act.attrs["act"]
            producer.fused.append(act.name)
            graph.remove(act.name, replace_with=src)
            continue
        if producer.kind not in ("conv2d", "linear", "add") or producer.attrs.get("act", 0) != 0 \
                or _sole_consumer(graph, src) is not act:
            continue
        if producer.kind == "conv2d" and len(producer.inputs) > 1:
            producer.attrs["act_after_residual"] = True    # act(conv + skip), not act(conv) + skip
        producer.attrs["act"] = act.attrs["act"]
        producer.fused.append(act.name)
        graph.remove(act.name, replace_with=producer.name)
    return graph


def fuse_residual(graph: Graph) -> Graph:
    for add in [n for n in graph if n.kind == "add"]:
        if add.attrs.get("act", 0) != 0:
            continue  # conv's epilogue adds the residual after its activation, not before
        for i, src in enumerate(add.inputs):
            other = add.inputs[1 - i]
            if src == graph.INPUT:
                continue
            conv = graph[src]
            if conv.kind == "conv2d" and len(conv.inputs) == 1 and conv.attrs.get("act", 0) == 0 \
                    and _sole_consumer(graph, src) is add and other != src:
                # ``other`` must already exist when the conv runs: it is produced earlier.
                order = [graph.INPUT] + [n.name for n in graph]
                if order.index(other) > order.index(src):
                    continue
                conv.inputs.append(other)
                conv.fused.append(add.name)
                graph.remove(add.name, replace_with=conv.name)
                break
    return graph


def optimize(graph: Graph, reparam: bool = True) -> Graph:
    """The load-time pipeline: a new graph with BN folded and epilogues fused.
    reparam=False keeps re-parameterizable branches apart (reparam.py): the training form's
    cost, as MobileOne trains; True sums them into one conv, the form that runs."""
    g = graph.copy()
    for n in g:  # weight arrays are replaced, never mutated, so the copy may share them
        n.params = dict(n.params)
    fold_batchnorm(g)
    fold_batchnorm_through_concat(g)
    if reparam:     # after BN folding (branches are conv + bias), before epilogue fusion
        reparameterize(g)
    fuse_residual(g)
    fuse_activation(g)
    return g
