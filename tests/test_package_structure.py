"""No import cycles anywhere in the package, and no oversized kernel module.

The graph is read from the source (every ``import`` / ``from ... import`` statement, at
module level or inside a function: a deferred import inside a function is how a cycle
usually hides), not from ``sys.modules``, so a cycle fails here even if today's import
order happens to work.
"""
import ast
from pathlib import Path

import tinyinfer

PACKAGE = Path(tinyinfer.__file__).parent


def module_name(path: Path) -> str:
    parts = ("tinyinfer",) + path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set) -> set:
    """The package modules that ``path`` imports (resolving relative imports)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            base = (base + "." + node.module if node.module else base) if node.level \
                else node.module
            # "from . import conv" imports the module tinyinfer.kernels.conv
            targets = [base] + [base + "." + a.name for a in node.names]
        else:
            continue
        # A module's own parent packages are not edges: Python has already run their
        # __init__ by the time the module's body runs.
        found.update(t for t in targets if t in modules and not (name + ".").startswith(t + "."))
    return found


def import_graph() -> dict:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imported_modules(p, modules) for p in paths}


def find_cycle(graph: dict):
    """One cycle as a list of modules [a, b, ..., a], or None (depth-first search)."""
    state = {}                       # absent: unvisited, 1: on the current path, 2: done
    path = []

    def visit(m):
        state[m] = 1
        path.append(m)
        for nxt in sorted(graph[m]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        state[m] = 2
        path.pop()
        return None

    for m in sorted(graph):
        if m not in state:
            cycle = visit(m)
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_graph_sees_relative_and_deferred_imports():
    graph = import_graph()
    conv = graph["tinyinfer.kernels.conv"]
    assert "tinyinfer.kernels.common" in conv and "tinyinfer.errors" in conv
    assert "tinyinfer.kernels.conv" in graph["tinyinfer.engine.ops"]      # "from .kernels import conv"


def test_no_import_cycles_in_the_package():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


# The one module allowed past it: the pickle reader keeps its format essay (how torch.save
# lays out a checkpoint, opcode by opcode) beside the code that reads it.
LONG_ON_PURPOSE = {"tinyinfer.io.checkpoint.torch_pickle"}


def test_modules_stay_readable():
    """Files of a few hundred lines (the house standard's ~450), across the whole package."""
    sizes = {module_name(p): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    too_long = {m: n for m, n in sizes.items() if n > 450 and m not in LONG_ON_PURPOSE}
    assert not too_long, too_long
