"""The `devshell` target: nix/devshell.nix (and the driver finder it sources)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..records import dataclass  # as dataclasses', without exec() or importing dataclasses

from .. import mirrordata
from ..spec.model import Spec

if TYPE_CHECKING:
    from ..render import Templates


def render(spec: Spec, tpl: "Templates") -> dict[str, str]:
    files = {
        "nix/devshell.nix": tpl(
            "devshell/devshell.nix.j2",
            pypi=mirrordata.pypi_index(spec),
            hf=mirrordata.hf_endpoint(spec),
            services=", ".join(f"{name} {svc.host}:{svc.port}" for name, svc in spec.services.items() if svc.port is not None),
            start_hints=start_hints(spec),
            connection=connection(spec),
            toolkit_env=toolkit_env(spec),
        )
    }
    if spec.gpu.nvidia:
        files["nix/driver-libs.sh"] = tpl("devshell/driver-libs.sh.j2")
    return files


def connection(spec: Spec) -> dict[str, str]:
    """The connection variables of every declared service, at its address on this machine
    (SPEC: the dev shell exports them); a variable the spec's own `env:` sets is left to it."""
    from ..services.wiring import native

    return {k: v for k, v in native(spec, list(spec.services.values())).items() if k not in spec.env}


# The variables through which nvcc users, CMake's FindCUDAToolkit and torch's cpp_extension find
# the CUDA toolkit of a source build.
TOOLKIT_ENV = ("CUDA_HOME", "CUDA_PATH", "CUDAToolkit_ROOT")


def toolkit_env(spec: Spec) -> list[str]:
    """The toolkit variables the shell sets: none without an NVIDIA GPU, and none that the
    spec's `env:` already sets (the user's own toolkit wins; a second definition of the same
    attribute would not even parse)."""
    if not spec.gpu.nvidia:
        return []
    return [name for name in TOOLKIT_ENV if name not in spec.env]


@dataclass(frozen=True)
class Hint:
    """One banner line: the first alternative whose shell test passes when the shell starts, or
    `otherwise` (nothing when empty). Tests are builtins only (`command -v`, `[`): the banner
    runs on every `nix develop` and stays within the shellHook's few milliseconds."""

    alternatives: tuple[tuple[str, str], ...]
    otherwise: str = ""


def start_hints(spec: Spec) -> list[Hint]:
    """How to start the declared services from this shell, per rendered target, naming only
    commands that exist where the shell runs (checked as it starts)."""
    hints = []
    if "compose" in spec.targets:
        hints.append(Hint(
            (
                ("command -v podman-compose >/dev/null", "start: podman-compose up -d    (compose.yaml)"),
                ("command -v docker >/dev/null", "start: docker compose up -d    (compose.yaml)"),
            ),
            "compose.yaml: install podman-compose (or docker compose) to start the services",
        ))
    if "quadlet" in spec.targets:
        units = " ".join(f"{spec.name}-{name}" for name in spec.services)
        hints.append(Hint(
            (("command -v podman >/dev/null && command -v systemctl >/dev/null",
              "Quadlet: cp quadlet/* ~/.config/containers/systemd/ && systemctl --user daemon-reload"
              f" && systemctl --user start {units}"),),
            "quadlet/: the units need podman (>= 4.4) and systemd",
        ))
    if "processes" in spec.targets:
        hints.append(Hint(
            (("command -v nix >/dev/null", "start: nix run .#services    (native processes under process-compose; -- down stops them)"),),
        ))
    if "nixos" in spec.targets:
        hints.append(Hint(
            (("[ -e /etc/NIXOS ]", "NixOS: import nix/nixos.nix (nixosModules.default) in your configuration, then nixos-rebuild switch"),),
        ))
    return hints
