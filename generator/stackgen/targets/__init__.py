"""Targets: each turns the validated spec into `{relative path: text}`.

Adding a target is adding a module here, a templates folder, and a line below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..spec.model import Spec
from . import compose, devshell, flake, fleet, home, kubernetes, mirrors, nixos, processes, quadlet

if TYPE_CHECKING:
    from ..render import Templates

Target = Callable[[Spec, "Templates"], dict[str, str]]

# Files shared by the Nix targets (flake.nix): rendered when any Nix target is selected.
SHARED: dict[str, Target] = {"flake": flake.render}

TARGETS: dict[str, Target] = {
    "devshell": devshell.render,
    "nixos": nixos.render,
    "home-manager": home.render,
    "compose": compose.render,
    "quadlet": quadlet.render,
    "mirrors": mirrors.render,
    "processes": processes.render,
    "kubernetes": kubernetes.render,
    "fleet": fleet.render,
}
