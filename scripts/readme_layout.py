"""Prints the README's "How the code is laid out" block from the package itself: every
module and sub-package with the first line of its docstring (tests/test_readme.py keeps the
README equal to it). Run: python scripts/readme_layout.py"""
from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "tinyinfer"
NAME_WIDTH = 22
# models/ holds one file per network family besides its machinery: list those by name only
FAMILY_DIRS = {"models"}


WIDTH = 92
MAX_LINES = 2


def first_line(path: Path) -> str:
    """The docstring's first sentence (its first paragraph up to the first full stop)."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    return re.split(r"(?<=\.)\s", paragraph, maxsplit=1)[0]


def entry(indent: str, name: str, text: str) -> list[str]:
    """``name`` then ``text`` wrapped into the description column."""
    column = NAME_WIDTH
    head = f"{indent}{name}"
    head = head + " " * max(1, column - len(head))
    lines = textwrap.wrap(text, WIDTH - len(head)) or [""]
    if len(lines) > MAX_LINES:   # a map, not the docs: the module's docstring has the rest
        lines = lines[:MAX_LINES]
        while len(lines[-1]) + 4 > WIDTH - column:
            lines[-1] = lines[-1].rsplit(" ", 1)[0]
        lines[-1] += " ..."
    return [(head + lines[0]).rstrip()] + [" " * column + line for line in lines[1:]]


def describe(directory: Path, depth: int) -> list[str]:
    indent = "  " * depth
    lines = []
    files = sorted(p for p in directory.glob("*.py") if p.name != "__init__.py")
    if directory.name in FAMILY_DIRS:
        families = [p.stem for p in files if p.stem not in
                    {"blocks", "builder", "registry"} and not p.stem.startswith("_")]
        files = [p for p in files if p.stem in ("blocks", "builder", "registry")]
    for p in files:
        lines += entry(indent, p.name, first_line(p))
    if directory.name in FAMILY_DIRS:
        lines += entry(indent, "<family>.py", "one file per network family: "
                       + ", ".join(families) + ".")
    for sub in sorted(d for d in directory.iterdir() if (d / "__init__.py").exists()):
        lines += entry(indent, sub.name + "/", first_line(sub / "__init__.py"))
        lines.extend(describe(sub, depth + 1))
    return lines


def layout() -> str:
    return "\n".join(["src/tinyinfer/"] + describe(PACKAGE, 1))


if __name__ == "__main__":
    print(layout())
