"""The public entry points: load, run, summary, list_models."""
from __future__ import annotations

import math
import numbers
import os
from pathlib import Path

import numpy as np

from .io.checkpoint import read_checkpoint
from .errors import InputError, WeightsNotFoundError
from .engine.graph import Graph
from .model import Model, preprocess_for_spec
from .models.registry import ModelSpec, get_spec, list_models  # noqa: F401  (re-exported)
from .io.weights import load_into, random_init

DEFAULT = "pretrained"

# load() refuses a network with more parameters than this before allocating them: 4 GB of
# float32 weights, 7x VGG16 (the largest network here, 138M). A larger count is almost
# always a typo such as width_mult=100; raise it here if you really have the memory.
MAX_PARAMS = 1_000_000_000

# No architecture option takes a number above this (the papers' multipliers are 0.1 to a
# few); a depth_mult of 1e6 would otherwise spend minutes building millions of layers.
MAX_OPTION_VALUE = 100


def architecture_options(spec: ModelSpec, options: dict) -> dict:
    """The registered variant's options (``spec.defaults``) updated with ``options``, after
    checking that the model declares each name and that each value has its default's type.
    The builder itself checks ranges (e.g. width_mult > 0)."""
    unknown = [k for k in options if k not in spec.defaults]
    if unknown:
        raise InputError(f"{spec.name}: bad architecture option {', '.join(unknown)}; "
                         f"the options of this model: {', '.join(spec.defaults) or 'none'}")
    for key, value in options.items():
        problem = _option_problem(key, value, spec.defaults[key],
                                  spec.option_limits.get(key, MAX_OPTION_VALUE))
        if problem:
            raise InputError(f"{spec.name}: {problem}")
    return {**spec.defaults, **options}


def _option_problem(key: str, value, default, limit) -> str | None:
    """What is wrong with ``value`` for an option whose registered value is ``default``."""
    number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if isinstance(default, (bool, str)):
        ok, kind = type(value) is type(default), type(default).__name__
    elif isinstance(default, numbers.Integral):
        ok, kind = number and isinstance(value, numbers.Integral), "an integer"
    elif isinstance(default, numbers.Real):
        ok, kind = number and math.isfinite(value), "a finite number"
    else:
        return None
    if not ok:
        return f"{key} must be {kind} like its registered value {default!r}; got {value!r}"
    if number and abs(value) > limit:
        return (f"{key}={value!r} is too large (at most {limit} for this model; the "
                f"registered value is {default!r})")
    return None


def _build(name: str, options: dict) -> tuple[ModelSpec, dict, Graph]:
    spec = get_spec(name)
    kwargs = architecture_options(spec, options)
    # Names and types are checked above, so a TypeError from here on is a bug in the
    # builder and surfaces as one.
    return spec, kwargs, spec.build(**kwargs)


def build(name: str, **options) -> Model:
    """Model ``name`` built from shapes alone, without weights: its summary() works (at any
    width: nothing is allocated), calling it raises. load() gives a model weights."""
    spec, kwargs, graph = _build(name, options)
    return Model(spec, graph, kwargs, weights_source=None)


def summary(name: str, resolution: int | None = None, batch: int = 1, itemsize: int = 4,
            convention: str = "paper", **options):
    """Per-layer counts of model ``name`` (a Report; see Model.summary), from shapes alone:
    no weights are built, so any width multiplier is cheap."""
    return build(name, **options).summary(resolution, batch, itemsize, convention)


def _check_size(name: str, options: dict, graph: Graph) -> None:
    # math.prod on Python ints: np.prod would overflow int64 silently for huge shapes
    n = sum(math.prod(shape) for shape in graph.expected_params().values())
    if n > MAX_PARAMS:
        args = ", ".join(f"{k}={v!r}" for k, v in options.items())
        raise InputError(f"{name}({args}) has {n:,} parameters ({n * 4 / 1e9:,.0f} "
                         f"GB as float32), more than tinyinfer.api.MAX_PARAMS = {MAX_PARAMS:,}; "
                         f"check the options, or count it without weights with "
                         f"tinyinfer.summary({name!r}, ...)")


def load(name: str, weights=DEFAULT, layout: str | None = None, **options) -> Model:
    """Build model ``name`` and give it weights.

    weights: "pretrained" (default; see tinyinfer/io/pretrained.py for where it looks), a path
             to a .pth / .safetensors / .npz checkpoint, a dict name -> np.ndarray (a state
             dict in any layout the model knows), or None for random weights (benchmarks).
    layout:  force a checkpoint key layout ("torchvision", "timm"); default: detected.
    options: the model's architecture options, e.g. width_mult=0.5 (``tinyinfer list``
             and the error for an unknown one name them).
    """
    spec, kwargs, graph = _build(name, options)
    _check_size(name, options, graph)
    if weights is None:
        random_init(graph)
        return Model(spec, graph, kwargs, "random init")
    if isinstance(weights, str) and weights == DEFAULT:
        if spec.pretrained is None:
            raise WeightsNotFoundError(
                f"{name} has no pretrained weights registered in tinyinfer. Pass weights=<path "
                f"to a checkpoint> (layouts accepted: {', '.join(spec.layouts)}) or "
                f"weights=None for random weights (command line: --weights PATH or "
                f"--weights random).")
        if kwargs != spec.defaults:
            raise InputError(f"the pretrained {name} weights are for {spec.defaults}; with "
                             f"{options} pass weights=None (random; command line: --weights "
                             f"random) or your own checkpoint")
        from .io.pretrained import find
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


def check_topk(topk, name: str = "topk") -> int:
    """``topk`` if it is an int from 1 to the number of classes; ``name`` is how the caller
    spelled it (the CLI says --topk)."""
    from .io.image import imagenet_labels
    classes = len(imagenet_labels())
    if isinstance(topk, bool) or not isinstance(topk, numbers.Integral) \
            or not 1 <= topk <= classes:
        raise InputError(f"{name} must be an integer from 1 to {classes}, got {topk!r}")
    return int(topk)


_CACHE: dict = {}


def run(name: str, image, topk: int = 5, weights=DEFAULT, **options):
    """Classify an image (path, PIL image or HxWx3 uint8 array): its top-k (label,
    probability) pairs, best first. A list of images gives a list of such lists.
    The loaded model is kept for the next call with the same name, weights and options."""
    check_topk(topk)   # before the (slow) first load
    key = (name, weights if isinstance(weights, (str, type(None))) else id(weights),
           repr(sorted(options.items())))
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = load(name, weights=weights, **options)
    model = _CACHE[key]
    if isinstance(image, (list, tuple)):
        return [model.predict(one, topk=topk) for one in image]
    return model.predict(image, topk=topk)


def preprocess_for(name: str, image) -> np.ndarray:
    """The (1, 3, H, W) float32 array model ``name`` expects for ``image``."""
    return preprocess_for_spec(get_spec(name), image)
