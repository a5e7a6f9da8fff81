"""The render stage: the validated spec -> every output file as text, in memory.

A target is a function `render(spec, tpl) -> {relative path: text}`; `targets.TARGETS` lists
them. This module owns the Jinja2 environment (strict, no autoescape, escaping by filters).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from . import __version__, escape, freshness
from .freshness import resource_root

from .spec.model import NIX_TARGETS, Spec


# Everything that changes how a template compiles; part of the template cache's key.
ENV_OPTIONS: dict[str, Any] = {
    "undefined": jinja2.StrictUndefined,
    "autoescape": False,
    "keep_trailing_newline": True,
    "trim_blocks": True,
    "lstrip_blocks": True,
}


@lru_cache(maxsize=None)
def environment() -> jinja2.Environment:
    return make_environment(resource_root("templates"), template_cache_dir())


def make_environment(templates: Path, cache_dir: Path | None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        bytecode_cache=_TemplateCache(str(cache_dir)) if cache_dir is not None and _usable(cache_dir) else None,
        **ENV_OPTIONS,
    )
    env.filters.update(
        nix_str=escape.nix_str,
        nix_attr=escape.nix_attr,
        nix_list=escape.nix_list,
        nix_value=escape.nix_value,
        sh_quote=escape.sh_quote,
        sh_in_nix_indented=escape.sh_in_nix_indented,
    )
    env.globals["stackgen_version"] = __version__
    return env


def template_cache_dir() -> Path | None:
    """Where compiled templates are kept: $XDG_CACHE_HOME/stackgen/templates-<key> (None: off).

    Compiling the templates is most of the render stage's time, and it is the same work at
    every run. Jinja2 keys each cached template by its file name and checks it against the
    template's source (a changed template is recompiled); the directory name adds what else
    the compiled code depends on: Jinja2's version, the environment's options and the filters
    (Jinja2 folds constant filter calls at compile time). It lives in the user's cache, never
    in the install directory. STACKGEN_NO_CACHE=1 turns it off.
    """
    if not freshness.enabled():
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):
        return None  # no usable home (expanduser left "~"): do without
    try:
        filters = Path(escape.__file__).read_bytes()
    except OSError:
        return None
    key = hashlib.sha256(repr((jinja2.__version__, sorted(ENV_OPTIONS.items(), key=str))).encode() + filters).hexdigest()[:16]
    return Path(base) / "stackgen" / f"templates-{key}"


def _usable(cache_dir: Path) -> bool:
    try:
        cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(cache_dir, os.W_OK | os.X_OK)


class _TemplateCache(jinja2.FileSystemBytecodeCache):
    """Best effort: a cache file that cannot be read or written is a miss, never an error."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:  # noqa: BLE001 - a damaged cache file: compile the template instead
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


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
