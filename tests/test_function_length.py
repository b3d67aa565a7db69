"""Orchestration reads in a screen: no function over ``LIMIT`` lines in training/, cli/, reports/
and analysis/ unless a ``# long: <reason>`` comment just above it (or its decorators) says why."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lit_algos"
FOLDERS = ("training", "cli", "reports", "analysis")
LIMIT = 60


def long_functions(path: Path, limit: int = LIMIT) -> list[str]:
    """``file:line name (n lines)`` of each function longer than ``limit`` lines (docstring and
    signature included) without a ``# long:`` comment on the line above its first line."""
    lines = path.read_text().splitlines()
    out = []
    for fn in ast.walk(ast.parse("\n".join(lines))):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        n = fn.end_lineno - fn.lineno + 1
        first = min([fn.lineno, *(d.lineno for d in fn.decorator_list)])
        reason = lines[first - 2].strip().startswith("# long:") if first > 1 else False
        if n > limit and not reason:
            out.append(f"{path.name}:{fn.lineno} {fn.name} ({n} lines)")
    return out


def test_no_long_function_without_a_reason():
    found = [
        f
        for folder in FOLDERS
        for path in sorted((PACKAGE / folder).rglob("*.py"))
        for f in long_functions(path)
    ]
    assert found == []


def test_the_checker_finds_a_long_function_and_accepts_a_reason(tmp_path):
    body = "".join(f"    x{i} = {i}\n" for i in range(LIMIT))
    path = tmp_path / "m.py"
    path.write_text(
        f"def long():\n{body}\n\n# long: a table written out\ndef explained():\n{body}\n\ndef short():\n    pass\n"
    )
    assert long_functions(path) == [f"m.py:1 long ({LIMIT + 1} lines)"]
