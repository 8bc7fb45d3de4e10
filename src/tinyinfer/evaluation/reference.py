"""--compare-with torch: the PyTorch reference implementation of a model, with the same
weights, to run beside tinyinfer on every image. torch is imported only here and only then.

The reference is the one the model table names (``spec.reference``): a torchvision
constructor ("torchvision.models.mobilenet_v2") or a timm model ("timm.models.mixnet_s").
The checkpoint must be in that reference's own key layout (the pretrained files are).
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError

REFERENCES = ("torch",)


def reference_model(name: str, state: dict, compare_with: str):
    """A callable x (1, 3, H, W) float32 -> logits (1, 1000) running the torch reference."""
    if compare_with not in REFERENCES:
        raise InputError(f"--compare-with must be one of {', '.join(REFERENCES)}; "
                             f"got {compare_with!r}")
    from ..models.registry import get_spec
    reference = get_spec(name).reference
    try:
        import torch
        module = _construct(reference)
    except ImportError as e:
        raise InputError(f"--compare-with torch needs torch and torchvision (and timm for "
                             f"timm models) installed: {e}") from None
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}
    missing, unexpected = module.load_state_dict(tensors, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]  # not saved in .npz
    if missing or unexpected:
        raise InputError(
            f"the checkpoint does not fit the reference {reference} ({len(missing)} missing "
            f"keys, e.g. {missing[:2]}; {len(unexpected)} unexpected, e.g. {unexpected[:2]}); "
            f"--compare-with torch needs a checkpoint in the reference's own layout")
    module.eval()

    def forward(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(x)).numpy()
    return forward


def _construct(reference: str):
    package, _, fn = reference.partition(".models.")
    if package == "torchvision":
        from ..bench._torch import import_torchvision
        return getattr(import_torchvision().models, fn)()
    if package == "timm":
        import_torchvision_first()
        import timm
        return timm.create_model(fn, pretrained=False)
    raise InputError(f"--compare-with torch cannot build the reference {reference!r}: "
                         f"only torchvision and timm references are supported")


def import_torchvision_first():
    """timm imports torchvision: go through the workaround (bench/_torch.py) first."""
    from ..bench._torch import import_torchvision
    import_torchvision()
