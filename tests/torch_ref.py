"""How a tinyinfer network is checked against its PyTorch reference (tests only): the weight
randomization, and THE comparison every parity test uses (assert_matches).

The rule: max|ours - ref| <= RTOL * max|ref|, RTOL = 1e-3, over the whole output (logits
for a network). Both sides compute in float32 in different summation orders, and tinyinfer
folds BN into the conv weights (which rounds differently from conv-then-BN), so they agree
to ~1e-6 relative (measured 1e-7 .. 2e-6 over the MBConv family), while any wrong weight,
stride, padding, activation or channel split gives O(1) differences. Relative to max|ref|, not to 1 + max|ref| (the rule tests/test_models.py and
the group family used before): with torchvision's classifier init (std 0.01) logits come
out ~0.03, where an absolute floor of 1e-3 would let a wrong network pass. It is at least
as strict as each rule it replaced: 1e-3 * (1 + max|ref|), 1e-3 * max|ref| and
1e-3 * max(max|ref|, 1e-3).
"""
import math

import numpy as np
import torch

import tinyinfer

RTOL = 1e-3

_NORMS = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm, torch.nn.LayerNorm)


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random norm statistics and affines, in eval mode. A fresh BN has mean 0 / var 1 and
    gamma 1 / beta 0, which would hide a wrong or missing fold: every BN gets mean ~
    N(0, 0.1^2), var ~ U(0.5, 2), and every norm layer (BN, GroupNorm, LayerNorm) with an
    affine gets gamma ~ U(0.5, 1.5), beta ~ N(0, 0.1^2). Conv / linear weights keep the
    reference's own init (he_init replaces them)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
            if isinstance(m, _NORMS) and getattr(m, "weight", None) is not None:
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                if m.bias is not None:              # LayerNorm(bias=False) has none
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return model.eval()


def he_init(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """He-normal weights (variance 2 / fan_in, which keeps activations O(1) through ReLUs)
    and N(0, 0.1^2) biases in every conv and linear layer. For references whose own init
    leaves the logits near 0 (AlexNet's and VGG's FC layers N(0, 0.01), GoogLeNet's convs
    truncated N(0, 0.01)) or zeroes the biases (which would hide a bias left unloaded)."""
    g = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(2 / fan_in))
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return model


def state_dict_numpy(model: torch.nn.Module) -> dict:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def forward(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def image_batch(batch: int, resolution: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, 3, resolution, resolution),
                                                       dtype=np.float32)


def assert_matches(got: np.ndarray, want: np.ndarray, what: str, rtol: float = RTOL):
    """THE comparison (module docstring): max|got - want| <= rtol * max|want|. ``rtol`` may
    only be tightened (the real-weights and single-conv tests ask 1e-4)."""
    assert rtol <= RTOL, "a parity test may tighten the tolerance, never loosen it"
    assert got.shape == want.shape, f"{what}: shape {got.shape}, reference {want.shape}"
    scale = float(np.abs(want).max())
    # an all-zero reference output would make any network "match"
    assert scale > 0, f"{what}: the reference output is all zeros"
    err = float(np.abs(got - want).max())
    assert err <= rtol * scale, f"{what}: max err {err:.3g} > {rtol:g} * max|ref| {scale:.3g}"


def check_network(name: str, ref: torch.nn.Module, batch: int, resolution: int, seed: int = 0,
                  **options):
    """Load ``ref``'s state dict into tinyinfer ``name`` (architecture ``options`` go to
    tinyinfer.load) and assert its logits match ``ref``'s on random images. Returns the
    model, for checks of what was loaded."""
    model = tinyinfer.load(name, weights=state_dict_numpy(ref), **options)
    x = image_batch(batch, resolution, seed)
    want = forward(ref, x)
    assert want.shape == (batch, 1000)
    assert_matches(model(x), want, f"{name} {options or ''} @{batch}x{resolution}")
    return model


def torch_macs(module, resolution: int = 224) -> int:
    """Mult-Adds of every Conv2d and Linear of a reference module, from the shapes PyTorch
    itself produces: output elements x (input channels / groups) x kernel height x width
    (Linear: output elements x input features). The independent count that tinyinfer's
    cost models are checked against."""
    total = [0]

    def hook(m, inputs, out):
        if isinstance(m, torch.nn.Conv2d):
            total[0] += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * \
                m.kernel_size[1]
        else:
            total[0] += out.numel() * m.in_features
    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        module.eval()(torch.zeros(1, 3, resolution, resolution))
    for h in handles:
        h.remove()
    return total[0]
