"""The model registry: name -> how to build it, where it comes from, which weights fit it."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Callable

from ..errors import ModelNotFoundError
from ..engine.graph import Graph

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Pretrained:
    """One published checkpoint file."""
    filename: str                  # as the reference publishes it, e.g. mobilenet_v2-b0353104.pth
    sha256: str
    url: str                       # the official download address
    layout: str                    # which of the spec's key layouts the file uses
    packages: tuple[tuple[str, str], ...] = ()   # (PyPI package, path inside it) that ship it
    licence: str = ""


@dataclass(frozen=True)
class ModelSpec:
    name: str                      # the reference implementation's own name
    build: Callable[..., Graph]    # build(**kwargs) -> Graph with declared weight shapes
    paper: str
    reference: str                 # e.g. "torchvision.models.mobilenet_v2"
    # layout name -> function(graph) -> {checkpoint key: graph key}. The layout whose keys
    # equal the graph's own node names maps to None (identity).
    layouts: dict[str, Callable[[Graph], dict[str, str]] | None] = field(default_factory=dict)
    pretrained: Pretrained | None = None
    defaults: dict = field(default_factory=dict)   # build kwargs of the registered variant
    # the largest value of a numeric option, where it is not api.MAX_OPTION_VALUE (e.g. a
    # count of random features, which is not a multiplier)
    option_limits: dict = field(default_factory=dict)
    input_size: int = 224
    resize: int = 256
    interpolation: str = "bilinear"
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD


MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in MODELS:
        raise ValueError(f"model {spec.name!r} registered twice")
    MODELS[spec.name] = spec
    return spec


def get_spec(name: str) -> ModelSpec:
    from . import _load_all  # noqa: F401  (importing it registers every model file)
    if name in MODELS:
        return MODELS[name]
    close = difflib.get_close_matches(name, list(MODELS), n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ModelNotFoundError(f"unknown model {name!r}.{hint} "
                             f"`tinyinfer list` (or tinyinfer.list_models()) shows all "
                             f"{len(MODELS)} names.")


def list_models() -> list[str]:
    from . import _load_all  # noqa: F401
    return sorted(MODELS)
