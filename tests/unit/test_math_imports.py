"""DESIGN.md: `math/` imports nothing but torch and the standard library (dependencies point one way)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

MATH_DIR = Path(__file__).resolve().parents[2] / "src" / "reweightlab" / "math"
MATH_FILES = sorted(MATH_DIR.glob("*.py"))


def _imports(tree: ast.AST):
    """(module name, relative level) of every import statement, at any depth (function-local too)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, 0
        elif isinstance(node, ast.ImportFrom):
            yield node.module or "", node.level


def test_math_package_exists():
    assert MATH_FILES, f"no python files under {MATH_DIR}"
    assert (MATH_DIR / "__init__.py") in MATH_FILES


@pytest.mark.parametrize("path", MATH_FILES, ids=lambda p: p.name)
def test_imports_only_torch_and_stdlib(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for module, level in _imports(tree):
        if level == 0:
            top = module.split(".")[0]
            assert top == "torch" or top in sys.stdlib_module_names, f"{path.name} imports {module!r}"
        else:
            # `from . import x` / `from .kl import y` stay inside math/; `from .. import` leaves it.
            assert level == 1, f"{path.name}: relative import {'.' * level}{module} leaves reweightlab.math"


def test_checker_rejects_a_forbidden_import():
    """The walker above must actually see imports, including nested ones."""
    tree = ast.parse("def f():\n    import numpy\n    from ..models import x\n")
    found = list(_imports(tree))
    assert ("numpy", 0) in found and ("models", 2) in found
    assert "numpy" not in sys.stdlib_module_names
