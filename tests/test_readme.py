"""The README's model table and commands stay true."""
import importlib.util
import subprocess
import sys
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


def _use_section_commands(program: str) -> list[list[str]]:
    """The `program ...` lines of the README's Use section, comments dropped, as argv lists."""
    use = README.split("## Use\n")[1].split("\n## ")[0]
    return [line.split("#")[0].split()[1:] for line in use.splitlines()
            if line.startswith(program + " ")]


def test_readme_commands_parse_and_name_real_models_and_options():
    """Every `tinyinfer ...` line in Use parses with today's parser, names a registered
    model, and its architecture options are the model's own."""
    from tinyinfer import list_models
    from tinyinfer.cli import architecture_options, build_parser
    commands = _use_section_commands("tinyinfer")
    assert len(commands) >= 10
    parser = build_parser()
    for argv in commands:
        if argv == ["--version"]:           # prints and exits
            continue
        args = parser.parse_args(argv)
        if hasattr(args, "model"):
            assert args.model in list_models(), argv
        if hasattr(args, "option"):
            architecture_options(args)      # raises for an option the model lacks


def test_readme_extras_exist():
    import re
    import tomllib
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    named = set(re.findall(r'pip install -e "\.\[(\w+)\]"', README))
    assert {"bench", "notebooks"} <= named and named <= set(extras)
    assert "onnxruntime" in extras["bench"] and "jupyter" in extras["notebooks"]


def test_layout_section_is_the_package():
    """The README's layout map is generated from the package's docstrings: a module added,
    moved or renamed without regenerating it fails here (run python scripts/readme_layout.py)."""
    spec = importlib.util.spec_from_file_location("readme_layout",
                                                  ROOT / "scripts" / "readme_layout.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    block = README.split("<!-- layout:start -->\n```\n")[1].split("\n```\n<!-- layout:end -->")[0]
    assert block == module.layout()


def test_import_works_from_the_folder_that_holds_the_clone(tmp_path):
    """With the clone at ~/tinyinfer and Python started in ~, the clone folder (no
    __init__.py at its root) used to win as an empty namespace package: `tinyinfer.run` did
    not exist. The src/ layout keeps the package out of the clone's root, so the installed
    package wins from anywhere."""
    (tmp_path / "tinyinfer").symlink_to(ROOT, target_is_directory=True)
    done = subprocess.run([sys.executable, "-c", "import tinyinfer; print(tinyinfer.run.__module__)"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "tinyinfer.api"
