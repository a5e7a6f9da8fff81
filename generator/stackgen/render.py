"""The render stage: the validated spec -> every output file as text, in memory.

A target is a function `render(spec, tpl) -> {relative path: text}`; `targets.TARGETS` lists
them. This module owns the Jinja2 environment (strict, no autoescape, escaping by filters).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from . import __version__, escape
from .spec.model import NIX_TARGETS, Spec


def resource_root(name: str) -> Path:
    """`templates/` or `modules/`: inside the installed wheel, or beside `generator/` in a checkout."""
    packaged = resources.files(__package__) / name
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / name


@lru_cache(maxsize=None)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resource_root("templates"))),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        nix_str=escape.nix_str,
        nix_attr=escape.nix_attr,
        nix_list=escape.nix_list,
        nix_value=escape.nix_value,
        sh_quote=escape.sh_quote,
    )
    env.globals["stackgen_version"] = __version__
    return env


class Templates:
    """What a target uses to render: `tpl("devshell/devshell.nix.j2", **context)`."""

    def __init__(self, spec: Spec):
        self.spec = spec

    def __call__(self, name: str, **context: Any) -> str:
        return environment().get_template(name).render(spec=self.spec, **context)


@dataclass(frozen=True)
class Rendered:
    path: str  # relative, with forward slashes
    text: str
    target: str  # the target that owns it ("flake" for the shared flake files)


def render_tree(spec: Spec, only: str | None = None) -> list[Rendered]:
    """Render the spec's targets (or just `only`) to a sorted list of files."""
    from .targets import SHARED, TARGETS

    tpl = Templates(spec)
    selected = [t for t in spec.targets if only is None or t == only]
    parts: list[tuple[str, dict[str, str]]] = []
    if any(t in NIX_TARGETS for t in selected):
        parts.append(("flake", SHARED["flake"](spec, tpl)))
    for target in selected:
        parts.append((target, TARGETS[target](spec, tpl)))
    files: dict[str, Rendered] = {}
    for owner, outputs in parts:
        for path, text in outputs.items():
            if path in files:
                raise AssertionError(f"two targets render {path}")  # a programming error, not a user one
            files[path] = Rendered(path, text, owner)
    return [files[p] for p in sorted(files)]
