"""The import rules of the design, read from the source with `ast` (nothing is imported):
no import circle between the project's modules, and each folder imports only the layers below it.

    python -m pytest tests/test_imports.py -q
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("core", "feeds", "models", "strategies", "analyzers", "configs")
# what each package may import of the project (besides itself)
MAY_IMPORT = {
    "core": set(),
    "feeds": {"core"},
    "configs": {"core"},
    "models": {"core", "feeds"},
    "strategies": {"core", "feeds", "analyzers"},  # the vector engine reuses the metrics and trade log
    "analyzers": {"core", "feeds"},
}


def project_modules() -> dict[str, Path]:
    """Dotted module name -> file, for the project's own code (tests and benchmarks left out)."""
    modules = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in (".venv", "tests", "bench", "results", "cache") or rel.parts[0].startswith("."):
            continue
        name = ".".join(rel.with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    return modules


def imported_modules(path: Path, modules: dict) -> set[str]:
    """The project modules a file imports, at any depth of the file (function-level imports count:
    they run too). `from pkg import sub` names the submodule, not the package."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            subs = [f"{node.module}.{alias.name}" for alias in node.names]
            targets = [s for s in subs if s in modules] or [node.module]
        else:
            continue
        out |= {t for t in targets if t in modules}
    return out


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imported_modules(path, modules) - {name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path a -> b -> ... -> a, or None (depth-first search, 3 colours)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def package_of(module: str) -> str:
    return module.split(".")[0]


def test_find_cycle_finds_a_planted_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_circle_between_project_modules():
    graph = import_graph()
    assert len(graph) > 40, "the module walk found too little to mean anything"
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_each_layer_imports_only_the_layers_below_it():
    graph = import_graph()
    broken = []
    for module, targets in graph.items():
        package = package_of(module)
        if package not in MAY_IMPORT:
            continue  # the wiring (run_backtest.py, pipeline.py, sweep, zoo, papertrade) may use every part
        for target in targets:
            other = package_of(target)
            if other != package and other not in MAY_IMPORT[package]:
                broken.append(f"{module} imports {target}")
    assert not broken, "\n".join(broken)


def test_nothing_imports_the_command_line():
    graph = import_graph()
    assert not [m for m, targets in graph.items() if "run_backtest" in targets]
