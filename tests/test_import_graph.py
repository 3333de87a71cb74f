"""The package's modules import each other without a cycle, at module level or inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import nsfw_mobilenet

PACKAGE = nsfw_mobilenet.__name__
PACKAGE_DIR = Path(nsfw_mobilenet.__file__).parent
MODULES = {path.stem for path in PACKAGE_DIR.glob("*.py")}  # "__init__" is the package itself


def _target(name: str) -> str | None:
    """The package module an absolute dotted name refers to (None: outside the package)."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    return parts[1] if len(parts) > 1 and parts[1] in MODULES else "__init__"


def internal_imports(source: str) -> set[str]:
    """The package modules a module's `source` imports anywhere (in functions and TYPE_CHECKING blocks too)."""
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {_target(alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            # the package's modules sit at its top level: `from .x import y` is nsfw_mobilenet.x
            base = PACKAGE + (f".{node.module}" if node.module else "") if node.level else node.module or ""
            if base == PACKAGE:  # `from . import data`: a module, or a name of the package itself
                imported |= {alias.name if alias.name in MODULES else "__init__" for alias in node.names}
            else:
                imported.add(_target(base))
    return imported - {None}


def import_graph() -> dict[str, set[str]]:
    return {module: internal_imports((PACKAGE_DIR / f"{module}.py").read_text()) - {module} for module in MODULES}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" after

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = "open"
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                return path[path.index(imported):] + [imported]
            if imported not in state:
                cycle = visit(imported, path + [imported])
                if cycle:
                    return cycle
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module, [module])
            if cycle:
                return cycle
    return None


def test_imports_are_read_relative_absolute_and_inside_functions():
    source = """
import numpy
import nsfw_mobilenet
from . import data, WEIGHTS_ENV
from .subsets import RunData
from nsfw_mobilenet.taxonomy import BINARY
import nsfw_mobilenet.models

def later():
    from .train import train
"""
    assert internal_imports(source) == {"__init__", "data", "subsets", "taxonomy", "models", "train"}


def test_type_checking_imports_count_too():
    assert "export" in import_graph()["scan_evaluation"]


def test_the_package_import_graph_has_no_cycle():
    assert find_cycle(import_graph()) is None


def test_a_cycle_is_found_and_named():
    assert find_cycle({"augment": {"train"}, "train": {"data", "augment"}, "data": set()}) == [
        "augment", "train", "augment"]
