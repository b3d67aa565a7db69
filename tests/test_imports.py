"""Imports inside functions are the exception, and each says why.

The import floors and the absence of circles are checked by import-linter (``make test`` runs
``lint-imports``; the contracts are in pyproject.toml). What a contract cannot see is why an import
sits in a function: a circle hidden there was the common case. So every function-level import
block carries a one-line reason, on the line above it or on its first line (in practice: keeping
``lit-algos --help`` and ``import lit_algos`` light, an optional or slow dependency, Lightning
after a run's header, a name a test replaces).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lit_algos"


def unexplained_imports(path: Path) -> list[str]:
    """``file:line`` of each function-level import block without a comment above or beside it."""
    src = path.read_text()
    lines = src.splitlines()
    out = []
    for fn in ast.walk(ast.parse(src)):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            for name in ("body", "orelse", "finalbody"):
                previous_was_import = False
                block = getattr(node, name, None)
                for stmt in block if isinstance(block, list) else []:
                    is_import = isinstance(stmt, (ast.Import, ast.ImportFrom))
                    if is_import and not previous_was_import:
                        above = lines[stmt.lineno - 2].strip() if stmt.lineno > 1 else ""
                        if not above.startswith("#") and "#" not in lines[stmt.lineno - 1]:
                            out.append(f"{path.relative_to(PACKAGE.parent)}:{stmt.lineno}")
                    previous_was_import = is_import
    return sorted(set(out))


def test_every_function_level_import_says_why():
    missing = [where for path in sorted(PACKAGE.rglob("*.py")) for where in unexplained_imports(path)]
    assert missing == []


def test_the_checker_finds_an_unexplained_import(tmp_path):
    (tmp_path / "lit_algos").mkdir()
    bad = tmp_path / "lit_algos" / "m.py"
    bad.write_text("def f():\n    import json\n\n    return json\n\n\ndef g():\n    # why\n    import json\n")
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "lit_algos"
    try:
        assert unexplained_imports(bad) == ["lit_algos/m.py:2"]
    finally:
        PACKAGE = saved
