"""tinyinfer: a pure NumPy/Numba inference engine for efficient vision networks.

    import tinyinfer
    tinyinfer.run("mobilenet_v2", "photo.jpg")          # [(label, probability), ...] top 5
    m = tinyinfer.load("mobilenet_v2")                   # pretrained; weights=None for random
    logits = m(x)                                        # x: float32 (N, 3, H, W)
    print(m.summary(resolution=160))                     # per-layer MACs, params, bytes
"""
from .api import load, list_models, preprocess_for, run  # noqa: F401
from .errors import (CheckpointError, CheckpointNotFoundError, ImageError,  # noqa: F401
                     InputError, ModelNotFoundError, TinyInferError, WeightsMismatchError,
                     WeightsNotFoundError)

__version__ = "0.1.0"


def preprocess(image, **kwargs):
    """An image (path, PIL image, HxWx3 uint8 array) -> (1, 3, 224, 224) float32, torchvision's
    eval transform. See tinyinfer.image.preprocess for the options."""
    from .image import preprocess as _preprocess
    return _preprocess(image, **kwargs)
