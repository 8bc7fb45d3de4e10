"""Importing this module imports every model file, and so registers every model."""
from . import mobilenet_v1, mobilenet_v2  # noqa: F401
