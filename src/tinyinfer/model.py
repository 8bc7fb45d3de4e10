"""A loaded network: the graph as built (with its weights), the optimized graph that runs,
and the model's metadata. Calling it runs the Numba kernels.

A model built without weights (``tinyinfer.summary``, ``api.build``) has the same graph and
plan, shapes only: it counts (summary) but cannot run, so a summary of an absurdly wide
network costs no memory."""
from __future__ import annotations

import numbers
import time
import warnings

import numpy as np

from .errors import InputError
from .engine.graph import Graph
from .models.registry import ModelSpec
from .engine import layout
from .engine.ops import infer_shapes
from .engine.passes import optimize
from .engine.runtime import execute


# Element sizes the bytes and memory columns can be counted in: int8, float16, float32, float64.
ITEMSIZES = (1, 2, 4, 8)


def positive_int(value, name: str) -> int:
    """``value`` if it is an int >= 1 (not a bool), else an InputError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_itemsize(itemsize) -> int:
    if isinstance(itemsize, bool) or not isinstance(itemsize, numbers.Integral) \
            or itemsize not in ITEMSIZES:
        raise InputError(f"itemsize is the bytes per element, one of "
                         f"{', '.join(map(str, ITEMSIZES))}; got {itemsize!r}")
    return int(itemsize)


class Model:
    def __init__(self, spec: ModelSpec, graph: Graph, build_kwargs: dict,
                 weights_source: str | None):
        """weights_source: where the weights came from, or None for a model built from
        shapes alone (no weights: it counts but cannot run)."""
        self.spec = spec
        self.name = spec.name
        self.graph = graph                  # as built: conv, BN and activation nodes apart
        self.plan = optimize(graph)         # what runs: BN folded, epilogues fused
        self.build_kwargs = build_kwargs
        self.weights_source = weights_source

    @property
    def has_weights(self) -> bool:
        return self.weights_source is not None

    def __repr__(self):
        kw = ", ".join(f"{k}={v}" for k, v in self.build_kwargs.items())
        return (f"<tinyinfer.Model {self.name}({kw}): {len(self.plan)} kernels, "
                f"weights: {self.weights_source or 'none (shapes only, for counting)'}>")

    def check_input(self, x) -> np.ndarray:
        if not self.has_weights:
            raise InputError(f"this {self.name} was built without weights, for counting: "
                             f"it can summarize but not run. Use tinyinfer.load({self.name!r}, "
                             f"weights=...) to run it.")
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
        # A shape that already ran is valid (the runtime keeps its layout): infer_shapes is
        # 0.2-0.3 ms a call, 6% of a MobileNetV3-Small.
        try:
            if not layout.has_run(self.plan, x.shape):
                infer_shapes(self.plan, x.shape)
        except InputError as e:
            raise InputError(f"{self.name} cannot run on input {x.shape}: {e}. "
                             f"{self._size_advice(x.shape)}") from None
        return np.ascontiguousarray(x)

    def _runs_on(self, h: int, w: int) -> bool:
        try:
            infer_shapes(self.plan, (1, self.graph.in_channels, h, w))
            return True
        except InputError:
            return False

    def _size_advice(self, shape, reach: int = 64) -> str:
        """What to do about an input size the network cannot take. Not always "larger":
        EdgeViT, MobileViT and the NAS cells need maps divisible by their strides, so 100 px
        fails where 96 and 112 work. Shape inference is cheap (no arithmetic), so this tries
        the sizes within ``reach`` pixels of each side and names the nearest that work."""
        h, w = shape[2], shape[3]
        give_up = time.perf_counter() + 2.0   # NASNet-A Large infers ~1000 nodes per try
        for d in range(1, reach + 1):
            if time.perf_counter() > give_up:
                break
            # nearest first; per side, since strides act on height and width separately
            found = [(hh, ww) for hh in (h - d, h, h + d) for ww in (w - d, w, w + d)
                     if hh >= 1 and ww >= 1 and max(abs(hh - h), abs(ww - w)) == d
                     and self._runs_on(hh, ww)]
            if found:   # the fewest sides changed first: a 0x5 input needs 1x5, not 1x4
                changed = [(hh != h) + (ww != w) for hh, ww in found]
                best = sorted(f for f, c in zip(found, changed) if c == min(changed))
                sizes = " or ".join(f"{hh}x{ww}" for hh, ww in best[:3])
                return (f"The nearest input sizes (H x W) that work are {sizes}: resize or crop "
                        f"to one of them (the reference size is {self.spec.input_size}).")
        return (f"No nearby size was found to work: use an image near the reference size, "
                f"{self.spec.input_size}.")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x: float32 (N, 3, H, W), normalized as the model expects -> logits (N, classes)."""
        return execute(self.plan, self.check_input(x))

    def summary(self, resolution: int | None = None, batch: int = 1, itemsize: int = 4,
                convention: str = "paper"):
        """Static per-layer counts at ``resolution`` (default: the model's input size).
        itemsize: bytes per element for the bytes/memory columns (2 for float16);
        convention: add a column counted as another tool does (see conventions.py)."""
        from .analysis.report import summarize
        r = self.spec.input_size if resolution is None else positive_int(resolution, "resolution")
        batch = positive_int(batch, "batch")
        return summarize(self, (batch, self.graph.in_channels, r, r), check_itemsize(itemsize),
                         convention)

    def profile(self, x, runs: int = 5, warmup: int = 1, itemsize: int = 4,
                convention: str = "paper"):
        """Measured per-layer report: x is a (N, 3, H, W) float32 array or an image (path,
        PIL image, HxWx3 uint8), run warmup + runs times. Each layer's time is the FASTEST of
        its ``runs`` timings (the one least disturbed by other processes), with the GFLOP/s
        and share of this machine's measured peak (tinyinfer.analysis.machine) it implies.
        Warns (``warnings.warn``) when other processes keep the CPU busy: the times are
        then too slow, by up to 80x on a loaded 2-core machine."""
        from .analysis.machine import busy_note
        from .analysis.report import profile
        if isinstance(warmup, bool) or not isinstance(warmup, numbers.Integral) or warmup < 0:
            raise InputError(f"warmup must be an integer >= 0, got {warmup!r}")
        check_itemsize(itemsize)
        note = busy_note()      # before we run: our own threads would raise the load
        if note:
            warnings.warn(f"{self.name} profile: {note}", RuntimeWarning, stacklevel=2)
        return profile(self, x, runs, warmup, itemsize, convention)

    def predict(self, image, topk: int = 5) -> list[tuple[str, float]]:
        """One image (path, PIL image, HxWx3 uint8) -> top-k (label, probability), with this
        model's own preprocessing."""
        from .io.image import topk as top
        return top(self(self.preprocess(image))[0], k=topk)

    def preprocess(self, image) -> np.ndarray:
        """One image (path, PIL image, HxWx3 uint8) -> the (1, 3, H, W) float32 array this
        model expects: its own resize, crop, interpolation, mean and std."""
        return preprocess_for_spec(self.spec, image)


def preprocess_for_spec(spec: ModelSpec, image) -> np.ndarray:
    from .io.image import preprocess
    return preprocess(image, resize=spec.resize, crop=spec.input_size, mean=spec.mean,
                      std=spec.std, interpolation=spec.interpolation)
