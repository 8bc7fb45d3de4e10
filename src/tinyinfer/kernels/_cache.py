"""Numba's on-disk cache, made to notice edits to any kernel file.

Numba stamps a cached function with its own file's modification time and size only. A
kernel's machine code also contains what it calls from other files (the activation
ladder in activations.py, exp_f32 in vmath.py, the micro-tile in tiles.py), so after an
edit to one of those, every cached caller kept running the old code. Measured here on
2026-12-02 in a working copy: a conv's fused SiLU ran 8x slower (code cached before
vmath.py existed) until the cache was deleted; had an activation code been renumbered,
the output would have been silently wrong. An installed package is safe by accident
(installing gives every file a new time); a git checkout is not.

So every function defined in this package is stamped with a digest of ALL the package's
source files: an edit to any kernel file recompiles every kernel once. The locators are
Numba's own, in the same order (NUMBA_CACHE_DIR, then __pycache__ beside the source,
then the user-wide cache directory); only the stamp differs. Numba keeps the locator list
in ``CacheImpl._locator_classes`` (checked on 0.68; older releases spell the class names with
a leading underscore, and both spellings are tried).
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from numba.core import caching

KERNELS_DIR = Path(__file__).resolve().parent


@functools.lru_cache(maxsize=None)
def kernel_sources_digest(directory: Path = KERNELS_DIR) -> str:
    """sha256 over the names and contents of every .py file in ``directory``."""
    h = hashlib.sha256()
    for path in sorted(directory.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


class _KernelSourcesStamp:
    """Mixin for a Numba cache locator: claim only functions defined in KERNELS_DIR, and
    stamp them with the digest of all its sources instead of their own file's time."""

    def get_source_stamp(self):
        return kernel_sources_digest()

    @classmethod
    def from_function(cls, py_func, py_file):
        if Path(py_file).resolve().parent != KERNELS_DIR:
            return None
        return super().from_function(py_func, py_file)


def _numba(name):
    return getattr(caching, name, None) or getattr(caching, "_" + name)


class UserProvidedLocator(_KernelSourcesStamp, _numba("UserProvidedCacheLocator")):
    pass


class InTreeLocator(_KernelSourcesStamp, _numba("InTreeCacheLocator")):
    pass


class UserWideLocator(_KernelSourcesStamp, _numba("UserWideCacheLocator")):
    pass


def install() -> None:
    """Put the three locators first in Numba's list (idempotent). Must run before any
    kernel module is imported: a function finds its locator when it is decorated."""
    impl = _numba("CacheImpl")
    ours = [UserProvidedLocator, InTreeLocator, UserWideLocator]
    impl._locator_classes = ours + [c for c in impl._locator_classes if c not in ours]
