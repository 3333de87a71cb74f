"""The package's layers: subpackages import only the layers below them, without a cycle, and a scan starts
without the training stack."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import nsfw_mobilenet

PACKAGE = nsfw_mobilenet.__name__
PACKAGE_DIR = Path(nsfw_mobilenet.__file__).parent
# each layer and the layers it may import (besides itself); cli and __main__ sit above all of them
ALLOWED = {
    "core": set(),
    "io": {"core"},
    "evaluation": {"core", "io"},
    "training": {"core", "io", "evaluation"},
    "app": {"core", "io", "evaluation"},
    "studies": {"core", "io", "evaluation", "training", "app"},
}
# cli hands os.environ to `settings_from_environment`; the child processes of Kangas get `Settings.environment`.
ENVIRONMENT_EDGES = {"cli"}


def module_name(path: Path) -> str:
    """`core.paths` for lib/nsfw_mobilenet/core/paths.py, `cli` for cli.py, `io` for io/__init__.py."""
    parts = path.relative_to(PACKAGE_DIR).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or "__init__"


MODULES = {module_name(path): path for path in PACKAGE_DIR.rglob("*.py")}


def _resolve(name: str, current: str, level: int) -> str:
    """The package module `from <name> import …` refers to, seen from module `current`, relative imports resolved."""
    if not level:
        return name.removeprefix(PACKAGE).removeprefix(".")
    is_package = current in MODULES and MODULES[current].name == "__init__.py"
    package = [] if current == "__init__" else current.split(".")[: None if is_package else -1]
    return ".".join([*package[: len(package) - level + 1], *([name] if name else [])])


def internal_imports(source: str, current: str = "__init__") -> set[str]:
    """The package modules `source` imports anywhere (in functions and TYPE_CHECKING blocks too); a name
    imported from a subpackage counts as that module when it is one."""
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.removeprefix(PACKAGE + ".") for alias in node.names
                         if alias.name.startswith(PACKAGE + ".")}
        elif isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith(PACKAGE)):
            base = _resolve(node.module or "", current, node.level)
            for alias in node.names:
                child = f"{base}.{alias.name}" if base else alias.name
                imported.add(child if child in MODULES else base or "__init__")
    return imported


def import_graph() -> dict[str, set[str]]:
    return {module: internal_imports(path.read_text(), module) - {module} for module, path in MODULES.items()}


def layer_of(module: str) -> str:
    return module.split(".")[0]


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a layer it may not import, as "importer -> imported"."""
    return [f"{module} -> {imported}" for module, imports in sorted(graph.items()) if layer_of(module) in ALLOWED
            for imported in sorted(imports)
            if layer_of(imported) != layer_of(module) and layer_of(imported) not in ALLOWED[layer_of(module)]]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" after

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = "open"
        for imported in sorted(graph.get(module, ())):
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
from nsfw_mobilenet.io import image_files, weights
from nsfw_mobilenet.io.run_data import RunData
from .taxonomy import BINARY
import nsfw_mobilenet.training.models

def later():
    from nsfw_mobilenet.training.train import train
"""
    assert internal_imports(source, "core.paths") == {"io.image_files", "io.weights", "io.run_data", "core.taxonomy",
                                                      "training.models", "training.train"}


def test_every_module_belongs_to_a_layer_or_sits_above_them():
    assert {layer_of(module) for module in MODULES} == {*ALLOWED, "cli", "__main__", "__init__"}


def test_layers_import_only_the_layers_below_them():
    assert layer_violations(import_graph()) == []


def test_a_forbidden_import_is_named():
    assert layer_violations({"app.scan": {"training.models", "core.paths"}, "core.paths": set()}) == [
        "app.scan -> training.models"]


def test_type_checking_imports_count_too():
    assert "app.parity" in import_graph()["app.scan_evaluation"]  # under TYPE_CHECKING


def test_the_package_import_graph_has_no_cycle():
    assert find_cycle(import_graph()) is None


def test_a_cycle_is_found_and_named():
    assert find_cycle({"augment": {"train"}, "train": {"data", "augment"}, "data": set()}) == [
        "augment", "train", "augment"]


def test_no_module_below_cli_reads_or_writes_the_environment():
    readers = [module for module, path in MODULES.items() if module not in ENVIRONMENT_EDGES
               and any(isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv")
                       for node in ast.walk(ast.parse(path.read_text())))]
    assert readers == []


def test_scan_help_imports_no_training_or_study_module():
    """`python -X importtime -m nsfw_mobilenet scan --help`: the product starts without the training stack."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", PACKAGE, "scan", "--help"], capture_output=True,
                          text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"}, check=True)
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    ours = sorted(name for name in imported if name.startswith(PACKAGE + "."))
    assert ours and not [name for name in ours if name.split(".")[1] in ("training", "studies")], ours
