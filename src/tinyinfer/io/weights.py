"""Putting a checkpoint's arrays into a graph, nanoGPT ``from_pretrained`` style: an explicit
key map, every shape asserted, and one error that lists every missing key, every
unexpected key and every shape mismatch at once (never a warning, never a partial load).
"""
from __future__ import annotations

import reprlib

import numpy as np

from ..errors import InputError, WeightsMismatchError
from ..engine.graph import Graph

# Buffers that training keeps and inference does not need.
IGNORED_SUFFIXES = (".num_batches_tracked",)
MAX_NAME_CHARS = 120


def printable(key) -> str:
    """A key as it can be shown on a terminal: cut to MAX_NAME_CHARS, then every character
    that does not print escaped (a file's key names may carry terminal escape codes)."""
    try:
        text = key if isinstance(key, str) else reprlib.repr(key)
    except ValueError:       # an int of more than 4300 digits has no repr
        text = f"a huge {type(key).__name__}"
    cut = f"... ({len(text):,} characters)" if len(text) > MAX_NAME_CHARS else ""
    return "".join(c if c.isprintable() else repr(c)[1:-1]
                   for c in text[:MAX_NAME_CHARS]) + cut


def _listing(title, items, limit=12):
    """Items in network order (the first layer first: usually the most telling one)."""
    more = f"\n    ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"  {title} ({len(items)}):\n" + "\n".join(f"    {i}" for i in items[:limit]) + more


def _is_array(value) -> bool:
    return isinstance(value, np.ndarray) or hasattr(value, "__array__")   # torch tensors too


def check_entries(state: dict, source="the state dict") -> None:
    """One error naming every entry that cannot be a weight: keys must be str, values
    arrays (NumPy arrays, or anything NumPy can take as one, such as torch tensors)."""
    keys = [printable(k) for k in state if not isinstance(k, str)]
    values = [f"{printable(k)}: {type(v).__name__}" for k, v in state.items()
              if isinstance(k, str) and not _is_array(v)]
    if keys or values:
        parts = [f"{source} has entries that cannot be weights:"]
        if keys:
            parts.append(_listing("keys that are not str", keys))
        if values:
            parts.append(_listing("values that are not arrays", values))
        parts.append("Pass a dict of parameter name (str) -> array, e.g. "
                     "{k: v.numpy() for k, v in model.state_dict().items()}.")
        raise InputError("\n".join(parts))


def translate(state: dict, keymap: dict[str, str | None] | None) -> tuple[dict, list[str]]:
    """Rename checkpoint keys to graph keys. Returns (renamed dict, keys with no mapping).
    A key mapped to None is known and deliberately dropped."""
    state = {k: v for k, v in state.items() if not k.endswith(IGNORED_SUFFIXES)}
    if keymap is None:
        return dict(state), []
    renamed, unmapped = {}, []
    for k, v in state.items():
        if k not in keymap:
            unmapped.append(k)
        elif keymap[k] is not None:     # None: a key the map names as not needed at
            renamed[keymap[k]] = v      # inference (e.g. GoogLeNet's auxiliary classifiers)
    return renamed, unmapped


def _squeezed(shape) -> tuple:
    """A shape without trailing 1s past the second axis: (1280, 960, 1, 1) -> (1280, 960)."""
    shape = tuple(shape)
    while len(shape) > 2 and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def check_state(graph: Graph, state: dict, keymap=None, source="checkpoint", layout="") -> dict:
    """Translate and verify; return {graph key: float32 array} or raise WeightsMismatchError.

    The one shape difference accepted is a 1x1 conv stored where the network has a fully
    connected layer or the reverse ((O, I, 1, 1) vs (O, I)): the same numbers, which
    references disagree on (MobileNetV3's head is a Linear in torchvision, a conv in timm)."""
    renamed, unmapped = translate(state, keymap)
    expected = graph.expected_params()
    for k, shape in expected.items():
        if k in renamed and tuple(np.shape(renamed[k])) != shape \
                and _squeezed(np.shape(renamed[k])) == _squeezed(shape):
            renamed[k] = np.reshape(renamed[k], shape)
    missing = [k for k in expected if k not in renamed]
    unexpected = [printable(k) for k in unmapped + [k for k in renamed if k not in expected]]
    wrong = [f"{k}: checkpoint {tuple(np.shape(renamed[k]))}, network {expected[k]}"
             for k in expected if k in renamed and tuple(np.shape(renamed[k])) != expected[k]]
    if missing or unexpected or wrong:
        parts = [f"{source} does not fit this network"
                 + (f" (read as the {layout!r} layout)" if layout else "") + ":"]
        if missing:
            parts.append(_listing("missing keys", missing))
        if unexpected:
            parts.append(_listing("unexpected keys", unexpected))
        if wrong:
            parts.append(_listing("shape mismatches", wrong))
        parts.append("Check that the checkpoint is for this model and width multiplier "
                     "(tinyinfer.load(name, weights=..., width_mult=...)), or pass layout=... "
                     "to choose the key layout explicitly.")
        raise WeightsMismatchError("\n".join(parts))
    out = {}
    for k, v in renamed.items():
        try:
            a = np.asarray(v)
        except (TypeError, ValueError, RuntimeError) as e:   # e.g. a tensor that needs grad
            raise InputError(f"{source}: {printable(k)} cannot be read as an array "
                             f"({str(e)[:120]}); pass NumPy arrays (for a torch tensor: "
                             "t.detach().numpy())") from None
        # integers too: index buffers (CondenseNet's channel_select), exact in float32
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise WeightsMismatchError(f"{source}: {printable(k)} has dtype {a.dtype}; "
                                       "expected floats")
        out[k] = np.ascontiguousarray(a, dtype=np.float32)
    return out


def assign(graph: Graph, arrays: dict) -> None:
    for node in graph:
        node.params = {p: arrays[f"{node.name}.{p}"] for p in node.param_shapes}


def load_into(graph: Graph, state: dict, layouts: dict, layout: str | None = None,
              source="checkpoint") -> str:
    """Load ``state`` into ``graph`` using ``layout`` or, if None, the layout whose key set
    matches; returns the layout used. With no exact match, the error reports the layout that
    came closest."""
    check_entries(state, source)
    if layout is not None:
        if layout not in layouts:
            raise WeightsMismatchError(f"unknown layout {layout!r} for this model; "
                                       f"known: {', '.join(layouts)}")
        candidates = [layout]
    else:
        candidates = list(layouts)
    keys = {k for k in state if not k.endswith(IGNORED_SUFFIXES)}
    best, best_score = candidates[0], float("-inf")
    for name in candidates:
        keymap = layouts[name](graph) if layouts[name] else None
        names = set(keymap) if keymap is not None else set(graph.expected_params())
        score = len(keys & names) - len(keys ^ names)
        if score > best_score:
            best, best_score = name, score
    keymap = layouts[best](graph) if layouts[best] else None
    assign(graph, check_state(graph, state, keymap, source, best))
    return best


def random_init(graph: Graph, seed: int = 0) -> None:
    """Weights for counting and benchmarks: He-normal convs and linears, identity BN."""
    rng = np.random.default_rng(seed)
    for node in graph:
        params = {}
        for p, shape in node.param_shapes.items():
            if node.kind == "batchnorm":
                params[p] = np.ones(shape, np.float32) if p in ("weight", "running_var") \
                    else np.zeros(shape, np.float32)
            elif p == "bias":
                params[p] = np.zeros(shape, np.float32)
            elif p == "index":      # a channel_select's list: keep the first channels
                params[p] = np.arange(shape[0], dtype=np.float32)
            else:
                fan_in = int(np.prod(shape[1:]))
                params[p] = rng.standard_normal(shape, dtype=np.float32) \
                    * np.float32(np.sqrt(2.0 / fan_in))
        node.params = params
