"""The house rules a newcomer relies on, read from the source with `ast`: no function of the
project's own code is longer than about 60 lines (its docstring not counted) unless its docstring
says why with "Long because"."""
from __future__ import annotations

import ast

from tests.test_imports import project_modules

MAX_LINES = 60


def body_lines(node: ast.FunctionDef) -> int:
    """Lines of a function from its `def` to its end, its docstring left out."""
    lines = node.end_lineno - node.lineno + 1
    doc = node.body[0] if node.body and isinstance(node.body[0], ast.Expr) else None
    if doc is not None and isinstance(doc.value, ast.Constant) and isinstance(doc.value.value, str):
        lines -= doc.end_lineno - doc.lineno + 1
    return lines


def long_functions(source: str) -> list[tuple[str, int]]:
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and body_lines(node) > MAX_LINES:
            if "Long because" not in (ast.get_docstring(node) or ""):
                out.append((node.name, body_lines(node)))
    return out


def test_the_rule_sees_a_long_function_and_its_reason():
    body = "\n".join(f"    x{i} = {i}" for i in range(70))
    assert long_functions(f"def f():\n    '''Doc.'''\n{body}\n") == [("f", 71)]
    assert long_functions(f"def f():\n    '''Long because: a table of cases.'''\n{body}\n") == []


def test_no_long_function_without_a_reason():
    found = [f"{path}: {name} ({n} lines)" for name_, path in project_modules().items()
             for name, n in long_functions(path.read_text())]
    assert not found, "functions over 60 lines; split them or say 'Long because ...' in the docstring:\n" + "\n".join(found)
