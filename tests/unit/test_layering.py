"""The architecture, enforced: targets never import each other (shared helpers live in neutral
modules), service kinds never import a target, and render.py loads the targets only when it
renders (no render <-> targets import cycle: targets do not import render at run time)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import ROOT

PKG = ROOT / "generator" / "stackgen"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, *, top_level_only: bool = False, runtime_only: bool = False) -> set[str]:
    """Absolute names of the modules `path` imports (`from a import b` counts a and a.b)."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    skip: set[int] = set()
    for node in ast.walk(tree):
        if runtime_only and isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    nodes = tree.body if top_level_only else ast.walk(tree)
    found: set[str] = set()
    for node in nodes:
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def files(folder: str) -> list[Path]:
    return sorted((PKG / folder).glob("*.py"))


def test_the_parser_sees_relative_imports():
    got = imports(PKG / "targets" / "__init__.py")
    assert "stackgen.render" in got  # `from ..render import Templates`
    assert "stackgen.services.app" in imports(PKG / "services" / "__init__.py")  # `from . import app, ...`


@pytest.mark.parametrize("path", [p for p in files("targets") if p.name != "__init__.py"], ids=lambda p: p.name)
def test_a_target_imports_no_other_target(path):
    own = module_name(path)
    other = {m for m in imports(path) if m.startswith("stackgen.targets.") and m != own}
    assert not other, f"{path.name} imports {sorted(other)}: move what they share into a neutral module"


@pytest.mark.parametrize("path", [p for p in files("targets") if p.name != "__init__.py"], ids=lambda p: p.name)
def test_a_target_does_not_import_render_at_run_time(path):
    assert "stackgen.render" not in imports(path, runtime_only=True), f"{path.name} imports render: the render <-> targets cycle"


@pytest.mark.parametrize("path", files("services"), ids=lambda p: p.name)
def test_a_service_kind_imports_no_target(path):
    bad = {m for m in imports(path) if m == "stackgen.targets" or m.startswith("stackgen.targets.") or m == "stackgen.render"}
    assert not bad, f"services/{path.name} imports {sorted(bad)}"


def test_render_loads_the_targets_only_when_it_renders():
    top = imports(PKG / "render.py", top_level_only=True)
    assert not {m for m in top if m == "stackgen.targets" or m.startswith("stackgen.targets.")}
    assert "stackgen.targets" in imports(PKG / "render.py")  # inside render_tree


def test_every_kind_is_one_module():
    from stackgen.services import KINDS

    for name, kind in KINDS.items():
        module = type(kind).__module__
        assert module == f"stackgen.services.{name.replace('-', '_')}", f"kind {name} lives in {module}"
