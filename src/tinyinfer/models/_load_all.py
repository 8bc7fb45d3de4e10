"""Importing this module imports every model file in this package, and so registers every
model: a new network is a new file, nothing else to edit. Shared helpers that register no
model are named with a leading underscore, or listed in _INFRASTRUCTURE."""
import importlib
import pkgutil

from . import __path__ as _models_path

_INFRASTRUCTURE = {"registry", "builder", "blocks", "_load_all"}

for _info in sorted(pkgutil.iter_modules(_models_path), key=lambda m: m.name):
    if not _info.name.startswith("_") and _info.name not in _INFRASTRUCTURE:
        importlib.import_module(f"{__package__}.{_info.name}")
