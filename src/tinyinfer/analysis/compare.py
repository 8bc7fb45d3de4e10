"""Layer-by-layer comparison with the PyTorch reference: where does my network go wrong?

    from tinyinfer.analysis.compare import compare
    result = compare(model, torch_module, x)     # model: tinyinfer.Model with the same weights
    print(result)                                # every matched layer's max error
    result.first_divergence                      # the first layer beyond tolerance, or None

Runs tinyinfer's graph as built (not the optimized plan: every conv, BN and activation is
its own node, so each has an output to compare) and the torch module with forward hooks on
every submodule, then pairs them by name:
* a node with weights pairs with the module those weights come from, through the model's
  checkpoint layout (the identity, or the key map in the model file: the same map that
  loaded the weights);
* a node without weights (ReLU, pool, add...) pairs with a module of the same name, if the
  reference has one (torchvision's VGG "features.1", ResNet's "layer1.0.relu");
* timm's BatchNormAct2d applies its activation inside the BN module, so such a module
  pairs with the node "<bn>.act" when the graph has one.
A module called several times (ResNet's relu) is compared on its last call. Nodes with no
counterpart are listed as not compared.

A layer diverges when max|ours - ref| > tol * (1 + max|ref|), or when the shapes differ.
The default tol 1e-4 is per layer: the whole-network parity tests allow 1e-3 on the logits
after ~50 layers; one layer in float32 with another summation order differs by ~1e-6
relative, and a wrong weight, stride or activation by O(1).

torch is imported only when a comparison runs: tinyinfer itself never needs it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..engine.ops import get_op


@dataclass
class LayerDiff:
    node: str
    module: str | None          # the torch module compared with, None: no counterpart
    ours_shape: tuple | None
    ref_shape: tuple | None
    max_err: float | None
    ref_max: float | None
    diverged: bool
    note: str = ""


@dataclass
class Comparison:
    layers: list[LayerDiff]
    tol: float

    @property
    def compared(self) -> list[LayerDiff]:
        return [d for d in self.layers if d.module is not None]

    @property
    def first_divergence(self) -> LayerDiff | None:
        return next((d for d in self.layers if d.diverged), None)

    def __str__(self):
        lines = [f"{'layer':34s} {'torch module':30s} {'shape':>16s} {'max err':>10s}  status"]
        for d in self.layers:
            if d.module is None:
                continue
            shape = "x".join(map(str, d.ours_shape or ()))
            err = f"{d.max_err:.2e}" if d.max_err is not None else "-"
            status = ("DIVERGES " + d.note) if d.diverged else "ok"
            lines.append(f"{d.node:34s} {d.module:30s} {shape:>16s} {err:>10s}  {status}")
        first = self.first_divergence
        lines.append(f"first divergence: {first.node} ({first.module}) {first.note}".rstrip()
                     if first else f"no layer diverges (tol {self.tol:g})")
        skipped = sum(d.module is None for d in self.layers)
        lines.append(f"{len(self.compared)} layers compared, {skipped} without a counterpart")
        return "\n".join(lines)


def run_all(graph, x: np.ndarray) -> tuple[dict, str]:
    """Every node's output (nothing freed). Stops at a node that raises; returns
    (values, error message or "")."""
    values = {graph.INPUT: x}
    for node in graph:
        try:
            values[node.name] = get_op(node).run(node, [values[v] for v in node.inputs])
        except Exception as e:   # a wrong shape downstream of the bug: report, don't crash
            return values, f"{node.name} raised {type(e).__name__}: {e}"
    return values, ""


def module_map(model, state_keys) -> dict[str, str]:
    """graph node -> torch module path, through the layout whose keys match ``state_keys``
    (the torch module's state dict) best."""
    graph, spec = model.graph, model.spec
    params = graph.expected_params()
    best, best_score = None, None
    for name, fn in spec.layouts.items():
        keymap = fn(graph) if fn else {k: k for k in params}
        score = len(set(keymap) & state_keys) - len(set(keymap) ^ state_keys)
        if best_score is None or score > best_score:
            best, best_score = keymap, score
    nodes = {n.name: n for n in graph}
    out = {}
    for theirs, ours in (best or {}).items():
        for n in nodes.values():
            for p in n.param_shapes:
                if ours == f"{n.name}.{p}":
                    out[n.name] = theirs[:-len(p) - 1]
    return out


def compare(model, reference, x: np.ndarray, tol: float = 1e-4) -> Comparison:
    """Run ``model`` (tinyinfer.Model) and ``reference`` (a torch.nn.Module holding the same
    weights, in eval mode) on ``x`` (float32 (N, C, H, W)) and compare layer by layer."""
    import torch
    x = model.check_input(x)
    reference.eval()
    modules = dict(reference.named_modules())
    recorded: dict[str, np.ndarray] = {}

    def hook(name):
        def fn(module, inputs, output):
            if isinstance(output, torch.Tensor):
                recorded[name] = output.detach().numpy().copy()
        return fn
    handles = [m.register_forward_hook(hook(n)) for n, m in modules.items() if n]
    try:
        with torch.no_grad():
            reference(torch.from_numpy(x))
    finally:
        for h in handles:
            h.remove()

    pairs = module_map(model, set(reference.state_dict()))
    for node in model.graph:
        if node.name not in pairs and node.name in modules:
            pairs[node.name] = node.name
    compare_at = {}                    # node whose output the module's output equals
    for node_name, mod_name in pairs.items():
        act = getattr(modules.get(mod_name), "act", None)
        has_act = isinstance(act, torch.nn.Module) and not isinstance(act, torch.nn.Identity)
        target = f"{node_name}.act" if has_act and f"{node_name}.act" in model.graph._by_name \
            else node_name
        compare_at[target] = mod_name

    ours, error = run_all(model.graph, x)
    layers = []
    for node in model.graph:
        mod = compare_at.get(node.name)
        if node.name not in ours:
            layers.append(LayerDiff(node.name, mod, None, None, None, None, True,
                                    f"did not run: {error}"))
            break
        mine = ours[node.name]
        if mod is None or mod not in recorded:
            layers.append(LayerDiff(node.name, None, mine.shape, None, None, None, False))
            continue
        ref = recorded[mod]
        if ref.shape != mine.shape and ref.size == mine.size and ref.ndim != mine.ndim:
            ref = ref.reshape(mine.shape)          # e.g. a (N, C, 1, 1) conv head vs (N, C)
        if ref.shape != mine.shape:
            layers.append(LayerDiff(node.name, mod, mine.shape, ref.shape, None, None, True,
                                    f"shape {mine.shape} vs reference {ref.shape}"))
            continue
        err = float(np.abs(mine - ref).max())
        scale = float(np.abs(ref).max())
        bad = not err <= tol * (1 + scale)         # NaN counts as divergence
        layers.append(LayerDiff(node.name, mod, mine.shape, ref.shape, err, scale, bad,
                                f"max err {err:.3g} (max |ref| {scale:.3g})" if bad else ""))
    if not any(d.module for d in layers):
        raise InputError(f"no layer of {model.name} could be paired with a module of "
                         f"{type(reference).__name__}: is it the reference network?")
    return Comparison(layers, tol)
