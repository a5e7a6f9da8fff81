"""The render stage: the validated spec -> every output file as text, in memory.

A target is a function `render(spec, tpl) -> {relative path: text}`; `targets.TARGETS` lists
them. This module owns the Jinja2 environment (strict, no autoescape, escaping by filters).
"""

from __future__ import annotations

import hashlib
from .records import dataclass  # as dataclasses', without exec() or importing dataclasses
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from . import __version__, escape, usercache
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
    cache_fd = usercache.open_folder(cache_dir) if cache_dir is not None else None
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        bytecode_cache=_TemplateCache(cache_fd) if cache_fd is not None else None,
        **ENV_OPTIONS,
    )
    env.filters.update(
        nix_str=escape.nix_str,
        nix_attr=escape.nix_attr,
        nix_list=escape.nix_list,
        nix_value=escape.nix_value,
        sh_quote=escape.sh_quote,
        sh_dquoted=escape.sh_dquoted,
        systemd_percent=escape.systemd_percent,
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
    in the install directory, and is trusted only as usercache says. STACKGEN_NO_CACHE=1
    turns it off.
    """
    if not usercache.enabled():
        return None
    try:
        filters = Path(escape.__file__).read_bytes()
    except OSError:
        return None
    key = hashlib.sha256(repr((jinja2.__version__, sorted(ENV_OPTIONS.items(), key=str))).encode() + filters).hexdigest()[:16]
    return usercache.folder(f"templates-{key}")


_CACHE_FILE_LIMIT = 16 << 20  # a compiled template is tens of KiB


def _load_bucket(bucket: jinja2.bccache.Bucket, data: bytes) -> None:
    """bucket.bytecode_from_string(data), step for step (Jinja2's magic, its pickled checksum,
    the marshalled code), but with marshal.loads on the bytes: Jinja2's marshal.load from a
    BytesIO reads object by object, about seven times slower (~1.5 ms of a reference render)."""
    import io
    import marshal
    import pickle

    magic = jinja2.bccache.bc_magic
    stream = io.BytesIO(data)
    if stream.read(len(magic)) != magic or pickle.load(stream) != bucket.checksum:
        bucket.reset()  # another Jinja2 or Python wrote it, or the template has changed
        return
    try:
        bucket.code = marshal.loads(memoryview(data)[stream.tell() :])
    except (EOFError, ValueError, TypeError):
        bucket.reset()


class _TemplateCache(jinja2.BytecodeCache):
    """Compiled templates in a trusted folder (its descriptor). Best effort: a cache file
    that cannot be read, is not to be trusted, or cannot be written is a miss, never an error."""

    def __init__(self, dir_fd: int):
        self.dir_fd = dir_fd

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        data = usercache.read_entry(self.dir_fd, f"{bucket.key}.cache", _CACHE_FILE_LIMIT)
        if data is None:
            return  # missing, or not this user's own: never unpickled
        try:
            _load_bucket(bucket, data)
        except Exception:  # noqa: BLE001 - a damaged cache file: compile the template instead
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        usercache.write_entry(self.dir_fd, f"{bucket.key}.cache", bucket.bytecode_to_string())


class Templates:
    """What a target uses to render: `tpl("devshell/devshell.nix.j2", **context)`."""

    def __init__(self, spec: Spec):
        self.spec = spec

    def __call__(self, name: str, **context: Any) -> str:
        """`spec=` in the context renders for another view of the spec (one host of a fleet)."""
        context.setdefault("spec", self.spec)
        return environment().get_template(name).render(**context)


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
