"""flake.nix: the entry point of the rendered tree, shared by the Nix targets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import mirrordata
from ..spec.model import Spec

if TYPE_CHECKING:
    from ..render import Templates


def render(spec: Spec, tpl: "Templates") -> dict[str, str]:
    files = {
        "flake.nix": tpl(
            "flake/flake.nix.j2",
            caches=mirrordata.nix_caches(spec),
            keys=mirrordata.nix_keys(spec),
            home_manager="home-manager" in spec.targets,
            inputs=mirrordata.flake_inputs(spec),
            # system.stateVersion / home.stateVersion of the evaluation checks
            state_version=spec.branch.state_version,
            fleet=list(spec.hosts.values()) if "fleet" in spec.targets else [],
        )
    }
    if spec.gpu.nvidia:
        files["nix/nixpkgs-config.nix"] = tpl("flake/nixpkgs-config.nix.j2")
    return files
