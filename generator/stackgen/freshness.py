"""The key of a render: what its output depends on, so an unchanged re-render can be skipped.

A full render records `render_key` in the state file. When the next `render` or
`render --check` computes the same key and every recorded file is on disk with its recorded
hash, rendering again would produce exactly those files: the command is done without
loading YAML or Jinja2. The key covers the spec's bytes, the contents of stackgen's code,
templates and modules, and the Python, Jinja2 and PyYAML in use. STACKGEN_NO_CACHE=1
always takes the full path.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def resource_root(name: str) -> Path:
    """`templates/` or `modules/`: inside the installed wheel, or beside `generator/` in a checkout."""
    packaged = PACKAGE / name
    if packaged.is_dir():
        return packaged
    return PACKAGE.parents[1] / name


def enabled() -> bool:
    return not os.environ.get("STACKGEN_NO_CACHE")


def render_key(spec_bytes: bytes, roots: tuple[Path, ...] | None = None) -> str:
    h = hashlib.sha256()
    h.update(repr(sys.version_info[:3]).encode())
    for dep in ("jinja2", "yaml"):  # their __init__ carries the version; find_spec imports nothing
        found = importlib.util.find_spec(dep)
        h.update(Path(found.origin).read_bytes() if found and found.origin else b"-")
    for root in roots if roots is not None else code_roots():
        for path in sorted(_files(root)):
            h.update(str(path.relative_to(root)).encode() + b"\0")
            h.update(hashlib.sha256(path.read_bytes()).digest())
    h.update(b"spec\0" + spec_bytes)
    return h.hexdigest()


def code_roots() -> tuple[Path, ...]:
    roots = [PACKAGE]
    for name in ("templates", "modules"):
        root = resource_root(name)
        if root.is_dir() and not root.is_relative_to(PACKAGE):
            roots.append(root)
    return tuple(roots)


def _files(root: Path):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            if not name.endswith((".pyc", ".orig")):
                yield Path(dirpath) / name
