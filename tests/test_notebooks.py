"""The notebooks are executed by the test run itself (pytest --nbmake, see pyproject.toml);
here: they are committed executed, so a reader on a code-hosting site sees the tables and
plots, and what they show is a clean top-to-bottom run (no errors, no cell skipped or run
twice) that publishes no path of the machine it ran on. To refresh them after a change:

    pip install -e ".[test,notebooks]"
    jupyter nbconvert --to notebook --execute --inplace notebooks/*.ipynb
"""
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# Where a home directory, an environment or this checkout would show through a traceback, a
# warning or a printed path. (An interactive cell's own /tmp/ipykernel_*/*.py name, which a
# warning raised from the cell shows, says nothing about the machine and is allowed.)
PRIVATE_PATH = re.compile("|".join([r"/root/", r"/home/", r"/Users/", r"[A-Za-z]:\\Users",
                                    r"site-packages", r"\.pyenv", re.escape(str(ROOT))]))


def test_the_notebooks_exist():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06", "08", "09",
                                               "10", "11", "12"]


def output_text(output) -> str:
    if output.output_type == "stream":
        return output.text
    if output.output_type == "error":
        return "\n".join(output.traceback)
    return "\n".join(v for k, v in output.get("data", {}).items()
                     if k.startswith("text/") and isinstance(v, str))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_executed_top_to_bottom(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), \
        f"{path.name}: execute it top to bottom in a fresh kernel (see this file's docstring)"
    outputs = [o for c in code for o in c.outputs]
    assert outputs, f"{path.name}: committed without outputs"
    assert not [o for o in outputs if o.output_type == "error"], f"{path.name}: an error"
    for o in outputs:
        leak = PRIVATE_PATH.search(output_text(o))
        assert leak is None, f"{path.name}: output shows a local path ({leak.group(0)!r})"
