"""Importing the PyTorch references (benchmarks and tests only; tinyinfer never needs torch).

torchvision 0.28's compiled extension on this machine is a CUDA build that fails to load, so
``import torchvision`` raises "operator torchvision::nms does not exist" while registering
meta kernels for detection ops. The classification models do not need those: when (and only
when) the plain import fails, an empty module stands in for
``torchvision._meta_registrations`` and the import is tried again.
"""
import sys
import types


def import_torchvision():
    try:
        import torchvision
    except Exception:
        for name in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[name]
        sys.modules["torchvision._meta_registrations"] = types.ModuleType(
            "torchvision._meta_registrations")
        import torchvision
    return torchvision
