"""What the NixOS and home-manager targets share: the reusable Nix modules they copy into the
rendered tree, and the spec's services by kind for their templates."""

from __future__ import annotations

from .freshness import resource_root
from .spec.model import Service, Spec


def services_by_kind(spec: Spec) -> dict[str, Service | None]:
    """Every built-in kind -> its (first) instance, None where the spec declares none
    (templates test `svc.postgres`)."""
    from .services import BUILTIN

    return {kind: spec.first(kind) for kind in BUILTIN}


def copy_modules(kind: str, names: list[str]) -> dict[str, str]:
    """modules/<kind>/<name> -> nix/modules/<kind>/<name>, so the rendered tree is self-contained."""
    root = resource_root("modules") / kind
    return {f"nix/modules/{kind}/{name}": (root / name).read_text() for name in names}
