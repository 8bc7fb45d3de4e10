"""torchvision's checkpoint layouts for the MBConv family, mapped onto this graph's (timm's)
node names, nanoGPT ``from_pretrained`` style: every torchvision module path is written out
against the graph node it becomes, and weights.py then asserts every key and shape.

torchvision numbers its modules by position (features.3.1.block.2.fc1), timm names them by
role (blocks.2.1.se.conv_reduce). Inside one block torchvision's layers come in execution
order, and so do ours, which is what these maps rely on:

    timm (this graph)                              torchvision
    blocks.{s}.{i}.conv_pw  / bn1   (expand)        block.0.0 / block.0.1
    blocks.{s}.{i}.conv_dw  / bn2   (depthwise)     block.1.0 / block.1.1
    blocks.{s}.{i}.se.conv_reduce / conv_expand     block.2.fc1 / block.2.fc2
    blocks.{s}.{i}.conv_pwl / bn3   (project)       block.3.0 / block.3.1

(a block without an expansion conv or without SE simply has fewer layers, numbered on).
"""
from __future__ import annotations

from ..engine.graph import Graph


def block_prefixes(graph: Graph) -> list[str]:
    """'blocks.{s}.{i}' of every block, in network order."""
    seen = []
    for n in graph:
        if n.name.startswith("blocks."):
            p = ".".join(n.name.split(".")[:3])
            if p not in seen:
                seen.append(p)
    return seen


def block_layers(graph: Graph, prefix: str) -> list[tuple[str, ...]]:
    """The block's layers as torchvision counts them, in execution order: (conv, bn) for a
    conv followed by its batch norm, (se,) for a squeeze-excite."""
    layers = []
    for n in graph:
        if not n.name.startswith(prefix + "."):
            continue
        if n.kind == "conv2d":
            bns = [c.name for c in graph.consumers(n.name) if c.kind == "batchnorm"]
            layers.append((n.name, bns[0]))
        elif n.kind == "se":
            layers.append((n.name,))
    return layers


def conv_norm(tv: str, layer: tuple[str, ...]) -> dict[str, str]:
    """torchvision's Conv2dNormActivation (tv.0 conv, tv.1 BN) or SqueezeExcitation
    (tv.fc1, tv.fc2) -> this graph's module names."""
    if len(layer) == 2:
        return {f"{tv}.0": layer[0], f"{tv}.1": layer[1]}
    return {f"{tv}.fc1": f"{layer[0]}.conv_reduce", f"{tv}.fc2": f"{layer[0]}.conv_expand"}


def expand(graph: Graph, modules: dict[str, str]) -> dict[str, str]:
    """{checkpoint module: graph module} -> {checkpoint key: graph key}, one entry for each
    weight the graph module has (weight, bias, running_mean, ...)."""
    params = graph.expected_params()
    keymap = {}
    for theirs, ours in modules.items():
        depth = ours.count(".") + 1
        found = [k for k in params if k.startswith(ours + ".") and k.count(".") == depth]
        if not found:
            raise ValueError(f"layout maps {theirs!r} to {ours!r}, which has no weights")
        for key in found:
            keymap[f"{theirs}.{key.rsplit('.', 1)[1]}"] = key
    return keymap


def mobilenet_v3_keymap(graph: Graph) -> dict[str, str]:
    """torchvision.models.mobilenet_v3_large / _small: features.0 = stem, features.1..N =
    the bottlenecks in order (each a .block Sequential), features.N+1 = the last 1x1
    conv + BN (timm's final 'cn' block), classifier.0 = the head's fully connected layer
    (timm's conv_head), classifier.3 = the classifier (1 and 2 are h-swish and dropout)."""
    modules = {"features.0.0": "conv_stem", "features.0.1": "bn1",
               "classifier.0": "conv_head", "classifier.3": "classifier"}
    blocks = block_prefixes(graph)
    for k, prefix in enumerate(blocks[:-1], start=1):
        for j, layer in enumerate(block_layers(graph, prefix)):
            modules.update(conv_norm(f"features.{k}.block.{j}", layer))
    (last,) = block_layers(graph, blocks[-1])
    modules.update(conv_norm(f"features.{len(blocks)}", last))
    return expand(graph, modules)


def efficientnet_keymap(graph: Graph) -> dict[str, str]:
    """torchvision.models.efficientnet_b0..b7 and efficientnet_v2_*: features.0 = stem,
    features.{s+1}.{i} = block i of stage s (each a .block Sequential), features.{S+1} =
    the head's 1x1 conv + BN, classifier.1 = the classifier (classifier.0 is dropout)."""
    modules = {"features.0.0": "conv_stem", "features.0.1": "bn1", "classifier.1": "classifier"}
    stages = 0
    for prefix in block_prefixes(graph):
        s, i = (int(v) for v in prefix.split(".")[1:])
        stages = max(stages, s + 1)
        for j, layer in enumerate(block_layers(graph, prefix)):
            modules.update(conv_norm(f"features.{s + 1}.{i}.block.{j}", layer))
    modules.update({f"features.{stages + 1}.0": "conv_head", f"features.{stages + 1}.1": "bn2"})
    return expand(graph, modules)


def mnasnet_keymap(graph: Graph) -> dict[str, str]:
    """torchvision.models.mnasnet*: one flat Sequential ``layers``: 0/1 stem conv/BN (2 is
    ReLU), 3/4 and 6/7 the first depthwise separable block's dw and pw conv/BN, 8..13 one
    Sequential per stage of _InvertedResidual blocks, whose own ``layers`` hold conv/BN at
    0/1, 3/4, 6/7; then 14/15 the head conv/BN; classifier.1 the classifier."""
    modules = {"layers.0": "conv_stem", "layers.1": "bn1", "classifier.1": "classifier"}
    blocks = block_prefixes(graph)
    first, rest = blocks[0], blocks[1:]
    for j, (conv, bn) in enumerate(block_layers(graph, first)):
        modules.update({f"layers.{3 + 3 * j}": conv, f"layers.{4 + 3 * j}": bn})
    stages = 1
    for prefix in rest:
        s, i = (int(v) for v in prefix.split(".")[1:])
        stages = max(stages, s + 1)
        for j, (conv, bn) in enumerate(block_layers(graph, prefix)):
            modules.update({f"layers.{7 + s}.{i}.layers.{3 * j}": conv,
                            f"layers.{7 + s}.{i}.layers.{3 * j + 1}": bn})
    modules.update({f"layers.{8 + stages - 1}": "conv_head", f"layers.{9 + stages - 1}": "bn2"})
    return expand(graph, modules)
