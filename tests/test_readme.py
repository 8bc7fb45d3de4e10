"""The README's model table and commands stay true."""
from pathlib import Path

from tinyinfer.cli import models_markdown

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_model_table_is_the_registry():
    table = README.split("<!-- models:start -->\n")[1].split("<!-- models:end -->")[0].strip()
    assert table == models_markdown(), "run `python -m tinyinfer list --markdown` and paste it"


def test_ci_runs_the_readme_test_command():
    command = "bash scripts/test.sh"
    assert f"    {command}\n" in README
    assert command in (ROOT / ".ci" / "run").read_text()
