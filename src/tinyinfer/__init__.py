"""tinyinfer: a pure NumPy/Numba inference engine for efficient vision networks.

    import tinyinfer
    tinyinfer.run("mobilenet_v2", "photo.jpg")          # [(label, probability), ...] top 5
    m = tinyinfer.load("mobilenet_v2")                   # pretrained; weights=None for random
    logits = m(x)                                        # x: float32 (N, 3, H, W)
    tinyinfer.topk(logits, 5)                            # per image [(label, probability), ...]
    print(m.summary(resolution=160))                     # per-layer MACs, params, bytes
    tinyinfer.summary("mobilenet_v2", width_mult=2.0)    # the same, without building weights
    tinyinfer.evaluate("mobilenet_v2", "val/")            # top-1, top-5 over a dataset folder
"""
__version__ = "0.1.0"

from .api import build, list_models, load, preprocess_for, run, summary  # noqa: E402, F401
from .errors import (CheckpointError, CheckpointNotFoundError, ImageError,  # noqa: E402, F401
                     InputError, ModelNotFoundError, TinyInferError, WeightsMismatchError,
                     WeightsNotFoundError)
from .io.image import top_classes, topk  # noqa: E402, F401
# after this line tinyinfer.evaluate is the function; the module is tinyinfer.evaluate in
# sys.modules (from tinyinfer.evaluate import Evaluation works)
from .evaluate import evaluate  # noqa: E402, F401


def preprocess(image, **kwargs):
    """An image (path, PIL image, HxWx3 uint8 array) -> (1, 3, 224, 224) float32, torchvision's
    eval transform. See tinyinfer.io.image.preprocess for the options."""
    from .io.image import preprocess as _preprocess
    return _preprocess(image, **kwargs)
