"""A loaded network: the graph as built (with its weights), the optimized graph that runs,
and the model's metadata. Calling it runs the Numba kernels."""
from __future__ import annotations

import numpy as np

from .errors import InputError
from .graph import Graph
from .models.registry import ModelSpec
from .ops import infer_shapes
from .passes import optimize
from .runtime import execute


class Model:
    def __init__(self, spec: ModelSpec, graph: Graph, build_kwargs: dict, weights_source: str):
        self.spec = spec
        self.name = spec.name
        self.graph = graph                  # as built: conv, BN and activation nodes apart
        self.plan = optimize(graph)         # what runs: BN folded, epilogues fused
        self.build_kwargs = build_kwargs
        self.weights_source = weights_source

    def __repr__(self):
        kw = ", ".join(f"{k}={v}" for k, v in self.build_kwargs.items())
        return (f"<tinyinfer.Model {self.name}({kw}): {len(self.plan)} kernels, "
                f"weights: {self.weights_source}>")

    def check_input(self, x) -> np.ndarray:
        if not isinstance(x, np.ndarray):
            raise InputError(f"{self.name} expects a NumPy array of shape (N, 3, H, W); got "
                             f"{type(x).__name__}. For an image file or PIL image use "
                             f"tinyinfer.run() or tinyinfer.preprocess() first.")
        if x.ndim != 4 or x.shape[1] != self.graph.in_channels:
            hint = " (it looks like NHWC: use x.transpose(0, 3, 1, 2))" \
                if x.ndim == 4 and x.shape[-1] == self.graph.in_channels else ""
            hint += " (add a batch axis: x[None])" if x.ndim == 3 else ""
            raise InputError(f"{self.name} expects input of shape (N, {self.graph.in_channels}, "
                             f"H, W); got {x.shape}{hint}")
        if x.dtype != np.float32:
            if not np.issubdtype(x.dtype, np.floating):
                raise InputError(f"{self.name} expects float32 input (a normalized image); got "
                                 f"{x.dtype}. Use tinyinfer.preprocess(image) for uint8 images.")
            x = x.astype(np.float32)
        if x.shape[0] == 0:
            raise InputError(f"{self.name} got an empty batch {x.shape}")
        try:
            shapes = infer_shapes(self.plan, x.shape)
        except InputError as e:
            raise InputError(f"{self.name} cannot run on input {x.shape}: {e}. "
                             f"Use a larger image (the reference size is {self.spec.input_size}).") from None
        del shapes
        return np.ascontiguousarray(x)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x: float32 (N, 3, H, W), normalized as the model expects -> logits (N, classes)."""
        return execute(self.plan, self.check_input(x))

    def summary(self, resolution: int | None = None, batch: int = 1, itemsize: int = 4,
                convention: str = "paper"):
        """Static per-layer counts at ``resolution`` (default: the model's input size).
        itemsize: bytes per element for the bytes/memory columns (2 for float16);
        convention: add a column counted as another tool does (see conventions.py)."""
        from .report import summarize
        r = resolution or self.spec.input_size
        return summarize(self, (batch, self.graph.in_channels, r, r), itemsize, convention)

    def profile(self, x, runs: int = 5, warmup: int = 1, itemsize: int = 4,
                convention: str = "paper"):
        """Measured per-layer report: x is a (N, 3, H, W) float32 array or an image (path,
        PIL image, HxWx3 uint8), run warmup + runs times; each layer's fastest time,
        GFLOP/s and share of this machine's measured peak (tinyinfer.machine)."""
        from .report import profile
        return profile(self, x, runs, warmup, itemsize, convention)

    def predict(self, image, topk: int = 5) -> list[tuple[str, float]]:
        """One image (path, PIL image, HxWx3 uint8) -> top-k (label, probability), with this
        model's own preprocessing."""
        from .image import preprocess, topk as top
        x = preprocess(image, resize=self.spec.resize, crop=self.spec.input_size,
                       mean=self.spec.mean, std=self.spec.std,
                       interpolation=self.spec.interpolation)
        return top(self(x)[0], k=topk)
