"""The house rules a newcomer relies on, read from the source with `ast`: no function of the
project's own code is longer than about 60 logical lines (its statements, docstring not counted)
unless its docstring says why with "Long because"."""

from __future__ import annotations

import ast

from tests.test_imports import project_modules

MAX_LINES = 60


def body_lines(node: ast.FunctionDef) -> int:
    """Logical lines of a function: the `def` and every statement in it (nested ones included),
    its docstring left out. A call the formatter wraps over several lines is one statement, so the
    count does not depend on the formatter's line length."""
    body = node.body
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        body = body[1:]
    return 1 + len({n.lineno for stmt in body for n in ast.walk(stmt) if isinstance(n, ast.stmt)})


def long_functions(source: str) -> list[tuple[str, int]]:
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and body_lines(node) > MAX_LINES:
            if "Long because" not in (ast.get_docstring(node) or ""):
                out.append((node.name, body_lines(node)))
    return out


def test_the_rule_sees_a_long_function_and_its_reason():
    body = "\n".join(f"    x{i} = {i}" for i in range(70))
    assert long_functions(f"def f():\n    'Doc.'\n{body}\n") == [("f", 71)]
    assert long_functions(f"def f():\n    'Long because: a table of cases.'\n{body}\n") == []
    wrapped = "    y = max(\n" + "".join(f"        {i},\n" for i in range(80)) + "    )\n"
    assert long_functions(f"def g():\n{wrapped}") == []  # one statement, however it is wrapped


def test_no_long_function_without_a_reason():
    found = [
        f"{path}: {name} ({n} lines)"
        for name_, path in project_modules().items()
        for name, n in long_functions(path.read_text())
    ]
    assert not found, "functions over 60 lines; split them or say 'Long because ...' in the docstring:\n" + "\n".join(
        found
    )
