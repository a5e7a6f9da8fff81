"""flake.nix: the entry point of the rendered tree, shared by the Nix targets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import mirrordata
from ..spec.model import Spec

if TYPE_CHECKING:
    from ..render import Templates

HOME_MANAGER_REFS = {"nixos-26.05": "/release-26.05", "nixos-unstable": ""}
# system.stateVersion / home.stateVersion of the evaluation checks (the newest release).
STATE_VERSION = "26.05"


def render(spec: Spec, tpl: "Templates") -> dict[str, str]:
    files = {
        "flake.nix": tpl(
            "flake/flake.nix.j2",
            caches=mirrordata.nix_caches(spec),
            keys=mirrordata.nix_keys(spec),
            home_manager="home-manager" in spec.targets,
            home_manager_ref=HOME_MANAGER_REFS[spec.nixpkgs],
            state_version=STATE_VERSION,
        )
    }
    if spec.gpu.nvidia:
        files["nix/nixpkgs-config.nix"] = tpl("flake/nixpkgs-config.nix.j2")
    return files
