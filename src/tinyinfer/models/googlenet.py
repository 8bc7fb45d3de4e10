"""GoogLeNet (Inception v1).

Paper: Szegedy et al., "Going Deeper with Convolutions", CVPR 2015 (arXiv:1409.4842).
Reference implementation: ``torchvision.models.googlenet``, whose module names
(conv1.conv / conv1.bn, inception3a.branch2.1.conv, ...) are the graph's node names.
torchvision adds batch norm after every conv (eps 0.001), as later Inceptions did.

Two deliberate differences from the paper, both torchvision's, both kept so its weights fit:
* the "5x5" branch uses a 3x3 kernel (pytorch/vision issue #906: a bug kept for the
  published checkpoint). ``five_by_five=5`` builds the paper's kernel instead.
* the two auxiliary classifiers (aux1 after inception4a, aux2 after inception4d) only
  feed the training loss; inference never computes them. They are not in the graph, and
  the torchvision key map lists their checkpoint keys as explicitly ignored (None).

``transform_input``: torchvision's pretrained GoogLeNet (transform_input=True) re-normalizes
its ImageNet-normalized input inside the network, x' = (x * std + mean - 0.5) / 0.5, i.e.
to (pixel - 0.5) / 0.5. This graph is the reference's default googlenet(weights=None),
transform_input=False, which the tests compare against; the same re-normalization is
done by preprocessing instead, with mean = std = 0.5 in the spec below, which makes
torchvision's pretrained weights give torchvision's pretrained outputs.
"""
from __future__ import annotations

from ..engine.graph import Graph
from .builder import NetBuilder
from .registry import ModelSpec, register

# The paper's Table 1, from the first Inception on (after conv 7x7/2, max pool 3x3/2,
# conv 1x1 64, conv 3x3 192, max pool 3x3/2). Each Inception module concatenates four
# branches: 1x1; 1x1 reduce -> 3x3; 1x1 reduce -> 5x5; 3x3 max pool -> 1x1 pool proj.
#           name   #1x1  #3x3 reduce  #3x3  #5x5 reduce  #5x5  pool proj
INCEPTIONS = [
    ("3a",     64,    96,         128,    16,         32,    32),
    ("3b",    128,   128,         192,    32,         96,    64),
    ("maxpool3", 3),                  # max pool, kernel 3, stride 2
    ("4a",    192,    96,         208,    16,         48,    64),
    ("4b",    160,   112,         224,    24,         64,    64),
    ("4c",    128,   128,         256,    24,         64,    64),
    ("4d",    112,   144,         288,    32,         64,    64),
    ("4e",    256,   160,         320,    32,        128,   128),
    ("maxpool4", 2),                  # max pool, kernel 2, stride 2
    ("5a",    256,   160,         320,    32,        128,   128),
    ("5b",    384,   192,         384,    48,        128,   128),
]


def basic_conv(b: NetBuilder, x: str, prefix: str, out_ch: int, kernel: int,
               stride: int = 1) -> str:
    """torchvision's BasicConv2d: conv (no bias) + BN + ReLU, named prefix.conv / prefix.bn."""
    return b.conv_bn_act(x, f"{prefix}.conv", f"{prefix}.bn", out_ch, kernel, stride, act="relu")


def inception(b: NetBuilder, x: str, prefix: str, c1, c3r, c3, c5r, c5, pool_proj,
              five_by_five: int) -> str:
    one = basic_conv(b, x, f"{prefix}.branch1", c1, 1)
    three = basic_conv(b, basic_conv(b, x, f"{prefix}.branch2.0", c3r, 1),
                       f"{prefix}.branch2.1", c3, 3)
    five = basic_conv(b, basic_conv(b, x, f"{prefix}.branch3.0", c5r, 1),
                      f"{prefix}.branch3.1", c5, five_by_five)
    pool = b.pool(f"{prefix}.branch4.0", x, "max_pool2d", kernel=3, stride=1, padding=1,
                  ceil_mode=True)
    pool = basic_conv(b, pool, f"{prefix}.branch4.1", pool_proj, 1)
    return b.concat(f"{prefix}.cat", [one, three, five, pool])


def googlenet(num_classes: int = 1000, five_by_five: int = 3) -> Graph:
    """five_by_five: kernel of the third branch (3 in torchvision, 5 in the paper)."""
    b = NetBuilder(bn_eps=1e-3)
    x = basic_conv(b, Graph.INPUT, "conv1", 64, 7, 2)
    x = b.pool("maxpool1", x, "max_pool2d", kernel=3, stride=2, ceil_mode=True)
    x = basic_conv(b, x, "conv2", 64, 1)
    x = basic_conv(b, x, "conv3", 192, 3)
    x = b.pool("maxpool2", x, "max_pool2d", kernel=3, stride=2, ceil_mode=True)
    for row in INCEPTIONS:
        if row[0].startswith("maxpool"):
            x = b.pool(row[0], x, "max_pool2d", kernel=row[1], stride=2, ceil_mode=True)
        else:
            x = inception(b, x, f"inception{row[0]}", *row[1:], five_by_five=five_by_five)
    x = b.global_pool("avgpool", x)
    b.linear("fc", x, num_classes)
    return b.graph


# The auxiliary classifiers' modules in torchvision's checkpoint (InceptionAux: a 1x1
# BasicConv2d and two linears), per classifier.
AUX_MODULES = {"conv.conv": ("weight",), "conv.bn": ("weight", "bias", "running_mean",
                                                    "running_var", "num_batches_tracked"),
               "fc1": ("weight", "bias"), "fc2": ("weight", "bias")}


def torchvision_keymap(graph: Graph) -> dict[str, str | None]:
    """Identity for every weight of the graph, None (= not used) for aux1.* and aux2.*."""
    keymap: dict[str, str | None] = {k: k for k in graph.expected_params()}
    for aux in ("aux1", "aux2"):
        for module, params in AUX_MODULES.items():
            for p in params:
                keymap[f"{aux}.{module}.{p}"] = None
    return keymap


register(ModelSpec(
    name="googlenet",
    build=googlenet,
    paper="Szegedy et al. 2015, Going Deeper with Convolutions (arXiv:1409.4842)",
    reference="torchvision.models.googlenet",     # with transform_input=False, see above
    layouts={"torchvision": torchvision_keymap},
    defaults={"five_by_five": 3},
    mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),   # torchvision's transform_input, see above
))
