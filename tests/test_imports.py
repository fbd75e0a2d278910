"""The package's imports run one way: no module imports itself back through others, and the
computing half (backend/) never imports Blender.

Imports are read from the source with ``ast`` (imports inside functions included, since a lazy
import that closes a circle is still a circle), so the test needs neither Blender nor torch.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HALVES = ("backend", "partdistill_blender")
BLENDER_MODULES = ("bpy", "bmesh", "mathutils", "gpu", "bl_math", "bpy_extras")


def module_files() -> dict[str, Path]:
    """Every module of the two halves, by its dotted name relative to the repository root."""
    modules = {}
    for half in HALVES:
        for path in sorted((ROOT / half).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imported_names(name: str, path: Path, known: set[str]) -> set[str]:
    """The dotted names ``name`` imports: modules of the package where known, else as written.

    Relative imports are resolved against the module's package; absolute ones that name the
    package from outside (``partdistill.backend...``) are reduced to the same names.
    """
    is_package = path.name == "__init__.py"
    package = name.split(".") if is_package else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(_within(alias.name, known) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            target = _within(target, known)
            for alias in node.names:
                submodule = f"{target}.{alias.name}" if target else alias.name
                found.add(submodule if submodule in known else target)
    found.discard("")
    # A script's launcher imports its own module as part of the package ("python batch.py"
    # re-enters as partdistill.partdistill_blender.batch): a re-entry, not a circle.
    found.discard(name)
    return found


def _within(target: str, known: set[str]) -> str:
    """``target`` with any leading package name dropped when the rest names one of our modules."""
    parts = target.split(".")
    for start in range(len(parts)):
        candidate = ".".join(parts[start:])
        if candidate in known or any(candidate.startswith(k + ".") for k in known if "." not in k):
            return candidate if start or candidate in known else target
    return target


def import_graph() -> dict[str, set[str]]:
    """Each module of the package and the modules of the package it imports."""
    files = module_files()
    known = set(files)
    return {name: imported_names(name, path, known) for name, path in files.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module: modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_the_graph_sees_relative_and_absolute_imports():
    graph = import_graph()
    assert "backend.teachers.models" in graph["backend.teachers.clip"]  # from .models import
    assert "backend.contracts" in graph["backend.teachers.models"]  # from ..contracts import
    assert any(name.startswith("backend.") for name in graph["partdistill_blender.batch"])


def test_circles_are_found():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles():
    found = circles(import_graph())
    assert not found, "import circles: " + "; ".join(" <-> ".join(group) for group in found)


@pytest.mark.parametrize("name", sorted(n for n in module_files() if n.startswith("backend")))
def test_backend_never_imports_blender(name):
    graph = import_graph()
    blender = sorted(target for target in graph[name] if target.split(".")[0] in BLENDER_MODULES)
    assert not blender, f"{name} imports {blender}: backend/ must run without Blender"
