"""Helpers that build the PyTorch reference of a tinyinfer model (tests only)."""
import numpy as np
import timm
import torch
import torchvision

# torchvision / timm constructors of each registered name, with tinyinfer's build kwargs
# translated to the reference's arguments.
REFERENCES = {
    "mobilenet_v2": lambda width_mult=1.0: torchvision.models.mobilenet_v2(width_mult=width_mult),
    # timm registers fixed widths; its generator functions take the multiplier
    "mobilenetv2_100": lambda width_mult=1.0: timm.models.efficientnet._gen_mobilenet_v2(
        "mobilenetv2_100", channel_multiplier=width_mult),
    "mobilenetv1_100": lambda width_mult=1.0: timm.models.efficientnet._gen_mobilenet_v1(
        "mobilenetv1_100", channel_multiplier=width_mult),
}


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights AND random BN statistics (fresh BN has mean 0 / var 1, which would
    hide a wrong fold): every BN gets mean ~ N(0, 0.1^2), var ~ U(0.5, 2), gamma ~ U(0.5, 1.5),
    beta ~ N(0, 0.1^2). Conv / linear weights keep the reference's own init."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            c = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
    return model.eval()


def state_dict_numpy(model: torch.nn.Module) -> dict:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def forward(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()
