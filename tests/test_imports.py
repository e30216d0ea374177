"""The import rules of the design, read from the source with `ast` (nothing is imported):
no import circle between the project's modules; each folder imports only the layers below it;
nothing below jobs/ imports it; a job (jobs/backtest.py, jobs/sweep/, jobs/zoo.py, jobs/paper.py)
uses another job only through the shared modules (jobs/market, periods, store, engines) or the
other job's `__all__`, and the shared modules use no job; no module of the project's code (benchmarks
included) takes a private name (`_x`) of another module, by `from m import _x` or `m._x`: what one
module needs from another is public and documented there. Tests are the exception: a test may
reach into the internals of the module it tests.

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
            continue  # the wiring (run_backtest.py, jobs/) may use every part
        for target in targets:
            other = package_of(target)
            if other != package and other not in MAY_IMPORT[package]:
                broken.append(f"{module} imports {target}")
    assert not broken, "\n".join(broken)


def test_nothing_imports_the_command_line():
    graph = import_graph()
    assert not [m for m, targets in graph.items() if "run_backtest" in targets]


# ----------------------------------------------------------------------------- the jobs/ floor
JOBS = ("jobs.backtest", "jobs.sweep", "jobs.zoo", "jobs.paper")  # a job: a module or a package
SHARED = ("jobs", "jobs.market", "jobs.periods", "jobs.store", "jobs.engines")


def job_of(module: str) -> str | None:
    """The job a module belongs to (jobs.sweep.runners -> jobs.sweep), or None for any other module."""
    return next((job for job in JOBS if module == job or module.startswith(job + ".")), None)


def exported(path: Path) -> set[str] | None:
    """The names of a module's `__all__` (a literal list or tuple of strings), None without one."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return {elt.value for elt in node.value.elts}
    return None


def scope_bindings(tree: ast.Module) -> tuple[dict, dict]:
    """(node -> its enclosing scope, scope -> {name: the import node binding it, or None for any
    other binding}): enough to tell which `zoo` an attribute `zoo.x` means."""
    scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.Module)
    parent_scope, bound = {}, {}

    def walk(node, scope):
        for child in ast.iter_child_nodes(node):
            parent_scope[child] = scope
            inner = child if isinstance(child, scopes) else scope
            names = bound.setdefault(scope, {})
            if isinstance(child, ast.ImportFrom):
                names.update({(a.asname or a.name): child for a in child.names})
            elif isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                names[child.id] = None
            elif isinstance(child, ast.arg):
                bound.setdefault(inner, {})[child.arg] = None
            walk(child, inner)

    walk(tree, tree)
    return parent_scope, bound


def job_reaches(source: str, module: str, exports: dict[str, set[str]]) -> list[str]:
    """The names `module` (a job, or the command line) takes from another job that are not in that
    job's `__all__`: `from jobs.zoo import x`, or `from jobs import zoo` then `zoo.x`. `exports`:
    job -> its __all__."""
    own = job_of(module)
    out = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or not node.module:
            continue
        for alias in node.names:
            if f"{node.module}.{alias.name}" in exports:
                continue  # `from jobs import zoo`: a job as a module, its attributes are checked below
            if node.module in exports and node.module != own and alias.name not in exports[node.module]:
                out.append(f"{module}: from {node.module} import {alias.name}")
            elif job_of(node.module) not in (None, own) and node.module not in exports:
                out.append(f"{module}: from {node.module} import {alias.name} (inside another job)")
    parent_scope, bound = scope_bindings(tree)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)):
            continue
        scope = parent_scope[node]
        while node.value.id not in bound.get(scope, {}) and scope is not tree:
            scope = parent_scope[scope]
        binding = bound.get(scope, {}).get(node.value.id)
        if binding is None:
            continue
        alias = next(a for a in binding.names if (a.asname or a.name) == node.value.id)
        job = f"{binding.module}.{alias.name}"
        if job in exports and job != own and node.attr not in exports[job]:
            out.append(f"{module}: {node.value.id}.{node.attr} (not in {job}.__all__)")
    return out


def top_level_names(source: str) -> set[str]:
    """The names a module binds at its top level: defs, classes, assignments, imports."""
    out = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            out |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            out |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return out


def job_exports(modules: dict[str, Path]) -> dict[str, set[str]]:
    out = {}
    for job in JOBS:
        names = exported(modules[job])
        assert names is not None, f"{modules[job]}: a job module lists its public names in __all__"
        out[job] = names
    return out


def test_the_job_rule_sees_a_reach_into_another_job():
    exports = {"jobs.zoo": {"run_zoo"}, "jobs.sweep": {"run_sweep"}}
    fine = "from jobs.zoo import run_zoo\nfrom jobs import sweep\nsweep.run_sweep()\nfrom jobs.sweep.spec import x\n"
    assert job_reaches(fine.replace("from jobs.sweep.spec import x\n", ""), "jobs.paper", exports) == []
    assert job_reaches("from jobs.sweep.spec import x\n", "jobs.sweep.report", exports) == []  # its own job
    found = job_reaches(
        "from jobs.zoo import _task\nfrom jobs import sweep\nsweep.helper()\nfrom jobs.sweep.runners import y\n",
        "jobs.paper",
        exports,
    )
    assert found == [
        "jobs.paper: from jobs.zoo import _task",
        "jobs.paper: from jobs.sweep.runners import y (inside another job)",
        "jobs.paper: sweep.helper (not in jobs.sweep.__all__)",
    ]


def test_nothing_below_jobs_imports_jobs():
    graph = import_graph()
    broken = [f"{m} imports {t}" for m, targets in graph.items() for t in targets if package_of(t) == "jobs"]
    broken = [b for b in broken if package_of(b.split()[0]) not in ("jobs", "run_backtest")]
    assert not broken, "\n".join(broken)


def test_shared_job_modules_use_no_job():
    graph = import_graph()
    broken = [f"{m} imports {t}" for m in SHARED for t in graph[m] if job_of(t)]
    assert not broken, "the shared modules serve the jobs; they call none:\n" + "\n".join(broken)


def test_a_job_uses_another_only_through_its_all():
    modules = project_modules()
    exports = job_exports(modules)
    for job, names in exports.items():
        missing = sorted(names - top_level_names(modules[job].read_text()))
        assert not missing, f"{job}.__all__ names what it does not define: {missing}"
    broken = []
    for module, path in modules.items():
        if job_of(module) or module == "run_backtest":
            broken += job_reaches(path.read_text(), module, exports)
    assert not broken, (
        "a job reaches into another job's internals (share it via jobs/store, periods, ...):\n" + "\n".join(broken)
    )


# ----------------------------------------------------------------------------- private names
def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_reaches(source: str, where: str, modules: dict) -> list[str]:
    """`from m import _x` and `m._x` (m imported as a project module) in `source`: another
    module's private names."""
    out, aliases = [], set()
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out += [f"{where}: from {node.module} import {a.name}" for a in node.names if is_private(a.name)]
            aliases |= {a.asname or a.name for a in node.names if f"{node.module}.{a.name}" in modules}
        elif isinstance(node, ast.Import):
            aliases |= {a.asname or a.name.split(".")[0] for a in node.names if a.name in modules}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            if is_private(node.attr):
                out.append(f"{where}: {node.value.id}.{node.attr}")
    return out


def test_the_private_rule_sees_a_private_import():
    modules = {"a": None, "a.b": None}
    source = (
        "from a.b import _x, y\nfrom a import b\nb._z()\nimport a.b as ab\nab._w\nself._ok\nfrom a import __all__\n"
    )
    assert sorted(private_reaches(source, "m", modules)) == ["m: ab._w", "m: b._z", "m: from a.b import _x"]


def test_no_module_takes_another_modules_private_names():
    modules = project_modules()
    files = {name: path for name, path in modules.items()}
    files |= {f"bench.{p.stem}": p for p in (ROOT / "bench").glob("*.py")}
    broken = [hit for name, path in files.items() for hit in private_reaches(path.read_text(), name, modules)]
    assert not broken, "make these public (and document them) where they are defined:\n" + "\n".join(broken)
