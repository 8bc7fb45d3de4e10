"""Decode and score a batch of images: the one piece of work that runs in process and in
every Dask worker, so that both give the same rows.

Each image goes through the network on its own (batch 1). tinyinfer's kernels choose their
loop order from the shapes, so an image's logits change in the last bits with the batch it
shares (measured: up to 3e-6 on MobileNetV2). Scoring one image at a time makes every
probability bit-identical whatever the batch size, the worker, a resumed run or a failed
image next to it. --batch-size is the unit of decoding, of Dask tasks and of what an
interrupted run can lose.

A row is a JSON-ready dict:
  {"path": key, "label": 0..999, "model": name, "top5": [class indices, best first], "probs": [their
   softmax probabilities]}
or, for an image that cannot be read, {"path", "label", "model", "error": "what went wrong"}.
--compare-with torch adds "ref_top5", "top5_agree" (same indices in the same order) and
"max_prob_diff" (the largest |ours - reference| over all 1000 probabilities).
"""
from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np

from ..errors import ImageError, WeightsNotFoundError

TOPK = 5


def read_weights(name: str, weights) -> dict:
    """The state dict ``weights`` stands for ("pretrained", a checkpoint path or a dict),
    read once in the calling process: it is what every Dask worker receives."""
    from ..io.checkpoint import read_checkpoint
    from ..models.registry import get_spec
    from ..io.pretrained import find
    if isinstance(weights, dict):
        return weights
    if isinstance(weights, str) and weights == "pretrained":
        spec = get_spec(name)
        if spec.pretrained is None:
            raise WeightsNotFoundError(f"{name} has no pretrained weights registered in "
                                       f"tinyinfer; evaluate it with --weights PATH")
        offline = os.environ.get("TINYINFER_OFFLINE", "") not in ("", "0")
        weights = find(spec.pretrained, download=not offline)
    return read_checkpoint(Path(weights))


def softmax64(logits: np.ndarray) -> np.ndarray:
    """Softmax of one row of logits in float64 (as image.top_classes computes it)."""
    row = logits.astype(np.float64)
    e = np.exp(row - row.max())
    return e / e.sum()


class Scorer:
    """A loaded network (and optionally its PyTorch reference) that turns items into rows.

    name, state: the model name and its state dict (read_weights); compare_with: None or
    "torch". Decoding (``decode``) and scoring (``score``) are separate so that a pool of
    threads can decode the next batch while this one runs through the network.
    """

    def __init__(self, name: str, state: dict, compare_with: str | None = None):
        from ..api import load
        self.name = name
        self.model = load(name, weights=state)
        self.reference = None
        if compare_with is not None:
            from .reference import reference_model
            self.reference = reference_model(name, state, compare_with)

    def decode(self, items) -> list:
        """items: Item (or (Item, bytes) when the images travel with the task) -> a list of
        (item, input (1, 3, H, W) float32 or the ImageError's message)."""
        from ..api import preprocess_for
        out = []
        for item in items:
            item, data = item if isinstance(item, tuple) else (item, None)
            try:
                if data is None:
                    x = preprocess_for(self.name, item.file)
                else:
                    x = preprocess_for(self.name, _open_bytes(data, item.key))
            except ImageError as e:
                x = str(e)
            out.append((item, x))
        return out

    def score(self, decoded) -> list[dict]:
        """The rows of decoded items (see the module docstring), in the same order."""
        rows = []
        for item, x in decoded:
            row = {"path": item.key, "label": item.label, "model": self.name}
            if isinstance(x, str):
                row["error"] = x
                rows.append(row)
                continue
            probs = softmax64(self.model(x)[0])
            top = np.argsort(-probs, kind="stable")[:TOPK]
            row["top5"] = [int(i) for i in top]
            row["probs"] = [float(probs[i]) for i in top]
            if self.reference is not None:
                ref = softmax64(self.reference(x)[0])
                ref_top = [int(i) for i in np.argsort(-ref, kind="stable")[:TOPK]]
                row["ref_top5"] = ref_top
                row["top5_agree"] = ref_top == row["top5"]
                row["max_prob_diff"] = float(np.abs(probs - ref).max())
            rows.append(row)
        return rows

    def run(self, items) -> tuple[list[dict], float, float]:
        """Decode then score ``items``: (rows, decode seconds, inference seconds)."""
        t0 = time.perf_counter()
        decoded = self.decode(items)
        t1 = time.perf_counter()
        rows = self.score(decoded)
        return rows, t1 - t0, time.perf_counter() - t1


def _open_bytes(data: bytes, key: str):
    from PIL import Image
    try:
        im = Image.open(io.BytesIO(data))
        im.load()
        return im
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, ...
        raise ImageError(f"cannot read image {key!r}: it is corrupt, truncated or not an "
                         f"image format PIL understands ({type(e).__name__}: {e})") from e
