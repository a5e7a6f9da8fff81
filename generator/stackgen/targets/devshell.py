"""The `devshell` target: nix/devshell.nix (and the driver finder it sources)."""

from __future__ import annotations

from .. import mirrordata
from ..render import Templates
from ..spec.model import Spec


def render(spec: Spec, tpl: Templates) -> dict[str, str]:
    files = {
        "nix/devshell.nix": tpl(
            "devshell/devshell.nix.j2",
            pypi=mirrordata.pypi_index(spec),
            hf=mirrordata.hf_endpoint(spec),
            services=", ".join(f"{kind} {svc.host}:{svc.port}" for kind, svc in spec.services.items()),
            start_hints=start_hints(spec),
        )
    }
    if spec.gpu.nvidia:
        files["nix/driver-libs.sh"] = tpl("devshell/driver-libs.sh.j2")
    return files


def start_hints(spec: Spec) -> list[str]:
    """How to start the declared services, one line per rendered way."""
    ways = []
    if "compose" in spec.targets:
        ways.append("podman-compose up -d")
    if "quadlet" in spec.targets:
        ways.append(f"systemctl --user start {spec.name}-<service> (Quadlet units in quadlet/)")
    if "nixos" in spec.targets:
        ways.append("import nixosModules.default into your NixOS configuration")
    return [("start: " if i == 0 else "   or: ") + way for i, way in enumerate(ways)]
