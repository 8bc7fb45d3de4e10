"""Test set-up shared by every test file.

torchvision 0.28's compiled extension on this machine is a CUDA build that fails to load,
so ``import torchvision`` raises "operator torchvision::nms does not exist" while it
registers meta kernels for detection ops. The model classes do not need those, so when
(and only when) the plain import fails we stand an empty module in for
``torchvision._meta_registrations`` and import again.
"""
import sys
import types

import numpy as np
import pytest


def _import_torchvision():
    try:
        import torchvision  # noqa: F401
    except Exception:
        for name in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[name]
        sys.modules["torchvision._meta_registrations"] = types.ModuleType(
            "torchvision._meta_registrations")
        import torchvision  # noqa: F401


_import_torchvision()

import torch  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
