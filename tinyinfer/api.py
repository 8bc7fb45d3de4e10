"""The public entry points: load, run, list_models."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .checkpoint import read_checkpoint
from .errors import InputError, WeightsNotFoundError
from .model import Model
from .models.registry import get_spec, list_models  # noqa: F401  (re-exported)
from .weights import load_into, random_init

DEFAULT = "pretrained"


def load(name: str, weights=DEFAULT, layout: str | None = None, **build_kwargs) -> Model:
    """Build model ``name`` and give it weights.

    weights: "pretrained" (default; see tinyinfer/pretrained.py for where it looks), a path
             to a .pth / .safetensors / .npz checkpoint, a dict name -> np.ndarray (a state
             dict in any layout the model knows), or None for random weights (counting,
             benchmarks).
    layout:  force a checkpoint key layout ("torchvision", "timm"); default: detected.
    build_kwargs: architecture options, e.g. width_mult=0.5.
    """
    spec = get_spec(name)
    kwargs = {**spec.defaults, **build_kwargs}
    try:
        graph = spec.build(**kwargs)
    except TypeError as e:
        raise InputError(f"{name}: bad architecture option ({e}); "
                         f"options of this model: {', '.join(spec.defaults) or 'none'}") from None
    if weights is None:
        random_init(graph)
        return Model(spec, graph, kwargs, "random init")
    if isinstance(weights, str) and weights == DEFAULT:
        if spec.pretrained is None:
            raise WeightsNotFoundError(
                f"{name} has no pretrained weights registered in tinyinfer. Pass weights=<path "
                f"to a checkpoint> (layouts accepted: {', '.join(spec.layouts)}) or weights=None.")
        if kwargs != spec.defaults:
            raise InputError(f"the pretrained {name} weights are for {spec.defaults}; with "
                             f"{build_kwargs} pass weights=None or your own checkpoint")
        from .pretrained import find
        offline = os.environ.get("TINYINFER_OFFLINE", "") not in ("", "0")
        weights = find(spec.pretrained, download=not offline)
    if isinstance(weights, (str, os.PathLike)):
        path = Path(weights)
        state, source = read_checkpoint(path), str(path)
    elif isinstance(weights, dict):
        state, source = weights, "the given state dict"
    else:
        raise InputError(f"weights must be 'pretrained', a path, a dict of arrays or None; "
                         f"got {type(weights).__name__}")
    used = load_into(graph, state, spec.layouts, layout, source)
    return Model(spec, graph, kwargs, f"{source} ({used} layout)")


_CACHE: dict = {}


def run(name: str, image, topk: int = 5, weights=DEFAULT) -> list[tuple[str, float]]:
    """Classify one image (path, PIL image or HxWx3 uint8 array): top-k (label, probability).
    The loaded model is kept for the next call with the same name and weights."""
    key = (name, weights if isinstance(weights, (str, type(None))) else id(weights))
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = load(name, weights=weights)
    return _CACHE[key].predict(image, topk=topk)


def preprocess_for(name: str, image) -> np.ndarray:
    """The (1, 3, H, W) float32 array model ``name`` expects for ``image``."""
    from .image import preprocess
    spec = get_spec(name)
    return preprocess(image, resize=spec.resize, crop=spec.input_size, mean=spec.mean,
                      std=spec.std, interpolation=spec.interpolation)
