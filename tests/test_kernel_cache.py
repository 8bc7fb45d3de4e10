"""kernels/_cache.py: a kernel's on-disk Numba cache is invalidated by an edit to ANY
kernel file, not only its own (Numba's default), so no stale machine code runs after an
edit to a helper it calls (the activation ladder, exp_f32, the micro-tile)."""
import hashlib
import inspect
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numba

import tinyinfer.kernels as K
from tinyinfer.kernels import _cache, activations, attention, conv_pointwise, linear, tiles


def _digest(directory: Path) -> str:
    """Written out here independently: sha256 over (name, bytes) of each .py, sorted."""
    h = hashlib.sha256()
    for p in sorted(directory.glob("*.py")):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def test_every_cached_kernel_is_stamped_with_all_kernel_sources():
    want = _digest(Path(K.__file__).parent)
    kernels = [obj for mod in (activations, attention, conv_pointwise, linear, tiles)
               for _, obj in inspect.getmembers(mod)
               if isinstance(obj, numba.core.registry.CPUDispatcher) and obj._cache is not None
               and getattr(obj._cache, "_impl", None) is not None]
    assert len(kernels) > 10
    for k in kernels:
        locator = k._cache._impl._locator
        assert isinstance(locator, _cache._KernelSourcesStamp), k.py_func.__qualname__
        assert locator.get_source_stamp() == want


def test_digest_changes_with_any_file(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        (d / "x.py").write_text("X = 1\n")
        (d / "y.py").write_text("Y = 1\n")
    (b / "y.py").write_text("Y = 2\n")
    assert _cache.kernel_sources_digest(a) == _digest(a)
    assert _cache.kernel_sources_digest(a) != _cache.kernel_sources_digest(b)


def test_an_edit_to_a_callee_in_another_file_recompiles_the_caller(tmp_path):
    """The bug itself, end to end: f in a.py calls g in b.py; b.py changes, a.py does not.
    With Numba's own stamp the second process loads f's cached code and prints 1 again
    (checked by hand: remove the install() line below and this test fails)."""
    pkg = tmp_path / "kern"
    pkg.mkdir()
    shutil.copy(_cache.__file__, pkg / "_cache.py")
    (pkg / "__init__.py").write_text("from . import _cache\n_cache.install()\n")
    (pkg / "a.py").write_text(textwrap.dedent("""
        import numba
        from .b import g

        @numba.njit(cache=True)
        def f():
            return g()
        """))
    callee = "import numba\n\n@numba.njit(cache=True)\ndef g():\n    return {}\n"
    run = [sys.executable, "-c", "from kern.a import f; print(f())"]
    # no .pyc: Python validates one by the source's mtime in whole seconds and its size,
    # and the two b.py files below have one size and are written within a second
    env = {"PYTHONPATH": str(tmp_path), "NUMBA_CACHE_DIR": str(tmp_path / "cache"),
           "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    outputs = []
    for value in (1, 2):
        (pkg / "b.py").write_text(callee.format(value))
        done = subprocess.run(run, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout.strip())
    assert outputs == ["1", "2"]
    assert any((tmp_path / "cache").rglob("*.nbi"))      # it did cache

